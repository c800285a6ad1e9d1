package ratelimit

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/tenancy"
)

func newToolBudgets(t testing.TB, cfg ToolBudgetsConfig) *ToolBudgets {
	t.Helper()
	tb, err := NewToolBudgets(cfg)
	require.NoError(t, err)
	return tb
}

func toolRequest(name string) mcp.CallToolRequest {
	var req mcp.CallToolRequest
	req.Params.Name = name
	return req
}

func okTool(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	return mcp.NewToolResultText("ok"), nil
}

func TestBudgetFor(t *testing.T) {
	tb := newToolBudgets(t, ToolBudgetsConfig{
		Limiter: newMemory(t, MemoryConfig{}),
		Default: Budget{Rate: PerMinute(10), MaxConcurrent: 4, Timeout: 30 * time.Second},
		Tools: map[string]Budget{
			"search": {Rate: PerMinute(5), Timeout: 5 * time.Second},
			"export": {MaxConcurrent: 1},
		},
		Tenants: map[string]TenantBudget{
			"premium": {
				Default: Budget{Rate: PerMinute(100)},
				Tools:   map[string]Budget{"search": {Rate: PerMinute(50)}, "report": {MaxConcurrent: 8}},
			},
			"slow": {Default: Budget{Timeout: time.Minute}},
		},
	})
	norm := func(l Limit) Limit { return l.normalize() }
	tests := []struct {
		tenant, tool string
		want         Budget
	}{
		{"", "other", Budget{Rate: norm(PerMinute(10)), MaxConcurrent: 4, Timeout: 30 * time.Second}},
		{"", "search", Budget{Rate: norm(PerMinute(5)), MaxConcurrent: 4, Timeout: 5 * time.Second}},
		{"", "export", Budget{Rate: norm(PerMinute(10)), MaxConcurrent: 1, Timeout: 30 * time.Second}},
		{"acme", "search", Budget{Rate: norm(PerMinute(5)), MaxConcurrent: 4, Timeout: 5 * time.Second}},
		// Tenant-and-tool beats tool beats tenant beats default, field by field.
		{"premium", "search", Budget{Rate: norm(PerMinute(50)), MaxConcurrent: 4, Timeout: 5 * time.Second}},
		{"premium", "export", Budget{Rate: norm(PerMinute(100)), MaxConcurrent: 1, Timeout: 30 * time.Second}},
		{"premium", "report", Budget{Rate: norm(PerMinute(100)), MaxConcurrent: 8, Timeout: 30 * time.Second}},
		{"premium", "other", Budget{Rate: norm(PerMinute(100)), MaxConcurrent: 4, Timeout: 30 * time.Second}},
		{"slow", "other", Budget{Rate: norm(PerMinute(10)), MaxConcurrent: 4, Timeout: time.Minute}},
		{"slow", "search", Budget{Rate: norm(PerMinute(5)), MaxConcurrent: 4, Timeout: 5 * time.Second}},
	}
	for _, tc := range tests {
		t.Run(tc.tenant+"/"+tc.tool, func(t *testing.T) {
			assert.Equal(t, tc.want, tb.BudgetFor(tc.tenant, tc.tool))
		})
	}
}

