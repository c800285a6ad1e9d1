// Package redact bounds and encodes untrusted text for logs and audit
// records, so that no value can end a log line, forge a second record,
// reorder text on a terminal or grow a record without limit.
//
// It is internal to mcpguard: audit uses it for every free-text field.
//
// Dependencies: the standard library only.
package redact

import (
	"strings"
	"unicode/utf8"
)

// Ellipsis marks a value that was cut to its length bound.
const Ellipsis = "…"

// Redacted replaces a value that must not be recorded.
const Redacted = "[REDACTED]"

const hexDigits = "0123456789abcdef"

// unsafeRune reports whether r must never appear raw in a log line: C0 and
// C1 controls, DEL, the Unicode line and paragraph separators, and the
// bidirectional overrides and isolates that reorder text on screen.
func unsafeRune(r rune) bool {
	switch {
	case r < 0x20, r >= 0x7f && r <= 0x9f:
		return true
	case r == 0x2028, r == 0x2029:
		return true
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
		return true
	case r == 0xfeff:
		return true
	}
	return false
}

// cut returns the length of the prefix of s kept under a bound of max
// bytes, and whether s was cut. The cut never splits a valid UTF-8
// sequence.
func cut(s string, max int) (int, bool) {
	if len(s) <= max {
		return len(s), false
	}
	if max <= 0 {
		return 0, true
	}
	n := max
	// Step back over continuation bytes so a multi-byte rune is kept
	// whole or dropped whole (at most 3 steps for valid UTF-8).
	for i := 0; i < utf8.UTFMax-1 && n > 0 && !utf8.RuneStart(s[n]); i++ {
		n--
	}
	return n, true
}

// clean reports whether s is printable ASCII only (the fast path).
func clean(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f {
			return false
		}
	}
	return true
}

// Text returns s with at most max bytes of it kept (cut at a rune boundary
// and marked with Ellipsis) and every unsafe character written as visible
// escape text: \n, \r, \t, \xNN for other bytes below 0x80 and for invalid
// UTF-8, \uNNNN for unsafe runes. The result never contains a control
// character, a line or paragraph separator or a bidi override, so any log
// handler prints it on one line as it is.
//
// Text does not allocate when s is printable ASCII within the bound.
// A non-positive max keeps nothing.
func Text(s string, max int) string {
	if len(s) <= max && clean(s) {
		return s
	}
	n, truncated := cut(s, max)
	s = s[:n]
	safe := true
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && size == 1) || unsafeRune(r) {
			safe = false
			break
		}
		i += size
	}
	if safe {
		if truncated {
			return s + Ellipsis
		}
		return s
	}
	b := make([]byte, 0, len(s)+16)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, '\\', 'x', hexDigits[s[i]>>4], hexDigits[s[i]&0xf])
		case r == '\n':
			b = append(b, '\\', 'n')
		case r == '\r':
			b = append(b, '\\', 'r')
		case r == '\t':
			b = append(b, '\\', 't')
		case r < 0x80 && unsafeRune(r):
			b = append(b, '\\', 'x', hexDigits[r>>4], hexDigits[r&0xf])
		case unsafeRune(r):
			b = appendU(b, r)
		default:
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	if truncated {
		b = append(b, Ellipsis...)
	}
	return string(b)
}

func appendU(b []byte, r rune) []byte {
	return append(b, '\\', 'u',
		hexDigits[(r>>12)&0xf], hexDigits[(r>>8)&0xf], hexDigits[(r>>4)&0xf], hexDigits[r&0xf])
}

// AppendJSONString appends s to dst as a JSON string literal (RFC 8259 §7),
// keeping at most max bytes of s (cut at a rune boundary and marked with
// Ellipsis). Besides what JSON requires (quote, backslash, controls below
// 0x20) it escapes DEL, C1 controls, U+2028, U+2029, bidi overrides and
// the byte-order mark, and replaces invalid UTF-8 with \ufffd, so the
// literal is plain printable text that decodes back to the kept value.
func AppendJSONString(dst []byte, s string, max int) []byte {
	n, truncated := cut(s, max)
	s = s[:n]
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c < 0x7f && c != '"' && c != '\\' {
			i++
			continue
		}
		if c < 0x80 {
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = appendU(dst, rune(c))
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		if unsafeRune(r) {
			dst = append(dst, s[start:i]...)
			dst = appendU(dst, r)
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	if truncated {
		dst = append(dst, Ellipsis...)
	}
	return append(dst, '"')
}

// LooksLikeToken reports whether s contains something shaped like a bearer
// credential: a JWT (a run starting "eyJ" with at least two dots) or a
// run of 40 or more base64url characters mixing upper case, lower case and
// digits (an opaque token or API key). It is a second line of defence for
// values an operator chose to record; the first is never reading
// credentials at all. UUIDs and hex digests do not match.
func LooksLikeToken(s string) bool {
	for i := 0; i < len(s); {
		if !tokenByte(s[i]) {
			i++
			continue
		}
		j := i
		var upper, lower, digit bool
		dots := 0
		for j < len(s) && tokenByte(s[j]) {
			switch c := s[j]; {
			case c >= 'A' && c <= 'Z':
				upper = true
			case c >= 'a' && c <= 'z':
				lower = true
			case c >= '0' && c <= '9':
				digit = true
			case c == '.':
				dots++
			}
			j++
		}
		run := s[i:j]
		if len(run) >= 3 && run[:3] == "eyJ" && dots >= 2 {
			return true
		}
		if len(run) >= 40 && upper && lower && digit {
			return true
		}
		i = j
	}
	return false
}

func tokenByte(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' ||
		c == '-' || c == '_' || c == '.' || c == '~' || c == '+' || c == '/' || c == '='
}

// URI returns uri as it may be recorded: without its query and fragment
// (where a client may put an access_token, RFC 6750 §2.3) and with the
// userinfo of its authority (RFC 3986 §3.2.1: "user:password@", or a token
// used as the user name, as in https://TOKEN@host/) replaced by Redacted,
// so "db://admin:pw@host/t?x=1" becomes "db://[REDACTED]@host/t". A URI
// without an authority ("//" right after the scheme) keeps its path as it
// is. It does not bound or escape the result: Text and AppendJSONString
// still do that.
func URI(uri string) string {
	if i := strings.IndexAny(uri, "?#"); i >= 0 {
		uri = uri[:i]
	}
	// The authority starts at "//", right after "scheme:" (or at the start
	// of a network-path reference), and ends at the next "/".
	slash := strings.IndexByte(uri, '/')
	if slash < 0 || !strings.HasPrefix(uri[slash:], "//") || (slash > 0 && uri[slash-1] != ':') {
		return uri
	}
	start := slash + 2
	authority := uri[start:]
	if end := strings.IndexByte(authority, '/'); end >= 0 {
		authority = authority[:end]
	}
	at := strings.LastIndexByte(authority, '@')
	if at < 0 {
		return uri
	}
	return uri[:start] + Redacted + uri[start+at:]
}
