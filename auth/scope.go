package auth

import "strings"

// SplitScope splits an OAuth scope string into its scope tokens. Per RFC
// 6749 §3.3 the separator is the space character (%x20) only: tabs,
// no-break spaces and other Unicode spaces are part of a token, not
// separators (strings.Fields would split on them and so grant a scope
// the issuer never wrote). Runs of spaces and leading or trailing spaces
// yield no empty tokens. The result is nil when s holds no token.
func SplitScope(s string) []string {
	var out []string
	for tok := range strings.SplitSeq(s, " ") {
		if tok != "" {
			out = append(out, tok)
		}
	}
	return out
}
