package auth

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/mcpguard/mcpguard/internal/oauthsyntax"
)

// DefaultMaxTokenBytes is the default cap on a bearer token's length.
const DefaultMaxTokenBytes = 16 << 10

// BearerToken extracts the bearer token from r per RFC 6750 §2.
//
// Exactly one credential is accepted: one Authorization header using the
// "Bearer" scheme (case-insensitive) followed by a single b64token. It
// returns an error wrapping ErrNoCredential when the request carries no
// bearer credential: no header, another scheme such as Basic, or a token
// only in the query string (RFC 6750 §2.3 is an unsupported method — MCP
// forbids it — so such a token is ignored, not examined). It returns one
// wrapping ErrMalformedRequest when the request is malformed or ambiguous:
// several Authorization headers, a header together with an access_token
// query parameter, or an empty or syntactically invalid token. A
// syntactically valid token longer than maxBytes (DefaultMaxTokenBytes
// when maxBytes <= 0) is an invalid token (RFC 6750 §3.1): the *Error
// returned wraps ErrInvalidToken. Errors never contain the token.
func BearerToken(r *http.Request, maxBytes int) (string, error) {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxTokenBytes
	}
	values := r.Header.Values("Authorization")
	switch len(values) {
	case 0:
		return "", ErrNoCredential
	case 1:
	default:
		return "", fmt.Errorf("%w: more than one Authorization header", ErrMalformedRequest)
	}
	tok, err := ParseAuthorization(values[0], maxBytes)
	if errors.Is(err, ErrNoCredential) {
		return "", err
	}
	if r.URL != nil && r.URL.RawQuery != "" && r.URL.Query().Has("access_token") {
		return "", fmt.Errorf("%w: access token both in the Authorization header and in the query string", ErrMalformedRequest)
	}
	return tok, err
}

// AccessToken is BearerToken that also recognises the DPoP scheme (RFC 9449
// §7.1) when allowDPoP is set: it returns the token and whether it came with
// the DPoP scheme. Without allowDPoP a DPoP credential is ErrNoCredential,
// as any unknown scheme is.
func AccessToken(r *http.Request, maxBytes int, allowDPoP bool) (token string, dpop bool, err error) {
	if !allowDPoP {
		tok, err := BearerToken(r, maxBytes)
		return tok, false, err
	}
	if r.URL != nil && r.URL.RawQuery != "" && r.URL.Query().Has("access_token") {
		return "", false, fmt.Errorf("%w: access token in the query string", ErrMalformedRequest)
	}
	values := r.Header.Values("Authorization")
	switch len(values) {
	case 0:
		return "", false, ErrNoCredential
	case 1:
	default:
		return "", false, fmt.Errorf("%w: more than one Authorization header", ErrMalformedRequest)
	}
	if tok, err := parseScheme(values[0], "dpop", maxBytes); !errors.Is(err, ErrNoCredential) {
		return tok, true, err
	}
	tok, err := ParseAuthorization(values[0], maxBytes)
	return tok, false, err
}

// ParseAuthorization parses one Authorization header value of the form
// `Bearer <b64token>` (RFC 6750 §2.1). See BearerToken for the errors;
// the syntax is checked before the length, so an over-long token answers
// invalid_token only when it is otherwise well formed.
func ParseAuthorization(value string, maxBytes int) (string, error) {
	return parseScheme(value, "bearer", maxBytes)
}

// parseScheme parses `<scheme> <b64token>`; scheme is lower case.
func parseScheme(value, scheme string, maxBytes int) (string, error) {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxTokenBytes
	}
	if len(value) < len(scheme) || !asciiEqualFold(value[:len(scheme)], scheme) {
		return "", ErrNoCredential
	}
	rest := value[len(scheme):]
	if rest == "" {
		return "", fmt.Errorf("%w: empty bearer token", ErrMalformedRequest)
	}
	if rest[0] != ' ' {
		// "Bearerx..." is another scheme, not ours.
		return "", ErrNoCredential
	}
	// RFC 9110 allows 1*SP between scheme and credentials.
	i := 0
	for i < len(rest) && rest[i] == ' ' {
		i++
	}
	tok := rest[i:]
	switch {
	case tok == "":
		return "", fmt.Errorf("%w: empty bearer token", ErrMalformedRequest)
	case !oauthsyntax.IsB64Token(tok):
		return "", fmt.Errorf("%w: bearer token has characters outside the RFC 6750 b64token set", ErrMalformedRequest)
	case len(tok) > maxBytes:
		// Well formed but too long: a verdict on the token (RFC 6750 §3.1).
		return "", InvalidToken(descTooLarge, fmt.Errorf("%w: bearer token longer than %d bytes", ErrInvalidToken, maxBytes))
	}
	return tok, nil
}

func asciiEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
