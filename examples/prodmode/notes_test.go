package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	mcptransport "github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// eras are the protocol versions a session client is tested in.
var eras = []string{mcp.ProtocolVersion20251125, mcp.ProtocolVersion20260728}

// clientIn is an initialized mcp-go client speaking version.
func (in *instance) clientIn(t *testing.T, token, version string, opts ...mcptransport.StreamableHTTPCOption) *client.Client {
	t.Helper()
	opts = append(opts, mcptransport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + token}))
	c, err := client.NewStreamableHttpClient(in.url, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	require.NoError(t, c.Start(context.Background())) // opens the GET stream once initialized
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = version
	init.Params.ClientInfo = mcp.Implementation{Name: "prodmode-test", Version: "1"}
	_, err = c.Initialize(context.Background(), init)
	require.NoError(t, err)
	return c
}

// rpc sends one stateless JSON-RPC request and decodes its answer.
func (in *instance) rpc(t *testing.T, token, method string, params map[string]any) (json.RawMessage, *mcp.JSONRPCErrorDetails) {
	t.Helper()
	if params == nil {
		params = map[string]any{}
	}
	params["_meta"] = map[string]any{
		mcp.MetaKeyProtocolVersion:    mcp.ProtocolVersion20260728,
		mcp.MetaKeyClientInfo:         map[string]any{"name": "prodmode-test", "version": "1"},
		mcp.MetaKeyClientCapabilities: map[string]any{},
	}
	b, err := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
	require.NoError(t, err)
	r := in.post(t, token, string(b), func(r *http.Request) {
		r.Header.Set(mcp.HeaderMethod, method)
		if name, ok := params["name"].(string); ok {
			r.Header.Set(mcp.HeaderName, name)
		}
	})
	require.Equal(t, http.StatusOK, r.status, r.body)
	var msg struct {
		Result json.RawMessage          `json:"result"`
		Error  *mcp.JSONRPCErrorDetails `json:"error"`
	}
	require.NoError(t, json.Unmarshal([]byte(sseData(r.body)), &msg), r.body)
	return msg.Result, msg.Error
}

func TestNotesSummary(t *testing.T) {
	in := start(t, nil)
	alice := in.token(t, map[string]any{"sub": "alice", "scope": "notes:read notes:write"})
	bob := in.token(t, map[string]any{"sub": "bob", "tenant_id": "globex", "scope": "notes:read"})
	for _, k := range []string{"b", "a/x"} {
		_, isErr := in.toolText(t, alice, "notes_write", map[string]any{"key": k, "text": "v"})
		require.False(t, isErr)
	}
	text, isErr := in.toolText(t, alice, "notes_summary", nil)
	require.False(t, isErr, text)
	assert.JSONEq(t, `{"tenant":"acme","count":2,"keys":["a/x","b"]}`, text)
	text, isErr = in.toolText(t, bob, "notes_summary", nil)
	require.False(t, isErr, text)
	assert.JSONEq(t, `{"tenant":"globex","count":0,"keys":[]}`, text, "another tenant sees only its own notes")
	noScope := in.token(t, map[string]any{"sub": "carol"})
	assert.Equal(t, http.StatusForbidden, in.call(t, noScope, "notes_summary", nil).status)

	t.Run("as a task", func(t *testing.T) {
		// In a 2025-11-25 session: tools/call with a task, tasks/get until
		// completed, then tasks/result.
		sid := in.clientIn(t, alice, mcp.ProtocolVersion20251125).GetSessionId()
		require.NotEmpty(t, sid)
		rpc := func(method string, params map[string]any) json.RawMessage {
			b, err := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 7, "method": method, "params": params})
			require.NoError(t, err)
			r := in.post(t, alice, string(b), func(r *http.Request) {
				r.Header.Set("Mcp-Session-Id", sid)
				r.Header.Set(mcp.HeaderProtocolVersion, mcp.ProtocolVersion20251125)
			})
			require.Equal(t, http.StatusOK, r.status, r.body)
			var msg struct {
				Result json.RawMessage          `json:"result"`
				Error  *mcp.JSONRPCErrorDetails `json:"error"`
			}
			require.NoError(t, json.Unmarshal([]byte(responseData(r.body)), &msg), r.body)
			require.Nil(t, msg.Error, r.body)
			return msg.Result
		}
		res := rpc("tools/call", map[string]any{"name": "notes_summary", "arguments": map[string]any{}, "task": map[string]any{"ttl": 60000}})
		var created mcp.CreateTaskResult
		require.NoError(t, json.Unmarshal(res, &created), string(res))
		require.NotEmpty(t, created.Task.TaskId, string(res))
		deadline := time.Now().Add(time.Second)
		for {
			var got mcp.GetTaskResult
			res = rpc("tasks/get", map[string]any{"taskId": created.Task.TaskId})
			require.NoError(t, json.Unmarshal(res, &got))
			if got.Status == mcp.TaskStatusCompleted {
				break
			}
			require.True(t, time.Now().Before(deadline), "the task did not complete within a second: %s", res)
			time.Sleep(20 * time.Millisecond)
		}
		res = rpc("tasks/result", map[string]any{"taskId": created.Task.TaskId})
		result, err := mcp.ParseCallToolResult(&res)
		require.NoError(t, err, string(res))
		require.Len(t, result.Content, 1, string(res))
		assert.JSONEq(t, `{"tenant":"acme","count":2,"keys":["a/x","b"]}`, result.Content[0].(mcp.TextContent).Text)
	})
}

