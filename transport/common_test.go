package transport

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

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
	for name, cfg := range map[string]Config{
		"Issuer and Validator":    {Resource: resource, Issuer: idp.Issuer(), Validator: g.cfg.Validator, ToolScopes: map[string][]string{}},
		"ToolScopes and Policy":   {Resource: resource, Issuer: idp.Issuer(), ToolScopes: map[string][]string{}, Policy: g.cfg.Policy},
		"TenantClaim and Tenancy": {Resource: resource, Issuer: idp.Issuer(), ToolScopes: map[string][]string{}, TenantClaim: "org_id", Tenancy: res},
		"dev mode with Issuer":    {Mode: ModeDev, Addr: "127.0.0.1:8080", Issuer: idp.Issuer(), ToolScopes: map[string][]string{}},
		"dev mode with claim":     {Mode: ModeDev, Addr: "127.0.0.1:8080", TenantClaim: "org_id", ToolScopes: map[string][]string{}},
		"no policy at all":        {Resource: resource, Issuer: idp.Issuer()},
	} {
		_, err := New(cfg)
		require.ErrorIs(t, err, ErrConfig, name)
	}
}
