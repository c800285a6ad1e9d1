package obo

import (
	"cmp"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// Sentinel errors, one per class. Every error the package returns wraps one
// of them, so callers match with errors.Is; a token endpoint failure is also
// an *Error (errors.As) carrying the OAuth details.
var (
	// ErrConfig: a configuration mistake (Config, Target) detected by a
	// constructor or by discovery.
	ErrConfig error = &sentinel{"obo: invalid configuration"}
	// ErrNoCredential: the context carries no user credential to exchange,
	// so no downstream request is made (it would go out unauthenticated or,
	// worse, with someone else's token).
	ErrNoCredential error = &sentinel{"obo: no user credential in the request context"}
	// ErrRejected: the token endpoint answered with an OAuth error (RFC 6749
	// §5.2), such as invalid_grant or interaction_required. Retrying the same
	// request does not help; see Error.InteractionRequired.
	ErrRejected error = &sentinel{"obo: the token endpoint rejected the request"}
	// ErrUnavailable: the token endpoint could not be reached, timed out,
	// or answered 5xx or 429. A later call may succeed.
	ErrUnavailable error = &sentinel{"obo: the token endpoint is unavailable"}
	// ErrInvalidResponse: the token endpoint answered something this package
	// will not use: a redirect (never followed), an oversized or malformed
	// body, a token type other than Bearer, an issued_token_type other than
	// the one requested, a bad expires_in, or the subject token unchanged.
	ErrInvalidResponse error = &sentinel{"obo: invalid token endpoint response"}
	// ErrPassthrough: an outgoing request carried the caller's inbound token
	// (in a header other than Authorization, or in the URL), so it was not
	// sent. MCP forbids passing the inbound token to other services.
	ErrPassthrough error = &sentinel{"obo: the request carries the caller's inbound token"}
)

// OAuth error codes this package gives meaning to (RFC 6749 §5.2,
// OpenID Connect Core §3.1.2.6, Microsoft identity platform).
const (
	CodeInvalidGrant        = "invalid_grant"
	CodeInvalidClient       = "invalid_client"
	CodeInvalidRequest      = "invalid_request"
	CodeInvalidScope        = "invalid_scope"
	CodeInvalidTarget       = "invalid_target" // RFC 8693 §2.2.2
	CodeUnauthorizedClient  = "unauthorized_client"
	CodeInteractionRequired = "interaction_required"
	CodeConsentRequired     = "consent_required"
	CodeLoginRequired       = "login_required"
)

// Limits on what is kept from an error response. The values come from an
// untrusted party; they are trimmed to printable ASCII and capped.
const (
	maxCodeLen        = 64
	maxDescriptionLen = 512
	maxClaimsLen      = 4096
	maxErrorCodes     = 16
)

// Error is a failed exchange. Code, Description, SubError and Claims come
// from the token endpoint's error response (RFC 6749 §5.2 plus Microsoft's
// extensions); Status is the HTTP status (0 when no response arrived); Err
// is the cause and wraps one of the sentinels (ErrRejected, ErrUnavailable,
// ErrInvalidResponse, ErrNoCredential, ErrConfig).
//
// No field ever holds a token or the client secret: the description is
// scrubbed of the values sent, in every form they were sent in (raw,
// form-urlencoded, the Basic credential's base64), and of anything shaped
// like a JWT before it is stored; a text that holds a short secret is
// dropped whole. Description is the server's text, not a fixed one: show
// it to an operator, not to the end user.
type Error struct {
	// Flavor is the exchange that failed.
	Flavor Flavor
	// Code is the OAuth "error" code, empty when the endpoint gave none
	// (network failure, timeout, malformed answer).
	Code string
	// Description is the sanitised "error_description".
	Description string
	// URI is the "error_uri", when the endpoint sent one.
	URI string
	// Status is the HTTP status of the answer, 0 when none arrived.
	Status int
	// SubError is Microsoft Entra's "suberror" (such as consent_required or
	// basic_action), empty elsewhere.
	SubError string
	// Claims is Microsoft Entra's claims challenge (a JSON object) that the
	// client must pass back to the authorization endpoint to satisfy
	// Conditional Access; empty when none was sent.
	Claims string
	// ErrorCodes are Microsoft Entra's numeric "error_codes" (AADSTS…).
	ErrorCodes []int
	// Err is the cause; it wraps a sentinel and never contains a token.
	Err error
}

// Error describes the failure: flavor, OAuth code, status, the sanitised
// description and the cause. It never contains a token or secret.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("obo: ")
	b.WriteString(e.Flavor.String())
	b.WriteString(" failed")
	if e.Code != "" {
		b.WriteString(": ")
		b.WriteString(e.Code)
		if e.SubError != "" {
			b.WriteString(" (")
			b.WriteString(e.SubError)
			b.WriteByte(')')
		}
	}
	if e.Status != 0 {
		b.WriteString(" [HTTP ")
		b.WriteString(strconv.Itoa(e.Status))
		b.WriteByte(']')
	}
	if e.Description != "" {
		b.WriteString(": ")
		b.WriteString(e.Description)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// InteractionRequired reports whether the user must come back through the
// authorization endpoint (sign in again, consent, or satisfy a Conditional
// Access policy) before an exchange for them can succeed: the code is
// interaction_required, consent_required or login_required, or a claims
// challenge was sent. A tool should tell the user so, passing Claims along
// when it is set.
func (e *Error) InteractionRequired() bool {
	if e == nil {
		return false
	}
	switch e.Code {
	case CodeInteractionRequired, CodeConsentRequired, CodeLoginRequired:
		return true
	}
	return e.Claims != "" || e.ConsentRequired()
}

// ConsentRequired reports whether the user (or an administrator) must
// consent to the downstream permissions: the code or Entra's suberror is
// consent_required, or Entra reported AADSTS65001.
func (e *Error) ConsentRequired() bool {
	if e == nil {
		return false
	}
	return e.Code == CodeConsentRequired || e.SubError == CodeConsentRequired ||
		slices.Contains(e.ErrorCodes, 65001)
}

// ClaimsChallenge returns Entra's claims challenge and whether there is one.
// The client passes it, unchanged, as the "claims" parameter of its next
// authorization request.
func (e *Error) ClaimsChallenge() (string, bool) {
	if e == nil || e.Claims == "" {
		return "", false
	}
	return e.Claims, true
}

// Temporary reports whether a later attempt may succeed without any change:
// true for ErrUnavailable (network failure, timeout, 5xx, 429), false for an
// OAuth rejection such as invalid_grant.
func (e *Error) Temporary() bool { return e != nil && errors.Is(e.Err, ErrUnavailable) }

// errorResponse is the body of an RFC 6749 §5.2 error answer with
// Microsoft's extensions.
type errorResponse struct {
	Error       string          `json:"error"`
	Description string          `json:"error_description"`
	URI         string          `json:"error_uri"`
	SubError    string          `json:"suberror"`
	Claims      string          `json:"claims"`
	ErrorCodes  json.RawMessage `json:"error_codes"`
}

// newResponseError builds the *Error for an answer with status and body.
// secrets are the values sent in the request; they are removed from every
// field, in each form sentForms lists, should the server echo them.
func newResponseError(f Flavor, status int, body []byte, cause error, secrets ...string) *Error {
	e := &Error{Flavor: f, Status: status, Err: cause}
	var r errorResponse
	if json.Unmarshal(body, &r) != nil {
		return e
	}
	forms := sentForms(secrets)
	e.Code = cleanCode(r.Error, forms)
	e.SubError = cleanCode(r.SubError, forms)
	e.Description = cleanText(r.Description, maxDescriptionLen, forms)
	e.URI = cleanText(r.URI, maxDescriptionLen, forms)
	if c := cleanText(r.Claims, maxClaimsLen, forms); c == r.Claims {
		e.Claims = c // a truncated claims challenge would be useless
	}
	var codes []json.Number
	if len(r.ErrorCodes) > 0 && json.Unmarshal(r.ErrorCodes, &codes) == nil {
		for _, c := range codes[:min(len(codes), maxErrorCodes)] {
			if n, err := strconv.Atoi(c.String()); err == nil {
				e.ErrorCodes = append(e.ErrorCodes, n)
			}
		}
	}
	return e
}

// minRedactLen is the shortest form of a secret that cleanText replaces
// with a redaction; a text holding a shorter one is dropped whole.
const minRedactLen = 8

// sentForms returns every form in which the secrets (the raw values a
// request carried: the client secret, the subject and actor tokens, the
// client assertion, the Basic credential's base64) can come back in an
// echo: each raw value, the same without its base64 padding, its
// form-urlencoding (url.QueryEscape, which is what url.Values.Encode
// writes, and the same with lower-case hex digits), each reduced to
// printable ASCII as cleanText reduces the text it searches.
// They are deduplicated and longest first, so that a form is replaced
// before any shorter one inside it.
func sentForms(secrets []string) []string {
	forms := make([]string, 0, 4*len(secrets))
	for _, sec := range secrets {
		if sec == "" {
			continue
		}
		q := url.QueryEscape(sec)
		for _, f := range []string{sec, strings.TrimRight(sec, "="), q, lowerHex(q)} {
			if f = printableOnly(f); f != "" {
				forms = append(forms, f)
			}
		}
	}
	slices.SortFunc(forms, func(a, b string) int {
		if c := cmp.Compare(len(b), len(a)); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	return slices.Compact(forms)
}

// lowerHex returns the percent-encoded s with its hex digits in lower case
// (%2f for %2F), as some servers write them.
func lowerHex(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	b := []byte(s)
	for i := 0; i+2 < len(b); i++ {
		if b[i] == '%' {
			for j := i + 1; j <= i+2; j++ {
				if 'A' <= b[j] && b[j] <= 'F' {
					b[j] += 'a' - 'A'
				}
			}
			i += 2
		}
	}
	return string(b)
}

// printableOnly keeps the bytes of s that are printable ASCII.
func printableOnly(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e {
			var b strings.Builder
			b.Grow(len(s))
			for j := 0; j < len(s); j++ {
				if c := s[j]; c >= 0x20 && c <= 0x7e {
					b.WriteByte(c)
				}
			}
			return b.String()
		}
	}
	return s
}

// cleanCode keeps an OAuth error code if it uses only the characters RFC
// 6749 §5.2 allows (%x20-21 / %x23-5B / %x5D-7E, here without space) and
// holds none of the forms of the secrets (sentForms).
func cleanCode(s string, forms []string) string {
	if len(s) > maxCodeLen || containsAny(s, forms) {
		return ""
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return ""
		}
	}
	return s
}

// cleanText drops every form of a secret (sentForms) and every JWT-shaped
// word from s, keeps only printable ASCII and caps its length.
//
// A form shorter than minRedactLen is not replaced: when s holds one, the
// whole text is dropped (fail closed). Replacing a string of a few bytes
// would mangle ordinary words, and the redactions would show where the
// short secret stood in them, which gives it away. Whatever survives the
// replacements (a form rebuilt around a redaction) also drops the text.
func cleanText(s string, limit int, forms []string) string {
	if s == "" {
		return ""
	}
	cut := len(s) > 4*limit
	if cut {
		s = s[:4*limit]
	}
	// Printable ASCII first, so that no secret can be reassembled by
	// dropping the bytes inserted into it.
	s = printableOnly(s)
	if cut {
		s = trimPartial(s, forms)
	}
	for _, f := range forms {
		if len(f) < minRedactLen && strings.Contains(s, f) {
			return ""
		}
	}
	for _, f := range forms {
		s = strings.ReplaceAll(s, f, redacted)
	}
	s = redactJWTs(s)
	if len(s) > limit {
		s = s[:limit]
	}
	if containsAny(s, forms) {
		return ""
	}
	return s
}

// trimPartial removes from the end of s, which was cut from a longer text,
// the beginning of any secret the cut went through: replacing what comes
// before it with shorter redactions could otherwise bring it within the
// length kept.
func trimPartial(s string, forms []string) string {
	for _, f := range forms {
		for k := min(len(f)-1, len(s)); k > 0; k-- {
			if strings.HasSuffix(s, f[:k]) {
				s = s[:len(s)-k]
				break
			}
		}
	}
	return s
}

func containsAny(s string, secrets []string) bool {
	for _, sec := range secrets {
		if sec != "" && strings.Contains(s, sec) {
			return true
		}
	}
	return false
}

const redacted = "[REDACTED]"

// redactJWTs replaces every run of the form eyJ….….… (a compact JWS or JWE
// header begins with the base64url of `{"`) with a redaction.
func redactJWTs(s string) string {
	if !strings.Contains(s, "eyJ") {
		return s
	}
	var b strings.Builder
	for {
		i := strings.Index(s, "eyJ")
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		j := i
		for j < len(s) && isTokenChar(s[j]) {
			j++
		}
		b.WriteString(s[:i])
		if strings.Count(s[i:j], ".") >= 1 {
			b.WriteString(redacted)
		} else {
			b.WriteString(s[i:j])
		}
		s = s[j:]
	}
}

func isTokenChar(c byte) bool {
	return ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9') ||
		c == '-' || c == '_' || c == '.' || c == '~' || c == '+' || c == '/' || c == '='
}

// statusSentinel classifies a non-200, non-redirect answer.
func statusSentinel(status int) error {
	switch {
	case status >= 500 || status == http.StatusTooManyRequests:
		return ErrUnavailable
	case status >= 400:
		return ErrRejected
	}
	return ErrInvalidResponse
}
