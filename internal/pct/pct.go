// Package pct reads the hex digits of RFC 3986 percent-encoding, for the
// packages that decode or normalise URIs by hand (authz's resource URIs,
// obo's passthrough check) rather than through net/url, which refuses the
// malformed escapes they must still read around.
package pct

// IsHex reports whether c is a hex digit, either case.
func IsHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// Unhex is the value of the hex digit c; c must satisfy IsHex.
func Unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}