func TestToolBudgetsRate(t *testing.T) {
	clk := &clock{now: t0}
	rec := &recorder{}
	tb := newToolBudgets(t, ToolBudgetsConfig{
		Limiter:  newMemory(t, MemoryConfig{Now: clk.Now}),
		Tools:    map[string]Budget{"search": {Rate: Limit{Events: 1, Period: 90 * time.Second}}},
		Tenants:  map[string]TenantBudget{"premium": {Tools: map[string]Budget{"search": {Rate: Limit{Events: 2, Period: 90 * time.Second}}}}},
		Reporter: rec,
	})
	h := tb.ToolMiddleware(okTool)
	alice := &auth.Principal{Issuer: "iss", Subject: "alice"}
	bob := &auth.Principal{Issuer: "iss", Subject: "bob"}
	type step struct {
		tenant string
		p      *auth.Principal
		tool   string
		ok     bool
	}
	steps := []step{
		{"acme", alice, "search", true},
		{"acme", alice, "search", false},
		{"acme", alice, "other", true}, // no budget for "other"
		{"acme", alice, "other", true},
		{"acme", bob, "search", true},     // per subject
		{"globex", alice, "search", true}, // per tenant
		{"premium", alice, "search", true},
		{"premium", alice, "search", true},
		{"premium", alice, "search", false},
		{"", nil, "search", true}, // anonymous calls share one budget
		{"", nil, "search", false},
	}
	for i, s := range steps {
		res, err := h(withIdentity(context.Background(), s.tenant, s.p), toolRequest(s.tool))
		if s.ok {
			require.NoError(t, err, "step %d", i)
			assert.Equal(t, "ok", res.Content[0].(mcp.TextContent).Text)
			continue
		}
		require.Error(t, err, "step %d", i)
		assert.Nil(t, res)
		assert.ErrorIs(t, err, ErrLimited)
		var te *ToolError
		require.ErrorAs(t, err, &te)
		assert.Equal(t, "search", te.Tool)
		want := `tool "search": rate limit exceeded, retry after 90s`
		if s.tenant == "premium" {
			want = `tool "search": rate limit exceeded, retry after 45s` // two per 90 s
		}
		assert.Equal(t, want, err.Error())
	}
	events := rec.Events()
	require.Len(t, events, 3)
	for i, retry := range []time.Duration{90 * time.Second, 45 * time.Second, 90 * time.Second} {
		assert.Equal(t, EventLimited, events[i].Kind)
		assert.Equal(t, "search", events[i].Tool)
		assert.Equal(t, retry, events[i].RetryAfter, "event %d", i)
	}
	assert.Equal(t, "tool|n6:searcht4:acmei3:isss5:alice", events[0].Key)
	assert.Equal(t, "tool|n6:searchanonymous", events[2].Key)

	clk.Advance(90 * time.Second)
	_, err := h(withIdentity(context.Background(), "acme", alice), toolRequest("search"))
	assert.NoError(t, err, "the budget refills")
}

func TestToolBudgetsZeroBudgetPassesThrough(t *testing.T) {
	tb := newToolBudgets(t, ToolBudgetsConfig{})
	type ctxKey struct{}
	ctx := context.WithValue(context.Background(), ctxKey{}, "v")
	var got context.Context
	_, err := tb.ToolMiddleware(func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		got = ctx
		return nil, nil
	})(ctx, toolRequest("x"))
	require.NoError(t, err)
	assert.Equal(t, ctx, got)
}

func TestToolBudgetsConcurrency(t *testing.T) {
	rec := &recorder{}
	tb := newToolBudgets(t, ToolBudgetsConfig{
		Limiter: newMemory(t, MemoryConfig{}),
		Tools: map[string]Budget{
			"slow":    {MaxConcurrent: 2},
			"limited": {MaxConcurrent: 1, Rate: PerMinute(1)},
		},
		KeyBy:    Tenant,
		Reporter: rec,
	})
	started := make(chan struct{})
	unblock := make(chan struct{})
	h := tb.ToolMiddleware(func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		if req.Params.Name == "slow" {
			started <- struct{}{}
			<-unblock
		}
		return mcp.NewToolResultText("ok"), nil
	})
	acme := withIdentity(context.Background(), "acme", nil)
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			_, err := h(acme, toolRequest("slow"))
			assert.NoError(t, err)
		})
		<-started
	}
	assert.Equal(t, 2, tb.inFlight())

	_, err := h(acme, toolRequest("slow"))
	require.ErrorIs(t, err, ErrConcurrency)
	assert.Equal(t, `tool "slow": too many concurrent calls`, err.Error())
	require.Len(t, rec.Events(), 1)
	assert.Equal(t, EventConcurrency, rec.Events()[0].Kind)

	// Another tenant has its own slots.
	globex := withIdentity(context.Background(), "globex", nil)
	wg.Go(func() {
		_, err := h(globex, toolRequest("slow"))
		assert.NoError(t, err)
	})
	<-started
	assert.Equal(t, 3, tb.inFlight())

	close(unblock)
	wg.Wait()
	assert.Equal(t, 0, tb.inFlight(), "slots are released")

	// A call refused by rate gives its slot back.
	_, err = h(acme, toolRequest("limited"))
	require.NoError(t, err)
	_, err = h(acme, toolRequest("limited"))
	require.ErrorIs(t, err, ErrLimited)
	assert.Equal(t, 0, tb.inFlight())
	tb.flight.mu.Lock()
	assert.Empty(t, tb.flight.n, "no key is kept once idle")
	tb.flight.mu.Unlock()
}

