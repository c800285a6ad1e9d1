package transport

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	mcptransport "github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/audit"
	"github.com/mcpguard/mcpguard/auth"
)

func TestEdge(t *testing.T) {
	var gotBody string
	var gotID string
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		gotBody = string(b)
		gotID, _ = audit.RequestIDFromContext(r.Context())
		w.WriteHeader(http.StatusOK)
	})
	var rejects []int
	mw, err := Edge(EdgeConfig{
		AllowedOrigins: []string{"https://app.example.com"},
		MaxBodyBytes:   64,
		OnReject:       func(_ *http.Request, status int, _ string) { rejects = append(rejects, status) },
	})
	require.NoError(t, err)
	h := mw(next)

	tests := []struct {
		name        string
		method      string
		ctype       string
		origin      []string
		body        string
		reqID       string
		wantStatus  int
		wantEchoID  bool
		wantForward bool
	}{
		{name: "plain post", method: "POST", ctype: "application/json", body: `{"a":1}`, wantStatus: 200, wantForward: true},
		{name: "json with charset", method: "POST", ctype: "application/json; charset=utf-8", body: `{}`, wantStatus: 200, wantForward: true},
		{name: "allowed origin", method: "POST", ctype: "application/json", origin: []string{"https://app.example.com"}, body: `{}`, wantStatus: 200, wantForward: true},
		{name: "disallowed origin", method: "POST", ctype: "application/json", origin: []string{"https://evil.example"}, body: `{}`, wantStatus: 403},
		{name: "null origin", method: "POST", ctype: "application/json", origin: []string{"null"}, body: `{}`, wantStatus: 403},
		{name: "two origins", method: "POST", ctype: "application/json", origin: []string{"https://app.example.com", "https://evil.example"}, body: `{}`, wantStatus: 403},
		{name: "disallowed origin on GET", method: "GET", origin: []string{"https://evil.example"}, wantStatus: 403},
		{name: "text plain post", method: "POST", ctype: "text/plain", body: `{}`, wantStatus: 415},
		{name: "form post", method: "POST", ctype: "application/x-www-form-urlencoded", body: `a=b`, wantStatus: 415},
		{name: "no content type", method: "POST", body: `{}`, wantStatus: 415},
		{name: "too large", method: "POST", ctype: "application/json", body: `{"a":"` + strings.Repeat("x", 64) + `"}`, wantStatus: 413},
		{name: "get passes", method: "GET", wantStatus: 200, wantForward: true},
		{name: "sane request id kept", method: "GET", reqID: "abc-123.x:y_z", wantStatus: 200, wantForward: true, wantEchoID: true},
		{name: "insane request id replaced", method: "GET", reqID: "abc\r\ndef", wantStatus: 200, wantForward: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gotBody, gotID, rejects = "", "", nil
			r := httptest.NewRequest(tt.method, "/mcp", strings.NewReader(tt.body))
			if tt.ctype != "" {
				r.Header.Set("Content-Type", tt.ctype)
			}
			for _, o := range tt.origin {
				r.Header.Add("Origin", o)
			}
			if tt.reqID != "" {
				r.Header["X-Request-Id"] = []string{tt.reqID}
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			assert.Equal(t, tt.wantStatus, rec.Code)
			echoed := rec.Header().Get(HeaderRequestID)
			require.NotEmpty(t, echoed)
			if tt.wantEchoID {
				assert.Equal(t, tt.reqID, echoed)
			} else if tt.reqID != "" {
				assert.NotEqual(t, tt.reqID, echoed)
				assert.True(t, saneRequestID(echoed))
			}
			if tt.wantForward {
				assert.Equal(t, tt.body, gotBody, "body must reach the handler intact")
				assert.Equal(t, echoed, gotID)
				assert.Empty(t, rejects)
			} else {
				assert.Equal(t, []int{tt.wantStatus}, rejects)
				assert.Empty(t, gotID, "next must not run")
			}
		})
	}
}

func TestEdgeConfigErrors(t *testing.T) {
	for _, cfg := range []EdgeConfig{
		{MaxBodyBytes: -1},
		{AllowedOrigins: []string{"*"}},
		{AllowedOrigins: []string{"null"}},
		{AllowedOrigins: []string{"app.example.com"}},
		{AllowedOrigins: []string{"https://app.example.com/path"}},
	} {
		_, err := Edge(cfg)
		assert.ErrorIs(t, err, ErrConfig, "%+v", cfg)
	}
}

