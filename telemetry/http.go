package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpguard/mcpguard/audit"
	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/authz"
	"github.com/mcpguard/mcpguard/internal/httpx"
	"github.com/mcpguard/mcpguard/internal/jsonrpc"
	"github.com/mcpguard/mcpguard/internal/redact"
)

// statelessRevision is the first protocol revision without sessions; the
// conventions forbid mcp.session.id from it on.
const statelessRevision = "2026-07-28"

type stateKey struct{}

// reqState is one HTTP request's telemetry, shared by Handler (which owns
// it and ends the span), Begin (which starts the span once the body is
// known) and Observe (which adds the decisions the audit stream reports).
type reqState struct {
	start time.Time

	mu       sync.Mutex
	span     trace.Span
	method   string
	tool     string
	prompt   string
	protocol string
	done     bool
	// Set by Dispatched, for a request that passed every HTTP layer of
	// the guard with a principal: registered when the server has its tool
	// or prompt, dispatched when Dispatched had no way to tell. Only then
	// may the name take a MaxTools metric slot.
	dispatched, registered bool
	// From the audit stream.
	decision, reason, event, tenant, kind, subject, errType string
}

// Middleware is the outermost telemetry layer: it owns the request's state,
// ends the MCP span when the response is written and records
// mcp.server.operation.duration. Put it outside audit's Middleware (so
// the audit stream's edge events reach the span) and call Begin once the
// request body has been read. transport does both.
func (t *Telemetry) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := &reqState{start: time.Now()}
		hw := &httpx.HeaderHook{ResponseWriter: w}
		next.ServeHTTP(hw, r.WithContext(context.WithValue(r.Context(), stateKey{}, st)))
		t.finish(r, st, hw.Status)
	})
}

// Begin starts the MCP SERVER span for r, whose JSON-RPC body is body
// (nil for requests without one), and returns r's context with the span in
// it. Call it inside Handler, once; without Handler it returns r's context
// unchanged.
func (t *Telemetry) Begin(r *http.Request, body []byte) context.Context {
	ctx := r.Context()
	st, _ := ctx.Value(stateKey{}).(*reqState)
	if st == nil {
		return ctx
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.span != nil || st.done {
		return ctx
	}
	var msg jsonrpc.Message
	if r.Method == http.MethodPost && len(body) > 0 {
		msg, _ = jsonrpc.PeekMemo(ctx, body) // the edge's memo: step-up and authz reuse this reading; a refused body has no method
	}
	// Both come from the client, before authentication: only values MCP
	// defines are kept, so that no client can mint metric series (or span
	// names) of its own.
	st.method = methodName(msg.Method)
	rawProtocol := r.Header.Get("Mcp-Protocol-Version")
	st.protocol = protocolVersion(rawProtocol)
	switch msg.Method {
	case "tools/call":
		st.tool = spanTarget(msg.Name)
	case "prompts/get":
		st.prompt = spanTarget(msg.Name)
	}
	if !t.tracesOn {
		return ctx // metrics only: finish needs just the fields above
	}
	httpCtx := t.propagator.Extract(ctx, propagation.HeaderCarrier(r.Header))
	parent := httpCtx
	opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindServer), trace.WithTimestamp(st.start)}
	if mc, ok := t.metaContext(body); ok {
		parent = trace.ContextWithRemoteSpanContext(ctx, mc)
		if hs := trace.SpanContextFromContext(httpCtx); hs.IsValid() {
			opts = append(opts, trace.WithLinks(trace.Link{SpanContext: hs}))
		}
	}
	attrs := make([]attribute.KeyValue, 0, 10)
	if st.method != "" {
		attrs = append(attrs, keyMethod.String(st.method))
	}
	switch {
	case st.tool != "":
		attrs = append(attrs, keyTool.String(st.tool), keyOperation.String("execute_tool"))
	case st.prompt != "":
		attrs = append(attrs, keyPrompt.String(st.prompt))
	case msg.URI != "":
		attrs = append(attrs, keyResourceURI.String(cut(recordedURI(msg.URI))))
	}
	if len(msg.ID) > 0 {
		attrs = append(attrs, keyRequestID.String(cut(strings.Trim(string(msg.ID), `"`))))
	}
	if st.protocol != "" {
		attrs = append(attrs, keyProtocol.String(st.protocol))
	}
	if sid := r.Header.Get("Mcp-Session-Id"); sid != "" && (rawProtocol == "" || rawProtocol < statelessRevision) {
		attrs = append(attrs, keySession.String(cut(sid)))
	}
	attrs = append(attrs, keyNetTransport.String("tcp"), keyNetProtocol.String("http"))
	attrs = appendClient(attrs, r.RemoteAddr)
	opts = append(opts, trace.WithAttributes(attrs...))
	ctx, st.span = t.tracer.Start(parent, spanName(r, st), opts...)
	return ctx
}

