// Package obo lets MCP tools call downstream APIs as the user, without
// passing the user's token through (the MCP authorization specification
// forbids token passthrough): the user's token is exchanged at the
// authorization server for a token whose audience is the downstream API.
//
// An Exchanger knows the token endpoint (configured, or discovered from the
// issuer's RFC 8414 / OpenID Connect metadata) and how this service
// authenticates to it (client_secret_basic, client_secret_post, or
// private_key_jwt per RFC 7523). A Target names what to obtain:
//
//   - TokenExchange: OAuth 2.0 Token Exchange (RFC 8693) for an audience
//     and/or resource, with optional scopes, token types and actor token;
//   - EntraOBO: Microsoft Entra ID's on-behalf-of flow (jwt-bearer grant,
//     requested_token_use=on_behalf_of, scope "api://…/.default");
//   - ClientCredentials: a token for this service itself (RFC 6749 §4.4).
//
// Results are cached under a SHA-256 of the exchanger (token endpoint,
// issuer, client ID, DPoP key), the user's token and every field of the
// target, until expires_in minus a skew, in a bounded LRU cache;
// concurrent requests for the same token share one exchange, and one
// caller giving up does not fail the others. Failures are never cached and
// never retried. Redirects from the token endpoint are never followed (Go's
// client would re-send the form — client secret and user token — to
// wherever a 307 points). Every response body is capped at 1 MiB and every
// call bounded by Config.Timeout.
//
// Errors wrap one sentinel per class (ErrNoCredential, ErrRejected,
// ErrUnavailable, ErrInvalidResponse, ErrPassthrough, ErrConfig); failures
// at the token endpoint are *Error values carrying the OAuth error, the
// HTTP status and Entra's claims challenge (InteractionRequired,
// ConsentRequired, ClaimsChallenge). No error, event or printed value ever
// holds a token or the client secret.
//
// Client credentials are implemented here rather than with
// golang.org/x/oauth2/clientcredentials: that package has no
// private_key_jwt, takes its HTTP client from a context value, keeps its
// own token cache, and its errors quote the raw response body; one request
// path with the same client authentication, redirect refusal, body cap and
// error mapping serves all three flavors. Tokens still convert to
// *oauth2.Token (Token.OAuth2, Exchanger.TokenSource).
//
// Typical wiring in an MCP server (auth.Middleware has put the caller's
// credential in every request context):
//
//	ex, err := obo.New(obo.Config{
//		Issuer:       "https://login.microsoftonline.com/" + tenantID + "/v2.0",
//		ClientID:     appID,
//		AuthMethod:   obo.PrivateKeyJWT,
//		PrivateKey:   &obo.PrivateKey{Signer: certKey, Thumbprint: x5t},
//		Audit:        rec, // an *audit.Recorder
//	})
//	if err != nil { ... }
//	calendar, err := ex.Client(obo.Target{
//		Flavor: obo.EntraOBO,
//		Scopes: []string{"api://calendar/.default"},
//	}, nil)
//	if err != nil { ... }
//
//	// In a tool handler:
//	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, calendarURL+"/events", nil)
//	resp, err := calendar.Do(req)
//	var oe *obo.Error
//	if errors.As(err, &oe) && oe.InteractionRequired() {
//		// ask the user to sign in again, passing oe.Claims along
//	}
//
// Exchanger.Transport is the same as an http.RoundTripper for a client of
// your own, and Exchanger.Token / Exchanger.TokenSource give the token
// itself.
//
// # DPoP
//
// Config.DPoPKey makes the Exchanger a DPoP client (RFC 9449): each token
// request carries a proof signed with the key (§5), a token the endpoint
// issues as token_type "DPoP" (bound to the key by "cnf.jkt") is sent
// downstream by Transport as "Authorization: DPoP <token>" with a fresh
// proof for each request's method and URL and the token's hash (§4.2,
// §7.1), and a use_dpop_nonce answer — 400 from the token endpoint, 401
// from the API — is retried once with the server's DPoP-Nonce, the latest
// nonce of each origin being remembered (§8, §9; at most 64 origins). A
// DPoP-bound token is never sent as a bearer token; without DPoPKey an
// answer of token_type DPoP is refused, since no proof could go with it.
// The proof key should be this service's own, distinct from its
// private_key_jwt key.
//
// # Dependencies
//
// Besides the standard library: golang.org/x/oauth2 and, through auth,
// github.com/mark3labs/mcp-go (with its own google/jsonschema-go, google/uuid,
// santhosh-tekuri/jsonschema, spf13/cast and yosida95/uritemplate),
// golang-jwt/jwt/v5, MicahParks/jwkset, golang.org/x/sync, golang.org/x/text
// and golang.org/x/time.
package obo
