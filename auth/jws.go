package auth

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/mcpguard/mcpguard/internal/b64url"
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
	hb, err := b64url.DecodeString(h)
	if err != nil {
		return t, malformed("header is not base64url")
	}
	if t.sig, err = b64url.DecodeString(s); err != nil {
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
	h, ok, err := scanFlatHeader(hb)
	if err != nil {
		return err
	}
	if !ok {
		if h, err = decodeHeader(hb); err != nil {
			return err
		}
	}
	return h.apply(t)
}

// hdrFields is what the header checks need, however the header was read.
type hdrFields struct {
	alg, kid, typ          string
	hasAlg, hasKID, hasTyp bool
	algStr, kidStr, typStr bool // the member is a JSON string
	crit, cty, enc, zip    bool
}

func (h *hdrFields) apply(t *jws) *Error {
	if !h.hasAlg || !h.algStr || h.alg == "" {
		return malformed(`header "alg" is missing or not a string`)
	}
	t.alg = h.alg
	if h.hasKID {
		if !h.kidStr || h.kid == "" || len(h.kid) > maxKIDLen {
			return malformed(`header "kid" is not a non-empty string of sane length`)
		}
		t.kid, t.hasKID = h.kid, true
	}
	if h.hasTyp {
		if !h.typStr {
			return malformed(`header "typ" is not a string`)
		}
		t.typ = h.typ
	}
	if h.crit {
		return InvalidToken(descCritical, fmt.Errorf(`%w: header carries "crit" (RFC 7515 §4.1.11), no extension is understood`, ErrInvalidToken))
	}
	for _, m := range [...]struct {
		name    string
		present bool
	}{{"cty", h.cty}, {"enc", h.enc}, {"zip", h.zip}} {
		if m.present {
			return InvalidToken(descType, fmt.Errorf("%w: header member %q is not accepted (nested or encrypted token)", ErrInvalidToken, m.name))
		}
	}
	return nil
}

// set records one member; v is a string when str is true.
func (h *hdrFields) set(name string, v string, str bool) {
	switch name {
	case "alg":
		h.alg, h.hasAlg, h.algStr = v, true, str
	case "kid":
		h.kid, h.hasKID, h.kidStr = v, true, str
	case "typ":
		h.typ, h.hasTyp, h.typStr = v, true, str
	case "crit":
		h.crit = true
	case "cty":
		h.cty = true
	case "enc":
		h.enc = true
	case "zip":
		h.zip = true
	}
}

// decodeHeader reads any header through encoding/json.
func decodeHeader(hb []byte) (hdrFields, *Error) {
	var h hdrFields
	var m map[string]any
	if err := json.Unmarshal(hb, &m); err != nil || m == nil {
		return h, malformed("header is not a JSON object")
	}
	if countMembers(hb) != totalMembers(m) {
		return h, malformed("header has duplicate members")
	}
	for k, v := range m {
		s, ok := v.(string)
		h.set(k, s, ok)
	}
	return h, nil
}

// scanFlatHeader reads, without reflection, the header shape nearly every
// token has: one JSON object whose members are all printable-ASCII strings
// without escapes, such as {"alg":"RS256","kid":"k1","typ":"JWT"}. ok is
// false for anything else, which decodeHeader then reads; for the inputs it
// accepts it must agree with decodeHeader exactly (FuzzHeaderFastPath).
func scanFlatHeader(b []byte) (h hdrFields, ok bool, err *Error) {
	const maxMembers = 8
	var keys [maxMembers][]byte
	n := 0
	i := skipWS(b, 0)
	if i >= len(b) || b[i] != '{' {
		return h, false, nil
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		i++
	} else {
		for {
			k, next, ok := flatString(b, i)
			if !ok || n == maxMembers {
				return h, false, nil
			}
			i = skipWS(b, next)
			if i >= len(b) || b[i] != ':' {
				return h, false, nil
			}
			v, next, ok := flatString(b, skipWS(b, i+1))
			if !ok {
				return h, false, nil
			}
			for _, prev := range keys[:n] {
				if string(prev) == string(k) {
					return h, false, malformed("header has duplicate members")
				}
			}
			keys[n] = k
			n++
			h.set(string(k), internHeaderValue(v), true)
			i = skipWS(b, next)
			if i < len(b) && b[i] == ',' {
				i = skipWS(b, i+1)
				continue
			}
			if i < len(b) && b[i] == '}' {
				i++
				break
			}
			return h, false, nil
		}
	}
	if skipWS(b, i) != len(b) {
		return h, false, nil
	}
	return h, true, nil
}

// flatString reads a JSON string at b[i] made only of printable ASCII
// without escapes, returning its content and the index after it.
func flatString(b []byte, i int) ([]byte, int, bool) {
	if i >= len(b) || b[i] != '"' {
		return nil, 0, false
	}
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			return b[i+1 : j], j + 1, true
		case c < 0x20 || c > 0x7e || c == '\\':
			return nil, 0, false
		}
	}
	return nil, 0, false
}

func skipWS[T string | []byte](b T, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// internHeaderValue returns common header values without allocating.
func internHeaderValue(v []byte) string {
	switch string(v) {
	case "RS256":
		return "RS256"
	case "PS256":
		return "PS256"
	case "ES256":
		return "ES256"
	case "EdDSA":
		return "EdDSA"
	case "JWT":
		return "JWT"
	case "at+jwt":
		return "at+jwt"
	}
	return string(v)
}

// countMembers counts the object members in a valid JSON text: the colons
// outside strings. It jumps from quote to quote with bytes.IndexByte.
func countMembers(b []byte) int {
	n := 0
	for {
		q := bytes.IndexByte(b, '"')
		if q < 0 {
			return n + bytes.Count(b, colon)
		}
		n += bytes.Count(b[:q], colon)
		b = b[q+1:]
		// Skip the string: its end is the first quote preceded by an even
		// number of backslashes.
		for {
			e := bytes.IndexByte(b, '"')
			if e < 0 {
				return n // unterminated; cannot happen in valid JSON
			}
			k := 0
			for k < e && b[e-1-k] == '\\' {
				k++
			}
			b = b[e+1:]
			if k%2 == 0 {
				break
			}
		}
	}
}

var colon = []byte{':'}

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
