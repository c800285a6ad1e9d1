package audit

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/tenancy"
)

var alice = &auth.Principal{
	Kind: auth.KindUser, Subject: "alice", ClientID: "claude-desktop",
	Actor: &auth.Principal{Subject: "svc-gateway"},
}

// identify stands in for auth + tenancy middleware.
func identify(p *auth.Principal, tenant string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ctx := auth.NewContext(r.Context(), p)
			if tenant != "" {
				ctx = tenancy.NewContext(ctx, tenant)
			}
			next.ServeHTTP(w, r.WithContext(ctx))
		})
	}
}

func respond(status int, header ...string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Add(header[i], header[i+1])
		}
		w.WriteHeader(status)
	})
}

func TestMiddlewareRecordsEdgeOutcomes(t *testing.T) {
	tests := []struct {
		name       string
		inner      http.Handler
		all        bool
		wantRecord bool
		kind       Kind
		reason     string
		decision   Decision
		status     int
	}{
		{
			name:  "401 without credential",
			inner: respond(401, "WWW-Authenticate", `Bearer resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource"`),
			kind:  KindAuthFailure, reason: "no_credential", decision: DecisionDeny, status: 401, wantRecord: true,
		},
		{
			name:  "401 invalid token",
			inner: respond(401, "WWW-Authenticate", `Bearer resource_metadata="https://x/", error="invalid_token", error_description="the access token is invalid"`),
			kind:  KindAuthFailure, reason: "invalid_token", decision: DecisionDeny, status: 401, wantRecord: true,
		},
		{
			name:  "403 insufficient scope",
			inner: respond(403, "WWW-Authenticate", `Bearer error="insufficient_scope", scope="files:write"`),
			kind:  KindAccessDenied, reason: "insufficient_scope", decision: DecisionDeny, status: 403, wantRecord: true,
		},
		{
			name:  "400 malformed bearer request",
			inner: respond(400, "WWW-Authenticate", `Bearer resource_metadata="https://x/", error="invalid_request"`),
			kind:  KindAuthFailure, reason: "invalid_request", decision: DecisionDeny, status: 400, wantRecord: true,
		},
		{
			name:  "400 without challenge",
			inner: respond(400),
			kind:  KindRequest, status: 400, wantRecord: true,
		},
		{
			name:  "429",
			inner: respond(429, "Retry-After", "3"),
			kind:  KindRateLimited, decision: DecisionDeny, status: 429, wantRecord: true,
		},
		{
			name:  "500",
			inner: respond(500),
			kind:  KindRequest, status: 500, wantRecord: true,
		},
		{
			name:  "annotated origin rejection",
			inner: annotated(KindOriginRejected, "origin_not_allowed", 403),
			kind:  KindOriginRejected, reason: "origin_not_allowed", decision: DecisionDeny, status: 403, wantRecord: true,
		},
		{
			name:  "annotated session rejection on 404",
			inner: annotated(KindSessionRejected, "session_not_owned", 404),
			kind:  KindSessionRejected, reason: "session_not_owned", decision: DecisionDeny, status: 404, wantRecord: true,
		},
		{
			name:       "200 not recorded by default",
			inner:      respond(200),
			wantRecord: false,
		},
		{
			name:  "200 recorded with RecordAllRequests",
			inner: respond(200),
			all:   true, kind: KindRequest, status: 200, wantRecord: true,
		},
		{
			name: "implicit 200 recorded with RecordAllRequests",
			inner: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.WriteString(w, "hi")
			}),
			all: true, kind: KindRequest, status: 200, wantRecord: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink := &memSink{}
			r := mustNew(t, Config{Sink: sink, RecordAllRequests: tt.all})
			h := r.Middleware(tt.inner)
			req := httptest.NewRequest(http.MethodPost, "/mcp?access_token=secret-in-query", strings.NewReader("{}"))
			req.Header.Set("Mcp-Session-Id", "sess-1")
			req.Header.Set("Authorization", "Bearer should-never-appear")
			req = req.WithContext(NewRequestIDContext(req.Context(), "req-1"))
			rw := httptest.NewRecorder()
			h.ServeHTTP(rw, req)

			got := sink.all()
			if !tt.wantRecord {
				assert.Empty(t, got)
				return
			}
			require.Len(t, got, 1)
			e := got[0]
			assert.Equal(t, tt.kind, e.Kind)
			assert.Equal(t, tt.reason, e.Reason)
			assert.Equal(t, tt.decision, e.Decision)
			assert.Equal(t, tt.status, e.Status)
			assert.Equal(t, "req-1", e.RequestID)
			assert.Equal(t, "sess-1", e.SessionID)
			assert.Equal(t, http.MethodPost, e.Method)
			assert.Equal(t, "/mcp", e.Path, "never the query")
			assert.Equal(t, "192.0.2.1:1234", e.RemoteAddr)
			assert.False(t, e.Time.IsZero())
			b, err := e.MarshalJSON()
			require.NoError(t, err)
			assert.NotContains(t, string(b), "secret-in-query")
			assert.NotContains(t, string(b), "should-never-appear")
		})
	}
}

