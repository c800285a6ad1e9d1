// Package b64url decodes unpadded base64url (RFC 4648 §5) exactly, for
// the parsers of untrusted input that need one encoding per byte string.
//
// encoding/base64's Strict mode refuses padding and non-zero trailing
// bits, but it still skips carriage returns and line feeds anywhere in
// the input, so "ab\ncd" and "abcd" decode alike. A compact JWS whose
// signature segment carries a line break would then verify as well as the
// token it came from while being another string: another cache key,
// another digest for revocation lists. Decode and DecodeString refuse
// every byte outside the 64 characters of the alphabet first.
package b64url

import "encoding/base64"

var strict = base64.RawURLEncoding.Strict()

// alphabet[c] is true for the characters of the base64url alphabet.
var alphabet = func() (t [256]bool) {
	for _, c := range []byte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") {
		t[c] = true
	}
	return t
}()

// invalid returns the index of the first byte of s outside the alphabet,
// or -1.
func invalid[T string | []byte](s T) int {
	for i := 0; i < len(s); i++ {
		if !alphabet[s[i]] {
			return i
		}
	}
	return -1
}

// Valid reports whether s holds only characters of the base64url
// alphabet. It does not check that s has a decodable length.
func Valid(s string) bool { return invalid(s) < 0 }

// DecodeString decodes s, unpadded base64url with zero trailing bits and
// nothing outside the alphabet. A bad byte is reported as a
// base64.CorruptInputError at its index.
func DecodeString(s string) ([]byte, error) {
	if i := invalid(s); i >= 0 {
		return nil, base64.CorruptInputError(i)
	}
	return strict.DecodeString(s)
}

// Decode is DecodeString into dst, which must hold
// base64.RawURLEncoding.DecodedLen(len(src)) bytes; it returns the number
// written.
func Decode(dst, src []byte) (int, error) {
	if i := invalid(src); i >= 0 {
		return 0, base64.CorruptInputError(i)
	}
	return strict.Decode(dst, src)
}
