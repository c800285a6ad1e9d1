package redisstore

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/auth/authtest"
	"github.com/mcpguard/mcpguard/transport"
	"github.com/mcpguard/mcpguard/transport/ratelimit"
)

// stackReplica is one transport stack on the shared Redis, served over
// real HTTP on loopback.
func stackReplica(t *testing.T, addr string, idp *authtest.Server, resource string, limit ratelimit.Limit, perPrincipal int) string {
	t.Helper()
	sh := newShared(t, addr, nil)
	v, err := auth.NewJWTValidator(auth.JWTConfig{Issuer: idp.Issuer(), Audience: resource})
	require.NoError(t, err)
	t.Cleanup(func() { _ = v.Close() })
	lim, err := sh.RateLimiter(StoreConfig{})
	require.NoError(t, err)
	post, err := ratelimit.NewRequestLimit(ratelimit.RequestLimitConfig{Limiter: lim, Limit: limit})
	require.NoError(t, err)
	terminated, err := sh.TerminatedSessions(StoreConfig{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = terminated.Close() })
	counts, err := sh.SessionCounts(StoreConfig{})
	require.NoError(t, err)
	g := notesGuard(t, idp, resource, v, func(c *transport.Config) {
		c.RateLimit = post
		c.Sessions = transport.SessionConfig{Terminated: terminated, Counts: counts, MaxPerPrincipal: perPrincipal}
	})
	s := server.NewMCPServer("notes", "1.0", g.ServerOptions()...)
	s.AddTool(mcp.NewTool("notes_read", mcp.WithReadOnlyHintAnnotation(true)), func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultText("read"), nil
	})
	hs := httptest.NewServer(g.Handler(s))
	t.Cleanup(hs.Close)
	return hs.URL + "/mcp"
}

func do(t *testing.T, req *http.Request) *http.Response {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp
}

// retarget sends a request built for benchResource to url instead.
func retarget(t *testing.T, req *http.Request, url string) *http.Request {
	t.Helper()
	body, err := io.ReadAll(req.Body)
	require.NoError(t, err)
	out, err := http.NewRequest(req.Method, url, strings.NewReader(string(body)))
	require.NoError(t, err)
	out.Header = req.Header.Clone()
	return out
}

func initialize(t *testing.T, url, tok string) *http.Response {
	t.Helper()
	body := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Authorization", "Bearer "+tok)
	return do(t, req)
}

// Two transport stacks on one Redis, over real HTTP, stand for two
// replicas: one rate-limit budget per caller between them in both eras,
// and one live-session cap per principal.
func TestStacksShareLimitsAndSessionCaps(t *testing.T) {
	srv := startRedis(t)
	idp := authtest.NewServer(t)
	resource := benchResource
	three := ratelimit.Limit{Events: 3, Period: time.Hour}
	r1 := stackReplica(t, srv.addr, idp, resource, three, 1)
	r2 := stackReplica(t, srv.addr, idp, resource, three, 1)

	for _, era := range []string{"2026-07-28", "2025-11-25"} {
		t.Run("rate limit "+era, func(t *testing.T) {
			tok := idp.MustMint(map[string]any{"aud": resource, "sub": "limit-" + era, "tenant_id": "acme", "scope": "notes:read"})
			sid := "" // stateless
			if era == "2025-11-25" {
				// One session, created on 1, used on both.
				resp := initialize(t, r1, tok)
				require.Equal(t, http.StatusOK, resp.StatusCode)
				sid = resp.Header.Get("Mcp-Session-Id")
			}
			call := func(url string) int { return do(t, retarget(t, benchRequest(tok, sid), url)).StatusCode }
			got := []int{call(r1), call(r2), call(r1), call(r2)}
			if era == "2025-11-25" {
				// The initialize spent one event of the three: a budget
				// shared by both replicas.
				assert.Equal(t, []int{200, 200, 429, 429}, got)
			} else {
				assert.Equal(t, []int{200, 200, 200, 429}, got)
			}
		})
	}

	t.Run("session cap per principal", func(t *testing.T) {
		tok := idp.MustMint(map[string]any{"aud": resource, "sub": "sessions", "tenant_id": "acme", "scope": "notes:read"})
		first := initialize(t, r1, tok)
		require.Equal(t, http.StatusOK, first.StatusCode)
		assert.Equal(t, http.StatusTooManyRequests, initialize(t, r2, tok).StatusCode, "the cap of one holds across replicas")
		del, err := http.NewRequest(http.MethodDelete, r2, nil)
		require.NoError(t, err)
		del.Header.Set("Authorization", "Bearer "+tok)
		del.Header.Set("Mcp-Session-Id", first.Header.Get("Mcp-Session-Id"))
		del.Header.Set(mcp.HeaderProtocolVersion, "2025-11-25")
		require.Less(t, do(t, del).StatusCode, 300)
		assert.Equal(t, http.StatusOK, initialize(t, r1, tok).StatusCode, "deleted on 2, the slot is free on 1")
	})
}
