package auth_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

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

// A tool starts a report that will finish after the user's token expires:
// it mints a job token bound to that token, and the worker later presents
// both.
func ExampleJobIssuer() {
	var mu sync.Mutex
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }

	idp, err := authtest.New(authtest.Config{Now: clock})
	if err != nil {
		panic(err)
	}
	defer idp.Close()
	users, err := auth.NewJWTValidator(auth.JWTConfig{Issuer: idp.Issuer(), Audience: idp.Audience(), Now: clock})
	if err != nil {
		panic(err)
	}
	defer users.Close()

	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	issuer, err := auth.NewJobIssuer(auth.JobIssuerConfig{
		Issuer: "https://mcp.example.com/jobs", Audience: "https://mcp.example.com/mcp#jobs",
		Key: key, Original: users, Now: clock,
	})
	if err != nil {
		panic(err)
	}
	revoked := map[string]bool{}
	jobs, err := auth.NewJobValidator(auth.JobValidatorConfig{
		Issuer: "https://mcp.example.com/jobs", Audience: "https://mcp.example.com/mcp#jobs",
		Keys:     map[string]ed25519.PublicKey{issuer.KeyID(): issuer.PublicKey()},
		Original: users, Now: clock,
		Revoked: func(_ context.Context, id string) (bool, error) {
			mu.Lock()
			defer mu.Unlock()
			return revoked[id], nil
		},
	})
	if err != nil {
		panic(err)
	}

	ctx := context.Background()
	original := idp.MustMint(map[string]any{"sub": "alice", "scope": "reports:read reports:write"})
	jobTok, err := issuer.Mint(ctx, auth.JobRequest{
		JobID: "report-7", Original: auth.NewCredential(original), Scopes: []string{"reports:write"}, Tenant: "acme",
	})
	if err != nil {
		panic(err)
	}

	mu.Lock()
	now = now.Add(3 * time.Hour) // the user's one-hour token has long expired
	mu.Unlock()
	_, err = users.Validate(ctx, original)
	fmt.Println("original alone:", describe(err))
	p, err := jobs.ValidateJob(ctx, jobTok, original)
	if err != nil {
		panic(err)
	}
	fmt.Println(p.Kind, p.JobID, p.Subject, p.Scopes)

	mu.Lock()
	revoked["report-7"] = true
	mu.Unlock()
	_, err = jobs.ValidateJob(ctx, jobTok, original)
	fmt.Println("after revocation:", describe(err))
	// Output:
	// original alone: 401 "invalid_token" the access token has expired
	// job report-7 alice [reports:write]
	// after revocation: 401 "invalid_token" the job has been revoked
}
