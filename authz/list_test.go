package authz_test

import (
	"context"
	"encoding/base64"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/authz"
)

// listServer serves resources and templates on both sides of the
// notes://private/ rule; limit, when positive, is mcp-go's page size.
func listServer(t *testing.T, limit int) *server.MCPServer {
	t.Helper()
	pl := notesPolicy(t, nil)
	opts := []server.ServerOption{server.WithResourceCapabilities(false, false)}
	if limit > 0 {
		opts = append(opts, server.WithPaginationLimit(limit))
	}
	srv := server.NewMCPServer("notes", "1", append(opts, pl.ServerOptions()...)...)
	read := func(context.Context, mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) { return nil, nil }
	// Names sort as a, b, c, ... so that pages are predictable.
	for _, r := range [][2]string{
		{"a-readme", "notes://public/readme"},
		{"b-keys", "notes://private/keys"},
		{"c-escrow", "notes://private/escrow"},
		{"d-todo", "notes://public/todo"},
		{"e-encoded", "notes://priv%61te/encoded"},
		{"f-other", "file:///etc/passwd"},
	} {
		srv.AddResource(mcp.NewResource(r[1], r[0]), read)
	}
	for _, tm := range [][2]string{
		{"a-any", "notes://{+key}"},              // notes://public/… is readable
		{"b-public", "notes://public/{key}"},     // readable
		{"c-private", "notes://private/{key}"},   // admin only
		{"d-encoded", "notes://priv%61te/{key}"}, // the same, encoded
		{"e-deep", "notes://private/x/{key}"},    // admin only
		{"f-file", "file:///{path}"},             // no rule
		{"g-expr", "{+uri}"},                     // could be notes://public/…
		{"h-fixed", "notes://private/fixed"},     // no expression
	} {
		srv.AddResourceTemplate(mcp.NewResourceTemplate(tm[1], tm[0]), read)
	}
	return srv
}

type listPage struct {
	names  []string
	cursor string
}

func listCall(t *testing.T, srv *server.MCPServer, p *auth.Principal, method, cursor string) listPage {
	t.Helper()
	ctx := context.Background()
	if p != nil {
		ctx = auth.NewContext(ctx, p)
	}
	params := `{}`
	if cursor != "" {
		params = `{"cursor":"` + cursor + `"}`
	}
	msg := srv.HandleMessage(ctx, []byte(`{"jsonrpc":"2.0","id":1,"method":"`+method+`","params":`+params+`}`))
	resp, ok := msg.(mcp.JSONRPCResponse)
	require.True(t, ok, "got %#v", msg)
	var out listPage
	switch res := resp.Result.(type) {
	case mcp.ListResourcesResult:
		for _, r := range res.Resources {
			out.names = append(out.names, r.Name)
		}
		out.cursor = string(res.NextCursor)
	case mcp.ListResourceTemplatesResult:
		for _, r := range res.ResourceTemplates {
			out.names = append(out.names, r.Name)
		}
		out.cursor = string(res.NextCursor)
	default:
		t.Fatalf("result %T", resp.Result)
	}
	return out
}

// TestResourceListsNarrowed: resources/list and resources/templates/list
// show only what the caller may read (issue 14 leftovers, item 1).
func TestResourceListsNarrowed(t *testing.T) {
	srv := listServer(t, 0)
	for _, tc := range []struct {
		name      string
		p         *auth.Principal
		resources []string
		templates []string
	}{
		{"reader", reader, []string{"a-readme", "d-todo"}, []string{"a-any", "b-public", "g-expr"}},
		// e-encoded and d-encoded are refused to everyone: their raw and
		// canonical forms fall under different rules.
		{"admin", admin, []string{"a-readme", "b-keys", "c-escrow", "d-todo"},
			[]string{"a-any", "b-public", "c-private", "e-deep", "g-expr", "h-fixed"}},
		{"no scopes", principal(), []string{"a-readme", "d-todo"}, []string{"a-any", "b-public", "g-expr"}},
		{"anonymous", nil, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := listCall(t, srv, tc.p, "resources/list", "")
			assert.Equal(t, tc.resources, got.names)
			got = listCall(t, srv, tc.p, "resources/templates/list", "")
			assert.Equal(t, tc.templates, got.names)
		})
	}
}

