package authz_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/authz"
	"github.com/mcpguard/mcpguard/tenancy"
)

// notesServer is an mcp-go server with read-only, write and admin tools,
// prompts and resources, counting how often each handler runs.
type notesServer struct {
	srv   *server.MCPServer
	calls sync.Map // name → *atomic.Int32
}

func (n *notesServer) count(name string) int32 {
	v, ok := n.calls.Load(name)
	if !ok {
		return 0
	}
	return v.(*atomic.Int32).Load()
}

func (n *notesServer) hit(name string) {
	v, _ := n.calls.LoadOrStore(name, new(atomic.Int32))
	v.(*atomic.Int32).Add(1)
}

func notesPolicy(t testing.TB, extra func(*authz.Config)) *authz.Policy {
	t.Helper()
	cfg := authz.Config{
		ReadScope:  "notes:read",
		WriteScope: "notes:write",
		ToolRules:  map[string]authz.Rule{"purge_notes": {AllOf: []string{"notes:admin"}}},
		PromptRules: map[string]authz.Rule{
			"summarize": {AllOf: []string{"notes:read"}},
			"audit":     {AllOf: []string{"notes:admin"}},
		},
		ResourceRules: []authz.ResourceRule{
			{Prefix: "notes://public/", Rule: authz.Rule{Authenticated: true}},
			{Prefix: "notes://private/", Rule: authz.Rule{AllOf: []string{"notes:admin"}}},
		},
	}
	if extra != nil {
		extra(&cfg)
	}
	pl, err := authz.New(cfg)
	require.NoError(t, err)
	return pl
}

func newNotesServer(t testing.TB, opts ...server.ServerOption) *notesServer {
	t.Helper()
	n := &notesServer{}
	opts = append([]server.ServerOption{
		server.WithToolCapabilities(true),
		server.WithPromptCapabilities(true),
		server.WithResourceCapabilities(false, false),
	}, opts...)
	n.srv = server.NewMCPServer("notes", "1.0.0", opts...)
	tool := func(name string) server.ToolHandlerFunc {
		return func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			n.hit(name)
			return mcp.NewToolResultText(name + " ok"), nil
		}
	}
	n.srv.AddTool(mcp.NewTool("list_notes", mcp.WithReadOnlyHintAnnotation(true)), tool("list_notes"))
	n.srv.AddTool(mcp.NewTool("write_note"), tool("write_note"))
	n.srv.AddTool(mcp.NewTool("purge_notes", mcp.WithReadOnlyHintAnnotation(true)), tool("purge_notes"))
	prompt := func(name string) server.PromptHandlerFunc {
		return func(context.Context, mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
			n.hit(name)
			return mcp.NewGetPromptResult(name, []mcp.PromptMessage{
				mcp.NewPromptMessage(mcp.RoleUser, mcp.NewTextContent(name)),
			}), nil
		}
	}
	n.srv.AddPrompt(mcp.NewPrompt("summarize"), prompt("summarize"))
	n.srv.AddPrompt(mcp.NewPrompt("audit"), prompt("audit"))
	resource := func(uri string) server.ResourceHandlerFunc {
		return func(context.Context, mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
			n.hit(uri)
			return []mcp.ResourceContents{mcp.TextResourceContents{URI: uri, Text: "x"}}, nil
		}
	}
	n.srv.AddResource(mcp.NewResource("notes://public/readme", "readme"), resource("notes://public/readme"))
	n.srv.AddResource(mcp.NewResource("notes://private/keys", "keys"), resource("notes://private/keys"))
	return n
}

// rpc sends one JSON-RPC request through HandleMessage as principal p.
func (n *notesServer) rpc(t testing.TB, ctx context.Context, p *auth.Principal, method string, params any) mcp.JSONRPCMessage {
	t.Helper()
	if p != nil {
		ctx = auth.NewContext(ctx, p)
	}
	body, err := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
	require.NoError(t, err)
	return n.srv.HandleMessage(ctx, body)
}

