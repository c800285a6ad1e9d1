package transport

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/audit"
	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/auth/authtest"
	"github.com/mcpguard/mcpguard/tenancy"
)

// newTaskStack is newStack with task capabilities and a task-capable tool,
// "summary", that answers with the caller's subject and tenant.
func newTaskStack(t *testing.T, httpOpts ...server.StreamableHTTPOption) *stack {
	t.Helper()
	return newTaskStackWith(t, nil, nil, httpOpts...)
}

// newTaskStackWith is newTaskStack with more mcp-go server options and,
// when setup is not nil, more tools.
func newTaskStackWith(t *testing.T, srvOpts []server.ServerOption, setup func(*server.MCPServer), httpOpts ...server.StreamableHTTPOption) *stack {
	t.Helper()
	return newTaskStackCfg(t, nil, srvOpts, setup, httpOpts...)
}

// newTaskStackCfg is newTaskStackWith whose Config mutate may change first.
func newTaskStackCfg(t *testing.T, mutate func(*Config), srvOpts []server.ServerOption, setup func(*server.MCPServer), httpOpts ...server.StreamableHTTPOption) *stack {
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
	cfg := Config{
		Resource:             st.url,
		AuthorizationServers: []string{idp.Issuer()},
		Validator:            v,
		Policy:               notesPolicy(t),
		Tenancy:              res,
		Audit:                st.rec,
		HTTPOptions:          httpOpts,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	st.guard, err = New(cfg)
	require.NoError(t, err)
	opts := append([]server.ServerOption{server.WithTaskCapabilities(true, true, true)}, srvOpts...)
	srv := server.NewMCPServer("notes", "1.0", append(opts, st.guard.ServerOptions()...)...)
	srv.AddTool(mcp.NewTool("summary", mcp.WithReadOnlyHintAnnotation(true), mcp.WithTaskSupport(mcp.TaskSupportOptional)),
		func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			p, _ := auth.FromContext(ctx)
			tn, _ := tenancy.FromContext(ctx)
			return mcp.NewToolResultText("summary for " + p.Subject + "@" + tn), nil
		})
	if setup != nil {
		setup(srv)
	}
	hs := &http.Server{Handler: st.guard.Handler(srv), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	t.Cleanup(func() { _ = hs.Close(); _ = st.rec.Close() })
	return st
}

// rpc posts one JSON-RPC request in the given era (with sid when not
// empty) and returns the status and the JSON-RPC response message.
func rpc(t *testing.T, url, token, sid, version, method string, params map[string]any) (int, string) {
	t.Helper()
	if params == nil {
		params = map[string]any{}
	}
	if version == mcp.ProtocolVersion20260728 {
		params["_meta"] = map[string]any{
			mcp.MetaKeyProtocolVersion:    version,
			mcp.MetaKeyClientInfo:         map[string]any{"name": "t", "version": "1"},
			mcp.MetaKeyClientCapabilities: map[string]any{},
		}
	}
	body, err := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 9, "method": method, "params": params})
	require.NoError(t, err)
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(string(body)))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set(mcp.HeaderProtocolVersion, version)
	if version == mcp.ProtocolVersion20260728 {
		req.Header.Set(mcp.HeaderMethod, method)
		if name, ok := params["name"].(string); ok {
			req.Header.Set(mcp.HeaderName, name)
		}
	}
	if sid != "" {
		req.Header.Set("Mcp-Session-Id", sid)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		return resp.StatusCode, strings.TrimSpace(string(raw))
	}
	sc := bufio.NewScanner(strings.NewReader(string(raw)))
	var last string
	for sc.Scan() {
		if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			last = d
		}
	}
	return resp.StatusCode, last
}

// createTask runs "summary" as a task and returns the task ID.
func createTask(t *testing.T, st *stack, token, sid, version string) string {
	t.Helper()
	status, msg := rpc(t, st.url, token, sid, version, "tools/call", map[string]any{
		"name": "summary", "arguments": map[string]any{}, "task": map[string]any{"ttl": 60000},
	})
	require.Equal(t, http.StatusOK, status, msg)
	var r struct {
		Result struct {
			Task struct {
				TaskID string `json:"taskId"`
			} `json:"task"`
		} `json:"result"`
	}
	require.NoError(t, json.Unmarshal([]byte(msg), &r), msg)
	require.NotEmpty(t, r.Result.Task.TaskID, msg)
	return r.Result.Task.TaskID
}

// initSession opens a 2025-11-25 session for token and returns its ID
// ("" when the server is stateless).
func initSession(t *testing.T, st *stack, token string) string {
	t.Helper()
	c := st.client(t, token)
	_, err := c.Initialize(context.Background(), initReq(mcp.ProtocolVersion20251125))
	require.NoError(t, err)
	return c.GetSessionId()
}

