package audit

import (
	"context"
	"net/http"
	"sync"

	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/internal/ctxval"
	"github.com/mcpguard/mcpguard/tenancy"
)

// The keys live in internal/ctxval, so that transport's edge context can
// answer them from the node it allocates anyway.
type (
	requestIDKey = ctxval.RequestIDKey
	rpcIDKey     = ctxval.RPCIDKey
)

// NewRequestIDContext returns a copy of ctx carrying the request ID. The
// transport sets it once per HTTP request; tools, audit events and logs
// read it with RequestIDFromContext. It only derives a context: to give the
// ID to the edge event of an enclosing Recorder.Middleware, call
// AnnotateRequestID too (or place Capture inside).
func NewRequestIDContext(ctx context.Context, id string) context.Context {
	return ctxval.WithString(ctx, requestIDKey{}, id)
}

// RequestIDFromContext returns the request ID stored by
// NewRequestIDContext. It reports false when there is none or it is empty.
func RequestIDFromContext(ctx context.Context) (string, bool) {
	id, ok := ctxval.String(ctx, requestIDKey{})
	return id, ok && id != ""
}

// NewRPCIDContext returns a copy of ctx carrying the JSON-RPC id of the
// request being served, rendered as text (a string id as is, a number in
// decimal). mcp-go does not pass the id to tool handlers, so the transport,
// which reads it from the request body, sets it here for ToolMiddleware.
// It only derives a context: to give the id to the edge event of an
// enclosing Recorder.Middleware, call AnnotateRPCID too.
func NewRPCIDContext(ctx context.Context, id string) context.Context {
	return ctxval.WithString(ctx, rpcIDKey{}, id)
}

// RPCIDFromContext returns the JSON-RPC id stored by NewRPCIDContext. It
// reports false when there is none or it is empty.
func RPCIDFromContext(ctx context.Context) (string, bool) {
	id, ok := ctxval.String(ctx, rpcIDKey{})
	return id, ok && id != ""
}

// edgeState is what inner handlers tell Recorder.Middleware about the
// request it is serving. Recorder.Middleware installs one per request;
// Annotate, AnnotateRequest, AnnotateRequestID, AnnotateRPCID and Capture
// fill it in; the New…Context functions above never touch it.
type edgeState struct {
	mu        sync.Mutex
	kind      Kind
	reason    string
	requestID string
	rpcID     string
	principal *auth.Principal
	tenant    string
	rpcMethod string // JSON-RPC method of an annotated refusal
	target    string // its tool or prompt name or resource URI
	limit     string // the namespace of the rate limit that refused
}

type edgeKey struct{}

func edgeFrom(ctx context.Context) *edgeState {
	st, _ := ctx.Value(edgeKey{}).(*edgeState)
	return st
}

// AnnotateRequestID tells Recorder.Middleware, which wraps the current
// request, the request ID an inner handler assigned, so that the edge event
// carries it even when the request is refused before Capture runs. It is
// the explicit counterpart of NewRequestIDContext, which only derives a
// context; the transport calls both. It does nothing when ctx is not inside
// Recorder.Middleware and is safe for concurrent use.
func AnnotateRequestID(ctx context.Context, id string) {
	if st := edgeFrom(ctx); st != nil {
		st.mu.Lock()
		st.requestID = id
		st.mu.Unlock()
	}
}

// AnnotateRPCID is AnnotateRequestID for the JSON-RPC id of the request
// being served (see NewRPCIDContext). It does nothing when ctx is not
// inside Recorder.Middleware and is safe for concurrent use.
func AnnotateRPCID(ctx context.Context, id string) {
	if st := edgeFrom(ctx); st != nil {
		st.mu.Lock()
		st.rpcID = id
		st.mu.Unlock()
	}
}

// Annotate tells Recorder.Middleware, which wraps the current request, why
// an inner handler answered as it did: transport calls it with, say,
// KindOriginRejected and "origin_not_allowed" before writing its 403, so
// the edge event carries that kind and reason instead of one guessed from
// the status. reason should be a fixed machine-readable code; it is
// bounded and escaped when recorded. Annotate does nothing when ctx is not
// inside Recorder.Middleware. It is safe for concurrent use.
func Annotate(ctx context.Context, k Kind, reason string) {
	st := edgeFrom(ctx)
	if st == nil {
		return
	}
	st.mu.Lock()
	st.kind, st.reason = k, reason
	st.mu.Unlock()
}

