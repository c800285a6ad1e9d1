package authz_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/authz"
)

// TestEntraRefusesIDTokens: an Entra ID token carries the user's app roles
// in "roles" (as an access token does) but no client claim: "azp" is only
// in v2 access tokens and "appid" only in v1 access tokens. Its audience is
// the client's application ID, which is the API's own when one app
// registration serves both, and nothing in its payload or header (typ
// "JWT") marks it as an ID token, so auth's validator accepts it there.
// The Entra preset with a RoleMap then turned its roles into scopes: an ID
// token, which a client may hand to anyone as proof of sign-in, worked as
// an access token with the user's app roles. The preset now rejects a
// token without "azp" or "appid"; access tokens of both versions and
// app-only tokens are still mapped.
func TestEntraRefusesIDTokens(t *testing.T) {
	roles := map[string][]string{"Notes.Admin": {"notes:read", "notes:write"}}
	m := must(t)(authz.Entra(authz.PresetConfig{RoleMap: roles}))

	idTokens := map[string]map[string]any{
		"v2": {
			"aud": "4f1e5c1a-0d7e-4a37-9b1c-2c9c1e3b7a10", "iss": "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0",
			"iat": 0.0, "nbf": 0.0, "exp": 3600.0, "aio": "AXQAi/8TAAAA", "name": "Alice Example", "nonce": "n-0S6_WzA2Mj",
			"oid": "a1b2c3d4-0000-4000-8000-000000000001", "preferred_username": "alice@contoso.example", "rh": "0.AAAA",
			"roles": []any{"Notes.Admin"}, "sub": "qzj3P5b1V9yYbq8y0v1m2n3o4p5q6r7s8t9u0v1w2x3",
			"tid": "72f988bf-86f1-41af-91ab-2d7cd011db47", "uti": "fqiBqXLPj0eQa82S-IYFAA", "ver": "2.0",
		},
		"v1": {
			"aud": "4f1e5c1a-0d7e-4a37-9b1c-2c9c1e3b7a10", "iss": "https://sts.windows.net/72f988bf-86f1-41af-91ab-2d7cd011db47/",
			"iat": 0.0, "nbf": 0.0, "exp": 3600.0, "amr": []any{"pwd"}, "name": "Alice Example", "nonce": "n-0S6_WzA2Mj",
			"oid": "a1b2c3d4-0000-4000-8000-000000000001", "roles": []any{"Notes.Admin"}, "sub": "qzj3P5b1V9yYbq8y0v1m2n3o4p5q6r7s8t9u0v1w2x3",
			"tid": "72f988bf-86f1-41af-91ab-2d7cd011db47", "unique_name": "alice@contoso.example", "upn": "alice@contoso.example", "ver": "1.0",
		},
	}
	for name, claims := range idTokens {
		t.Run("id token "+name, func(t *testing.T) {
			scopes, err := m.MapScopes(auth.NewClaims(claims))
			assert.Empty(t, scopes)
			require.Error(t, err, "an ID token's roles grant no scope")
			var ae *auth.Error
			require.True(t, errors.As(err, &ae))
			assert.Equal(t, "invalid_token", ae.Code)
		})
	}
	for _, tc := range []struct {
		name, shape string
		changes     map[string]any
	}{
		{"v2 delegated", "entra_v2_delegated", map[string]any{"roles": []any{"Notes.Admin"}}},
		{"v1 delegated", "entra_v1_delegated", map[string]any{"roles": []any{"Notes.Admin"}}},
		{"v2 app-only", "entra_v2_app_only", map[string]any{"roles": []any{"Notes.Admin"}}},
	} {
		t.Run("access token "+tc.name, func(t *testing.T) {
			scopes, err := m.MapScopes(claimsOf(t, tc.shape, tc.changes))
			require.NoError(t, err)
			assert.Subset(t, scopes, []string{"notes:read", "notes:write"})
		})
	}
	t.Run("client claim of the wrong type", func(t *testing.T) {
		for _, bad := range []any{"", 42.0, []any{"0c8a3e2b-5f0d-4f9e-8d61-9a7b2c4e1f33"}} {
			_, err := m.MapScopes(claimsOf(t, "entra_v2_delegated", map[string]any{"azp": bad}))
			assert.Error(t, err, "azp %v", bad)
		}
	})
}