// TestStackTasksBoundToOwner: a task is served only to the principal (and
// tenant) that created it; everyone else gets the unknown-task answer byte
// for byte, and tasks/list shows only the caller's tasks — for stateless
// requests of both eras, inside sessions, and across the two.
func TestStackTasksBoundToOwner(t *testing.T) {
	type ask struct {
		version string
		session bool
	}
	old := mcp.ProtocolVersion20251125
	modern := mcp.ProtocolVersion20260728
	cases := []struct {
		name     string
		httpOpts []server.StreamableHTTPOption
		create   ask
		asks     []ask
	}{
		{name: "stateless", create: ask{modern, false}, asks: []ask{{modern, false}}},
		{name: "session", create: ask{old, true}, asks: []ask{{old, true}}},
		{name: "session stateful", httpOpts: []server.StreamableHTTPOption{server.WithStateful(true)}, create: ask{old, true}, asks: []ask{{old, true}}},
		{name: "mixed session then stateless", create: ask{old, true}, asks: []ask{{modern, false}}},
		{name: "mixed stateless then session", create: ask{modern, false}, asks: []ask{{old, true}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := newTaskStack(t, c.httpOpts...)
			alice := st.token(t, map[string]any{"sub": "alice", "scope": "notes:read"})
			others := map[string]string{
				"other subject": st.token(t, map[string]any{"sub": "bob", "scope": "notes:read"}),
				"other tenant":  st.token(t, map[string]any{"sub": "alice", "scope": "notes:read", "tenant_id": "globex"}),
			}
			sid := ""
			if c.create.session {
				sid = initSession(t, st, alice)
				require.NotEmpty(t, sid)
			}
			id := createTask(t, st, alice, sid, c.create.version)

			for _, a := range c.asks {
				methods := []string{"tasks/get", "tasks/cancel"}
				if a.version == old {
					methods = []string{"tasks/get", "tasks/result", "tasks/list", "tasks/cancel"}
				}
				for who, tok := range others {
					osid := ""
					if a.session {
						osid = initSession(t, st, tok)
					}
					for _, m := range methods {
						t.Run(a.version+" "+who+" "+m, func(t *testing.T) {
							if m == "tasks/list" {
								status, msg := rpc(t, st.url, tok, osid, a.version, m, nil)
								require.Equal(t, http.StatusOK, status, msg)
								assert.NotContains(t, msg, id, "tasks/list shows only the caller's tasks")
								return
							}
							s1, foreign := rpc(t, st.url, tok, osid, a.version, m, map[string]any{"taskId": id})
							s2, unknown := rpc(t, st.url, tok, osid, a.version, m, map[string]any{"taskId": "00000000-0000-4000-8000-000000000000"})
							assert.Equal(t, s2, s1)
							assert.Equal(t, unknown, foreign, "a foreign task answers exactly as an unknown one")
							assert.Contains(t, foreign, `"error"`)
						})
					}
				}
			}

			// The owner is served in every way it asks.
			asks := append([]ask{c.create}, c.asks...)
			for _, a := range asks {
				osid := ""
				if a.session {
					if sid == "" {
						sid = initSession(t, st, alice)
					}
					osid = sid
				}
				status, msg := rpc(t, st.url, alice, osid, a.version, "tasks/get", map[string]any{"taskId": id})
				require.Equal(t, http.StatusOK, status, msg)
				assert.Contains(t, msg, `"result"`, a.version)
				assert.Contains(t, msg, id)
				if a.version == old {
					require.Eventually(t, func() bool {
						_, msg := rpc(t, st.url, alice, osid, a.version, "tasks/result", map[string]any{"taskId": id})
						return strings.Contains(msg, "summary for alice@acme")
					}, 5*time.Second, 20*time.Millisecond)
					_, msg = rpc(t, st.url, alice, osid, a.version, "tasks/list", nil)
					assert.Contains(t, msg, id, "the owner lists its task")
				}
			}
		})
	}
}