func toolNames(t testing.TB, msg mcp.JSONRPCMessage) []string {
	t.Helper()
	resp, ok := msg.(mcp.JSONRPCResponse)
	require.True(t, ok, "expected a response, got %#v", msg)
	res, ok := resp.Result.(mcp.ListToolsResult)
	require.True(t, ok, "got %T", resp.Result)
	var names []string
	for _, tl := range res.Tools {
		names = append(names, tl.Name)
	}
	return names
}

func promptNames(t testing.TB, msg mcp.JSONRPCMessage) []string {
	t.Helper()
	resp, ok := msg.(mcp.JSONRPCResponse)
	require.True(t, ok, "expected a response, got %#v", msg)
	res, ok := resp.Result.(mcp.ListPromptsResult)
	require.True(t, ok, "got %T", resp.Result)
	var names []string
	for _, p := range res.Prompts {
		names = append(names, p.Name)
	}
	return names
}

// rpcError returns the JSON-RPC error of msg, failing if it is a success.
func rpcError(t testing.TB, msg mcp.JSONRPCMessage) mcp.JSONRPCErrorDetails {
	t.Helper()
	e, ok := msg.(mcp.JSONRPCError)
	require.True(t, ok, "expected a JSON-RPC error, got %#v", msg)
	return e.Error
}

func requireSuccess(t testing.TB, msg mcp.JSONRPCMessage) {
	t.Helper()
	_, ok := msg.(mcp.JSONRPCResponse)
	require.True(t, ok, "expected success, got %#v", msg)
}

var (
	reader = principal("notes:read")
	writer = principal("notes:read", "notes:write")
	admin  = principal("notes:read", "notes:write", "notes:admin")
)

func TestServerOptionsToolsList(t *testing.T) {
	n := newNotesServer(t, notesPolicy(t, nil).ServerOptions()...)
	tests := []struct {
		name string
		p    *auth.Principal
		want []string
	}{
		{"reader sees read tools", reader, []string{"list_notes"}},
		{"writer sees read and write tools", writer, []string{"list_notes", "write_note"}},
		{"admin sees everything", admin, []string{"list_notes", "purge_notes", "write_note"}},
		{"write scope alone", principal("notes:write"), []string{"write_note"}},
		{"no scopes", principal(), nil},
		{"anonymous", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, toolNames(t, n.rpc(t, context.Background(), tt.p, "tools/list", map[string]any{})))
		})
	}
}

func TestServerOptionsToolsCall(t *testing.T) {
	n := newNotesServer(t, notesPolicy(t, nil).ServerOptions()...)
	tests := []struct {
		name     string
		p        *auth.Principal
		tool     string
		wantCode int // 0: success
		wantMsg  string
	}{
		{name: "reader calls read tool", p: reader, tool: "list_notes"},
		{name: "writer calls write tool", p: writer, tool: "write_note"},
		{name: "admin calls admin tool", p: admin, tool: "purge_notes"},
		{
			name: "reader denied write tool with the missing scope", p: reader, tool: "write_note",
			wantCode: mcp.INVALID_REQUEST, wantMsg: "insufficient scope: this request requires notes:write",
		},
		{
			name: "writer denied admin tool (explicit rule beats annotation)", p: writer, tool: "purge_notes",
			wantCode: mcp.INVALID_REQUEST, wantMsg: "insufficient scope: this request requires notes:admin",
		},
		{
			name: "anonymous caller", p: nil, tool: "list_notes",
			wantCode: mcp.INVALID_REQUEST, wantMsg: "access denied: authentication required",
		},
		{
			name: "unknown tool still reads not found", p: reader, tool: "no_such_tool",
			wantCode: mcp.INVALID_PARAMS, wantMsg: "tool 'no_such_tool' not found",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := n.count(tt.tool)
			msg := n.rpc(t, context.Background(), tt.p, "tools/call", map[string]any{"name": tt.tool})
			if tt.wantCode == 0 {
				requireSuccess(t, msg)
				assert.Equal(t, before+1, n.count(tt.tool))
				return
			}
			e := rpcError(t, msg)
			assert.Equal(t, tt.wantCode, e.Code)
			assert.Contains(t, e.Message, tt.wantMsg)
			assert.Equal(t, before, n.count(tt.tool), "a denied call never reaches the handler")
		})
	}
}

