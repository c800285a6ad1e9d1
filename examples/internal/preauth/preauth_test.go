package preauth

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/transport/ratelimit"
)

// inner answers as the authentication layer would for the request's
// X-Answer header.
var inner = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	switch r.Header.Get("X-Answer") {
	case "401":
		w.Header().Set("WWW-Authenticate", `Bearer resource_metadata="https://x/.well-known/oauth-protected-resource"`)
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"error":"unauthorized"}`))
	case "400-bearer":
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_request"`)
		w.WriteHeader(http.StatusBadRequest)
	case "400":
		w.WriteHeader(http.StatusBadRequest)
	case "403":
		w.WriteHeader(http.StatusForbidden)
	default:
		_, _ = w.Write([]byte("ok")) // implicit 200
	}
})

func newLimited(t *testing.T, burst int) http.Handler {
	t.Helper()
	mem, err := ratelimit.NewMemory(ratelimit.MemoryConfig{})
	require.NoError(t, err)
	m, err := ratelimit.NewMiddleware(ratelimit.MiddlewareConfig{
		Limiter: mem, Limit: ratelimit.Limit{Events: 1, Period: 3600e9, Burst: burst}, KeyBy: ratelimit.Address,
	})
	require.NoError(t, err)
	return Limit(m)(inner)
}

func do(h http.Handler, answer, addr string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, "/mcp", nil)
	r.Header.Set("X-Answer", answer)
	r.RemoteAddr = addr
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestLimit(t *testing.T) {
	tests := []struct {
		answer  string
		charged bool
		status  int
	}{
		{"401", true, http.StatusUnauthorized},
		{"400-bearer", true, http.StatusBadRequest},
		{"400", false, http.StatusBadRequest},
		{"403", false, http.StatusForbidden},
		{"200", false, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.answer, func(t *testing.T) {
			h := newLimited(t, 3)
			for i := range 3 {
				w := do(h, tt.answer, "192.0.2.1:1000")
				require.Equal(t, tt.status, w.Code, "request %d", i)
			}
			w := do(h, tt.answer, "192.0.2.1:2000")
			if !tt.charged {
				assert.Equal(t, tt.status, w.Code, "never charged")
				return
			}
			assert.Equal(t, http.StatusTooManyRequests, w.Code)
			assert.Equal(t, "3600", w.Header().Get("Retry-After"))
			assert.Empty(t, w.Header().Get("WWW-Authenticate"))
			assert.Equal(t, "rate limit exceeded\n", w.Body.String(), "the inner body is dropped")
			// Successes from that address still pass; another address has
			// its own budget.
			assert.Equal(t, http.StatusOK, do(h, "200", "192.0.2.1:3000").Code)
			assert.Equal(t, tt.status, do(h, tt.answer, "198.51.100.7:1000").Code)
		})
	}
}

func TestLimitKeepsStreaming(t *testing.T) {
	h := Limit(nil)(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("event: x\n\n"))
		require.NoError(t, http.NewResponseController(w).Flush())
	}))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/mcp", nil))
	assert.True(t, w.Flushed)
	assert.Equal(t, "event: x\n\n", w.Body.String())
}
