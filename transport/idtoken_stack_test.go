package transport

import (
	"net/http"
	"strings"
	"testing"

	mcptransport "github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
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

// TestStackOktaAuth0IDTokenRefused: an Okta ID token carrying the user's
// groups, and an Auth0 ID token carrying the roles a login Action adds to
// both tokens, have the client ID as "aud" (listed in AudienceAliases here)
// and no marker of an ID token. Through the Okta and Auth0 presets their
// groups and roles became scopes, and the ID token called notes_write in
// both eras (found in review). They are now refused with invalid_token; the
// same user's access token, which names its client ("cid", "azp"), is
// served.
func TestStackOktaAuth0IDTokenRefused(t *testing.T) {
	const clientID = "0oa1b2c3d4e5f6g7h8i9"
	for _, tc := range []struct {
		name   string
		mapper func() (*authz.Mapper, error)
		id     map[string]any // the ID token's own claims
		client map[string]any // what the access token adds
	}{
		{
			name: "okta",
			mapper: func() (*authz.Mapper, error) {
				return authz.Okta(authz.PresetConfig{RoleMap: map[string][]string{"notes-writers": {"notes:read", "notes:write"}}})
			},
			id:     map[string]any{"groups": []any{"Everyone", "notes-writers"}, "amr": []any{"pwd"}, "idp": "00o1"},
			client: map[string]any{"cid": clientID, "scp": []any{"openid"}},
		},
		{
			name: "auth0",
			mapper: func() (*authz.Mapper, error) {
				return authz.Auth0(authz.PresetConfig{
					RoleClaims: []string{"https://notes.example.com/roles"},
					RoleMap:    map[string][]string{"writer": {"notes:read", "notes:write"}},
				})
			},
			id:     map[string]any{"https://notes.example.com/roles": []any{"writer"}, "sid": "s1"},
			client: map[string]any{"azp": clientID, "scope": "openid"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := newStack(t, func(c *Config) {
				mapper, err := tc.mapper()
				require.NoError(t, err)
				v, err := auth.NewJWTValidator(auth.JWTConfig{Issuer: c.AuthorizationServers[0], Audience: c.Resource,
					AudienceAliases: []string{clientID}, ScopeMapper: mapper})
				require.NoError(t, err)
				c.Validator = v
			})
			idClaims := map[string]any{"aud": clientID, "sub": "alice", "client_id": nil, "jti": nil, "tenant_id": "acme", "nonce": "n-0S6_WzA2Mj"}
			accessClaims := map[string]any{"aud": clientID, "sub": "alice", "client_id": nil}
			for k, v := range tc.id {
				idClaims[k], accessClaims[k] = v, v
			}
			for k, v := range tc.client {
				accessClaims[k] = v
			}
			idToken, err := st.idp.MintToken(authtest.Token{Claims: idClaims, Header: map[string]any{"typ": "JWT"}})
			require.NoError(t, err)
			access := st.token(t, accessClaims)
			for _, era := range eras {
				t.Run(era, func(t *testing.T) {
					c, err := eraClient(t, st.url, idToken, era)
					if assert.Error(t, err, "the ID token is not authenticated") {
						assert.ErrorIs(t, err, mcptransport.ErrAuthorizationRequired, "a 401")
					} else {
						got, _ := callText(t, c, "notes_write")
						assert.NotEqual(t, "written", got, "the ID token wrote")
					}
					status, body := postRPC(t, st, idToken, era, "", "tools/call", toolCallBody(era, "notes_write"))
					assert.Equal(t, http.StatusUnauthorized, status, body)
					assert.NotContains(t, body, "written")

					c, err = eraClient(t, st.url, access, era)
					require.NoError(t, err)
					got, err := callText(t, c, "notes_write")
					require.NoError(t, err)
					assert.Equal(t, "written", got)
				})
			}
		})
	}
}

// toolCallBody is a tools/call of tool in era (with the 2026-07-28 _meta).
func toolCallBody(era, tool string) string {
	args := `"name":"` + tool + `","arguments":{}`
	if era == mcp.ProtocolVersion20260728 {
		args += ","
	}
	return strings.Replace(rpcBody(era, "tools/call"), `"params":{`, `"params":{`+args, 1)
}
