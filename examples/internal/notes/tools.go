package notes

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/tenancy"
)

// Identity is what whoami answers, as JSON.
type Identity struct {
	Subject  string   `json:"subject"`
	Tenant   string   `json:"tenant"`
	ClientID string   `json:"client_id"`
	Scopes   []string `json:"scopes"`
}

// AddTools registers the tools on srv. Their annotations say which are
// read-only, which is what a policy with ReadScope and WriteScope keys on:
//
//   - whoami: the caller's identity as JSON ({"subject","tenant","client_id","scopes"});
//   - notes_write {key, text}: store a note (not read-only: notes:write);
//   - notes_read {key}: read a note (read-only: notes:read);
//   - notes_list: the keys of the tenant's notes, as a JSON array (notes:read).
func AddTools(srv *server.MCPServer, st *Store) {
	srv.AddTool(mcp.NewTool("whoami",
		mcp.WithDescription("Who the server thinks you are: subject, tenant, OAuth client and scopes."),
		mcp.WithReadOnlyHintAnnotation(true),
	), whoami)
	srv.AddTool(mcp.NewTool("notes_write",
		mcp.WithDescription("Save a note under a key, replacing any note with that key."),
		mcp.WithString("key", mcp.Required(), mcp.MaxLength(DefaultMaxKeyBytes), mcp.Description("the note's name")),
		mcp.WithString("text", mcp.Required(), mcp.MaxLength(DefaultMaxTextBytes), mcp.Description("the note")),
		mcp.WithReadOnlyHintAnnotation(false),
		mcp.WithDestructiveHintAnnotation(true),
		mcp.WithIdempotentHintAnnotation(true),
		mcp.WithOpenWorldHintAnnotation(false),
	), st.writeTool)
	srv.AddTool(mcp.NewTool("notes_read",
		mcp.WithDescription("Read the note saved under a key."),
		mcp.WithString("key", mcp.Required(), mcp.MaxLength(DefaultMaxKeyBytes), mcp.Description("the note's name")),
		mcp.WithReadOnlyHintAnnotation(true),
		mcp.WithOpenWorldHintAnnotation(false),
	), st.readTool)
	srv.AddTool(mcp.NewTool("notes_list",
		mcp.WithDescription("List the keys of your tenant's notes."),
		mcp.WithReadOnlyHintAnnotation(true),
		mcp.WithOpenWorldHintAnnotation(false),
	), st.listTool)
}

func whoami(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	p, ok := auth.FromContext(ctx)
	if !ok {
		return mcp.NewToolResultError("not authenticated"), nil
	}
	id := Identity{Subject: p.Subject, ClientID: p.ClientID, Scopes: p.Scopes}
	id.Tenant, _ = tenancy.FromContext(ctx)
	if id.Scopes == nil {
		id.Scopes = []string{}
	}
	return jsonResult(id)
}

func (s *Store) writeTool(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	key, err := req.RequireString("key")
	if err != nil {
		return mcp.NewToolResultError("key: a string is required"), nil
	}
	text, err := req.RequireString("text")
	if err != nil {
		return mcp.NewToolResultError("text: a string is required"), nil
	}
	if err := s.Write(ctx, key, text); err != nil {
		return toolError(err), nil
	}
	return mcp.NewToolResultText("saved"), nil
}

func (s *Store) readTool(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	key, err := req.RequireString("key")
	if err != nil {
		return mcp.NewToolResultError("key: a string is required"), nil
	}
	text, err := s.Read(ctx, key)
	if err != nil {
		return toolError(err), nil
	}
	return mcp.NewToolResultText(text), nil
}

func (s *Store) listTool(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	keys, err := s.List(ctx)
	if err != nil {
		return toolError(err), nil
	}
	return jsonResult(keys)
}

// toolError turns a store error into a tool result the caller can read.
// The store's own errors are client-safe; anything else (a missing tenant)
// gets a fixed text.
func toolError(err error) *mcp.CallToolResult {
	for _, known := range []error{ErrNotFound, ErrBadKey, ErrTooLarge, ErrFull} {
		if errors.Is(err, known) {
			return mcp.NewToolResultError(err.Error())
		}
	}
	if errors.Is(err, tenancy.ErrNoTenant) {
		return mcp.NewToolResultError("this request has no tenant")
	}
	return mcp.NewToolResultError("the note store failed")
}

func jsonResult(v any) (*mcp.CallToolResult, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return mcp.NewToolResultText(string(b)), nil
}
