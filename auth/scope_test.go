package auth

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestSplitScope(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{name: "empty", in: "", want: nil},
		{name: "spaces only", in: "   ", want: nil},
		{name: "one", in: "notes:read", want: []string{"notes:read"}},
		{name: "two", in: "notes:read notes:write", want: []string{"notes:read", "notes:write"}},
		{name: "runs and edges", in: "  a   b ", want: []string{"a", "b"}},
		{name: "NBSP is not a separator", in: "notes:read\u00a0notes:write", want: []string{"notes:read\u00a0notes:write"}},
		{name: "tab is not a separator", in: "a\tb", want: []string{"a\tb"}},
		{name: "ideographic space is not a separator", in: "a\u3000b", want: []string{"a\u3000b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, SplitScope(tt.in))
		})
	}
}

func TestStandardScopesNBSP(t *testing.T) {
	got, err := standardScopes(NewClaims(map[string]any{"scope": "notes:read\u00a0notes:write"}))
	assert.NoError(t, err)
	assert.Equal(t, []string{"notes:read\u00a0notes:write"}, got, "an NBSP must not split off a notes:write grant")
}
