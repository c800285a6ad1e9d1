package authz

import (
	"context"
	"encoding/json"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/internal/era"
	"github.com/mcpguard/mcpguard/internal/jsonrpc"
)

// ToolLookup returns the annotations of the tool called name, and false when
// there is no such tool. It must be safe for concurrent use.
type ToolLookup func(name string) (mcp.ToolAnnotation, bool)

// ServerTools returns a ToolLookup over the tools registered on srv with
// AddTool or SetTools (not session tools, which exist only inside a
// session). It lets the HTTP edge, which runs before mcp-go, apply the
// annotation defaults; see Config.Tools. srv must not be nil. Each lookup
// allocates once inside mcp-go; see StaticTools for a fixed tool set.
func ServerTools(srv *server.MCPServer) ToolLookup {
	return func(name string) (mcp.ToolAnnotation, bool) {
		if t := srv.GetTool(name); t != nil {
			return t.Tool.Annotations, true
		}
		return mcp.ToolAnnotation{}, false
	}
}

// StaticTools returns a ToolLookup over a fixed list of tools, for servers
// whose tools do not change once registered. Unlike ServerTools it costs no
// allocation per lookup (mcp-go's GetTool copies the tool to the heap).
// Later changes to tools do not affect it.
func StaticTools(tools ...mcp.Tool) ToolLookup {
	known := make(map[string]mcp.ToolAnnotation, len(tools))
	for _, t := range tools {
		known[t.Name] = t.Annotations
	}
	return func(name string) (mcp.ToolAnnotation, bool) {
		a, ok := known[name]
		return a, ok
	}
}

func hintOf(a mcp.ToolAnnotation) toolHint {
	return toolHint{known: true, readOnly: a.ReadOnlyHint != nil && *a.ReadOnlyHint}
}

// lookupTool finds a tool as mcp-go dispatches it: the session's tools
// first, then the server's, then Config.Tools. A tool found nowhere is not
// read-only.
//
// What mcp-go answers is remembered in the request's jsonrpc.Memo (the
// request hook and the tool middleware both ask; each mcp-go lookup
// allocates).
func (pl *Policy) lookupTool(ctx context.Context, name string) toolHint {
	m, _ := ctx.Value(jsonrpc.MemoKey{}).(*jsonrpc.Memo)
	if v, ok := m.Recall(name); ok {
		return toolHint{known: true, readOnly: v == 1}
	}
	if t, ok := findTool(ctx, name); ok {
		h := hintOf(t.Annotations)
		v := uint8(0)
		if h.readOnly {
			v = 1
		}
		m.Keep(name, v)
		return h
	}
	if pl.tools != nil {
		if a, ok := pl.tools(name); ok {
			return hintOf(a)
		}
	}
	return toolHint{known: true}
}

// findTool finds the tool called name in the mcp-go session and server in
// ctx, if any.
func findTool(ctx context.Context, name string) (mcp.Tool, bool) {
	if s, ok := server.ClientSessionFromContext(ctx).(server.SessionWithTools); ok {
		if t, ok := s.GetSessionTools()[name]; ok {
			return t.Tool, true
		}
	}
	if srv := server.ServerFromContext(ctx); srv != nil {
		if t := srv.GetTool(name); t != nil {
			return t.Tool, true
		}
	}
	return mcp.Tool{}, false
}

// ToolMiddleware is the authoritative tool-call check: a call the
// principal in the context (auth.FromContext) may not make returns a
// *DeniedError without reaching the handler. mcp-go sends that error to the
// client as a JSON-RPC error whose message is the error's client-safe text,
// naming the missing scopes.
//
// It is a server.ToolHandlerMiddleware: install it with ServerOptions (or
// server.WithToolHandlerMiddleware(pl.ToolMiddleware)). It is safe for
// concurrent use.
func (pl *Policy) ToolMiddleware(next server.ToolHandlerFunc) server.ToolHandlerFunc {
	return func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		p, _ := auth.FromContext(ctx)
		if d := pl.Check(ctx, p, MethodToolsCall, req.Params.Name); !d.Allowed {
			return nil, d.Err()
		}
		return next(ctx, req)
	}
}

