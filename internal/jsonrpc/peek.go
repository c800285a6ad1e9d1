// Package jsonrpc reads the routing fields of a JSON-RPC request body
// without consuming it, for decisions at the HTTP edge.
//
// Dependencies: the standard library only.
package jsonrpc

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// MaxPeekBytes is the largest body Peek will look at.
const MaxPeekBytes = 4 << 20

// ErrAmbiguous reports a body whose routing members could be read
// differently by different decoders: a duplicate member, or a member whose
// name differs from "jsonrpc", "id", "method", "params", "name" or "uri" only
// in letter case (encoding/json matches struct fields case-insensitively, so
// {"name":"a","NAME":"b"} dispatches "b" there and "a" elsewhere).
var ErrAmbiguous = errors.New("jsonrpc: ambiguous request body")

// ErrMalformed reports a body that is not a single JSON-RPC request object.
var ErrMalformed = errors.New("jsonrpc: malformed request body")

// Message holds the routing fields of one JSON-RPC message.
type Message struct {
	// ID is the raw JSON of the "id" member, nil for notifications.
	ID json.RawMessage
	// Method is the "method" member ("tools/call"), empty for responses.
	Method string
	// Name is params.name (tools/call, prompts/get), empty otherwise.
	Name string
	// URI is params.uri (resources/read), empty otherwise.
	URI string
}

// Peek decodes the routing fields of body exactly as encoding/json decodes
// them into mcp-go's request types, and refuses bodies where that reading
// could differ from another decoder's (see ErrAmbiguous). It does not modify
// body. A JSON array (a batch) is reported as ErrMalformed: MCP no longer
// allows batches, and mcp-go rejects them too. Peek does not fully validate
// the JSON: what it accepts, mcp-go still parses and may reject.
func Peek(body []byte) (Message, error) {
	var m Message
	if len(body) > MaxPeekBytes {
		return m, fmt.Errorf("%w: body larger than %d bytes", ErrMalformed, MaxPeekBytes)
	}
	var idRaw, methodRaw, paramsRaw []byte
	err := members(body, topMembers, func(i int, v []byte) {
		switch i {
		case 1:
			idRaw = v
		case 2:
			methodRaw = v
		case 3:
			paramsRaw = v
		}
	})
	if err != nil {
		return m, err
	}
	if idRaw != nil && string(idRaw) != "null" {
		m.ID = json.RawMessage(idRaw)
	}
	if m.Method = knownMethod(methodRaw); m.Method == "" {
		if m.Method, err = optionalString(methodRaw, "method"); err != nil {
			return m, err
		}
	}
	if len(paramsRaw) == 0 || paramsRaw[0] != '{' {
		return m, nil
	}
	var nameRaw, uriRaw []byte
	err = members(paramsRaw, paramMembers, func(i int, v []byte) {
		if i == 0 {
			nameRaw = v
		} else {
			uriRaw = v
		}
	})
	if err != nil {
		return m, err
	}
	if m.Name, err = optionalString(nameRaw, "params.name"); err != nil {
		return m, err
	}
	if m.URI, err = optionalString(uriRaw, "params.uri"); err != nil {
		return m, err
	}
	return m, nil
}

var (
	topMembers   = []string{"jsonrpc", "id", "method", "params"}
	paramMembers = []string{"name", "uri"}
)

// knownMethods are the MCP methods a request names most often; Peek returns
// these constants instead of allocating a copy of the body's bytes.
var knownMethods = [...]string{
	"tools/call", "tools/list", "prompts/get", "prompts/list",
	"resources/read", "resources/list", "resources/templates/list",
	"initialize", "notifications/initialized", "ping",
	"completion/complete", "logging/setLevel",
	"resources/subscribe", "resources/unsubscribe",
	"notifications/cancelled", "notifications/progress",
	"notifications/roots/list_changed",
}

// knownMethod returns the constant for a raw "method" value that is exactly
// a quoted, unescaped well-known method name, and "" for anything else.
func knownMethod(raw []byte) string {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return ""
	}
	for _, m := range knownMethods {
		if string(raw[1:len(raw)-1]) == m {
			return m
		}
	}
	return ""
}

