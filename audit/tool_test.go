package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/tenancy"
)

// callCtx is the context a tool handler sees behind mcpguard's HTTP stack.
func callCtx(s *server.MCPServer) context.Context {
	ctx := auth.NewContext(context.Background(), alice)
	ctx = tenancy.NewContext(ctx, "acme")
	ctx = NewRequestIDContext(ctx, "req-7")
	ctx = NewRPCIDContext(ctx, "42")
	ctx = auth.NewCredentialContext(ctx, auth.NewCredential("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXZhbHVl"))
	if s != nil {
		ctx = s.WithContext(ctx, server.NewInProcessSession("sess-42", nil))
	}
	return ctx
}

func callTool(t *testing.T, s *server.MCPServer, name string, args map[string]any) mcp.JSONRPCMessage {
	t.Helper()
	msg, err := json.Marshal(map[string]any{
		"jsonrpc": "2.0", "id": 42, "method": "tools/call",
		"params": map[string]any{"name": name, "arguments": args},
	})
	require.NoError(t, err)
	return s.HandleMessage(callCtx(s), msg)
}

func TestToolMiddlewareThroughMCPServer(t *testing.T) {
	sink := &memSink{}
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	r := mustNew(t, Config{
		Sink:      sink,
		Now:       fixedClock(t0, 250*time.Millisecond),
		ArgValues: map[string][]string{"search": {"query", "limit", "filters"}},
	})
	s := server.NewMCPServer("test", "1.0.0", server.WithToolHandlerMiddleware(r.ToolMiddleware))
	s.AddTool(mcp.NewTool("search"), func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultText("found"), nil
	})
	s.AddTool(mcp.NewTool("broken"), func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultError("upstream said no: secret detail"), nil
	})
	s.AddTool(mcp.NewTool("fails"), func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return nil, errors.New("db password=hunter2 rejected")
	})

	resp := callTool(t, s, "search", map[string]any{
		"query": "quarterly report", "limit": 10, "filters": map[string]any{"x": 1},
		"owner": "bob@example.com", "api_token_hint": "Zk3pQ9xL2mN8vB4cR7tY1wE5uI0oP6aS3dF9gH2jK",
	})
	_, isErr := resp.(mcp.JSONRPCError)
	require.False(t, isErr, "%#v", resp)
	callTool(t, s, "broken", nil)
	callTool(t, s, "fails", nil)

	got := sink.all()
	require.Len(t, got, 3)
	e := got[0]
	assert.Equal(t, KindToolCall, e.Kind)
	assert.Equal(t, DecisionAllow, e.Decision)
	assert.Equal(t, "search", e.Tool)
	assert.Equal(t, "alice", e.Subject)
	assert.Equal(t, "svc-gateway", e.Actor)
	assert.Equal(t, "claude-desktop", e.ClientID)
	assert.Equal(t, "acme", e.Tenant)
	assert.Equal(t, "req-7", e.RequestID)
	assert.Equal(t, "42", e.RPCID)
	assert.Equal(t, "sess-42", e.SessionID)
	assert.Equal(t, 250*time.Millisecond, e.Duration)
	assert.Equal(t, t0.Add(250*time.Millisecond), e.Time)
	assert.Empty(t, e.ErrorClass)
	assert.Equal(t, []Arg{
		{Name: "api_token_hint"},
		{Name: "filters", Value: "[object]", HasValue: true},
		{Name: "limit", Value: "10", HasValue: true},
		{Name: "owner"},
		{Name: "query", Value: "quarterly report", HasValue: true},
	}, e.Args, "names always, sorted; values only when allow-listed")

	assert.Equal(t, "tool_error", got[1].ErrorClass)
	assert.Equal(t, KindToolCall, got[1].Kind)
	assert.Equal(t, "error", got[2].ErrorClass)
	for _, e := range got {
		b, _ := e.MarshalJSON()
		assert.NotContains(t, string(b), "hunter2", "error text is never recorded")
		assert.NotContains(t, string(b), "secret detail")
		assert.NotContains(t, string(b), "bob@example.com")
		assert.NotContains(t, string(b), "eyJ")
	}
}