// AnnotateRequest is Annotate for a refusal of one JSON-RPC request: besides
// the kind and reason, the edge event records what was asked for — the tool
// name of a "tools/call", the prompt name of a "prompts/get", the resource
// URI (without its query or fragment, its userinfo [REDACTED]) of a
// "resources/read" — so an
// HTTP-level step-up refusal names its tool. Other methods are not recorded
// beyond the reason. It does nothing when ctx is not inside
// Recorder.Middleware and is safe for concurrent use.
func AnnotateRequest(ctx context.Context, k Kind, reason, method, name string) {
	st := edgeFrom(ctx)
	if st == nil {
		return
	}
	st.mu.Lock()
	st.kind, st.reason = k, reason
	st.rpcMethod, st.target = method, name
	st.mu.Unlock()
}

// Rate-limit reasons of KindRateLimited events, as the transport records
// them.
const (
	// ReasonRateLimited: the limit's budget for the request's key is spent
	// (HTTP 429).
	ReasonRateLimited = "rate_limited"
	// ReasonLimiterUnavailable: the limiter could not decide and fails
	// closed (HTTP 503).
	ReasonLimiterUnavailable = "limiter_unavailable"
	// ReasonLimiterFailOpen: the limiter could not decide and let the
	// request (or tool call) through uncounted.
	ReasonLimiterFailOpen = "limiter_fail_open"
	// ReasonConcurrencyLimited: a tool budget's MaxConcurrent calls of the
	// tool were already in flight for the caller.
	ReasonConcurrencyLimited = "concurrency_limited"
	// ReasonBudgetTimeout: a tool budget's Timeout cut the call off; the
	// tool ran (its Duration is recorded) but its answer was not sent.
	ReasonBudgetTimeout = "budget_timeout"
)

// AnnotateRateLimited tells Recorder.Middleware, which wraps the current
// request, that the rate limit with key namespace limit refused it for
// reason (ReasonRateLimited, ReasonLimiterUnavailable): the edge event is
// then KindRateLimited with Event.Limit set, whatever the status, and
// carries the principal and tenant in ctx when they are known (a limit
// running before authentication knows neither). The transport calls it
// from the decision of the limit itself (ratelimit.Reporter), so the
// event is never guessed from a 429. It does nothing when ctx is not
// inside Recorder.Middleware and is safe for concurrent use.
func AnnotateRateLimited(ctx context.Context, limit, reason string) {
	st := edgeFrom(ctx)
	if st == nil {
		return
	}
	p, _ := auth.FromContext(ctx)
	tenant, _ := tenancy.FromContext(ctx)
	st.mu.Lock()
	st.kind, st.reason, st.limit = KindRateLimited, reason, limit
	if p != nil {
		st.principal = p
	}
	if tenant != "" {
		st.tenant = tenant
	}
	st.mu.Unlock()
}

// Capture is HTTP middleware that copies the principal (auth.FromContext),
// tenant (tenancy.FromContext), request ID and JSON-RPC id from the request
// context into the edge event of the enclosing Recorder.Middleware, which
// sits outside auth and tenancy and so cannot see them itself. Place it
// after auth's middleware (and again after tenancy's, if tenancy may refuse
// requests); it is cheap and idempotent, and does nothing outside
// Recorder.Middleware. It does not modify the request.
func Capture(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		if st := edgeFrom(ctx); st != nil {
			p, _ := auth.FromContext(ctx)
			tenant, _ := tenancy.FromContext(ctx)
			rid, _ := RequestIDFromContext(ctx)
			rpc, _ := RPCIDFromContext(ctx)
			st.mu.Lock()
			if p != nil {
				st.principal = p
			}
			if tenant != "" {
				st.tenant = tenant
			}
			if rid != "" {
				st.requestID = rid
			}
			if rpc != "" {
				st.rpcID = rpc
			}
			st.mu.Unlock()
		}
		next.ServeHTTP(w, r)
	})
}
