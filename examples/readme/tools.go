package main

import (
	"context"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/tenancy"
)

// The server's own tools, as they were before mcpguard: they read the
// verified caller and tenant from the context.
var notesTools = []server.ServerTool{
	{Tool: mcp.NewTool("notes_read", mcp.WithReadOnlyHintAnnotation(true)), Handler: readNote},
	{Tool: mcp.NewTool("notes_write", mcp.WithReadOnlyHintAnnotation(false)), Handler: writeNote},
}

func readNote(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	p, _ := auth.FromContext(ctx)
	tenant, _ := tenancy.FromContext(ctx)
	return mcp.NewToolResultText("notes of " + p.Subject + " in " + tenant), nil
}

func writeNote(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	return mcp.NewToolResultText("written"), nil
}