func annotated(k Kind, reason string, status int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		Annotate(r.Context(), k, reason)
		w.WriteHeader(status)
	})
}

func TestMiddlewareCapturesPrincipalAndTenant(t *testing.T) {
	sink := &memSink{}
	r := mustNew(t, Config{Sink: sink})
	// Stack: audit outermost, then request ID, auth+tenancy, Capture, then
	// a handler refusing with 403 (as authz step-up would).
	var h http.Handler = respond(403, "WWW-Authenticate", `Bearer error="insufficient_scope"`)
	h = Capture(h)
	h = identify(alice, "acme")(h)
	h = withRequestID("rid-9", "7")(h)
	h = r.Middleware(h)
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/mcp", nil))

	got := sink.all()
	require.Len(t, got, 1)
	e := got[0]
	assert.Equal(t, KindAccessDenied, e.Kind)
	assert.Equal(t, "alice", e.Subject)
	assert.Equal(t, "svc-gateway", e.Actor)
	assert.Equal(t, "claude-desktop", e.ClientID)
	assert.Equal(t, "user", e.AuthKind)
	assert.Equal(t, "acme", e.Tenant)
	assert.Equal(t, "rid-9", e.RequestID, "set inside the middleware, still seen")
	assert.Equal(t, "7", e.RPCID)
}

func withRequestID(id, rpc string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ctx := NewRequestIDContext(r.Context(), id)
			ctx = NewRPCIDContext(ctx, rpc)
			AnnotateRequestID(ctx, id)
			AnnotateRPCID(ctx, rpc)
			next.ServeHTTP(w, r.WithContext(ctx))
		})
	}
}

func TestCaptureAndAnnotateOutsideMiddlewareAreHarmless(t *testing.T) {
	called := false
	h := Capture(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		Annotate(r.Context(), KindOriginRejected, "x")
		called = true
	}))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
	assert.True(t, called)
}

func TestMiddlewareRecordsPanicAndRepanics(t *testing.T) {
	sink := &memSink{}
	r := mustNew(t, Config{Sink: sink})
	h := r.Middleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") }))
	assert.PanicsWithValue(t, "boom", func() {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
	})
	got := sink.all()
	require.Len(t, got, 1)
	assert.Equal(t, 500, got[0].Status)
}

func TestMiddlewareKeepsOptionalInterfaces(t *testing.T) {
	type caps struct{ flusher, hijacker, unwrap bool }
	check := func(w http.ResponseWriter) caps {
		_, f := w.(http.Flusher)
		_, h := w.(http.Hijacker)
		_, u := w.(interface{ Unwrap() http.ResponseWriter })
		return caps{f, h, u}
	}
	tests := []struct {
		name string
		w    http.ResponseWriter
		want caps
	}{
		{"plain", plainWriter{httptest.NewRecorder()}, caps{false, false, true}},
		{"flusher", httptest.NewRecorder(), caps{true, false, true}},
		{"hijacker", hijackOnly{plainWriter{httptest.NewRecorder()}}, caps{false, true, true}},
		{"both", flushHijack{httptest.NewRecorder()}, caps{true, true, true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mustNew(t, Config{Sink: &memSink{}})
			var got caps
			r.Middleware(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				got = check(w)
			})).ServeHTTP(tt.w, httptest.NewRequest(http.MethodGet, "/", nil))
			assert.Equal(t, tt.want, got)
		})
	}
}

