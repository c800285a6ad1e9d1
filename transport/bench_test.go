package transport

import (
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
	"github.com/mcpguard/mcpguard/tenancy"
	"github.com/mcpguard/mcpguard/transport/ratelimit"
)

func benchCall(url, token string) *http.Request {
	body := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"notes_read","arguments":{},"_meta":{"` +
		mcp.MetaKeyProtocolVersion + `":"` + mcp.ProtocolVersion20260728 + `","` + mcp.MetaKeyClientInfo + `":{"name":"b","version":"1"},"` +
		mcp.MetaKeyClientCapabilities + `":{}}}}`
	req := httptest.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set(mcp.HeaderProtocolVersion, mcp.ProtocolVersion20260728)
	req.Header.Set(mcp.HeaderMethod, "tools/call")
	req.Header.Set(mcp.HeaderName, "notes_read")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return req
}

// benchResource is the resource URL of the benchmark stacks.
const benchResource = "http://127.0.0.1:8080/mcp"

// benchGuard builds the prod stack the Stack benchmarks measure (JWT auth
// against a live authtest IdP, tenancy, policy, audit to a discarding JSON
// sink, pre-auth and per-caller rate limits that are never reached) and
// mints a notes:read token for it.
func benchGuard(b *testing.B) (*Guard, string) {
	b.Helper()
	const resource = benchResource
	idp := authtest.NewServer(b)
	v, err := auth.NewJWTValidator(auth.JWTConfig{Issuer: idp.Issuer(), Audience: resource})
	require.NoError(b, err)
	res, err := tenancy.New(tenancy.Config{})
	require.NoError(b, err)
	sink, err := audit.NewJSONSink(io.Discard)
	require.NoError(b, err)
	rec, err := audit.New(audit.Config{Sink: sink})
	require.NoError(b, err)
	lim, err := ratelimit.NewMemory(ratelimit.MemoryConfig{})
	require.NoError(b, err)
	pre, err := ratelimit.NewRequestLimit(ratelimit.RequestLimitConfig{Limiter: lim, Limit: ratelimit.PerSecond(1e9), KeyBy: ratelimit.Client, Namespace: "preauth"})
	require.NoError(b, err)
	post, err := ratelimit.NewRequestLimit(ratelimit.RequestLimitConfig{Limiter: lim, Limit: ratelimit.PerSecond(1e9)})
	require.NoError(b, err)
	g, err := New(Config{
		Resource: resource, AuthorizationServers: []string{idp.Issuer()}, Validator: v,
		Policy: notesPolicy(b), Tenancy: res, Audit: rec, PreAuthRateLimit: pre, RateLimit: post,
	})
	require.NoError(b, err)
	tok := idp.MustMint(map[string]any{"aud": resource, "tenant_id": "acme", "scope": "notes:read"})
	return g, tok
}

// BenchmarkStack compares one warm tools/call through bare mcp-go with the
// same call through the full prod stack (JWT auth with a verified-token
// cache hit, tenancy, session binding, rate limits before and after auth,
// step-up peek, policy, audit to a discarding JSON sink). The difference
// between the two is mcpguard's cost per request (DESIGN.md budget:
// ≤ 3 µs and ≤ 25 allocations).
func BenchmarkStack(b *testing.B) {
	const resource = benchResource
	g, tok := benchGuard(b)

	run := func(b *testing.B, h http.Handler, token string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, benchCall(resource, token))
		require.Equal(b, http.StatusOK, rec.Code, rec.Body.String())
		require.Contains(b, rec.Body.String(), "read for")
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, benchCall(resource, token))
			if rec.Code != http.StatusOK {
				b.Fatal(rec.Code)
			}
		}
	}
	runParallel := func(b *testing.B, h http.Handler, token string) {
		b.ReportAllocs()
		b.SetParallelism(16)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, benchCall(resource, token))
				if rec.Code != http.StatusOK {
					b.Error(rec.Code)
					return
				}
			}
		})
	}
	b.Run("bare-parallel", func(b *testing.B) {
		runParallel(b, server.NewStreamableHTTPServer(notesServer()), "")
	})
	b.Run("mcpguard-parallel", func(b *testing.B) {
		runParallel(b, g.Handler(notesServer(g.ServerOptions()...)), tok)
	})
	b.Run("bare", func(b *testing.B) {
		run(b, server.NewStreamableHTTPServer(notesServer()), "")
	})
	b.Run("mcpguard", func(b *testing.B) {
		run(b, g.Handler(notesServer(g.ServerOptions()...)), tok)
	})
}

// benchSessionCall is a warm 2025-11-25 tools/call in the session sid.
func benchSessionCall(url, token, sid string) *http.Request {
	body := `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"notes_read","arguments":{}}}`
	req := httptest.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set(mcp.HeaderProtocolVersion, "2025-11-25")
	req.Header.Set("Mcp-Session-Id", sid)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return req
}

// benchInitialize opens a 2025-11-25 session on h and returns its ID.
func benchInitialize(b *testing.B, h http.Handler, url, token string) string {
	b.Helper()
	body := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"b","version":"1"}}}`
	req := httptest.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	require.Equal(b, http.StatusOK, rec.Code, rec.Body.String())
	sid := rec.Header().Get("Mcp-Session-Id")
	require.NotEmpty(b, sid)
	note := `{"jsonrpc":"2.0","method":"notifications/initialized"}`
	req = httptest.NewRequest(http.MethodPost, url, strings.NewReader(note))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set(mcp.HeaderProtocolVersion, "2025-11-25")
	req.Header.Set("Mcp-Session-Id", sid)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	require.Less(b, rec.Code, 300, rec.Body.String())
	return sid
}

// BenchmarkStackSession is BenchmarkStack in the 2025-11-25 era: one warm
// tools/call in an initialized session, through bare mcp-go (its own
// session) and through the full prod stack (the same layers as
// BenchmarkStack plus session binding's tag check, terminated-session
// lookup and live-session touch on every call).
func BenchmarkStackSession(b *testing.B) {
	const resource = benchResource
	g, tok := benchGuard(b)

	run := func(b *testing.B, h http.Handler, token string) {
		sid := benchInitialize(b, h, resource, token)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, benchSessionCall(resource, token, sid))
		require.Equal(b, http.StatusOK, rec.Code, rec.Body.String())
		require.Contains(b, rec.Body.String(), "read for")
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, benchSessionCall(resource, token, sid))
			if rec.Code != http.StatusOK {
				b.Fatal(rec.Code, rec.Body.String())
			}
		}
	}
	b.Run("bare", func(b *testing.B) {
		run(b, server.NewStreamableHTTPServer(notesServer()), "")
	})
	b.Run("mcpguard", func(b *testing.B) {
		run(b, g.Handler(notesServer(g.ServerOptions()...)), tok)
	})
}
