package audit

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"
)

// Middleware is HTTP middleware that records the edge outcome of each
// request: the final status written by whatever runs inside it (a 401 from
// auth, a 403 from tenancy or an Origin check, a 429 from a rate limit),
// with the principal and tenant when inner handlers made them known
// (see Capture), the request and JSON-RPC ids, the MCP session ID header,
// method, path (never the query), peer address and duration.
//
// It records responses with status 400 or above and requests an inner
// handler annotated (Annotate); with Config.RecordAllRequests, every
// request. The kind comes from Annotate, else from the status: 401, and
// 400 with a Bearer challenge (invalid_request), are KindAuthFailure, 403
// KindAccessDenied, 429 KindRateLimited, anything else KindRequest. The
// reason, unless annotated, is the RFC 6750 §3.1 error code of the
// WWW-Authenticate challenge, or "no_credential" for a 401 without one.
//
// Place it outermost, or just inside the middleware that sets the request
// ID. The wrapped ResponseWriter keeps http.Flusher and http.Hijacker when
// the underlying writer has them, and implements Unwrap, so SSE streaming
// and http.ResponseController work through it. The request is cloned
// (r.WithContext), never modified. A hijacked connection is recorded with
// reason "hijacked". A panic in next is recorded as status 500 and
// re-raised. Under FailClosed, Middleware does not refuse requests: an
// edge event that cannot be queued is dropped and counted.
func (r *Recorder) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		start := r.now()
		both := &edgeRecord{Context: req.Context(), sw: statusWriter{ResponseWriter: w}}
		st, sw := &both.st, &both.sw
		if rid, ok := RequestIDFromContext(req.Context()); ok {
			st.requestID = rid
		}
		if rpc, ok := RPCIDFromContext(req.Context()); ok {
			st.rpcID = rpc
		}
		ww := wrap(sw)
		done := false
		defer func() {
			if !done && sw.status == 0 && !sw.hijacked {
				sw.status = http.StatusInternalServerError
			}
			r.recordEdge(req, st, sw, start)
		}()
		next.ServeHTTP(ww, req.WithContext(both))
		done = true
	})
}

func (r *Recorder) recordEdge(req *http.Request, st *edgeState, sw *statusWriter, start time.Time) {
	status := sw.status
	if status == 0 && !sw.hijacked {
		status = http.StatusOK // net/http writes 200 when the handler wrote nothing
	}
	st.mu.Lock()
	kind, reason := st.kind, st.reason
	e := Event{
		RequestID: st.requestID,
		RPCID:     st.rpcID,
		Tenant:    st.tenant,
		Limit:     st.limit,
	}
	p := st.principal
	switch st.rpcMethod {
	case "tools/call":
		e.Tool = st.target
	case "prompts/get":
		e.Prompt = st.target
	case "resources/read":
		e.Resource = recordedURI(st.target)
	}
	st.mu.Unlock()
	if kind == KindUnknown && status < 400 && !r.recordAll {
		return
	}
	if p != nil {
		e.setPrincipal(p)
	}
	challenge := ""
	if status == http.StatusBadRequest || status == http.StatusUnauthorized || status == http.StatusForbidden {
		challenge = challengeError(sw.Header().Values("WWW-Authenticate"))
	}
	if kind == KindUnknown {
		switch {
		case status == http.StatusBadRequest && challenge != "":
			kind = KindAuthFailure // a malformed bearer request (RFC 6750 §3.1)
		case status == http.StatusUnauthorized:
			kind = KindAuthFailure
		case status == http.StatusForbidden:
			kind = KindAccessDenied
		case status == http.StatusTooManyRequests:
			kind = KindRateLimited
		default:
			kind = KindRequest
		}
	}
	if reason == "" {
		switch {
		case sw.hijacked:
			reason = "hijacked"
		case challenge != "":
			reason = challenge
		case status == http.StatusUnauthorized:
			reason = "no_credential"
		}
	}
	e.Kind = kind
	e.Reason = reason
	if kind.refusal() {
		e.Decision = DecisionDeny
	}
	e.SessionID = req.Header.Get("Mcp-Session-Id")
	e.Method = req.Method
	e.Path = req.URL.Path
	e.RemoteAddr = req.RemoteAddr
	e.Status = status
	now := r.now()
	e.Time = now
	e.Duration = now.Sub(start)
	_ = r.Record(req.Context(), e)
}

