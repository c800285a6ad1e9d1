package audit_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpguard/mcpguard/audit"
	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/tenancy"
)

// clock is a deterministic Now for the examples: each call is 5 ms later.
func clock() func() time.Time {
	t := time.Date(2026, 7, 28, 9, 0, 0, 0, time.UTC)
	return func() time.Time {
		now := t
		t = t.Add(5 * time.Millisecond)
		return now
	}
}

// A tool call recorded as a JSON line: the caller, tenant and ids come
// from the context, argument names are always listed, and only the
// allow-listed "limit" has its value recorded.
func Example() {
	sink, err := audit.NewJSONSink(os.Stdout)
	if err != nil {
		panic(err)
	}
	rec, err := audit.New(audit.Config{
		Sink:      sink,
		ArgValues: map[string][]string{"search": {"limit"}},
		Now:       clock(),
	})
	if err != nil {
		panic(err)
	}
	defer rec.Close()

	search := rec.ToolMiddleware(func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultText("3 documents"), nil
	})

	// What auth, tenancy and the transport put in the context.
	ctx := auth.NewContext(context.Background(), &auth.Principal{Subject: "alice", ClientID: "desktop-app"})
	ctx = tenancy.NewContext(ctx, "acme")
	ctx = audit.NewRequestIDContext(ctx, "req-1")

	_, _ = search(ctx, mcp.CallToolRequest{Params: mcp.CallToolParams{
		Name:      "search",
		Arguments: map[string]any{"query": "salaries 2026", "limit": 10},
	}})
	// Output:
	// {"time":"2026-07-28T09:00:00.005Z","kind":"tool_call","request_id":"req-1","subject":"alice","client_id":"desktop-app","auth_kind":"user","tenant":"acme","tool":"search","decision":"allow","duration_ns":5000000,"args":["limit","query"],"arg_values":{"limit":"10"}}
}

// Middleware records the 401 that auth's middleware answered, with the
// RFC 6750 error code as the reason; the token itself is never read.
func ExampleRecorder_Middleware() {
	sink, _ := audit.NewJSONSink(os.Stdout)
	rec, _ := audit.New(audit.Config{Sink: sink, Now: clock()})
	defer rec.Close()

	authFails := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		w.WriteHeader(http.StatusUnauthorized)
	})
	h := rec.Middleware(authFails)

	req := httptest.NewRequest(http.MethodPost, "/mcp?access_token=never-recorded", nil)
	req.Header.Set("Authorization", "Bearer never-recorded-either")
	h.ServeHTTP(httptest.NewRecorder(), req)
	// Output:
	// {"time":"2026-07-28T09:00:00.005Z","kind":"auth_failure","method":"POST","path":"/mcp","remote_addr":"192.0.2.1:1234","decision":"deny","reason":"invalid_token","status":401,"duration_ns":5000000}
}

// An asynchronous recorder that drops and counts when its queue is full;
// Close writes everything queued.
func ExampleNew_async() {
	sink, _ := audit.NewJSONSink(os.Stdout)
	rec, err := audit.New(audit.Config{
		Sink:      sink,
		Mode:      audit.Async,
		QueueSize: 1024,
		OnFull:    audit.DropAndCount,
		Now:       clock(),
	})
	if err != nil {
		panic(err)
	}
	_ = rec.Record(context.Background(), audit.Event{Kind: audit.KindRateLimited, Subject: "bob", Reason: "tenant_quota"})
	if err := rec.Close(); err != nil {
		panic(err)
	}
	fmt.Println("dropped:", rec.Stats().Dropped)
	// Output:
	// {"time":"2026-07-28T09:00:00Z","kind":"rate_limited","subject":"bob","reason":"tenant_quota"}
	// dropped: 0
}

// Events can go to any log/slog handler; here a text handler, with time
// removed to keep the output stable.
func ExampleNewSlogSink() {
	h := slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	})
	sink, _ := audit.NewSlogSink(audit.SlogConfig{Handler: h})
	rec, _ := audit.New(audit.Config{Sink: sink})
	defer rec.Close()

	_ = rec.Record(context.Background(), audit.Event{
		Kind: audit.KindToolDenied, Subject: "mallory", Tool: "drop_tables\nkind=tool_call",
		Decision: audit.DecisionDeny, Reason: "insufficient_scope",
	})
	// Output:
	// level=WARN msg=audit kind=tool_denied subject=mallory tool="drop_tables\\nkind=tool_call" decision=deny reason=insufficient_scope
}

// Recorder.TokenExchange is what package obo calls after each exchange
// (the Recorder is an obo.Auditor: obo.Config{Audit: rec}); it carries no
// token.
func ExampleRecorder_TokenExchange() {
	sink, _ := audit.NewJSONSink(os.Stdout)
	rec, _ := audit.New(audit.Config{Sink: sink, Now: clock()})
	defer rec.Close()

	ctx := auth.NewContext(context.Background(), &auth.Principal{Subject: "alice"})
	rec.TokenExchange(ctx, "token-exchange", "https://graph.example.com", 42*time.Millisecond, nil)
	// Output:
	// {"time":"2026-07-28T09:00:00Z","kind":"token_exchange","subject":"alice","auth_kind":"user","audience":"https://graph.example.com","grant":"token-exchange","decision":"allow","duration_ns":42000000}
}
