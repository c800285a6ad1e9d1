package ratelimit

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/auth"
)

type observed struct {
	mu  sync.Mutex
	all []Observed
}

func (o *observed) ObserveRateLimit(_ context.Context, d Observed) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.all = append(o.all, d)
}

func (o *observed) take() []Observed {
	o.mu.Lock()
	defer o.mu.Unlock()
	a := o.all
	o.all = nil
	return a
}

// A RequestLimit's Observer sees every decision — allowed ones with the
// events left in the bucket — and never a key.
func TestMiddlewareObserver(t *testing.T) {
	clk := &clock{now: t0}
	mem := newMemory(t, MemoryConfig{Now: clk.Now})
	limit := Limit{Events: 3, Period: time.Hour, Burst: 3}
	m, err := NewRequestLimit(RequestLimitConfig{Limiter: mem, Limit: limit, Namespace: "users"})
	require.NoError(t, err)
	o := &observed{}
	require.NoError(t, m.SetObserver(o))
	require.ErrorIs(t, m.SetObserver(o), ErrConfig)
	require.ErrorIs(t, m.SetObserver(nil), ErrConfig)
	h := m.Middleware(okHandler())
	alice := call{tenant: "acme", p: &auth.Principal{Issuer: "iss", Subject: "alice"}}
	for range 4 {
		serve(h, alice)
	}
	want := []Observed{
		{Namespace: "users", Limit: limit, Remaining: 2, HasRemaining: true},
		{Namespace: "users", Limit: limit, Remaining: 1, HasRemaining: true},
		{Namespace: "users", Limit: limit, Remaining: 0, HasRemaining: true},
		{Namespace: "users", Kind: EventLimited, Limit: limit},
	}
	assert.Equal(t, want, o.take())

	// Check reports too; a limiter that cannot say what is left leaves
	// HasRemaining false; failures have their kind.
	redisDown := errors.New("connection refused")
	for _, tc := range []struct {
		lim  limiterFunc
		want Observed
	}{
		{func(context.Context, string, Limit) (Decision, error) { return Decision{Allowed: true}, nil },
			Observed{Namespace: "http", Limit: PerSecond(1)}},
		{func(context.Context, string, Limit) (Decision, error) {
			return Decision{Allowed: true, FailedOpen: redisDown}, nil
		}, Observed{Namespace: "http", Kind: EventFailOpen, Limit: PerSecond(1)}},
		{func(context.Context, string, Limit) (Decision, error) {
			return Decision{}, errors.Join(ErrUnavailable, redisDown)
		},
			Observed{Namespace: "http", Kind: EventUnavailable, Limit: PerSecond(1)}},
	} {
		m, err := NewRequestLimit(RequestLimitConfig{Limiter: tc.lim, Limit: PerSecond(1)})
		require.NoError(t, err)
		require.NoError(t, m.SetObserver(o))
		r, _ := http.NewRequestWithContext(withIdentity(context.Background(), "acme", alice.p), http.MethodPost, "/mcp", nil)
		_, _ = m.Decide(r)
		assert.Equal(t, []Observed{tc.want}, o.take())
	}
}

// A ToolBudgets' Observer sees each budgeted call's decision.
func TestToolBudgetsObserver(t *testing.T) {
	clk := &clock{now: t0}
	mem := newMemory(t, MemoryConfig{Now: clk.Now})
	rate := Limit{Events: 2, Period: time.Hour, Burst: 2}
	tb, err := NewToolBudgets(ToolBudgetsConfig{Limiter: mem, Tools: map[string]Budget{"search": {Rate: rate}}})
	require.NoError(t, err)
	o := &observed{}
	require.NoError(t, tb.SetObserver(o))
	h := tb.ToolMiddleware(func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultText("ok"), nil
	})
	ctx := withIdentity(context.Background(), "acme", &auth.Principal{Issuer: "iss", Subject: "alice"})
	for _, name := range []string{"search", "search", "search", "other"} {
		_, _ = h(ctx, mcp.CallToolRequest{Params: mcp.CallToolParams{Name: name}})
	}
	assert.Equal(t, []Observed{
		{Namespace: DefaultToolNamespace, Tool: "search", Limit: rate, Remaining: 1, HasRemaining: true},
		{Namespace: DefaultToolNamespace, Tool: "search", Limit: rate, Remaining: 0, HasRemaining: true},
		{Namespace: DefaultToolNamespace, Tool: "search", Kind: EventLimited, Limit: rate},
	}, o.take(), "a call without a budget is no decision")
}