func TestServerOptionsTenantCuration(t *testing.T) {
	pl := notesPolicy(t, func(c *authz.Config) {
		c.TenantTools = map[string][]string{"acme": {"list_notes", "write_note"}, "globex": {"list_notes"}}
	})
	n := newNotesServer(t, pl.ServerOptions()...)
	acme := tenancy.NewContext(context.Background(), "acme")
	globex := tenancy.NewContext(context.Background(), "globex")

	assert.Equal(t, []string{"list_notes", "write_note"}, toolNames(t, n.rpc(t, acme, admin, "tools/list", map[string]any{})))
	assert.Equal(t, []string{"list_notes"}, toolNames(t, n.rpc(t, globex, admin, "tools/list", map[string]any{})))
	assert.Empty(t, toolNames(t, n.rpc(t, context.Background(), admin, "tools/list", map[string]any{})), "no tenant, no tools")

	// A tool outside the tenant's catalogue looks absent, even to an admin.
	e := rpcError(t, n.rpc(t, globex, admin, "tools/call", map[string]any{"name": "write_note"}))
	assert.Equal(t, mcp.INVALID_PARAMS, e.Code)
	assert.Contains(t, e.Message, "not found")
	assert.Zero(t, n.count("write_note"))

	requireSuccess(t, n.rpc(t, acme, writer, "tools/call", map[string]any{"name": "write_note"}))
	// Inside the catalogue, a scope denial still names the scope.
	e = rpcError(t, n.rpc(t, acme, reader, "tools/call", map[string]any{"name": "write_note"}))
	assert.Contains(t, e.Message, "requires notes:write")
}

func TestServerOptionsPrompts(t *testing.T) {
	n := newNotesServer(t, notesPolicy(t, nil).ServerOptions()...)
	assert.Equal(t, []string{"summarize"}, promptNames(t, n.rpc(t, context.Background(), reader, "prompts/list", map[string]any{})))
	assert.Equal(t, []string{"audit", "summarize"}, promptNames(t, n.rpc(t, context.Background(), admin, "prompts/list", map[string]any{})))

	requireSuccess(t, n.rpc(t, context.Background(), reader, "prompts/get", map[string]any{"name": "summarize"}))
	e := rpcError(t, n.rpc(t, context.Background(), reader, "prompts/get", map[string]any{"name": "audit"}))
	assert.Equal(t, mcp.INVALID_REQUEST, e.Code)
	assert.Equal(t, "insufficient scope: this request requires notes:admin", e.Message)
	assert.Zero(t, n.count("audit"))

	e = rpcError(t, n.rpc(t, context.Background(), reader, "prompts/get", map[string]any{"name": "nope"}))
	assert.Contains(t, e.Message, "not found", "a prompt that does not exist is not reported as forbidden")
}

func TestServerOptionsResources(t *testing.T) {
	n := newNotesServer(t, notesPolicy(t, nil).ServerOptions()...)
	requireSuccess(t, n.rpc(t, context.Background(), reader, "resources/read", map[string]any{"uri": "notes://public/readme"}))
	e := rpcError(t, n.rpc(t, context.Background(), reader, "resources/read", map[string]any{"uri": "notes://private/keys"}))
	assert.Equal(t, mcp.INTERNAL_ERROR, e.Code, "mcp-go reports handler errors as internal errors")
	assert.Equal(t, "insufficient scope: this request requires notes:admin", e.Message)
	assert.Zero(t, n.count("notes://private/keys"))
	requireSuccess(t, n.rpc(t, context.Background(), admin, "resources/read", map[string]any{"uri": "notes://private/keys"}))
}

// Without the hook, mcp-go's call-time filter turns a scope denial into
// "tool not found": this is why ServerOptions installs RequestHook too.
func TestFilterWithoutHookReadsNotFound(t *testing.T) {
	pl := notesPolicy(t, nil)
	n := newNotesServer(t, server.WithToolFilter(pl.ToolFilter()), server.WithToolHandlerMiddleware(pl.ToolMiddleware))
	e := rpcError(t, n.rpc(t, context.Background(), reader, "tools/call", map[string]any{"name": "write_note"}))
	assert.Contains(t, e.Message, "not found")
	assert.Zero(t, n.count("write_note"))
}

