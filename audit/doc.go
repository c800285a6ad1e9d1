// Package audit records who did what, for which tenant, allowed or
// denied: every edge refusal, tool call and downstream token exchange of an
// MCP server, as structured events that never hold a credential and are
// never silently lost.
//
// An Event is a plain struct of strings and numbers. No field can hold a
// token: events are built from the verified Principal's identifiers, the
// tenant, request and session ids, tool names and argument names, an error
// class (never error text) and argument values only for names an operator
// allow-listed per tool. Every free-text field is bounded and escaped by
// each encoder, so a hostile tool or argument name cannot forge a record.
//
// A Recorder writes events to a Sink — a JSONSink (JSON Lines on an
// io.Writer), a SlogSink (any log/slog handler) or a Fanout of several —
// synchronously, or through a bounded queue whose full-queue policy is
// Block, DropAndCount (drops are counted and reported as a
// KindQueueOverflow event when the queue drains) or FailClosed (tool calls
// are refused while their outcome could not be recorded). Close flushes
// every queued event.
//
// Typical wiring, with the transport's request ID outermost:
//
//	sink, _ := audit.NewJSONSink(os.Stdout)
//	rec, err := audit.New(audit.Config{
//		Sink:      sink,
//		Mode:      audit.Async,
//		OnFull:    audit.FailClosed,
//		ArgValues: map[string][]string{"search": {"query"}},
//	})
//	if err != nil { ... }
//	defer rec.Close()
//
//	mcpServer := server.NewMCPServer("demo", "1.0.0",
//		server.WithToolHandlerMiddleware(rec.ToolMiddleware), // first: outermost
//		server.WithToolHandlerMiddleware(authzMiddleware),
//	)
//	var h http.Handler = server.NewStreamableHTTPServer(mcpServer)
//	h = audit.Capture(h)            // after auth and tenancy: names the caller
//	h = tenancyMiddleware(h)
//	h = authMiddleware(h)
//	h = rec.Middleware(h)           // records 401/403/429 and annotated refusals
//	h = requestIDMiddleware(h)      // audit.NewRequestIDContext + audit.AnnotateRequestID
//
// Inner middleware says why it refused with Annotate.
//
// # How other packages plug in
//
// One convention for every package that must not import audit: the
// package that reports declares a small interface of basic-typed methods,
// which a *Recorder implements, and takes it as one Config field; its
// errors name their own audit class by a method audit looks for in the
// chain (errors.As). obo declares obo.Auditor (Recorder.TokenExchange,
// wired as obo.Config{Audit: rec}) and its errors have AuditClass() (class
// string, denied bool); redisstore declares Reporter
// (Recorder.ReportStore, wired as redisstore.Config{Reporter: rec}); ratelimit's tool-budget refusals and timeouts have
// LimitReason() string (and RateLimited() bool, LimitNamespace() string)
// and are recorded as KindRateLimited with that reason. For everything the
// tool middleware cannot see in an error the direction is the transport's:
// ratelimit declares Reporter, and the transport implements it — with
// AnnotateRateLimited for request limits, so a limit's refusal is recorded
// as KindRateLimited with Event.Limit, never guessed from a 429, and with
// an event of its own for a request or tool call a failing limiter let
// through (reason ReasonLimiterFailOpen). Telemetry plugs in the same
// way: audit declares Observer, as auth, ratelimit and obo declare theirs,
// and package telemetry implements them all. Config.ClassifyError is only
// for errors of your own code that cannot carry a method.
//
// # Dependencies
//
// Besides the standard library, through auth and mcp-go: github.com/mark3labs/mcp-go (with its own google/jsonschema-go, google/uuid,
// santhosh-tekuri/jsonschema, spf13/cast and yosida95/uritemplate),
// golang-jwt/jwt/v5, MicahParks/jwkset, golang.org/x/sync, golang.org/x/text
// and golang.org/x/time.
package audit
