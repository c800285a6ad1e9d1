package conformance

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const initializeBody = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`

func post(t *testing.T, url, host, origin, authz string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(initializeBody))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if host != "" {
		req.Host = host
	}
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// TestGuardedServer proves the wrapped variant is really guarded: the
// backend refuses what the proxy's token makes acceptable, and mcp-go's
// client works through the proxy.
func TestGuardedServer(t *testing.T) {
	ctx := context.Background()
	srv, err := Start(ctx, Options{Guarded: true})
	require.NoError(t, err)
	defer srv.Close()
	require.NotEmpty(t, srv.Backend)
	front := strings.TrimSuffix(strings.TrimPrefix(srv.URL, "http://"), "/mcp")

	t.Run("backend without token", func(t *testing.T) {
		resp := post(t, srv.Backend, front, "", "")
		assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
		challenge := resp.Header.Get("WWW-Authenticate")
		assert.Contains(t, challenge, `resource_metadata="http://`+front+`/.well-known/oauth-protected-resource/mcp"`)
		assert.NotContains(t, challenge, "error=", "no error code when no token was sent (RFC 6750 §3.1)")
	})
	t.Run("backend with a forged token", func(t *testing.T) {
		resp := post(t, srv.Backend, front, "", "Bearer eyJhbGciOiJub25lIn0.e30.")
		assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
		assert.Contains(t, resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`)
	})
	t.Run("foreign origin", func(t *testing.T) {
		resp := post(t, srv.URL, "", "http://evil.example.com", "")
		assert.Equal(t, http.StatusForbidden, resp.StatusCode)
	})
	t.Run("rebinding host", func(t *testing.T) {
		resp := post(t, srv.URL, "evil.example.com", "", "")
		assert.Equal(t, http.StatusForbidden, resp.StatusCode)
	})
	t.Run("own origin through the proxy", func(t *testing.T) {
		resp := post(t, srv.URL, "", "http://"+front, "")
		assert.Equal(t, http.StatusOK, resp.StatusCode)
	})
	t.Run("metadata", func(t *testing.T) {
		resp, err := http.Get("http://" + front + "/.well-known/oauth-protected-resource/mcp")
		require.NoError(t, err)
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Contains(t, string(body), `"resource":"`+srv.URL+`"`)
	})
	t.Run("mcp-go client through the proxy", func(t *testing.T) {
		c, err := client.NewStreamableHttpClient(srv.URL)
		require.NoError(t, err)
		defer c.Close()
		require.NoError(t, c.Start(ctx))
		init := mcp.InitializeRequest{}
		init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
		init.Params.ClientInfo = mcp.Implementation{Name: "guarded-test", Version: "1"}
		_, err = c.Initialize(ctx, init)
		require.NoError(t, err)
		req := mcp.CallToolRequest{}
		req.Params.Name = "test_simple_text"
		res, err := c.CallTool(ctx, req)
		require.NoError(t, err)
		require.Len(t, res.Content, 1)
		assert.Equal(t, "This is a simple text response for testing.", res.Content[0].(mcp.TextContent).Text)
	})
	t.Run("session bound to the principal", func(t *testing.T) {
		init, err := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader(initializeBody))
		require.NoError(t, err)
		init.Header.Set("Content-Type", "application/json")
		init.Header.Set("Accept", "application/json, text/event-stream")
		resp, err := http.DefaultClient.Do(init)
		require.NoError(t, err)
		resp.Body.Close()
		sid := resp.Header.Get("Mcp-Session-Id")
		require.NotEmpty(t, sid)
		mcpID, _, tagged := strings.Cut(sid, ".")
		require.True(t, tagged, "the binding tags mcp-go's session ID")

		list := func(id string) int {
			req, err := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader(`{"jsonrpc":"2.0","id":2,"method":"tools/list"}`))
			require.NoError(t, err)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/event-stream")
			req.Header.Set("Mcp-Session-Id", id)
			req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return resp.StatusCode
		}
		assert.Equal(t, http.StatusOK, list(sid))
		assert.Equal(t, http.StatusNotFound, list(mcpID), "mcp-go's bare session ID does not serve")
	})
}