func TestToolBudgetsMaxInFlightKeys(t *testing.T) {
	tb := newToolBudgets(t, ToolBudgetsConfig{Default: Budget{MaxConcurrent: 5}, KeyBy: Tenant, MaxInFlightKeys: 2})
	started := make(chan struct{})
	unblock := make(chan struct{})
	h := tb.ToolMiddleware(func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		started <- struct{}{}
		<-unblock
		return mcp.NewToolResultText("ok"), nil
	})
	var wg sync.WaitGroup
	for _, tenant := range []string{"a", "b"} {
		wg.Go(func() {
			_, err := h(withIdentity(context.Background(), tenant, nil), toolRequest("x"))
			assert.NoError(t, err)
		})
		<-started
	}
	_, err := h(withIdentity(context.Background(), "c", nil), toolRequest("x"))
	assert.ErrorIs(t, err, ErrConcurrency, "a third key is refused at the cap")
	wg.Go(func() {
		_, err := h(withIdentity(context.Background(), "a", nil), toolRequest("x"))
		assert.NoError(t, err, "a tracked key may still take slots")
	})
	<-started
	close(unblock)
	wg.Wait()
	assert.Equal(t, 0, tb.inFlight())
}

func TestToolBudgetsTimeout(t *testing.T) {
	const timeout = 20 * time.Millisecond

	t.Run("cooperative handler", func(t *testing.T) {
		rec := &recorder{}
		tb := newToolBudgets(t, ToolBudgetsConfig{Default: Budget{Timeout: timeout, MaxConcurrent: 1}, Reporter: rec})
		handlerErr := make(chan error, 1)
		h := tb.ToolMiddleware(func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			<-ctx.Done()
			handlerErr <- ctx.Err()
			return nil, ctx.Err()
		})
		res, err := h(context.Background(), toolRequest("wait"))
		assert.Nil(t, res)
		require.ErrorIs(t, err, ErrTimeout)
		assert.Equal(t, `tool "wait": timed out`, err.Error())
		assert.ErrorIs(t, <-handlerErr, context.DeadlineExceeded, "the handler's context was cancelled")
		events := rec.Events()
		require.Len(t, events, 1)
		assert.Equal(t, EventTimeout, events[0].Kind)
		assert.ErrorIs(t, events[0].Err, context.DeadlineExceeded)
	})

	t.Run("handler ignoring its context", func(t *testing.T) {
		tb := newToolBudgets(t, ToolBudgetsConfig{Default: Budget{Timeout: timeout, MaxConcurrent: 1}})
		unblock := make(chan struct{})
		done := make(chan struct{})
		var handlerCtx context.Context
		h := tb.ToolMiddleware(func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			defer close(done)
			handlerCtx = ctx
			<-unblock
			return mcp.NewToolResultText("late"), nil
		})
		_, err := h(context.Background(), toolRequest("stuck"))
		require.ErrorIs(t, err, ErrTimeout, "the caller is answered without waiting for the handler")
		assert.Equal(t, 1, tb.inFlight(), "the abandoned handler keeps its slot")
		_, err = h(context.Background(), toolRequest("stuck"))
		assert.ErrorIs(t, err, ErrConcurrency)
		close(unblock)
		<-done
		assert.ErrorIs(t, handlerCtx.Err(), context.DeadlineExceeded)
		assert.Eventually(t, func() bool { return tb.inFlight() == 0 }, 10*time.Second, time.Millisecond)
	})

	t.Run("fast handler", func(t *testing.T) {
		tb := newToolBudgets(t, ToolBudgetsConfig{Default: Budget{Timeout: time.Hour}})
		wantErr := errors.New("tool failed")
		h := tb.ToolMiddleware(func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			if req.Params.Name == "fail" {
				return nil, wantErr
			}
			_, ok := ctx.Deadline()
			assert.True(t, ok)
			return mcp.NewToolResultText("ok"), nil
		})
		res, err := h(context.Background(), toolRequest("ok"))
		require.NoError(t, err)
		assert.Equal(t, "ok", res.Content[0].(mcp.TextContent).Text)
		_, err = h(context.Background(), toolRequest("fail"))
		assert.Equal(t, wantErr, err, "handler errors pass through unchanged")
	})

	t.Run("caller cancels", func(t *testing.T) {
		rec := &recorder{}
		tb := newToolBudgets(t, ToolBudgetsConfig{Default: Budget{Timeout: time.Hour}, Reporter: rec})
		ctx, cancel := context.WithCancel(context.Background())
		h := tb.ToolMiddleware(func(hctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			cancel()
			<-hctx.Done()
			return nil, hctx.Err()
		})
		_, err := h(ctx, toolRequest("x"))
		assert.ErrorIs(t, err, context.Canceled)
		assert.NotErrorIs(t, err, ErrTimeout)
		assert.Empty(t, rec.Events())
	})

	t.Run("panic reaches the caller", func(t *testing.T) {
		tb := newToolBudgets(t, ToolBudgetsConfig{Default: Budget{Timeout: time.Hour, MaxConcurrent: 1}})
		h := tb.ToolMiddleware(func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			panic("boom")
		})
		assert.PanicsWithValue(t, "boom", func() { _, _ = h(context.Background(), toolRequest("x")) })
		assert.Equal(t, 0, tb.inFlight())
	})
}

