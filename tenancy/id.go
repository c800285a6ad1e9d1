package tenancy

import "fmt"

// MaxIDLen is the longest tenant ID ValidateID accepts, in bytes.
const MaxIDLen = 128

// ValidateID reports whether id is an acceptable tenant ID: 1 to MaxIDLen
// bytes of ASCII letters, digits, '-', '_' and '.', starting with a letter or
// a digit. That admits Entra tenant GUIDs, Auth0 organization IDs
// ("org_…"), slugs and DNS-style names, and keeps out everything that could
// change the meaning of a key, prefix or path built from the ID: ':', '/',
// '%', whitespace, control and non-ASCII bytes, and the "." and ".." path
// segments.
//
// IDs are compared byte for byte; "Acme" and "acme" are different tenants.
// Stores whose comparisons fold case (for example a case-insensitive SQL
// collation) need a tenant scheme that is case-free, such as GUIDs.
//
// The returned error wraps ErrInvalidTenant and never contains id itself.
func ValidateID(id string) error {
	switch {
	case id == "":
		return fmt.Errorf("%w: empty", ErrInvalidTenant)
	case len(id) > MaxIDLen:
		return fmt.Errorf("%w: %d bytes, longer than %d", ErrInvalidTenant, len(id), MaxIDLen)
	case !isAlnum(id[0]):
		return fmt.Errorf("%w: must start with a letter or a digit", ErrInvalidTenant)
	}
	for i := 1; i < len(id); i++ {
		if c := id[i]; !isAlnum(c) && c != '-' && c != '_' && c != '.' {
			return fmt.Errorf("%w: byte %d is not allowed", ErrInvalidTenant, i)
		}
	}
	return nil
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}