type plainWriter struct{ w http.ResponseWriter }

func (p plainWriter) Header() http.Header         { return p.w.Header() }
func (p plainWriter) Write(b []byte) (int, error) { return p.w.Write(b) }
func (p plainWriter) WriteHeader(c int)           { p.w.WriteHeader(c) }

type hijackOnly struct{ plainWriter }

func (hijackOnly) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return nil, nil, http.ErrNotSupported
}

type flushHijack struct{ *httptest.ResponseRecorder }

func (flushHijack) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return nil, nil, http.ErrNotSupported
}

// TestMiddlewareStreamsSSE runs a real server: the handler flushes an
// event and waits until the client has read it, which only happens if
// Flush reaches the connection through the wrapper. It also checks that
// http.ResponseController reaches net/http's writer through Unwrap.
func TestMiddlewareStreamsSSE(t *testing.T) {
	sink := &memSink{}
	r := mustNew(t, Config{Sink: sink, RecordAllRequests: true})
	clientRead := make(chan struct{})
	var deadlineErr, flushErr error
	srv := httptest.NewServer(r.Middleware(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		rc := http.NewResponseController(w)
		deadlineErr = rc.SetWriteDeadline(time.Now().Add(time.Minute))
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: one\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-clientRead:
		case <-req.Context().Done():
			return
		}
		_, _ = io.WriteString(w, "data: two\n\n")
		flushErr = rc.Flush()
	})))
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second) // guard against a hang only
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/mcp", nil)
	require.NoError(t, err)
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadString('\n')
	require.NoError(t, err, "first event must arrive before the handler returns")
	assert.Equal(t, "data: one\n", line)
	close(clientRead)
	rest, err := io.ReadAll(br)
	require.NoError(t, err)
	assert.Equal(t, "\ndata: two\n\n", string(rest))

	require.NoError(t, r.Close())
	assert.NoError(t, deadlineErr, "SetWriteDeadline reached net/http through Unwrap")
	assert.NoError(t, flushErr)
	got := sink.all()
	require.Len(t, got, 1)
	assert.Equal(t, 200, got[0].Status)
	assert.Equal(t, http.MethodGet, got[0].Method)
}

func TestMiddlewareHijack(t *testing.T) {
	sink := &memSink{}
	r := mustNew(t, Config{Sink: sink, RecordAllRequests: true})
	mw := r.Middleware(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		conn, bw, err := w.(http.Hijacker).Hijack()
		if !assert.NoError(t, err) {
			return
		}
		defer conn.Close()
		_, _ = bw.WriteString("HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
		_ = bw.Flush()
	}))
	// The server forgets a hijacked connection, so its Close does not wait
	// for the handler (and the event recorded after it): wait here.
	served := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		defer close(served)
		mw.ServeHTTP(w, req)
	}))
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, 204, resp.StatusCode)
	<-served
	srv.Close()
	require.NoError(t, r.Close())
	got := sink.all()
	require.Len(t, got, 1)
	assert.Equal(t, "hijacked", got[0].Reason)
	assert.Zero(t, got[0].Status)
}

func TestMiddlewareDoesNotMutateRequest(t *testing.T) {
	r := mustNew(t, Config{Sink: &memSink{}})
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	orig := req.Context()
	var inner context.Context
	r.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { inner = r.Context() })).
		ServeHTTP(httptest.NewRecorder(), req)
	assert.Equal(t, orig, req.Context())
	assert.NotEqual(t, orig, inner)
}

