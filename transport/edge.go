package transport

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/mcpguard/mcpguard/audit"
	"github.com/mcpguard/mcpguard/internal/ctxval"
	"github.com/mcpguard/mcpguard/internal/jsonrpc"
)

// DefaultMaxBodyBytes is the default request body limit.
const DefaultMaxBodyBytes = 4 << 20

// DefaultBodyTimeout is the default time allowed to read a request body.
const DefaultBodyTimeout = 30 * time.Second

// HeaderRequestID is the request ID header accepted and echoed.
const HeaderRequestID = "X-Request-Id"

// EdgeConfig configures Edge. The zero value is usable: no browser origin is
// allowed, bodies are capped at DefaultMaxBodyBytes.
type EdgeConfig struct {
	// AllowedOrigins lists the exact origins ("https://app.example.com")
	// whose browser requests are served. A request carrying any other
	// Origin header gets 403. Requests without Origin (non-browser
	// clients) are served. "*" is not accepted: list origins.
	AllowedOrigins []string
	// MaxBodyBytes caps POST bodies (413 above it). Zero means
	// DefaultMaxBodyBytes; negative is an error.
	MaxBodyBytes int64
	// BodyTimeout bounds the time to read a POST body, so a client that
	// sends its body slowly cannot hold a goroutine and a connection open
	// (408 when it passes). The deadline is lifted once the body is read,
	// so response streams are not affected. Zero means DefaultBodyTimeout;
	// negative is an error.
	BodyTimeout time.Duration
	// OnReject, when set, is called for every request the edge refuses,
	// with the status and a fixed reason, for audit. It must not write to w.
	OnReject func(r *http.Request, status int, reason string)
}

func (c *EdgeConfig) check() error {
	if c.MaxBodyBytes < 0 {
		return fmt.Errorf("%w: EdgeConfig.MaxBodyBytes must not be negative", ErrConfig)
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.BodyTimeout < 0 {
		return fmt.Errorf("%w: EdgeConfig.BodyTimeout must not be negative", ErrConfig)
	}
	if c.BodyTimeout == 0 {
		c.BodyTimeout = DefaultBodyTimeout
	}
	for _, o := range c.AllowedOrigins {
		if o == "*" || o == "null" {
			return fmt.Errorf("%w: EdgeConfig.AllowedOrigins: %q is not allowed; list exact origins", ErrConfig, o)
		}
		u, err := url.Parse(o)
		if err != nil || u.Scheme == "" || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
			return fmt.Errorf("%w: EdgeConfig.AllowedOrigins: %q is not an origin (scheme://host[:port])", ErrConfig, o)
		}
	}
	return nil
}

type bodyKey struct{}

type edgeKey struct{} // answered with the *edgeContext itself

// edgeBody is the POST body Edge hands on: the bytes it read, both as the
// request's Body and, whole, in the context for later middleware.
type edgeBody struct {
	bytes.Reader
	buf []byte
}

// edgeContext is the context Edge hands on: the parent with the request
// ID (audit's key) and, for a POST, the body under bodyKey, its Peek memo
// and the JSON-RPC id once the step-up layer has read it (audit's key), in
// one allocation. Each field is set before the handler that may read it
// runs and never changed afterwards.
type edgeContext struct {
	context.Context
	requestID string
	idHeader  [1]string // the X-Request-Id response header's value slice
	rpcID     string
	hasBody   bool
	body      edgeBody
	peek      jsonrpc.Memo  // the body's Peek result, filled by the first layer that peeks
	req       *http.Request // the request copy Edge made with this context, if any
}

// String names the context without its contents.
func (c *edgeContext) String() string {
	return contextName(c.Context) + ".WithValue(transport.edge)"
}

func contextName(c context.Context) string {
	if s, ok := c.(fmt.Stringer); ok {
		return s.String()
	}
	return "context"
}

func (c *edgeContext) Value(key any) any {
	switch key.(type) {
	case edgeKey:
		return c
	case bodyKey:
		if c.hasBody {
			return &c.body
		}
	case jsonrpc.MemoKey:
		if c.hasBody {
			return &c.peek
		}
	case ctxval.RequestIDKey:
		if c.requestID != "" {
			return &c.requestID
		}
	case ctxval.RPCIDKey:
		if c.rpcID != "" {
			return &c.rpcID
		}
	}
	return c.Context.Value(key)
}