func TestToolBudgetsLimiterFailure(t *testing.T) {
	redisDown := errors.New("dial tcp 127.0.0.1:6379: connection refused")
	for _, failOpen := range []bool{false, true} {
		t.Run(map[bool]string{false: "fail_closed", true: "fail_open"}[failOpen], func(t *testing.T) {
			rec := &recorder{}
			lim := limiterFunc(func(context.Context, string, Limit) (Decision, error) {
				err := errors.Join(ErrUnavailable, redisDown)
				if failOpen {
					return Decision{Allowed: true, FailedOpen: err}, nil
				}
				return Decision{RetryAfter: time.Second}, err
			})
			tb := newToolBudgets(t, ToolBudgetsConfig{Limiter: lim, Default: Budget{Rate: PerSecond(1), MaxConcurrent: 1}, Reporter: rec})
			res, err := tb.ToolMiddleware(okTool)(context.Background(), toolRequest("x"))
			events := rec.Events()
			require.Len(t, events, 1)
			assert.ErrorIs(t, events[0].Err, redisDown)
			assert.Equal(t, 0, tb.inFlight())
			if failOpen {
				require.NoError(t, err)
				assert.NotNil(t, res)
				assert.Equal(t, EventFailOpen, events[0].Kind)
				return
			}
			require.ErrorIs(t, err, ErrUnavailable)
			assert.ErrorIs(t, err, redisDown, "the cause is kept for audit")
			assert.Equal(t, `tool "x": rate limiter unavailable, retry after 1s`, err.Error(), "but not sent")
			assert.Equal(t, EventUnavailable, events[0].Kind)
		})
	}
}