func TestChallengeError(t *testing.T) {
	tests := []struct {
		name   string
		values []string
		want   string
	}{
		{"none", nil, ""},
		{"no error param", []string{`Bearer resource_metadata="https://x/"`}, ""},
		{"quoted", []string{`Bearer error="invalid_token"`}, "invalid_token"},
		{"after comma", []string{`Bearer realm="x",error="insufficient_scope"`}, "insufficient_scope"},
		{"unquoted", []string{`Bearer error=invalid_request`}, "invalid_request"},
		{"description is not the code", []string{`Bearer error_description="error=fake", error="invalid_token"`}, "invalid_token"},
		{"prefixed name ignored", []string{`Bearer xerror="invalid_token"`}, ""},
		{"hostile code rejected", []string{`Bearer error="invalid_token\nkind=tool_call"`}, ""},
		{"upper case rejected", []string{`Bearer error="INVALID"`}, ""},
		{"second challenge", []string{`Basic realm="x"`, `Bearer error="invalid_token"`}, "invalid_token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, challengeError(tt.values))
		})
	}
}

func FuzzChallengeError(f *testing.F) {
	for _, s := range []string{`Bearer error="invalid_token"`, `error=`, `,error="a_b"`, `error="x`, ``} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := challengeError([]string{s})
		if len(got) > 64 {
			t.Fatalf("code too long: %q", got)
		}
		for i := 0; i < len(got); i++ {
			if c := got[i]; (c < 'a' || c > 'z') && c != '_' {
				t.Fatalf("unexpected byte %q in %q", c, got)
			}
		}
	})
}

// TestNewIDContextsArePure: deriving a context never writes into the
// enclosing middleware's state; only the explicit Annotate…ID calls do.
func TestNewIDContextsArePure(t *testing.T) {
	tests := []struct {
		name            string
		annotate        bool
		wantRID, wantRP string
	}{
		{"context only", false, "", ""},
		{"annotated", true, "rid-5", "11"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink := &memSink{}
			r := mustNew(t, Config{Sink: sink})
			h := r.Middleware(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
				ctx := NewRPCIDContext(NewRequestIDContext(req.Context(), "rid-5"), "11")
				if tt.annotate {
					AnnotateRequestID(ctx, "rid-5")
					AnnotateRPCID(ctx, "11")
				}
				w.WriteHeader(http.StatusForbidden)
			}))
			h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/mcp", strings.NewReader("{}")))
			got := sink.all()
			require.Len(t, got, 1)
			assert.Equal(t, tt.wantRID, got[0].RequestID)
			assert.Equal(t, tt.wantRP, got[0].RPCID)
		})
	}
}

// TestAnnotateRateLimited: a limit's own decision makes the edge event
// rate_limited with the limit's namespace and the principal and tenant
// the context knows, whatever the status (a 503 of a fail-closed limiter
// included); the limit appears in every encoding.
func TestAnnotateRateLimited(t *testing.T) {
	sink := &memSink{}
	r := mustNew(t, Config{Sink: sink})
	limited := func(status int, reason string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			AnnotateRateLimited(req.Context(), "http", reason)
			w.WriteHeader(status)
		})
	}
	var h http.Handler = identify(alice, "acme")(limited(http.StatusServiceUnavailable, ReasonLimiterUnavailable))
	h = r.Middleware(h)
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/mcp", nil))
	// Before authentication: no principal.
	r.Middleware(limited(http.StatusTooManyRequests, ReasonRateLimited)).
		ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/mcp", nil))

	got := sink.all()
	require.Len(t, got, 2)
	e := got[0]
	assert.Equal(t, KindRateLimited, e.Kind)
	assert.Equal(t, DecisionDeny, e.Decision)
	assert.Equal(t, ReasonLimiterUnavailable, e.Reason)
	assert.Equal(t, "http", e.Limit)
	assert.Equal(t, 503, e.Status)
	assert.Equal(t, "alice", e.Subject, "AnnotateRateLimited captures the principal itself")
	assert.Equal(t, "acme", e.Tenant)
	b, err := json.Marshal(e)
	require.NoError(t, err)
	assert.Contains(t, string(b), `"limit":"http"`)
	assert.Equal(t, "http", e.LogValue().Group()[slices.IndexFunc(e.LogValue().Group(), func(a slog.Attr) bool { return a.Key == "limit" })].Value.String())

	e = got[1]
	assert.Equal(t, KindRateLimited, e.Kind)
	assert.Equal(t, ReasonRateLimited, e.Reason)
	assert.Empty(t, e.Subject)
	AnnotateRateLimited(context.Background(), "http", ReasonRateLimited) // outside Middleware: harmless
}
