package authz

import (
	"errors"
	"strings"

	"github.com/mcpguard/mcpguard/internal/pct"
)

// MaxResourceURI is the longest resource URI CanonicalResourceURI accepts,
// in bytes.
const MaxResourceURI = 8 << 10

// ErrResourceURI matches every URI CanonicalResourceURI refuses.
var ErrResourceURI = errors.New("authz: resource URI refused")

// CanonicalResourceURI returns the form of a resource URI that the policy's
// prefix rules are matched against: the value a handler sees once mcp-go
// has percent-decoded a template variable. Percent-encoded unreserved
// characters (ALPHA, DIGIT, "-", ".", "_", "~") are decoded, as RFC 3986
// §6.2.2.2 allows without changing what the URI identifies; every other
// percent-encoding is kept as it is.
//
// It refuses, wrapping ErrResourceURI, what could name something outside
// a prefix it appears to start with once a handler resolves it: an empty or
// over-long URI (MaxResourceURI), a malformed percent-encoding, a NUL, a
// control character or a backslash, a percent-encoded delimiter or percent
// sign (RFC 3986 §2.2 reserved characters, "%" and "\", against a second
// decoding), and a "." or ".." segment of the path or of a query value,
// whether written out or encoded.
//
// A URI without "%" is returned unchanged and without allocating. The HTTP
// edge and the Policy both decide on this one canonical form (see
// Config.ResourceRules); the Policy further refuses a URI whose raw,
// canonical and fully decoded forms fall under different rules.
// CanonicalResourceURI is a pure function, safe for concurrent use.
func CanonicalResourceURI(uri string) (string, error) {
	if uri == "" {
		return "", errors.Join(ErrResourceURI, errors.New("empty URI"))
	}
	if len(uri) > MaxResourceURI {
		return "", errors.Join(ErrResourceURI, errors.New("URI too long"))
	}
	canon := uri
	if strings.IndexByte(uri, '%') >= 0 {
		b := make([]byte, 0, len(uri))
		for i := 0; i < len(uri); i++ {
			c := uri[i]
			if c != '%' {
				b = append(b, c)
				continue
			}
			if i+2 >= len(uri) || !pct.IsHex(uri[i+1]) || !pct.IsHex(uri[i+2]) {
				return "", errors.Join(ErrResourceURI, errors.New("malformed percent-encoding"))
			}
			d := pct.Unhex(uri[i+1])<<4 | pct.Unhex(uri[i+2])
			switch {
			case isUnreserved(d):
				b = append(b, d)
			case d == '%' || d == '\\' || d < 0x20 || d == 0x7f || isReserved(d):
				return "", errors.Join(ErrResourceURI, errors.New("percent-encoded delimiter"))
			default:
				// Not a delimiter, not unreserved (a space, a UTF-8 byte):
				// kept encoded, upper-case hex as RFC 3986 §6.2.2.1 prefers.
				b = append(b, '%', upperHex[d>>4], upperHex[d&15])
			}
			i += 2
		}
		canon = string(b)
	}
	if escapesPrefix(canon) {
		return "", errors.Join(ErrResourceURI, errors.New("dot segment, backslash or control character"))
	}
	return canon, nil
}

const upperHex = "0123456789ABCDEF"

// isUnreserved reports an RFC 3986 §2.3 unreserved character.
func isUnreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

// isReserved reports an RFC 3986 §2.2 gen-delim or sub-delim.
func isReserved(c byte) bool {
	return strings.IndexByte(":/?#[]@!$&'()*+,;=", c) >= 0
}

// fullyDecoded decodes every percent-encoding of a canonical URI, as a
// handler that unescapes the whole URI would see it. canon has only
// well-formed encodings of non-delimiters left.
func fullyDecoded(canon string) string {
	if strings.IndexByte(canon, '%') < 0 {
		return canon
	}
	b := make([]byte, 0, len(canon))
	for i := 0; i < len(canon); i++ {
		if canon[i] == '%' && i+2 < len(canon) {
			b = append(b, pct.Unhex(canon[i+1])<<4|pct.Unhex(canon[i+2]))
			i += 2
			continue
		}
		b = append(b, canon[i])
	}
	return string(b)
}
