package authz_test

import (
	"context"
	"fmt"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/authz"
)

// A notes server separates readers from writers by tool annotations,
// guards one tool with an explicit rule, and installs the policy into
// mcp-go. A reader lists only read-only tools and is told which scope a
// write tool needs.
func ExampleNew() {
	pl, err := authz.New(authz.Config{
		ReadScope:  "notes:read",
		WriteScope: "notes:write",
		ToolRules:  map[string]authz.Rule{"purge_notes": {AllOf: []string{"notes:admin"}}},
	})
	if err != nil {
		panic(err)
	}
	opts := append([]server.ServerOption{server.WithToolCapabilities(true)}, pl.ServerOptions()...)
	srv := server.NewMCPServer("notes", "1.0.0", opts...)
	ok := func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultText("ok"), nil
	}
	srv.AddTool(mcp.NewTool("list_notes", mcp.WithReadOnlyHintAnnotation(true)), ok)
	srv.AddTool(mcp.NewTool("write_note"), ok)
	srv.AddTool(mcp.NewTool("purge_notes"), ok)

	// auth.Middleware puts the validated principal in the request context.
	ctx := auth.NewContext(context.Background(), &auth.Principal{Subject: "alice", Scopes: []string{"notes:read"}})

	list := srv.HandleMessage(ctx, []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))
	for _, tool := range list.(mcp.JSONRPCResponse).Result.(mcp.ListToolsResult).Tools {
		fmt.Println("listed:", tool.Name)
	}
	call := srv.HandleMessage(ctx, []byte(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"write_note"}}`))
	fmt.Println("denied:", call.(mcp.JSONRPCError).Error.Message)
	fmt.Println("scopes_supported:", pl.ScopesSupported())
	// Output:
	// listed: list_notes
	// denied: insufficient scope: this request requires notes:write
	// scopes_supported: [notes:admin notes:read notes:write]
}

// The HTTP edge asks for a decision before mcp-go runs, and learns which
// scopes to put in an RFC 6750 insufficient_scope challenge.
func ExamplePolicy_Check() {
	pl, err := authz.New(authz.Config{
		ToolRules: map[string]authz.Rule{
			"export": {AllOf: []string{"notes:read"}, AnyOf: []string{"notes:export", "notes:admin"}},
		},
	})
	if err != nil {
		panic(err)
	}
	p := &auth.Principal{Subject: "alice", Scopes: []string{"openid"}}
	d := pl.Check(context.Background(), p, authz.MethodToolsCall, "export")
	fmt.Println(d.Allowed, d.Reason, d.Missing, d.AnyOf)
	fmt.Println(d.Err())

	d = pl.Check(context.Background(), p, authz.MethodToolsCall, "unlisted")
	fmt.Println(d.Allowed, d.Reason)
	// Output:
	// false insufficient_scope [notes:read] [notes:export notes:admin]
	// insufficient scope: this request requires notes:read and one of notes:export, notes:admin
	// false no_rule
}

// An Entra ID app-only token carries application permissions in "roles";
// the preset maps them, and delegated "scp" scopes, to the server's scopes.
func ExampleEntra() {
	mapper, err := authz.Entra(authz.PresetConfig{
		ScopeMap: map[string][]string{"Notes.Read": {"notes:read"}, "Notes.Write": {"notes:write"}},
		RoleMap:  map[string][]string{"Notes.ReadWrite.All": {"notes:read", "notes:write"}},
	})
	if err != nil {
		panic(err)
	}
	delegated := auth.NewClaims(map[string]any{"scp": "Notes.Read User.Read", "azp": "0c8a3e2b", "ver": "2.0"})
	appOnly := auth.NewClaims(map[string]any{"roles": []any{"Notes.ReadWrite.All"}, "azp": "9d2f6c1e", "ver": "2.0"})
	idToken := auth.NewClaims(map[string]any{"roles": []any{"Notes.ReadWrite.All"}, "nonce": "n-0S6", "ver": "2.0"})
	for _, c := range []auth.Claims{delegated, appOnly, idToken} {
		scopes, err := mapper.MapScopes(c)
		fmt.Println(scopes, err != nil)
	}
	// Output:
	// [notes:read] false
	// [notes:read notes:write] false
	// [] true
}

// Authors who prefer it state a tool's scopes where they register it.
func ExampleRequire() {
	srv := server.NewMCPServer("notes", "1.0.0", server.WithToolCapabilities(true))
	srv.AddTool(mcp.NewTool("write_note"), authz.Require("notes:write")(
		func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return mcp.NewToolResultText("written"), nil
		}))
	ctx := auth.NewContext(context.Background(), &auth.Principal{Subject: "bob", Scopes: []string{"notes:read"}})
	resp := srv.HandleMessage(ctx, []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"write_note"}}`))
	fmt.Println(resp.(mcp.JSONRPCError).Error.Message)
	// Output:
	// insufficient scope: this request requires notes:write
}
