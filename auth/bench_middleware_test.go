package auth_test

import (
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
