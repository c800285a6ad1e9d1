package transport

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
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
	"github.com/mcpguard/mcpguard/auth/authtest"
	"github.com/mcpguard/mcpguard/authz"
	"github.com/mcpguard/mcpguard/tenancy"
	"github.com/mcpguard/mcpguard/transport/ratelimit"
)

// syncBuffer collects audit output from concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type stack struct {
	url    string // MCP endpoint
	base   string
	idp    *authtest.Server
	audit  *syncBuffer
	rec    *audit.Recorder
	guard  *Guard
	minted []string
	seen   chan struct{}
}

func (s *stack) token(t *testing.T, claims map[string]any) string {
	t.Helper()
	c := map[string]any{"aud": s.url, "tenant_id": "acme"}
	for k, v := range claims {
		c[k] = v
	}
	tok := s.idp.MustMint(c)
	s.minted = append(s.minted, tok)
	return tok
}

func notesPolicy(t testing.TB) *authz.Policy {
	t.Helper()
	pl, err := authz.New(authz.Config{
		ReadScope:  "notes:read",
		WriteScope: "notes:write",
		ToolRules:  map[string]authz.Rule{"whoami": {Authenticated: true}},
	})
	require.NoError(t, err)
	return pl
}

func notesServer(opts ...server.ServerOption) *server.MCPServer {
	return notesServerSeen(make(chan struct{}), opts...)
}

// notesServerSeen is notesServer whose "stream" tool waits for seen.
func notesServerSeen(seen <-chan struct{}, opts ...server.ServerOption) *server.MCPServer {
	s := server.NewMCPServer("notes", "1.0", opts...)
	s.AddTool(mcp.NewTool("notes_read", mcp.WithReadOnlyHintAnnotation(true)), func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		tn, _ := tenancy.FromContext(ctx)
		return mcp.NewToolResultText("read for " + tn), nil
	})
	s.AddTool(mcp.NewTool("notes_write", mcp.WithReadOnlyHintAnnotation(false)), func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultText("written"), nil
	})
	s.AddTool(mcp.NewTool("stream", mcp.WithReadOnlyHintAnnotation(true)), func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		srv := server.ServerFromContext(ctx)
		if err := srv.SendNotificationToClient(ctx, "notifications/mcpguard_test", map[string]any{"level": "info", "data": "mid-call"}); err != nil {
			return nil, err
		}
		select {
		case <-seen:
			return mcp.NewToolResultText("saw it"), nil
		case <-time.After(5 * time.Second):
			return mcp.NewToolResultText("notification not delivered while the call was open"), nil
		}
	})
	s.AddTool(mcp.NewTool("whoami"), func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		p, _ := auth.FromContext(ctx)
		tn, _ := tenancy.FromContext(ctx)
		rid, _ := audit.RequestIDFromContext(ctx)
		return mcp.NewToolResultText(p.Subject + "@" + tn + " rid=" + rid), nil
	})
	return s
}

