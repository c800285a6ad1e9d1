package auth_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/auth/authtest"
)

func describe(err error) string {
	e := auth.AsError(err)
	return fmt.Sprintf("%d %q %s", e.Status, e.Code, e.Description)
}

// A resource server validates opaque tokens by introspection (RFC 7662)
// at an endpoint discovered from the issuer's RFC 8414 metadata. Here
// authtest plays the authorization server.
func ExampleNewIntrospectionValidator() {
	idp, err := authtest.New(authtest.Config{})
	if err != nil {
		panic(err)
	}
	defer idp.Close()
	if err := idp.RegisterClient(authtest.Client{ID: "mcp-server", Secret: "s3cret"}); err != nil {
		panic(err)
	}

	v, err := auth.NewIntrospectionValidator(auth.IntrospectionConfig{
		Issuer:       idp.Issuer(),
		Audience:     idp.Audience(),
		ClientID:     "mcp-server",
		ClientSecret: auth.NewCredential("s3cret"),
	})
	if err != nil {
		panic(err)
	}
	defer v.Close()

	ctx := context.Background()
	tok := idp.MustMintOpaque(map[string]any{"scope": "notes:read"})
	p, err := v.Validate(ctx, tok)
	if err != nil {
		panic(err)
	}
	fmt.Println(p.Subject, p.Scopes)

	_, err = v.Validate(ctx, "never-issued")
	fmt.Println(describe(err))

	idp.SetIntrospectionFault(authtest.FaultStatus500)
	_, err = v.Validate(ctx, idp.MustMintOpaque(nil))
	fmt.Println(describe(err))
	// Output:
	// alice [notes:read]
	// 401 "invalid_token" the access token is not active
	// 503 "" token introspection is temporarily unavailable
}

// A ChainValidator validates JWTs locally and introspects everything else.
func ExampleNewChainValidator() {
	idp, err := authtest.New(authtest.Config{})
	if err != nil {
		panic(err)
	}
	defer idp.Close()
	if err := idp.RegisterClient(authtest.Client{ID: "mcp-server", Secret: "s3cret"}); err != nil {
		panic(err)
	}
	jv, err := auth.NewJWTValidator(auth.JWTConfig{Issuer: idp.Issuer(), Audience: idp.Audience()})
	if err != nil {
		panic(err)
	}
	defer jv.Close()
	iv, err := auth.NewIntrospectionValidator(auth.IntrospectionConfig{
		Issuer: idp.Issuer(), Audience: idp.Audience(),
		ClientID: "mcp-server", ClientSecret: auth.NewCredential("s3cret"),
	})
	if err != nil {
		panic(err)
	}
	defer iv.Close()
	chain, err := auth.NewChainValidator(auth.ChainConfig{JWT: jv, Opaque: iv})
	if err != nil {
		panic(err)
	}

	for _, tok := range []string{
		idp.MustMint(map[string]any{"sub": "alice"}),
		idp.MustMintOpaque(map[string]any{"sub": "bob"}),
	} {
		p, err := chain.Validate(context.Background(), tok)
		if err != nil {
			panic(err)
		}
		fmt.Println(p.Subject, "looks like a JWT:", auth.LooksLikeJWT(tok))
	}
	fmt.Println("introspection requests:", idp.IntrospectionRequests())
	// Output:
	// alice looks like a JWT: true
	// bob looks like a JWT: false
	// introspection requests: 1
}

// A trusted backend calls on behalf of its user: its own token in
// Authorization, the user's in X-User-Token. The tool sees the user, with
// the backend as actor.
func ExampleDualMiddleware() {
	idp, err := authtest.New(authtest.Config{})
	if err != nil {
		panic(err)
	}
	defer idp.Close()
	v, err := auth.NewJWTValidator(auth.JWTConfig{Issuer: idp.Issuer(), Audience: idp.Audience()})
	if err != nil {
		panic(err)
	}
	defer v.Close()

	dv, err := auth.NewDualValidator(auth.DualConfig{
		Service: v, User: v,
		ServiceClientIDs: []string{"billing-backend"},
		UserIssuers:      []string{idp.Issuer()},
	})
	if err != nil {
		panic(err)
	}
	metaURL := "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"
	dual, err := auth.DualMiddleware(dv, auth.MiddlewareConfig{ResourceMetadataURL: metaURL})
	if err != nil {
		panic(err)
	}
	plain, err := auth.Middleware(v, auth.MiddlewareConfig{ResourceMetadataURL: metaURL})
	if err != nil {
		panic(err)
	}
	tool := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := auth.FromContext(r.Context())
		fmt.Fprintf(w, "%s via %s", p.Subject, p.Actor.ClientID)
	})

	service := idp.MustMint(map[string]any{"sub": "billing-backend", "client_id": "billing-backend"})
	user := idp.MustMint(map[string]any{"sub": "alice"})
	send := func(mw func(http.Handler) http.Handler, authz, userTok string) {
		r := httptest.NewRequest(http.MethodPost, "/mcp", nil)
		if authz != "" {
			r.Header.Set("Authorization", "Bearer "+authz)
		}
		r.Header.Set(auth.DefaultUserTokenHeader, userTok)
		rec := httptest.NewRecorder()
		mw(tool).ServeHTTP(rec, r)
		fmt.Println(rec.Code, strings.TrimSpace(rec.Body.String()))
	}
	send(dual, service, user)
	send(dual, "", user)
	send(plain, service, user)
	// Output:
	// 200 alice via billing-backend
	// 400 {"error":"invalid_request","error_description":"a user token requires a service token in the Authorization header"}
	// 400 {"error":"invalid_request","error_description":"the request carries a header this server refuses (a user token while dual-token mode is off)"}
}