func TestNotesCapabilities(t *testing.T) {
	in := start(t, nil)
	tok := in.token(t, map[string]any{"scope": "notes:read"})
	c, err := client.NewStreamableHttpClient(in.url, mcptransport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + tok}))
	require.NoError(t, err)
	defer c.Close()
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.ProtocolVersion20251125
	init.Params.ClientInfo = mcp.Implementation{Name: "prodmode-test", Version: "1"}
	res, err := c.Initialize(context.Background(), init)
	require.NoError(t, err)
	caps := res.Capabilities
	require.NotNil(t, caps.Tasks)
	assert.NotNil(t, caps.Tasks.List, "tasks/list")
	assert.NotNil(t, caps.Tasks.Cancel, "tasks/cancel")
	require.NotNil(t, caps.Tasks.Requests)
	require.NotNil(t, caps.Tasks.Requests.Tools)
	assert.NotNil(t, caps.Tasks.Requests.Tools.Call, "tool-call tasks")
	require.NotNil(t, caps.Resources)
	assert.True(t, caps.Resources.Subscribe)
	assert.NotNil(t, caps.Completions)
}

func TestNotesResource(t *testing.T) {
	in := start(t, nil)
	alice := in.token(t, map[string]any{"sub": "alice", "scope": "notes:read notes:write"})
	admin := in.token(t, map[string]any{"sub": "root", "scope": "notes:read notes:admin"})
	bob := in.token(t, map[string]any{"sub": "bob", "tenant_id": "globex", "scope": "notes:read"})
	for k, v := range map[string]string{"team/plan": "ship it", "private/keys": "s3cret"} {
		_, isErr := in.toolText(t, alice, "notes_write", map[string]any{"key": k, "text": v})
		require.False(t, isErr)
	}
	read := func(t *testing.T, c *client.Client, uri string) (string, error) {
		res, err := c.ReadResource(context.Background(), mcp.ReadResourceRequest{Params: mcp.ReadResourceParams{URI: uri}})
		if err != nil {
			return "", err
		}
		require.Len(t, res.Contents, 1)
		return res.Contents[0].(mcp.TextResourceContents).Text, nil
	}
	for _, era := range eras {
		t.Run(era, func(t *testing.T) {
			a := in.clientIn(t, alice, era)
			got, err := read(t, a, "notes://team/plan")
			require.NoError(t, err)
			assert.Equal(t, "ship it", got, "a key with '/'")
			_, err = read(t, a, "notes://private/keys")
			assert.Error(t, err, "notes://private/ needs notes:admin")
			got, err = read(t, in.clientIn(t, admin, era), "notes://private/keys")
			require.NoError(t, err)
			assert.Equal(t, "s3cret", got)
			_, err = read(t, in.clientIn(t, bob, era), "notes://team/plan")
			assert.Error(t, err, "another tenant's note is not found")
			// The same note through notes_read: notes:admin too.
			readTool := func(c *client.Client) (*mcp.CallToolResult, error) {
				return c.CallTool(context.Background(), mcp.CallToolRequest{Params: mcp.CallToolParams{Name: "notes_read", Arguments: map[string]any{"key": "private/keys"}}})
			}
			res, err := readTool(a)
			if err == nil {
				assert.True(t, res.IsError, "notes_read of a private note needs notes:admin")
				require.NotEmpty(t, res.Content)
				assert.NotContains(t, res.Content[0].(mcp.TextContent).Text, "s3cret")
			}
			res, err = readTool(in.clientIn(t, admin, era))
			require.NoError(t, err)
			require.False(t, res.IsError)
			assert.Equal(t, "s3cret", res.Content[0].(mcp.TextContent).Text)
			tmpl, err := a.ListResourceTemplates(context.Background(), mcp.ListResourceTemplatesRequest{})
			require.NoError(t, err)
			require.Len(t, tmpl.ResourceTemplates, 1)
			assert.Equal(t, "notes://{+key}", tmpl.ResourceTemplates[0].URITemplate.Raw())
		})
	}
}