func TestToolMiddlewareOutcomes(t *testing.T) {
	denied := fmt.Errorf("authz: %w", auth.InsufficientScope("files:write"))
	errBudget := errors.New("budget exceeded")
	tests := []struct {
		name     string
		res      *mcp.CallToolResult
		err      error
		classify func(error) (string, bool)
		kind     Kind
		decision Decision
		class    string
		reason   string
	}{
		{"ok", mcp.NewToolResultText("x"), nil, nil, KindToolCall, DecisionAllow, "", ""},
		{"tool error result", mcp.NewToolResultError("x"), nil, nil, KindToolCall, DecisionAllow, "tool_error", ""},
		{"insufficient scope is a denial", nil, denied, nil, KindToolDenied, DecisionDeny, "insufficient_scope", "insufficient_scope"},
		{"expired", nil, auth.InvalidToken("expired", auth.ErrExpired), nil, KindToolDenied, DecisionDeny, "expired_token", "expired_token"},
		{"denial converting to auth.Error 403", nil, fmt.Errorf("x: %w", &asAuthError{status: 403}), nil, KindToolDenied, DecisionDeny, "access_denied", "access_denied"},
		{"denial converting to auth.Error 401", nil, &asAuthError{status: 401}, nil, KindToolDenied, DecisionDeny, "no_credential", "no_credential"},
		{"auth.Error 503 is no denial", nil, &asAuthError{status: 503}, nil, KindToolCall, DecisionAllow, "auth_unavailable", ""},
		{"canceled", nil, context.Canceled, nil, KindToolCall, DecisionAllow, "canceled", ""},
		{"deadline", nil, fmt.Errorf("call: %w", context.DeadlineExceeded), nil, KindToolCall, DecisionAllow, "deadline_exceeded", ""},
		{"generic", nil, errors.New("x"), nil, KindToolCall, DecisionAllow, "error", ""},
		{"custom classifier", nil, errBudget, func(err error) (string, bool) {
			if errors.Is(err, errBudget) {
				return "tool_budget", true
			}
			return "", false
		}, KindToolDenied, DecisionDeny, "tool_budget", "tool_budget"},
		{"limit refusal names its reason", nil, fmt.Errorf("mw: %w", limitErr{reason: ReasonConcurrencyLimited, ns: "tool"}), nil, KindRateLimited, DecisionDeny, ReasonConcurrencyLimited, ReasonConcurrencyLimited},
		{"budget timeout is the budget's decision", nil, limitErr{reason: ReasonBudgetTimeout, ns: "tool"}, nil, KindRateLimited, DecisionDeny, ReasonBudgetTimeout, ReasonBudgetTimeout},
		{"limit without a reason falls back to RateLimited", nil, limitErr{ns: "tool", rateLimited: true}, nil, KindRateLimited, DecisionDeny, ReasonRateLimited, ReasonRateLimited},
		{"limit error that decided nothing", nil, limitErr{ns: "tool"}, nil, KindToolCall, DecisionAllow, "error", ""},
		{"custom classifier defers", nil, context.Canceled, func(error) (string, bool) { return "", true }, KindToolCall, DecisionAllow, "canceled", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink := &memSink{}
			r := mustNew(t, Config{Sink: sink, ClassifyError: tt.classify})
			h := r.ToolMiddleware(func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
				return tt.res, tt.err
			})
			res, err := h(callCtx(nil), mcp.CallToolRequest{Params: mcp.CallToolParams{Name: "t"}})
			assert.Equal(t, tt.res, res, "result passed through")
			assert.Equal(t, tt.err, err, "error passed through")
			got := sink.all()
			require.Len(t, got, 1)
			assert.Equal(t, tt.kind, got[0].Kind)
			assert.Equal(t, tt.decision, got[0].Decision)
			assert.Equal(t, tt.class, got[0].ErrorClass)
			assert.Equal(t, tt.reason, got[0].Reason)
		})
	}
}

