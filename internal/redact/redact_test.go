package redact

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestText(t *testing.T) {
	tests := []struct {
		name string
		in   string
		max  int
		want string
	}{
		{"clean ascii", "search_docs", 64, "search_docs"},
		{"empty", "", 8, ""},
		{"newline", "a\nb", 64, `a\nb`},
		{"crlf", "a\r\nb", 64, `a\r\nb`},
		{"tab", "a\tb", 64, `a\tb`},
		{"nul and esc", "a\x00\x1b[31m", 64, `a\x00\x1b[31m`},
		{"del", "a\x7fb", 64, `a\x7fb`},
		{"c1 control", "a\u0085b", 64, `a\u0085b`},
		{"line separator", "a\u2028b\u2029c", 64, `a\u2028b\u2029c`},
		{"bidi override", "a\u202eb\u2066c", 64, `a\u202eb\u2066c`},
		{"bom", "\ufeffx", 64, `\ufeffx`},
		{"invalid utf8", "a\xffb", 64, `a\xffb`},
		{"printable unicode kept", "héllo 世界", 64, "héllo 世界"},
		{"truncated ascii", "abcdefgh", 4, "abcd" + Ellipsis},
		{"truncated never splits a rune", "ab世界", 4, "ab" + Ellipsis},
		{"truncated then escaped", "a\nbcdef", 3, `a\nb` + Ellipsis},
		{"zero max", "abc", 0, Ellipsis},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, Text(tt.in, tt.max))
		})
	}
}

func TestTextCleanDoesNotAllocate(t *testing.T) {
	s := strings.Repeat("tool_name-", 10)
	allocs := testing.AllocsPerRun(100, func() { _ = Text(s, 256) })
	assert.Zero(t, allocs)
}

func TestAppendJSONString(t *testing.T) {
	tests := []struct {
		name string
		in   string
		max  int
		want string // the JSON literal
	}{
		{"plain", "abc", 64, `"abc"`},
		{"quote and backslash", `a"b\c`, 64, `"a\"b\\c"`},
		{"newline", "a\nb", 64, `"a\nb"`},
		{"control", "a\x01b", 64, `"a\u0001b"`},
		{"del", "a\x7f", 64, `"a\u007f"`},
		{"line separator", "a\u2028", 64, `"a\u2028"`},
		{"c1", "\u009b", 64, `"\u009b"`},
		{"bidi", "\u202e", 64, `"\u202e"`},
		{"invalid utf8", "a\xc3", 64, `"a\ufffd"`},
		{"unicode kept", "é世", 64, `"é世"`},
		{"truncated", "abcdef", 3, `"abc` + Ellipsis + `"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(AppendJSONString(nil, tt.in, tt.max))
			assert.Equal(t, tt.want, got)
			var back string
			require.NoError(t, json.Unmarshal([]byte(got), &back))
		})
	}
}

func TestURI(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"plain", "notes://public/readme", "notes://public/readme"},
		{"empty", "", ""},
		{"query and fragment", "notes://a/b?access_token=secret#frag", "notes://a/b"},
		{"user and password", "db://admin:hunter2@host/table", "db://" + Redacted + "@host/table"},
		{"token as user name", "https://ghp_Secret123@github.com/org/repo", "https://" + Redacted + "@github.com/org/repo"},
		{"no path", "db://admin:hunter2@host", "db://" + Redacted + "@host"},
		{"at in password", "db://admin:p@ss@host/t", "db://" + Redacted + "@host/t"},
		{"userinfo and query", "db://u:pw@host/t?pw=x", "db://" + Redacted + "@host/t"},
		{"network-path reference", "//u:pw@host/t", "//" + Redacted + "@host/t"},
		{"at in the path only", "notes://host/a@b", "notes://host/a@b"},
		{"empty authority", "file:///home/a@b", "file:///home/a@b"},
		{"no authority", "mailto:alice@example.com", "mailto:alice@example.com"},
		{"slashes later in the path", "urn:x/y//u:pw@h", "urn:x/y//u:pw@h"},
		{"at only in the query", "notes://h/p?u=a@b", "notes://h/p"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, URI(tt.in))
		})
	}
}

func FuzzURI(f *testing.F) {
	for _, s := range []string{"", "notes://a/b", "db://u:pw@h/t?q#f", "//u@h", "a:b", "x://@"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := URI(s)
		if strings.ContainsAny(out, "?#") {
			t.Fatalf("query or fragment kept in %q", out)
		}
		if i := strings.Index(out, "//"); i >= 0 && (i == 0 || out[i-1] == ':') && !strings.ContainsRune(out[:i], '/') {
			authority := out[i+2:]
			if end := strings.IndexByte(authority, '/'); end >= 0 {
				authority = authority[:end]
			}
			if at := strings.LastIndexByte(authority, '@'); at >= 0 && authority[:at] != Redacted {
				t.Fatalf("userinfo %q kept in %q", authority[:at], out)
			}
		}
		if URI(out) != out {
			t.Fatalf("not idempotent: %q, then %q", out, URI(out))
		}
	})
}

func TestLooksLikeToken(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want bool
	}{
		{"jwt", "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1In0.c2ln", true},
		{"jwt inside text", "token is eyJhbGciOiJIUzI1NiJ9.eyJhIjoiYiJ9.x now", true},
		{"bearer prefix", "Bearer eyJhbGciOiJIUzI1NiJ9.eyJhIjoiYiJ9.abc", true},
		{"opaque mixed", "Zk3pQ9xL2mN8vB4cR7tY1wE5uI0oP6aS3dF9gH2jK", true},
		{"uuid", "123e4567-e89b-12d3-a456-426614174000", false},
		{"sha256 hex", "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", false},
		{"short word", "hello", false},
		{"sentence", "find the quarterly report for ACME Corp 2024", false},
		{"eyJ without dots", "eyJhbGciOiJIUzI1NiJ9", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, LooksLikeToken(tt.in))
		})
	}
}

func FuzzText(f *testing.F) {
	for _, s := range []string{"", "abc", "a\nb", "\u2028", "\xff\xfe", "é世界", "\x1b[2J"} {
		f.Add(s, 16)
	}
	f.Fuzz(func(t *testing.T, s string, max int) {
		max = max % 1024
		out := Text(s, max)
		for _, r := range out {
			if unsafeRune(r) {
				t.Fatalf("unsafe rune %U in %q", r, out)
			}
		}
		if !utf8.ValidString(out) {
			t.Fatalf("invalid UTF-8 in %q", out)
		}
	})
}

func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "abc", "a\nb", `"\`, "\u2028", "\xff", "é世界"} {
		f.Add(s, 16)
	}
	f.Fuzz(func(t *testing.T, s string, max int) {
		if max < 0 {
			max = -max
		}
		max = max % 1024
		out := AppendJSONString(nil, s, max)
		for _, c := range out {
			if c < 0x20 || c == 0x7f {
				t.Fatalf("control byte in %q", out)
			}
		}
		var back string
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatalf("not a JSON string: %q: %v", out, err)
		}
		if n, _ := cut(s, max); utf8.ValidString(s) && !strings.HasPrefix(back, s[:n]) {
			t.Fatalf("decoded %q does not keep the prefix of %q", back, s)
		}
	})
}
