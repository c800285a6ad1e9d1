package redisstore

import (
	"context"
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
)

// introspectionStack is a transport stack for resource whose tokens idp
// introspects, with the shared introspection cache of sh, over real HTTP
// on loopback. Its tool answers with the caller's issuer and subject.
func introspectionStack(t *testing.T, sh *Shared, idp *authtest.Server, resource string) string {
	t.Helper()
	v, err := auth.NewIntrospectionValidator(auth.IntrospectionConfig{
		Issuer: idp.Issuer(), Endpoint: idp.IntrospectionURL(), Audience: resource,
		ClientID: "mcp-rs", ClientSecret: auth.NewCredential(clientSecret),
		SharedCache: sh.IntrospectionCache(),
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = v.Close() })
	g := notesGuard(t, idp, resource, v)
	s := server.NewMCPServer("notes", "1.0", g.ServerOptions()...)
	s.AddTool(mcp.NewTool("notes_read", mcp.WithReadOnlyHintAnnotation(true)), func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		p, _ := auth.FromContext(ctx)
		return mcp.NewToolResultText("caller " + p.Issuer + " " + p.Subject), nil
	})
	hs := httptest.NewServer(g.Handler(s))
	t.Cleanup(hs.Close)
	return hs.URL + "/mcp"
}

// Two servers of one process, each introspecting at its own authorization
// server, share one Shared (and so one IntrospectionCache), over real HTTP
// in both eras. An answer of server A is not server B's: a token A issued
// for B's resource, whose answer carries no "iss" (RFC 7662 §2.2 makes it
// optional), was refused by A (audience) and then served by B as a
// principal of B's issuer; and A's "inactive" for a token of B refused it
// at B.
func TestStackIntrospectionCacheKeptPerServer(t *testing.T) {
	srv := startRedis(t)
	sh := newShared(t, srv.addr, nil)
	idpA, idpB := newIdP(t), newIdP(t)
	resA, resB := "http://127.0.0.1:8081/mcp", "http://127.0.0.1:8082/mcp"
	a := introspectionStack(t, sh, idpA, resA)
	b := introspectionStack(t, sh, idpB, resB)

	call := func(url, tok, era string) (int, string) {
		var req *http.Request
		if era == "2025-11-25" {
			body := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`
			var err error
			req, err = http.NewRequest(http.MethodPost, url, strings.NewReader(body))
			require.NoError(t, err)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/event-stream")
			req.Header.Set("Authorization", "Bearer "+tok)
		} else {
			req = retarget(t, benchRequest(tok, ""), url)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		out, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(out)
	}
	for _, era := range []string{"2026-07-28", "2025-11-25"} {
		t.Run(era, func(t *testing.T) {
			forged := idpA.MustMintOpaque(map[string]any{"iss": nil, "aud": resB, "sub": "victim", "tenant_id": "acme", "scope": "notes:read"})
			status, _ := call(a, forged, era)
			require.Equal(t, http.StatusUnauthorized, status, "not A's audience")
			status, body := call(b, forged, era)
			assert.Equal(t, http.StatusUnauthorized, status, "B served A's answer as its own: %s", body)

			own := idpB.MustMintOpaque(map[string]any{"aud": resB, "sub": "bob", "tenant_id": "acme", "scope": "notes:read"})
			status, _ = call(a, own, era)
			require.Equal(t, http.StatusUnauthorized, status, "A does not know B's token")
			status, body = call(b, own, era)
			require.Equal(t, http.StatusOK, status, "A's inactive answer refused B's token: %s", body)
			if era == "2026-07-28" {
				assert.Contains(t, body, "caller "+idpB.Issuer()+" bob")
			}
		})
	}
}