func TestNotesDigestPrompt(t *testing.T) {
	in := start(t, nil)
	alice := in.token(t, map[string]any{"sub": "alice", "scope": "notes:read notes:write"})
	bob := in.token(t, map[string]any{"sub": "bob", "tenant_id": "globex", "scope": "notes:read notes:write"})
	noScope := in.token(t, map[string]any{"sub": "carol"})
	for _, k := range []string{"plan", "plans/q3", "other"} {
		_, isErr := in.toolText(t, alice, "notes_write", map[string]any{"key": k, "text": "text of " + k})
		require.False(t, isErr)
	}
	_, isErr := in.toolText(t, bob, "notes_write", map[string]any{"key": "planet", "text": "globex's"})
	require.False(t, isErr)
	_, isErr = in.toolText(t, alice, "notes_write", map[string]any{"key": "private/keys", "text": "s3cret"})
	require.False(t, isErr)
	admin := in.token(t, map[string]any{"sub": "root", "scope": "notes:read notes:admin"})
	ctx := context.Background()
	complete := func(c *client.Client, prefix string) ([]string, error) {
		res, err := c.Complete(ctx, mcp.CompleteRequest{Params: mcp.CompleteParams{
			Ref:      mcp.PromptReference{Type: "ref/prompt", Name: "notes_digest"},
			Argument: mcp.CompleteArgument{Name: "key", Value: prefix},
		}})
		if err != nil {
			return nil, err
		}
		return res.Completion.Values, nil
	}
	for _, era := range eras {
		t.Run(era, func(t *testing.T) {
			a := in.clientIn(t, alice, era)
			res, err := a.GetPrompt(ctx, mcp.GetPromptRequest{Params: mcp.GetPromptParams{Name: "notes_digest", Arguments: map[string]string{"key": "plan"}}})
			require.NoError(t, err)
			require.Len(t, res.Messages, 1)
			assert.Contains(t, res.Messages[0].Content.(mcp.TextContent).Text, "text of plan")

			got, err := complete(a, "pla")
			require.NoError(t, err)
			assert.Equal(t, []string{"plan", "plans/q3"}, got, "only the caller's tenant's keys")
			got, err = complete(in.clientIn(t, bob, era), "pla")
			require.NoError(t, err)
			assert.Equal(t, []string{"planet"}, got)

			_, err = in.clientIn(t, noScope, era).GetPrompt(ctx, mcp.GetPromptRequest{Params: mcp.GetPromptParams{Name: "notes_digest", Arguments: map[string]string{"key": "plan"}}})
			assert.Error(t, err, "notes_digest needs notes:read")

			// A note under private/ needs notes:admin through the prompt as
			// through notes://private/…, and its key is not offered.
			digest := func(c *client.Client, key string) (string, error) {
				res, err := c.GetPrompt(ctx, mcp.GetPromptRequest{Params: mcp.GetPromptParams{Name: "notes_digest", Arguments: map[string]string{"key": key}}})
				if err != nil {
					return "", err
				}
				require.Len(t, res.Messages, 1)
				return res.Messages[0].Content.(mcp.TextContent).Text, nil
			}
			text, err := digest(a, "private/keys")
			assert.Error(t, err, "notes_digest of a private note needs notes:admin")
			assert.NotContains(t, text, "s3cret")
			got, err = complete(a, "priv")
			require.NoError(t, err)
			assert.Empty(t, got, "private keys are not offered to a notes:read caller")
			root := in.clientIn(t, admin, era)
			text, err = digest(root, "private/keys")
			require.NoError(t, err)
			assert.Contains(t, text, "s3cret")
			got, err = complete(root, "priv")
			require.NoError(t, err)
			assert.Equal(t, []string{"private/keys"}, got)
		})
	}
}

