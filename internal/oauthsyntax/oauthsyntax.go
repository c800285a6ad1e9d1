// Package oauthsyntax holds the character-level checks of the OAuth 2.0
// grammar that several mcpguard packages apply to untrusted input: the
// RFC 6749 §3.3 scope-token and the RFC 6750 §2.1 b64token.
//
// Each check has exactly one definition and one documented length cap here,
// so auth, authz and obo accept and reject the same strings. The functions
// are pure, allocation-free and safe for concurrent use. The package imports
// only the standard library.
//
// Dependencies: the standard library only.
package oauthsyntax

// MaxScopeTokenBytes caps the length of one scope-token. RFC 6749 sets no
// limit; real scopes are short names or URLs, so a longer value is treated
// as a mistake or an attack rather than a scope.
const MaxScopeTokenBytes = 256

// IsScopeChar reports whether c may appear in an RFC 6749 §3.3 scope-token:
// %x21 / %x23-5B / %x5D-7E (printable ASCII without space, '"' and '\').
func IsScopeChar(c byte) bool {
	return c == 0x21 || (c >= 0x23 && c <= 0x5b) || (c >= 0x5d && c <= 0x7e)
}

// IsScopeToken reports whether s is a scope-token of RFC 6749 §3.3
// (scope-token = 1*( %x21 / %x23-5B / %x5D-7E )) of at most
// MaxScopeTokenBytes bytes.
func IsScopeToken(s string) bool {
	if s == "" || len(s) > MaxScopeTokenBytes {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !IsScopeChar(s[i]) {
			return false
		}
	}
	return true
}

// IsB64Token reports whether s matches RFC 6750 §2.1's
// b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
//
// It sets no length cap of its own: the token's length limit is the
// caller's configuration (auth's MaxTokenBytes), checked before or after.
// It runs on every request over the whole token, so it is a table lookup
// per byte rather than a chain of comparisons.
func IsB64Token(s string) bool {
	i := 0
	for i < len(s) && b64TokenChar[s[i]] {
		i++
	}
	if i == 0 {
		return false
	}
	for ; i < len(s); i++ {
		if s[i] != '=' {
			return false
		}
	}
	return true
}

// b64TokenChar marks the bytes of RFC 6750's b64token other than '='.
var b64TokenChar = [256]bool{
	'-': true, '.': true, '_': true, '~': true, '+': true, '/': true,
	'0': true, '1': true, '2': true, '3': true, '4': true, '5': true, '6': true, '7': true, '8': true, '9': true,
	'A': true, 'B': true, 'C': true, 'D': true, 'E': true, 'F': true, 'G': true, 'H': true, 'I': true, 'J': true,
	'K': true, 'L': true, 'M': true, 'N': true, 'O': true, 'P': true, 'Q': true, 'R': true, 'S': true, 'T': true,
	'U': true, 'V': true, 'W': true, 'X': true, 'Y': true, 'Z': true,
	'a': true, 'b': true, 'c': true, 'd': true, 'e': true, 'f': true, 'g': true, 'h': true, 'i': true, 'j': true,
	'k': true, 'l': true, 'm': true, 'n': true, 'o': true, 'p': true, 'q': true, 'r': true, 's': true, 't': true,
	'u': true, 'v': true, 'w': true, 'x': true, 'y': true, 'z': true,
}
