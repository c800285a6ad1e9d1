package auth

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestJWTSmoke(t *testing.T) {
	idp := newIDP(t, nil)
	v := newValidator(t, idp, nil, nil)
	for _, k := range idp.Keys() {
		tok, err := idp.MintToken(authtestToken(k, map[string]any{"scope": "a b"}))
		require.NoError(t, err)
		p, err := v.Validate(t.Context(), tok)
		require.NoError(t, err, k.Alg())
		assert.Equal(t, "alice", p.Subject)
		assert.Equal(t, []string{"a", "b"}, p.Scopes)
	}
	bad, err := idp.MintBadSignature(nil)
	require.NoError(t, err)
	_, err = v.Validate(t.Context(), bad)
	require.ErrorIs(t, err, ErrInvalidToken)
	t.Log(err)
}