// optionalString decodes a JSON string value; null or absent gives "".
// A plain ASCII string without escapes is sliced without decoding.
func optionalString(raw []byte, field string) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	if len(raw) < 2 || raw[0] != '"' {
		return "", fmt.Errorf("%w: %s is not a string", ErrMalformed, field)
	}
	if plainASCII(raw[1 : len(raw)-1]) {
		return string(raw[1 : len(raw)-1]), nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fmt.Errorf("%w: %s is not a string", ErrMalformed, field)
	}
	return s, nil
}

func plainASCII(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c >= 0x80 || c == '\\' || c == '"' {
			return false
		}
	}
	return true
}

// members walks the members of the JSON object obj (one level) and calls fn
// with the index in routing and the raw value of each routing member. It
// reports ErrAmbiguous if a routing member appears twice or under a name
// that encoding/json would also match to it (another letter case, escapes,
// or the Unicode folds encoding/json applies).
func members(obj []byte, routing []string, fn func(i int, value []byte)) error {
	i := skipWS(obj, 0)
	if i >= len(obj) || obj[i] != '{' {
		return fmt.Errorf("%w: not a JSON object", ErrMalformed)
	}
	i = skipWS(obj, i+1)
	var seen [4]bool
	if i < len(obj) && obj[i] == '}' {
		return trailing(obj, i+1)
	}
	for {
		if i >= len(obj) || obj[i] != '"' {
			return fmt.Errorf("%w: expected a member name", ErrMalformed)
		}
		end, esc, err := scanString(obj, i)
		if err != nil {
			return err
		}
		rawName := obj[i+1 : end-1]
		i = skipWS(obj, end)
		if i >= len(obj) || obj[i] != ':' {
			return fmt.Errorf("%w: expected ':'", ErrMalformed)
		}
		vs := skipWS(obj, i+1)
		ve, err := skipValue(obj, vs, 0)
		if err != nil {
			return err
		}
		if idx, err := classify(rawName, esc, routing); err != nil {
			return err
		} else if idx >= 0 {
			if seen[idx] {
				return fmt.Errorf("%w: duplicate member %q", ErrAmbiguous, routing[idx])
			}
			seen[idx] = true
			fn(idx, obj[vs:ve])
		}
		i = skipWS(obj, ve)
		if i >= len(obj) {
			return fmt.Errorf("%w: unterminated object", ErrMalformed)
		}
		if obj[i] == '}' {
			return trailing(obj, i+1)
		}
		if obj[i] != ',' {
			return fmt.Errorf("%w: expected ',' or '}'", ErrMalformed)
		}
		i = skipWS(obj, i+1)
	}
}

func trailing(b []byte, i int) error {
	if skipWS(b, i) != len(b) {
		return fmt.Errorf("%w: data after the object", ErrMalformed)
	}
	return nil
}

// classify returns the index of the routing member rawName names, -1 when
// it names none, or ErrAmbiguous when it matches one only loosely.
func classify(rawName []byte, escaped bool, routing []string) (int, error) {
	if !escaped && plainASCII(rawName) {
		for i, want := range routing {
			if string(rawName) == want {
				return i, nil
			}
			if asciiEqualFold(rawName, want) {
				return -1, fmt.Errorf("%w: member %q differs from %q only in case", ErrAmbiguous, rawName, want)
			}
		}
		return -1, nil
	}
	// Escaped or non-ASCII: fold as encoding/json would, then compare.
	// Any loose match is ambiguous.
	folded, n, err := foldName(rawName)
	if err != nil {
		return -1, err
	}
	for _, want := range routing {
		if n >= 0 && string(folded[:n]) == want {
			return -1, fmt.Errorf("%w: member name %q is an escaped or folded form of %q", ErrAmbiguous, rawName, want)
		}
	}
	return -1, nil
}

// maxFolded bounds the routing names foldName can fold to; the longest is
// "jsonrpc".
const maxFolded = 8