// limitErr is a limit's error as ratelimit.ToolError is one.
type limitErr struct {
	reason, ns  string
	rateLimited bool
}

func (e limitErr) Error() string          { return "tool \"t\": refused" }
func (e limitErr) LimitReason() string    { return e.reason }
func (e limitErr) LimitNamespace() string { return e.ns }
func (e limitErr) RateLimited() bool      { return e.rateLimited }

// asAuthError converts to an *auth.Error through errors.As without
// matching any auth sentinel, as authz's DeniedError does for tenant and
// no-rule denials.
type asAuthError struct{ status int }

func (e *asAuthError) Error() string { return "denied" }

func (e *asAuthError) As(target any) bool {
	if t, ok := target.(**auth.Error); ok {
		*t = &auth.Error{Status: e.status, Description: "access denied", Err: e}
		return true
	}
	return false
}

func TestToolMiddlewarePanic(t *testing.T) {
	sink := &memSink{}
	r := mustNew(t, Config{Sink: sink, Mode: Async, OnFull: FailClosed, QueueSize: 1})
	h := r.ToolMiddleware(func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		panic("tool exploded")
	})
	assert.PanicsWithValue(t, "tool exploded", func() {
		_, _ = h(context.Background(), mcp.CallToolRequest{Params: mcp.CallToolParams{Name: "p"}})
	})
	require.NoError(t, r.Close())
	got := sink.all()
	require.Len(t, got, 1)
	assert.Equal(t, "panic", got[0].ErrorClass)
	assert.Zero(t, r.Stats().Refused, "the reserved slot was used, not leaked")
}

func TestToolMiddlewareArgLimits(t *testing.T) {
	sink := &memSink{}
	r := mustNew(t, Config{
		Sink:      sink,
		ArgValues: map[string][]string{"t": {"note", "long"}},
		RedactArg: func(tool, arg, value string) string {
			if arg == "note" {
				return "masked:" + fmt.Sprint(len(value))
			}
			return value
		},
	})
	args := map[string]any{"note": "hello", "long": string(make([]byte, 5000))}
	for i := range MaxArgs + 10 {
		args[fmt.Sprintf("a%03d", i)] = i
	}
	h := r.ToolMiddleware(func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultText("ok"), nil
	})
	_, err := h(context.Background(), mcp.CallToolRequest{Params: mcp.CallToolParams{Name: "t", Arguments: args}})
	require.NoError(t, err)
	e := sink.all()[0]
	assert.Len(t, e.Args, MaxArgs)
	assert.Equal(t, 12, e.ArgsOmitted) // 76 arguments, 64 listed
	// a000..a063 sort first; "long" and "note" were beyond the cap.
	assert.Equal(t, "a000", e.Args[0].Name)
	assert.False(t, e.Args[0].HasValue)

	sink2 := &memSink{}
	r2 := mustNew(t, Config{Sink: sink2, ArgValues: map[string][]string{"t": {"note", "long"}},
		RedactArg: func(_, arg, v string) string {
			if arg == "note" {
				return "masked"
			}
			return v
		}})
	h2 := r2.ToolMiddleware(func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) { return nil, nil })
	_, _ = h2(context.Background(), mcp.CallToolRequest{Params: mcp.CallToolParams{Name: "t",
		Arguments: map[string]any{"note": "hello", "long": string(make([]byte, 5000))}}})
	e = sink2.all()[0]
	require.Len(t, e.Args, 2)
	assert.Equal(t, Arg{Name: "long", Value: string(make([]byte, MaxTextLen)), HasValue: true}, e.Args[0])
	assert.Equal(t, Arg{Name: "note", Value: "masked", HasValue: true}, e.Args[1])
}

func TestToolMiddlewareRedactsTokenShapedValues(t *testing.T) {
	sink := &memSink{}
	r := mustNew(t, Config{Sink: sink, ArgValues: map[string][]string{"t": {"q"}}})
	h := r.ToolMiddleware(func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) { return nil, nil })
	_, _ = h(context.Background(), mcp.CallToolRequest{Params: mcp.CallToolParams{Name: "t",
		Arguments: map[string]any{"q": "use eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.sig please"}}})
	assert.Equal(t, "[REDACTED]", sink.all()[0].Args[0].Value)
}

