package oauthsyntax

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// refIsScopeChar is RFC 6749 §3.3 written as the printable-ASCII range
// minus the excluded characters, the reference for IsScopeChar.
func refIsScopeChar(c byte) bool {
	return c > 0x20 && c < 0x7f && c != '"' && c != '\\'
}

func TestIsScopeToken(t *testing.T) {
	for c := range 256 {
		assert.Equal(t, refIsScopeChar(byte(c)), IsScopeChar(byte(c)), "%#x", c)
		assert.Equal(t, refIsScopeChar(byte(c)), IsScopeToken(string([]byte{byte(c)})), "%#x", c)
	}
	tests := []struct {
		name string
		in   string
		want bool
	}{
		{"empty", "", false},
		{"simple", "tools:call", true},
		{"url", "https://api.example.test/read", true},
		{"space", "a b", false},
		{"quote", `a"b`, false},
		{"backslash", `a\b`, false},
		{"at cap", strings.Repeat("a", MaxScopeTokenBytes), true},
		{"over cap", strings.Repeat("a", MaxScopeTokenBytes+1), false},
		{"non-ascii", "caf\xc3\xa9", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, IsScopeToken(tt.in))
		})
	}
}

func FuzzIsScopeToken(f *testing.F) {
	f.Add("tools:call")
	f.Add(`a"b`)
	f.Fuzz(func(t *testing.T, s string) {
		want := s != "" && len(s) <= MaxScopeTokenBytes
		for i := 0; i < len(s) && want; i++ {
			want = refIsScopeChar(s[i])
		}
		if got := IsScopeToken(s); got != want {
			t.Fatalf("IsScopeToken(%q) = %v, want %v", s, got, want)
		}
	})
}
