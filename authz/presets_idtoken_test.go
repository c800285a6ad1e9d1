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

// TestOktaAuth0RefuseIDTokens: Okta and Auth0 ID tokens carry the user's
// groups or roles like the access tokens do (Okta's "groups" when the app's
// groups claim covers ID tokens; the namespaced roles claim a login Action
// adds to both tokens in Auth0), no marker auth's validator refuses them by
// (header typ "JWT", no typ/token_use claim) and the client ID as their
// audience, which AudienceAliases may list. The presets with a RoleMap
// turned those roles into scopes, so an ID token worked as an access token
// (found in review). Okta now requires "cid" (or "client_id") and Auth0
// "azp" (or "client_id"), which only their access tokens carry; access
// tokens of every documented shape are still mapped.
func TestOktaAuth0RefuseIDTokens(t *testing.T) {
	okta := must(t)(authz.Okta(authz.PresetConfig{RoleMap: map[string][]string{"notes-writers": {"notes:write"}}}))
	auth0 := must(t)(authz.Auth0(authz.PresetConfig{
		RoleClaims: []string{"https://notes.example.com/roles"},
		RoleMap:    map[string][]string{"writer": {"notes:write"}},
	}))
	idTokens := []struct {
		name   string
		mapper *authz.Mapper
		claims map[string]any
	}{
		{"okta", okta, map[string]any{
			"ver": 1.0, "sub": "00u1a2b3c4d5e6f7g8h9", "iss": "https://example.okta.com/oauth2/default", "aud": "0oa1b2c3d4e5f6g7h8i9",
			"iat": 0.0, "exp": 3600.0, "jti": "ID.x1y2z3", "amr": []any{"pwd"}, "idp": "00o1a2b3c4d5e6f7g8h9", "nonce": "n-0S6_WzA2Mj",
			"auth_time": 0.0, "at_hash": "preview_at_hash", "preferred_username": "alice@example.com", "groups": []any{"Everyone", "notes-writers"},
		}},
		{"auth0", auth0, map[string]any{
			"iss": "https://example.us.auth0.com/", "sub": "auth0|64b7f0c2e4a1b2c3d4e5f6a7", "aud": "Xy12AbCdEfGhIjKlMnOpQrStUvWxYz34",
			"iat": 0.0, "exp": 36000.0, "sid": "s1", "nonce": "n-0S6_WzA2Mj", "name": "alice@example.com", "email": "alice@example.com",
			"https://notes.example.com/roles": []any{"writer"},
		}},
	}
	for _, tc := range idTokens {
		t.Run("id token "+tc.name, func(t *testing.T) {
			scopes, err := tc.mapper.MapScopes(auth.NewClaims(tc.claims))
			assert.Empty(t, scopes)
			require.Error(t, err, "an ID token's groups or roles grant no scope")
			var ae *auth.Error
			require.True(t, errors.As(err, &ae))
			assert.Equal(t, "invalid_token", ae.Code)
		})
	}
	for _, tc := range []struct {
		name, shape string
		mapper      *authz.Mapper
		changes     map[string]any
	}{
		{"okta", "okta_custom_as", okta, nil},
		{"okta RFC 9068 client_id", "okta_custom_as", okta, map[string]any{"cid": nil, "client_id": "0oa1b2c3d4e5f6g7h8i9"}},
		{"auth0 user", "auth0_user", auth0, map[string]any{"https://notes.example.com/roles": []any{"writer"}}},
		{"auth0 machine", "auth0_machine", auth0, nil},
		{"auth0 RFC 9068 profile", "auth0_user", auth0, map[string]any{"azp": nil, "client_id": "Xy12AbCdEfGhIjKlMnOpQrStUvWxYz34", "https://notes.example.com/roles": []any{"writer"}}},
	} {
		t.Run("access token "+tc.name, func(t *testing.T) {
			scopes, err := tc.mapper.MapScopes(claimsOf(t, tc.shape, tc.changes))
			require.NoError(t, err)
			assert.Contains(t, scopes, "notes:write")
		})
	}
	t.Run("client claim of the wrong type", func(t *testing.T) {
		for _, bad := range []any{"", 42.0, []any{"0oa1b2c3d4e5f6g7h8i9"}} {
			_, err := okta.MapScopes(claimsOf(t, "okta_custom_as", map[string]any{"cid": bad}))
			assert.Error(t, err, "cid %v", bad)
			_, err = auth0.MapScopes(claimsOf(t, "auth0_user", map[string]any{"azp": bad}))
			assert.Error(t, err, "azp %v", bad)
		}
	})
}