// Dispatched returns the middleware that marks a request as dispatched:
// it has a principal and passed every HTTP layer of the guard
// (authentication, tenancy, session binding, rate limits, step-up). Put it
// innermost, just before mcp-go (transport does). Only a dispatched
// request's tool or prompt name may take one of the MaxTools slots of
// gen_ai.tool.name / gen_ai.prompt.name; every other request's name counts
// as Other. registered, when not nil, says whether the server has the tool
// (method tools/call) or prompt (prompts/get) of that name: then only
// registered names take a slot. With a nil registered, a dispatched
// request's name takes one unless the audit stream reports it denied.
// Without Middleware the returned middleware only calls next.
func (t *Telemetry) Dispatched(registered func(method, name string) bool) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if st, _ := r.Context().Value(stateKey{}).(*reqState); st != nil && t.toolAttr {
				if _, ok := auth.FromContext(r.Context()); ok {
					st.mu.Lock()
					switch {
					case registered == nil:
						st.dispatched = true
					case st.tool != "":
						st.registered = registered("tools/call", st.tool)
					case st.prompt != "":
						st.registered = registered("prompts/get", st.prompt)
					}
					st.mu.Unlock()
				}
			}
			next.ServeHTTP(w, r)
		})
	}
}

// methodName is the mcp.method.name of a request whose JSON-RPC method is
// m: m when it is a method a client may send that mcpguard's method table
// (authz.ClassifyMethod, which a test compares with mcp-go's methods)
// knows, Other for any other name, "" for none. The name is chosen by the
// client before authentication, so a free value would let anyone create
// metric series at will.
func methodName(m string) string {
	switch {
	case m == "":
		return ""
	case authz.ClassifyMethod(m) == authz.MethodRefused:
		return Other
	}
	return m
}

// protocolVersion is the mcp.protocol.version of a request whose
// Mcp-Protocol-Version header is v: v when mcp-go knows that revision,
// Other for any other value, "" for none.
func protocolVersion(v string) string {
	if v == "" || mcp.IsValidProtocolVersion(v) {
		return v
	}
	return Other
}

// metaContext reads params._meta.traceparent / tracestate, when the body
// has them.
func (t *Telemetry) metaContext(body []byte) (trace.SpanContext, bool) {
	if !bytes.Contains(body, []byte(`"traceparent"`)) {
		return trace.SpanContext{}, false
	}
	var m struct {
		Params struct {
			Meta struct {
				Traceparent string `json:"traceparent"`
				Tracestate  string `json:"tracestate"`
			} `json:"_meta"`
		} `json:"params"`
	}
	if json.Unmarshal(body, &m) != nil || m.Params.Meta.Traceparent == "" || len(m.Params.Meta.Traceparent) > 128 || len(m.Params.Meta.Tracestate) > 512 {
		return trace.SpanContext{}, false
	}
	carrier := propagation.MapCarrier{"traceparent": m.Params.Meta.Traceparent}
	if m.Params.Meta.Tracestate != "" {
		carrier["tracestate"] = m.Params.Meta.Tracestate
	}
	sc := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(), carrier))
	return sc, sc.IsValid()
}

func spanName(r *http.Request, st *reqState) string {
	switch {
	case st.method == "":
		return r.Method
	case st.tool != "":
		return st.method + " " + st.tool
	case st.prompt != "":
		return st.method + " " + st.prompt
	}
	return st.method
}

func appendClient(attrs []attribute.KeyValue, remote string) []attribute.KeyValue {
	host, port, err := net.SplitHostPort(remote)
	if err != nil {
		return attrs
	}
	attrs = append(attrs, keyClientAddress.String(cut(host)))
	if p, err := strconv.Atoi(port); err == nil {
		attrs = append(attrs, keyClientPort.Int(p))
	}
	return attrs
}