// newStack starts the full prod stack on loopback.
func newStack(t *testing.T, mutate func(*Config), httpOpts ...server.StreamableHTTPOption) *stack {
	t.Helper()
	idp := authtest.NewServer(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	base := "http://" + ln.Addr().String()
	st := &stack{url: base + "/mcp", base: base, idp: idp, audit: &syncBuffer{}, seen: make(chan struct{})}

	v, err := auth.NewJWTValidator(auth.JWTConfig{Issuer: idp.Issuer(), Audience: st.url})
	require.NoError(t, err)
	res, err := tenancy.New(tenancy.Config{})
	require.NoError(t, err)
	sink, err := audit.NewJSONSink(st.audit)
	require.NoError(t, err)
	st.rec, err = audit.New(audit.Config{Sink: sink})
	require.NoError(t, err)

	cfg := Config{
		Resource:             st.url,
		AuthorizationServers: []string{idp.Issuer()},
		Validator:            v,
		Policy:               notesPolicy(t),
		Tenancy:              res,
		Audit:                st.rec,
		Edge:                 EdgeConfig{AllowedOrigins: []string{"https://app.example.com"}},
		HTTPOptions:          httpOpts,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	st.guard, err = New(cfg)
	require.NoError(t, err)
	srv := notesServerSeen(st.seen, st.guard.ServerOptions()...)
	hs := &http.Server{Handler: st.guard.Handler(srv), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	t.Cleanup(func() { _ = hs.Close(); _ = st.rec.Close() })
	return st
}

func (s *stack) client(t *testing.T, token string, opts ...mcptransport.StreamableHTTPCOption) *client.Client {
	t.Helper()
	return newClient(t, s.url, token, opts...)
}

func callText(t *testing.T, c *client.Client, name string) (string, error) {
	t.Helper()
	res, err := c.CallTool(context.Background(), mcp.CallToolRequest{Params: mcp.CallToolParams{Name: name}})
	if err != nil {
		return "", err
	}
	if res.IsError {
		return "", assert.AnError
	}
	return res.Content[0].(mcp.TextContent).Text, nil
}

func toolNames(t *testing.T, c *client.Client) []string {
	t.Helper()
	res, err := c.ListTools(context.Background(), mcp.ListToolsRequest{})
	require.NoError(t, err)
	var names []string
	for _, tl := range res.Tools {
		names = append(names, tl.Name)
	}
	return names
}

func TestStackDiscovery(t *testing.T) {
	st := newStack(t, nil)
	resp, err := http.Post(st.url, "application/json", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	chal := resp.Header.Get("WWW-Authenticate")
	wantMeta := st.base + "/.well-known/oauth-protected-resource/mcp"
	assert.Equal(t, `Bearer resource_metadata="`+wantMeta+`"`, chal)

	resp, err = http.Get(wantMeta)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var doc map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&doc))
	assert.Equal(t, st.url, doc["resource"])
	assert.Equal(t, []any{st.idp.Issuer()}, doc["authorization_servers"])
	assert.ElementsMatch(t, []any{"notes:read", "notes:write"}, doc["scopes_supported"])
	// The root well-known URL serves the same document for older clients.
	resp2, err := http.Get(st.base + "/.well-known/oauth-protected-resource")
	require.NoError(t, err)
	_ = resp2.Body.Close()
	assert.Equal(t, http.StatusOK, resp2.StatusCode)
}

func TestStackScopesAndStepUp(t *testing.T) {
	st := newStack(t, nil)
	reader := st.client(t, st.token(t, map[string]any{"sub": "bob", "scope": "notes:read"}))
	writer := st.client(t, st.token(t, map[string]any{"sub": "alice", "scope": "notes:read notes:write"}))
	ctx := context.Background()
	for _, c := range []*client.Client{reader, writer} {
		_, err := c.Initialize(ctx, initReq(mcp.ProtocolVersion20251125))
		require.NoError(t, err)
	}
	assert.ElementsMatch(t, []string{"notes_read", "stream", "whoami"}, toolNames(t, reader))
	assert.ElementsMatch(t, []string{"notes_read", "notes_write", "stream", "whoami"}, toolNames(t, writer))

	got, err := callText(t, reader, "notes_read")
	require.NoError(t, err)
	assert.Equal(t, "read for acme", got)
	got, err = callText(t, writer, "notes_write")
	require.NoError(t, err)
	assert.Equal(t, "written", got)
	got, err = callText(t, writer, "whoami")
	require.NoError(t, err)
	assert.Regexp(t, `^alice@acme rid=[0-9a-f]{24}$`, got)

	// The reader is refused notes_write at the HTTP edge: 403 with an RFC
	// 6750 insufficient_scope challenge naming the scope to request.
	_, err = callText(t, reader, "notes_write")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "insufficient_scope")
	tok := st.token(t, map[string]any{"sub": "bob", "scope": "notes:read"})
	status, hdr, body := rawCall(t, st.url, tok, "notes_write", "")
	assert.Equal(t, http.StatusForbidden, status)
	assert.Equal(t, `Bearer resource_metadata="`+st.guard.MetadataURL()+`", error="insufficient_scope", error_description="insufficient scope: this request requires notes:write", scope="notes:write"`, hdr.Get("WWW-Authenticate"))
	assert.NotContains(t, body, tok)
	// A read-only tool is not stepped up for a reader (annotations seen).
	status, _, _ = rawCall(t, st.url, tok, "notes_read", "")
	assert.Equal(t, http.StatusOK, status)
	// A case-variant member cannot smuggle a different tool name past it.
	status, _, _ = rawCall(t, st.url, tok, "", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"notes_read","Name":"notes_write"}}`)
	assert.Equal(t, http.StatusBadRequest, status)
}

func TestStackStepUpDisabledStillEnforced(t *testing.T) {
	st := newStack(t, func(c *Config) { c.DisableStepUp = true })
	tok := st.token(t, map[string]any{"sub": "bob", "scope": "notes:read"})
	status, hdr, body := rawCall(t, st.url, tok, "notes_write", "")
	assert.NotEqual(t, http.StatusForbidden, status, "without step-up mcp-go answers, as JSON-RPC")
	assert.Empty(t, hdr.Get("WWW-Authenticate"))
	assert.Contains(t, body, `"error"`)
	assert.Contains(t, body, "notes:write", "the authz layer names the missing scope")
	assert.NotContains(t, body, `"written"`)
}

// rawCall posts a 2026-07-28 stateless tools/call.
func rawCall(t *testing.T, url, token, tool, body string) (int, http.Header, string) {
	t.Helper()
	if body == "" {
		body = `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"` + tool + `","arguments":{},"_meta":{"` +
			mcp.MetaKeyProtocolVersion + `":"` + mcp.ProtocolVersion20260728 + `","` + mcp.MetaKeyClientInfo + `":{"name":"t","version":"1"},"` +
			mcp.MetaKeyClientCapabilities + `":{}}}}`
	}
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set(mcp.HeaderProtocolVersion, mcp.ProtocolVersion20260728)
	req.Header.Set(mcp.HeaderMethod, "tools/call")
	if tool != "" {
		req.Header.Set(mcp.HeaderName, tool)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// TestStackRefusesIDTokens: a signed token for this resource whose payload
// says it is an ID or refresh token is refused with invalid_token in both
// eras, though its header typ is "JWT" (found in review: it was served).
func TestStackRefusesIDTokens(t *testing.T) {
	st := newStack(t, nil)
	good := st.token(t, map[string]any{"scope": "notes:read"})
	for _, era := range eras {
		status, body := postRPC(t, st, good, era, "", "ping", rpcBody(era, "ping"))
		require.NotEqual(t, http.StatusUnauthorized, status, "an access token is authenticated: %s", body)
		for _, claims := range []map[string]any{
			{"scope": "notes:read", "typ": "ID", "nonce": "n-1"},
			{"scope": "notes:read", "token_use": "id"},
			{"scope": "notes:read", "typ": "Refresh"},
		} {
			req, err := http.NewRequest(http.MethodPost, st.url, strings.NewReader(rpcBody(era, "ping")))
			require.NoError(t, err)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/event-stream")
			req.Header.Set("Authorization", "Bearer "+st.token(t, claims))
			req.Header.Set(mcp.HeaderProtocolVersion, era)
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "%s %v", era, claims)
			assert.Contains(t, resp.Header.Get("WWW-Authenticate"), `error="invalid_token", error_description="the token is not an access token"`, "%s %v", era, claims)
		}
	}
}

func TestStackRejections(t *testing.T) {
	st := newStack(t, nil)
	good := st.token(t, map[string]any{"scope": "notes:read"})
	expired := st.token(t, map[string]any{"scope": "notes:read", "exp": time.Now().Add(-time.Hour).Unix(), "iat": time.Now().Add(-2 * time.Hour).Unix()})
	wrongAud := st.token(t, map[string]any{"aud": "https://other.example/mcp"})
	noTenant := st.idp.MustMint(map[string]any{"aud": st.url, "scope": "notes:read"})
	forged, err := st.idp.MintBadSignature(map[string]any{"aud": st.url, "tenant_id": "acme"})
	require.NoError(t, err)

	tests := []struct {
		name    string
		mod     func(*http.Request)
		status  int
		errCode string
	}{
		{name: "valid", mod: func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+good) }, status: 200},
		{name: "no token", mod: func(*http.Request) {}, status: 401},
		{name: "expired", mod: func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+expired) }, status: 401, errCode: "invalid_token"},
		{name: "forged", mod: func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+forged) }, status: 401, errCode: "invalid_token"},
		{name: "wrong audience", mod: func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+wrongAud) }, status: 401, errCode: "invalid_token"},
		{name: "no tenant", mod: func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+noTenant) }, status: 403},
		{name: "token only in query", mod: func(r *http.Request) { r.URL.RawQuery = "access_token=" + good }, status: 401},
		{name: "token in query and header", mod: func(r *http.Request) {
			r.Header.Set("Authorization", "Bearer "+good)
			r.URL.RawQuery = "access_token=" + good
		}, status: 400, errCode: "invalid_request"},
		{name: "bad origin", mod: func(r *http.Request) {
			r.Header.Set("Authorization", "Bearer "+good)
			r.Header.Set("Origin", "https://evil.example")
		}, status: 403},
		{name: "good origin", mod: func(r *http.Request) {
			r.Header.Set("Authorization", "Bearer "+good)
			r.Header.Set("Origin", "https://app.example.com")
		}, status: 200},
		{name: "text/plain", mod: func(r *http.Request) {
			r.Header.Set("Authorization", "Bearer "+good)
			r.Header.Set("Content-Type", "text/plain")
		}, status: 415},
		{name: "rebinding host", mod: func(r *http.Request) {
			r.Header.Set("Authorization", "Bearer "+good)
			r.Host = "evil.example"
		}, status: 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, st.url, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"`+
				mcp.MetaKeyProtocolVersion+`":"`+mcp.ProtocolVersion20260728+`","`+mcp.MetaKeyClientCapabilities+`":{}}}}`))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/event-stream")
			req.Header.Set(mcp.HeaderProtocolVersion, mcp.ProtocolVersion20260728)
			req.Header.Set(mcp.HeaderMethod, "tools/list")
			tt.mod(req)
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			body, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			assert.Equal(t, tt.status, resp.StatusCode, string(body))
			if rid := resp.Header.Get(HeaderRequestID); tt.status >= 400 && rid != "" {
				// The audit event of a refusal, at the edge or later,
				// carries the request ID echoed to the client.
				assert.Contains(t, st.audit.String(), `"request_id":"`+rid+`"`)
			}
			if tt.errCode != "" {
				assert.Contains(t, resp.Header.Get("WWW-Authenticate"), `error="`+tt.errCode+`"`)
			}
		})
	}
	// Nothing the audit trail or any response holds is a token.
	out := st.audit.String()
	require.NotEmpty(t, out)
	for _, tok := range append(st.minted, forged, noTenant) {
		for i := 0; i+16 <= len(tok); i += 8 {
			require.NotContains(t, out, tok[i:i+16])
		}
	}
	assert.Contains(t, out, `"origin_rejected"`)
}