// The middleware alone is authoritative: no filter, no hook.
func TestToolMiddlewareAlone(t *testing.T) {
	n := newNotesServer(t, server.WithToolHandlerMiddleware(notesPolicy(t, nil).ToolMiddleware))
	assert.Len(t, toolNames(t, n.rpc(t, context.Background(), reader, "tools/list", map[string]any{})), 3, "no filter: all listed")

	e := rpcError(t, n.rpc(t, context.Background(), reader, "tools/call", map[string]any{"name": "write_note"}))
	assert.Equal(t, mcp.INTERNAL_ERROR, e.Code)
	assert.Equal(t, "insufficient scope: this request requires notes:write", e.Message)
	assert.Zero(t, n.count("write_note"))

	// Annotations are read from the server in the context.
	requireSuccess(t, n.rpc(t, context.Background(), reader, "tools/call", map[string]any{"name": "list_notes"}))
	e = rpcError(t, n.rpc(t, context.Background(), nil, "tools/call", map[string]any{"name": "list_notes"}))
	assert.Equal(t, "access denied: authentication required", e.Message)
}

func TestPromptMiddlewareAlone(t *testing.T) {
	n := newNotesServer(t, server.WithPromptHandlerMiddleware(notesPolicy(t, nil).PromptMiddleware))
	e := rpcError(t, n.rpc(t, context.Background(), reader, "prompts/get", map[string]any{"name": "audit"}))
	assert.Equal(t, "insufficient scope: this request requires notes:admin", e.Message)
	assert.Zero(t, n.count("audit"))
}

func TestServerOptionsKeepExistingHooks(t *testing.T) {
	var seen atomic.Int32
	hooks := &server.Hooks{}
	hooks.AddOnRequestInitialization(func(context.Context, any, any) error {
		seen.Add(1)
		return nil
	})
	opts := append([]server.ServerOption{server.WithHooks(hooks)}, notesPolicy(t, nil).ServerOptions()...)
	n := newNotesServer(t, opts...)
	e := rpcError(t, n.rpc(t, context.Background(), reader, "tools/call", map[string]any{"name": "write_note"}))
	assert.Contains(t, e.Message, "requires notes:write")
	assert.Equal(t, int32(1), seen.Load(), "the server's own hook still runs")
}

func TestInstallOnExistingServer(t *testing.T) {
	n := newNotesServer(t)
	pl := notesPolicy(t, func(c *authz.Config) { c.Tools = authz.ServerTools(n.srv) })
	pl.Install(n.srv)
	assert.Equal(t, []string{"list_notes"}, toolNames(t, n.rpc(t, context.Background(), reader, "tools/list", map[string]any{})))
	e := rpcError(t, n.rpc(t, context.Background(), reader, "tools/call", map[string]any{"name": "write_note"}))
	assert.Contains(t, e.Message, "requires notes:write")

	// Outside mcp-go (the HTTP edge) annotations come from Config.Tools.
	assert.True(t, pl.Check(context.Background(), reader, authz.MethodToolsCall, "list_notes").Allowed)
	d := pl.Check(context.Background(), reader, authz.MethodToolsCall, "write_note")
	assert.Equal(t, []string{"notes:write"}, d.Missing)
}

func TestStaticTools(t *testing.T) {
	tools := []mcp.Tool{
		mcp.NewTool("list_notes", mcp.WithReadOnlyHintAnnotation(true)),
		mcp.NewTool("write_note"),
	}
	lookup := authz.StaticTools(tools...)
	tools[0].Annotations.ReadOnlyHint = mcp.ToBoolPtr(false)
	a, ok := lookup("list_notes")
	require.True(t, ok)
	assert.True(t, *a.ReadOnlyHint, "later changes do not affect the lookup")
	_, ok = lookup("nope")
	assert.False(t, ok)

	pl := notesPolicy(t, func(c *authz.Config) { c.Tools = lookup })
	assert.True(t, pl.Check(context.Background(), reader, authz.MethodToolsCall, "list_notes").Allowed)
	assert.False(t, pl.Check(context.Background(), reader, authz.MethodToolsCall, "write_note").Allowed)
}

