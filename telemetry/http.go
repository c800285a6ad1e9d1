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

	"github.com/mcpguard/mcpguard/internal/httpx"
	"github.com/mcpguard/mcpguard/internal/jsonrpc"
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
	st.method = cut(msg.Method)
	st.protocol = cut(r.Header.Get("Mcp-Protocol-Version"))
	switch msg.Method {
	case "tools/call":
		st.tool = cut(msg.Name)
	case "prompts/get":
		st.prompt = cut(msg.Name)
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
		attrs = append(attrs, keyResourceURI.String(cut(stripQuery(msg.URI))))
	}
	if len(msg.ID) > 0 {
		attrs = append(attrs, keyRequestID.String(cut(strings.Trim(string(msg.ID), `"`))))
	}
	if st.protocol != "" {
		attrs = append(attrs, keyProtocol.String(st.protocol))
	}
	if sid := r.Header.Get("Mcp-Session-Id"); sid != "" && (st.protocol == "" || st.protocol < statelessRevision) {
		attrs = append(attrs, keySession.String(cut(sid)))
	}
	attrs = append(attrs, keyNetTransport.String("tcp"), keyNetProtocol.String("http"))
	attrs = appendClient(attrs, r.RemoteAddr)
	opts = append(opts, trace.WithAttributes(attrs...))
	ctx, st.span = t.tracer.Start(parent, spanName(r, st), opts...)
	return ctx
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
		case tool != "":
			attrs = append(attrs, keyTool.String(t.tools.fold(tool)))
		case prompt != "":
			attrs = append(attrs, keyPrompt.String(t.tools.fold(prompt)))
		}
	}
	t.opDuration.Record(r.Context(), end.Sub(st.start).Seconds(), metric.WithAttributes(attrs...))
}

func stripQuery(uri string) string {
	if i := strings.IndexAny(uri, "?#"); i >= 0 {
		return uri[:i]
	}
	return uri
}
