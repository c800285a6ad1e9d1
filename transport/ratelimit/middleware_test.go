package ratelimit

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/auth"
)

// clock is a settable time source for MemoryConfig.Now.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// recorder collects events.
type recorder struct {
	mu     sync.Mutex
	events []Event
	ctxs   []context.Context
}

func (r *recorder) ReportLimit(ctx context.Context, ev Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev)
	r.ctxs = append(r.ctxs, ctx)
}

func (r *recorder) Events() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event(nil), r.events...)
}

// limiterFunc adapts a function to Limiter, for failure injection.
type limiterFunc func(ctx context.Context, key string, limit Limit) (Decision, error)

func (f limiterFunc) Allow(ctx context.Context, key string, limit Limit) (Decision, error) {
	return f(ctx, key, limit)
}

func okHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
}

type call struct {
	tenant string
	p      *auth.Principal
	remote string
	xff    string
}

func serve(h http.Handler, c call) *httptest.ResponseRecorder {
	ctx := withIdentity(context.Background(), c.tenant, c.p)
	r := httptest.NewRequestWithContext(ctx, http.MethodPost, "/mcp", nil)
	if c.remote != "" {
		r.RemoteAddr = c.remote
	}
	if c.xff != "" {
		r.Header.Set("X-Forwarded-For", c.xff)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec
}

func TestMiddleware429(t *testing.T) {
	clk := &clock{now: t0}
	mem := newMemory(t, MemoryConfig{Now: clk.Now})
	rec := &recorder{}
	m, err := NewRequestLimit(RequestLimitConfig{
		Limiter:  mem,
		Limit:    Limit{Events: 2, Period: 3 * time.Second, Burst: 2},
		Reporter: rec,
	})
	require.NoError(t, err)
	h := m.Middleware(okHandler())
	alice := call{tenant: "acme", p: &auth.Principal{Issuer: "iss", Subject: "alice"}}

	for range 2 {
		res := serve(h, alice)
		require.Equal(t, http.StatusOK, res.Code)
		assert.Empty(t, res.Header().Get("Retry-After"))
	}
	res := serve(h, alice)
	assert.Equal(t, http.StatusTooManyRequests, res.Code)
	// One event per 1.5 s: Retry-After rounds 1.5 up to 2.
	assert.Equal(t, "2", res.Header().Get("Retry-After"))
	assert.Equal(t, "rate limit exceeded\n", res.Body.String())

	clk.Advance(1400 * time.Millisecond)
	res = serve(h, alice)
	assert.Equal(t, http.StatusTooManyRequests, res.Code)
	assert.Equal(t, "1", res.Header().Get("Retry-After"), "0.1 s rounds up to 1")

	clk.Advance(100 * time.Millisecond)
	assert.Equal(t, http.StatusOK, serve(h, alice).Code)

	events := rec.Events()
	require.Len(t, events, 2)
	assert.Equal(t, EventLimited, events[0].Kind)
	assert.Equal(t, "http|t4:acmei3:isss5:alice", events[0].Key)
	assert.Equal(t, 1500*time.Millisecond, events[0].RetryAfter)
	assert.Equal(t, Limit{Events: 2, Period: 3 * time.Second, Burst: 2}, events[0].Limit)
	assert.Empty(t, events[0].Tool)
	p, ok := auth.FromContext(rec.ctxs[0])
	require.True(t, ok, "the hook gets the request context")
	assert.Equal(t, "alice", p.Subject)
}

func TestMiddlewareKeysAndOverrides(t *testing.T) {
	trustedLB := netip.MustParsePrefix("10.0.0.0/8")
	alice := &auth.Principal{Issuer: "iss", Subject: "alice"}
	bob := &auth.Principal{Issuer: "iss", Subject: "bob"}
	tests := []struct {
		name  string
		cfg   RequestLimitConfig
		calls []call
		want  []int
	}{
		{
			name:  "each user of a tenant has a budget",
			calls: []call{{tenant: "acme", p: alice}, {tenant: "acme", p: alice}, {tenant: "acme", p: bob}},
			want:  []int{200, 429, 200},
		},
		{
			name:  "same subject in two tenants",
			calls: []call{{tenant: "acme", p: alice}, {tenant: "globex", p: alice}},
			want:  []int{200, 200},
		},
		{
			name:  "keyed by tenant: users share",
			cfg:   RequestLimitConfig{KeyBy: Tenant},
			calls: []call{{tenant: "acme", p: alice}, {tenant: "acme", p: bob}, {tenant: "globex", p: bob}},
			want:  []int{200, 429, 200},
		},
		{
			name:  "premium tenant gets more",
			cfg:   RequestLimitConfig{KeyBy: Tenant, Tenants: map[string]Limit{"premium": PerMinute(3)}},
			calls: []call{{tenant: "premium"}, {tenant: "premium"}, {tenant: "premium"}, {tenant: "premium"}, {tenant: "acme"}, {tenant: "acme"}},
			want:  []int{200, 200, 200, 429, 200, 429},
		},
		{
			name:  "unauthenticated keyed by peer address",
			calls: []call{{remote: "192.0.2.1:1000"}, {remote: "192.0.2.1:2000"}, {remote: "192.0.2.2:1000"}},
			want:  []int{200, 429, 200},
		},
		{
			name:  "x-forwarded-for from an untrusted peer is ignored",
			calls: []call{{remote: "192.0.2.1:1", xff: "198.51.100.1"}, {remote: "192.0.2.1:1", xff: "198.51.100.2"}},
			want:  []int{200, 429},
		},
		{
			name: "x-forwarded-for from a trusted proxy names the client",
			cfg:  RequestLimitConfig{TrustedProxies: []netip.Prefix{trustedLB}},
			calls: []call{
				{remote: "10.0.0.1:1", xff: "198.51.100.1"},
				{remote: "10.0.0.2:1", xff: "198.51.100.2"},
				{remote: "10.0.0.1:1", xff: "203.0.113.66, 198.51.100.1"}, // spoofed left part is ignored
			},
			want: []int{200, 200, 429},
		},
		{
			name:  "ipv6 clients share their /64",
			calls: []call{{remote: "[2001:db8::1]:1"}, {remote: "[2001:db8::ffff]:1"}, {remote: "[2001:db8:0:1::1]:1"}},
			want:  []int{200, 429, 200},
		},
		{
			name:  "address on top of identity",
			cfg:   RequestLimitConfig{KeyBy: Subject | Address},
			calls: []call{{p: alice, remote: "192.0.2.1:1"}, {p: alice, remote: "192.0.2.2:1"}, {p: alice, remote: "192.0.2.1:1"}},
			want:  []int{200, 200, 429},
		},
		{
			name:  "client",
			cfg:   RequestLimitConfig{KeyBy: Client},
			calls: []call{{p: &auth.Principal{Issuer: "iss", Subject: "a", ClientID: "app"}}, {p: &auth.Principal{Issuer: "iss", Subject: "b", ClientID: "app"}}},
			want:  []int{200, 429},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.Limiter = newMemory(t, MemoryConfig{})
			cfg.Limit = PerMinute(1)
			m, err := NewRequestLimit(cfg)
			require.NoError(t, err)
			h := m.Middleware(okHandler())
			var got []int
			for _, c := range tc.calls {
				got = append(got, serve(h, c).Code)
			}
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestMiddlewareLimiterFailure(t *testing.T) {
	redisDown := errors.New("dial tcp 127.0.0.1:6379: connection refused")
	tests := []struct {
		name     string
		lim      limiterFunc
		wantCode int
		wantKind EventKind
	}{
		{
			name: "fail closed answers 503",
			lim: func(context.Context, string, Limit) (Decision, error) {
				return Decision{RetryAfter: time.Second}, errors.Join(ErrUnavailable, redisDown)
			},
			wantCode: http.StatusServiceUnavailable,
			wantKind: EventUnavailable,
		},
		{
			name: "fail open lets the request through and reports it",
			lim: func(context.Context, string, Limit) (Decision, error) {
				return Decision{Allowed: true, FailedOpen: errors.Join(ErrUnavailable, redisDown)}, nil
			},
			wantCode: http.StatusOK,
			wantKind: EventFailOpen,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{}
			m, err := NewRequestLimit(RequestLimitConfig{Limiter: tc.lim, Limit: PerSecond(1), Reporter: rec})
			require.NoError(t, err)
			res := serve(m.Middleware(okHandler()), call{remote: "192.0.2.1:1"})
			assert.Equal(t, tc.wantCode, res.Code)
			if tc.wantCode != http.StatusOK {
				assert.Equal(t, "1", res.Header().Get("Retry-After"))
				assert.Equal(t, "rate limiter unavailable\n", res.Body.String(), "no cause leaks to the client")
			}
			events := rec.Events()
			require.Len(t, events, 1)
			assert.Equal(t, tc.wantKind, events[0].Kind)
			assert.ErrorIs(t, events[0].Err, redisDown)
			assert.ErrorIs(t, events[0].Err, ErrUnavailable)
		})
	}
}

func TestNewRequestLimitConfig(t *testing.T) {
	mem := newMemory(t, MemoryConfig{})
	tests := []struct {
		name  string
		cfg   RequestLimitConfig
		field string
	}{
		{"no limit", RequestLimitConfig{Limiter: mem}, "Limit.Events"},
		{"bad tenant limit", RequestLimitConfig{Limiter: mem, Limit: PerSecond(1), Tenants: map[string]Limit{"a": {Events: -1}}}, `Tenants["a"]`},
		{"empty tenant", RequestLimitConfig{Limiter: mem, Limit: PerSecond(1), Tenants: map[string]Limit{"": PerSecond(1)}}, "Tenants"},
		{"unknown parts", RequestLimitConfig{Limiter: mem, Limit: PerSecond(1), KeyBy: 0x40}, "KeyBy"},
		{"invalid proxy", RequestLimitConfig{Limiter: mem, Limit: PerSecond(1), TrustedProxies: []netip.Prefix{{}}}, "TrustedProxies[0]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewRequestLimit(tc.cfg)
			require.ErrorIs(t, err, ErrConfig)
			assert.Contains(t, err.Error(), tc.field)
		})
	}
}

func TestRequestLimitConfigCopied(t *testing.T) {
	tenants := map[string]Limit{"premium": PerMinute(2)}
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	m, err := NewRequestLimit(RequestLimitConfig{
		Limiter: newMemory(t, MemoryConfig{}), Limit: PerMinute(1), KeyBy: Tenant,
		Tenants: tenants, TrustedProxies: proxies,
	})
	require.NoError(t, err)
	tenants["premium"] = PerMinute(100)
	proxies[0] = netip.MustParsePrefix("0.0.0.0/0")
	h := m.Middleware(okHandler())
	codes := []int{serve(h, call{tenant: "premium"}).Code, serve(h, call{tenant: "premium"}).Code, serve(h, call{tenant: "premium"}).Code}
	assert.Equal(t, []int{200, 200, 429}, codes)
	assert.Equal(t, 200, serve(h, call{remote: "192.0.2.1:1", xff: "198.51.100.1"}).Code)
	assert.Equal(t, 429, serve(h, call{remote: "192.0.2.1:1", xff: "198.51.100.2"}).Code, "the peer is not trusted")
}

func BenchmarkMiddleware(b *testing.B) {
	m, err := NewRequestLimit(RequestLimitConfig{
		Limiter: newMemory(b, MemoryConfig{}),
		Limit:   Limit{Events: 1 << 30, Burst: 1 << 30},
	})
	require.NoError(b, err)
	h := m.Middleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	ctx := withIdentity(context.Background(), "acme", &auth.Principal{Issuer: "https://idp.example.com", Subject: "alice"})
	r := httptest.NewRequestWithContext(ctx, http.MethodPost, "/mcp", nil)
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, r)
	}
}

