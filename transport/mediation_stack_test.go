package transport

import (
	"context"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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
)

// TestStackStepUpNamesScopesAndTool: a 403 for missing scopes names them in
// error_description (mcp-go's client shows only the body), and the edge's
// audit event names the refused tool (issue 15.8).
func TestStackStepUpNamesScopesAndTool(t *testing.T) {
	st := newStack(t, nil)
	tok := st.token(t, map[string]any{"sub": "bob", "scope": "notes:read"})

	t.Run("stateless", func(t *testing.T) {
		status, _, body := rawCall(t, st.url, tok, "notes_write", "")
		require.Equal(t, http.StatusForbidden, status)
		assert.JSONEq(t, `{"error":"insufficient_scope","error_description":"insufficient scope: this request requires notes:write"}`, body)
	})
	t.Run("session", func(t *testing.T) {
		c := st.client(t, tok)
		_, err := c.Initialize(context.Background(), initReq(mcp.ProtocolVersion20251125))
		require.NoError(t, err)
		_, err = callText(t, c, "notes_write")
		require.Error(t, err)
		assert.Contains(t, err.Error(), "insufficient_scope")
	})
	require.NoError(t, st.rec.Close())
	out := st.audit.String()
	assert.Regexp(t, `"kind":"access_denied"[^\n]*"tool":"notes_write"[^\n]*"reason":"insufficient_scope"`, out)
	assert.NotContains(t, out, tok)
}

// mediationPolicy guards the notes resources and prompt of mediationServer:
// notes:read for notes://, notes:admin for notes://private/.
func mediationPolicy(t testing.TB) *authz.Policy {
	t.Helper()
	pl, err := authz.New(authz.Config{
		ReadScope:  "notes:read",
		WriteScope: "notes:write",
		ResourceRules: []authz.ResourceRule{
			{Prefix: "notes://", Rule: authz.Rule{AllOf: []string{"notes:read"}}},
			{Prefix: "notes://private/", Rule: authz.Rule{AllOf: []string{"notes:admin"}}},
		},
		PromptRules: map[string]authz.Rule{
			"notes_digest": {AllOf: []string{"notes:read"}},
			"admin_digest": {AllOf: []string{"notes:admin"}},
		},
	})
	require.NoError(t, err)
	return pl
}

// mediationServer serves notes://{+key} (the handler sees the decoded
// key), two prompts with argument completion, and resource subscriptions.
func mediationServer(opts ...server.ServerOption) *server.MCPServer {
	opts = append([]server.ServerOption{
		server.WithResourceCapabilities(true, false),
		server.WithPromptCapabilities(false),
		server.WithCompletions(),
		server.WithPromptCompletionProvider(completer{}),
		server.WithResourceCompletionProvider(completer{}),
	}, opts...)
	s := server.NewMCPServer("notes", "1.0", opts...)
	s.AddResourceTemplate(mcp.NewResourceTemplate("notes://{+key}", "note"),
		func(ctx context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
			key, _ := req.Params.Arguments["key"].([]string)
			return []mcp.ResourceContents{mcp.TextResourceContents{URI: req.Params.URI, Text: "note " + strings.Join(key, ",")}}, nil
		})
	for _, name := range []string{"notes_digest", "admin_digest"} {
		s.AddPrompt(mcp.NewPrompt(name, mcp.WithArgument("key")), func(context.Context, mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
			return mcp.NewGetPromptResult("digest", nil), nil
		})
	}
	return s
}

// completer offers "secret-key" for every argument: seeing it means the
// completion ran.
type completer struct{}

func (completer) CompletePromptArgument(context.Context, string, mcp.CompleteArgument, mcp.CompleteContext) (*mcp.Completion, error) {
	return &mcp.Completion{Values: []string{"secret-key"}}, nil
}

func (completer) CompleteResourceArgument(context.Context, string, mcp.CompleteArgument, mcp.CompleteContext) (*mcp.Completion, error) {
	return &mcp.Completion{Values: []string{"secret-key"}}, nil
}

// newMediationStack is newStack around mediationServer with
// mediationPolicy; build, when set, adds to the server after it is built.
func newMediationStack(t *testing.T, build func(*Guard, *server.MCPServer), httpOpts ...server.StreamableHTTPOption) *stack {
	t.Helper()
	return newMediationStackWith(t, nil, build, httpOpts...)
}

