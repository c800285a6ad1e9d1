package auth

import (
	"encoding/json"
	"strconv"

	"github.com/mcpguard/mcpguard/internal/b64url"
)

// decodePayload decodes the (verified) payload into a claims map,
// rejecting anything but a JSON object and any object, at any depth, with a
// duplicate member name. Member names are matched exactly: "AUD" is not
// "aud".
//
// Nearly every payload is plain ASCII without escapes, which scanPayload
// reads without reflection; anything else (escapes, non-ASCII bytes, deep
// nesting, any syntax it does not expect) goes through encoding/json, so
// that both paths give the same claims and the same verdict on every input
// (FuzzPayloadFastPath).
func decodePayload(p string) (map[string]any, *Error) {
	pb, err := b64url.DecodeString(p)
	if err != nil {
		return nil, malformed("payload is not base64url")
	}
	if claims, dup, ok := scanPayload(pb); ok {
		if dup {
			return nil, malformed("payload has duplicate members")
		}
		return claims, nil
	}
	return decodePayloadJSON(pb)
}

// decodePayloadJSON reads any payload through encoding/json.
func decodePayloadJSON(pb []byte) (map[string]any, *Error) {
	var claims map[string]any
	if err := json.Unmarshal(pb, &claims); err != nil || claims == nil {
		return nil, malformed("payload is not a JSON object")
	}
	if countMembers(pb) != totalMembers(claims) {
		return nil, malformed("payload has duplicate members")
	}
	return claims, nil
}

// fastMaxDepth bounds the nesting scanPayload reads itself (and so its
// recursion); deeper texts go to encoding/json, which allows 10000 levels.
const fastMaxDepth = 64

// scanPayload reads a JSON object made of printable ASCII, without string
// escapes, nested at most fastMaxDepth deep, into the map encoding/json
// would produce. dup reports a member name repeated within one object at
// any depth. ok is false when the text is outside that shape or not valid
// JSON; the caller then asks encoding/json, which gives the verdict.
func scanPayload(pb []byte) (claims map[string]any, dup, ok bool) {
	s := payloadScanner{s: string(pb)}
	i := skipWS(s.s, 0)
	if i >= len(s.s) || s.s[i] != '{' {
		return nil, false, false
	}
	m, i, ok := s.object(i, 1)
	if !ok || skipWS(s.s, i) != len(s.s) {
		return nil, false, false
	}
	return m, s.dup, true
}

// payloadScanner holds the text (one string, so member names and string
// values share its memory rather than each being allocated) and the
// duplicate verdict.
type payloadScanner struct {
	s   string
	dup bool
}

// object reads the object whose '{' is at s[i].
func (p *payloadScanner) object(i, depth int) (map[string]any, int, bool) {
	if depth > fastMaxDepth {
		return nil, 0, false
	}
	hint := 0
	if depth == 1 {
		hint = 16 // a typical access token's claim count
	}
	m := make(map[string]any, hint)
	i = skipWS(p.s, i+1)
	if i < len(p.s) && p.s[i] == '}' {
		return m, i + 1, true
	}
	for {
		k, next, ok := p.str(i)
		if !ok {
			return nil, 0, false
		}
		i = skipWS(p.s, next)
		if i >= len(p.s) || p.s[i] != ':' {
			return nil, 0, false
		}
		v, next, ok := p.value(skipWS(p.s, i+1), depth)
		if !ok {
			return nil, 0, false
		}
		if _, seen := m[k]; seen {
			p.dup = true
		}
		m[k] = v
		i = skipWS(p.s, next)
		if i >= len(p.s) {
			return nil, 0, false
		}
		switch p.s[i] {
		case ',':
			i = skipWS(p.s, i+1)
		case '}':
			return m, i + 1, true
		default:
			return nil, 0, false
		}
	}
}

// array reads the array whose '[' is at s[i]. Like encoding/json it
// returns an empty, non-nil slice for [].
func (p *payloadScanner) array(i, depth int) ([]any, int, bool) {
	if depth > fastMaxDepth {
		return nil, 0, false
	}
	a := make([]any, 0)
	i = skipWS(p.s, i+1)
	if i < len(p.s) && p.s[i] == ']' {
		return a, i + 1, true
	}
	for {
		v, next, ok := p.value(i, depth)
		if !ok {
			return nil, 0, false
		}
		a = append(a, v)
		i = skipWS(p.s, next)
		if i >= len(p.s) {
			return nil, 0, false
		}
		switch p.s[i] {
		case ',':
			i = skipWS(p.s, i+1)
		case ']':
			return a, i + 1, true
		default:
			return nil, 0, false
		}
	}
}

// value reads the value starting at s[i]; depth is that of the enclosing
// object or array.
func (p *payloadScanner) value(i, depth int) (any, int, bool) {
	if i >= len(p.s) {
		return nil, 0, false
	}
	switch c := p.s[i]; {
	case c == '"':
		return p.str(i)
	case c == '{':
		return p.object(i, depth+1)
	case c == '[':
		return p.array(i, depth+1)
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number(i)
	case c == 't':
		return p.literal(i, "true", true)
	case c == 'f':
		return p.literal(i, "false", false)
	case c == 'n':
		return p.literal(i, "null", nil)
	}
	return nil, 0, false
}

func (p *payloadScanner) literal(i int, word string, v any) (any, int, bool) {
	if len(p.s)-i < len(word) || p.s[i:i+len(word)] != word {
		return nil, 0, false
	}
	return v, i + len(word), true
}

// str reads a string at s[i] made only of printable ASCII (0x20-0x7f)
// without escapes: for those bytes the JSON text is the Go string.
func (p *payloadScanner) str(i int) (string, int, bool) {
	if i >= len(p.s) || p.s[i] != '"' {
		return "", 0, false
	}
	for j := i + 1; j < len(p.s); j++ {
		switch c := p.s[j]; {
		case c == '"':
			return p.s[i+1 : j], j + 1, true
		case c < 0x20 || c >= 0x80 || c == '\\':
			return "", 0, false
		}
	}
	return "", 0, false
}

// number reads a JSON number (RFC 8259 §6) at s[i] as encoding/json does
// for an interface value: strconv.ParseFloat of the text, which rounds
// correctly. Integers of at most 15 digits are exact in a float64, so they
// are converted directly with the same result. A number out of float64
// range makes encoding/json fail; here it is left to encoding/json.
func (p *payloadScanner) number(i int) (any, int, bool) {
	s, start := p.s, i
	neg := s[i] == '-'
	if neg {
		i++
	}
	digits := i
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && s[i] >= '1' && s[i] <= '9':
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	default:
		return nil, 0, false
	}
	intEnd := i
	if i < len(s) && s[i] == '.' {
		i++
		if i >= len(s) || s[i] < '0' || s[i] > '9' {
			return nil, 0, false
		}
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if i >= len(s) || s[i] < '0' || s[i] > '9' {
			return nil, 0, false
		}
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	}
	if i == intEnd && intEnd-digits <= 15 {
		var n uint64
		for _, c := range []byte(s[digits:intEnd]) {
			n = n*10 + uint64(c-'0')
		}
		f := float64(n)
		if neg {
			f = -f
		}
		return f, i, true
	}
	f, err := strconv.ParseFloat(s[start:i], 64)
	if err != nil {
		return nil, 0, false
	}
	return f, i, true
}