// Middlewares (and tool budgets) sharing one Limiter keep their budgets
// apart by namespace: spending one never spends the other for the same
// caller.
func TestMiddlewareNamespacesKeepBucketsApart(t *testing.T) {
	mem := newMemory(t, MemoryConfig{})
	pre, err := NewRequestLimit(RequestLimitConfig{Limiter: mem, Limit: PerMinute(1), KeyBy: Address, Namespace: "preauth"})
	require.NoError(t, err)
	unauth, err := NewRequestLimit(RequestLimitConfig{Limiter: mem, Limit: PerMinute(1), KeyBy: Address, Namespace: "unauth"})
	require.NoError(t, err)
	assert.Equal(t, "preauth", pre.Namespace())
	plain, err := NewRequestLimit(RequestLimitConfig{Limiter: mem, Limit: PerMinute(1), KeyBy: Address})
	require.NoError(t, err)
	assert.Equal(t, DefaultNamespace, plain.Namespace())
	from := call{remote: "192.0.2.1:1"}
	assert.Equal(t, 200, serve(unauth.Middleware(okHandler()), from).Code)
	assert.Equal(t, 429, serve(unauth.Middleware(okHandler()), from).Code)
	assert.Equal(t, 200, serve(pre.Middleware(okHandler()), from).Code, "another namespace, another bucket")
	assert.Equal(t, 200, serve(plain.Middleware(okHandler()), from).Code)

	for _, bad := range []string{"UPPER", "has space", "a|b", strings.Repeat("x", 33)} {
		_, err := NewRequestLimit(RequestLimitConfig{Limiter: mem, Limit: PerMinute(1), Namespace: bad})
		assert.ErrorIs(t, err, ErrConfig, bad)
		_, err = NewToolBudgets(ToolBudgetsConfig{Namespace: bad})
		assert.ErrorIs(t, err, ErrConfig, bad)
	}
}

