// Package ratelimit keeps one noisy tenant, user or agent from degrading
// everyone else: request-level rate limits at the HTTP edge and per-tool
// budgets (rate, concurrency, timeout) as mcp-go tool middleware, on one
// replica or shared by many through Redis (package redisrate).
//
// # Limiters
//
// A Limiter answers "may key spend one more event under this Limit?".
// Two implementations are provided, Memory here and the Redis one in
// transport/ratelimit/redisrate:
//
//   - Memory: in-process token buckets (golang.org/x/time/rate), keyed, with
//     a hard cap on keys and LRU eviction. Its AllowAt takes the time as an
//     argument. Memory stays bounded whatever the number of distinct keys:
//     keys longer than MaxKeyBytes are stored as a digest, and with the
//     default cap (DefaultMaxKeys = 65,536) one million distinct keys leave
//     at most 24 MiB of live heap (bound: 384 bytes per held key; measured
//     about 222 bytes per key, 13.9 MiB in all, by TestMemoryMillionKeys).
//   - redisrate.Limiter: GCRA in Redis (github.com/go-redis/redis_rate/v10),
//     so N replicas share one budget per key. When Redis fails, its
//     FailurePolicy decides: FailClosed (the default) refuses with
//     ErrUnavailable, FailOpen lets the event through and reports the
//     error in Decision.FailedOpen.
//
// # Request limits
//
// Middleware keys each request by Parts of its identity — Tenant
// (tenancy.FromContext), Subject (issuer and subject of auth.FromContext),
// Client (the OAuth client ID), Address — Tenant|Subject by default, with
// per-tenant overrides of the Limit. Requests with none of the selected
// identity parts, such as unauthenticated traffic, are keyed by the client
// address: the connection's peer, or the X-Forwarded-For client when, and
// only when, the peer is one of TrustedProxies (the header is read right to
// left, skipping trusted hops, with bounded parsing). IPv6 clients are keyed
// by their /64. A spent budget gets 429 with Retry-After in whole seconds,
// rounded up; a fail-closed limiter failure gets 503 with Retry-After.
//
// # Tool budgets
//
// ToolBudgets.ToolMiddleware is a server.ToolHandlerMiddleware. Per tool, and
// per tenant and/or subject, it enforces a rate, a maximum of concurrent
// calls (per replica) and a timeout that cancels the handler's context. A
// refused call returns a *ToolError; mcp-go sends it to the client as a
// JSON-RPC error -32603 whose message is the fixed, client-safe
// ToolError.Error() text, e.g. `tool "search": rate limit exceeded, retry
// after 60s` (an mcp-go client's CallTool error matches mcp.ErrInternalError
// and carries that text).
//
// # Audit
//
// This package records nothing itself. Every refusal (EventLimited,
// EventUnavailable, EventConcurrency), timeout and fail-open is passed to the
// configured Reporter (RequestLimitConfig.Reporter,
// ToolBudgetsConfig.Reporter) with the request's context, each Event naming its
// limit by Namespace. A RequestLimit and a ToolBudgets also tell the
// Reporters added with Reporting (a copy sharing the original's budgets,
// concurrency counts and Observer): that is how package transport, when it
// has an audit recorder, turns each limit's own decision into a
// rate_limited audit event (namespace, tool, principal and tenant where
// known) rather than guessing one from a 429 or an error. A tool-budget
// refusal or timeout returns a ToolError, which audit's tool middleware
// records as rate_limited with the budgets' namespace
// (ToolError.LimitNamespace) and the decision's reason
// (ToolError.LimitReason: rate_limited, limiter_unavailable,
// concurrency_limited, budget_timeout); a call a failing limiter let
// through is seen only by the Reporters (the transport records
// it as an allowed rate_limited event, reason limiter_fail_open).
// For metrics, an Observer (SetObserver on a RequestLimit or ToolBudgets;
// package telemetry implements it; transport installs its own on the
// limits and budgets it is given) is told of every decision, allowed ones
// too, with the events left in the bucket when the Limiter knows them
// (Decision.Remaining: Memory and redisrate do).
//
// # Typical wiring
//
// After authentication and tenancy, with budgets shared through Redis:
//
//	rdb := redis.NewClient(&redis.Options{Addr: "redis:6379",
//		DialTimeout: 200 * time.Millisecond, ReadTimeout: 100 * time.Millisecond,
//		WriteTimeout: 100 * time.Millisecond, MaxRetries: 1})
//	lim, err := redisrate.New(redisrate.Config{Client: rdb})
//	...
//	requests, err := ratelimit.NewRequestLimit(ratelimit.RequestLimitConfig{
//		Limiter: lim,
//		Limit:   ratelimit.PerSecond(20),
//		Tenants: map[string]ratelimit.Limit{"premium": ratelimit.PerSecond(200)},
//		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
//		Reporter: ratelimit.ReporterFunc(auditRateLimit),
//	})
//	...
//	budgets, err := ratelimit.NewToolBudgets(ratelimit.ToolBudgetsConfig{
//		Limiter: lim,
//		Default: ratelimit.Budget{Timeout: 30 * time.Second, MaxConcurrent: 8},
//		Tools:   map[string]ratelimit.Budget{"search": {Rate: ratelimit.PerMinute(60)}},
//		Reporter: ratelimit.ReporterFunc(auditRateLimit),
//	})
//	...
//	mcpSrv := server.NewMCPServer("notes", "1.0.0",
//		server.WithToolHandlerMiddleware(budgets.ToolMiddleware))
//	handler := authn(tenants(requests.Middleware(server.NewStreamableHTTPServer(mcpSrv))))
//
// With package transport, hand them to its Config instead
// (transport.Config{RateLimit: requests, ToolBudgets: budgets}): it
// installs the budgets' tool middleware, reports both to its audit
// recorder and telemetry, and needs no Reporter of yours.
//
// All types are safe for concurrent use once constructed.
//
// # Dependencies
//
// Besides the standard library: golang.org/x/time (the in-memory buckets)
// and, through auth and tenancy, github.com/mark3labs/mcp-go (with its own google/jsonschema-go, google/uuid,
// santhosh-tekuri/jsonschema, spf13/cast and yosida95/uritemplate),
// golang-jwt/jwt/v5, MicahParks/jwkset, golang.org/x/sync, golang.org/x/text
// and golang.org/x/time. The Redis limiter is
// its own package, transport/ratelimit/redisrate, so only its importers get
// go-redis.
package ratelimit
