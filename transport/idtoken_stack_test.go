package transport

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/auth/authtest"
	"github.com/mcpguard/mcpguard/authz"
)

// TestStackEntraIDTokenRefused: an Entra ID token for an app registration
// that is both the client and the API (its "aud" is the application ID,
// listed in AudienceAliases as Entra v2 access tokens require) carries the
// user's app roles and no marker of an ID token. Through the Entra preset
// its roles became scopes, and the ID token called notes_write (found in
// review). It is now refused with invalid_token; the same user's access
// token, which carries "azp", is served.
func TestStackEntraIDTokenRefused(t *testing.T) {
	const appID = "4f1e5c1a-0d7e-4a37-9b1c-2c9c1e3b7a10"
	st := newStack(t, func(c *Config) {
		mapper, err := authz.Entra(authz.PresetConfig{RoleMap: map[string][]string{"Notes.Writer": {"notes:read", "notes:write"}}})
		require.NoError(t, err)
		v, err := auth.NewJWTValidator(auth.JWTConfig{Issuer: c.AuthorizationServers[0], Audience: c.Resource,
			AudienceAliases: []string{appID}, ScopeMapper: mapper})
		require.NoError(t, err)
		c.Validator = v
	})
	idToken, err := st.idp.MintToken(authtest.Token{Claims: map[string]any{
		"aud": appID, "sub": "alice", "client_id": nil, "jti": nil, "tenant_id": "acme",
		"nonce": "n-0S6_WzA2Mj", "roles": []any{"Notes.Writer"}, "ver": "2.0",
	}, Header: map[string]any{"typ": "JWT"}})
	require.NoError(t, err)
	status, hdr, body := rawCall(t, st.url, idToken, "notes_write", "")
	assert.Equal(t, http.StatusUnauthorized, status, body)
	assert.Contains(t, hdr.Get("WWW-Authenticate"), `error="invalid_token"`)
	assert.NotContains(t, body, "written")

	access := st.token(t, map[string]any{"aud": appID, "sub": "alice", "client_id": nil, "azp": "0c8a3e2b-5f0d-4f9e-8d61-9a7b2c4e1f33",
		"roles": []any{"Notes.Writer"}, "ver": "2.0"})
	status, _, body = rawCall(t, st.url, access, "notes_write", "")
	require.Equal(t, http.StatusOK, status, body)
	assert.Contains(t, body, "written")
}
