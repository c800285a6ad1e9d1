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
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/audit"
	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/auth/authtest"
	"github.com/mcpguard/mcpguard/authz"
	"github.com/mcpguard/mcpguard/tenancy"
	"github.com/mcpguard/mcpguard/transport"
	"github.com/mcpguard/mcpguard/transport/ratelimit"
)

const benchResource = "http://127.0.0.1:8080/mcp"

func benchRequest(token, session string) *http.Request {
	version := mcp.ProtocolVersion20260728
	meta := `,"_meta":{"` + mcp.MetaKeyProtocolVersion + `":"` + version + `","` + mcp.MetaKeyClientInfo + `":{"name":"b","version":"1"},"` +
		mcp.MetaKeyClientCapabilities + `":{}}`
	if session != "" {
		version, meta = "2025-11-25", ""
	}
	body := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"notes_read","arguments":{}` + meta + `}}`
	req := httptest.NewRequest(http.MethodPost, benchResource, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set(mcp.HeaderProtocolVersion, version)
	req.Header.Set(mcp.HeaderMethod, "tools/call")
	req.Header.Set(mcp.HeaderName, "notes_read")
	req.Header.Set("Authorization", "Bearer "+token)
	if session != "" {
		req.Header.Set("Mcp-Session-Id", session)
	}
	return req
}

// BenchmarkStackWarm is one warm tools/call through the whole transport
// stack (JWT cache hit, tenancy, session binding, rate limit, policy,
// audit to a discarding sink), with the in-memory stores and with every
// store in Redis on loopback: a 2026-07-28 stateless call and a
// 2025-11-25 call in a session.
func BenchmarkStackWarm(b *testing.B) {
	srv := startRedis(b)
	sh := newShared(b, srv.addr, nil)
	idp := authtest.NewServer(b)
	tok := idp.MustMint(map[string]any{"aud": benchResource, "tenant_id": "acme", "scope": "notes:read"})
	key := testKey(5)

	build := func(b *testing.B, redis bool) http.Handler {
		v, err := auth.NewJWTValidator(auth.JWTConfig{Issuer: idp.Issuer(), Audience: benchResource})
		require.NoError(b, err)
		b.Cleanup(func() { _ = v.Close() })
		res, err := tenancy.New(tenancy.Config{})
		require.NoError(b, err)
		sink, err := audit.NewJSONSink(io.Discard)
		require.NoError(b, err)
		rec, err := audit.New(audit.Config{Sink: sink})
		require.NoError(b, err)
		pl, err := authz.New(authz.Config{ReadScope: "notes:read", WriteScope: "notes:write"})
		require.NoError(b, err)
		var lim ratelimit.Limiter
		var sessions transport.SessionConfig
		if redis {
			if lim, err = sh.RateLimiter(StoreConfig{}); err != nil {
				b.Fatal(err)
			}
			terminated, err := sh.TerminatedSessions(StoreConfig{})
			require.NoError(b, err)
			b.Cleanup(func() { _ = terminated.Close() })
			counts, err := sh.SessionCounts(StoreConfig{})
			require.NoError(b, err)
			sessions = transport.SessionConfig{Terminated: terminated, Counts: counts}
		} else if lim, err = ratelimit.NewMemory(ratelimit.MemoryConfig{}); err != nil {
			b.Fatal(err)
		}
		post, err := ratelimit.NewRequestLimit(ratelimit.RequestLimitConfig{Limiter: lim, Limit: ratelimit.PerSecond(1e9)})
		require.NoError(b, err)
		g, err := transport.New(transport.Config{
			Resource: benchResource, AuthorizationServers: []string{idp.Issuer()}, Validator: v,
			Policy: pl, Tenancy: res, Audit: rec, RateLimit: post, SessionKey: key, Sessions: sessions,
		})
		require.NoError(b, err)
		s := server.NewMCPServer("notes", "1.0", g.ServerOptions()...)
		s.AddTool(mcp.NewTool("notes_read", mcp.WithReadOnlyHintAnnotation(true)), func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return mcp.NewToolResultText("read"), nil
		})
		return g.Handler(s)
	}
	session := func(b *testing.B, h http.Handler) string {
		body := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"b","version":"1"}}}`
		req := httptest.NewRequest(http.MethodPost, benchResource, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Authorization", "Bearer "+tok)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		require.Equal(b, http.StatusOK, rec.Code, rec.Body.String())
		id := rec.Header().Get("Mcp-Session-Id")
		require.NotEmpty(b, id)
		return id
	}
	for _, store := range []string{"memory", "redis"} {
		h := build(b, store == "redis")
		sid := session(b, h)
		for _, era := range []string{"stateless", "session"} {
			b.Run(store+"/"+era, func(b *testing.B) {
				s := ""
				if era == "session" {
					s = sid
				}
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, benchRequest(tok, s))
				require.Equal(b, http.StatusOK, rec.Code, rec.Body.String())
				require.Contains(b, rec.Body.String(), "read")
				b.ReportAllocs()
				for b.Loop() {
					rec := httptest.NewRecorder()
					h.ServeHTTP(rec, benchRequest(tok, s))
					if rec.Code != http.StatusOK {
						b.Fatal(rec.Code, rec.Body.String())
					}
				}
			})
		}
	}
}