// noteSubscriber counts the notifications/resources/updated one client hears,
// by URI.
type noteSubscriber struct {
	mu   sync.Mutex
	uris map[string]int
	got  chan struct{}
}

func (s *noteSubscriber) count(uri string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.uris[uri]
}

// subscribe connects with tok in era and subscribes to uris: with
// resources/subscribe in a 2025-11-25 session (on its GET stream), with a
// subscriptions/listen stream in 2026-07-28. A refused subscription is
// the error.
func (in *instance) subscribe(t *testing.T, tok, era string, uris ...string) (*noteSubscriber, error) {
	t.Helper()
	var opts []mcptransport.StreamableHTTPCOption
	if era == mcp.ProtocolVersion20251125 {
		opts = append(opts, mcptransport.WithContinuousListening())
	}
	c := in.clientIn(t, tok, era, opts...)
	s := &noteSubscriber{uris: map[string]int{}, got: make(chan struct{}, 1)}
	c.OnNotification(func(n mcp.JSONRPCNotification) {
		if n.Method != mcp.MethodNotificationResourceUpdated {
			return
		}
		u, _ := n.Params.AdditionalFields["uri"].(string)
		s.mu.Lock()
		s.uris[u]++
		s.mu.Unlock()
		select {
		case s.got <- struct{}{}:
		default:
		}
	})
	ctx := context.Background()
	if era == mcp.ProtocolVersion20251125 {
		for _, uri := range uris {
			if err := c.Subscribe(ctx, mcp.SubscribeRequest{Params: mcp.SubscribeParams{URI: uri}}); err != nil {
				return s, err
			}
		}
		return s, nil
	}
	// An accepted listen stays open; it is known to be registered once a
	// notification arrives on it (see until).
	stop, err := c.ListenAsync(ctx, mcp.SubscriptionFilter{ResourceSubscriptions: uris}, nil)
	require.NoError(t, err)
	t.Cleanup(stop)
	return s, nil
}