func TestNewToolBudgetsConfig(t *testing.T) {
	mem := newMemory(t, MemoryConfig{})
	tests := []struct {
		name  string
		cfg   ToolBudgetsConfig
		field string
	}{
		{"rate without limiter", ToolBudgetsConfig{Default: Budget{Rate: PerSecond(1)}}, "Limiter"},
		{"tool rate without limiter", ToolBudgetsConfig{Tools: map[string]Budget{"x": {Rate: PerSecond(1)}}}, "Limiter"},
		{"tenant rate without limiter", ToolBudgetsConfig{Tenants: map[string]TenantBudget{"t": {Tools: map[string]Budget{"x": {Rate: PerSecond(1)}}}}}, "Limiter"},
		{"bad default rate", ToolBudgetsConfig{Limiter: mem, Default: Budget{Rate: Limit{Events: -1}}}, "Default.Rate"},
		{"negative concurrency", ToolBudgetsConfig{Tools: map[string]Budget{"x": {MaxConcurrent: -1}}}, `Tools["x"].MaxConcurrent`},
		{"negative timeout", ToolBudgetsConfig{Tenants: map[string]TenantBudget{"t": {Default: Budget{Timeout: -1}}}}, `Tenants["t"].Default.Timeout`},
		{"bad tenant tool", ToolBudgetsConfig{Tenants: map[string]TenantBudget{"t": {Tools: map[string]Budget{"x": {Timeout: -1}}}}}, `Tenants["t"].Tools["x"]`},
		{"empty tool", ToolBudgetsConfig{Tools: map[string]Budget{"": {}}}, "Tools"},
		{"empty tenant", ToolBudgetsConfig{Tenants: map[string]TenantBudget{"": {}}}, "Tenants"},
		{"address", ToolBudgetsConfig{KeyBy: Address}, "KeyBy"},
		{"negative cap", ToolBudgetsConfig{MaxInFlightKeys: -1}, "MaxInFlightKeys"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewToolBudgets(tc.cfg)
			require.ErrorIs(t, err, ErrConfig)
			assert.Contains(t, err.Error(), tc.field)
		})
	}
}

// identityFromHeaders stands in for the auth and tenancy middleware of the
// real stack: it puts a tenant and principal in the request context.
func identityFromHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		if t := r.Header.Get("X-Test-Tenant"); t != "" {
			ctx = tenancy.NewContext(ctx, t)
		}
		if s := r.Header.Get("X-Test-Subject"); s != "" {
			ctx = auth.NewContext(ctx, &auth.Principal{Issuer: "iss", Subject: s})
		}
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// TestOverMCP runs both limits in front of a real mcp-go Streamable HTTP
// server and records what an mcp-go client receives.
func TestOverMCP(t *testing.T) {
	mem := newMemory(t, MemoryConfig{})
	tb := newToolBudgets(t, ToolBudgetsConfig{
		Limiter: mem,
		Tools:   map[string]Budget{"search": {Rate: Limit{Events: 1, Period: time.Hour}}},
	})
	mcpSrv := server.NewMCPServer("test", "1.0.0", server.WithToolHandlerMiddleware(tb.ToolMiddleware))
	mcpSrv.AddTool(mcp.NewTool("search"), okTool)
	mw, err := NewRequestLimit(RequestLimitConfig{
		Limiter: mem,
		Limit:   Limit{Events: 5, Period: time.Hour},
		Tenants: map[string]Limit{"premium": {Events: 50, Period: time.Hour}},
	})
	require.NoError(t, err)
	ts := httptest.NewServer(identityFromHeaders(mw.Middleware(server.NewStreamableHTTPServer(mcpSrv))))
	t.Cleanup(ts.Close)

	newClient := func(t *testing.T, tenant, subject string) *client.Client {
		c, err := client.NewStreamableHttpClient(ts.URL, transport.WithHTTPHeaders(map[string]string{
			"X-Test-Tenant": tenant, "X-Test-Subject": subject,
		}))
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() })
		require.NoError(t, c.Start(t.Context()))
		var init mcp.InitializeRequest
		init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
		init.Params.ClientInfo = mcp.Implementation{Name: "test", Version: "1"}
		_, err = c.Initialize(t.Context(), init)
		require.NoError(t, err)
		return c
	}
	search := func(c *client.Client) (*mcp.CallToolResult, error) {
		var req mcp.CallToolRequest
		req.Params.Name = "search"
		return c.CallTool(t.Context(), req)
	}

	t.Run("tool budget", func(t *testing.T) {
		c := newClient(t, "premium", "alice")
		res, err := search(c)
		require.NoError(t, err)
		assert.False(t, res.IsError)

		res, err = search(c)
		t.Logf("client got: %v", err)
		assert.Nil(t, res)
		require.Error(t, err)
		// mcp-go sends a JSON-RPC error -32603 whose message is ToolError.Error().
		assert.ErrorIs(t, err, mcp.ErrInternalError)
		assert.Contains(t, err.Error(), `tool "search": rate limit exceeded, retry after 3600s`)
	})

	t.Run("http limit", func(t *testing.T) {
		var lastErr error
		c, err := client.NewStreamableHttpClient(ts.URL, transport.WithHTTPHeaders(map[string]string{
			"X-Test-Tenant": "acme", "X-Test-Subject": "bob",
		}))
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() })
		require.NoError(t, c.Start(t.Context()))
		var init mcp.InitializeRequest
		init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
		init.Params.ClientInfo = mcp.Implementation{Name: "test", Version: "1"}
		_, lastErr = c.Initialize(t.Context(), init)
		for i := 0; i < 10 && lastErr == nil; i++ {
			_, lastErr = c.ListTools(t.Context(), mcp.ListToolsRequest{})
		}
		t.Logf("client got: %v", lastErr)
		require.Error(t, lastErr, "5 requests per hour run out")
		assert.Contains(t, lastErr.Error(), "429")
		assert.Contains(t, lastErr.Error(), "rate limit exceeded")
	})
}

