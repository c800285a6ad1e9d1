package transport_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/auth/authtest"
	"github.com/mcpguard/mcpguard/authz"
	"github.com/mcpguard/mcpguard/tenancy"
	"github.com/mcpguard/mcpguard/transport"
)

// The common case, as in the README: Issuer, ToolScopes and TenantClaim
// build the validator, the policy and the tenant resolver; Close releases
// what the guard built. authtest stands in for the identity provider.
func Example() {
	idp, err := authtest.New(authtest.Config{})
	if err != nil {
		panic(err)
	}
	defer idp.Close()
	const resource = "http://127.0.0.1:8080/mcp"
	guard, err := transport.New(transport.Config{
		Resource:    resource,
		Issuer:      idp.Issuer(),
		ToolScopes:  map[string][]string{"notes_write": {"notes:write"}},
		TenantClaim: "org_id",
	})
	if err != nil {
		panic(err)
	}
	defer guard.Close()
	srv := server.NewMCPServer("notes", "1.0", guard.ServerOptions()...)
	srv.AddTool(mcp.NewTool("notes_write", mcp.WithString("text")),
		func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			t, _ := tenancy.FromContext(ctx)
			return mcp.NewToolResultText("saved for " + t), nil
		})
	handler := guard.Handler(srv)

	w := exampleCall(handler, resource, "")
	fmt.Println(w.Code)
	reader := idp.MustMint(map[string]any{"aud": resource, "org_id": "org_acme", "scope": "notes:read"})
	w = exampleCall(handler, resource, reader)
	fmt.Println(w.Code, w.Header().Get("WWW-Authenticate"))
	writer := idp.MustMint(map[string]any{"aud": resource, "org_id": "org_acme", "scope": "notes:write"})
	w = exampleCall(handler, resource, writer)
	fmt.Println(w.Code, strings.Contains(w.Body.String(), "saved for org_acme"))
	// Output:
	// 401
	// 403 Bearer resource_metadata="http://127.0.0.1:8080/.well-known/oauth-protected-resource/mcp", error="insufficient_scope", error_description="insufficient scope: this request requires notes:write", scope="notes:write"
	// 200 true
}

// exampleCall posts a 2026-07-28 tools/call of notes_write to handler.
func exampleCall(handler http.Handler, resource, token string) *httptest.ResponseRecorder {
	body := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"notes_write","arguments":{"text":"hi"},` +
		`"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}`
	r := httptest.NewRequest(http.MethodPost, resource, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Accept", "application/json, text/event-stream")
	r.Header.Set("Mcp-Protocol-Version", "2026-07-28")
	r.Header.Set("Mcp-Method", "tools/call")
	r.Header.Set("Mcp-Name", "notes_write")
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	w := httptest.NewRecorder()
	handler.ServeHTTP(w, r)
	return w
}

// A notes server in production mode built from its components: tokens from
// an OAuth issuer, read and write scopes from the tools' annotations,
// tenants from the tenant_id claim — for when the common case is not
// enough (IdP presets, resource rules, introspection).
func Example_components() {
	idp, err := authtest.New(authtest.Config{})
	if err != nil {
		panic(err)
	}
	defer idp.Close()
	const resource = "http://127.0.0.1:8080/mcp"

	validator, err := auth.NewJWTValidator(auth.JWTConfig{Issuer: idp.Issuer(), Audience: resource})
	if err != nil {
		panic(err)
	}
	defer validator.Close()
	policy, err := authz.New(authz.Config{ReadScope: "notes:read", WriteScope: "notes:write"})
	if err != nil {
		panic(err)
	}
	tenants, err := tenancy.New(tenancy.Config{Claim: tenancy.ClaimTenantID})
	if err != nil {
		panic(err)
	}
	guard, err := transport.New(transport.Config{
		Resource:             resource,
		AuthorizationServers: []string{idp.Issuer()},
		Validator:            validator,
		Policy:               policy,
		Tenancy:              tenants,
	})
	if err != nil {
		panic(err)
	}
	srv := server.NewMCPServer("notes", "1.0", guard.ServerOptions()...)
	srv.AddTool(mcp.NewTool("notes_write", mcp.WithString("text")),
		func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			t, _ := tenancy.FromContext(ctx)
			return mcp.NewToolResultText("saved for " + t), nil
		})
	handler := guard.Handler(srv)

	call := func(token string) *httptest.ResponseRecorder { return exampleCall(handler, resource, token) }

	w := call("")
	fmt.Println(w.Code, w.Header().Get("WWW-Authenticate"))
	reader := idp.MustMint(map[string]any{"aud": resource, "tenant_id": "acme", "scope": "notes:read"})
	w = call(reader)
	fmt.Println(w.Code, w.Header().Get("WWW-Authenticate"))
	writer := idp.MustMint(map[string]any{"aud": resource, "tenant_id": "acme", "scope": "notes:read notes:write"})
	w = call(writer)
	fmt.Println(w.Code, strings.Contains(w.Body.String(), "saved for acme"))
	// Output:
	// 401 Bearer resource_metadata="http://127.0.0.1:8080/.well-known/oauth-protected-resource/mcp"
	// 403 Bearer resource_metadata="http://127.0.0.1:8080/.well-known/oauth-protected-resource/mcp", error="insufficient_scope", error_description="insufficient scope: this request requires notes:write", scope="notes:write"
	// 200 true
}