// listenRefused opens a 2026-07-28 subscriptions/listen stream for uris
// and returns the error it ends with; one still open after 20 s counts as
// accepted (nil), which fails the caller's check.
func (in *instance) listenRefused(t *testing.T, tok string, uris ...string) error {
	t.Helper()
	c := in.clientIn(t, tok, mcp.ProtocolVersion20260728)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := c.Listen(ctx, mcp.SubscriptionFilter{ResourceSubscriptions: uris})
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// until writes the note key (through tok's tenant) until s has heard of
// uri at least n times. Each write is one update; an update can be missed
// while a 2026-07-28 stream is still being registered, or when mcp-go drops
// one taken by a POST's notification forwarder outliving its request
// (2025-11-25), so the write is repeated.
func (in *instance) until(t *testing.T, s *noteSubscriber, tok, key, uri string, n int) {
	t.Helper()
	for range 30 {
		_, isErr := in.toolText(t, tok, "notes_write", map[string]any{"key": key, "text": "v-" + uri})
		require.False(t, isErr)
		timeout := time.After(time.Second)
	wait:
		for s.count(uri) < n {
			select {
			case <-s.got:
			case <-timeout:
				break wait
			}
		}
		if s.count(uri) >= n {
			return
		}
	}
	t.Fatalf("%s: not notified", uri)
}

// TestNotesSubscription: in both eras, a noteSubscriber of a note hears of its
// changes; a noteSubscriber of another tenant's note of the same key hears
// nothing, a caller who may not read a note cannot subscribe to it, and a
// denied noteSubscriber hears nothing of it. "Nothing" is checked against a
// barrier: each negative noteSubscriber also follows a note of its own, and an
// update of that note written after the forbidden change arrives on the
// same ordered stream after the forbidden one would have.
func TestNotesSubscription(t *testing.T) {
	in := start(t, nil)
	writer := in.token(t, map[string]any{"sub": "alice", "scope": "notes:read notes:write"})
	reader := in.token(t, map[string]any{"sub": "dave", "scope": "notes:read"})
	admin := in.token(t, map[string]any{"sub": "root", "scope": "notes:read notes:admin"})
	foreign := in.token(t, map[string]any{"sub": "bob", "tenant_id": "globex", "scope": "notes:read"})
	foreignWriter := in.token(t, map[string]any{"sub": "eve", "tenant_id": "globex", "scope": "notes:read notes:write"})

	for _, era := range eras {
		t.Run(era, func(t *testing.T) {
			plan, keys := "notes://team/plan-"+era, "notes://private/keys-"+era
			barrier := "notes://team/barrier-" + era
			mine, err := in.subscribe(t, reader, era, plan)
			require.NoError(t, err)
			theirs, err := in.subscribe(t, foreign, era, plan, barrier)
			require.NoError(t, err)
			root, err := in.subscribe(t, admin, era, keys)
			require.NoError(t, err)
			var denied *noteSubscriber
			if era == mcp.ProtocolVersion20251125 {
				denied, err = in.subscribe(t, reader, era, barrier, keys)
				assert.Error(t, err, "a subscription to a note the caller may not read is refused")
			} else {
				assert.Error(t, in.listenRefused(t, reader, barrier, keys), "a listen naming a note the caller may not read is refused")
				denied, err = in.subscribe(t, reader, era, barrier)
				require.NoError(t, err)
			}
			key := func(uri string) string { return strings.TrimPrefix(uri, "notes://") }

			// Every negative noteSubscriber's stream is live.
			in.until(t, theirs, foreignWriter, key(barrier), barrier, 1)
			in.until(t, denied, writer, key(barrier), barrier, 1)
			// The changes (acme's plan and keys), heard by their readers.
			in.until(t, mine, writer, key(plan), plan, 1)
			in.until(t, root, writer, key(keys), keys, 1)
			// The barriers, written after the changes.
			in.until(t, theirs, foreignWriter, key(barrier), barrier, theirs.count(barrier)+1)
			in.until(t, denied, writer, key(barrier), barrier, denied.count(barrier)+1)

			assert.Zero(t, theirs.count(plan), "a noteSubscriber of another tenant hears nothing of acme's plan")
			assert.Zero(t, denied.count(keys), "a denied noteSubscriber hears nothing of the private note")
			assert.Zero(t, mine.count(keys), "a reader hears nothing of the private note")
		})
	}
}

// responseData is the JSON-RPC response in a body that may be an SSE stream
// carrying notifications before it.
func responseData(body string) string {
	for _, line := range strings.Split(body, "\n") {
		if d, ok := strings.CutPrefix(line, "data:"); ok && strings.Contains(d, `"id"`) {
			return strings.TrimSpace(d)
		}
	}
	return sseData(body)
}
