package transport

import (
	"context"
	"net"
	"net/http"
	"sync/atomic"
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
	"github.com/mcpguard/mcpguard/transport/ratelimit"
)

// newTaskToolStack is the full stack with task capabilities, mutate applied
// to its Config, and setup adding the tools.
func newTaskToolStack(t *testing.T, mutate func(*Config), setup func(*server.MCPServer)) *stack {
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
	}
	if mutate != nil {
		mutate(&cfg)
	}
	st.guard, err = New(cfg)
	require.NoError(t, err)
	opts := append([]server.ServerOption{server.WithTaskCapabilities(true, true, true)}, st.guard.ServerOptions()...)
	srv := server.NewMCPServer("notes", "1.0", opts...)
	setup(srv)
	hs := &http.Server{Handler: st.guard.Handler(srv), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	t.Cleanup(func() { _ = hs.Close(); _ = st.rec.Close() })
	return st
}

// TestStackTaskToolMediated: mcp-go runs a tool registered with
// AddTaskTool without its tool handler middlewares (executeTaskTool), so
// every layer ServerOptions installs as one — the tool budgets, the audit
// of the call, the policy's authoritative check and the requestState
// sealing — was skipped for it: a budget of one call an hour let it run
// on every call, and no call was audited (found in review). Such a tool is
// now hidden, from tools/list and from tools/call, in both eras; a tool
// registered with AddTool and mcp.WithTaskSupport, which mcp-go runs as a
// task through the middlewares, is budgeted and audited.
func TestStackTaskToolMediated(t *testing.T) {
	for _, version := range eras {
		t.Run(version, func(t *testing.T) {
			mem, err := ratelimit.NewMemory(ratelimit.MemoryConfig{})
			require.NoError(t, err)
			once := ratelimit.Budget{Rate: ratelimit.Limit{Events: 1, Period: time.Hour}}
			budgets, err := ratelimit.NewToolBudgets(ratelimit.ToolBudgetsConfig{Limiter: mem,
				Tools: map[string]ratelimit.Budget{"report": once, "digest": once}})
			require.NoError(t, err)
			var reports, digests atomic.Int32
			st := newTaskToolStack(t, func(c *Config) { c.ToolBudgets = budgets }, func(srv *server.MCPServer) {
				srv.AddTaskTool(mcp.NewTool("report", mcp.WithReadOnlyHintAnnotation(true), mcp.WithTaskSupport(mcp.TaskSupportRequired)),
					func(context.Context, mcp.CallToolRequest) (*mcp.CreateTaskResult, error) {
						reports.Add(1)
						return &mcp.CreateTaskResult{Content: []mcp.Content{mcp.NewTextContent("done")}}, nil
					})
				srv.AddTool(mcp.NewTool("digest", mcp.WithReadOnlyHintAnnotation(true), mcp.WithTaskSupport(mcp.TaskSupportOptional)),
					func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
						digests.Add(1)
						return mcp.NewToolResultText("digested"), nil
					})
			})
			tok := st.token(t, map[string]any{"sub": "alice", "scope": "notes:read notes:write"})
			sid := ""
			if version == mcp.ProtocolVersion20251125 {
				sid = initSession(t, st, tok)
			}
			call := func(name string) string {
				_, msg := rpc(t, st.url, tok, sid, version, "tools/call", map[string]any{
					"name": name, "arguments": map[string]any{}, "task": map[string]any{"ttl": 60000},
				})
				return msg
			}
			_, list := rpc(t, st.url, tok, sid, version, "tools/list", nil)
			assert.Contains(t, list, `"digest"`)
			assert.NotContains(t, list, `"report"`, "a tool the middlewares cannot reach is not listed")
			for range 2 {
				msg := call("report")
				assert.Contains(t, msg, `"error"`, msg)
				assert.NotContains(t, msg, `"taskId"`, msg)
			}
			require.Contains(t, call("digest"), `"taskId"`)
			call("digest")
			assert.Eventually(t, func() bool { return digests.Load() >= 1 }, 2*time.Second, 10*time.Millisecond)
			time.Sleep(100 * time.Millisecond)
			assert.Zero(t, reports.Load(), "the AddTaskTool handler never runs")
			assert.Equal(t, int32(1), digests.Load(), "the budget of one call an hour lets the handler run once")
			require.NoError(t, st.rec.Close())
			assert.Contains(t, st.audit.String(), `"tool":"digest"`, "the task call is audited")
		})
	}
}