// sessionWithTools is a minimal mcp-go session carrying its own tools.
type sessionWithTools struct {
	id    string
	ch    chan mcp.JSONRPCNotification
	mu    sync.Mutex
	tools map[string]server.ServerTool
}

func (s *sessionWithTools) Initialize()                                         {}
func (s *sessionWithTools) Initialized() bool                                   { return true }
func (s *sessionWithTools) NotificationChannel() chan<- mcp.JSONRPCNotification { return s.ch }
func (s *sessionWithTools) SessionID() string                                   { return s.id }
func (s *sessionWithTools) GetSessionTools() map[string]server.ServerTool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tools
}

func (s *sessionWithTools) SetSessionTools(tools map[string]server.ServerTool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tools = tools
}

func TestSessionToolAnnotations(t *testing.T) {
	n := newNotesServer(t, notesPolicy(t, nil).ServerOptions()...)
	var ran atomic.Int32
	sess := &sessionWithTools{id: "s1", ch: make(chan mcp.JSONRPCNotification, 4), tools: map[string]server.ServerTool{
		// A session tool overrides the server's write_note with a read-only one.
		"write_note": {
			Tool: mcp.NewTool("write_note", mcp.WithReadOnlyHintAnnotation(true)),
			Handler: func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
				ran.Add(1)
				return mcp.NewToolResultText("session"), nil
			},
		},
	}}
	require.NoError(t, n.srv.RegisterSession(context.Background(), sess))
	ctx := n.srv.WithContext(context.Background(), sess)
	requireSuccess(t, n.rpc(t, ctx, reader, "tools/call", map[string]any{"name": "write_note"}))
	assert.Equal(t, int32(1), ran.Load())
	assert.Zero(t, n.count("write_note"))
}

func TestRequireWrapper(t *testing.T) {
	var ran atomic.Int32
	h := func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		ran.Add(1)
		return mcp.NewToolResultText("ok"), nil
	}
	tests := []struct {
		name    string
		mw      server.ToolHandlerMiddleware
		p       *auth.Principal
		wantErr string
	}{
		{"holds scope", authz.Require("notes:write"), writer, ""},
		{"lacks scope", authz.Require("notes:write"), reader, "insufficient scope: this request requires notes:write"},
		{"lacks both", authz.Require("a", "b"), reader, "insufficient scope: this request requires a b"},
		{"no scopes: authenticated", authz.Require(), principal(), ""},
		{"no principal", authz.Require(), nil, "access denied: authentication required"},
		{"empty scope never held", authz.Require(""), principal(""), "insufficient scope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ran.Store(0)
			ctx := context.Background()
			if tt.p != nil {
				ctx = auth.NewContext(ctx, tt.p)
			}
			res, err := tt.mw(h)(ctx, mcp.CallToolRequest{})
			if tt.wantErr == "" {
				require.NoError(t, err)
				assert.NotNil(t, res)
				assert.Equal(t, int32(1), ran.Load())
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.wantErr)
			assert.ErrorIs(t, err, authz.ErrDenied)
			assert.Zero(t, ran.Load())
		})
	}

	// Through mcp-go, per tool.
	srv := server.NewMCPServer("t", "1", server.WithToolCapabilities(true))
	srv.AddTool(mcp.NewTool("w"), authz.Require("notes:write")(h))
	body := []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"w"}}`)
	e := rpcError(t, srv.HandleMessage(auth.NewContext(context.Background(), reader), body))
	assert.Equal(t, "insufficient scope: this request requires notes:write", e.Message)
}

func TestRequestHookIgnoresWhatItCannotRead(t *testing.T) {
	hook := notesPolicy(t, nil).RequestHook()
	ctx := auth.NewContext(context.Background(), reader)
	for _, msg := range []any{
		nil, 42, "tools/call",
		json.RawMessage(`not json`),
		json.RawMessage(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`),
		json.RawMessage(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","NAME":"y"}}`),
	} {
		assert.NoError(t, hook(ctx, 1, msg), "%v", msg)
	}
	// Denial for lack of scope but no mcp-go server in the context: the
	// hook cannot tell whether the tool exists, so it stays silent.
	assert.NoError(t, hook(ctx, 1, json.RawMessage(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"write_note"}}`)))
	// No principal is answered whatever the tool.
	err := hook(context.Background(), 1, []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x"}}`))
	var de *authz.DeniedError
	require.True(t, errors.As(err, &de))
	assert.Equal(t, authz.ReasonUnauthenticated, de.Reason)
}