func BenchmarkToolBudgetsRate(b *testing.B) {
	tb := newToolBudgets(b, ToolBudgetsConfig{
		Limiter: newMemory(b, MemoryConfig{}),
		Default: Budget{Rate: Limit{Events: 1 << 30, Burst: 1 << 30}, MaxConcurrent: 1 << 20},
	})
	h := tb.ToolMiddleware(okTool)
	ctx := withIdentity(context.Background(), "acme", &auth.Principal{Issuer: "https://idp.example.com", Subject: "alice"})
	req := toolRequest("search")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

// TestToolBudgetsReporting: a Reporting copy of ToolBudgets tells its
// Reporter every decision audit must see — rate and concurrency refusals,
// a fail-closed limiter, a timeout, a fail-open — with the namespace and
// tool, after the configured Reporter; it shares the original's rate budgets, concurrency
// counts and Observer; the original reports nothing to it.
func TestToolBudgetsReporting(t *testing.T) {
	var mu sync.Mutex
	var reported []Event
	rep := reporterFunc(func(_ context.Context, ev Event) {
		mu.Lock()
		defer mu.Unlock()
		reported = append(reported, ev)
	})
	take := func() []Event {
		mu.Lock()
		defer mu.Unlock()
		r := reported
		reported = nil
		return r
	}
	ctx := withIdentity(context.Background(), "acme", &auth.Principal{Issuer: "https://idp.example.com", Subject: "alice"})

	t.Run("rate, shared budget and observer", func(t *testing.T) {
		var onEvent recorder
		tb := newToolBudgets(t, ToolBudgetsConfig{Limiter: newMemory(t, MemoryConfig{}), Namespace: "budget",
			Tools: map[string]Budget{"search": {Rate: Limit{Events: 1, Period: time.Hour, Burst: 1}}}, Reporter: &onEvent})
		assert.Same(t, tb, tb.Reporting(nil))
		rb := tb.Reporting(rep)
		require.NotSame(t, tb, rb)
		assert.Equal(t, "budget", rb.Namespace())
		obs := &observed{}
		require.NoError(t, tb.SetObserver(obs))
		require.ErrorIs(t, rb.SetObserver(obs), ErrConfig, "the copy shares the original's observer slot")

		_, err := rb.ToolMiddleware(okTool)(ctx, toolRequest("search"))
		require.NoError(t, err)
		_, err = tb.ToolMiddleware(okTool)(ctx, toolRequest("search"))
		require.ErrorIs(t, err, ErrLimited, "the copy shares the original's rate budget")
		assert.Empty(t, take(), "the original does not report to the copy's Reporter")
		_, err = rb.ToolMiddleware(okTool)(ctx, toolRequest("search"))
		var te *ToolError
		require.ErrorAs(t, err, &te)
		assert.Equal(t, "rate_limited", te.LimitReason())
		got := take()
		require.Len(t, got, 1)
		assert.Equal(t, EventLimited, got[0].Kind)
		assert.Equal(t, "budget", got[0].Namespace)
		assert.Equal(t, "search", got[0].Tool)
		assert.Len(t, onEvent.Events(), 2, "the configured Reporter still sees both refusals")
		kinds := []EventKind{}
		for _, o := range obs.take() {
			kinds = append(kinds, o.Kind)
		}
		assert.Equal(t, []EventKind{0, EventLimited, EventLimited}, kinds, "the observer sees the decisions of both")
	})

	t.Run("concurrency, shared counts", func(t *testing.T) {
		tb := newToolBudgets(t, ToolBudgetsConfig{Default: Budget{MaxConcurrent: 1}})
		rb := tb.Reporting(rep)
		entered, unblock := make(chan struct{}), make(chan struct{})
		done := make(chan error, 1)
		go func() {
			_, err := tb.ToolMiddleware(func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
				close(entered)
				<-unblock
				return mcp.NewToolResultText("ok"), nil
			})(ctx, toolRequest("slow"))
			done <- err
		}()
		<-entered
		assert.Equal(t, 1, rb.inFlight(), "the copy sees the original's calls in flight")
		_, err := rb.ToolMiddleware(okTool)(ctx, toolRequest("slow"))
		var te *ToolError
		require.ErrorAs(t, err, &te)
		assert.Equal(t, "concurrency_limited", te.LimitReason())
		close(unblock)
		require.NoError(t, <-done)
		got := take()
		require.Len(t, got, 1)
		assert.Equal(t, EventConcurrency, got[0].Kind)
		assert.Equal(t, DefaultToolNamespace, got[0].Namespace)
		assert.Equal(t, "slow", got[0].Tool)
		assert.Equal(t, 0, tb.inFlight())
	})

	t.Run("timeout", func(t *testing.T) {
		rb := newToolBudgets(t, ToolBudgetsConfig{Default: Budget{Timeout: time.Millisecond}}).Reporting(rep)
		_, err := rb.ToolMiddleware(func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		})(ctx, toolRequest("slow"))
		var te *ToolError
		require.ErrorAs(t, err, &te)
		assert.Equal(t, "budget_timeout", te.LimitReason())
		got := take()
		require.Len(t, got, 1)
		assert.Equal(t, EventTimeout, got[0].Kind)
		assert.Equal(t, "slow", got[0].Tool)
	})

	for _, tc := range []struct {
		name   string
		lim    Limiter
		kind   EventKind
		reason string
	}{
		{"fail closed", limiterFunc(func(context.Context, string, Limit) (Decision, error) { return Decision{}, ErrUnavailable }), EventUnavailable, "limiter_unavailable"},
		{"fail open", limiterFunc(func(context.Context, string, Limit) (Decision, error) {
			return Decision{Allowed: true, FailedOpen: errors.New("down")}, nil
		}), EventFailOpen, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rb := newToolBudgets(t, ToolBudgetsConfig{Limiter: tc.lim, Default: Budget{Rate: PerSecond(1)}}).Reporting(rep)
			_, err := rb.ToolMiddleware(okTool)(ctx, toolRequest("search"))
			if tc.reason == "" {
				require.NoError(t, err, "a fail-open limiter lets the call through")
			} else {
				var te *ToolError
				require.ErrorAs(t, err, &te)
				assert.Equal(t, tc.reason, te.LimitReason())
			}
			got := take()
			require.Len(t, got, 1)
			assert.Equal(t, tc.kind, got[0].Kind)
			assert.Equal(t, DefaultToolNamespace, got[0].Namespace)
			assert.Equal(t, "search", got[0].Tool)
		})
	}
}