// TestStackTasksListCursor: with server.WithPaginationLimit, mcp-go's
// tasks/list cursor is the base64 of the page's last task ID. Before, the
// owner filter dropped foreign tasks from the page but left the cursor, so
// bob's tasks/list named alice's task (found in review). Paging through
// every page, bob now sees no ID of alice's, in the tasks or the cursors.
func TestStackTasksListCursor(t *testing.T) {
	st := newTaskStackWith(t, []server.ServerOption{server.WithPaginationLimit(1)}, nil)
	alice := st.token(t, map[string]any{"sub": "alice", "scope": "notes:read"})
	bob := st.token(t, map[string]any{"sub": "bob", "scope": "notes:read", "tenant_id": "globex"})
	var theirs []string
	for range 6 { // sessionless tasks, which mcp-go lists to every session
		theirs = append(theirs, createTask(t, st, alice, "", mcp.ProtocolVersion20260728))
	}
	sid := initSession(t, st, bob)
	mine := map[string]bool{}
	for range 2 {
		mine[createTask(t, st, bob, sid, mcp.ProtocolVersion20251125)] = true
	}
	cursor, pages := "", 0
	for {
		var params map[string]any
		if cursor != "" {
			params = map[string]any{"cursor": cursor}
		}
		status, msg := rpc(t, st.url, bob, sid, mcp.ProtocolVersion20251125, "tasks/list", params)
		require.Equal(t, http.StatusOK, status, msg)
		for _, id := range theirs {
			require.NotContains(t, msg, id, "page %d names alice's task", pages)
		}
		var r struct {
			Result struct {
				Tasks []struct {
					TaskID string `json:"taskId"`
				} `json:"tasks"`
				NextCursor string `json:"nextCursor"`
			} `json:"result"`
		}
		require.NoError(t, json.Unmarshal([]byte(msg), &r), msg)
		for _, tk := range r.Result.Tasks {
			assert.True(t, mine[tk.TaskID], "bob is listed only his own tasks")
		}
		if cursor = r.Result.NextCursor; cursor == "" {
			break
		}
		dec, err := base64.StdEncoding.DecodeString(cursor)
		require.NoError(t, err)
		assert.True(t, mine[string(dec)], "the cursor names one of bob's tasks")
		pages++
		require.Less(t, pages, 10, "the listing ends")
	}
	// Alice, who owns every sessionless task, pages through all of them.
	asid, seen := initSession(t, st, alice), 0
	for cursor = ""; ; {
		params := map[string]any{}
		if cursor != "" {
			params["cursor"] = cursor
		}
		_, msg := rpc(t, st.url, alice, asid, mcp.ProtocolVersion20251125, "tasks/list", params)
		for _, id := range theirs {
			if strings.Contains(msg, id) {
				seen++
			}
		}
		var r struct {
			Result struct {
				NextCursor string `json:"nextCursor"`
			} `json:"result"`
		}
		require.NoError(t, json.Unmarshal([]byte(msg), &r), msg)
		if cursor = r.Result.NextCursor; cursor == "" {
			break
		}
		require.Less(t, seen, 20, "the listing ends")
	}
	assert.Equal(t, len(theirs), seen, "alice lists all her tasks, page by page")
}

// TestStackTasksClient: the same through mcp-go's client API.
func TestStackTasksClient(t *testing.T) {
	for _, version := range eras {
		t.Run(version, func(t *testing.T) {
			st := newTaskStack(t)
			alice := st.token(t, map[string]any{"sub": "alice", "scope": "notes:read"})
			bob := st.token(t, map[string]any{"sub": "bob", "scope": "notes:read"})
			ctx := context.Background()
			ca, err := eraClient(t, st.url, alice, version)
			require.NoError(t, err)
			// In a session, the task is created in the client's own session
			// (mcp-go's session isolation then holds too).
			id := createTask(t, st, alice, ca.GetSessionId(), version)
			cb, err := eraClient(t, st.url, bob, version)
			require.NoError(t, err)

			got, err := ca.GetTask(ctx, mcp.GetTaskRequest{Params: mcp.GetTaskParams{TaskId: id}})
			require.NoError(t, err)
			assert.Equal(t, id, got.TaskId)
			_, err = cb.GetTask(ctx, mcp.GetTaskRequest{Params: mcp.GetTaskParams{TaskId: id}})
			require.Error(t, err)
			assert.Contains(t, err.Error(), "task not found")
			_, err = cb.CancelTask(ctx, mcp.CancelTaskRequest{Params: mcp.CancelTaskParams{TaskId: id}})
			require.Error(t, err)
			if version == mcp.ProtocolVersion20251125 {
				list, err := cb.ListTasks(ctx, mcp.ListTasksRequest{})
				require.NoError(t, err)
				assert.Empty(t, list.Tasks)
				list, err = ca.ListTasks(ctx, mcp.ListTasksRequest{})
				require.NoError(t, err)
				require.Len(t, list.Tasks, 1)
				assert.Equal(t, id, list.Tasks[0].TaskId)
				_, err = cb.TaskResult(ctx, mcp.TaskResultRequest{Params: mcp.TaskResultParams{TaskId: id}})
				require.Error(t, err)
			}
		})
	}
}

