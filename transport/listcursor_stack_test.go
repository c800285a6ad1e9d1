package transport

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestStackResourceListCursorOracle: with server.WithPaginationLimit, a
// resources/list answer, for any cursor the client crafts, is the answer it
// would get if the resources it may not read did not exist. Before, mcp-go
// cut the page first and the policy narrowed it after, so a cursor just
// before a guessed name got one entry fewer when a hidden resource bore that
// name (found in review), and a page of hidden resources ended the listing.
func TestStackResourceListCursorOracle(t *testing.T) {
	var srv *server.MCPServer
	st := newTaskStackCfg(t, func(c *Config) { c.Policy = mediationPolicy(t) },
		[]server.ServerOption{server.WithResourceCapabilities(false, false), server.WithPaginationLimit(2)},
		func(s *server.MCPServer) {
			srv = s
			read := func(_ context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
				return []mcp.ResourceContents{mcp.TextResourceContents{URI: req.Params.URI, Text: "x"}}, nil
			}
			for _, name := range []string{"alpha", "beta", "tango", "uniform", "victor"} {
				s.AddResource(mcp.NewResource("notes://public/"+name, name), read)
			}
			for _, name := range []string{"secret-merger", "secret-payroll", "secret-plan", "zulu-keys"} {
				s.AddResource(mcp.NewResource("notes://private/"+name, name), read)
			}
		})
	bob := st.token(t, map[string]any{"sub": "bob", "scope": "notes:read"})
	sid := initSession(t, st, bob)
	probes := []string{"", "a", "beta", "s", "secret-m", "secret-merger", "secret-n", "secret-p", "secret-pl", "sf", "t", "victor", "z"}
	type page struct {
		Resources []struct {
			Name string `json:"name"`
		} `json:"resources"`
		NextCursor string `json:"nextCursor"`
	}
	list := func(t *testing.T, era, after string) page {
		t.Helper()
		params := map[string]any{}
		if after != "" {
			params["cursor"] = base64.StdEncoding.EncodeToString([]byte(after))
		}
		s := ""
		if era == mcp.ProtocolVersion20251125 {
			s = sid
		}
		status, msg := rpc(t, st.url, bob, s, era, "resources/list", params)
		require.Equal(t, http.StatusOK, status, msg)
		var r struct {
			Result page `json:"result"`
		}
		require.NoError(t, json.Unmarshal([]byte(msg), &r), msg)
		return r.Result
	}
	withHidden := map[string]page{}
	for _, era := range eras {
		for _, after := range probes {
			withHidden[era+" "+after] = list(t, era, after)
		}
		// Paging from the start lists every readable resource.
		var names []string
		cursor := ""
		for pages := 0; ; pages++ {
			require.Less(t, pages, 10, "the listing ends")
			var pg page
			if cursor == "" {
				pg = list(t, era, "")
			} else {
				raw, err := base64.StdEncoding.DecodeString(cursor)
				require.NoError(t, err)
				pg = list(t, era, string(raw))
			}
			for _, r := range pg.Resources {
				names = append(names, r.Name)
			}
			if cursor = pg.NextCursor; cursor == "" {
				break
			}
		}
		assert.Equal(t, []string{"alpha", "beta", "tango", "uniform", "victor"}, names, era)
	}
	// The session's own resources are paged with the server's.
	read := func(context.Context, mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) { return nil, nil }
	inner := sid[:strings.LastIndexByte(sid, '.')] // mcp-go's ID, without session binding's tag
	require.NoError(t, srv.AddSessionResource(inner, mcp.NewResource("notes://public/omega", "omega"), read))
	require.NoError(t, srv.AddSessionResource(inner, mcp.NewResource("notes://private/secret-own", "secret-own"), read))
	var names []string
	for cursor, pages := "", 0; ; pages++ {
		require.Less(t, pages, 10, "the listing ends")
		params := map[string]any{}
		if cursor != "" {
			params["cursor"] = cursor
		}
		status, msg := rpc(t, st.url, bob, sid, mcp.ProtocolVersion20251125, "resources/list", params)
		require.Equal(t, http.StatusOK, status, msg)
		var r struct {
			Result page `json:"result"`
		}
		require.NoError(t, json.Unmarshal([]byte(msg), &r), msg)
		for _, res := range r.Result.Resources {
			names = append(names, res.Name)
		}
		if cursor = r.Result.NextCursor; cursor == "" {
			break
		}
	}
	assert.Equal(t, []string{"alpha", "beta", "omega", "tango", "uniform", "victor"}, names)
	require.NoError(t, srv.DeleteSessionResources(inner, "notes://public/omega", "notes://private/secret-own"))

	srv.DeleteResources("notes://private/secret-merger", "notes://private/secret-payroll", "notes://private/secret-plan", "notes://private/zulu-keys")
	for _, era := range eras {
		t.Run(era, func(t *testing.T) {
			for _, after := range probes {
				assert.Equal(t, list(t, era, after), withHidden[era+" "+after], "cursor after %q", after)
			}
		})
	}
}
