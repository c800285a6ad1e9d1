// Package transport is the HTTP edge of an mcpguard server: it composes
// every other package around mcp-go's Streamable HTTP server, in the one
// order that is safe, and holds no policy of its own.
//
// A server author's main reads:
//
//	guard, err := transport.New(transport.Config{
//		Resource:             "https://notes.example.com/mcp",
//		AuthorizationServers: []string{issuer},
//		Validator:            validator, // auth.NewJWTValidator
//		Policy:               policy,    // authz.New
//		Tenancy:              tenants,   // tenancy.New, optional
//		Audit:                recorder,  // audit.New, optional
//	})
//	srv := server.NewMCPServer("notes", "1.0", guard.ServerOptions()...)
//	// srv.AddTool(...)
//	http.ListenAndServe(addr, guard.Handler(srv))
//
// Handler serves the MCP endpoint at the resource's path and the RFC 9728
// protected resource metadata at its well-known paths. Each request passes,
// outermost first: audit → request ID, Origin allow-list, 415 for non-JSON
// POSTs, 413 for an announced length over the limit → pre-auth rate limit →
// body (read with a buffer that grows with the bytes received) → bearer
// authentication (or the dev identity; exactly one credential, RFC 6750 §2:
// a header token beside an access_token in the query or in a form body is
// 400 invalid_request — a form POST carrying an Authorization header gets
// its 415 only after that check) → tenant → session binding → rate limit →
// HTTP step-up → mcp-go. Inside mcp-go, ServerOptions installs audit, then the policy's
// filters and authoritative tool middleware, then tool budgets.
//
// ModeDev serves without tokens on a loopback listener only, as a fixed
// DevIdentity, through the same policy, limits and audit; New refuses a
// non-loopback Addr, and every request whose connection is not loopback at
// both ends (http.LocalAddrContextKey and RemoteAddr) gets 403 and an
// access_denied audit event, whatever listener the handler is served on. ModeProd (the zero value) refuses to start without
// a Validator, an authorization server and an https resource (http only on
// loopback).
//
// Session binding is stateless: the Mcp-Session-Id a client sees carries an
// HMAC tag over mcp-go's ID and the principal's issuer, subject, kind, actor
// and tenant, so a session serves only the principal that created it
// (another — including a job principal or another service acting for the
// same user — gets 404), with nothing stored per live session. A DELETE
// terminates: the ID is kept in a TerminatedSessions store (memory by
// default, shared among replicas through Config.Sessions) for the idle TTL
// and answers 404 to everyone afterwards, which mcp-go's session managers
// do not all guarantee. Live sessions are capped per principal (with its
// actor and tenant; default 64) and in total (default 10,000): an
// initialize past a cap is answered 429 with Retry-After and audited as
// rate_limited before mcp-go allocates a session (about 14 KiB each); DELETE
// and idle expiry (DefaultSessionIdleTTL, the TTL the guard gives mcp-go)
// free the slot. The counts live behind the SessionCounts interface.
//
// Tasks are bound to their owner. mcp-go v1.2.1 isolates tasks by session
// ID only, and skips that check when either the task or the request has no
// session (server.go getTask, getTaskEntry, listTasks): a 2026-07-28
// stateless request, of any principal or tenant, reaches every task, and a
// session reaches every task created statelessly. ServerOptions compensates
// with request hooks added to the server's existing Hooks (not
// server.WithTaskHooks, whose single value a later option would replace):
// a task created by tools/call is bound to its caller's issuer, subject,
// kind, tenant and actor in a TaskOwners store (Config.Tasks); tasks/get,
// tasks/result and tasks/cancel by anyone else are rewritten to a task ID
// that cannot exist, so they get mcp-go's own unknown-task error, byte for
// byte; tasks/list drops every task not bound to the caller (and, with
// server.WithPaginationLimit, never lets its cursor name one). mcp-go also
// announces every task's status (notifications/tasks/status, with the
// failed tool's error text) to every 2025-11-25 session; Guard.Handler's
// response filter drops, from every event stream it serves, each
// announcement of a task the stream's caller does not own. A task whose
// owner is unknown (forgotten, or the store failed) is served to no one.
// A tool registered with mcp-go's AddTaskTool is hidden from tools/list
// and tools/call, since mcp-go runs it without tool middleware (no policy
// check, budget, audit or requestState sealing would reach it); register a
// task-capable tool with AddTool and mcp.WithTaskSupport, which runs as a
// task through every layer.
// StdioIdentity gives a stdio server the same identity, policy and audit
// path.
//
// Multi round-trip requests (SEP-2322) are sealed. The requestState a tool
// or prompt handler hands out in an input_required result comes back from
// the client, which the 2026-07-28 specification says a server must not
// trust for authorization without integrity protection. ServerOptions adds
// tool and prompt middleware, inside the policy's, that seals outgoing
// state with AES-256-GCM (Config.RequestState.Key, by default derived from
// SessionKey with HKDF-SHA256, so replicas sharing SessionKey share it) over
// the principal's issuer, subject, kind and actor, the tenant, an expiry
// (Config.RequestState.TTL, default 10 minutes) and a digest of the request:
// the method, the tool or prompt name and the arguments as canonical JSON
// (inputResponses, _meta and task parameters are left out, since a retry
// changes them). An incoming requestState is capped (default 16 KiB) before
// it is decoded, opened and checked before the handler runs; state from
// another principal or tenant, for another request, tampered with, expired
// or never sealed is refused with a JSON-RPC error whose text is only
// ErrRequestState's, and a denial audit event naming the reason
// (request_state_foreign_principal, _other_request, _tampered, _expired,
// _malformed, _too_large). Handlers see their own plain state and change
// nothing; mcp-go's bridge for 2025-11-25 clients retries through the same
// middleware. Resource handlers cannot hand out state in mcp-go, so a
// resources/read carrying requestState is refused unless it opens for that
// URI.
//
// Every wrapper keeps http.Flusher, http.Hijacker and Unwrap working, so
// SSE streams, GET listening streams and DELETE pass through unchanged, as
// do 2026-07-28 stateless requests.
//
// # Dependencies
//
// Importing transport brings in, besides the standard library, the modules
// of the packages it wires: github.com/mark3labs/mcp-go (with its own
// google/jsonschema-go, google/uuid, santhosh-tekuri/jsonschema, spf13/cast
// and yosida95/uritemplate), golang-jwt/jwt/v5, MicahParks/jwkset,
// golang.org/x/oauth2 (through obo), golang.org/x/sync, golang.org/x/text,
// golang.org/x/time and, through package telemetry, the OpenTelemetry API
// (go.opentelemetry.io/otel with its metric, trace and log modules,
// go.opentelemetry.io/auto/sdk, go-logr/logr, go-logr/stdr and
// cespare/xxhash/v2), never the OpenTelemetry SDK. It does not bring in
// Redis:
// the shared limiter lives in transport/ratelimit/redisrate, imported only
// by those who use it.
package transport
