package oauthsyntax

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// refIsB64Token is RFC 6750 §2.1's b64token written out as comparisons,
// the reference for the table-driven IsB64Token.
func refIsB64Token(s string) bool {
	i := 0
	for ; i < len(s); i++ {
		c := s[i]
		if ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9') ||
			c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/' {
			continue
		}
		break
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

func TestIsB64TokenEveryByte(t *testing.T) {
	for c := range 256 {
		for _, s := range []string{string([]byte{byte(c)}), "a" + string([]byte{byte(c)}), "a" + string([]byte{byte(c)}) + "="} {
			assert.Equal(t, refIsB64Token(s), IsB64Token(s), "%q", s)
		}
	}
	tests := map[string]bool{"": false, "=": false, "abc==": true, "a=b": false, "eyJ.x-y_z~+/": true, "a b": false}
	for s, want := range tests {
		assert.Equal(t, want, IsB64Token(s), "%q", s)
	}
}

func FuzzIsB64Token(f *testing.F) {
	f.Add("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln==")
	f.Add("a=b")
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := IsB64Token(s), refIsB64Token(s); got != want {
			t.Fatalf("IsB64Token(%q) = %v, want %v", s, got, want)
		}
	})
}

func BenchmarkIsB64Token(b *testing.B) {
	tok := strings.Repeat("eyJhbGciOiJSUzI1NiIsImtpZCI6InJzMjU2LTEifQ", 20)
	b.SetBytes(int64(len(tok)))
	for b.Loop() {
		if !IsB64Token(tok) {
			b.Fatal("not a b64token")
		}
	}
}