func TestResourceAndPromptMiddleware(t *testing.T) {
	sink := &memSink{}
	r := mustNew(t, Config{Sink: sink})
	s := server.NewMCPServer("test", "1.0.0",
		server.WithResourceHandlerMiddleware(r.ResourceMiddleware),
		server.WithPromptHandlerMiddleware(r.PromptMiddleware),
	)
	s.AddResource(mcp.NewResource("docs://readme", "readme"), func(context.Context, mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
		return []mcp.ResourceContents{mcp.TextResourceContents{URI: "docs://readme", Text: "hi"}}, nil
	})
	s.AddPrompt(mcp.NewPrompt("summarise"), func(context.Context, mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
		return nil, fmt.Errorf("nope: %w", auth.ErrInsufficientScope)
	})
	ctx := callCtx(s)
	s.HandleMessage(ctx, json.RawMessage(`{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"docs://readme"}}`))
	s.HandleMessage(ctx, json.RawMessage(`{"jsonrpc":"2.0","id":2,"method":"prompts/get","params":{"name":"summarise","arguments":{"topic":"secret plans"}}}`))

	got := sink.all()
	require.Len(t, got, 2)
	assert.Equal(t, KindResourceRead, got[0].Kind)
	assert.Equal(t, "docs://readme", got[0].Resource)
	assert.Equal(t, "alice", got[0].Subject)
	assert.Equal(t, KindPromptDenied, got[1].Kind)
	assert.Equal(t, DecisionDeny, got[1].Decision)
	assert.Equal(t, "summarise", got[1].Prompt)
	assert.Equal(t, []Arg{{Name: "topic"}}, got[1].Args)
	assert.Equal(t, "acme", got[1].Tenant)
}

func TestRecordedURI(t *testing.T) {
	assert.Equal(t, "https://api/x", recordedURI("https://api/x?access_token=abc"))
	assert.Equal(t, "docs://a", recordedURI("docs://a#frag"))
	assert.Equal(t, "docs://a", recordedURI("docs://a"))
	assert.Equal(t, "db://[REDACTED]@host/t", recordedURI("db://admin:hunter2@host/t"))
}

// TestTokenShapedNamesRedacted: argument names are always recorded, so a
// client that sends a token as an argument's name (of a tool call, a
// prompt or a resource template) — or as the name of a tool or prompt it
// is refused — must not get it into the trail: such names are recorded as
// [REDACTED]; ordinary names stay.
func TestTokenShapedNamesRedacted(t *testing.T) {
	const jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXZhbHVl"
	const opaque = "sk_live_4eC39HqLyjWDarjtT1zdp7dcAbCdEfGh1234"
	out := &strings.Builder{}
	jsonSink, err := NewJSONSink(out)
	require.NoError(t, err)
	sink := &memSink{}
	r := mustNew(t, Config{Sink: Fanout{sink, jsonSink}, ArgValues: map[string][]string{"echo": {"message"}}})
	s := server.NewMCPServer("test", "1.0.0",
		server.WithToolHandlerMiddleware(r.ToolMiddleware),
		server.WithPromptHandlerMiddleware(r.PromptMiddleware),
	)
	s.AddTool(mcp.NewTool("echo"), func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultText("ok"), nil
	})
	s.AddPrompt(mcp.NewPrompt("summarise"), func(context.Context, mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
		return mcp.NewGetPromptResult("s", nil), nil
	})
	callTool(t, s, "echo", map[string]any{jwt: 1, "message": "hi", opaque: "x"})
	s.HandleMessage(callCtx(s), json.RawMessage(`{"jsonrpc":"2.0","id":2,"method":"prompts/get","params":{"name":"summarise","arguments":{"`+jwt+`":"x","topic":"y"}}}`))
	r.Denial(callCtx(nil), "tools/call", jwt, "no_rule")
	r.Denial(callCtx(nil), "prompts/get", opaque, "no_rule")

	got := sink.all()
	require.Len(t, got, 4)
	assert.Equal(t, []Arg{{Name: "[REDACTED]"}, {Name: "message", Value: "hi", HasValue: true}, {Name: "[REDACTED]"}}, got[0].Args)
	assert.Equal(t, []Arg{{Name: "[REDACTED]"}, {Name: "topic"}}, got[1].Args)
	assert.Equal(t, "[REDACTED]", got[2].Tool)
	assert.Equal(t, "[REDACTED]", got[3].Prompt)
	assert.NotContains(t, out.String(), jwt[:20])
	assert.NotContains(t, out.String(), opaque[:20])
	assert.Contains(t, out.String(), `"args":["[REDACTED]","message","[REDACTED]"]`)
}

