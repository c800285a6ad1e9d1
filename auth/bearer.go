package auth

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

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
// query parameter (see hasAccessTokenParam), or an empty or syntactically
// invalid token. A header together with an access_token in a form body is
// just as ambiguous; BearerToken does not read the body — formBodyToken
// does, and Middleware refuses such a request. A
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
	tok, err := parseAuthorization(values[0], maxBytes)
	if errors.Is(err, ErrNoCredential) {
		return "", err
	}
	if queryHasToken(r) {
		return "", fmt.Errorf("%w: access token both in the Authorization header and in the query string", ErrMalformedRequest)
	}
	return tok, err
}

// queryHasToken reports whether r's query carries an access_token
// parameter (RFC 6750 §2.3), as any common parser would see one.
func queryHasToken(r *http.Request) bool {
	return r.URL != nil && r.URL.RawQuery != "" && hasAccessTokenParam(r.URL.RawQuery)
}

// accessTokenParam is the parameter name of RFC 6750 §2.2 and §2.3.
const accessTokenParam = "access_token"

// hasAccessTokenParam reports whether the URL-encoded form or query raw
// (RFC 6750 §2.2, §2.3) has an access_token parameter. It is stricter
// than url.ParseQuery on purpose: pairs are split on '&' and on ';' (which
// some frameworks still treat as a separator, and which url.ParseQuery
// drops with its whole pair), and a name is compared after decoding its
// percent escapes and '+', so "access%5Ftoken" counts. A name with an
// invalid escape is compared as written. Its cost is linear in len(raw)
// and it does not allocate for names without escapes.
func hasAccessTokenParam(raw string) bool {
	for raw != "" {
		var pair string
		if i := strings.IndexAny(raw, "&;"); i >= 0 {
			pair, raw = raw[:i], raw[i+1:]
		} else {
			pair, raw = raw, ""
		}
		name, _, _ := strings.Cut(pair, "=")
		if name == accessTokenParam {
			return true
		}
		if len(name) < len(accessTokenParam) || !strings.ContainsAny(name, "%+") {
			continue
		}
		if dec, err := url.QueryUnescape(name); err == nil && dec == accessTokenParam {
			return true
		}
	}
	return false
}

// maxFormScan bounds how much of an application/x-www-form-urlencoded
// body formBodyToken reads to look for an access_token parameter.
const maxFormScan = 64 << 10

// formBodyToken tells whether r's body carries an access_token parameter
// the way RFC 6750 §2.2 defines (an application/x-www-form-urlencoded
// entity-body), reading at most 64 KiB of it. It returns a body to put in
// place of r.Body (the bytes read followed by the rest, closing r.Body),
// or nil when it read nothing: a request with another content type or
// without a body is not examined. A form body longer than 64 KiB, or one
// that cannot be read, is an error wrapping ErrMalformedRequest: a second
// credential could not be ruled out, so the request must be refused
// (fail closed). r itself is not modified.
func formBodyToken(r *http.Request) (found bool, body io.ReadCloser, err error) {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 || !isForm(r.Header.Get("Content-Type")) {
		return false, nil, nil
	}
	if r.ContentLength > maxFormScan {
		return false, nil, fmt.Errorf("%w: form body of %d bytes is too large to rule out a second access token", ErrMalformedRequest, r.ContentLength)
	}
	buf, rerr := io.ReadAll(io.LimitReader(r.Body, maxFormScan+1))
	body = readCloser{io.MultiReader(bytes.NewReader(buf), r.Body), r.Body}
	switch {
	case rerr != nil:
		return false, body, fmt.Errorf("%w: reading the form body: %w", ErrMalformedRequest, rerr)
	case len(buf) > maxFormScan:
		return false, body, fmt.Errorf("%w: form body longer than %d bytes is too large to rule out a second access token", ErrMalformedRequest, maxFormScan)
	}
	return hasAccessTokenParam(string(buf)), body, nil
}

type readCloser struct {
	io.Reader
	io.Closer
}

// isForm reports whether a Content-Type names
// application/x-www-form-urlencoded (RFC 6750 §2.2), with any parameters.
// It compares the media type before any ';' (case-insensitively, around
// spaces), without allocating: it runs on every authenticated request.
func isForm(ct string) bool {
	mt, _, _ := strings.Cut(ct, ";")
	return asciiEqualFold(strings.Trim(mt, " \t"), "application/x-www-form-urlencoded")
}

// accessToken is BearerToken that also recognises the DPoP scheme (RFC 9449
// §7.1) when allowDPoP is set: it returns the token and whether it came with
// the DPoP scheme. Without allowDPoP a DPoP credential is ErrNoCredential,
// as any unknown scheme is.
func accessToken(r *http.Request, maxBytes int, allowDPoP bool) (token string, dpop bool, err error) {
	if !allowDPoP {
		tok, err := BearerToken(r, maxBytes)
		return tok, false, err
	}
	values := r.Header.Values("Authorization")
	switch len(values) {
	case 0:
		// A token only in the query string is ignored, as in BearerToken.
		return "", false, ErrNoCredential
	case 1:
	default:
		return "", false, fmt.Errorf("%w: more than one Authorization header", ErrMalformedRequest)
	}
	tok, err := parseScheme(values[0], "dpop", maxBytes)
	dpop = !errors.Is(err, ErrNoCredential)
	if !dpop {
		tok, err = parseAuthorization(values[0], maxBytes)
		if errors.Is(err, ErrNoCredential) {
			return "", false, err
		}
	}
	if queryHasToken(r) {
		return "", false, fmt.Errorf("%w: access token both in the Authorization header and in the query string", ErrMalformedRequest)
	}
	return tok, dpop, err
}

// parseAuthorization parses one Authorization header value of the form
// `Bearer <b64token>` (RFC 6750 §2.1). See BearerToken for the errors;
// the syntax is checked before the length, so an over-long token answers
// invalid_token only when it is otherwise well formed.
func parseAuthorization(value string, maxBytes int) (string, error) {
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