// testAuth authenticates "Bearer <subject>" for tests, without signatures.
func testAuth(t *testing.T) func(http.Handler) http.Handler {
	t.Helper()
	mw, err := auth.Middleware(auth.ValidatorFunc(func(_ context.Context, tok string) (*auth.Principal, error) {
		return &auth.Principal{Issuer: "https://idp.test", Subject: tok}, nil
	}), auth.MiddlewareConfig{ResourceMetadataURL: "http://127.0.0.1/.well-known/oauth-protected-resource/mcp"})
	require.NoError(t, err)
	return mw
}

func newEchoServer() *server.MCPServer {
	s := server.NewMCPServer("t", "1")
	s.AddTool(mcp.NewTool("echo"), func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		p, _ := auth.FromContext(ctx)
		return mcp.NewToolResultText("hi " + p.Subject), nil
	})
	return s
}

func newClient(t *testing.T, url, token string, opts ...mcptransport.StreamableHTTPCOption) *client.Client {
	t.Helper()
	opts = append(opts, mcptransport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + token}))
	c, err := client.NewStreamableHttpClient(url, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestSessionBinding(t *testing.T) {
	b, err := NewSessionBinding(nil)
	require.NoError(t, err)
	mcpSrv := server.NewStreamableHTTPServer(newEchoServer(), server.WithStateful(true))
	ts := httptest.NewServer(testAuth(t)(b.Middleware(mcpSrv)))
	defer ts.Close()
	ctx := context.Background()

	alice := newClient(t, ts.URL, "alice")
	_, err = alice.Initialize(ctx, initReq(mcp.ProtocolVersion20251125))
	require.NoError(t, err)
	sid := alice.GetSessionId()
	require.Contains(t, sid, ".", "the session ID the client sees carries the binding tag")
	res, err := alice.CallTool(ctx, mcp.CallToolRequest{Params: mcp.CallToolParams{Name: "echo"}})
	require.NoError(t, err)
	assert.Equal(t, "hi alice", res.Content[0].(mcp.TextContent).Text)

	post := func(token, session string) int {
		req, _ := http.NewRequest(http.MethodPost, ts.URL, strings.NewReader(`{"jsonrpc":"2.0","id":9,"method":"tools/list"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Mcp-Session-Id", session)
		req.Header.Set("Mcp-Protocol-Version", mcp.ProtocolVersion20251125)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	inner := sid[:strings.LastIndexByte(sid, '.')]
	assert.Equal(t, http.StatusOK, post("alice", sid), "owner keeps the session")
	assert.Equal(t, http.StatusNotFound, post("bob", sid), "another principal must not use alice's session")
	assert.Equal(t, http.StatusNotFound, post("alice", inner), "an untagged ID is unknown")
	assert.Equal(t, http.StatusNotFound, post("alice", inner+".AAAAAAAAAAAAAAAAAAAAAA"), "a forged tag is unknown")
	assert.Equal(t, http.StatusNotFound, post("alice", "garbage"))

	// Bob cannot take over alice's session with the mcp-go client either.
	bob := newClient(t, ts.URL, "bob", mcptransport.WithSession(sid))
	_, err = bob.CallTool(ctx, mcp.CallToolRequest{Params: mcp.CallToolParams{Name: "echo"}})
	require.Error(t, err)

	// DELETE by bob is refused; by alice it works.
	del := func(token string) int {
		req, _ := http.NewRequest(http.MethodDelete, ts.URL, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Mcp-Session-Id", sid)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	assert.Equal(t, http.StatusNotFound, del("bob"))
	assert.Equal(t, http.StatusOK, del("alice"))
}

func TestSessionBindingKey(t *testing.T) {
	_, err := NewSessionBinding([]byte("short"))
	assert.ErrorIs(t, err, ErrConfig)
	key := []byte(strings.Repeat("k", 32))
	a, _ := NewSessionBinding(key)
	b, _ := NewSessionBinding(key)
	p := &auth.Principal{Issuer: "i", Subject: "s"}
	id, ok := b.open("sess."+a.tag("sess", p, "acme"), p, "acme")
	assert.True(t, ok, "replicas sharing a key accept each other's sessions")
	assert.Equal(t, "sess", id)
	// Field boundaries are unambiguous.
	assert.NotEqual(t, a.tag("x", &auth.Principal{Issuer: "ab", Subject: "c"}, ""), a.tag("x", &auth.Principal{Issuer: "a", Subject: "bc"}, ""))
}

func TestSessionBindingFields(t *testing.T) {
	b, err := NewSessionBinding(nil)
	require.NoError(t, err)
	user := &auth.Principal{Issuer: "i", Subject: "alice"}
	svc := &auth.Principal{Issuer: "i", Subject: "svc-a"}
	base := b.tag("sess", &auth.Principal{Issuer: "i", Subject: "alice", Actor: svc}, "acme")
	for name, c := range map[string]struct {
		p      *auth.Principal
		tenant string
	}{
		"no actor":       {user, "acme"},
		"other actor":    {&auth.Principal{Issuer: "i", Subject: "alice", Actor: &auth.Principal{Issuer: "i", Subject: "svc-b"}}, "acme"},
		"actor of kind":  {&auth.Principal{Issuer: "i", Subject: "alice", Actor: &auth.Principal{Issuer: "i", Subject: "svc-a", Kind: auth.KindJob}}, "acme"},
		"job principal":  {&auth.Principal{Issuer: "i", Subject: "alice", Kind: auth.KindJob, Actor: svc}, "acme"},
		"other tenant":   {&auth.Principal{Issuer: "i", Subject: "alice", Actor: svc}, "globex"},
		"actor's issuer": {&auth.Principal{Issuer: "i", Subject: "alice", Actor: &auth.Principal{Issuer: "j", Subject: "svc-a"}}, "acme"},
		"anonymous":      {nil, "acme"},
	} {
		t.Run(name, func(t *testing.T) {
			_, ok := b.open("sess."+base, c.p, c.tenant)
			assert.False(t, ok)
		})
	}
}

func TestMemoryTerminatedSessions(t *testing.T) {
	ctx := context.Background()
	now := time.Unix(1000, 0)
	m := &MemoryTerminatedSessions{Max: 3}
	for _, k := range []string{"a", "b", "c", "d"} {
		require.NoError(t, m.Terminate(ctx, k, now.Add(time.Minute)))
	}
	assert.Equal(t, 3, m.Len(), "capped")
	gone, _ := m.Terminated(ctx, "a", now)
	assert.False(t, gone, "the oldest entry made room")
	dead, _ := m.Terminated(ctx, "d", now)
	assert.True(t, dead)
	dead, _ = m.Terminated(ctx, "d", now.Add(2*time.Minute))
	assert.False(t, dead, "entries are kept only until their expiry")
	assert.Zero(t, m.Len(), "expired entries are dropped")
}

func initReq(version string) mcp.InitializeRequest {
	var r mcp.InitializeRequest
	r.Params.ProtocolVersion = version
	r.Params.ClientInfo = mcp.Implementation{Name: "test", Version: "1"}
	return r
}

func TestEdgeCORS(t *testing.T) {
	mw, err := Edge(EdgeConfig{AllowedOrigins: []string{"https://app.example.com"}})
	require.NoError(t, err)
	reached := false
	h := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached = true }))

	pre := httptest.NewRequest(http.MethodOptions, "/mcp", nil)
	pre.Header.Set("Origin", "https://app.example.com")
	pre.Header.Set("Access-Control-Request-Method", "POST")
	pre.Header.Set("Access-Control-Request-Headers", "authorization, content-type")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, pre)
	assert.Equal(t, http.StatusNoContent, rec.Code)
	assert.False(t, reached, "a preflight never reaches authentication")
	assert.Equal(t, "https://app.example.com", rec.Header().Get("Access-Control-Allow-Origin"))
	assert.Contains(t, rec.Header().Get("Access-Control-Allow-Headers"), "Authorization")
	assert.Contains(t, rec.Header().Get("Access-Control-Allow-Methods"), "POST")

	post := httptest.NewRequest(http.MethodPost, "/mcp", strings.NewReader("{}"))
	post.Header.Set("Origin", "https://app.example.com")
	post.Header.Set("Content-Type", "application/json")
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, post)
	assert.True(t, reached)
	assert.Contains(t, rec.Header().Get("Access-Control-Expose-Headers"), "WWW-Authenticate")

	evil := httptest.NewRequest(http.MethodOptions, "/mcp", nil)
	evil.Header.Set("Origin", "https://evil.example")
	evil.Header.Set("Access-Control-Request-Method", "POST")
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, evil)
	assert.Equal(t, http.StatusForbidden, rec.Code)
	assert.Empty(t, rec.Header().Get("Access-Control-Allow-Origin"))
}

func TestEdgeSlowBody(t *testing.T) {
	mw, err := Edge(EdgeConfig{BodyTimeout: 200 * time.Millisecond})
	require.NoError(t, err)
	ts := httptest.NewServer(mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
	})))
	defer ts.Close()
	conn, err := net.Dial("tcp", ts.Listener.Addr().String())
	require.NoError(t, err)
	defer conn.Close()
	_, err = conn.Write([]byte("POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"))
	require.NoError(t, err)
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 64)
	n, _ := conn.Read(buf)
	assert.Contains(t, string(buf[:n]), "408", "a body that never arrives is cut off")
}

type deadlineWriter struct {
	http.ResponseWriter
	got []time.Time
}

func (w *deadlineWriter) SetReadDeadline(t time.Time) error {
	w.got = append(w.got, t)
	return nil
}

type unwrapWriter struct{ http.ResponseWriter }

func (w unwrapWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func TestSetReadDeadline(t *testing.T) {
	at := time.Unix(1700000000, 0)
	tests := []struct {
		name string
		wrap func(*deadlineWriter) http.ResponseWriter
		ok   bool
	}{
		{name: "direct", wrap: func(d *deadlineWriter) http.ResponseWriter { return d }, ok: true},
		{name: "unwrapped", wrap: func(d *deadlineWriter) http.ResponseWriter { return unwrapWriter{unwrapWriter{d}} }, ok: true},
		{name: "not supported", wrap: func(*deadlineWriter) http.ResponseWriter { return unwrapWriter{httptest.NewRecorder()} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &deadlineWriter{ResponseWriter: httptest.NewRecorder()}
			err := setReadDeadline(tt.wrap(d), at)
			if !tt.ok {
				assert.ErrorIs(t, err, http.ErrNotSupported)
				assert.Empty(t, d.got)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, []time.Time{at}, d.got)
		})
	}
}

func TestEdgeBodyDeadlineThroughWrapper(t *testing.T) {
	mw, err := Edge(EdgeConfig{BodyTimeout: time.Minute})
	require.NoError(t, err)
	h := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		assert.NoError(t, err)
		assert.Equal(t, `{"a":1}`, string(b))
		assert.NoError(t, r.Body.Close())
	}))
	d := &deadlineWriter{ResponseWriter: httptest.NewRecorder()}
	req := httptest.NewRequest(http.MethodPost, "/mcp", strings.NewReader(`{"a":1}`))
	req.Header.Set("Content-Type", "application/json")
	h.ServeHTTP(unwrapWriter{d}, req)
	require.Len(t, d.got, 2, "the deadline is set for the body and lifted after it")
	assert.False(t, d.got[0].IsZero())
	assert.True(t, d.got[1].IsZero())
}

type parentKey struct{}

func TestEdgeContextKeepsParent(t *testing.T) {
	mw, err := Edge(EdgeConfig{})
	require.NoError(t, err)
	parent, cancel := context.WithCancel(context.WithValue(context.Background(), parentKey{}, "p"))
	const body = `{"secret-marker":1}`
	var reached bool
	h := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached = true
		ctx := r.Context()
		assert.Equal(t, "p", ctx.Value(parentKey{}), "parent values reach through")
		got, ok := bodyFromContext(ctx)
		require.True(t, ok)
		assert.Equal(t, body, string(got))
		_, ok = audit.RequestIDFromContext(ctx)
		assert.True(t, ok)
		printed := fmt.Sprint(ctx)
		assert.NotContains(t, printed, "secret-marker", "printing the context does not dump the body")
		assert.NotContains(t, printed, strings.Trim(fmt.Sprint([]byte("secret-marker")), "[]"))
		cancel()
		select {
		case <-ctx.Done():
		case <-time.After(5 * time.Second):
			t.Error("the parent's cancellation did not reach the request context")
		}
	}))
	req := httptest.NewRequestWithContext(parent, http.MethodPost, "/mcp", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	h.ServeHTTP(httptest.NewRecorder(), req)
	assert.True(t, reached)
}
