package auth

import (
	"encoding/json"
	"math"
	"strings"
	"time"
)

// Claims is a read-only view of the verified claims of a token.
//
// The zero value holds no claims. A Claims value is safe for concurrent use
// because none of its methods modify it; the map handed to NewClaims must not
// be modified afterwards.
type Claims struct {
	m map[string]any
}

// NewClaims wraps m, which must hold the claims as decoded by encoding/json
// (string, float64 or json.Number, bool, nil, []any, map[string]any).
// NewClaims takes ownership of m: the caller must not modify it afterwards.
func NewClaims(m map[string]any) Claims { return Claims{m: m} }

// Len reports the number of top-level claims.
func (c Claims) Len() int { return len(c.m) }

// Map returns a deep copy of the claims, safe for the caller to modify.
func (c Claims) Map() map[string]any {
	out, _ := deepCopy(c.m).(map[string]any)
	return out
}

// Get returns the claim at path. A top-level member whose name is exactly path
// wins (so namespaced claims such as "https://example.com/roles" and
// "cognito:groups" work); otherwise path is split at dots and followed
// through nested objects, as in "realm_access.roles" or
// "resource_access.my-client.roles". The value must not be modified.
func (c Claims) Get(path string) (any, bool) {
	if c.m == nil || path == "" {
		return nil, false
	}
	if v, ok := c.m[path]; ok {
		return v, true
	}
	if !strings.Contains(path, ".") {
		return nil, false
	}
	var cur any = c.m
	for part := range strings.SplitSeq(path, ".") {
		obj, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = obj[part]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// String returns the claim at path when it is a JSON string.
func (c Claims) String(path string) (string, bool) {
	v, ok := c.Get(path)
	if !ok {
		return "", false
	}
	s, ok := v.(string)
	return s, ok
}

// Strings returns the claim at path as a list of strings: a JSON string gives
// a one-element list (it is not split), an array of strings gives its
// elements. An array holding anything but strings reports false.
func (c Claims) Strings(path string) ([]string, bool) {
	v, ok := c.Get(path)
	if !ok {
		return nil, false
	}
	switch v := v.(type) {
	case string:
		return []string{v}, true
	case []string:
		return append([]string(nil), v...), true
	case []any:
		out := make([]string, 0, len(v))
		for _, e := range v {
			s, ok := e.(string)
			if !ok {
				return nil, false
			}
			out = append(out, s)
		}
		return out, true
	}
	return nil, false
}

// Bool returns the claim at path when it is a JSON boolean.
func (c Claims) Bool(path string) (bool, bool) {
	v, ok := c.Get(path)
	if !ok {
		return false, false
	}
	b, ok := v.(bool)
	return b, ok
}

// Time returns the claim at path as a NumericDate (RFC 7519 §2): seconds since
// the Unix epoch, possibly fractional. Non-numeric or non-finite values
// report false.
func (c Claims) Time(path string) (time.Time, bool) {
	v, ok := c.Get(path)
	if !ok {
		return time.Time{}, false
	}
	var f float64
	switch v := v.(type) {
	case float64:
		f = v
	case json.Number:
		var err error
		if f, err = v.Float64(); err != nil {
			return time.Time{}, false
		}
	case int64:
		f = float64(v)
	case int:
		f = float64(v)
	default:
		return time.Time{}, false
	}
	if math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > 1e11 {
		return time.Time{}, false
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC(), true
}

func deepCopy(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[k] = deepCopy(e)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = deepCopy(e)
		}
		return out
	case []string:
		return append([]string(nil), v...)
	}
	return v
}
