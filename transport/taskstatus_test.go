package transport

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	mcptransport "github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/authz"
	"github.com/mcpguard/mcpguard/tenancy"
)

// statusListener records the notifications/tasks/status a 2025-11-25
// session's GET stream receives.
type statusListener struct {
	mu   sync.Mutex
	seen []string
}

func (l *statusListener) add(n mcp.JSONRPCNotification) {
	if n.Method != mcp.MethodNotificationTasksStatus {
		return
	}
	id, _ := n.Params.AdditionalFields["taskId"].(string)
	msg, _ := n.Params.AdditionalFields["statusMessage"].(string)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seen = append(l.seen, id+" "+msg)
}

func (l *statusListener) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.seen, "\n")
}

func listen(t *testing.T, st *stack, token string) *statusListener {
	t.Helper()
	l := &statusListener{}
	c := st.client(t, token, mcptransport.WithContinuousListening())
	c.OnNotification(l.add)
	require.NoError(t, c.Start(context.Background()))
	_, err := c.Initialize(context.Background(), initReq(mcp.ProtocolVersion20251125))
	require.NoError(t, err)
	return l
}

// TestStackTaskStatusToOwnerOnly: mcp-go announces every task's status to
// every 2025-11-25 session; before, alice's task ID and her failed tool's
// error text reached bob's GET stream and carol's in-flight request (found
// in review). Now they reach only alice's own session, for tasks she
// creates in either era, with mcp-go's sessions kept per GET stream (the
// default) or for their life (server.WithStateful).
func TestStackTaskStatusToOwnerOnly(t *testing.T) {
	for name, opts := range map[string][]server.StreamableHTTPOption{"default": nil, "stateful": {server.WithStateful(true)}} {
		t.Run(name, func(t *testing.T) { testTaskStatusToOwnerOnly(t, false, opts) })
	}
	t.Run("Guard.Wrap around an own handler", func(t *testing.T) { testTaskStatusToOwnerOnly(t, true, nil) })
}

func testTaskStatusToOwnerOnly(t *testing.T, wrap bool, httpOpts []server.StreamableHTTPOption) {
	const secret = "ALICE-SECRET diagnosis"
	release := make(chan struct{})
	waiting := make(chan struct{}, 4)
	var srv *server.MCPServer
	st := newTaskStackWith(t, nil, func(s *server.MCPServer) {
		srv = s
		s.AddTool(mcp.NewTool("diagnose", mcp.WithReadOnlyHintAnnotation(true), mcp.WithTaskSupport(mcp.TaskSupportOptional)),
			func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
				p, _ := auth.FromContext(ctx)
				return nil, errors.New(secret + " for " + p.Subject)
			})
		s.AddTool(mcp.NewTool("wait", mcp.WithReadOnlyHintAnnotation(true)),
			func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
				waiting <- struct{}{}
				select {
				case <-release:
				case <-ctx.Done():
				}
				return mcp.NewToolResultText("waited"), nil
			})
	}, httpOpts...)
	alice := st.token(t, map[string]any{"sub": "alice", "scope": "notes:read"})
	bob := st.token(t, map[string]any{"sub": "bob", "scope": "notes:read", "tenant_id": "globex"})
	carol := st.token(t, map[string]any{"sub": "carol", "scope": "notes:read"})
	if wrap {
		// The same Guard around the author's own mcp-go handler, on its own
		// listener; the tokens, minted for the first URL, still name the
		// resource.
		hs := httptest.NewServer(st.guard.Wrap(srv, server.NewStreamableHTTPServer(srv)))
		t.Cleanup(hs.Close)
		st.url = hs.URL + "/mcp"
	}

	aliceHears, bobHears := listen(t, st, alice), listen(t, st, bob)
	aliceSID := initSession(t, st, alice)
	// Carol has no GET stream: with server.WithStateful, a notification for
	// her session goes out on her request in flight, which mcp-go then
	// answers as an event stream (by default, mcp-go keeps no session for
	// her to notify).
	carolSID := initSession(t, st, carol)
	carolGot := make(chan string, 1)
	go func() {
		// The whole answer, every event of the stream.
		_, body := postRPC(t, st, carol, mcp.ProtocolVersion20251125, carolSID, "tools/call",
			`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"wait","arguments":{}}}`)
		carolGot <- body
	}()
	<-waiting

	var ids []string
	for _, c := range []struct{ sid, version string }{{"", mcp.ProtocolVersion20260728}, {aliceSID, mcp.ProtocolVersion20251125}} {
		status, msg := rpc(t, st.url, alice, c.sid, c.version, "tools/call", map[string]any{
			"name": "diagnose", "arguments": map[string]any{}, "task": map[string]any{"ttl": 60000},
		})
		require.Equal(t, http.StatusOK, status, msg)
		id := between(msg, `"taskId":"`, `"`)
		require.NotEmpty(t, id, msg)
		ids = append(ids, id)
		require.Eventually(t, func() bool {
			return strings.Contains(aliceHears.String(), id+" "+secret)
		}, 5*time.Second, 10*time.Millisecond, "the owner hears of her task (%s)", c.version)
	}
	time.Sleep(200 * time.Millisecond) // what bob's stream was sent has arrived
	close(release)
	carolMsg := <-carolGot
	assert.Contains(t, carolMsg, "waited")
	for _, id := range ids {
		assert.NotContains(t, bobHears.String(), id, "bob's stream hears nothing of alice's task")
		assert.NotContains(t, carolMsg, id, "nor does carol's request")
	}
	assert.NotContains(t, bobHears.String(), secret)
	assert.NotContains(t, carolMsg, secret)
}