// TestAllowedHook: Recorder.Allowed records an allowed mediated request
// as access_allowed with the caller, the method and a subscription's
// resource (userinfo and query left out).
func TestAllowedHook(t *testing.T) {
	sink := &memSink{}
	r := mustNew(t, Config{Sink: sink})
	ctx := callCtx(nil)
	r.Allowed(ctx, "completion/complete", "")
	r.Allowed(ctx, "resources/subscribe", "notes://u:pw@host/a?sig=abc")

	got := sink.all()
	require.Len(t, got, 2)
	for i, e := range got {
		assert.Equal(t, KindAccessAllowed, e.Kind)
		assert.Equal(t, "access_allowed", e.Kind.String())
		assert.Equal(t, DecisionAllow, e.Decision)
		assert.Equal(t, "alice", e.Subject)
		assert.Equal(t, "acme", e.Tenant)
		assert.Equal(t, "42", e.RPCID)
		assert.Equal(t, []string{"completion/complete", "resources/subscribe"}[i], e.Method)
	}
	assert.Empty(t, got[0].Resource)
	assert.Equal(t, "notes://[REDACTED]@host/a", got[1].Resource)
}

// TestResourceUserinfoNotRecorded: a resource URI's userinfo
// ("user:password@", or a token as the user name) is a credential; every
// path that records a resource — a read that ran, a refusal the edge
// annotated, a denial hook — writes it as [REDACTED], never the password.
func TestResourceUserinfoNotRecorded(t *testing.T) {
	const password = "hunter2-Pa55word"
	const uri = "db://admin:" + password + "@host/table?access_token=abc"
	const want = "db://[REDACTED]@host/table"
	out := &strings.Builder{}
	jsonSink, err := NewJSONSink(out)
	require.NoError(t, err)
	sink := &memSink{}
	r := mustNew(t, Config{Sink: Fanout{sink, jsonSink}, RecordAllRequests: true})

	s := server.NewMCPServer("test", "1.0.0", server.WithResourceHandlerMiddleware(r.ResourceMiddleware))
	s.AddResourceTemplate(mcp.NewResourceTemplate("db://{+rest}", "db"), func(_ context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
		return []mcp.ResourceContents{mcp.TextResourceContents{URI: req.Params.URI, Text: "rows"}}, nil
	})
	body, err := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": "resources/read", "params": map[string]any{"uri": uri}})
	require.NoError(t, err)
	resp := s.HandleMessage(callCtx(s), body)
	require.IsType(t, mcp.JSONRPCResponse{}, resp, "the template serves the URI")

	r.Denial(callCtx(nil), "resources/read", uri, "no_rule")

	h := r.Middleware(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		AnnotateRequest(req.Context(), KindAccessDenied, "insufficient_scope", "resources/read", uri)
		w.WriteHeader(http.StatusForbidden)
	}))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/mcp", nil))

	got := sink.all()
	require.Len(t, got, 3)
	for i, e := range got {
		assert.Equal(t, want, e.Resource, i)
	}
	assert.Equal(t, []Kind{KindResourceRead, KindResourceDenied, KindAccessDenied}, []Kind{got[0].Kind, got[1].Kind, got[2].Kind})
	assert.NotContains(t, out.String(), password)
	assert.Equal(t, 3, strings.Count(out.String(), `"resource":"`+want+`"`))
}

