package auth_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/auth/authtest"
)

// A resource server validates JWT access tokens from its authorization
// server. Here authtest plays the authorization server; the validator
// discovers its JWK Set from the issuer (OpenID Connect discovery, then
// RFC 8414 metadata).
func ExampleNewJWTValidator() {
	idp, err := authtest.New(authtest.Config{Audience: "https://mcp.example.com/mcp"})
	if err != nil {
		panic(err)
	}
	defer idp.Close()

	v, err := auth.NewJWTValidator(auth.JWTConfig{
		Issuer:   idp.Issuer(),
		Audience: "https://mcp.example.com/mcp",
	})
	if err != nil {
		panic(err)
	}
	defer v.Close()

	tok, err := idp.Mint(map[string]any{"sub": "alice", "scope": "notes:read notes:write"})
	if err != nil {
		panic(err)
	}
	p, err := v.Validate(context.Background(), tok)
	if err != nil {
		panic(err)
	}
	fmt.Println(p.Subject, p.ClientID, p.Scopes)

	other, _ := idp.Mint(map[string]any{"aud": "https://other.example.com/api"})
	_, err = v.Validate(context.Background(), other)
	var e *auth.Error
	if errors.As(err, &e) {
		fmt.Println(e.Status, e.Code, e.Description)
	}
	// Output:
	// alice mcp-client [notes:read notes:write]
	// 401 invalid_token the token's audience does not match this resource
}

// The validator plugs into auth.Middleware, which answers RFC 6750
// challenges for missing and rejected tokens.
func ExampleJWTValidator_middleware() {
	idp, err := authtest.New(authtest.Config{Audience: "https://mcp.example.com/mcp"})
	if err != nil {
		panic(err)
	}
	defer idp.Close()
	v, err := auth.NewJWTValidator(auth.JWTConfig{
		Issuer:   idp.Issuer(),
		Audience: "https://mcp.example.com/mcp",
	})
	if err != nil {
		panic(err)
	}
	defer v.Close()

	mux := http.NewServeMux()
	metaURL, err := auth.MountMetadata(mux, auth.MetadataConfig{
		Resource:             "https://mcp.example.com/mcp",
		AuthorizationServers: []string{idp.Issuer()},
	})
	if err != nil {
		panic(err)
	}
	mw, err := auth.Middleware(v, auth.MiddlewareConfig{ResourceMetadataURL: metaURL})
	if err != nil {
		panic(err)
	}
	mux.Handle("/mcp", mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := auth.FromContext(r.Context())
		fmt.Fprintf(w, "hello %s", p.Subject)
	})))

	good, _ := idp.Mint(nil)
	expired, _ := idp.Mint(map[string]any{"exp": 1})
	for _, tok := range []string{good, expired} {
		r := httptest.NewRequest(http.MethodPost, "/mcp", nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, r)
		fmt.Println(rec.Code, rec.Body.String())
	}
	// Output:
	// 200 hello alice
	// 401 {"error":"invalid_token","error_description":"the access token has expired"}
}
