package authz

import (
	"errors"
	"net/http"
	"strings"

	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/internal/oauthsyntax"
)

// ErrDenied matches every denial from this package: errors.Is(err,
// ErrDenied) holds for each *DeniedError.
var ErrDenied = errors.New("authz: access denied")

// DeniedError is a denial as an error, as Decision.Err returns it and as the
// mcp-go adapters hand it to mcp-go.
//
// Its Error text is sent to MCP clients (mcp-go copies it into the JSON-RPC
// error message), so it is built only from a fixed table and the scope names
// of the policy: never from the token, the claims, the tenant or the
// requested name. It matches ErrDenied, and auth.ErrInsufficientScope when
// Reason is ReasonInsufficientScope. errors.As converts it to an *auth.Error
// (see AuthError), so auth.WriteError renders the right RFC 6750 response.
type DeniedError struct {
	// Reason says why the request was denied.
	Reason Reason
	// Missing are the required scopes the principal lacks (all of them are
	// needed).
	Missing []string
	// AnyOf, when set, are alternatives of which the principal holds none
	// (one of them is needed).
	AnyOf []string
}

// Error returns the client-safe text of the denial.
func (e *DeniedError) Error() string {
	switch e.Reason {
	case ReasonInsufficientScope:
		var b strings.Builder
		b.WriteString("insufficient scope: this request requires ")
		writeScopes(&b, e.Missing, " ")
		if len(e.AnyOf) > 0 {
			if len(e.Missing) > 0 {
				b.WriteString(" and ")
			}
			b.WriteString("one of ")
			writeScopes(&b, e.AnyOf, ", ")
		}
		return b.String()
	case ReasonUnauthenticated:
		return "access denied: authentication required"
	case ReasonTenant:
		return "access denied: not available to this tenant"
	case ReasonMethod:
		return "method not found"
	}
	return "access denied"
}

// Is reports whether target is ErrDenied, or auth.ErrInsufficientScope for an
// insufficient-scope denial.
func (e *DeniedError) Is(target error) bool {
	switch target {
	case ErrDenied:
		return true
	case auth.ErrInsufficientScope:
		return e.Reason == ReasonInsufficientScope
	}
	return false
}

// As lets errors.As(err, &authErr) find the *auth.Error of this denial, so
// auth.AsError and auth.WriteError render it without knowing this package.
func (e *DeniedError) As(target any) bool {
	if t, ok := target.(**auth.Error); ok {
		*t = e.AuthError()
		return true
	}
	return false
}

// AuthError returns the HTTP answer for the denial, for the HTTP edge:
// 403 insufficient_scope naming Missing and AnyOf (RFC 6750 §3.1) in both
// the scope attribute and error_description (clients such as mcp-go's show
// only the body, so the description must say which scopes to request) for
// ReasonInsufficientScope, 401 without an error code (RFC 6750 §3.1: no
// credential) for ReasonUnauthenticated, and 403 "access denied" otherwise.
// The returned error wraps e.
func (e *DeniedError) AuthError() *auth.Error {
	switch e.Reason {
	case ReasonInsufficientScope:
		scopes := make([]string, 0, len(e.Missing)+len(e.AnyOf))
		scopes = append(append(scopes, e.Missing...), e.AnyOf...)
		ae := auth.InsufficientScope(scopes...)
		ae.Description = e.Error()
		ae.Err = e
		return ae
	case ReasonUnauthenticated:
		return &auth.Error{Status: http.StatusUnauthorized, Description: "a bearer token is required", Err: e}
	}
	return &auth.Error{Status: http.StatusForbidden, Description: "access denied", Err: e}
}

// writeScopes writes scopes separated by sep, keeping only the characters
// RFC 6749 §3.3 allows in a scope token and capping each one's length, so
// that a scope given to Require by mistake cannot smuggle text.
func writeScopes(b *strings.Builder, scopes []string, sep string) {
	for i, s := range scopes {
		if i > 0 {
			b.WriteString(sep)
		}
		n := 0
		for j := 0; j < len(s) && n < oauthsyntax.MaxScopeTokenBytes; j++ {
			if oauthsyntax.IsScopeChar(s[j]) {
				b.WriteByte(s[j])
				n++
			}
		}
	}
}
