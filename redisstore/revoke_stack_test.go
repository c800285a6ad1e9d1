package redisstore

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/audit"
	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/auth/authtest"
	"github.com/mcpguard/mcpguard/authz"
	"github.com/mcpguard/mcpguard/tenancy"
	"github.com/mcpguard/mcpguard/transport"
)

// revocationStack is a transport stack whose JWT validator asks rev, over
// real HTTP on loopback.
func revocationStack(t *testing.T, idp *authtest.Server, resource string, rev auth.Revoker) string {
	t.Helper()
	v, err := auth.NewJWTValidator(auth.JWTConfig{Issuer: idp.Issuer(), Audience: resource, Revoker: rev})
	require.NoError(t, err)
	t.Cleanup(func() { _ = v.Close() })
	g := notesGuard(t, idp, resource, v)
	s := server.NewMCPServer("notes", "1.0", g.ServerOptions()...)
	s.AddTool(mcp.NewTool("notes_read", mcp.WithReadOnlyHintAnnotation(true)), func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultText("read"), nil
	})
	hs := httptest.NewServer(g.Handler(s))
	t.Cleanup(hs.Close)
	return hs.URL + "/mcp"
}

// A subject revoked on one replica at S+0.4 ms is refused on both for a
// token issued at S, over real HTTP in both eras, as with
// auth.MemoryRevoker: the bound was rounded down to S in Redis, so the
// token was served (TestRevokerSubjectBoundRoundedUp).
func TestStackRevokedSubjectSameMillisecond(t *testing.T) {
	srv := startRedis(t)
	idp := authtest.NewServer(t)
	var urls []string
	var revokers []*Revoker
	for range 2 {
		r := newRevoker(t, newShared(t, srv.addr, nil), RevokerConfig{})
		revokers = append(revokers, r)
		urls = append(urls, revocationStack(t, idp, benchResource, r))
	}
	send := func(url, tok, era string) int {
		if era == "2025-11-25" {
			return initialize(t, url, tok).StatusCode
		}
		return do(t, retarget(t, benchRequest(tok, ""), url)).StatusCode
	}
	for _, era := range []string{"2026-07-28", "2025-11-25"} {
		t.Run(era, func(t *testing.T) {
			sub := "frank-" + era
			s := time.Now().Add(-2 * time.Second).Truncate(time.Second)
			tok := idp.MustMint(map[string]any{"aud": benchResource, "sub": sub, "tenant_id": "acme", "scope": "notes:read", "iat": s.Unix()})
			for _, u := range urls {
				require.Equal(t, http.StatusOK, send(u, tok, era), "served before the revocation")
			}
			require.NoError(t, revokers[0].Revoke(t.Context(), auth.Revocation{Issuer: idp.Issuer(), Subject: sub, IssuedBefore: s.Add(400 * time.Microsecond)}))
			assert.Equal(t, http.StatusUnauthorized, send(urls[0], tok, era), "the replica that revoked")
			_, ok := awaitBound(time.Now(), time.Second, func() bool { return send(urls[1], tok, era) == http.StatusUnauthorized })
			assert.True(t, ok, "the other replica")
		})
	}
}

// notesGuard is the Guard of a notes server for resource whose tokens v
// validates: default tenancy, read and write scopes, audit discarded, and
// whatever more each of more sets.
func notesGuard(t *testing.T, idp *authtest.Server, resource string, v auth.Validator, more ...func(*transport.Config)) *transport.Guard {
	t.Helper()
	res, err := tenancy.New(tenancy.Config{})
	require.NoError(t, err)
	sink, err := audit.NewJSONSink(io.Discard)
	require.NoError(t, err)
	rec, err := audit.New(audit.Config{Sink: sink})
	require.NoError(t, err)
	pl, err := authz.New(authz.Config{ReadScope: "notes:read", WriteScope: "notes:write"})
	require.NoError(t, err)
	cfg := transport.Config{
		Resource: resource, AuthorizationServers: []string{idp.Issuer()}, Validator: v,
		Policy: pl, Tenancy: res, Audit: rec, SessionKey: testKey(5),
	}
	for _, f := range more {
		f(&cfg)
	}
	g, err := transport.New(cfg)
	require.NoError(t, err)
	return g
}
