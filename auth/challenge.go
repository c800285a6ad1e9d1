package auth

import (
	"strings"
)

// challenge is the content of one RFC 6750 §3 "Bearer" WWW-Authenticate
// challenge, with the RFC 9728 §5.1 resource_metadata parameter.
//
// Values are sanitised when rendered: characters RFC 6750 does not allow in
// a parameter (quotes, backslashes, control and non-ASCII characters) are
// dropped, and each value is capped in length, so no input can break out of
// its quoted string or add a header line.
type challenge struct {
	// ResourceMetadata is the absolute URL of the protected resource
	// metadata document (RFC 9728 §5.1).
	ResourceMetadata string
	// Realm is optional (RFC 6750 §3).
	Realm string
	// Error is an RFC 6750 error code; leave it empty when the request
	// carried no credential (RFC 6750 §3.1).
	Error string
	// Description is a short human-readable text, sent only with Error.
	Description string
	// Scope lists the scopes required, sent with Error, or always when
	// ScopeAlways is set.
	Scope []string
	// ScopeAlways sends Scope even without an error code: the scope hint
	// an MCP server gives a client that sent no token (RFC 6750 §3 allows
	// scope in any Bearer challenge; the MCP authorization spec asks for it
	// so clients request the right scopes).
	ScopeAlways bool
	// DPoP renders a "DPoP" challenge (RFC 9449 §7.1) instead of a
	// "Bearer" one, with Algs as its algs parameter.
	DPoP bool
	// Algs lists the accepted DPoP proof algorithms (DPoP challenges only).
	Algs []string
}

const maxChallengeParam = 512

// String renders the challenge as a WWW-Authenticate header value.
func (c challenge) String() string {
	var b strings.Builder
	b.Grow(128)
	n := 0
	param := func(name, value string) {
		if n == 0 {
			b.WriteByte(' ')
		} else {
			b.WriteString(", ")
		}
		n++
		b.WriteString(name)
		b.WriteString(`="`)
		b.WriteString(value)
		b.WriteByte('"')
	}
	if c.DPoP {
		b.WriteString("DPoP")
	} else {
		b.WriteString("Bearer")
	}
	if c.Realm != "" {
		param("realm", sanitizeParam(c.Realm, false))
	}
	if c.DPoP && len(c.Algs) > 0 {
		algs := make([]string, 0, len(c.Algs))
		for _, a := range c.Algs {
			if a = sanitizeParam(a, true); a != "" {
				algs = append(algs, a)
			}
		}
		param("algs", sanitizeParam(strings.Join(algs, " "), false))
	}
	if c.ResourceMetadata != "" {
		param("resource_metadata", sanitizeParam(c.ResourceMetadata, false))
	}
	if c.Error != "" {
		param("error", sanitizeParam(c.Error, false))
		if c.Description != "" {
			param("error_description", sanitizeParam(c.Description, false))
		}
	}
	if c.Error != "" || c.ScopeAlways {
		if len(c.Scope) > 0 {
			scopes := make([]string, 0, len(c.Scope))
			for _, s := range c.Scope {
				if s = sanitizeParam(s, true); s != "" {
					scopes = append(scopes, s)
				}
			}
			param("scope", sanitizeParam(strings.Join(scopes, " "), false))
		}
	}
	return b.String()
}

// ChallengeFor builds the challenge for err: resource_metadata always, and
// error/description/scope when a credential was presented and rejected
// (no error code is sent for a missing credential, RFC 6750 §3.1).
func ChallengeFor(resourceMetadata string, err *Error) challenge {
	c := challenge{ResourceMetadata: resourceMetadata}
	if err != nil && err.Code != "" {
		c.Error = err.Code
		c.Description = err.Description
		c.Scope = err.Scope
	}
	return c
}

// sanitizeParam keeps the characters RFC 6750 §3 allows in error,
// error_description and scope values: %x20-21 / %x23-5B / %x5D-7E (no
// quote, no backslash). Scope tokens additionally exclude the space.
func sanitizeParam(s string, token bool) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if !allowedParamByte(s[i], token) {
			clean = false
			break
		}
	}
	if clean && len(s) <= maxChallengeParam {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s) && b.Len() < maxChallengeParam; i++ {
		if allowedParamByte(s[i], token) {
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

func allowedParamByte(c byte, token bool) bool {
	if token && c == ' ' {
		return false
	}
	return c >= 0x20 && c <= 0x7e && c != '"' && c != '\\'
}