func TestStackStreamingAndSessions(t *testing.T) {
	st := newStack(t, nil, server.WithStateful(true))
	alice := st.token(t, map[string]any{"sub": "alice", "scope": "notes:read"})
	bob := st.token(t, map[string]any{"sub": "bob", "scope": "notes:read"})
	c := st.client(t, alice, mcptransport.WithContinuousListening())
	_, err := c.Initialize(context.Background(), initReq(mcp.ProtocolVersion20251125))
	require.NoError(t, err)
	sid := c.GetSessionId()
	require.NotEmpty(t, sid)

	// A GET stream opens and delivers its first bytes through every wrapper.
	get := func(tok string) (*http.Response, error) {
		req, _ := http.NewRequest(http.MethodGet, st.url, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Accept", "text/event-stream")
		req.Header.Set("Mcp-Session-Id", sid)
		req.Header.Set(mcp.HeaderProtocolVersion, mcp.ProtocolVersion20251125)
		return http.DefaultClient.Do(req)
	}
	resp, err := get(bob)
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusNotFound, resp.StatusCode, "bob cannot attach to alice's stream")

	// A notification sent mid-call must reach the client while the call is
	// still open: the tool blocks until the test has read the notification
	// off the SSE response, so any wrapper that buffers instead of flushing
	// makes this time out.
	streamMidCall(t, st.url, alice, sid, st.seen)

	resp, err = get(alice)
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))

	// DELETE ends the session for its owner only.
	del := func(tok string) int {
		req, _ := http.NewRequest(http.MethodDelete, st.url, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Mcp-Session-Id", sid)
		r, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		_ = r.Body.Close()
		return r.StatusCode
	}
	assert.Equal(t, http.StatusNotFound, del(bob))
	assert.Equal(t, http.StatusOK, del(alice))
}