// finish ends the span (starting one first when the request was refused
// before Begin ran) and records the operation duration.
func (t *Telemetry) finish(r *http.Request, st *reqState, status int) {
	if status == 0 {
		status = http.StatusOK
	}
	end := time.Now()
	st.mu.Lock()
	st.done = true
	span := st.span
	if span == nil && t.tracesOn {
		httpCtx := t.propagator.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		attrs := appendClient([]attribute.KeyValue{keyNetTransport.String("tcp"), keyNetProtocol.String("http")}, r.RemoteAddr)
		_, span = t.tracer.Start(httpCtx, r.Method, trace.WithSpanKind(trace.SpanKindServer),
			trace.WithTimestamp(st.start), trace.WithAttributes(attrs...))
	}
	errType := st.errType
	if errType == "" && status >= 400 {
		errType = strconv.Itoa(status)
	}
	method, tool, prompt, protocol := st.method, st.tool, st.prompt, st.protocol
	// The MaxTools slots go first come, first served, so a name from a
	// request refused at the edge (an unauthenticated one above all) or
	// naming no tool at all would let a caller fill them with junk for
	// good. A name takes a slot only when the request was authenticated
	// and dispatched, and names a tool or prompt the server has: both
	// checks, because authentication alone does not stop a caller with a
	// valid token from calling made-up tools (mcp-go answers those "not
	// found" without a decision the audit stream would report). When
	// Dispatched cannot ask the server (transport's Wrap without a
	// server), a dispatched request the audit stream does not report
	// denied is the best available evidence.
	nameSlot := st.registered || (st.dispatched && st.decision != audit.DecisionDeny.String())
	if span != nil && span.IsRecording() {
		attrs := make([]attribute.KeyValue, 0, 8)
		attrs = append(attrs, keyHTTPStatus.Int(status))
		for _, kv := range [...]struct {
			k attribute.Key
			v string
		}{{keyDecision, st.decision}, {keyReason, st.reason}, {keyEvent, st.event},
			{keyKind, st.kind}, {keyTenant, st.tenant}, {keySubjectHash, st.subject}, {keyErrorType, errType}} {
			if kv.v != "" {
				attrs = append(attrs, kv.k.String(kv.v))
			}
		}
		span.SetAttributes(attrs...)
		if errType != "" {
			span.SetStatus(codes.Error, errType)
		}
	}
	st.mu.Unlock()
	if span != nil {
		span.End(trace.WithTimestamp(end))
	}
	if method == "" || !t.metricsOn {
		return // not an MCP request: no operation to measure
	}
	attrs := make([]attribute.KeyValue, 0, 5)
	attrs = append(attrs, keyMethod.String(method))
	if errType != "" {
		attrs = append(attrs, keyErrorType.String(errType))
	}
	if protocol != "" {
		attrs = append(attrs, keyProtocol.String(protocol))
	}
	if t.toolAttr {
		switch {
		case tool != "" && nameSlot:
			attrs = append(attrs, keyTool.String(t.tools.fold(tool)))
		case tool != "":
			attrs = append(attrs, keyTool.String(Other))
		case prompt != "" && nameSlot:
			attrs = append(attrs, keyPrompt.String(t.tools.fold(prompt)))
		case prompt != "":
			attrs = append(attrs, keyPrompt.String(Other))
		}
	}
	t.opDuration.Record(r.Context(), end.Sub(st.start).Seconds(), metric.WithAttributes(attrs...))
}

// spanTarget is a client-chosen tool or prompt name as spans carry it: cut
// to MaxValueLen, or Other when it looks like a token (a client that sent
// its credential where the name goes; redact.LooksLikeToken).
func spanTarget(name string) string {
	if redact.LooksLikeToken(name) {
		return Other
	}
	return cut(name)
}

// recordedURI is a URI as attributes carry it: without its query or
// fragment, which may carry an access_token (RFC 6750 §2.3), and with its
// userinfo ("user:password@", or a token as the user name) replaced by
// [REDACTED].
func recordedURI(uri string) string { return redact.URI(uri) }
