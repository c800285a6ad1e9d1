package auth

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Client-safe descriptions of JWT rejections (RFC 6750 error_description).
// They never depend on the token.
const (
	descMalformed      = "the access token is malformed"
	descTooLarge       = "the access token is too large"
	descAlgorithm      = "the token's signing algorithm is not accepted"
	descType           = "the token's type is not accepted"
	descCritical       = "the token uses an unsupported critical header"
	descUnknownKey     = "the token's signing key is unknown"
	descKeyIDRequired  = "the token does not name its signing key"
	descKeyMismatch    = "the token's signing key does not match its algorithm"
	descSignature      = "the token's signature is invalid"
	descExpired        = "the access token has expired"
	descMissingExp     = "the access token has no expiry"
	descNotYetValid    = "the access token is not yet valid"
	descIssuedInFuture = "the access token was issued in the future"
	descIssuer         = "the token's issuer is not accepted"
	descAudience       = "the token's audience does not match this resource"
	descClient         = "the token's client is not accepted"
	descMissingClaim   = "the access token lacks a required claim"
	descTokenUse       = "the token is not an access token"
	descScope          = "the scope claim is malformed"
	descKeysUnavail    = "the signing keys are temporarily unavailable"
)

// jws is a compact JWS (RFC 7515 §7.1) split and pre-checked, its
// signature not yet verified.
type jws struct {
	alg, kid, typ string
	hasKID        bool
	signingInput  string // header "." payload, as received
	payloadB64    string
	sig           []byte
}

// maxKIDLen bounds the key ID; real ones are far shorter.
const maxKIDLen = 256

var b64 = base64.RawURLEncoding.Strict()

// parseJWS performs every check that needs no key: the size (before
// anything else), the three segments, strict base64url, and the protected
// header — a JSON object without duplicate members whose "alg" is a string,
// whose "kid" and "typ" are strings when present, and which carries no
// "crit" (RFC 7515 §4.1.11: we understand no extension, so any critical
// one is a rejection), no "cty" (nested JWTs are not accepted) and no
// JWE-only member. Header members that point at keys (jku, jwk, x5u, x5c)
// are ignored, never followed.
func parseJWS(token string, maxSize int) (jws, *Error) {
	var t jws
	if len(token) > maxSize {
		return t, InvalidToken(descTooLarge, fmt.Errorf("%w: token longer than %d bytes", ErrInvalidToken, maxSize))
	}
	d1 := strings.IndexByte(token, '.')
	if d1 < 0 {
		return t, malformed("not a compact JWS")
	}
	d2 := strings.IndexByte(token[d1+1:], '.')
	if d2 < 0 {
		return t, malformed("not a compact JWS")
	}
	d2 += d1 + 1
	if strings.IndexByte(token[d2+1:], '.') >= 0 {
		return t, malformed("more than three segments (a JWE or nested token?)")
	}
	h, p, s := token[:d1], token[d1+1:d2], token[d2+1:]
	if h == "" || p == "" || s == "" {
		return t, malformed("empty segment")
	}
	hb, err := b64.DecodeString(h)
	if err != nil {
		return t, malformed("header is not base64url")
	}
	if t.sig, err = b64.DecodeString(s); err != nil {
		return t, malformed("signature is not base64url")
	}
	if err := parseHeader(hb, &t); err != nil {
		return t, err
	}
	t.signingInput = token[:d2]
	t.payloadB64 = p
	return t, nil
}

func parseHeader(hb []byte, t *jws) *Error {
	var hdr map[string]any
	if err := json.Unmarshal(hb, &hdr); err != nil || hdr == nil {
		return malformed("header is not a JSON object")
	}
	if countMembers(hb) != totalMembers(hdr) {
		return malformed("header has duplicate members")
	}
	alg, ok := hdr["alg"].(string)
	if !ok || alg == "" {
		return malformed(`header "alg" is missing or not a string`)
	}
	t.alg = alg
	if v, present := hdr["kid"]; present {
		kid, ok := v.(string)
		if !ok || kid == "" || len(kid) > maxKIDLen {
			return malformed(`header "kid" is not a non-empty string of sane length`)
		}
		t.kid, t.hasKID = kid, true
	}
	if v, present := hdr["typ"]; present {
		typ, ok := v.(string)
		if !ok {
			return malformed(`header "typ" is not a string`)
		}
		t.typ = typ
	}
	if _, present := hdr["crit"]; present {
		return InvalidToken(descCritical, fmt.Errorf(`%w: header carries "crit" (RFC 7515 §4.1.11), no extension is understood`, ErrInvalidToken))
	}
	for _, m := range [...]string{"cty", "enc", "zip"} {
		if _, present := hdr[m]; present {
			return InvalidToken(descType, fmt.Errorf("%w: header member %q is not accepted (nested or encrypted token)", ErrInvalidToken, m))
		}
	}
	return nil
}

// decodePayload decodes the (verified) payload into a claims map,
// rejecting anything but a JSON object and any object, at any depth, with a
// duplicate member name. Member names are matched exactly: "AUD" is not
// "aud".
func decodePayload(p string) (map[string]any, *Error) {
	pb, err := b64.DecodeString(p)
	if err != nil {
		return nil, malformed("payload is not base64url")
	}
	var claims map[string]any
	if err := json.Unmarshal(pb, &claims); err != nil || claims == nil {
		return nil, malformed("payload is not a JSON object")
	}
	if countMembers(pb) != totalMembers(claims) {
		return nil, malformed("payload has duplicate members")
	}
	return claims, nil
}

// countMembers counts the object members in a valid JSON text: the colons
// outside strings.
func countMembers(b []byte) int {
	n := 0
	inString := false
	for i := 0; i < len(b); i++ {
		c := b[i]
		if inString {
			switch c {
			case '\\':
				i++
			case '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case ':':
			n++
		}
	}
	return n
}

// totalMembers counts the members of every object in a decoded JSON value.
// When it is smaller than countMembers of the text, a duplicate member was
// collapsed by the decoder.
func totalMembers(v any) int {
	switch v := v.(type) {
	case map[string]any:
		n := len(v)
		for _, e := range v {
			switch e.(type) {
			case map[string]any, []any:
				n += totalMembers(e)
			}
		}
		return n
	case []any:
		n := 0
		for _, e := range v {
			switch e.(type) {
			case map[string]any, []any:
				n += totalMembers(e)
			}
		}
		return n
	}
	return 0
}

var errMalformed = errors.New("malformed token")

func malformed(detail string) *Error {
	return InvalidToken(descMalformed, fmt.Errorf("%w: %w: %s", ErrInvalidToken, errMalformed, detail))
}