// setRPCID records the JSON-RPC id of the request in ctx for
// audit.RPCIDFromContext: in the edge context when ctx is Edge's own (no
// allocation), else in a new context, which the caller must hand on.
func setRPCID(ctx context.Context, id string) (context.Context, bool) {
	if ec, ok := ctx.Value(edgeKey{}).(*edgeContext); ok && ec.rpcID == "" {
		ec.rpcID = id
		return ctx, false
	}
	return audit.NewRPCIDContext(ctx, id), true
}

// Close does nothing: the bytes are in memory.
func (*edgeBody) Close() error { return nil }

// bodyFromContext returns the POST body read by Edge, so later middleware can
// peek at it without reading the request again.
func bodyFromContext(ctx context.Context) ([]byte, bool) {
	b, ok := ctx.Value(bodyKey{}).(*edgeBody)
	if !ok {
		return nil, false
	}
	return b.buf, true
}

// Edge returns the outermost middleware of the stack:
//
//   - Origin: a browser request whose Origin is not in AllowedOrigins is
//     refused with 403 (MCP transport security: servers must validate
//     Origin). An allowed origin gets CORS headers (exposing
//     WWW-Authenticate and Mcp-Session-Id), and its preflight is answered
//     with 204 before authentication. DNS rebinding of loopback listeners is refused by mcp-go's
//     own Host check, which stays on.
//   - Content-Type: a POST that is not application/json gets 415, because
//     browsers send text/plain and form posts cross-site without a preflight.
//   - Body: POST bodies are read up to MaxBodyBytes (413 above it) and
//     handed on intact.
//   - Request ID: a sane incoming X-Request-Id (1-128 of [A-Za-z0-9._:-])
//     is kept, otherwise a random one is made; it is echoed in the response
//     and stored with audit.NewRequestIDContext (and given to an enclosing
//     audit middleware with audit.AnnotateRequestID).
func Edge(cfg EdgeConfig) (func(http.Handler) http.Handler, error) {
	e, err := newEdge(cfg)
	if err != nil {
		return nil, err
	}
	return e.handler, nil
}

type edge struct {
	cfg     EdgeConfig
	allowed map[string]struct{}
	// deferForm lets a form-encoded POST carrying an Authorization header
	// through to authentication, which refuses a second access token in
	// the form body (RFC 6750 §2, 400 invalid_request); requireJSON, just
	// inside authentication, then answers the 415 the edge deferred. Set
	// by the Guard in prod mode only: a standalone Edge refuses every
	// non-JSON POST itself.
	deferForm bool
}

func newEdge(cfg EdgeConfig) (*edge, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	allowed := make(map[string]struct{}, len(cfg.AllowedOrigins))
	for _, o := range cfg.AllowedOrigins {
		allowed[strings.TrimSuffix(strings.ToLower(o), "/")] = struct{}{}
	}
	return &edge{cfg: cfg, allowed: allowed}, nil
}

// handler keeps a sane incoming X-Request-Id or makes one, echoes it and
// stores it with audit.NewRequestIDContext and audit.AnnotateRequestID, then applies the Origin,
// Content-Type and body checks. The request ID and the body go into one copy
// of the request.
func (e *edge) handler(next http.Handler) http.Handler { return e.handlerPre(nil, next) }

// handlerPre is handler with pre (a pre-auth limit) run after the header
// checks and before the body is read: pre wraps bodyHandler(next). A nil
// pre is handler(next).
func (e *edge) handlerPre(pre func(http.Handler) http.Handler, next http.Handler) http.Handler {
	var preH http.Handler
	if pre != nil {
		preH = pre(e.bodyHandler(next))
		next = preH // non-POST requests pass the limit too
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(HeaderRequestID)
		if !saneRequestID(id) {
			id = newRequestID()
		}
		ec := &edgeContext{Context: r.Context(), requestID: id}
		// The header's value slice lives in ec, allocated anyway. The key
		// is already canonical.
		ec.idHeader[0] = id
		w.Header()[HeaderRequestID] = ec.idHeader[:]
		audit.AnnotateRequestID(r.Context(), id)
		e.serve(w, r, ec, preH, next)
	})
}