// newMediationStackWith is newMediationStack with cfg, when set, changing
// the Config before New.
func newMediationStackWith(t *testing.T, cfg func(*Config), build func(*Guard, *server.MCPServer), httpOpts ...server.StreamableHTTPOption) *stack {
	t.Helper()
	idp := authtest.NewServer(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	base := "http://" + ln.Addr().String()
	st := &stack{url: base + "/mcp", base: base, idp: idp, audit: &syncBuffer{}}
	v, err := auth.NewJWTValidator(auth.JWTConfig{Issuer: idp.Issuer(), Audience: st.url})
	require.NoError(t, err)
	res, err := tenancy.New(tenancy.Config{})
	require.NoError(t, err)
	sink, err := audit.NewJSONSink(st.audit)
	require.NoError(t, err)
	st.rec, err = audit.New(audit.Config{Sink: sink})
	require.NoError(t, err)
	c := Config{
		Resource:             st.url,
		AuthorizationServers: []string{idp.Issuer()},
		Validator:            v,
		Policy:               mediationPolicy(t),
		Tenancy:              res,
		Audit:                st.rec,
		HTTPOptions:          httpOpts,
	}
	if cfg != nil {
		cfg(&c)
	}
	st.guard, err = New(c)
	require.NoError(t, err)
	srv := mediationServer(st.guard.ServerOptions()...)
	if build != nil {
		build(st.guard, srv)
	}
	hs := &http.Server{Handler: st.guard.Handler(srv), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	t.Cleanup(func() { _ = hs.Close(); _ = st.rec.Close() })
	return st
}

// connect returns an initialized mcp-go client in the given era.
func (s *stack) connect(t *testing.T, token, era string) *client.Client {
	t.Helper()
	c, err := eraClient(t, s.url, token, era)
	require.NoError(t, err)
	return c
}

func readResource(c *client.Client, uri string) (string, error) {
	res, err := c.ReadResource(context.Background(), mcp.ReadResourceRequest{Params: mcp.ReadResourceParams{URI: uri}})
	if err != nil {
		return "", err
	}
	if len(res.Contents) == 0 {
		return "", nil
	}
	tc, _ := res.Contents[0].(mcp.TextResourceContents)
	return tc.Text, nil
}

// TestStackResourcePercentEncoding: notes://priv%61te/keys is what the
// notes://private/ rule reserves for notes:admin once mcp-go decodes the
// template variable; a notes:read caller is refused it (issue 14.3).
func TestStackResourcePercentEncoding(t *testing.T) {
	st := newMediationStack(t, nil)
	reader := st.token(t, map[string]any{"sub": "bob", "scope": "notes:read"})
	for _, era := range eras {
		t.Run(era, func(t *testing.T) {
			c := st.connect(t, reader, era)
			got, err := readResource(c, "notes://public/readme")
			require.NoError(t, err)
			assert.Equal(t, "note public/readme", got)
			for _, uri := range []string{"notes://private/keys", "notes://priv%61te/keys", "notes://%70rivate/keys", "notes://public/%2e%2e/private/keys"} {
				got, err := readResource(c, uri)
				assert.Error(t, err, uri)
				assert.NotContains(t, got, "private", uri)
			}
		})
	}
}

// postRPC posts one raw JSON-RPC message in era: with the session of c for
// 2025-11-25, stateless (the _meta members added to params) for 2026-07-28.
func postRPC(t *testing.T, st *stack, token, era, sid, method, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, st.url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set(mcp.HeaderProtocolVersion, era)
	if era == mcp.ProtocolVersion20260728 {
		req.Header.Set(mcp.HeaderMethod, method)
	} else if sid != "" {
		req.Header.Set("Mcp-Session-Id", sid)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func rpcBody(era, method string) string {
	meta := ""
	if era == mcp.ProtocolVersion20260728 {
		meta = `"_meta":{"` + mcp.MetaKeyProtocolVersion + `":"` + era + `","` + mcp.MetaKeyClientInfo + `":{"name":"t","version":"1"},"` +
			mcp.MetaKeyClientCapabilities + `":{}}`
	}
	return `{"jsonrpc":"2.0","id":7,"method":"` + method + `","params":{` + meta + `}}`
}

// TestStackMethodDefaultDeny: a method no client may send — unknown, or one
// only servers send — is answered -32601 at the edge and audited; a batch is
// refused whole (issue 14.1).
func TestStackMethodDefaultDeny(t *testing.T) {
	st := newMediationStack(t, nil, server.WithStateful(true))
	tok := st.token(t, map[string]any{"sub": "bob", "scope": "notes:read notes:admin"})
	for _, era := range eras {
		t.Run(era, func(t *testing.T) {
			sid := ""
			if era == mcp.ProtocolVersion20251125 {
				sid = st.connect(t, tok, era).GetSessionId()
				require.NotEmpty(t, sid)
			}
			for _, method := range []string{"future/method", "sampling/createMessage", "notifications/resources/updated", "Tools/call"} {
				status, body := postRPC(t, st, tok, era, sid, method, rpcBody(era, method))
				want := http.StatusOK
				if era == mcp.ProtocolVersion20260728 {
					want = http.StatusNotFound
				}
				assert.Equal(t, want, status, method)
				assert.JSONEq(t, `{"jsonrpc":"2.0","id":7,"error":{"code":-32601,"message":"method not found"}}`, body, method)
			}
			// A batch whose first element is harmless cannot carry a second.
			batch := `[` + rpcBody(era, "ping") + `,` + rpcBody(era, "future/method") + `]`
			status, body := postRPC(t, st, tok, era, sid, "ping", batch)
			assert.Equal(t, http.StatusBadRequest, status)
			assert.Contains(t, body, "batches are not supported")
			// Methods on the table still work.
			status, body = postRPC(t, st, tok, era, sid, "prompts/list", rpcBody(era, "prompts/list"))
			assert.Equal(t, http.StatusOK, status, body)
			assert.Contains(t, body, `"result"`)
		})
	}
	require.NoError(t, st.rec.Close())
	out := st.audit.String()
	assert.Equal(t, 2*4, strings.Count(out, `"reason":"method_not_found"`), out)
	assert.Contains(t, out, `"reason":"jsonrpc_batch"`)
	assert.NotContains(t, out, tok)
}

func complete(c *client.Client, ref any) ([]string, error) {
	res, err := c.Complete(context.Background(), mcp.CompleteRequest{Params: mcp.CompleteParams{
		Ref: ref, Argument: mcp.CompleteArgument{Name: "key", Value: ""},
	}})
	if err != nil {
		return nil, err
	}
	return res.Completion.Values, nil
}

// TestStackCompletionMediated: completion/complete is decided by the rule of
// the prompt or resource it refers to (issue 14.4).
func TestStackCompletionMediated(t *testing.T) {
	st := newMediationStack(t, nil)
	reader := st.token(t, map[string]any{"sub": "bob", "scope": "notes:read"})
	for _, era := range eras {
		t.Run(era, func(t *testing.T) {
			c := st.connect(t, reader, era)
			got, err := complete(c, mcp.PromptReference{Type: "ref/prompt", Name: "notes_digest"})
			require.NoError(t, err)
			assert.Equal(t, []string{"secret-key"}, got)
			got, err = complete(c, mcp.ResourceReference{Type: "ref/resource", URI: "notes://{+key}"})
			require.NoError(t, err)
			assert.Equal(t, []string{"secret-key"}, got)

			for name, ref := range map[string]any{
				"denied prompt":         mcp.PromptReference{Type: "ref/prompt", Name: "admin_digest"},
				"unknown prompt":        mcp.PromptReference{Type: "ref/prompt", Name: "other"},
				"denied resource":       mcp.ResourceReference{Type: "ref/resource", URI: "notes://private/{key}"},
				"encoded denied":        mcp.ResourceReference{Type: "ref/resource", URI: "notes://priv%61te/{key}"},
				"resource with no rule": mcp.ResourceReference{Type: "ref/resource", URI: "file:///{path}"},
			} {
				got, err := complete(c, ref)
				assert.Error(t, err, name)
				assert.Empty(t, got, name)
			}
		})
	}
}

// TestStackSubscriptionMediated: resources/subscribe (2025-11-25) and
// subscriptions/listen (2026-07-28) are decided by the resource rules
// (issue 14.4).
func TestStackSubscriptionMediated(t *testing.T) {
	st := newMediationStack(t, nil, server.WithStateful(true))
	reader := st.token(t, map[string]any{"sub": "bob", "scope": "notes:read"})

	t.Run(mcp.ProtocolVersion20251125, func(t *testing.T) {
		c := st.connect(t, reader, mcp.ProtocolVersion20251125)
		sub := func(uri string) error {
			return c.Subscribe(context.Background(), mcp.SubscribeRequest{Params: mcp.SubscribeParams{URI: uri}})
		}
		require.NoError(t, sub("notes://public/readme"))
		for _, uri := range []string{"notes://private/keys", "notes://priv%61te/keys", "file:///etc/passwd"} {
			assert.Error(t, sub(uri), uri)
		}
		err := c.Unsubscribe(context.Background(), mcp.UnsubscribeRequest{Params: mcp.UnsubscribeParams{URI: "notes://private/keys"}})
		assert.Error(t, err)
	})
	t.Run(mcp.ProtocolVersion20260728, func(t *testing.T) {
		c := st.connect(t, reader, mcp.ProtocolVersion20260728)
		listen := func(uris ...string) error {
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			defer cancel()
			err := c.Listen(ctx, mcp.SubscriptionFilter{ResourceSubscriptions: uris})
			if ctx.Err() != nil {
				return nil // the stream stayed open: accepted
			}
			return err
		}
		require.NoError(t, listen("notes://public/readme"))
		for _, uri := range []string{"notes://private/keys", "notes://priv%61te/keys"} {
			err := listen("notes://public/readme", uri)
			assert.Error(t, err, uri)
		}
	})
}

// notifications collects the notifications/resources/updated URIs a client
// receives.
type notifications struct {
	mu   sync.Mutex
	uris []string
	got  chan struct{}
}

func watch(c *client.Client) *notifications {
	n := &notifications{got: make(chan struct{}, 16)}
	c.OnNotification(func(note mcp.JSONRPCNotification) {
		if note.Method != authz.MethodNotificationsUpdated {
			return
		}
		uri, _ := note.Params.AdditionalFields["uri"].(string)
		n.mu.Lock()
		n.uris = append(n.uris, uri)
		n.mu.Unlock()
		select {
		case n.got <- struct{}{}:
		default: // signals are pending already; never block the client
		}
	})
	return n
}

func (n *notifications) list() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.uris...)
}

// TestStackUpdateNotificationsFiltered: notifications/resources/updated
// reaches only the sessions subscribed to the resource whose principal may
// read it (issue 14.4), in both eras.
//
// Each era gets its own stack, so counts do not depend on what the other
// subtest left subscribed (mcp-go's client sends its closing DELETE without
// the Authorization header, so those sessions outlive their subtest). A
// 2026-07-28 listen stream is known to be registered when the server's own
// BeforeSubscriptionsListen hook, added after the registry's, has run; the
// test waits for that signal rather than polling NotifyUpdated, which used
// to race the second listener's registration.
func TestStackUpdateNotificationsFiltered(t *testing.T) {
	newSubsStack := func(t *testing.T) (*stack, *authz.Subscriptions, <-chan struct{}) {
		var subs *authz.Subscriptions
		listening := make(chan struct{}, 8)
		st := newMediationStack(t, func(g *Guard, s *server.MCPServer) {
			var err error
			subs, err = authz.NewSubscriptions(g.cfg.Policy, authz.SubscriptionsConfig{})
			require.NoError(t, err)
			for _, opt := range subs.ServerOptions() {
				opt(s)
			}
			s.GetHooks().AddBeforeSubscriptionsListen(func(context.Context, any, *mcp.SubscriptionsListenRequest) {
				listening <- struct{}{}
			})
		}, server.WithStateful(true))
		return st, subs, listening
	}
	ctx := context.Background()

	t.Run(mcp.ProtocolVersion20251125, func(t *testing.T) {
		st, subs, _ := newSubsStack(t)
		admin := st.token(t, map[string]any{"sub": "alice", "scope": "notes:read notes:admin"})
		reader := st.token(t, map[string]any{"sub": "bob", "scope": "notes:read"})
		connect := func(tok string) (*client.Client, *notifications) {
			c := st.client(t, tok, mcptransport.WithContinuousListening())
			n := watch(c)
			require.NoError(t, c.Start(ctx))
			_, err := c.Initialize(ctx, initReq(mcp.ProtocolVersion20251125))
			require.NoError(t, err)
			return c, n
		}
		a, an := connect(admin)
		b, bn := connect(reader)
		for _, uri := range []string{"notes://private/keys", "notes://public/readme"} {
			require.NoError(t, a.Subscribe(ctx, mcp.SubscribeRequest{Params: mcp.SubscribeParams{URI: uri}}))
		}
		require.NoError(t, b.Subscribe(ctx, mcp.SubscribeRequest{Params: mcp.SubscribeParams{URI: "notes://public/readme"}}))
		require.Error(t, b.Subscribe(ctx, mcp.SubscribeRequest{Params: mcp.SubscribeParams{URI: "notes://private/keys"}}))

		// The registry's answer is exact; delivery on a 2025-11-25 session
		// is at most once in mcp-go (a POST's notification forwarder that
		// outlives its request takes a queued notification and drops it),
		// so the update is repeated until it arrives.
		assert.Equal(t, 0, subs.NotifyUpdated("notes://public/other"), "nobody subscribed")
		deliver(t, an, "notes://private/keys", func() int { return subs.NotifyUpdated("notes://private/keys") }, 1)
		deliver(t, bn, "notes://public/readme", func() int { return subs.NotifyUpdated("notes://public/readme") }, 2)
		deliver(t, an, "notes://public/readme", func() int { return subs.NotifyUpdated("notes://public/readme") }, 2)
		assert.NotContains(t, bn.list(), "notes://private/keys", "bob never hears of the private note")
		require.NoError(t, a.Unsubscribe(ctx, mcp.UnsubscribeRequest{Params: mcp.UnsubscribeParams{URI: "notes://private/keys"}}))
		assert.Equal(t, 0, subs.NotifyUpdated("notes://private/keys"), "unsubscribed")
	})
	t.Run(mcp.ProtocolVersion20260728, func(t *testing.T) {
		st, subs, listening := newSubsStack(t)
		admin := st.token(t, map[string]any{"sub": "alice", "scope": "notes:read notes:admin"})
		reader := st.token(t, map[string]any{"sub": "bob", "scope": "notes:read"})
		listen := func(tok string, uris ...string) *notifications {
			c := st.connect(t, tok, mcp.ProtocolVersion20260728)
			n := watch(c)
			stop, err := c.ListenAsync(ctx, mcp.SubscriptionFilter{ResourceSubscriptions: uris}, nil)
			require.NoError(t, err)
			t.Cleanup(stop)
			select {
			case <-listening:
			case <-time.After(10 * time.Second):
				t.Fatal("the listen stream never reached the server")
			}
			return n
		}
		an := listen(admin, "notes://private/keys")
		bn := listen(reader, "notes://public/readme")
		assert.Equal(t, 1, subs.NotifyUpdated("notes://private/keys"))
		waitNote(t, an)
		assert.Equal(t, 1, subs.NotifyUpdated("notes://public/readme"), "bob's stream only")
		waitNote(t, bn)
		assert.Equal(t, []string{"notes://private/keys"}, an.list())
		assert.Equal(t, []string{"notes://public/readme"}, bn.list(), "bob never hears of the private note")
	})
}

// deliver calls send, which must queue the update of uri for want
// sessions, until n has received it.
func deliver(t *testing.T, n *notifications, uri string, send func() int, want int) {
	t.Helper()
	for range 20 {
		require.Equal(t, want, send())
		timeout := time.After(time.Second)
	wait:
		for {
			select {
			case <-n.got:
				if slices.Contains(n.list(), uri) {
					return
				}
			case <-timeout:
				break wait
			}
		}
	}
	t.Fatalf("%s: notification not delivered", uri)
}

func waitNote(t *testing.T, n *notifications) {
	t.Helper()
	select {
	case <-n.got:
	case <-time.After(5 * time.Second):
		t.Fatal("notification not delivered")
	}
}

// TestStackCancelNeedsSession: mcp-go keys a sessionless request's
// cancellation by its JSON-RPC id alone, so one stateless caller could
// cancel another's in-flight request; the edge refuses a sessionless
// notifications/cancelled. A 2026-07-28 cancel is served without a session
// even when it carries the caller's own (bound, so accepted) session ID, so
// it is refused too: before, bob's own session ID on a modern cancel
// cancelled alice's stateless request (found in review).
func TestStackCancelNeedsSession(t *testing.T) {
	cancelled := make(chan bool, 1)
	started := make(chan struct{}, 1)
	st := newMediationStack(t, func(_ *Guard, s *server.MCPServer) {
		s.AddTool(mcp.NewTool("wait", mcp.WithReadOnlyHintAnnotation(true)), func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			started <- struct{}{}
			select {
			case <-ctx.Done():
				cancelled <- true
			case <-time.After(time.Second):
				cancelled <- false
			}
			return mcp.NewToolResultText("done"), nil
		})
	})
	alice := st.token(t, map[string]any{"sub": "alice", "scope": "notes:read"})
	bob := st.token(t, map[string]any{"sub": "bob", "scope": "notes:read"})
	done := make(chan string, 1)
	go func() {
		status, _, body := rawCall(t, st.url, alice, "wait", "")
		done <- strconv.Itoa(status) + " " + body
	}()
	<-started
	era := mcp.ProtocolVersion20260728
	note := `{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1,"reason":"x","_meta":{"` +
		mcp.MetaKeyProtocolVersion + `":"` + era + `","` + mcp.MetaKeyClientInfo + `":{"name":"t","version":"1"},"` +
		mcp.MetaKeyClientCapabilities + `":{}}}}`
	status, body := postRPC(t, st, bob, era, "", "notifications/cancelled", note)
	assert.Equal(t, http.StatusBadRequest, status, body)
	bobSID := st.connect(t, bob, mcp.ProtocolVersion20251125).GetSessionId()
	require.NotEmpty(t, bobSID)
	for _, header := range []string{era, mcp.ProtocolVersion20251125, ""} {
		// The modern body with bob's own session ID, whichever version the
		// header names: mcp-go serves it without the session either way.
		req, err := http.NewRequest(http.MethodPost, st.url, strings.NewReader(note))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Authorization", "Bearer "+bob)
		req.Header.Set(mcp.HeaderSessionID, bobSID)
		if header != "" {
			req.Header.Set(mcp.HeaderProtocolVersion, header)
		}
		if header == era {
			req.Header.Set(mcp.HeaderMethod, "notifications/cancelled")
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode, "header %q: %s", header, b)
		assert.Contains(t, string(b), "needs a session", header)
	}
	// A legacy cancel in the caller's own session is still served.
	status, body = postRPC(t, st, bob, mcp.ProtocolVersion20251125, bobSID, "notifications/cancelled", `{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1}}`)
	assert.Equal(t, http.StatusAccepted, status, body)
	assert.False(t, <-cancelled, "bob cancelled alice's request")
	assert.Contains(t, <-done, `"done"`, "alice's call completes")
	status, _ = postRPC(t, st, bob, mcp.ProtocolVersion20251125, "", "notifications/cancelled", `{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1}}`)
	assert.Equal(t, http.StatusBadRequest, status)
}

// TestStackResourceListsFiltered: resources/list and
// resources/templates/list are narrowed to what the caller may read, like
// tools/list and prompts/list, in both eras (issue 14, leftovers item 1).
func TestStackResourceListsFiltered(t *testing.T) {
	st := newMediationStack(t, func(_ *Guard, s *server.MCPServer) {
		read := func(_ context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
			return []mcp.ResourceContents{mcp.TextResourceContents{URI: req.Params.URI, Text: "x"}}, nil
		}
		s.AddResource(mcp.NewResource("notes://public/readme", "readme"), read)
		s.AddResource(mcp.NewResource("notes://private/keys", "keys"), read)
		s.AddResourceTemplate(mcp.NewResourceTemplate("notes://private/{key}", "private note"), read)
	})
	reader := st.token(t, map[string]any{"sub": "bob", "scope": "notes:read"})
	admin := st.token(t, map[string]any{"sub": "alice", "scope": "notes:read notes:admin"})
	lists := func(t *testing.T, c *client.Client) (resources, templates []string) {
		rs, err := c.ListResources(context.Background(), mcp.ListResourcesRequest{})
		require.NoError(t, err)
		for _, r := range rs.Resources {
			resources = append(resources, r.URI)
		}
		ts, err := c.ListResourceTemplates(context.Background(), mcp.ListResourceTemplatesRequest{})
		require.NoError(t, err)
		for _, tm := range ts.ResourceTemplates {
			templates = append(templates, tm.URITemplate.Raw())
		}
		return resources, templates
	}
	for _, era := range eras {
		t.Run(era, func(t *testing.T) {
			res, tmpl := lists(t, st.connect(t, reader, era))
			assert.Equal(t, []string{"notes://public/readme"}, res)
			assert.Equal(t, []string{"notes://{+key}"}, tmpl)
			res, tmpl = lists(t, st.connect(t, admin, era))
			assert.ElementsMatch(t, []string{"notes://public/readme", "notes://private/keys"}, res)
			assert.ElementsMatch(t, []string{"notes://{+key}", "notes://private/{key}"}, tmpl)
		})
	}
}

// TestStackEdgeChecksLargeBodies: a body jsonrpc.Peek does not read (over
// its 4 MiB, with EdgeConfig.MaxBodyBytes larger) still meets the method
// table and the sessionless-cancel check at the edge. mcp-go runs no
// request hook for notifications, so before, a padded sessionless
// notifications/cancelled cancelled another caller's request and a padded
// refused notification reached mcp-go (issue 14 leftovers 5).
func TestStackEdgeChecksLargeBodies(t *testing.T) {
	cancelled := make(chan bool, 1)
	started := make(chan struct{}, 1)
	var custom atomic.Int32
	st := newMediationStackWith(t, func(c *Config) { c.Edge.MaxBodyBytes = 8 << 20 }, func(_ *Guard, s *server.MCPServer) {
		s.AddTool(mcp.NewTool("wait", mcp.WithReadOnlyHintAnnotation(true)), func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			started <- struct{}{}
			select {
			case <-ctx.Done():
				cancelled <- true
			case <-time.After(time.Second):
				cancelled <- false
			}
			return mcp.NewToolResultText("done"), nil
		})
		s.AddNotificationHandler("notifications/custom", func(context.Context, mcp.JSONRPCNotification) { custom.Add(1) })
	})
	alice := st.token(t, map[string]any{"sub": "alice", "scope": "notes:read"})
	bob := st.token(t, map[string]any{"sub": "bob", "scope": "notes:read"})
	pad := strings.Repeat("x", 4<<20) // past jsonrpc.MaxPeekBytes, under the 8 MiB limit
	era := mcp.ProtocolVersion20260728
	meta := `"_meta":{"` + mcp.MetaKeyProtocolVersion + `":"` + era + `","` + mcp.MetaKeyClientInfo + `":{"name":"t","version":"1"},"` +
		mcp.MetaKeyClientCapabilities + `":{}}`

	done := make(chan string, 1)
	go func() {
		status, _, body := rawCall(t, st.url, alice, "wait", "")
		done <- strconv.Itoa(status) + " " + body
	}()
	<-started
	for _, e := range eras {
		note := `{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1,"reason":"` + pad + `"`
		if e == era {
			note += `,` + meta
		}
		status, _ := postRPC(t, st, bob, e, "", "notifications/cancelled", note+`}}`)
		assert.Equal(t, http.StatusBadRequest, status, e)
	}
	assert.False(t, <-cancelled, "bob cancelled alice's request")
	assert.Contains(t, <-done, `"done"`, "alice's call completes")

	for _, e := range eras {
		sid := ""
		if e == mcp.ProtocolVersion20251125 {
			sid = st.connect(t, bob, e).GetSessionId()
			require.NotEmpty(t, sid)
		}
		for _, method := range []string{"notifications/custom", "sampling/createMessage"} {
			body := `{"jsonrpc":"2.0","method":"` + method + `","params":{"pad":"` + pad + `"`
			if e == era {
				body += `,` + meta
			}
			status, resp := postRPC(t, st, bob, e, sid, method, body+`}}`)
			assert.Equal(t, http.StatusBadRequest, status, e+" "+method)
			assert.Contains(t, resp, "method not found", e+" "+method)
		}
	}
	assert.Zero(t, custom.Load(), "a refused notification never reaches mcp-go")
}
