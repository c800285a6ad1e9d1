// Package telemetry reports mcpguard's decisions as OpenTelemetry traces and
// metrics, following the OpenTelemetry semantic conventions for MCP
// (gen-ai/mcp, status Development).
//
// Of OpenTelemetry it uses only the API modules (go.opentelemetry.io/otel,
// …/metric, …/trace); the application chooses the SDK and exporters (see
// Dependencies). The packages it observes keep no OpenTelemetry import:
// they declare small hooks (audit.Observer, auth.Observer,
// ratelimit.Observer, obo.Observer, redisstore.Reporter) that a *Telemetry
// implements. A server that does not configure telemetry pays nothing:
// transport installs none of this.
//
// # Traces
//
// One SERVER span per MCP request, named "{mcp.method.name} {target}"
// (target: the tool or prompt name, when there is one), with
// mcp.method.name, gen_ai.tool.name, gen_ai.prompt.name, mcp.resource.uri
// (without query or fragment, its userinfo "[REDACTED]"),
// jsonrpc.request.id, mcp.protocol.version, error.type, client.address
// and — for requests before protocol revision 2026-07-28 only, as the
// conventions require — mcp.session.id. Its parent
// is the trace context in params._meta (traceparent, tracestate) when the
// request carries one, linked to the HTTP request's own context; otherwise
// the HTTP context (the W3C traceparent header, or a span already in the
// request's context) is the parent. mcpguard's own attributes are under
// mcpguard.*: decision, reason, tenant (opt-in), principal kind and, only
// when Config.SubjectHashKey is set, mcpguard.subject_hash (a keyed hash of
// issuer and subject; never the subject itself).
//
// # Metrics
//
//	mcp.server.operation.duration   histogram, s   mcp.method.name, error.type, mcp.protocol.version, gen_ai.tool.name / gen_ai.prompt.name (opt-in)
//	mcpguard.decisions              counter        mcpguard.event, mcpguard.decision, mcpguard.reason, mcpguard.tenant (opt-in)
//	mcpguard.rate_limit.refusals    counter        mcpguard.reason (the limit's namespace), mcpguard.tenant (opt-in)
//	mcpguard.rate_limit.decisions   counter        mcpguard.limiter (namespace), mcpguard.outcome (allowed, limited, unavailable, concurrency, fail_open), mcpguard.tenant, gen_ai.tool.name (opt-in)
//	mcpguard.rate_limit.headroom    histogram, 1   as decisions, allowed only: the fraction of the burst left in the caller's bucket
//	mcpguard.token_exchange.duration histogram, s  mcpguard.grant, mcpguard.outcome
//	mcpguard.audit.queue.depth      gauge          (events waiting in an async recorder)
//	mcpguard.audit.events.dropped   counter        (events the recorder lost)
//	mcpguard.sessions.live          gauge          (stateful session slots held; ObserveSessions)
//	mcpguard.cache.lookups          counter        mcpguard.cache (token, introspection, exchange), mcpguard.result (hit, miss)
//	mcpguard.jwks.fetches           counter        mcpguard.key_set, mcpguard.outcome (ok, error), error.type
//	mcpguard.jwks.keys              gauge          mcpguard.key_set (usable keys after the last successful fetch)
//	mcpguard.jwks.age               gauge, s       mcpguard.key_set (time since the last successful fetch)
//
// # Child spans
//
// A cold token validation (mcpguard.auth.validate, INTERNAL), an
// introspection (mcpguard.auth.introspect, CLIENT), a JWK Set fetch
// (mcpguard.jwks.fetch, CLIENT, with mcpguard.keys) and a token exchange
// (mcpguard.token_exchange, CLIENT, with mcpguard.grant and
// mcpguard.audience) are children of the span in their context — the
// request's MCP span, or the validation a fetch is part of — with
// error.type and an error status on failure: the RFC 6750 code or
// "unavailable" for a validation, "timeout" / "canceled" / "fetch_failed"
// for a fetch, the error's audit class for an exchange; never error text. A
// fetch or introspection shared by several requests is a child of the
// request that started it; the scheduled key refresh is a root span. The
// exchange span starts when the exchange does (obo.Observer's
// StartExchange) and its context is the one the exchange's HTTP requests
// are made with, so the spans of an instrumented HTTP client
// (obo.Config.HTTPClient with otelhttp, say) are its children. One exchange
// shared by several callers is a child of the request that started it; a
// cache hit has no span.
//
// The hooks: *Telemetry implements auth.Observer (transport installs it on
// Config.Validator with SetObserver) and obo.Observer
// (obo.Config{Observer: guard.Telemetry()}). A nil *Telemetry ignores what
// it is told. It implements ratelimit.Observer too: transport installs it on its
// request limits and on Config.ToolBudgets. And it implements
// redisstore.Reporter (redisstore.Config{Reporter: tel}) for a deployment
// that wants mcpguard.store.events without an audit log; with one, pass the
// *audit.Recorder there instead, whose observer counts the same events.
//
// Decisions reach telemetry through the audit stream (audit.Observer), so
// they are counted exactly as they are audited: transport installs the
// observer on Config.Audit.
//
// # Never a credential, never unbounded cardinality
//
// No attribute carries a token, a secret, a raw subject, a URI's query or
// a URI's userinfo; a tool or prompt name that looks like a token is Other
// in the span's name and attributes.
// Values taken from the request are cut to MaxValueLen bytes. The span is
// started and the operation measured before authentication, so the two
// values every request names — mcp.method.name (from the JSON-RPC body)
// and mcp.protocol.version (the Mcp-Protocol-Version header) — are kept,
// on metrics, spans and span names alike, only when MCP defines them: a
// method in mcpguard's method table (authz.ClassifyMethod, not refused)
// and a revision mcp-go knows (mcp.IsValidProtocolVersion); any other value
// is "_other". Tenants and tool names become metric attributes only when
// enabled, and at most MaxTenants / MaxTools distinct values each; the
// rest fold into "_other". A tool or prompt name takes one of the MaxTools
// slots only for a request that was authenticated and dispatched (see
// Dispatched) for a tool or prompt the server has; a refused request's
// name, or a name the server does not know, is "_other", so no caller can
// fill the slots with junk. Reasons are folded the same way (they come
// from mcpguard's code, so the cap is only a backstop).
//
// # Dependencies
//
// Besides the standard library: the OpenTelemetry API — go.opentelemetry.io/otel
// with its metric, trace and log modules and what they pull in
// (go.opentelemetry.io/auto/sdk, go-logr/logr, go-logr/stdr,
// cespare/xxhash/v2), never the SDK — and, through the packages it
// observes (audit, auth, obo, tenancy, transport/ratelimit) and of authz
// (its method table),
// github.com/mark3labs/mcp-go (with its own google/jsonschema-go,
// google/uuid, santhosh-tekuri/jsonschema, spf13/cast and
// yosida95/uritemplate), golang-jwt/jwt/v5, MicahParks/jwkset,
// golang.org/x/oauth2, golang.org/x/sync, golang.org/x/text and
// golang.org/x/time. No Redis.
package telemetry
