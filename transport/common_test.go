package transport

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/auth/authtest"
	"github.com/mcpguard/mcpguard/tenancy"
)

// Issuer, ToolScopes and TenantClaim build their components, refuse to
// sit beside a component they stand for, and are refused where the mode
// would ignore them.
func TestConfigCommonCase(t *testing.T) {
	idp := authtest.NewServer(t)
	const resource = "http://127.0.0.1:8080/mcp"
	g, err := New(Config{Resource: resource, Issuer: idp.Issuer(), ToolScopes: map[string][]string{"notes_read": {"notes:read"}, "whoami": nil}, TenantClaim: "org_id"})
	require.NoError(t, err)
	assert.Equal(t, []string{idp.Issuer()}, g.cfg.AuthorizationServers, "the issuer is the default authorization server")
	assert.NotNil(t, g.cfg.Validator)
	assert.NotNil(t, g.cfg.Tenancy)
	assert.Equal(t, []string{"notes:read"}, g.cfg.Policy.ScopesSupported())
	require.NoError(t, g.Close())
	assert.Empty(t, g.owned, "Close released the validator it built")

	res, err := tenancy.New(tenancy.Config{})
	require.NoError(t, err)
	rev, err := auth.NewMemoryRevoker(auth.RevokerConfig{})
	require.NoError(t, err)
	for name, cfg := range map[string]Config{
		"Issuer and Validator":    {Resource: resource, Issuer: idp.Issuer(), Validator: g.cfg.Validator, ToolScopes: map[string][]string{}},
		"ToolScopes and Policy":   {Resource: resource, Issuer: idp.Issuer(), ToolScopes: map[string][]string{}, Policy: g.cfg.Policy},
		"TenantClaim and Tenancy": {Resource: resource, Issuer: idp.Issuer(), ToolScopes: map[string][]string{}, TenantClaim: "org_id", Tenancy: res},
		"dev mode with Issuer":    {Mode: ModeDev, Addr: "127.0.0.1:8080", Issuer: idp.Issuer(), ToolScopes: map[string][]string{}},
		"dev mode with claim":     {Mode: ModeDev, Addr: "127.0.0.1:8080", TenantClaim: "org_id", ToolScopes: map[string][]string{}},
		"no policy at all":        {Resource: resource, Issuer: idp.Issuer()},
		"Revoker without Issuer":  {Resource: resource, Validator: g.cfg.Validator, Revoker: rev, ToolScopes: map[string][]string{}},
		"dev mode with Revoker":   {Mode: ModeDev, Addr: "127.0.0.1:8080", Revoker: rev, ToolScopes: map[string][]string{}},
	} {
		_, err := New(cfg)
		require.ErrorIs(t, err, ErrConfig, name)
	}
}

// TestConfigCommonCaseRevoker: Config.Revoker reaches the validator that
// Config.Issuer builds — a revoked token is refused over HTTP.
func TestConfigCommonCaseRevoker(t *testing.T) {
	rev, err := auth.NewMemoryRevoker(auth.RevokerConfig{})
	require.NoError(t, err)
	st := newStack(t, func(c *Config) {
		c.Issuer, c.Validator = c.AuthorizationServers[0], nil // the common case builds the validator
		c.Revoker = rev
	})
	tok := st.token(t, map[string]any{"jti": "common-jti", "scope": "notes:read"})
	status, _, _ := rawCall(t, st.url, tok, "whoami", "")
	require.Equal(t, http.StatusOK, status)
	require.NoError(t, rev.Revoke(t.Context(), auth.Revocation{Issuer: st.idp.Issuer(), TokenID: "common-jti"}))
	status, h, _ := rawCall(t, st.url, tok, "whoami", "")
	assert.Equal(t, http.StatusUnauthorized, status)
	assert.Contains(t, h.Get("WWW-Authenticate"), "the access token has been revoked")
}