// ToolFilter returns a tools/list filter that keeps only the tools the
// principal in the context may call, judging each by its own annotations.
//
// mcp-go also runs tool filters at call time and answers "tool not found"
// for a filtered-out tool. Tools hidden by a tenant allow-list or by a rule
// nobody meets are meant to look absent; but a tool hidden only for lack of
// scope deserves an insufficient-scope answer the client can act on. That
// answer comes from RequestHook, which runs before the filter: install the
// filter only together with the hook (ServerOptions does).
func (pl *Policy) ToolFilter() server.ToolFilterFunc {
	return func(ctx context.Context, tools []mcp.Tool) []mcp.Tool {
		p, _ := auth.FromContext(ctx)
		for i := range tools {
			if pl.allowsTool(ctx, p, tools[i].Name, hintOf(tools[i].Annotations)) {
				continue
			}
			// Copy on the first denial: the input may be shared and is
			// never modified.
			out := make([]mcp.Tool, i, len(tools)-1)
			copy(out, tools[:i])
			for _, t := range tools[i+1:] {
				if pl.allowsTool(ctx, p, t.Name, hintOf(t.Annotations)) {
					out = append(out, t)
				}
			}
			return out
		}
		return tools
	}
}

// PromptFilter returns a prompts/list filter that keeps only the prompts
// the principal in the context may get. Like ToolFilter it also runs at
// prompts/get time, so install it together with RequestHook.
func (pl *Policy) PromptFilter() server.PromptFilterFunc {
	return func(ctx context.Context, prompts []mcp.Prompt) []mcp.Prompt {
		p, _ := auth.FromContext(ctx)
		for i := range prompts {
			if pl.allowsPrompt(p, prompts[i].Name) {
				continue
			}
			out := make([]mcp.Prompt, i, len(prompts)-1)
			copy(out, prompts[:i])
			for _, pr := range prompts[i+1:] {
				if pl.allowsPrompt(p, pr.Name) {
					out = append(out, pr)
				}
			}
			return out
		}
		return prompts
	}
}

// PromptMiddleware is the authoritative prompts/get check
// (a server.PromptHandlerMiddleware), which returns a *DeniedError without reaching the handler.
func (pl *Policy) PromptMiddleware(next server.PromptHandlerFunc) server.PromptHandlerFunc {
	return func(ctx context.Context, req mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
		p, _ := auth.FromContext(ctx)
		if d := pl.checkPrompt(p, req.Params.Name); !d.Allowed {
			return nil, d.Err()
		}
		return next(ctx, req)
	}
}

// ResourceMiddleware is the authoritative resources/read check (by URI
// prefix; a server.ResourceHandlerMiddleware), which returns a *DeniedError without reaching the handler. The
// list methods are narrowed by hooks ServerOptions installs.
func (pl *Policy) ResourceMiddleware(next server.ResourceHandlerFunc) server.ResourceHandlerFunc {
	return func(ctx context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
		p, _ := auth.FromContext(ctx)
		if d := pl.checkResource(p, req.Params.URI); !d.Allowed {
			return nil, d.Err()
		}
		return next(ctx, req)
	}
}

// messageBody is the raw JSON-RPC message mcp-go hands a request hook, or
// false when it is not bytes (mcp-go hands raw bytes from a transport).
func messageBody(message any) ([]byte, bool) {
	switch m := message.(type) {
	case json.RawMessage:
		return m, true
	case []byte:
		return m, true
	}
	return nil, false
}