// between returns the text of s after the first before and up to the next
// after, or "".
func between(s, before, after string) string {
	_, rest, ok := strings.Cut(s, before)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(rest, after)
	return v
}

// statusStack is a taskBinding whose owner store knows task "mine" as the
// caller's.
func statusBinding(t *testing.T) (*taskBinding, context.Context) {
	t.Helper()
	b := newTaskBinding(TaskConfig{}, []byte("0123456789abcdef0123456789abcdef"))
	ctx := auth.NewContext(context.Background(), &auth.Principal{Issuer: "https://idp.example", Subject: "alice", Kind: auth.KindUser})
	ctx = tenancy.NewContext(ctx, "acme")
	require.NoError(t, b.owners.Bind(ctx, "mine", b.ownerOf(ctx), time.Now().Add(time.Hour)))
	return b, ctx
}

func statusEvent(id string) string {
	return `event: message` + "\n" + `data: {"jsonrpc":"2.0","method":"notifications/tasks/status","params":{"taskId":"` + id + `","status":"failed","statusMessage":"boom"}}` + "\n\n"
}

func TestStatusFilter(t *testing.T) {
	b, ctx := statusBinding(t)
	result := `event: message` + "\n" + `data: {"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"see \"notifications/tasks/status\""}]}}` + "\n\n"
	other := `event: message` + "\n" + `data: {"jsonrpc":"2.0","method":"notifications/progress","params":{"progress":1}}` + "\n\n"
	for _, tc := range []struct {
		name   string
		writes []string
		want   string
	}{
		{"own task", []string{statusEvent("mine")}, statusEvent("mine")},
		{"foreign task", []string{statusEvent("theirs")}, ""},
		{"unknown task", []string{statusEvent("")}, ""},
		{"other events pass", []string{other, result}, other + result},
		{"several events in one write", []string{other + statusEvent("theirs") + statusEvent("mine") + result}, other + statusEvent("mine") + result},
		{"id line written apart", []string{"id: 7\n", statusEvent("theirs"), "id: 8\n", other}, "id: 8\n" + other},
		{"event in pieces", []string{"event: message\n", "data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/tasks/status\",", "\"params\":{\"taskId\":\"theirs\"}}\n\n", other}, other},
		{"multi-line data", []string{"event: message\ndata: {\"method\":\"notifications/tasks/status\",\ndata: \"params\":{\"taskId\":\"mine\"}}\n\n"}, "event: message\ndata: {\"method\":\"notifications/tasks/status\",\ndata: \"params\":{\"taskId\":\"mine\"}}\n\n"},
		{"unreadable announcement dropped", []string{"event: message\ndata: {\"method\":\"notifications/tasks/status\",\n\n"}, ""},
		{"duplicate members: the last wins, as mcp-go's client reads it", []string{strings.Replace(statusEvent("mine"), `"taskId":"mine"`, `"taskId":"mine","taskId":"theirs"`, 1)}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			rec.Header().Set("Content-Type", "text/event-stream")
			f := statusFilter{tasks: b, ctx: ctx}
			f.start(rec.Header())
			require.True(t, f.on)
			for _, w := range tc.writes {
				n, err := f.write(rec, []byte(w))
				require.NoError(t, err)
				assert.Equal(t, len(w), n)
			}
			assert.Equal(t, tc.want, rec.Body.String())
		})
	}
	t.Run("an unended write past the bound is decided as it is", func(t *testing.T) {
		rec := httptest.NewRecorder()
		f := statusFilter{tasks: b, ctx: ctx, on: true}
		big := "data: " + strings.Repeat("x", maxHeldEvent)
		_, err := f.write(rec, []byte(big))
		require.NoError(t, err)
		assert.Equal(t, big, rec.Body.String())
		assert.Empty(t, f.held)
	})
	t.Run("JSON responses are not filtered", func(t *testing.T) {
		rec := httptest.NewRecorder()
		rec.Header().Set("Content-Type", "application/json")
		w := &statusFilterWriter{ResponseWriter: rec, f: statusFilter{tasks: b, ctx: ctx}}
		body := `{"jsonrpc":"2.0","id":1,"result":{"text":"notifications/tasks/status theirs"}}`
		_, err := io.WriteString(w, body)
		require.NoError(t, err)
		assert.Equal(t, body, rec.Body.String())
	})
	t.Run("a stream through the writer", func(t *testing.T) {
		rec := httptest.NewRecorder()
		rec.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
		w := &statusFilterWriter{ResponseWriter: rec, f: statusFilter{tasks: b, ctx: ctx}}
		w.WriteHeader(http.StatusOK)
		for _, ev := range []string{statusEvent("theirs"), other} {
			_, err := io.WriteString(w, ev)
			require.NoError(t, err)
			w.Flush()
		}
		assert.Equal(t, other, rec.Body.String())
		assert.True(t, rec.Flushed)
	})
}

