package authz_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/auth/authtest"
	"github.com/mcpguard/mcpguard/authz"
)

// e2eIdP issues bearer tokens for the end-to-end test and validates them.
type e2eIdP interface {
	validator(t *testing.T) auth.Validator
	token(t *testing.T, claims map[string]any) string
}

// e2eStack is the notes server behind auth.Middleware, served over
// Streamable HTTP on loopback.
func e2eStack(t *testing.T, idp e2eIdP) (*notesServer, string) {
	t.Helper()
	n := newNotesServer(t, notesPolicy(t, nil).ServerOptions()...)
	mux := http.NewServeMux()
	metaURL, err := auth.MountMetadata(mux, auth.MetadataConfig{
		Resource:             "http://127.0.0.1/mcp",
		AuthorizationServers: []string{"http://127.0.0.1/issuer"},
		ScopesSupported:      notesPolicy(t, nil).ScopesSupported(),
	})
	require.NoError(t, err)
	mw, err := auth.Middleware(idp.validator(t), auth.MiddlewareConfig{ResourceMetadataURL: metaURL})
	require.NoError(t, err)
	mux.Handle("/mcp", mw(server.NewStreamableHTTPServer(n.srv)))
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	return n, ts.URL + "/mcp"
}

func e2eClient(t *testing.T, url, token, version string) *client.Client {
	t.Helper()
	c, err := client.NewStreamableHttpClient(url, transport.WithHTTPHeaders(map[string]string{
		"Authorization": "Bearer " + token,
	}))
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	ctx := t.Context()
	require.NoError(t, c.Start(ctx))
	_, err = c.Initialize(ctx, mcp.InitializeRequest{Params: mcp.InitializeParams{
		ProtocolVersion: version,
		ClientInfo:      mcp.Implementation{Name: "e2e", Version: "1"},
	}})
	require.NoError(t, err)
	return c
}

func listTools(t *testing.T, c *client.Client) []string {
	t.Helper()
	res, err := c.ListTools(t.Context(), mcp.ListToolsRequest{})
	require.NoError(t, err)
	var names []string
	for _, tl := range res.Tools {
		names = append(names, tl.Name)
	}
	return names
}

func callTool(t *testing.T, c *client.Client, name string) (*mcp.CallToolResult, error) {
	t.Helper()
	req := mcp.CallToolRequest{}
	req.Params.Name = name
	return c.CallTool(t.Context(), req)
}

func runE2E(t *testing.T, idp e2eIdP) {
	n, url := e2eStack(t, idp)
	// A reader holds the scope; a writer gets both scopes from a realm
	// role, through the preset's role table. "openid" maps to nothing.
	readerTok := idp.token(t, map[string]any{"scope": "openid notes:read"})
	writerTok := idp.token(t, map[string]any{
		"scope":        "openid",
		"realm_access": map[string]any{"roles": []any{"offline_access", "notes-writer"}},
	})

	for _, version := range []string{mcp.LATEST_PROTOCOL_VERSION, mcp.LATEST_LEGACY_PROTOCOL_VERSION} {
		t.Run(version, func(t *testing.T) {
			t.Run("reader sees only read tools and is denied the write tool", func(t *testing.T) {
				c := e2eClient(t, url, readerTok, version)
				assert.Equal(t, []string{"list_notes"}, listTools(t, c))

				res, err := callTool(t, c, "list_notes")
				require.NoError(t, err)
				assert.False(t, res.IsError)

				before := n.count("write_note")
				res, err = callTool(t, c, "write_note")
				require.Error(t, err)
				assert.Nil(t, res)
				t.Logf("client error: %v", err)
				assert.Contains(t, err.Error(), "insufficient scope: this request requires notes:write")
				assert.NotContains(t, err.Error(), "not found")
				assert.NotContains(t, err.Error(), readerTok, "the token never appears in an error")
				assert.True(t, errors.Is(err, mcp.ErrInvalidRequest), "mcp-go reports the hook's answer as -32600: %v", err)
				assert.Equal(t, before, n.count("write_note"))
			})
			t.Run("writer calls both", func(t *testing.T) {
				c := e2eClient(t, url, writerTok, version)
				assert.Equal(t, []string{"list_notes", "write_note"}, listTools(t, c))
				for _, name := range []string{"list_notes", "write_note"} {
					res, err := callTool(t, c, name)
					require.NoError(t, err, name)
					require.Len(t, res.Content, 1)
					assert.Equal(t, name+" ok", res.Content[0].(mcp.TextContent).Text)
				}
			})
		})
	}

	t.Run("no token is a 401 challenge before mcp-go", func(t *testing.T) {
		resp, err := http.Post(url, "application/json", nil)
		require.NoError(t, err)
		_ = resp.Body.Close()
		assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
		assert.Contains(t, resp.Header.Get("WWW-Authenticate"), "resource_metadata=")
	})
}

// jwtIdP is authtest's loopback identity provider and auth's JWT
// validator, with the Keycloak preset mapping realm roles to scopes.
type jwtIdP struct {
	idp *authtest.Server
}

func (j jwtIdP) token(t *testing.T, claims map[string]any) string {
	t.Helper()
	return j.idp.MustMint(claims)
}

func (j jwtIdP) validator(t *testing.T) auth.Validator {
	t.Helper()
	mapper := must(t)(authz.Keycloak(authz.KeycloakConfig{
		ScopeMap:     map[string][]string{"notes:read": {"notes:read"}},
		RealmRoleMap: map[string][]string{"notes-writer": {"notes:read", "notes:write"}},
	}))
	v, err := auth.NewJWTValidator(auth.JWTConfig{
		Issuer:      j.idp.Issuer(),
		Audience:    j.idp.Audience(),
		ScopeMapper: mapper,
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = v.Close() })
	return v
}

func TestEndToEndHTTP(t *testing.T) {
	runE2E(t, jwtIdP{idp: authtest.NewServer(t)})
}