func TestTokenExchangeHook(t *testing.T) {
	// obo declares its own Auditor interface; the Recorder must fit it.
	type oboAuditor interface {
		TokenExchange(ctx context.Context, grant, audience string, d time.Duration, err error)
	}

	sink := &memSink{}
	r := mustNew(t, Config{Sink: sink})
	var hook oboAuditor = r
	ctx := callCtx(nil)
	hook.TokenExchange(ctx, "token-exchange", "https://api.example.com", 30*time.Millisecond, nil)
	hook.TokenExchange(ctx, "client_credentials", "api://graph", time.Millisecond, auth.InvalidToken("rejected", auth.ErrInvalidToken))
	hook.TokenExchange(ctx, "jwt-bearer", "api://x", time.Millisecond, errors.New("dial tcp: refused"))
	hook.TokenExchange(ctx, "jwt-bearer", "api://y", time.Millisecond, fmt.Errorf("wrapped: %w", selfClassed{}))

	got := sink.all()
	require.Len(t, got, 4)
	e := got[0]
	assert.Equal(t, KindTokenExchange, e.Kind)
	assert.Equal(t, "token-exchange", e.Grant)
	assert.Equal(t, "https://api.example.com", e.Audience)
	assert.Equal(t, 30*time.Millisecond, e.Duration)
	assert.Equal(t, DecisionAllow, e.Decision)
	assert.Equal(t, "alice", e.Subject)
	assert.Equal(t, "acme", e.Tenant)
	assert.Equal(t, "req-7", e.RequestID)
	assert.Equal(t, DecisionDeny, got[1].Decision)
	assert.Equal(t, "invalid_token", got[1].ErrorClass)
	assert.Equal(t, DecisionAllow, got[2].Decision)
	assert.Equal(t, "error", got[2].ErrorClass)
	assert.Equal(t, DecisionDeny, got[3].Decision, "an error in the chain names its own class")
	assert.Equal(t, "consent_required", got[3].ErrorClass)
}

// selfClassed names its audit class, as obo's errors do.
type selfClassed struct{}

func (selfClassed) Error() string              { return "self-classed" }
func (selfClassed) AuditClass() (string, bool) { return "consent_required", true }

func TestDenialHook(t *testing.T) {
	type authzHook func(ctx context.Context, method, name, reason string)
	sink := &memSink{}
	r := mustNew(t, Config{Sink: sink})
	var hook authzHook = r.Denial
	ctx := callCtx(nil)
	hook(ctx, "tools/call", "delete_repo", "insufficient_scope")
	hook(ctx, "prompts/get", "admin_prompt", "tenant")
	hook(ctx, "resources/read", "files://secret?sig=abc", "no_rule")
	hook(ctx, "tasks/get", "t1", "no_rule")

	got := sink.all()
	require.Len(t, got, 4)
	want := []Event{
		{Kind: KindToolDenied, Tool: "delete_repo", Reason: "insufficient_scope"},
		{Kind: KindPromptDenied, Prompt: "admin_prompt", Reason: "tenant"},
		{Kind: KindResourceDenied, Resource: "files://secret", Reason: "no_rule"},
		{Kind: KindAccessDenied, Method: "tasks/get", Reason: "no_rule"},
	}
	for i, e := range got {
		assert.Equal(t, want[i].Kind, e.Kind)
		assert.Equal(t, want[i].Tool, e.Tool)
		assert.Equal(t, want[i].Prompt, e.Prompt)
		assert.Equal(t, want[i].Resource, e.Resource)
		assert.Equal(t, want[i].Method, e.Method)
		assert.Equal(t, want[i].Reason, e.Reason)
		assert.Equal(t, DecisionDeny, e.Decision)
		assert.Equal(t, "alice", e.Subject)
		assert.Equal(t, "42", e.RPCID)
	}
}
