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
		})
	}
}

// TestNotesSubscription: a 2025-11-25 session subscribed to a note hears
// of its changes; a subscriber of another tenant does not, and a caller who
// may not read a note cannot subscribe to it.
func TestNotesSubscription(t *testing.T) {
	in := start(t, nil)
	writer := in.token(t, map[string]any{"sub": "alice", "scope": "notes:read notes:write"})
	reader := in.token(t, map[string]any{"sub": "dave", "scope": "notes:read"})
	foreign := in.token(t, map[string]any{"sub": "bob", "tenant_id": "globex", "scope": "notes:read"})
	ctx := context.Background()

	type listener struct {
		mu   sync.Mutex
		uris []string
		got  chan struct{}
	}
	listen := func(tok, uri string) (*listener, error) {
		l := &listener{got: make(chan struct{}, 8)}
		c := in.clientIn(t, tok, mcp.ProtocolVersion20251125, mcptransport.WithContinuousListening())
		c.OnNotification(func(n mcp.JSONRPCNotification) {
			if n.Method != mcp.MethodNotificationResourceUpdated {
				return
			}
			u, _ := n.Params.AdditionalFields["uri"].(string)
			l.mu.Lock()
			l.uris = append(l.uris, u)
			l.mu.Unlock()
			l.got <- struct{}{}
		})
		return l, c.Subscribe(ctx, mcp.SubscribeRequest{Params: mcp.SubscribeParams{URI: uri}})
	}
	mine, err := listen(reader, "notes://team/plan")
	require.NoError(t, err)
	theirs, err := listen(foreign, "notes://team/plan")
	require.NoError(t, err)
	admin, err := listen(in.token(t, map[string]any{"sub": "root", "scope": "notes:read notes:admin"}), "notes://private/keys")
	require.NoError(t, err)
	_, err = listen(reader, "notes://private/keys")
	assert.Error(t, err, "a subscription to a note the caller may not read is refused")
	time.Sleep(200 * time.Millisecond) // let the GET streams open

	for _, k := range []string{"private/keys", "team/plan"} {
		_, isErr := in.toolText(t, writer, "notes_write", map[string]any{"key": k, "text": "v2"})
		require.False(t, isErr)
	}
	select {
	case <-mine.got:
	case <-time.After(5 * time.Second):
		t.Fatal("the subscriber was not notified")
	}
	time.Sleep(200 * time.Millisecond)
	mine.mu.Lock()
	assert.Equal(t, []string{"notes://team/plan"}, mine.uris)
	mine.mu.Unlock()
	assert.Empty(t, theirs.got, "a subscriber of another tenant hears nothing")
	select {
	case <-admin.got:
	case <-time.After(5 * time.Second):
		t.Fatal("the admin subscriber of a private note was not notified")
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
