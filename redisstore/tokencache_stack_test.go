package redisstore

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/auth/authtest"
	"github.com/mcpguard/mcpguard/obo"
	"github.com/mcpguard/mcpguard/tenancy"
)

// A multi-tenant server calls a downstream API with each tenant's own
// client (client credentials), every exchanger on one Shared's TokenCache,
// over real HTTP in both eras: a tenant's tool call is made with its own
// client's token. The second tenant's call got the first tenant's token
// from Redis (the key held the target only).
func TestStackTokenCacheKeptPerTenantClient(t *testing.T) {
	srv := startRedis(t)
	idp := authtest.NewServer(t)
	sh := newShared(t, srv.addr, nil)
	exchangers := map[string]*obo.Exchanger{}
	for _, tenant := range []string{"acme", "globex"} {
		id, secret := tenant+"-reports", clientSecret+"-"+tenant
		require.NoError(t, idp.RegisterClient(authtest.Client{ID: id, Secret: secret, AuthMethod: authtest.ClientSecretBasic}))
		ex, err := obo.New(obo.Config{TokenEndpoint: idp.TokenURL(), ClientID: id, ClientSecret: auth.NewCredential(secret), SharedCache: sh.TokenCache()})
		require.NoError(t, err)
		exchangers[tenant] = ex
	}
	reports := obo.Target{Flavor: obo.ClientCredentials, Audience: "https://reports.example.com", Scopes: []string{"reports.read"}}

	v, err := auth.NewJWTValidator(auth.JWTConfig{Issuer: idp.Issuer(), Audience: benchResource})
	require.NoError(t, err)
	t.Cleanup(func() { _ = v.Close() })
	g := notesGuard(t, idp, benchResource, v)
	s := server.NewMCPServer("notes", "1.0", g.ServerOptions()...)
	s.AddTool(mcp.NewTool("notes_read", mcp.WithReadOnlyHintAnnotation(true)), func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		tenant, _ := tenancy.FromContext(ctx)
		tok, err := exchangers[tenant].Token(ctx, reports)
		if err != nil {
			return mcp.NewToolResultError("exchange failed"), nil
		}
		parts := strings.Split(tok.AccessToken.Reveal(), ".")
		payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
		var claims struct {
			ClientID string `json:"client_id"`
		}
		_ = json.Unmarshal(payload, &claims)
		return mcp.NewToolResultText("downstream as " + claims.ClientID), nil
	})
	hs := httptest.NewServer(g.Handler(s))
	t.Cleanup(hs.Close)
	url := hs.URL + "/mcp"

	call := func(tok, sid string) string {
		resp, err := http.DefaultClient.Do(retarget(t, benchRequest(tok, sid), url))
		require.NoError(t, err)
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
		return string(body)
	}
	for _, era := range []string{"2026-07-28", "2025-11-25"} {
		t.Run(era, func(t *testing.T) {
			for _, tenant := range []string{"acme", "globex"} {
				tok := idp.MustMint(map[string]any{"aud": benchResource, "sub": "user-" + tenant, "tenant_id": tenant, "scope": "notes:read"})
				sid := ""
				if era == "2025-11-25" {
					resp := initialize(t, url, tok)
					require.Equal(t, http.StatusOK, resp.StatusCode)
					sid = resp.Header.Get("Mcp-Session-Id")
				}
				assert.Contains(t, call(tok, sid), "downstream as "+tenant+"-reports", "tenant %s", tenant)
			}
		})
	}
}