// RequestHook returns an mcp-go request-initialization hook, run for every
// request before mcp-go dispatches it. It enforces the method table
// (ClassifyMethod): a method the table refuses — unknown, or one only a
// server sends — is denied (ReasonMethod; mcp-go answers JSON-RPC -32600
// with the text "method not found"; the HTTP edge answers -32601 before
// mcp-go runs).
//
// It is the authoritative check of the mediated methods mcp-go offers no
// middleware for: completion/complete is decided by the rule of the prompt
// (ref/prompt name) or resource (ref/resource uri) it refers to;
// resources/subscribe, resources/unsubscribe and subscriptions/listen by
// the resource rules of every URI they name. resources/subscribe and
// resources/unsubscribe in a 2026-07-28 request, an era that removed them,
// pass on to mcp-go, which refuses them with -32601 (HTTP 404) as the
// specification requires; nothing is subscribed. Those requests are decoded
// with mcp-go's own request types, so the policy decides on exactly what
// mcp-go dispatches.
//
// For tools/call and prompts/get it answers early, before mcp-go's filters
// run, when the answer is one the client can act on: no principal, or an
// existing tool or prompt whose rule the principal's scopes do not meet.
// mcp-go then replies with a JSON-RPC error (code -32600) whose message is
// the *DeniedError's text, e.g. "insufficient scope: this request requires
// notes:write", instead of the filters' "tool not found". For those and
// resources/read the middlewares remain the authoritative check. Tasks
// methods (MethodOwnerBound) pass on to the owner check of package
// transport.
func (pl *Policy) RequestHook() server.OnRequestInitializationFunc {
	return func(ctx context.Context, _ any, message any) error {
		body, ok := messageBody(message)
		if !ok {
			return nil
		}
		msg, err := jsonrpc.PeekMemo(ctx, body) // peeked once per request behind transport's edge
		if err != nil {
			// Read the method as mcp-go does; a body it cannot read either
			// is refused by mcp-go itself.
			var base struct {
				Method string `json:"method"`
			}
			if json.Unmarshal(body, &base) != nil {
				return nil
			}
			msg = jsonrpc.Message{Method: base.Method}
		}
		p, _ := auth.FromContext(ctx)
		var d Decision
		switch class := ClassifyMethod(msg.Method); {
		case class == MethodRefused:
			return &DeniedError{Reason: ReasonMethod}
		case class != MethodMediated:
			return nil
		}
		switch msg.Method {
		case MethodToolsCall:
			if err != nil {
				return nil // ambiguous: the middleware decides on what mcp-go decoded
			}
			d = pl.checkTool(ctx, p, msg.Name, toolHint{})
		case MethodPromptsGet:
			if err != nil {
				return nil
			}
			d = pl.checkPrompt(p, msg.Name)
		case MethodResourcesRead:
			return nil // ResourceMiddleware decides
		case MethodResourcesSubscribe, MethodResourcesUnsubscribe:
			if era.BodyModern(body) {
				// Removed in 2026-07-28: mcp-go answers a request of that
				// era with -32601 (HTTP 404) before any handler runs, as the
				// specification requires; a denial here would answer -32600.
				return nil
			}
			return pl.checkMediated(p, msg.Method, body).Err()
		default:
			return pl.checkMediated(p, msg.Method, body).Err()
		}
		switch {
		case d.Allowed:
			return nil
		case d.Reason == ReasonUnauthenticated:
			return d.Err()
		case d.Reason != ReasonInsufficientScope:
			return nil
		}
		// Say "insufficient scope" only about something that exists, so the
		// hook reveals no more than mcp-go's own "not found".
		if msg.Method == MethodToolsCall {
			if _, ok := findTool(ctx, msg.Name); !ok {
				return nil
			}
		} else if srv := server.ServerFromContext(ctx); srv == nil || srv.ListPrompts()[msg.Name] == nil {
			return nil
		}
		return d.Err()
	}
}