// maxChallengeScan bounds how much of a WWW-Authenticate value
// challengeError reads.
const maxChallengeScan = 4096

// challengeError returns the RFC 6750 §3 error code of the first Bearer
// challenge in values that has one, or "". Only codes made of lower-case
// letters and underscores (as RFC 6750 §3.1 defines them) are returned.
func challengeError(values []string) string {
	for _, v := range values {
		if len(v) > maxChallengeScan {
			v = v[:maxChallengeScan]
		}
		for i := 0; i < len(v); {
			j := strings.Index(v[i:], "error=")
			if j < 0 {
				break
			}
			j += i
			// The parameter name must stand alone: start of value or after
			// a space or comma (so "error_description=" and "xerror=" miss).
			if j > 0 && v[j-1] != ' ' && v[j-1] != ',' && v[j-1] != '\t' {
				i = j + len("error=")
				continue
			}
			rest := v[j+len("error="):]
			rest = strings.TrimPrefix(rest, `"`)
			n := 0
			for n < len(rest) && n < 64 && (rest[n] >= 'a' && rest[n] <= 'z' || rest[n] == '_') {
				n++
			}
			if n > 0 && (n == len(rest) || rest[n] == '"' || rest[n] == ',' || rest[n] == ' ') {
				return rest[:n]
			}
			i = j + len("error=")
		}
	}
	return ""
}

// statusWriter records the status an inner handler writes.
// edgeRecord is the context Middleware hands on: the parent with the edge
// state under edgeKey, and the status writer, in one allocation.
type edgeRecord struct {
	context.Context
	st edgeState
	sw statusWriter
}

// String names the context without the edge state.
func (c *edgeRecord) String() string {
	if s, ok := c.Context.(fmt.Stringer); ok {
		return s.String() + ".WithValue(audit.edgeKey)"
	}
	return "context.WithValue(audit.edgeKey)"
}

func (c *edgeRecord) Value(key any) any {
	if key == (edgeKey{}) {
		return &c.st
	}
	return c.Context.Value(key)
}

type statusWriter struct {
	http.ResponseWriter
	status   int
	hijacked bool
}

func (w *statusWriter) WriteHeader(code int) {
	// Informational responses (1xx, other than 101) precede the final one.
	if w.status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap returns the underlying writer, for http.ResponseController.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	w.ResponseWriter.(http.Flusher).Flush()
}

func (w *statusWriter) hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, rw, err := w.ResponseWriter.(http.Hijacker).Hijack()
	if err == nil {
		w.hijacked = true
	}
	return c, rw, err
}

type flushWriter struct{ *statusWriter }

func (w flushWriter) Flush() { w.flush() }

type hijackWriter struct{ *statusWriter }

func (w hijackWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) { return w.hijack() }

type flushHijackWriter struct{ *statusWriter }

func (w flushHijackWriter) Flush() { w.flush() }

func (w flushHijackWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) { return w.hijack() }

// wrap returns sw with exactly the optional interfaces its underlying
// writer has, so callers' type assertions answer truthfully.
func wrap(sw *statusWriter) http.ResponseWriter {
	_, f := sw.ResponseWriter.(http.Flusher)
	_, h := sw.ResponseWriter.(http.Hijacker)
	switch {
	case f && h:
		return flushHijackWriter{sw}
	case f:
		return flushWriter{sw}
	case h:
		return hijackWriter{sw}
	}
	return sw
}
