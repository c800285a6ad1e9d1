package redisrate

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/tenancy"
	"github.com/mcpguard/mcpguard/transport/ratelimit"
)

// Two request middlewares on one Redis stand for two replicas: they share
// one budget per key, whatever the failure policy.
func TestMiddlewareWithRedis(t *testing.T) {
	srv := startRedis(t)
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	serve := func(h http.Handler) *httptest.ResponseRecorder {
		ctx := auth.NewContext(tenancy.NewContext(context.Background(), "acme"), &auth.Principal{Issuer: "iss", Subject: "alice"})
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequestWithContext(ctx, http.MethodPost, "/mcp", nil))
		return rec
	}
	for _, policy := range []FailurePolicy{FailClosed, FailOpen} {
		t.Run(policy.String(), func(t *testing.T) {
			var handlers []http.Handler
			for range 2 {
				l := newRedis(t, Config{Client: newRedisClient(t, srv.addr), Prefix: "mw:" + policy.String() + ":", FailurePolicy: policy})
				m, err := ratelimit.NewRequestLimit(ratelimit.RequestLimitConfig{Limiter: l, Limit: ratelimit.Limit{Events: 2, Period: time.Hour}})
				require.NoError(t, err)
				handlers = append(handlers, m.Middleware(ok))
			}
			assert.Equal(t, 200, serve(handlers[0]).Code)
			assert.Equal(t, 200, serve(handlers[1]).Code)
			res := serve(handlers[0])
			assert.Equal(t, 429, res.Code)
			assert.Equal(t, "1800", res.Header().Get("Retry-After"))
			assert.Equal(t, 429, serve(handlers[1]).Code)
		})
	}
}