// reject answers status with the fixed reason and annotates the audit
// event with code.
func (e *edge) reject(w http.ResponseWriter, r *http.Request, ctx context.Context, status int, reason, code string) {
	kind := audit.KindRequest
	if status == http.StatusForbidden {
		kind = audit.KindOriginRejected
	}
	audit.Annotate(ctx, kind, code)
	if e.cfg.OnReject != nil {
		e.cfg.OnReject(r.WithContext(ctx), status, reason)
	}
	if status == http.StatusRequestTimeout || status == http.StatusRequestEntityTooLarge {
		// The body was not read to its end: close the connection
		// rather than let net/http wait to drain it.
		w.Header().Set("Connection", "close")
	}
	http.Error(w, reason, status)
}

// serve applies the header checks to r, whose context is to become ctx,
// then hands a POST to pre (which must end in bodyHandler) or, without
// pre, reads its body itself before next.
func (e *edge) serve(w http.ResponseWriter, r *http.Request, ctx *edgeContext, pre, next http.Handler) {
	reject := func(status int, reason, code string) { e.reject(w, r, ctx, status, reason, code) }
	if origins := r.Header.Values("Origin"); len(origins) > 0 {
		if len(origins) > 1 {
			reject(http.StatusForbidden, "forbidden: more than one Origin header", "origin_repeated")
			return
		}
		if _, ok := e.allowed[strings.ToLower(origins[0])]; !ok {
			reject(http.StatusForbidden, "forbidden: origin not allowed", "origin_not_allowed")
			return
		}
		// An allowed browser origin: CORS (Fetch standard). A preflight
		// carries no credentials, so it is answered here, before
		// authentication.
		h := w.Header()
		h.Add("Vary", "Origin")
		h.Set("Access-Control-Allow-Origin", origins[0])
		h.Set("Access-Control-Expose-Headers", corsExpose)
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			h.Set("Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS")
			h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
			h.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
	}
	if r.Method != http.MethodPost {
		next.ServeHTTP(w, r.WithContext(ctx))
		return
	}
	if ct := r.Header.Get("Content-Type"); !isJSON(ct) && !(e.deferForm && isForm(ct) && len(r.Header.Values("Authorization")) > 0) {
		reject(http.StatusUnsupportedMediaType, msgNotJSON, "unsupported_media_type")
		return
	}
	if r.ContentLength > e.cfg.MaxBodyBytes {
		reject(http.StatusRequestEntityTooLarge, "request body too large", "body_too_large")
		return
	}
	if pre == nil {
		e.serveBody(w, r, ctx, next)
		return
	}
	// The pre-auth limit sees the request before any body byte is read, so
	// a refused caller costs no body buffer. When it hands on this very
	// copy, serveBody fills it in rather than copying it again.
	ctx.req = r.WithContext(ctx)
	pre.ServeHTTP(w, ctx.req)
}

const msgNotJSON = "unsupported media type: POST bodies must be application/json"

// requireJSON answers 415 to a POST that is not application/json: the
// refusal the edge defers for form bodies carrying an Authorization header
// (deferForm) until authentication has looked for a second token in them.
func (e *edge) requireJSON(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && !isJSON(r.Header.Get("Content-Type")) {
			e.reject(w, r, r.Context(), http.StatusUnsupportedMediaType, msgNotJSON, "unsupported_media_type")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// isForm reports whether a Content-Type names
// application/x-www-form-urlencoded, the form method of RFC 6750 §2.2.
func isForm(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == "application/x-www-form-urlencoded"
}

// bodyHandler reads a POST body (see serveBody) for the handler a pre-auth
// limit wraps; other methods pass through.
func (e *edge) bodyHandler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			next.ServeHTTP(w, r)
			return
		}
		ec, ok := r.Context().(*edgeContext)
		if !ok {
			// The pre-auth limit derived a context of its own: keep it.
			ec = &edgeContext{Context: r.Context()}
		}
		e.serveBody(w, r, ec, next)
	})
}

