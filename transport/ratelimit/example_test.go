package ratelimit_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/tenancy"
	"github.com/mcpguard/mcpguard/transport/ratelimit"
)

// The in-memory limiter takes the time as an argument, so its decisions
// are reproducible.
func ExampleMemory_AllowAt() {
	lim, err := ratelimit.NewMemory(ratelimit.MemoryConfig{MaxKeys: 10_000})
	if err != nil {
		panic(err)
	}
	limit := ratelimit.Limit{Events: 2, Period: time.Second} // burst defaults to 2
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, at := range []time.Duration{0, 0, 0, 200 * time.Millisecond, 500 * time.Millisecond} {
		d, _ := lim.AllowAt("tenant-a", limit, start.Add(at))
		fmt.Printf("t=%v allowed=%v retry=%v\n", at, d.Allowed, d.RetryAfter)
	}
	// Output:
	// t=0s allowed=true retry=0s
	// t=0s allowed=true retry=0s
	// t=0s allowed=false retry=500ms
	// t=200ms allowed=false retry=300ms
	// t=500ms allowed=true retry=0s
}

// Request-level limits sit after authentication and tenancy, keyed by
// tenant and subject; a spent budget is answered with 429 and Retry-After.
func ExampleMiddleware() {
	lim, err := ratelimit.NewMemory(ratelimit.MemoryConfig{})
	if err != nil {
		panic(err)
	}
	mw, err := ratelimit.NewRequestLimit(ratelimit.RequestLimitConfig{
		Limiter: lim,
		Limit:   ratelimit.PerMinute(2),
		Tenants: map[string]ratelimit.Limit{"premium": ratelimit.PerMinute(1000)},
		// Only the load balancer may name the client in X-Forwarded-For.
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
		Reporter: ratelimit.ReporterFunc(func(_ context.Context, ev ratelimit.Event) {
			fmt.Println("audit:", ev.Kind, ev.Key)
		}),
	})
	if err != nil {
		panic(err)
	}
	h := mw.Middleware(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, "ok")
	}))

	// What auth and tenancy middleware put in the context.
	ctx := tenancy.NewContext(context.Background(), "acme")
	ctx = auth.NewContext(ctx, &auth.Principal{Issuer: "https://idp.example.com", Subject: "alice"})
	for range 3 {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequestWithContext(ctx, http.MethodPost, "/mcp", nil))
		fmt.Printf("%d Retry-After=%q\n", rec.Code, rec.Header().Get("Retry-After"))
	}
	// Output:
	// 200 Retry-After=""
	// 200 Retry-After=""
	// audit: limited http|t4:acmei23:https://idp.example.coms5:alice
	// 429 Retry-After="30"
}

// Tool budgets are mcp-go tool middleware. A refused call returns a
// *ToolError, which mcp-go sends to the client as a JSON-RPC error.
func ExampleToolBudgets() {
	lim, err := ratelimit.NewMemory(ratelimit.MemoryConfig{})
	if err != nil {
		panic(err)
	}
	budgets, err := ratelimit.NewToolBudgets(ratelimit.ToolBudgetsConfig{
		Limiter: lim,
		Default: ratelimit.Budget{Timeout: 30 * time.Second, MaxConcurrent: 4},
		Tools: map[string]ratelimit.Budget{
			"search": {Rate: ratelimit.PerMinute(1)},
		},
		Tenants: map[string]ratelimit.TenantBudget{
			"premium": {Tools: map[string]ratelimit.Budget{"search": {Rate: ratelimit.PerMinute(100)}}},
		},
	})
	if err != nil {
		panic(err)
	}
	s := server.NewMCPServer("notes", "1.0.0", server.WithToolHandlerMiddleware(budgets.ToolMiddleware))
	search := func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultText("found"), nil
	}
	s.AddTool(mcp.NewTool("search"), search)

	// Calling the middleware directly shows what the server sees.
	call := budgets.ToolMiddleware(search)
	ctx := tenancy.NewContext(context.Background(), "acme")
	var req mcp.CallToolRequest
	req.Params.Name = "search"
	for range 2 {
		if _, err := call(ctx, req); err != nil {
			fmt.Println("error:", err)
		} else {
			fmt.Println("ok")
		}
	}
	fmt.Println(budgets.BudgetFor("premium", "search").Rate)
	// Output:
	// ok
	// error: tool "search": rate limit exceeded, retry after 60s
	// 100/1m0s burst 100
}