func TestStackStatelessModern(t *testing.T) {
	st := newStack(t, nil)
	tok := st.token(t, map[string]any{"sub": "carol", "scope": "notes:read"})
	status, hdr, body := rawCall(t, st.url, tok, "whoami", "")
	require.Equal(t, http.StatusOK, status, body)
	assert.Contains(t, body, "carol@acme")
	assert.Empty(t, hdr.Get("Mcp-Session-Id"), "2026-07-28 requests carry no session")
	assert.NotEmpty(t, hdr.Get(HeaderRequestID))
}

func TestNewConfigErrors(t *testing.T) {
	pl, err := authz.New(authz.Config{})
	require.NoError(t, err)
	v := auth.ValidatorFunc(func(context.Context, string) (*auth.Principal, error) { return nil, auth.ErrInvalidToken })
	ok := Config{Resource: "https://mcp.example.com/mcp", AuthorizationServers: []string{"https://idp.example.com"}, Validator: v, Policy: pl}
	_, err = New(ok)
	require.NoError(t, err)
	tests := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{name: "no validator", mod: func(c *Config) { c.Validator = nil }, want: "Config.Validator"},
		{name: "no policy", mod: func(c *Config) { c.Policy = nil }, want: "Config.Policy"},
		{name: "no issuer", mod: func(c *Config) { c.AuthorizationServers = nil }, want: "Config.AuthorizationServers"},
		{name: "http resource off loopback", mod: func(c *Config) { c.Resource = "http://mcp.example.com/mcp" }, want: "https"},
		{name: "relative resource", mod: func(c *Config) { c.Resource = "/mcp" }, want: "Config.Resource"},
		{name: "no resource", mod: func(c *Config) { c.Resource = "" }, want: "Config.Resource"},
		{name: "unknown mode", mod: func(c *Config) { c.Mode = 7 }, want: "Config.Mode"},
		{name: "short session key", mod: func(c *Config) { c.SessionKey = []byte("x") }, want: "Config.SessionKey"},
		{name: "dev on all interfaces", mod: func(c *Config) { c.Mode = ModeDev; c.Addr = ":8080" }, want: "Config.Addr"},
		{name: "dev off loopback", mod: func(c *Config) { c.Mode = ModeDev; c.Addr = "10.0.0.1:8080" }, want: "Config.Addr"},
		{name: "wildcard origin", mod: func(c *Config) { c.Edge.AllowedOrigins = []string{"*"} }, want: "AllowedOrigins"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.mod(&c)
			g, err := New(c)
			require.Error(t, err)
			assert.Nil(t, g)
			assert.ErrorIs(t, err, ErrConfig)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

// Dev mode runs the same policy: a dev principal with the reader's scopes
// is refused the write tool exactly as the reader is in prod.
func TestDevModeSamePolicy(t *testing.T) {
	var logs syncBuffer
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	g, err := New(Config{
		Mode:   ModeDev,
		Addr:   ln.Addr().String(),
		Policy: notesPolicy(t),
		Dev:    DevIdentity{Subject: "dev-alice", Tenant: "acme", Scopes: []string{"notes:read"}},
		Logger: slogTo(&logs),
	})
	require.NoError(t, err)
	assert.Contains(t, logs.String(), "DEV MODE")
	assert.Equal(t, 1, strings.Count(strings.TrimSpace(logs.String()), "\n")+1, "one warning line")
	hs := httptest.NewUnstartedServer(g.Handler(notesServer(g.ServerOptions()...)))
	hs.Listener = ln
	hs.Start()
	defer hs.Close()
	url := "http://" + ln.Addr().String() + "/mcp"

	status, _, body := rawCall(t, url, "", "whoami", "")
	require.Equal(t, http.StatusOK, status, body)
	assert.Contains(t, body, "dev-alice@acme")
	status, hdr, _ := rawCall(t, url, "", "notes_write", "")
	assert.Equal(t, http.StatusForbidden, status)
	assert.Contains(t, hdr.Get("WWW-Authenticate"), `scope="notes:write"`)
	// No protected resource metadata in dev mode.
	resp, err := http.Get("http://" + ln.Addr().String() + "/.well-known/oauth-protected-resource/mcp")
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
}

// streamMidCall calls the "stream" tool over raw HTTP and reads its SSE
// response event by event; it closes seen only after the mid-call
// notification has arrived, which is what lets the tool finish.
func streamMidCall(t *testing.T, url, token, sid string, seen chan struct{}) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(`{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"stream","arguments":{}}}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Mcp-Session-Id", sid)
	req.Header.Set(mcp.HeaderProtocolVersion, mcp.ProtocolVersion20251125)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	sc := bufio.NewScanner(resp.Body)
	gotNote := false
	for sc.Scan() {
		line := sc.Text()
		if strings.Contains(line, "notifications/mcpguard_test") && !gotNote {
			gotNote = true
			close(seen)
		}
		if strings.Contains(line, `"id":42`) {
			require.True(t, gotNote, "the result came before the notification")
			assert.Contains(t, line, "saw it")
			return
		}
	}
	t.Fatalf("stream ended without a result: %v", sc.Err())
}

// Failed authentications spend the address's budget and turn into 429;
// authenticated callers from the same address keep their own budgets.
func TestStackUnauthenticatedRateLimit(t *testing.T) {
	lim, err := ratelimit.NewMemory(ratelimit.MemoryConfig{})
	require.NoError(t, err)
	unauth, err := ratelimit.NewRequestLimit(ratelimit.RequestLimitConfig{Limiter: lim, Limit: ratelimit.Limit{Events: 1, Period: time.Hour, Burst: 3}, Namespace: "unauth"})
	require.NoError(t, err)
	post, err := ratelimit.NewRequestLimit(ratelimit.RequestLimitConfig{Limiter: lim, Limit: ratelimit.Limit{Events: 1, Period: time.Hour, Burst: 2}})
	require.NoError(t, err)
	st := newStack(t, func(c *Config) { c.UnauthenticatedRateLimit = unauth; c.RateLimit = post })
	forged, err := st.idp.MintBadSignature(map[string]any{"aud": st.url, "tenant_id": "acme"})
	require.NoError(t, err)

	var got []int
	for i := 0; i < 5; i++ {
		status, hdr, body := rawCall(t, st.url, forged, "whoami", "")
		got = append(got, status)
		if status == http.StatusTooManyRequests {
			assert.Equal(t, "3600", hdr.Get("Retry-After"))
			assert.Empty(t, hdr.Get("WWW-Authenticate"))
			assert.NotContains(t, body, "invalid_token")
		}
	}
	assert.Equal(t, []int{401, 401, 401, 429, 429}, got)
	status, _, _ := rawCall(t, st.url, "", "whoami", "")
	assert.Equal(t, http.StatusTooManyRequests, status, "no token counts as a failure too")

	// Two users on the same address are unaffected, each with its own budget.
	for _, sub := range []string{"alice", "bob"} {
		tok := st.token(t, map[string]any{"sub": sub, "scope": "notes:read"})
		var s []int
		for i := 0; i < 3; i++ {
			status, _, _ := rawCall(t, st.url, tok, "whoami", "")
			s = append(s, status)
		}
		assert.Equal(t, []int{200, 200, 429}, s, sub)
	}
	assert.Regexp(t, `"kind":"rate_limited",[^\n]*"limit":"unauth",[^\n]*"decision":"deny","reason":"rate_limited","status":429`, st.audit.String())
}

// With DPoP allowed or required, failed authentications are charged too. A
// DPoP-required validator's 401 carries only a DPoP challenge, and before,
// only a Bearer one was counted: bad tokens were never cut with 429 (found
// in review). Both eras, bad signature and no token alike.
func TestStackUnauthenticatedRateLimitDPoP(t *testing.T) {
	for name, mode := range map[string]auth.DPoPMode{"allowed": auth.DPoPAllowed, "required": auth.DPoPRequired} {
		for _, era := range eras {
			t.Run(name+" "+era, func(t *testing.T) {
				lim, err := ratelimit.NewMemory(ratelimit.MemoryConfig{})
				require.NoError(t, err)
				unauth, err := ratelimit.NewRequestLimit(ratelimit.RequestLimitConfig{Limiter: lim, Limit: ratelimit.Limit{Events: 1, Period: time.Hour, Burst: 3}, KeyBy: ratelimit.Address, Namespace: "unauth"})
				require.NoError(t, err)
				st := newStack(t, func(c *Config) {
					v, err := auth.NewJWTValidator(auth.JWTConfig{Issuer: c.AuthorizationServers[0], Audience: c.Resource, DPoP: auth.DPoPConfig{Mode: mode}})
					require.NoError(t, err)
					c.Validator = v
					c.UnauthenticatedRateLimit = unauth
				})
				forged, err := st.idp.MintBadSignature(map[string]any{"aud": st.url, "tenant_id": "acme"})
				require.NoError(t, err)
				var got []int
				for i := range 5 {
					tok := forged
					if i == 4 {
						tok = "" // no credential at all counts as well
					}
					req, err := http.NewRequest(http.MethodPost, st.url, strings.NewReader(rpcBody(era, "ping")))
					require.NoError(t, err)
					req.Header.Set("Content-Type", "application/json")
					req.Header.Set("Accept", "application/json, text/event-stream")
					req.Header.Set(mcp.HeaderProtocolVersion, era)
					if tok != "" {
						req.Header.Set("Authorization", "Bearer "+tok)
					}
					resp, err := http.DefaultClient.Do(req)
					require.NoError(t, err)
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					got = append(got, resp.StatusCode)
					if i == 0 {
						schemes := resp.Header.Values("WWW-Authenticate")
						require.NotEmpty(t, schemes)
						if mode == auth.DPoPRequired {
							for _, c := range schemes {
								require.True(t, strings.HasPrefix(c, "DPoP "), "a DPoP-only challenge: %q", c)
							}
						}
					}
				}
				assert.Equal(t, []int{401, 401, 401, 429, 429}, got)
			})
		}
	}
}

func TestAuthChallenge(t *testing.T) {
	for _, tc := range []struct {
		values []string
		want   bool
	}{
		{nil, false},
		{[]string{`Bearer resource_metadata="x"`}, true},
		{[]string{`Bearer`}, true},
		{[]string{`bearer error="invalid_token"`}, true},
		{[]string{`DPoP algs="ES256"`}, true},
		{[]string{`Basic realm="x"`, `dpop algs="ES256"`}, true},
		{[]string{`Basic realm="x"`}, false},
		{[]string{`BearerX realm="x"`}, false},
		{[]string{``}, false},
	} {
		h := http.Header{}
		for _, v := range tc.values {
			h.Add("WWW-Authenticate", v)
		}
		assert.Equal(t, tc.want, authChallenge(h), "%q", tc.values)
	}
}

// An authenticated caller's bad requests (mcp-go's own 400s) are not
// authentication failures and do not spend the address's budget.
func TestStackUnauthenticatedRateLimitIgnoresOtherErrors(t *testing.T) {
	lim, err := ratelimit.NewMemory(ratelimit.MemoryConfig{})
	require.NoError(t, err)
	unauth, err := ratelimit.NewRequestLimit(ratelimit.RequestLimitConfig{Limiter: lim, Limit: ratelimit.Limit{Events: 1, Period: time.Hour, Burst: 1}})
	require.NoError(t, err)
	st := newStack(t, func(c *Config) { c.UnauthenticatedRateLimit = unauth })
	tok := st.token(t, map[string]any{"sub": "alice", "scope": "notes:read"})
	for i := 0; i < 3; i++ {
		status, hdr, _ := rawCall(t, st.url, tok, "", `{"jsonrpc":"2.0","id":1,"method":`)
		assert.Equal(t, http.StatusBadRequest, status)
		assert.Empty(t, hdr.Get("WWW-Authenticate"))
	}
	status, _, _ := rawCall(t, st.url, "", "whoami", "")
	assert.Equal(t, http.StatusUnauthorized, status, "the budget of one failure is still unspent")
	status, _, _ = rawCall(t, st.url, "", "whoami", "")
	assert.Equal(t, http.StatusTooManyRequests, status)
}

// Pre-auth and unauthenticated limits on one store keep separate buckets:
// bad tokens from an address spend its failure budget, never the pre-auth
// ceiling its authenticated users share (the examples' wiring), in both
// protocol eras.
func TestStackLimitsOnOneStoreKeepSeparateBuckets(t *testing.T) {
	for _, era := range eras {
		t.Run(era, func(t *testing.T) {
			lim, err := ratelimit.NewMemory(ratelimit.MemoryConfig{})
			require.NoError(t, err)
			perAddr := ratelimit.Limit{Events: 1, Period: time.Hour, Burst: 8}
			pre, err := ratelimit.NewRequestLimit(ratelimit.RequestLimitConfig{Limiter: lim, Limit: perAddr, KeyBy: ratelimit.Address, Namespace: "preauth"})
			require.NoError(t, err)
			unauth, err := ratelimit.NewRequestLimit(ratelimit.RequestLimitConfig{Limiter: lim, Limit: perAddr, KeyBy: ratelimit.Address, Namespace: "unauth"})
			require.NoError(t, err)
			st := newStack(t, func(c *Config) { c.PreAuthRateLimit = pre; c.UnauthenticatedRateLimit = unauth })
			// Five bad tokens: each spends one pre-auth and one failure event.
			for range 5 {
				status, _, _ := rawCall(t, st.url, "forged-token", "whoami", "")
				require.Equal(t, http.StatusUnauthorized, status)
			}
			// An authenticated user from the same address still has
			// 8-5 = 3 pre-auth events; a shared bucket would hold none.
			tok := st.token(t, map[string]any{"sub": "alice", "scope": "notes:read"})
			c, err := eraClient(t, st.url, tok, era)
			require.NoError(t, err, "the address's users are not locked out")
			text, err := callText(t, c, "whoami")
			require.NoError(t, err)
			assert.Contains(t, text, "alice@acme")
		})
	}
}

// Two request limits with one namespace would share buckets: New refuses.
func TestNewRefusesSharedLimitNamespace(t *testing.T) {
	lim, err := ratelimit.NewMemory(ratelimit.MemoryConfig{})
	require.NoError(t, err)
	a, err := ratelimit.NewRequestLimit(ratelimit.RequestLimitConfig{Limiter: lim, Limit: ratelimit.PerSecond(1)})
	require.NoError(t, err)
	b, err := ratelimit.NewRequestLimit(ratelimit.RequestLimitConfig{Limiter: lim, Limit: ratelimit.PerSecond(1)})
	require.NoError(t, err)
	_, err = New(Config{Mode: ModeDev, Addr: "127.0.0.1:1", Policy: notesPolicy(t), Logger: slogTo(io.Discard),
		UnauthenticatedRateLimit: a, RateLimit: b})
	require.ErrorIs(t, err, ErrConfig)
	assert.Contains(t, err.Error(), "Config.UnauthenticatedRateLimit and Config.RateLimit share the key namespace \"http\"")

	// Tool budgets in a request limit's namespace would too.
	tb, err := ratelimit.NewToolBudgets(ratelimit.ToolBudgetsConfig{Limiter: lim, Namespace: "http",
		Default: ratelimit.Budget{Rate: ratelimit.PerSecond(1)}})
	require.NoError(t, err)
	_, err = New(Config{Mode: ModeDev, Addr: "127.0.0.1:1", Policy: notesPolicy(t), Logger: slogTo(io.Discard),
		RateLimit: b, ToolBudgets: tb})
	require.ErrorIs(t, err, ErrConfig)
	assert.Contains(t, err.Error(), "Config.RateLimit and Config.ToolBudgets share the key namespace \"http\"")
}