func TestConcurrentUse(t *testing.T) {
	n := newNotesServer(t, notesPolicy(t, nil).ServerOptions()...)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, tool, ok := reader, "write_note", false
			if i%2 == 0 {
				p, ok = writer, true
			}
			for range 50 {
				msg := n.rpc(t, context.Background(), p, "tools/call", map[string]any{"name": tool})
				if _, isResp := msg.(mcp.JSONRPCResponse); isResp != ok {
					t.Errorf("principal %v: got %#v", p.Scopes, msg)
					return
				}
			}
		}()
	}
	wg.Wait()
	assert.Equal(t, int32(4*50), n.count("write_note"))
}

func TestCheckToolUsesTheGivenAnnotations(t *testing.T) {
	pl := notesPolicy(t, nil)
	ro := mcp.ToolAnnotation{ReadOnlyHint: mcp.ToBoolPtr(true)}
	assert.True(t, pl.CheckTool(context.Background(), reader, "anything", ro).Allowed)
	d := pl.CheckTool(context.Background(), reader, "anything", mcp.ToolAnnotation{})
	assert.Equal(t, []string{"notes:write"}, d.Missing)
	assert.Equal(t, authz.ReasonInsufficientScope, pl.CheckTool(context.Background(), writer, "purge_notes", ro).Reason,
		"an explicit rule beats the annotations")
	var nilPolicy *authz.Policy
	assert.False(t, nilPolicy.CheckTool(context.Background(), admin, "x", ro).Allowed)
}

// resources/subscribe and resources/unsubscribe were removed in 2026-07-28:
// a request of that era gets mcp-go's -32601, not the hook's -32600, and
// subscribes nothing; a legacy one (no _meta version, an older one, or a
// _meta mcp-go cannot read as modern) is still decided by the policy.
func TestRequestHookRemovedSubscribeMethods(t *testing.T) {
	var subscribed atomic.Int32
	hooks := &server.Hooks{}
	hooks.AddAfterSubscribe(func(context.Context, any, *mcp.SubscribeRequest, *mcp.EmptyResult) { subscribed.Add(1) })
	pl := notesPolicy(t, nil)
	srv := server.NewMCPServer("t", "1", append([]server.ServerOption{
		server.WithResourceCapabilities(true, false), server.WithHooks(hooks),
	}, pl.ServerOptions()...)...)
	ctx := auth.NewContext(context.Background(), reader)
	body := func(method, meta string) []byte {
		return []byte(`{"jsonrpc":"2.0","id":1,"method":"` + method + `","params":{"uri":"notes://private/keys"` + meta + `}}`)
	}
	const modern = `,"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}`
	for _, method := range []string{authz.MethodResourcesSubscribe, authz.MethodResourcesUnsubscribe} {
		t.Run(method, func(t *testing.T) {
			e := rpcError(t, srv.HandleMessage(ctx, body(method, modern)))
			assert.Equal(t, mcp.METHOD_NOT_FOUND, e.Code, e.Message)
			for name, meta := range map[string]string{
				"no _meta":          "",
				"older version":     `,"_meta":{"io.modelcontextprotocol/protocolVersion":"2025-11-25"}`,
				"version not text":  `,"_meta":{"io.modelcontextprotocol/protocolVersion":20260728}`,
				"_meta not object":  `,"_meta":"2026-07-28"`,
				"version elsewhere": `,"protocolVersion":"2026-07-28"`,
			} {
				e := rpcError(t, srv.HandleMessage(ctx, body(method, meta)))
				assert.Equal(t, mcp.INVALID_REQUEST, e.Code, name)
				assert.Contains(t, e.Message, "insufficient scope", name)
			}
		})
	}
	assert.Zero(t, subscribed.Load())
}
