package transport

import (
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/mark3labs/mcp-go/server"

	"github.com/mcpguard/mcpguard/authz"
	"github.com/mcpguard/mcpguard/internal/loopback"
)

// direct is the innermost handler of the stack Guard.Handler builds. A
// POST whose body the edge has read, and that reaches here with the edge's
// own unread body, goes to mcp-go's transport-agnostic entry point
// (StreamableHTTPServer.Handle) with that body: mcp-go then neither copies
// the body a second time nor makes its own request view. Everything else
// goes to ServeHTTP as before.
//
// ServeHTTP does three things Handle does not: CORS, which the edge
// already answers (EdgeConfig.AllowedOrigins); the protected resource
// metadata route, which Guard.Handler mounts itself; and DNS rebinding
// protection of loopback listeners, which direct applies itself, with the
// same rule and answer, to every request.
//
// Both ways, a stream ends when the caller's token expires (untilExpiry),
// a sessionless 2025-11-25 request is refused (refuseSessionless), and the
// response goes through statusFilter, which keeps mcp-go's task status
// announcements to the tasks' owners and resource updates to callers the
// policy lets read the resource.
type direct struct {
	s      *server.StreamableHTTPServer
	tasks  *taskBinding
	policy *authz.Policy
}

func (d direct) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s, cancel := untilExpiry(r); cancel != nil {
		defer cancel()
		r = s
	}
	if rebound(r) {
		http.Error(w, "Forbidden: invalid Host header "+strconv.Quote(r.Host), http.StatusForbidden)
		return
	}
	if refuseSessionless(w, r) {
		return
	}
	ec, ok := r.Context().Value(bodyKey{}).(*edgeBody)
	if !ok || r.Method != http.MethodPost || r.Body != ec || ec.Len() != len(ec.buf) {
		d.s.ServeHTTP(&statusFilterWriter{ResponseWriter: w, f: statusFilter{tasks: d.tasks, policy: d.policy, ctx: r.Context()}}, r)
		return
	}
	a := &directCall{
		w: responseAdapter{w: w, f: statusFilter{tasks: d.tasks, policy: d.policy, ctx: r.Context()}},
		r: server.HTTPRequest{Method: r.Method, URL: r.URL, Header: r.Header, Body: ec.buf, Context: r.Context()},
	}
	a.w.flusher, _ = w.(http.Flusher)
	d.s.Handle(&a.w, &a.r)
}

// directCall is what direct hands mcp-go, in one allocation.
type directCall struct {
	w responseAdapter
	r server.HTTPRequest
}

// responseAdapter is an http.ResponseWriter as mcp-go's HTTPResponseWriter:
// it streams when the writer can flush, and sets write deadlines as
// mcp-go's own adapter does.
type responseAdapter struct {
	w       http.ResponseWriter
	flusher http.Flusher
	f       statusFilter
}

func (a *responseAdapter) Header() http.Header         { return a.w.Header() }
func (a *responseAdapter) WriteHeader(status int)      { a.f.writeHeader(a.w, status) }
func (a *responseAdapter) Write(p []byte) (int, error) { return a.f.writeBody(a.w, p) }
func (a *responseAdapter) CanStream() bool             { return a.flusher != nil }

func (a *responseAdapter) Flush() {
	if a.flusher != nil {
		a.flusher.Flush()
	}
}

func (a *responseAdapter) SetWriteDeadline(t time.Time) error {
	return http.NewResponseController(a.w).SetWriteDeadline(t)
}

// rebound reports a request that came in on a loopback listener with a
// Host that is not loopback: a page whose DNS name was rebound to
// 127.0.0.1 driving a local browser (mcp-go's rule, which ServeHTTP
// applies and Handle does not).
func rebound(r *http.Request) bool {
	la, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok || la == nil {
		return false
	}
	var local bool
	if t, ok := la.(*net.TCPAddr); ok {
		local = t.IP.IsLoopback()
	} else {
		local = loopback.Authority(la.String())
	}
	return local && !loopback.Authority(r.Host)
}