// serveBody reads r's body under BodyTimeout and MaxBodyBytes and hands it
// on, whole, in ctx.
func (e *edge) serveBody(w http.ResponseWriter, r *http.Request, ctx *edgeContext, next http.Handler) {
	deadline := setReadDeadline(w, time.Now().Add(e.cfg.BodyTimeout)) == nil
	body, err := readBody(r.Body, r.ContentLength, e.cfg.MaxBodyBytes)
	if deadline {
		_ = setReadDeadline(w, time.Time{})
	}
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			e.reject(w, r, ctx, http.StatusRequestTimeout, "request body not received in time", "body_timeout")
			return
		}
		e.reject(w, r, ctx, http.StatusBadRequest, "could not read the request body", "body_unreadable")
		return
	}
	if int64(len(body)) > e.cfg.MaxBodyBytes {
		e.reject(w, r, ctx, http.StatusRequestEntityTooLarge, "request body too large", "body_too_large")
		return
	}
	ctx.body.buf = body
	ctx.body.Reset(body)
	ctx.hasBody = true
	r2 := r
	if r != ctx.req {
		r2 = r.WithContext(ctx)
	}
	r2.Body = &ctx.body
	r2.ContentLength = int64(len(body))
	next.ServeHTTP(w, r2)
}

const (
	corsExpose       = "WWW-Authenticate, Mcp-Session-Id, Mcp-Protocol-Version, Retry-After, X-Request-Id"
	corsAllowHeaders = "Authorization, Content-Type, Accept, Mcp-Session-Id, Mcp-Protocol-Version, Mcp-Method, Mcp-Name, Last-Event-ID, X-Request-Id"
)

// setReadDeadline does what http.ResponseController.SetReadDeadline does
// (find the writer with SetReadDeadline through Unwrap; http.ErrNotSupported
// when there is none) without allocating a controller per request.
func setReadDeadline(w http.ResponseWriter, t time.Time) error {
	for {
		switch x := w.(type) {
		case interface{ SetReadDeadline(time.Time) error }:
			return x.SetReadDeadline(t)
		case interface{ Unwrap() http.ResponseWriter }:
			w = x.Unwrap()
		default:
			return http.ErrNotSupported
		}
	}
}

// isJSON reports whether a Content-Type names application/json, with any
// parameters; the exact common value skips the full media type parse.
func isJSON(ct string) bool {
	if ct == "application/json" {
		return true
	}
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == "application/json"
}

// bodyChunk is the largest buffer readBody allocates before any byte has
// arrived: an announced Content-Length above it is not trusted up front.
const bodyChunk = 16 << 10

// readBody reads at most limit+1 bytes of body, or exactly announced bytes
// when the length is known (announced >= 0; a body longer than announced is
// cut by net/http). The buffer grows with the bytes actually received —
// doubling from at most bodyChunk, capped at what may still arrive — so a
// client announcing 4 MiB and sending a few bytes pins a few KiB, not
// 4 MiB. A body announced at bodyChunk or less is read into one buffer of
// its exact size.
func readBody(body io.Reader, announced, limit int64) ([]byte, error) {
	want := limit + 1
	if announced >= 0 && announced <= limit {
		want = announced
	}
	buf := make([]byte, 0, min(want, bodyChunk))
	for int64(len(buf)) < want {
		if len(buf) == cap(buf) {
			next := min(int64(cap(buf))*2, want)
			grown := make([]byte, len(buf), next)
			copy(grown, buf)
			buf = grown
		}
		n, err := body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			if announced >= 0 && int64(len(buf)) < announced {
				return nil, io.ErrUnexpectedEOF
			}
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
	return buf, nil
}

func saneRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9') || c == '.' || c == '_' || c == ':' || c == '-') {
			return false
		}
	}
	return true
}

func newRequestID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// ErrConfig reports a configuration mistake found by a constructor.
var ErrConfig = errors.New("transport: invalid configuration")
