package tenancy

import (
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestValidateID(t *testing.T) {
	tests := []struct {
		name string
		id   string
		ok   bool
	}{
		{"entra tid", "72f988bf-86f1-41af-91ab-2d7cd011db47", true},
		{"auth0 org", "org_9aB8cD7eF6gH5iJ4", true},
		{"slug", "acme-corp", true},
		{"dns name", "acme.example.com", true},
		{"single char", "a", true},
		{"digit first", "0tenant", true},
		{"max length", strings.Repeat("a", MaxIDLen), true},
		{"too long", strings.Repeat("a", MaxIDLen+1), false},
		{"empty", "", false},
		{"dot", ".", false},
		{"dotdot", "..", false},
		{"leading dash", "-rf", false},
		{"leading underscore", "_x", false},
		{"leading dot", ".hidden", false},
		{"colon", "a:b", false},
		{"slash", "a/b", false},
		{"backslash", `a\b`, false},
		{"percent", "a%3Ab", false},
		{"space", "a b", false},
		{"trailing space", "acme ", false},
		{"newline", "acme\n", false},
		{"nul", "acme\x00", false},
		{"star", "*", false},
		{"braces", "{acme}", false},
		{"non-ascii", "acmé", false},
		{"fullwidth", "ａcme", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateID(tt.id)
			if tt.ok {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.ErrorIs(t, err, ErrInvalidTenant)
			if tt.id != "" {
				assert.NotContains(t, err.Error(), tt.id, "the error must not echo the rejected ID")
			}
		})
	}
}

var idPattern = regexp.MustCompile(`\A[A-Za-z0-9][A-Za-z0-9._-]{0,127}\z`)

// FuzzValidateID checks ValidateID against an independent regular
// expression and checks that accepted IDs cannot break a key or a prefix.
func FuzzValidateID(f *testing.F) {
	for _, s := range []string{"acme", "", ".", "..", "a:b", "a/b", "tid-0", strings.Repeat("z", 129), "é", "a\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		err := ValidateID(id)
		if idPattern.MatchString(id) != (err == nil) {
			t.Fatalf("ValidateID(%q) = %v, pattern says %v", id, err, idPattern.MatchString(id))
		}
		if err != nil {
			if !assert.ErrorIs(t, err, ErrInvalidTenant) {
				t.FailNow()
			}
			return
		}
		if strings.ContainsAny(id, ":/%") || id == "." || id == ".." {
			t.Fatalf("accepted ID %q holds a separator", id)
		}
		p, err := PrefixFor(id)
		require.NoError(t, err)
		if strings.Count(p, "/") != 2 {
			t.Fatalf("prefix %q has extra segments", p)
		}
	})
}
