package auth_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/mcpguard/mcpguard/auth"
)

// A resource server mounts its RFC 9728 metadata and wraps its MCP handler
// in auth.Middleware. Here a toy validator stands in for the JWT validator.
func ExampleMiddleware() {
	mux := http.NewServeMux()
	metaURL, err := auth.MountMetadata(mux, auth.MetadataConfig{
		Resource:             "https://mcp.example.com/mcp",
		AuthorizationServers: []string{"https://login.example.com"},
		ScopesSupported:      []string{"notes:read"},
	})
	if err != nil {
		panic(err)
	}
	v := auth.ValidatorFunc(func(_ context.Context, tok string) (*auth.Principal, error) {
		if tok == "let-me-in" {
			return &auth.Principal{Subject: "alice"}, nil
		}
		return nil, auth.InvalidToken("the access token is invalid", auth.ErrInvalidToken)
	})
	mw, err := auth.Middleware(v, auth.MiddlewareConfig{ResourceMetadataURL: metaURL})
	if err != nil {
		panic(err)
	}
	mux.Handle("/mcp", mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := auth.FromContext(r.Context())
		fmt.Fprintf(w, "hello %s", p.Subject)
	})))

	for _, tok := range []string{"", "forged", "let-me-in"} {
		r := httptest.NewRequest(http.MethodPost, "/mcp", nil)
		if tok != "" {
			r.Header.Set("Authorization", "Bearer "+tok)
		}
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, r)
		fmt.Println(rec.Code, rec.Header().Get("WWW-Authenticate"))
	}
	// Output:
	// 401 Bearer resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp"
	// 401 Bearer resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp", error="invalid_token", error_description="the access token is invalid"
	// 200
}
