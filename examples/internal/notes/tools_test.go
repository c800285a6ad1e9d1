package notes

import (
	"context"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/tenancy"
)

func callTool(t *testing.T, srv *server.MCPServer, ctx context.Context, name string, args map[string]any) (string, bool) {
	t.Helper()
	tool := srv.GetTool(name)
	require.NotNil(t, tool, name)
	res, err := tool.Handler(ctx, mcp.CallToolRequest{Params: mcp.CallToolParams{Name: name, Arguments: args}})
	require.NoError(t, err)
	require.Len(t, res.Content, 1)
	return res.Content[0].(mcp.TextContent).Text, res.IsError
}

func TestTools(t *testing.T) {
	srv := server.NewMCPServer("notes", "1")
	AddTools(srv, NewStore(Limits{}))
	ctx := auth.NewContext(context.Background(), &auth.Principal{Subject: "alice", ClientID: "app", Scopes: []string{ScopeRead}})
	ctx = tenancy.NewContext(ctx, "acme")

	text, isErr := callTool(t, srv, ctx, "whoami", nil)
	assert.False(t, isErr)
	assert.Equal(t, `{"subject":"alice","tenant":"acme","client_id":"app","scopes":["notes:read"]}`, text)
	text, isErr = callTool(t, srv, context.Background(), "whoami", nil)
	assert.True(t, isErr)
	assert.Equal(t, "not authenticated", text)

	text, isErr = callTool(t, srv, ctx, "notes_write", map[string]any{"key": "k", "text": "hello"})
	assert.False(t, isErr, text)
	text, _ = callTool(t, srv, ctx, "notes_read", map[string]any{"key": "k"})
	assert.Equal(t, "hello", text)
	text, _ = callTool(t, srv, ctx, "notes_list", nil)
	assert.Equal(t, `["k"]`, text)
	text, isErr = callTool(t, srv, tenancy.NewContext(context.Background(), "globex"), "notes_read", map[string]any{"key": "k"})
	assert.True(t, isErr)
	assert.Equal(t, `no such note: "k"`, text)
	text, isErr = callTool(t, srv, context.Background(), "notes_list", nil)
	assert.True(t, isErr)
	assert.Equal(t, "this request has no tenant", text)

	// The annotations the policies key on.
	for name, readOnly := range map[string]bool{"whoami": true, "notes_read": true, "notes_list": true, "notes_write": false} {
		ro := srv.GetTool(name).Tool.Annotations.ReadOnlyHint
		require.NotNil(t, ro, name)
		assert.Equal(t, readOnly, *ro, name)
	}
}