// TestStatusFilterResourceUpdates: an update of a resource the stream's
// caller may read passes, any other is dropped, and so is every update when
// there is no policy to decide (fail closed).
func TestStatusFilterResourceUpdates(t *testing.T) {
	b, _ := statusBinding(t)
	ctx := auth.NewContext(context.Background(), &auth.Principal{Issuer: "https://idp.example", Subject: "alice", Kind: auth.KindUser, Scopes: []string{"notes:read"}})
	updated := func(uri string) string {
		return "event: message\n" + `data: {"jsonrpc":"2.0","method":"notifications/resources/updated","params":{"uri":"` + uri + `"}}` + "\n\n"
	}
	public, private := updated("notes://public/readme"), updated("notes://private/keys")
	for _, tc := range []struct {
		name   string
		policy *authz.Policy
		writes []string
		want   string
	}{
		{"readable passes", mediationPolicy(t), []string{public}, public},
		{"unreadable dropped", mediationPolicy(t), []string{private}, ""},
		{"in one write", mediationPolicy(t), []string{private + public + private}, public},
		{"no URI dropped", mediationPolicy(t), []string{updated("")}, ""},
		{"no policy drops all", nil, []string{public}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			f := statusFilter{tasks: b, policy: tc.policy, ctx: ctx, on: true}
			for _, w := range tc.writes {
				_, err := f.write(rec, []byte(w))
				require.NoError(t, err)
			}
			assert.Equal(t, tc.want, rec.Body.String())
		})
	}
}

func TestIsEventStream(t *testing.T) {
	for ct, want := range map[string]bool{
		"text/event-stream":                true,
		"Text/Event-Stream":                true,
		"text/event-stream; charset=utf-8": true,
		" text/event-stream ;x=y":          true,
		"text/event-streamx":               false,
		"application/json":                 false,
		"":                                 false,
		"text/event":                       false,
	} {
		assert.Equal(t, want, isEventStream(ct), "%q", ct)
	}
}

// An announcement may come before tools/call has bound the new task's
// owner: mayAnnounce waits, a little, for the binding.
func TestMayAnnounceWaitsForTheOwner(t *testing.T) {
	b, ctx := statusBinding(t)
	assert.True(t, b.mayAnnounce(ctx, "mine"))
	other := tenancy.NewContext(auth.NewContext(context.Background(), &auth.Principal{Issuer: "https://idp.example", Subject: "bob", Kind: auth.KindUser}), "acme")
	assert.False(t, b.mayAnnounce(other, "mine"), "a known owner's task is not announced to another")

	go func() {
		time.Sleep(10 * time.Millisecond)
		_ = b.owners.Bind(ctx, "late", b.ownerOf(ctx), time.Now().Add(time.Hour))
	}()
	assert.True(t, b.mayAnnounce(ctx, "late"), "the owner bound a moment later is announced its task")
	assert.False(t, b.mayAnnounce(ctx, "never"), "a task whose owner stays unknown is announced to no one")

	done, cancel := context.WithCancel(ctx)
	cancel()
	assert.False(t, b.mayAnnounce(done, "never"), "a closed stream stops waiting")
}
