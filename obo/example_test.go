package obo_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/auth/authtest"
	"github.com/mcpguard/mcpguard/obo"
)

// A tool calls a downstream API as the user: the Exchanger trades the
// user's token (which auth.Middleware put in the request context) for a
// token whose audience is the downstream API, and the Client sends it.
// Here authtest is the authorization server and the downstream API checks
// the token with auth.JWTValidator.
func ExampleExchanger_Client() {
	idp, err := authtest.New(authtest.Config{Audience: "https://mcp.example.com/mcp"})
	if err != nil {
		panic(err)
	}
	defer idp.Close()
	if err := idp.RegisterClient(authtest.Client{ID: "mcp-server", Secret: "example-secret"}); err != nil {
		panic(err)
	}

	// The downstream API accepts only tokens issued for itself.
	const calendarAPI = "https://calendar.example.com"
	v, err := auth.NewJWTValidator(auth.JWTConfig{Issuer: idp.Issuer(), Audience: calendarAPI})
	if err != nil {
		panic(err)
	}
	defer v.Close()
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, err := auth.BearerToken(r, 0)
		if err != nil {
			http.Error(w, "no token", http.StatusUnauthorized)
			return
		}
		p, err := v.Validate(r.Context(), raw)
		if err != nil {
			http.Error(w, "rejected", http.StatusUnauthorized)
			return
		}
		act, _ := p.Claims.String("act.sub")
		fmt.Fprintf(w, "events of %s, called by %s", p.Subject, act)
	}))
	defer api.Close()

	ex, err := obo.New(obo.Config{
		Issuer:       idp.Issuer(), // token endpoint discovered (RFC 8414)
		ClientID:     "mcp-server",
		ClientSecret: auth.NewCredential("example-secret"),
	})
	if err != nil {
		panic(err)
	}
	client, err := ex.Client(obo.Target{Flavor: obo.TokenExchange, Audience: calendarAPI, Scopes: []string{"calendar.read"}}, nil)
	if err != nil {
		panic(err)
	}

	// Inside a tool handler, ctx carries the caller's credential.
	inbound := idp.MustMint(map[string]any{"sub": "alice"})
	ctx := auth.NewCredentialContext(context.Background(), auth.NewCredential(inbound))
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, api.URL+"/events", nil)
	resp, err := client.Do(req)
	if err != nil {
		panic(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(resp.StatusCode, string(body))

	// Without a user credential nothing is sent.
	req, _ = http.NewRequestWithContext(context.Background(), http.MethodGet, api.URL+"/events", nil)
	_, err = client.Do(req)
	fmt.Println(errors.Is(err, obo.ErrNoCredential))
	// Output:
	// 200 events of alice, called by mcp-server
	// true
}

// When Entra's Conditional Access needs the user back (MFA, consent), the
// exchange fails with interaction_required and a claims challenge that the
// tool passes on, so the client can send the user through the
// authorization endpoint again.
func ExampleError_InteractionRequired() {
	idp, err := authtest.New(authtest.Config{})
	if err != nil {
		panic(err)
	}
	defer idp.Close()
	_ = idp.RegisterClient(authtest.Client{ID: "mcp-server", Secret: "example-secret"})
	idp.SetTokenError(authtest.InteractionRequired(`{"access_token":{"acrs":{"essential":true,"value":"c1"}}}`))

	ex, err := obo.New(obo.Config{
		TokenEndpoint: idp.TokenURL(),
		ClientID:      "mcp-server",
		AuthMethod:    obo.ClientSecretPost,
		ClientSecret:  auth.NewCredential("example-secret"),
	})
	if err != nil {
		panic(err)
	}
	ctx := auth.NewCredentialContext(context.Background(), auth.NewCredential(idp.MustMint(nil)))
	_, err = ex.Token(ctx, obo.Target{Flavor: obo.EntraOBO, Scopes: []string{"api://calendar/.default"}})

	var oe *obo.Error
	if errors.As(err, &oe) && oe.InteractionRequired() {
		claims, _ := oe.ClaimsChallenge()
		fmt.Println(oe.Code, oe.Status)
		fmt.Println("claims:", claims)
	}
	// Output:
	// interaction_required 400
	// claims: {"access_token":{"acrs":{"essential":true,"value":"c1"}}}
}

// With Config.DPoPKey the Exchanger is a DPoP client (RFC 9449): the token
// endpoint binds the exchanged token to the key, and the Client sends it
// with the DPoP scheme and a fresh proof per request to an API that
// requires DPoP (here auth.Middleware in DPoPRequired mode).
func ExampleConfig_dPoPKey() {
	idp, err := authtest.New(authtest.Config{})
	if err != nil {
		panic(err)
	}
	defer idp.Close()
	_ = idp.RegisterClient(authtest.Client{ID: "mcp-server", Secret: "example-secret"})

	var guarded http.Handler
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { guarded.ServeHTTP(w, r) }))
	defer api.Close()
	v, err := auth.NewJWTValidator(auth.JWTConfig{
		Issuer: idp.Issuer(), Audience: api.URL,
		DPoP: auth.DPoPConfig{Mode: auth.DPoPRequired}, // htu origin: the Audience
	})
	if err != nil {
		panic(err)
	}
	defer v.Close()
	mw, err := auth.Middleware(v, auth.MiddlewareConfig{ResourceMetadataURL: api.URL + "/.well-known/oauth-protected-resource"})
	if err != nil {
		panic(err)
	}
	guarded = mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scheme, _, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		fmt.Fprintf(w, "scheme %s, proof sent: %t", scheme, r.Header.Get("DPoP") != "")
	}))

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader) // this service's proof key
	if err != nil {
		panic(err)
	}
	ex, err := obo.New(obo.Config{
		TokenEndpoint: idp.TokenURL(),
		ClientID:      "mcp-server",
		ClientSecret:  auth.NewCredential("example-secret"),
		DPoPKey:       &obo.PrivateKey{Signer: key},
	})
	if err != nil {
		panic(err)
	}
	target := obo.Target{Flavor: obo.TokenExchange, Audience: api.URL}
	client, err := ex.Client(target, nil)
	if err != nil {
		panic(err)
	}
	ctx := auth.NewCredentialContext(context.Background(), auth.NewCredential(idp.MustMint(map[string]any{"sub": "alice"})))
	tok, err := ex.Token(ctx, target)
	if err != nil {
		panic(err)
	}
	fmt.Println("token type:", tok.TokenType)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, api.URL+"/events", nil)
	resp, err := client.Do(req)
	if err != nil {
		panic(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(resp.StatusCode, string(body))
	// Output:
	// token type: DPoP
	// 200 scheme DPoP, proof sent: true
}