// foldName folds the member name whose raw JSON string contents are raw
// as encoding/json matches names to fields, without decoding it into a
// new string: it returns the folded name in lower case and its length,
// or a length of -1 when the name has a character no ASCII letter folds
// with or is longer than maxFolded letters (no routing name, all of them
// lower-case ASCII letters, then matches it). Unicode simple folding
// relates "k" to "K" (U+212A KELVIN SIGN) and "s" to "ſ" (U+017F LATIN
// SMALL LETTER LONG S) besides their ASCII capitals, and no other letter
// to any character beyond ASCII. An escape encoding/json would refuse is
// ErrMalformed.
//
// Peek decoded every escaped or non-ASCII member name with json.Unmarshal,
// and folded it with a strings.Replacer built per routing name: a body of
// such names took twenty times as long to peek as encoding/json takes to
// decode it (found in review). foldName allocates nothing.
func foldName(raw []byte) ([maxFolded]byte, int, error) {
	var out [maxFolded]byte
	n := 0
	for i := 0; i < len(raw); {
		var r rune
		switch c := raw[i]; {
		case c == '\\':
			if i+1 >= len(raw) {
				return out, 0, fmt.Errorf("%w: bad member name", ErrMalformed)
			}
			switch raw[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				r, i = 0, i+2 // folds with no letter
			case 'u':
				v, ok := hex4(raw[i+2:])
				if !ok {
					return out, 0, fmt.Errorf("%w: bad member name", ErrMalformed)
				}
				// A surrogate, paired or not, is no letter either way.
				r, i = v, i+6
			default:
				return out, 0, fmt.Errorf("%w: bad member name", ErrMalformed)
			}
		case c < utf8.RuneSelf:
			r, i = rune(c), i+1
		default:
			var size int
			r, size = utf8.DecodeRune(raw[i:]) // invalid UTF-8: U+FFFD, as encoding/json reads it
			i += size
		}
		var l byte
		switch {
		case 'a' <= r && r <= 'z':
			l = byte(r)
		case 'A' <= r && r <= 'Z':
			l = byte(r) + 'a' - 'A'
		case r == '\u212a':
			l = 'k'
		case r == '\u017f':
			l = 's'
		}
		if l == 0 || n < 0 || n == maxFolded {
			n = -1 // matches no routing name; read on for bad escapes
			continue
		}
		out[n] = l
		n++
	}
	return out, n, nil
}

// hex4 decodes the four hex digits at the start of b.
func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var v rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		v = v<<4 | rune(c)
	}
	return v, true
}

func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		x, y := b[i], s[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

const maxDepth = 10000 // encoding/json's own nesting limit

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// scanString returns the index just past the string starting at b[i] == '"'
// and whether it contains escapes.
func scanString(b []byte, i int) (int, bool, error) {
	esc := false
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			return j + 1, esc, nil
		case c == '\\':
			esc = true
			j++
		case c < 0x20:
			return 0, false, fmt.Errorf("%w: control character in string", ErrMalformed)
		}
	}
	return 0, false, fmt.Errorf("%w: unterminated string", ErrMalformed)
}

// skipValue returns the index just past the JSON value starting at b[i].
func skipValue(b []byte, i, depth int) (int, error) {
	if i >= len(b) {
		return 0, fmt.Errorf("%w: missing value", ErrMalformed)
	}
	switch c := b[i]; {
	case c == '"':
		end, _, err := scanString(b, i)
		return end, err
	case c == '{' || c == '[':
		if depth >= maxDepth {
			return 0, fmt.Errorf("%w: nested too deeply", ErrMalformed)
		}
		closer := byte('}')
		if c == '[' {
			closer = ']'
		}
		i = skipWS(b, i+1)
		if i < len(b) && b[i] == closer {
			return i + 1, nil
		}
		for {
			if c == '{' {
				if i >= len(b) || b[i] != '"' {
					return 0, fmt.Errorf("%w: expected a member name", ErrMalformed)
				}
				end, _, err := scanString(b, i)
				if err != nil {
					return 0, err
				}
				i = skipWS(b, end)
				if i >= len(b) || b[i] != ':' {
					return 0, fmt.Errorf("%w: expected ':'", ErrMalformed)
				}
				i = skipWS(b, i+1)
			}
			end, err := skipValue(b, i, depth+1)
			if err != nil {
				return 0, err
			}
			i = skipWS(b, end)
			if i >= len(b) {
				return 0, fmt.Errorf("%w: unterminated value", ErrMalformed)
			}
			if b[i] == closer {
				return i + 1, nil
			}
			if b[i] != ',' {
				return 0, fmt.Errorf("%w: expected ','", ErrMalformed)
			}
			i = skipWS(b, i+1)
		}
	default:
		// number, true, false, null: run to the next delimiter.
		j := i
		for j < len(b) && !bytesContains(",}] \t\r\n", b[j]) {
			j++
		}
		if j == i {
			return 0, fmt.Errorf("%w: unexpected character", ErrMalformed)
		}
		return j, nil
	}
}

func bytesContains(set string, c byte) bool { return strings.IndexByte(set, c) >= 0 }
