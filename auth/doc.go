// Package auth reads and validates bearer credentials for an MCP server
// acting as an OAuth 2.0 resource server.
//
// It owns the Principal (the verified caller), the raw Credential (which
// redacts itself everywhere it could be printed), validators (JWT via JWKS,
// RFC 7662 introspection, dual service+user tokens), the
// RFC 6750 WWW-Authenticate challenge and RFC 9728 protected resource
// metadata. It decides who is calling, never what they may do: that is
// package authz.
//
// # Typical wiring
//
//	v, err := auth.NewJWTValidator(auth.JWTConfig{
//		Issuer:   "https://login.example.com",
//		Audience: "https://mcp.example.com/mcp",
//	})
//	if err != nil { ... }
//	defer v.Close()
//	metaURL, err := auth.MountMetadata(mux, auth.MetadataConfig{
//		Resource:             "https://mcp.example.com/mcp",
//		AuthorizationServers: []string{"https://login.example.com"},
//	})
//	if err != nil { ... }
//	mw, err := auth.Middleware(v, auth.MiddlewareConfig{ResourceMetadataURL: metaURL})
//	if err != nil { ... }
//	mux.Handle("/mcp", mw(mcpHandler))
//
// Middleware accepts exactly one credential (RFC 6750 §2): two
// Authorization headers, or a header token together with an access_token
// in the query (hasAccessTokenParam) or in an
// application/x-www-form-urlencoded body (formBodyToken, which reads at
// most 64 KiB), are 400 invalid_request; a token only in the query or the
// body is an unsupported method and ignored (401 as for no credential).
//
// Middleware refuses a request that carries the dual-token user header
// (DefaultUserTokenHeader) with 400: a server not in dual-token mode must
// not silently serve a backend as itself when it meant to act for a user.
//
// # Opaque tokens: introspection
//
// An IntrospectionValidator asks the authorization server about each token
// (RFC 7662), authenticating with client_secret_basic or client_secret_post;
// the endpoint is configured or discovered from the issuer's RFC 8414
// metadata. A ChainValidator sends JWT-shaped tokens to the JWT validator
// and the rest to introspection (optionally JWTs to both, to catch
// revocation):
//
//	iv, err := auth.NewIntrospectionValidator(auth.IntrospectionConfig{
//		Issuer:       "https://login.example.com",
//		Audience:     "https://mcp.example.com/mcp",
//		ClientID:     "mcp-server",
//		ClientSecret: auth.NewCredential(secret),
//	})
//	if err != nil { ... }
//	defer iv.Close()
//	chain, err := auth.NewChainValidator(auth.ChainConfig{JWT: v, Opaque: iv})
//
// Decisions worth knowing: an active answer is cached for at most CacheTTL
// (60 s by default) and never past the token's exp, so a token revoked at
// the authorization server keeps working here for up to CacheTTL; a
// rejection is cached for 5 s in a separate, smaller cache, so junk tokens
// cannot evict good entries; an outage (timeout, 5xx, a garbled or
// oversized answer, a redirect — never followed, so the token and secret go
// nowhere else) is a 503 and is never cached, so clients retry instead of
// discarding a good token. Concurrent requests with one token share one
// introspection, and at most MaxInFlight run at once.
//
// # Dual tokens: a service acting for its user
//
// A trusted backend sends its own token in Authorization and the user's in
// X-User-Token ("Bearer " optional). DualMiddleware validates each with its
// own validator, requires the service's client ID to be allow-listed and
// the user token's issuer to be one that service may present, and puts the
// user's principal in the context with Actor set to the service — so audit
// records both — and the user's credential, which package obo exchanges
// (the service's token never reaches the context):
//
//	dv, err := auth.NewDualValidator(auth.DualConfig{
//		Service:          serviceValidator, // aud: this server
//		User:             userValidator,
//		ServiceClientIDs: []string{"billing-backend"},
//		UserIssuers:      []string{"https://login.example.com"},
//		Direct:           userValidator, // users may also call directly
//	})
//	if err != nil { ... }
//	mw, err := auth.DualMiddleware(dv, auth.MiddlewareConfig{ResourceMetadataURL: metaURL})
//
// A user token without a service token, from a service not on the list, or
// from an issuer the service may not present is refused with a reason that
// names the failing token.
//
// # Job tokens
//
// Signed job tokens, which let long-running work act for a user after the
// user's token expired, live in package auth/jobtoken: auth is a resource
// server, not an issuer. A JWTValidator refuses their typ (job+jwt).
//
// # Sender-constrained tokens: DPoP
//
// JWTConfig.DPoP (RFC 9449, MCP SEP-1932) accepts tokens bound to a client
// key ("cnf.jkt"), presented as `Authorization: DPoP <token>` with exactly
// one `DPoP` proof header:
//
//	v, err := auth.NewJWTValidator(auth.JWTConfig{
//		Issuer:   "https://idp.example.com",
//		Audience: "https://mcp.example.com/mcp",
//		DPoP:     auth.DPoPConfig{Mode: auth.DPoPRequired},
//	})
//
// DPoPAllowed serves bearer and bound tokens side by side; DPoPRequired only
// bound ones. A bound token sent as a bearer token is refused in every mode
// (no downgrade). Each request's proof is checked per RFC 9449 §4.3 — typ,
// an asymmetric alg, a public jwk whose RFC 7638 thumbprint is cnf.jkt, the
// signature, htm, htu against the configured Resource origin (never the
// request's Host), iat within ±5 minutes, ath, and a jti never seen before
// (ReplayStore; the memory store is bounded and fails closed with 503 when
// full) — and a verified-token cache hit still needs it. Middleware then
// sends `WWW-Authenticate: DPoP algs="…"` (beside Bearer in DPoPAllowed
// mode); handlers behind it answer with WriteErrorFor to keep it.
// DPoPConfig.RequireNonce adds RFC 9449 §8 server nonces: stateless (an
// HMAC of the time slot), sent in DPoP-Nonce on every answer to a DPoP
// request, a missing or stale one answered with use_dpop_nonce.
// auth/authtest mints bound tokens (MintBound) and signs proofs (DPoPKey,
// DPoPTransport).
//
// A ChainValidator is DPoP-aware when its validators are, and they must
// share one mode. With ChainConfig.IntrospectJWTs the JWT validator checks
// the proof and the introspection validator checks that the authorization
// server's "cnf" names the same key and that the proof meets its own DPoP
// settings (algorithms, resource, window, nonce): a proof's signature is
// checked (and its jti stored) once per request, and it must satisfy both
// validators' policies. DualMiddleware accepts a DPoP-bound
// service token (or direct token) with its proof when the validator of that
// token accepts DPoP; the user token beside it is always a bearer token, so
// a DPoP-bound user token is refused, never accepted without its own proof.
//
// # Revoking access tokens before they expire
//
// JWTConfig.Revoker and IntrospectionConfig.Revoker are asked about every
// accepted token — after the signature or introspection checks and on
// every verified-cache hit, before the DPoP proof — so a revocation stops
// a token that is already cached. MemoryRevoker is one process's list;
// the Redis revoker (package redisstore) shares one among replicas:
//
//	rev, err := auth.NewMemoryRevoker(auth.RevokerConfig{})
//	v, err := auth.NewJWTValidator(auth.JWTConfig{Issuer: iss, Audience: aud, Revoker: rev})
//	…
//	err = rev.Revoke(ctx, auth.Revocation{Issuer: iss, TokenID: jti})      // one token
//	err = rev.Revoke(ctx, auth.Revocation{Issuer: iss, SessionID: sid})    // its session or grant
//	err = rev.Revoke(ctx, auth.Revocation{Issuer: iss, Subject: sub})      // all the user holds now
//
// A revoked token gets 401 invalid_token, "the access token has been
// revoked" (errors.Is ErrRevoked; transport audits it with reason
// "revoked"). In dual-token mode the service and user validators each
// carry their revoker. Entries hold keyed digests, never the values, and
// are kept for RevokerConfig.MaxTokenLifetime (24 h) plus MaxLeeway after
// the revocation — the longest any token they name can stay valid — which
// is why a token that lives longer, or has no exp, is refused when a
// revoker is set. The list is capped (100,000 entries) and never forgets a
// live entry: when it is full, Revoke fails with ErrRevocationListFull and
// the operator revokes more broadly (a session, a subject).
//
// # Observing a validator
//
// JWTValidator, IntrospectionValidator and ChainValidator report, to an
// Observer installed with SetObserver, each cache lookup (CacheToken,
// CacheIntrospection), each cold validation (OpValidate), introspection
// (OpIntrospect) and JWK Set fetch (OpFetchKeys), with its outcome. The
// package imports no telemetry library: package telemetry implements
// Observer, and transport installs it on Config.Validator when telemetry is
// on. Without an observer the cost is one atomic load per lookup.
//
// # Why the JWS header and claims have their own readers
//
// A cold validation decodes the header and the payload of every new token.
// For the shapes IdPs issue (printable ASCII, no escapes, shallow nesting)
// two small readers without reflection do it (scanFlatHeader in jws.go,
// scanPayload in payload.go); anything else goes through encoding/json. On
// an Entra-v2-shaped token, BenchmarkDecodeFastPath measured (2 cores,
// machine under load, so absolute figures are high but the ratios hold):
// header 0.23 µs and 1 allocation against 3.3 µs and 18 with encoding/json;
// payload 2.7–3.2 µs and 19 allocations against 11.4–13.3 µs and 60. That
// is about 12 µs saved per new token, half the raw RS256 check (22.8 µs
// quiet), which is what keeps cold validation within 1.1× the signature
// check it contains. The price is that both readers must agree with
// encoding/json exactly: FuzzHeaderFastPath and FuzzPayloadFastPath compare
// them on every input and run in CI's fuzz smoke step (.ci/fuzz.sh). The
// duplicate-member and crit checks apply on both paths.
//
// # Dependencies
//
// Besides the standard library: github.com/mark3labs/mcp-go (with its own google/jsonschema-go, google/uuid,
// santhosh-tekuri/jsonschema, spf13/cast and yosida95/uritemplate),
// golang-jwt/jwt/v5, MicahParks/jwkset, golang.org/x/sync, golang.org/x/text
// and golang.org/x/time.
package auth