// TestResourceListsPagination: with a page size, the next cursor never
// names a hidden entry, and paging through reaches every listed entry.
func TestResourceListsPagination(t *testing.T) {
	srv := listServer(t, 2)
	cursorOf := func(name string) string { return base64.StdEncoding.EncodeToString([]byte(name)) }

	// mcp-go's first page is a-readme, b-keys, and b-keys is hidden: the
	// page is cut from the readable resources instead, a-readme and d-todo
	// (past the hidden b-keys and c-escrow, which narrowing mcp-go's page
	// would have lost), with the cursor at d-todo.
	p1 := listCall(t, srv, reader, "resources/list", "")
	assert.Equal(t, []string{"a-readme", "d-todo"}, p1.names)
	assert.Equal(t, cursorOf("d-todo"), p1.cursor)
	// After d-todo, mcp-go cuts e-encoded, f-other: nothing is readable.
	p2 := listCall(t, srv, reader, "resources/list", p1.cursor)
	assert.Empty(t, p2.names)
	assert.Empty(t, p2.cursor, "no cursor names a hidden entry")

	// An admin pages through everything with mcp-go's own cursors.
	var all []string
	cursor := ""
	for range 10 {
		pg := listCall(t, srv, admin, "resources/list", cursor)
		all = append(all, pg.names...)
		if cursor = pg.cursor; cursor == "" {
			break
		}
	}
	assert.Equal(t, []string{"a-readme", "b-keys", "c-escrow", "d-todo"}, all)

	// Templates: a-any, b-public listed in full keep mcp-go's cursor.
	t1 := listCall(t, srv, reader, "resources/templates/list", "")
	assert.Equal(t, []string{"a-any", "b-public"}, t1.names)
	assert.Equal(t, cursorOf("b-public"), t1.cursor)
	for cursor := t1.cursor; cursor != ""; {
		pg := listCall(t, srv, reader, "resources/templates/list", cursor)
		for _, n := range pg.names {
			assert.NotContains(t, []string{"c-private", "d-encoded", "e-deep", "f-file", "h-fixed"}, n)
		}
		if pg.cursor != "" {
			raw, err := base64.StdEncoding.DecodeString(pg.cursor)
			require.NoError(t, err)
			assert.Contains(t, pg.names, string(raw), "the cursor names a listed entry")
		}
		cursor = pg.cursor
	}
}

var _ = authz.MethodFiltered

// TestResourceListCursorOracle: with a page size, what a caller gets for
// any cursor, crafted or not, is what it would get if the resources it may
// not read did not exist. Before, mcp-go's page was cut first and narrowed
// after: a crafted cursor just before a guessed name got a shorter page
// when a hidden resource bore that name, which spells out hidden names
// one guess at a time (found in review).
func TestResourceListCursorOracle(t *testing.T) {
	read := func(context.Context, mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) { return nil, nil }
	build := func(hidden bool) *server.MCPServer {
		pl := notesPolicy(t, nil)
		srv := server.NewMCPServer("notes", "1", append([]server.ServerOption{
			server.WithResourceCapabilities(false, false), server.WithPaginationLimit(2),
		}, pl.ServerOptions()...)...)
		for _, name := range []string{"alpha", "beta", "tango", "uniform", "victor"} {
			srv.AddResource(mcp.NewResource("notes://public/"+name, name), read)
		}
		if hidden {
			for _, name := range []string{"secret-merger", "secret-payroll", "zulu-keys"} {
				srv.AddResource(mcp.NewResource("notes://private/"+name, name), read)
			}
		}
		return srv
	}
	with, without := build(true), build(false)
	for _, after := range []string{"", "a", "beta", "s", "secret-m", "secret-merger", "secret-n", "secret-p", "sf", "t", "victor", "z", "zz"} {
		cursor := ""
		if after != "" {
			cursor = base64.StdEncoding.EncodeToString([]byte(after))
		}
		want := listCall(t, without, reader, "resources/list", cursor)
		got := listCall(t, with, reader, "resources/list", cursor)
		assert.Equal(t, want, got, "cursor after %q", after)
	}
	// Paging through from the start lists every readable resource.
	var all []string
	for cursor, pages := "", 0; ; pages++ {
		require.Less(t, pages, 10, "the listing ends")
		pg := listCall(t, with, reader, "resources/list", cursor)
		all = append(all, pg.names...)
		if cursor = pg.cursor; cursor == "" {
			break
		}
	}
	assert.Equal(t, []string{"alpha", "beta", "tango", "uniform", "victor"}, all)
}