func TestMemoryTaskOwners(t *testing.T) {
	ctx := context.Background()
	now := time.Unix(1000, 0)
	m := &MemoryTaskOwners{Max: 2}
	require.NoError(t, m.Bind(ctx, "t1", "alice", now.Add(time.Minute)))
	require.NoError(t, m.Bind(ctx, "t2", "bob", now.Add(time.Minute)))
	require.NoError(t, m.Bind(ctx, "t3", "carol", now.Add(time.Minute)))
	assert.Equal(t, 2, m.Len(), "capped")
	_, ok, _ := m.Owner(ctx, "t1", now)
	assert.False(t, ok, "the oldest made room: its task is served to no one")
	o, ok, _ := m.Owner(ctx, "t3", now)
	assert.True(t, ok)
	assert.Equal(t, "carol", o)
	_, ok, _ = m.Owner(ctx, "t3", now.Add(time.Hour))
	assert.False(t, ok, "expired")
}

// TestTaskBindingKeepsAuthorHooks: the guard adds its hooks to the hooks
// the author set; it does not replace them.
func TestTaskBindingKeepsAuthorHooks(t *testing.T) {
	g, err := New(Config{Mode: ModeDev, Addr: "127.0.0.1:0", Policy: notesPolicy(t)})
	require.NoError(t, err)
	mine := &server.Hooks{}
	called := 0
	mine.AddAfterListTasks(func(context.Context, any, *mcp.ListTasksRequest, *mcp.ListTasksResult) { called++ })
	opts := append([]server.ServerOption{server.WithHooks(mine)}, g.ServerOptions()...)
	srv := server.NewMCPServer("x", "1", opts...)
	require.Same(t, mine, srv.GetHooks())
	assert.Len(t, mine.OnAfterListTasks, 2, "the author's hook and the guard's")
	assert.Len(t, mine.OnBeforeGetTask, 1)
}

// failingOwners is a TaskOwners whose backend is down.
type failingOwners struct{}

func (failingOwners) Bind(context.Context, string, string, time.Time) error { return assert.AnError }
func (failingOwners) Owner(context.Context, string, time.Time) (string, bool, error) {
	return "", false, assert.AnError
}

// TestStackTasksStoreFailsClosed: when the owner store fails, a task is
// served to no one, its creator included.
func TestStackTasksStoreFailsClosed(t *testing.T) {
	st := newTaskStack(t)
	st.guard.tasks.owners = failingOwners{}
	alice := st.token(t, map[string]any{"sub": "alice", "scope": "notes:read"})
	id := createTask(t, st, alice, "", mcp.ProtocolVersion20260728)
	_, msg := rpc(t, st.url, alice, "", mcp.ProtocolVersion20260728, "tasks/get", map[string]any{"taskId": id})
	assert.Contains(t, msg, "task not found")
}

func TestTaskOwnerKeptForTaskTTL(t *testing.T) {
	b := newTaskBinding(TaskConfig{TTL: time.Hour}, make([]byte, 32))
	day := int64(24 * time.Hour / time.Millisecond)
	huge := int64(1 << 62)
	assert.Equal(t, time.Hour, b.keepFor(mcp.Task{}))
	assert.Equal(t, 24*time.Hour, b.keepFor(mcp.Task{TTL: &day}))
	assert.Equal(t, 10*365*24*time.Hour, b.keepFor(mcp.Task{TTL: &huge}))
}

// TestStackForeignTaskAudited: a tasks/get, tasks/result or tasks/cancel
// naming another principal's task is answered as an unknown task, and the
// refusal is recorded as a denial, in both eras.
func TestStackForeignTaskAudited(t *testing.T) {
	for _, version := range []string{mcp.ProtocolVersion20251125, mcp.ProtocolVersion20260728} {
		t.Run(version, func(t *testing.T) {
			st := newTaskStack(t)
			alice := st.token(t, map[string]any{"sub": "alice", "scope": "notes:read"})
			bob := st.token(t, map[string]any{"sub": "bob", "scope": "notes:read"})
			asid, bsid := "", ""
			if version == mcp.ProtocolVersion20251125 {
				asid, bsid = initSession(t, st, alice), initSession(t, st, bob)
			}
			id := createTask(t, st, alice, asid, version)
			_, msg := rpc(t, st.url, bob, bsid, version, "tasks/get", map[string]any{"taskId": id})
			require.Contains(t, msg, `"error"`)
			require.NoError(t, st.rec.Close())
			denied := 0
			for _, e := range auditEvents(t, st) {
				if e["decision"] == "deny" && e["subject"] == "bob" {
					denied++
				}
			}
			assert.Equal(t, 1, denied, "bob's probe of alice's task is audited: %s", st.audit.String())
		})
	}
}
