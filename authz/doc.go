// Package authz decides what a verified caller may do on an MCP server:
// which scopes a token grants, and which tools, prompts and resources those
// scopes open.
//
// # Claims to scopes
//
// Identity providers put permissions in different claims. A Mapper
// (auth.ScopeMapper) turns verified claims into the principal's scopes;
// plug it into a validator. NewMapper reads scope claims and maps role or
// group claims through a table; the presets Entra, Okta, Auth0, Keycloak
// and Cognito know each provider's token shape and document the claims
// they read; Mappers composes several mappers.
//
//	mapper, err := authz.Entra(authz.PresetConfig{
//		RoleMap: map[string][]string{"Notes.ReadWrite.All": {"notes:read", "notes:write"}},
//	})
//
// # Policy
//
// A Policy holds per-tool rules (all-of and any-of scopes), a default rule
// that denies unless configured otherwise, optional annotation-driven
// defaults (read-only tools need ReadScope, every other tool WriteScope),
// per-tenant tool allow-lists, and rules for prompts (by name) and
// resources (by URI prefix). Policy.Check is the pure decision; it allocates
// nothing when it allows.
//
// Resource prefixes are matched against CanonicalResourceURI's form of the
// URI — percent-encoded unreserved characters decoded (RFC 3986 §6.2.2.2),
// as mcp-go decodes template variables before the handler sees them — so
// "notes://priv%61te/keys" falls under the "notes://private/" rule. Encoded
// delimiters, dot segments and URIs whose raw and decoded forms fall under
// different rules are refused. The HTTP edge and the authoritative check
// share this one function.
//
// # Every method is classified
//
// ClassifyMethod puts every JSON-RPC method a client may send in one class;
// anything else — an unknown method, one a future mcp-go adds, one only a
// server sends — is MethodRefused, the zero value. The table:
//
//	open         initialize, ping, server/discover, logging/setLevel,
//	             notifications/initialized, notifications/cancelled,
//	             notifications/progress, notifications/roots/list_changed
//	filtered     tools/list, prompts/list (narrowed by ToolFilter and
//	             PromptFilter), resources/list, resources/templates/list
//	             (mcp-go has no resource filter: hooks ServerOptions
//	             installs narrow the result by the resource rules — a
//	             resource by its URI, a template by the rules its literal
//	             part can reach); tasks/list is owner-bound below
//	mediated     tools/call, prompts/get, resources/read (middlewares);
//	             completion/complete (by the rule of its ref/prompt name or
//	             ref/resource uri), resources/subscribe,
//	             resources/unsubscribe, subscriptions/listen (by the
//	             resource rules of every URI named) — decided in RequestHook
//	owner-bound  tasks/get, tasks/list, tasks/result, tasks/cancel: bound to
//	             the task's creator by package transport
//	refused      everything else, including sampling/createMessage,
//	             elicitation/create, roots/list and server notifications
//
// (notifications/cancelled is open only inside a session: the transport edge
// refuses it without one, as mcp-go would match it against any sessionless
// caller's request of the same id. resources/subscribe and
// resources/unsubscribe were removed in 2026-07-28: a request of that era,
// read as mcp-go reads it, passes the hook to mcp-go's own refusal, -32601
// with HTTP 404, and subscribes nothing.)
//
// RequestHook refuses a refused method before mcp-go dispatches it, and the
// transport edge answers it with JSON-RPC -32601 and an audit event before
// mcp-go runs (JSON-RPC batches are refused whole). mcp-go runs no request
// hook for notifications (it hands them to its notification handlers
// first), so for them the transport edge is the only gate: it reads every
// body mcp-go would dispatch, those too large or odd for its fast reader
// included. TestMethodTableCoversMCPGo
// compares the table with mcp-go's own Method constants, so an mcp-go
// upgrade that adds a method fails until the method is classified.
//
// # Update notifications
//
// mcp-go leaves delivering notifications/resources/updated to the author,
// and its broadcast reaches every session. Subscriptions tracks who
// subscribed to what, with the subscriber's principal, and NotifyUpdated
// sends an update only to subscribed sessions whose principal the policy
// still lets read the resource, in both protocol eras:
//
//	subs, err := authz.NewSubscriptions(pl, authz.SubscriptionsConfig{})
//	srv := server.NewMCPServer("notes", "1.0.0",
//		append(append([]server.ServerOption{server.WithResourceCapabilities(true, false)},
//			pl.ServerOptions()...), subs.ServerOptions()...)...)
//	...
//	subs.NotifyUpdated("notes://acme/todo") // when the note changes
//
// When a URI names a different resource in each tenant (the tenant comes
// from the caller, as in examples/prodmode), announce a change with
// NotifyTenantUpdated(tenant, uri): only subscribers who subscribed with
// that tenant hear of it. Delivery is mcp-go's and at most once: on a
// 2025-11-25 session a notification racing the end of one of the session's
// own POSTs can be dropped by mcp-go.
//
// # What the policy cannot see
//
// A completion/complete of a resource template is decided by the
// template's own text ("notes://{+key}" by the notes:// rule), and a
// template is listed when any URI it can expand to is readable: the policy
// cannot know which values a completion provider will offer for it. A
// provider, prompt or tool that returns data addressed by a resource URI
// must apply that URI's rule itself — Policy.Check(ctx, p,
// MethodResourcesRead, uri) — as examples/prodmode's notes_digest prompt
// and its completion do for notes under notes://private/.
//
// # Wiring into mcp-go
//
// ServerOptions installs, in one go, the authoritative tool, prompt and
// resource middlewares (a denied call never reaches its handler, and the
// client gets a JSON-RPC error naming the missing scopes), the tools/list
// and prompts/list filters, and the request hook that keeps a call denied
// for lack of scope from reading "tool not found" once filters are on:
//
//	pl, err := authz.New(authz.Config{
//		ReadScope:  "notes:read",
//		WriteScope: "notes:write",
//		ToolRules:  map[string]authz.Rule{"purge": {AllOf: []string{"notes:admin"}}},
//	})
//	if err != nil { ... }
//	srv := server.NewMCPServer("notes", "1.0.0",
//		append([]server.ServerOption{server.WithToolCapabilities(true)}, pl.ServerOptions()...)...)
//	handler := authMiddleware(server.NewStreamableHTTPServer(srv)) // auth.Middleware puts the Principal in the context
//
// The scopes for the protected resource metadata come from
// pl.ScopesSupported().
//
// # The HTTP edge
//
// The transport layer may answer a tools/call it can already see is denied
// with HTTP 403 before mcp-go runs (step-up): it peeks the method and name,
// calls Check(ctx, principal, method, name) and, when d.Reason is
// ReasonInsufficientScope, answers d.Err() with auth.WriteError, which
// renders 403 insufficient_scope with the missing scopes. Other denials are
// best left to mcp-go, where a tool hidden from a tenant reads as absent. Outside mcp-go the context holds no mcp-go server, so for the
// annotation defaults Check finds tool annotations through Config.Tools:
// build the server first, then the policy with Tools: authz.ServerTools(srv),
// then pl.Install(srv) — or, for a fixed tool set, pass
// authz.StaticTools(tools...), which allocates nothing per lookup. That
// check is an early answer; the tool middleware stays authoritative.
//
// # Per-tool wrapper
//
// Authors who prefer to state scopes where they register a tool can wrap
// the handler instead: srv.AddTool(tool, authz.Require("notes:write")(h)).
//
// # Dependencies
//
// Besides the standard library, through auth and mcp-go: github.com/mark3labs/mcp-go (with its own google/jsonschema-go, google/uuid,
// santhosh-tekuri/jsonschema, spf13/cast and yosida95/uritemplate),
// golang-jwt/jwt/v5, MicahParks/jwkset, golang.org/x/sync, golang.org/x/text
// and golang.org/x/time.
package authz