// A nil Limiter is a private in-memory one: two middlewares without a
// Limiter share nothing.
func TestNewRequestLimitOwnMemory(t *testing.T) {
	a, err := NewRequestLimit(RequestLimitConfig{Limit: Limit{Events: 1, Period: time.Hour, Burst: 1}})
	require.NoError(t, err)
	b, err := NewRequestLimit(RequestLimitConfig{Limit: Limit{Events: 1, Period: time.Hour, Burst: 1}})
	require.NoError(t, err)
	require.NotNil(t, a.lim)
	assert.NotSame(t, a.lim, b.lim)
}

// reporterFunc adapts a function to Reporter.
type reporterFunc func(ctx context.Context, ev Event)

func (f reporterFunc) ReportLimit(ctx context.Context, ev Event) { f(ctx, ev) }

// TestMiddlewareReporting: a Reporting copy tells its Reporter every
// refusal and fail-open, with the namespace, after the configured Reporter, sharing the
// original's budgets; the original reports nothing to it; Decide reports
// as Handler does without writing.
func TestMiddlewareReporting(t *testing.T) {
	mem, err := NewMemory(MemoryConfig{})
	require.NoError(t, err)
	var onEvent recorder
	m, err := NewRequestLimit(RequestLimitConfig{Limiter: mem, Limit: Limit{Events: 1, Period: time.Hour, Burst: 1}, Namespace: "preauth", Reporter: &onEvent})
	require.NoError(t, err)
	var mu sync.Mutex
	var reported []Event
	rep := reporterFunc(func(_ context.Context, ev Event) {
		mu.Lock()
		defer mu.Unlock()
		reported = append(reported, ev)
	})
	assert.Same(t, m, m.Reporting(nil))
	rm := m.Reporting(rep)
	require.NotSame(t, m, rm)

	req := func() *http.Request {
		r := httptest.NewRequest(http.MethodPost, "/mcp", nil)
		r.RemoteAddr = "192.0.2.7:1234"
		return r
	}
	w := httptest.NewRecorder()
	rm.Middleware(okHandler()).ServeHTTP(w, req())
	assert.Equal(t, http.StatusOK, w.Code)
	w = httptest.NewRecorder()
	m.Middleware(okHandler()).ServeHTTP(w, req())
	assert.Equal(t, http.StatusTooManyRequests, w.Code, "the copy shares the original's budget")
	assert.Empty(t, reported, "the original does not report to the copy's Reporter")
	d, err := rm.Decide(req())
	require.NoError(t, err)
	assert.False(t, d.Allowed)
	require.Len(t, reported, 1)
	assert.Equal(t, EventLimited, reported[0].Kind)
	assert.Equal(t, "preauth", reported[0].Namespace)
	evs := onEvent.Events()
	require.Len(t, evs, 2, "the configured Reporter still sees both refusals")
	assert.Equal(t, "preauth", evs[1].Namespace)

	// Failures: fail closed and fail open are reported too.
	for _, tc := range []struct {
		lim  Limiter
		kind EventKind
	}{
		{limiterFunc(func(context.Context, string, Limit) (Decision, error) { return Decision{}, ErrUnavailable }), EventUnavailable},
		{limiterFunc(func(context.Context, string, Limit) (Decision, error) {
			return Decision{Allowed: true, FailedOpen: errors.New("down")}, nil
		}), EventFailOpen},
	} {
		reported = nil
		fm, err := NewRequestLimit(RequestLimitConfig{Limiter: tc.lim, Limit: PerSecond(1), Namespace: "http"})
		require.NoError(t, err)
		fm.Reporting(rep).Middleware(okHandler()).ServeHTTP(httptest.NewRecorder(), req())
		require.Len(t, reported, 1, tc.kind.String())
		assert.Equal(t, tc.kind, reported[0].Kind)
		assert.Equal(t, "http", reported[0].Namespace)
	}
}
