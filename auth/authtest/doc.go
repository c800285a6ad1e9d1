// Package authtest is a real-protocol OAuth 2.0 authorization server and
// OpenID provider for tests and demos — to mcpguard what httptest is to
// net/http.
//
// A Server listens on loopback and serves OpenID Connect discovery, RFC 8414
// authorization server metadata and a JWK Set holding RSA (RS256, PS256),
// EC P-256 (ES256) and Ed25519 (EdDSA) keys. It mints access tokens with
// any claims, header, key or algorithm, including deliberately broken ones
// (unsigned, HMAC-signed with a public key, bad signature, oversized,
// missing kid, crit headers, raw bytes through Sign), rotates and retires
// keys, and makes its JWKS endpoint fail on demand (down, slow, 500,
// garbage, empty, oversized, cross-host redirect) while counting fetches.
// Its token endpoint authenticates registered clients (RegisterClient:
// client_secret_basic, client_secret_post, private_key_jwt) and issues
// tokens for client credentials, RFC 8693 token exchange and the Entra
// on-behalf-of flow, validating the subject token it is given; it fails on
// demand too (SetTokenFault, SetTokenDelay, SetTokenError). A token
// request carrying a valid DPoP proof (RFC 9449 §5) gets a token bound to
// the proof's key, token_type DPoP; Client.DPoPBound makes a proof
// mandatory and SetTokenDPoPNonce a server nonce (§8). On the client side,
// DPoPKey signs proofs and DPoPTransport sends them: with a DPoP-bound
// token to a resource server (§7.1, retrying a use_dpop_nonce 401 once,
// §9), or, with no token, to a token endpoint (§5, retrying a
// use_dpop_nonce 400 once, §8). Its RFC 7662
// introspection endpoint authenticates registered clients the same way and
// answers for opaque tokens (MintOpaque) and its own JWTs, honours Revoke,
// and fails on demand (SetIntrospectionFault, SetIntrospectionDelay).
//
// Typical use in a test:
//
//	idp := authtest.NewServer(t) // closed when the test ends
//	v, err := auth.NewJWTValidator(auth.JWTConfig{
//		Issuer:   idp.Issuer(),
//		Audience: idp.Audience(),
//	})
//	require.NoError(t, err)
//	tok := idp.MustMint(map[string]any{"scope": "notes:read"})
//	p, err := v.Validate(ctx, tok)
//
// And in a demo's main, without a testing.TB:
//
//	idp, err := authtest.New(authtest.Config{Addr: "127.0.0.1:9090"})
//	if err != nil { … }
//	defer idp.Close()
//
// Never use it in production: it signs whatever it is asked to.
//
// # Dependencies
//
// Besides the standard library: golang-jwt/jwt/v5, MicahParks/jwkset and
// golang.org/x/time. It does not import package auth, so a test of any
// package can use it.
package authtest
