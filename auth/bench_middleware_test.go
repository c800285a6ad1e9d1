package auth_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/auth/authtest"
)

// BenchmarkMiddlewareWarm is auth.Middleware in front of a no-op handler
// with a token the JWT validator has already verified (a cache hit):
// header parsing, one SHA-256 of the token, the cache lookup, and the
// principal and credential put in the request context. Goal: ≤ 2 µs.
func BenchmarkMiddlewareWarm(b *testing.B) {
	idp := authtest.NewServer(b)
	v, err := auth.NewJWTValidator(auth.JWTConfig{Issuer: idp.Issuer(), Audience: idp.Audience()})
	require.NoError(b, err)
	b.Cleanup(func() { _ = v.Close() })
	meta, err := auth.ResourceMetadataURL(idp.Audience())
	require.NoError(b, err)
	mw, err := auth.Middleware(v, auth.MiddlewareConfig{ResourceMetadataURL: meta})
	require.NoError(b, err)
	h := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := auth.FromContext(r.Context()); !ok {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	tok := idp.MustMint(map[string]any{"scope": "notes:read"})
	req := httptest.NewRequest(http.MethodPost, "/mcp", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req) // verifies and caches
	require.Equal(b, http.StatusOK, rec.Code)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatal(w.Code)
		}
	}
}

// BenchmarkMiddlewareWarmRevoker is BenchmarkMiddlewareWarm with a
// MemoryRevoker on the validator, against none: "off" has no revoker,
// "empty" one holding nothing (the horizon check and an atomic load),
// "jti" one holding 10,000 revoked token IDs (one keyed SHA-256 of the
// token's jti and a map lookup), "all" the same plus sid and subject
// entries (three digests). The principal is never revoked, so every call
// is served.
func BenchmarkMiddlewareWarmRevoker(b *testing.B) {
	idp := authtest.NewServer(b)
	meta, err := auth.ResourceMetadataURL(idp.Audience())
	require.NoError(b, err)
	tok := idp.MustMint(map[string]any{"scope": "notes:read", "sid": "session-1"})
	for _, mode := range []string{"off", "empty", "jti", "all"} {
		b.Run(mode, func(b *testing.B) {
			cfg := auth.JWTConfig{Issuer: idp.Issuer(), Audience: idp.Audience()}
			if mode != "off" {
				rev, err := auth.NewMemoryRevoker(auth.RevokerConfig{})
				require.NoError(b, err)
				if mode != "empty" {
					for i := range 10_000 {
						require.NoError(b, rev.Revoke(b.Context(), auth.Revocation{Issuer: idp.Issuer(), TokenID: fmt.Sprintf("revoked-%d", i)}))
					}
				}
				if mode == "all" {
					require.NoError(b, rev.Revoke(b.Context(), auth.Revocation{Issuer: idp.Issuer(), SessionID: "other-session"}))
					require.NoError(b, rev.Revoke(b.Context(), auth.Revocation{Issuer: idp.Issuer(), Subject: "someone-else"}))
				}
				cfg.Revoker = rev
			}
			v, err := auth.NewJWTValidator(cfg)
			require.NoError(b, err)
			b.Cleanup(func() { _ = v.Close() })
			mw, err := auth.Middleware(v, auth.MiddlewareConfig{ResourceMetadataURL: meta})
			require.NoError(b, err)
			h := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
			req := httptest.NewRequest(http.MethodPost, "/mcp", nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			require.Equal(b, http.StatusOK, rec.Code)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				if w.Code != http.StatusOK {
					b.Fatal(w.Code)
				}
			}
		})
	}
}
