package authz_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/authz"
)

func TestCanonicalResourceURI(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"plain", "notes://public/readme", "notes://public/readme"},
		{"encoded unreserved decoded", "notes://priv%61te/keys", "notes://private/keys"},
		{"lower and upper hex", "notes://%7e%2D%5F", "notes://~-_"},
		{"non-delimiter kept encoded, upper-case", "notes://a%20b/%c3%a9", "notes://a%20b/%C3%A9"},
		{"dots inside a name", "notes://public/v1%2e%2e2", "notes://public/v1..2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := authz.CanonicalResourceURI(tt.in)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
	refused := []struct{ name, in string }{
		{"empty", ""},
		{"too long", "notes://" + strings.Repeat("a", authz.MaxResourceURI)},
		{"truncated escape", "notes://a%6"},
		{"bad hex", "notes://a%zz"},
		{"encoded slash", "notes://public/..%2Fprivate"},
		{"encoded percent", "notes://public/%252e%252e/x"},
		{"encoded backslash", "notes://public/%5c"},
		{"encoded query delimiter", "notes://public/x%3Fy"},
		{"encoded NUL", "notes://public/%00"},
		{"encoded dot segment", "notes://public/%2e%2E/private/1"},
		{"dot segment", "notes://public/../private"},
		{"control character", "notes://public/a\nb"},
		{"backslash", `notes://public/..\private`},
	}
	for _, tt := range refused {
		t.Run("refused/"+tt.name, func(t *testing.T) {
			_, err := authz.CanonicalResourceURI(tt.in)
			assert.True(t, errors.Is(err, authz.ErrResourceURI), "%v", err)
		})
	}
}

func TestCheckResourceCanonical(t *testing.T) {
	pl, err := authz.New(authz.Config{
		ResourceRules: []authz.ResourceRule{
			{Prefix: "notes://", Rule: authz.Rule{AllOf: []string{"notes:read"}}},
			{Prefix: "notes://private/", Rule: authz.Rule{AllOf: []string{"notes:admin"}}},
			{Prefix: "notes://a b/", Rule: authz.Rule{AllOf: []string{"notes:admin"}}},
		},
	})
	require.NoError(t, err)
	const rr = authz.MethodResourcesRead
	runChecks(t, pl, []checkCase{
		{name: "encoded unreserved reaches the private rule", p: principal("notes:read"), method: rr, target: "notes://priv%61te/keys", reason: authz.ReasonNoRule},
		{name: "raw and canonical under different rules: refused even for admin", p: principal("notes:read", "notes:admin"), method: rr, target: "notes://priv%61te/keys", reason: authz.ReasonNoRule},
		{name: "encoded but same rule", p: principal("notes:read"), method: rr, target: "notes://publ%69c/x", allowed: true, reason: authz.ReasonAllowed},
		{name: "canonical and decoded under different rules", p: principal("notes:read", "notes:admin"), method: rr, target: "notes://a%20b/x", reason: authz.ReasonNoRule},
		{name: "private in clear", p: principal("notes:read"), method: rr, target: "notes://private/keys", reason: authz.ReasonInsufficientScope, missing: []string{"notes:admin"}},
	})
}

// FuzzCanonicalResourceURI: the canonical form is idempotent, holds no
// encoded unreserved character, and never hides a dot segment or a
// delimiter a second decoding would reveal.
func FuzzCanonicalResourceURI(f *testing.F) {
	for _, s := range []string{
		"notes://priv%61te/keys", "notes://public/%2e%2e/x", "notes://a%20b", "notes://%C3%A9",
		"notes://x%", "notes://x%4", "notes://x%41%42", "notes://public/%252e", "a://b/c?d=%2E",
	} {
		f.Add(s)
	}
	pl, err := authz.New(authz.Config{ResourceRules: []authz.ResourceRule{
		{Prefix: "notes://public/", Rule: authz.Rule{Authenticated: true}},
	}})
	require.NoError(f, err)
	p := principal()
	f.Fuzz(func(t *testing.T, uri string) {
		canon, err := authz.CanonicalResourceURI(uri)
		if err != nil {
			if !errors.Is(err, authz.ErrResourceURI) {
				t.Fatalf("%q: error %v does not match ErrResourceURI", uri, err)
			}
			return
		}
		again, err := authz.CanonicalResourceURI(canon)
		if err != nil || again != canon {
			t.Fatalf("%q: not idempotent: %q then %q, %v", uri, canon, again, err)
		}
		for i := 0; i+2 < len(canon); i++ {
			if e := strings.ToUpper(canon[i+1 : i+3]); canon[i] == '%' && (e == "2E" || e == "2F" || e == "25" || e == "5C") {
				t.Fatalf("%q: canonical %q keeps %s", uri, canon, canon[i:i+3])
			}
		}
		d := pl.Check(context.Background(), p, authz.MethodResourcesRead, uri)
		if d.Allowed && !strings.HasPrefix(canon, "notes://public/") {
			t.Fatalf("allowed %q whose canonical form %q is outside the prefix", uri, canon)
		}
	})
}