// checkMediated decides completion/complete, resources/subscribe,
// resources/unsubscribe and subscriptions/listen, decoding body with
// mcp-go's request types. A body mcp-go's types cannot decode is denied.
func (pl *Policy) checkMediated(p *auth.Principal, method string, body []byte) Decision {
	if p == nil {
		return Decision{Reason: ReasonUnauthenticated}
	}
	switch method {
	case MethodCompletionComplete:
		var req mcp.CompleteRequest
		if json.Unmarshal(body, &req) != nil {
			return Decision{Reason: ReasonNoRule}
		}
		switch ref := req.Params.Ref.(type) {
		case mcp.PromptReference:
			return pl.checkPrompt(p, ref.Name)
		case mcp.ResourceReference:
			return pl.checkResource(p, ref.URI)
		}
	case MethodResourcesSubscribe:
		var req mcp.SubscribeRequest
		if json.Unmarshal(body, &req) != nil {
			return Decision{Reason: ReasonNoRule}
		}
		return pl.checkResource(p, req.Params.URI)
	case MethodResourcesUnsubscribe:
		var req mcp.UnsubscribeRequest
		if json.Unmarshal(body, &req) != nil {
			return Decision{Reason: ReasonNoRule}
		}
		return pl.checkResource(p, req.Params.URI)
	case MethodSubscriptionsListen:
		var req mcp.SubscriptionsListenRequest
		if json.Unmarshal(body, &req) != nil {
			return Decision{Reason: ReasonNoRule}
		}
		uris := req.Params.Notifications.ResourceSubscriptions
		if len(uris) > maxListenURIs {
			return Decision{Reason: ReasonNoRule}
		}
		for _, uri := range uris {
			if d := pl.checkResource(p, uri); !d.Allowed {
				return d
			}
		}
		return Decision{Allowed: true, Reason: ReasonAllowed}
	}
	return Decision{Reason: ReasonNoRule}
}

// maxListenURIs caps the resource URIs one subscriptions/listen request may
// name; more is refused.
const maxListenURIs = 1024

// ServerOptions returns the mcp-go options that install the whole policy:
// RequestHook and the hooks narrowing resources/list and
// resources/templates/list (added to the server's hooks, created if there are
// none), ToolFilter, ToolMiddleware, PromptFilter, PromptMiddleware and
// ResourceMiddleware. Pass them after any server.WithHooks option, which
// would otherwise replace the hooks holding RequestHook (calls denied for
// scope would then read "tool not found"; still denied).
func (pl *Policy) ServerOptions() []server.ServerOption {
	return []server.ServerOption{
		func(s *server.MCPServer) {
			h := s.GetHooks()
			if h == nil {
				h = &server.Hooks{}
				server.WithHooks(h)(s)
			}
			h.AddOnRequestInitialization(pl.RequestHook())
		},
		func(s *server.MCPServer) {
			h := s.GetHooks()
			if h == nil {
				h = &server.Hooks{}
				server.WithHooks(h)(s)
			}
			pl.addListHooks(h)
		},
		server.WithToolFilter(pl.ToolFilter()),
		server.WithToolHandlerMiddleware(pl.ToolMiddleware),
		server.WithPromptFilter(pl.PromptFilter()),
		server.WithPromptHandlerMiddleware(pl.PromptMiddleware),
		server.WithResourceHandlerMiddleware(pl.ResourceMiddleware),
	}
}

// Install applies ServerOptions to an existing server, for servers built
// before the policy (for example because Config.Tools is ServerTools(srv)).
// Call it before the server starts serving.
func (pl *Policy) Install(srv *server.MCPServer) {
	for _, opt := range pl.ServerOptions() {
		opt(srv)
	}
}

// Require returns a middleware for one tool handler, for authors who prefer
// to state a tool's scopes where they register it:
//
//	srv.AddTool(tool, authz.Require("notes:write")(handler))
//
// The handler runs only when the principal in the context holds every
// scope; otherwise the call fails with a *DeniedError naming the missing
// ones. With no scopes it requires only an authenticated principal. The
// empty scope is never held, so Require("") denies every call.
func Require(scopes ...string) server.ToolHandlerMiddleware {
	r := rule{allOf: append([]string(nil), scopes...), authenticated: true}
	if len(scopes) > 0 {
		r.authenticated = false
	}
	return func(next server.ToolHandlerFunc) server.ToolHandlerFunc {
		return func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			p, ok := auth.FromContext(ctx)
			if !ok {
				return nil, &DeniedError{Reason: ReasonUnauthenticated}
			}
			if d := decide(p, &r); !d.Allowed {
				return nil, d.Err()
			}
			return next(ctx, req)
		}
	}
}
