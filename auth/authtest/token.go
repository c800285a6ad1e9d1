package authtest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/subtle"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mcpguard/mcpguard/internal/oauthsyntax"
)

// The token endpoint (RFC 6749 §3.2). It authenticates registered clients
// (client_secret_basic, client_secret_post, private_key_jwt) and issues
// access tokens signed by the server's signing key for three grants:
//
//   - client credentials (RFC 6749 §4.4): sub and client_id are the client;
//   - token exchange (RFC 8693 §2): the subject token must be a valid token
//     of this server whose aud is the client's Audience; the new token keeps
//     the subject's sub, is for the requested audience/resource, and
//     carries an act claim naming the actor (the actor token's subject, or
//     else the client) with any earlier act nested inside it (§4.1);
//   - Microsoft Entra on-behalf-of (the JWT bearer grant with
//     requested_token_use=on_behalf_of): the assertion is checked like a
//     subject token; the new token is shaped like Entra's: aud is the
//     scope's resource, scp the scope names, azp and appid the client.
//
// A request with a DPoP proof gets a DPoP-bound token (token_type DPoP,
// "cnf.jkt"; see token_dpop.go and RFC 9449 §5).
//
// Faults (SetTokenFault, SetTokenDelay, SetTokenError) make it fail on
// demand: down, 500, garbage, redirect, slow, or any OAuth error such as
// invalid_grant or interaction_required with a claims challenge.

// Grant types the token endpoint accepts.
const (
	GrantClientCredentials = "client_credentials"
	GrantTokenExchange     = "urn:ietf:params:oauth:grant-type:token-exchange"
	GrantJWTBearer         = "urn:ietf:params:oauth:grant-type:jwt-bearer"
)

// Token types of RFC 8693 §3 that the token endpoint understands.
const (
	TokenTypeAccessToken = "urn:ietf:params:oauth:token-type:access_token"
	TokenTypeJWT         = "urn:ietf:params:oauth:token-type:jwt"
)

// Client authentication methods (RFC 8414 §2 names), spelled as auth and
// obo spell them.
const (
	ClientSecretBasic = "client_secret_basic"
	ClientSecretPost  = "client_secret_post"
	PrivateKeyJWT     = "private_key_jwt"
)

const (
	clientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
	maxTokenForm        = 64 << 10
	maxSeenAssertions   = 10000
)

// Client is an OAuth client registered at the token endpoint.
type Client struct {
	// ID is the client_id. Required.
	ID string
	// Secret authenticates the client with client_secret_basic or
	// client_secret_post.
	Secret string
	// PublicKey verifies the client's private_key_jwt assertions
	// (*rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey).
	PublicKey crypto.PublicKey
	// AuthMethod, when set, is the only method the client may use (its
	// registered token_endpoint_auth_method); empty allows every method its
	// credentials support.
	AuthMethod string
	// Audience is the resource the client serves: a subject token (or
	// on-behalf-of assertion) it exchanges must carry it in aud. Empty
	// means Config.Audience, the audience of minted tokens.
	Audience string
	// DPoPBound makes every token request of the client carry a DPoP proof
	// (RFC 9449 §5.2, dpop_bound_access_tokens); a request without one is
	// refused with invalid_dpop_proof.
	DPoPBound bool
}

// TokenError is an OAuth error response (RFC 6749 §5.2, with Microsoft
// Entra's suberror, error_codes and claims) that SetTokenError makes the
// token endpoint return.
type TokenError struct {
	// Status is the HTTP status; zero means 400.
	Status int
	// Code is the "error" code, such as invalid_grant.
	Code string
	// Description is the "error_description".
	Description string
	// SubError is Entra's "suberror", such as consent_required.
	SubError string
	// Claims is Entra's claims challenge, a JSON object as a string.
	Claims string
	// ErrorCodes are Entra's numeric AADSTS codes.
	ErrorCodes []int
}

// InvalidGrant returns the error an authorization server gives for an
// expired, revoked or otherwise unusable grant.
func InvalidGrant(description string) *TokenError {
	return &TokenError{Code: "invalid_grant", Description: description}
}

// InteractionRequired returns Entra's answer when Conditional Access (such
// as MFA) requires the user to sign in again: interaction_required with
// the claims challenge to pass back to the authorization endpoint.
func InteractionRequired(claims string) *TokenError {
	return &TokenError{
		Code: "interaction_required", Description: "AADSTS50076: the user must use multi-factor authentication",
		SubError: "basic_action", Claims: claims, ErrorCodes: []int{50076},
	}
}

// ConsentRequired returns Entra's answer when the user has not consented
// to the downstream API: invalid_grant with suberror consent_required and
// AADSTS65001.
func ConsentRequired() *TokenError {
	return &TokenError{
		Code: "invalid_grant", Description: "AADSTS65001: the user or administrator has not consented",
		SubError: "consent_required", ErrorCodes: []int{65001},
	}
}

// tokenEndpoint is the token endpoint's state, a field of Server.
type tokenEndpoint struct {
	requests atomic.Int64

	mu      sync.Mutex
	clients map[string]Client
	fault   Fault
	delay   time.Duration
	oauth   *TokenError
	seenJTI map[string]time.Time // client assertion and DPoP proof jti → its exp

	dpopNonce  string // required in token-request proofs when set
	dpopProofs atomic.Int64
}

// RegisterClient registers c at the token endpoint, replacing a client
// with the same ID.
func (s *Server) RegisterClient(c Client) error {
	if c.ID == "" {
		return errors.New("authtest: RegisterClient: Client.ID is empty")
	}
	switch c.AuthMethod {
	case "", ClientSecretBasic, ClientSecretPost:
		if c.AuthMethod != "" && c.Secret == "" {
			return fmt.Errorf("authtest: RegisterClient: %s needs Client.Secret", c.AuthMethod)
		}
	case PrivateKeyJWT:
		if c.PublicKey == nil {
			return errors.New("authtest: RegisterClient: private_key_jwt needs Client.PublicKey")
		}
	default:
		return fmt.Errorf("authtest: RegisterClient: unknown AuthMethod %q", c.AuthMethod)
	}
	if c.Secret == "" && c.PublicKey == nil {
		return errors.New("authtest: RegisterClient: Client.Secret or Client.PublicKey is required")
	}
	if c.PublicKey != nil {
		if _, err := assertionAlgs(c.PublicKey); err != nil {
			return err
		}
	}
	if c.Audience == "" {
		c.Audience = s.cfg.Audience
	}
	t := &s.token
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.clients == nil {
		t.clients = map[string]Client{}
	}
	t.clients[c.ID] = c
	return nil
}

// SetTokenFault makes the token endpoint simulate f until changed:
// FaultDown, FaultStatus500, FaultGarbage, FaultEmpty ("{}"),
// FaultOversized (a 2 MiB answer) or FaultRedirect (307 to the other host,
// whose hits RedirectFetches counts). FaultNone restores normal service.
func (s *Server) SetTokenFault(f Fault) {
	s.token.mu.Lock()
	defer s.token.mu.Unlock()
	s.token.fault = f
}

// SetTokenDelay delays every token endpoint answer by d (zero for none),
// to simulate a slow server. A delayed answer is abandoned when the client
// goes away or the server closes.
func (s *Server) SetTokenDelay(d time.Duration) {
	s.token.mu.Lock()
	defer s.token.mu.Unlock()
	s.token.delay = d
}

// SetTokenError makes the token endpoint answer every request with e
// (after the delay, before anything else); nil restores normal service.
func (s *Server) SetTokenError(e *TokenError) {
	s.token.mu.Lock()
	defer s.token.mu.Unlock()
	s.token.oauth = e
}

// TokenRequests returns how many requests reached the token endpoint,
// whatever their outcome.
func (s *Server) TokenRequests() int { return int(s.token.requests.Load()) }

// tokenMetadata adds the token endpoint's members to the discovery
// document (RFC 8414 §2, RFC 8693 grant type).
func (s *Server) tokenMetadata(doc map[string]any) {
	doc["grant_types_supported"] = []string{GrantClientCredentials, GrantTokenExchange, GrantJWTBearer}
	doc["token_endpoint_auth_methods_supported"] = []string{ClientSecretBasic, ClientSecretPost, PrivateKeyJWT}
	doc["token_endpoint_auth_signing_alg_values_supported"] = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
	doc["dpop_signing_alg_values_supported"] = dpopAlgs
}

// serveToken is the token endpoint.
func (s *Server) serveToken(w http.ResponseWriter, r *http.Request) {
	s.token.requests.Add(1)
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeOAuthError(w, http.StatusMethodNotAllowed, "invalid_request", "the token endpoint accepts POST only")
		return
	}
	t := &s.token
	t.mu.Lock()
	fault, delay, oauth := t.fault, t.delay, t.oauth
	t.mu.Unlock()
	if delay > 0 {
		timer := time.NewTimer(delay)
		defer timer.Stop()
		select {
		case <-timer.C:
		case <-r.Context().Done():
			return
		case <-s.closing:
			return
		}
	}
	if s.serveTokenFault(w, r, fault) {
		return
	}
	if oauth != nil {
		writeTokenError(w, oauth)
		return
	}

	form, err := readTokenForm(w, r)
	if err != nil {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	client, err := s.authenticateClient(r, form)
	if err != nil {
		if _, _, basic := r.BasicAuth(); basic {
			w.Header().Set("WWW-Authenticate", `Basic realm="authtest"`)
		}
		writeOAuthError(w, http.StatusUnauthorized, "invalid_client", err.Error())
		return
	}
	jkt, oerr := s.tokenProof(r, w)
	if oerr == nil && jkt == "" && client.DPoPBound {
		oerr = dpopError(http.StatusBadRequest, "invalid_dpop_proof", "this client's tokens are DPoP-bound: a DPoP proof is required")
	}
	if oerr != nil {
		writeTokenError(w, oerr)
		return
	}
	var resp map[string]any
	switch form.Get("grant_type") {
	case GrantClientCredentials:
		resp, oerr = s.clientCredentials(client, form, jkt)
	case GrantTokenExchange:
		resp, oerr = s.tokenExchange(client, form, jkt)
	case GrantJWTBearer:
		resp, oerr = s.onBehalfOf(client, form, jkt)
	case "":
		oerr = &TokenError{Code: "invalid_request", Description: "grant_type is required"}
	default:
		oerr = &TokenError{Code: "unsupported_grant_type", Description: "this server supports client_credentials, token-exchange and jwt-bearer"}
	}
	if oerr != nil {
		writeTokenError(w, oerr)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) serveTokenFault(w http.ResponseWriter, r *http.Request, f Fault) bool {
	switch f {
	case FaultDown:
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				_ = conn.Close()
				return true
			}
		}
		panic(http.ErrAbortHandler)
	case FaultStatus500:
		http.Error(w, "internal error", http.StatusInternalServerError)
	case FaultGarbage:
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte("<html>\x00\xff this is not a token response"))
	case FaultEmpty:
		writeJSON(w, http.StatusOK, map[string]any{})
	case FaultOversized:
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"access_token":"`))
		chunk := []byte(strings.Repeat("x", 64<<10))
		for range 32 {
			if _, err := w.Write(chunk); err != nil {
				return true
			}
		}
		_, _ = w.Write([]byte(`","token_type":"Bearer","expires_in":3600}`))
	case FaultRedirect:
		http.Redirect(w, r, s.redirect.URL+"/token", http.StatusTemporaryRedirect)
	default:
		return false
	}
	return true
}

// readTokenForm reads the form body: application/x-www-form-urlencoded,
// capped, no query string, and no parameter twice (RFC 6749 §3.2) except
// audience and resource, which RFC 8693 §2.1 lets repeat.
func readTokenForm(w http.ResponseWriter, r *http.Request) (url.Values, error) {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/x-www-form-urlencoded" {
		return nil, errors.New("the body must be application/x-www-form-urlencoded")
	}
	if r.URL.RawQuery != "" {
		return nil, errors.New("parameters must be sent in the body, not the query string")
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxTokenForm)
	if err := r.ParseForm(); err != nil {
		return nil, errors.New("the body is not a valid form")
	}
	for name, vs := range r.PostForm {
		if len(vs) > 1 && name != "audience" && name != "resource" {
			return nil, fmt.Errorf("parameter %s is repeated", name)
		}
	}
	return r.PostForm, nil
}

// authenticateClient applies RFC 6749 §2.3: exactly one method, matching
// the client's registration.
func (s *Server) authenticateClient(r *http.Request, form url.Values) (Client, error) {
	user, pass, basic := r.BasicAuth()
	methods := 0
	for _, used := range []bool{basic, form.Has("client_secret"), form.Has("client_assertion")} {
		if used {
			methods++
		}
	}
	switch {
	case methods == 0:
		return Client{}, errors.New("no client authentication")
	case methods > 1:
		return Client{}, errors.New("more than one client authentication method")
	}
	var id, method string
	switch {
	case basic:
		var err1, err2 error
		id, err1 = url.QueryUnescape(user)
		pass, err2 = url.QueryUnescape(pass)
		if err1 != nil || err2 != nil {
			return Client{}, errors.New("the Basic credentials are not form-urlencoded (RFC 6749 §2.3.1)")
		}
		if form.Has("client_id") && form.Get("client_id") != id {
			return Client{}, errors.New("client_id differs from the authenticated client")
		}
		method = ClientSecretBasic
	case form.Has("client_secret"):
		id, pass, method = form.Get("client_id"), form.Get("client_secret"), ClientSecretPost
	default:
		method = PrivateKeyJWT
		if form.Get("client_assertion_type") != clientAssertionType {
			return Client{}, errors.New("client_assertion_type must be " + clientAssertionType)
		}
		var err error
		if id, err = s.assertionClientID(form.Get("client_assertion")); err != nil {
			return Client{}, err
		}
		if form.Has("client_id") && form.Get("client_id") != id {
			return Client{}, errors.New("client_id differs from the assertion's subject")
		}
	}
	s.token.mu.Lock()
	c, ok := s.token.clients[id]
	s.token.mu.Unlock()
	if !ok {
		return Client{}, errors.New("unknown client")
	}
	if c.AuthMethod != "" && c.AuthMethod != method {
		return Client{}, fmt.Errorf("the client is registered for %s, not %s", c.AuthMethod, method)
	}
	if method == PrivateKeyJWT {
		return c, s.verifyAssertion(c, form.Get("client_assertion"))
	}
	if c.Secret == "" || !constantTimeEqual(c.Secret, pass) {
		return Client{}, errors.New("client authentication failed")
	}
	return c, nil
}

// assertionClientID reads the unverified iss of a client assertion, only
// to find whose key verifies it.
func (s *Server) assertionClientID(assertion string) (string, error) {
	var claims jwt.RegisteredClaims
	if _, _, err := jwt.NewParser().ParseUnverified(assertion, &claims); err != nil || claims.Issuer == "" {
		return "", errors.New("the client assertion is not a JWT with an issuer")
	}
	return claims.Issuer, nil
}

// verifyAssertion checks an RFC 7523 §3 client assertion: signed by the
// client's key, iss = sub = client ID, aud the token endpoint or issuer,
// unexpired, and a jti not seen before.
func (s *Server) verifyAssertion(c Client, assertion string) error {
	if c.PublicKey == nil {
		return errors.New("the client has no registered key")
	}
	algs, err := assertionAlgs(c.PublicKey)
	if err != nil {
		return err
	}
	claims := jwt.RegisteredClaims{}
	_, err = jwt.ParseWithClaims(assertion, &claims, func(*jwt.Token) (any, error) { return c.PublicKey, nil },
		jwt.WithValidMethods(algs), jwt.WithIssuer(c.ID), jwt.WithSubject(c.ID),
		jwt.WithAudience(s.TokenURL(), s.Issuer()), jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(s.cfg.Now))
	if err != nil {
		return fmt.Errorf("the client assertion is invalid: %v", err)
	}
	if claims.ID == "" {
		return errors.New("the client assertion has no jti")
	}
	now := s.cfg.Now()
	t := &s.token
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.seenJTI == nil {
		t.seenJTI = map[string]time.Time{}
	}
	if _, seen := t.seenJTI[c.ID+"\x00"+claims.ID]; seen {
		return errors.New("the client assertion was already used (jti replay)")
	}
	if len(t.seenJTI) >= maxSeenAssertions {
		for k, exp := range t.seenJTI {
			if !now.Before(exp) {
				delete(t.seenJTI, k)
			}
		}
		if len(t.seenJTI) >= maxSeenAssertions {
			return errors.New("too many live client assertions")
		}
	}
	t.seenJTI[c.ID+"\x00"+claims.ID] = claims.ExpiresAt.Time
	return nil
}

func assertionAlgs(pub crypto.PublicKey) ([]string, error) {
	switch pub.(type) {
	case *rsa.PublicKey:
		return []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}, nil
	case *ecdsa.PublicKey:
		return []string{"ES256", "ES384", "ES512"}, nil
	case ed25519.PublicKey:
		return []string{"EdDSA"}, nil
	}
	return nil, fmt.Errorf("authtest: unsupported client public key type %T", pub)
}

// validateGrantToken checks a subject token, on-behalf-of assertion or
// actor token: signed by a key this server publishes, with that key's
// algorithm, issued by this server and unexpired; when audience is set, its
// aud must include it.
func (s *Server) validateGrantToken(raw, audience string) (jwt.MapClaims, error) {
	if raw == "" {
		return nil, errors.New("missing")
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods([]string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}),
		jwt.WithIssuer(s.issuer), jwt.WithExpirationRequired(), jwt.WithTimeFunc(s.cfg.Now),
	}
	if audience != "" {
		opts = append(opts, jwt.WithAudience(audience))
	}
	claims := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(raw, claims, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		k, ok := s.Key(kid)
		if !ok {
			return nil, errors.New("unknown key")
		}
		if k.Alg() != "" && k.Alg() != t.Method.Alg() {
			return nil, errors.New("algorithm does not match the key")
		}
		return k.Public(), nil
	}, opts...)
	if err != nil {
		return nil, err
	}
	if sub, _ := claims["sub"].(string); sub == "" {
		return nil, errors.New("no sub")
	}
	return claims, nil
}

func (s *Server) clientCredentials(c Client, form url.Values, jkt string) (map[string]any, *TokenError) {
	scope := form.Get("scope")
	aud := targetAudience(form)
	if aud == nil {
		if res, _, ok := entraScope(scope); ok {
			aud = res
		} else {
			aud = s.cfg.Audience
		}
	}
	claims := map[string]any{"sub": c.ID, "aud": aud, "client_id": c.ID, "azp": c.ID}
	if scope != "" {
		claims["scope"] = scope
	}
	return s.issue(claims, scope, "", jkt)
}

func (s *Server) tokenExchange(c Client, form url.Values, jkt string) (map[string]any, *TokenError) {
	switch form.Get("subject_token_type") {
	case TokenTypeAccessToken, TokenTypeJWT:
	case "":
		return nil, &TokenError{Code: "invalid_request", Description: "subject_token_type is required"}
	default:
		return nil, &TokenError{Code: "invalid_request", Description: "unsupported subject_token_type"}
	}
	issued := form.Get("requested_token_type")
	switch issued {
	case "":
		issued = TokenTypeAccessToken
	case TokenTypeAccessToken, TokenTypeJWT:
	default:
		return nil, &TokenError{Code: "invalid_request", Description: "unsupported requested_token_type"}
	}
	subject, err := s.validateGrantToken(form.Get("subject_token"), c.Audience)
	if err != nil {
		return nil, &TokenError{Code: "invalid_grant", Description: "the subject token is invalid: " + safeReason(err)}
	}
	// The actor is the actor token's subject (RFC 8693 §2.1), or else the
	// authenticated client; it becomes act.sub and any act already in the
	// subject token is nested inside (§4.1).
	actor := map[string]any{"sub": c.ID}
	if form.Has("actor_token") {
		if tt := form.Get("actor_token_type"); tt != TokenTypeAccessToken && tt != TokenTypeJWT {
			return nil, &TokenError{Code: "invalid_request", Description: "actor_token_type is required with actor_token and must be access_token or jwt"}
		}
		at, err := s.validateGrantToken(form.Get("actor_token"), "")
		if err != nil {
			return nil, &TokenError{Code: "invalid_grant", Description: "the actor token is invalid: " + safeReason(err)}
		}
		actor = map[string]any{"sub": at["sub"], "iss": at["iss"]}
	} else if form.Has("actor_token_type") {
		return nil, &TokenError{Code: "invalid_request", Description: "actor_token_type without actor_token"}
	}
	// may_act (§4.4) limits who may act for the subject.
	if may, ok := subject["may_act"].(map[string]any); ok && may["sub"] != actor["sub"] {
		return nil, &TokenError{Code: "invalid_grant", Description: "the actor is not allowed by the subject token's may_act"}
	}
	if prior, ok := subject["act"].(map[string]any); ok {
		actor["act"] = prior
	}
	aud := targetAudience(form)
	if aud == nil {
		return nil, &TokenError{Status: http.StatusBadRequest, Code: "invalid_target", Description: "audience or resource is required"}
	}
	scope := form.Get("scope")
	claims := map[string]any{"sub": subject["sub"], "aud": aud, "client_id": c.ID, "act": actor}
	if scope != "" {
		claims["scope"] = scope
	}
	for _, k := range []string{"tid", "oid", "tenant"} {
		if v, ok := subject[k]; ok {
			claims[k] = v
		}
	}
	return s.issue(claims, scope, issued, jkt)
}

func (s *Server) onBehalfOf(c Client, form url.Values, jkt string) (map[string]any, *TokenError) {
	if form.Get("requested_token_use") != "on_behalf_of" {
		return nil, &TokenError{Code: "invalid_request", Description: "requested_token_use must be on_behalf_of"}
	}
	scope := form.Get("scope")
	resource, names, ok := entraScope(scope)
	if !ok {
		return nil, &TokenError{Code: "invalid_scope", Description: "scope must name one resource, as in api://calendar/.default"}
	}
	subject, err := s.validateGrantToken(form.Get("assertion"), c.Audience)
	if err != nil {
		return nil, &TokenError{Code: "invalid_grant", Description: "the assertion is invalid: " + safeReason(err)}
	}
	claims := map[string]any{"sub": subject["sub"], "aud": resource, "scp": strings.Join(names, " "), "azp": c.ID, "appid": c.ID}
	for _, k := range []string{"tid", "oid", "name", "preferred_username"} {
		if v, ok := subject[k]; ok {
			claims[k] = v
		}
	}
	return s.issue(claims, scope, "", jkt)
}

// issue mints the token and builds the RFC 6749 §5.1 answer; issuedType
// is set for token exchange (RFC 8693 §2.2.1); jkt, when set, binds the
// token to a DPoP key (RFC 9449 §6.1) and makes its type DPoP (§5).
func (s *Server) issue(claims map[string]any, scope, issuedType, jkt string) (map[string]any, *TokenError) {
	now := s.cfg.Now()
	tokenType := "Bearer"
	if jkt != "" {
		claims["cnf"] = map[string]any{"jkt": jkt}
		tokenType = "DPoP"
	}
	claims["iss"] = s.issuer
	claims["iat"] = now.Unix()
	claims["exp"] = now.Add(s.cfg.TokenLifetime).Unix()
	claims["jti"] = randomID()
	tok, err := s.MintToken(Token{Claims: claims, NoDefaults: true})
	if err != nil {
		return nil, &TokenError{Status: http.StatusInternalServerError, Code: "server_error", Description: "signing failed"}
	}
	resp := map[string]any{
		"access_token": tok,
		"token_type":   tokenType,
		"expires_in":   int64(s.cfg.TokenLifetime / time.Second),
	}
	if scope != "" {
		resp["scope"] = scope
	}
	if issuedType != "" {
		resp["issued_token_type"] = issuedType
	}
	return resp, nil
}

// targetAudience returns the aud for the requested audience and resource
// parameters: nil when there are none, a string for one, a list for more.
func targetAudience(form url.Values) any {
	auds := append(slices.Clone(form["audience"]), form["resource"]...)
	auds = slices.DeleteFunc(auds, func(a string) bool { return a == "" })
	switch len(auds) {
	case 0:
		return nil
	case 1:
		return auds[0]
	}
	return slices.Compact(auds)
}

// entraScope splits Entra-style scopes ("api://calendar/Calendars.Read",
// "api://calendar/.default") into their one resource and the scope names;
// OpenID scopes are ignored, ".default" grants "user_impersonation". It
// reports false for no resource or more than one.
func entraScope(scope string) (resource string, names []string, ok bool) {
	for _, s := range splitScope(scope) {
		if !oauthsyntax.IsScopeToken(s) {
			return "", nil, false // RFC 6749 §3.3: no control characters, quotes or backslashes
		}
		switch s {
		case "openid", "profile", "email", "offline_access":
			continue
		}
		i := strings.LastIndexByte(s, '/')
		if i <= 0 || i == len(s)-1 {
			return "", nil, false
		}
		res, name := s[:i], s[i+1:]
		if resource != "" && res != resource {
			return "", nil, false
		}
		resource = res
		if name == ".default" {
			name = "user_impersonation"
		}
		if !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	return resource, names, resource != ""
}

// safeReason turns a validation error into a short reason that never
// quotes the token.
func safeReason(err error) string {
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return "expired"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return "wrong audience"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return "wrong issuer"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
		return "bad signature or unknown key"
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "malformed"
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return "not valid yet"
	}
	return "rejected"
}

func writeTokenError(w http.ResponseWriter, e *TokenError) {
	status := e.Status
	if status == 0 {
		status = http.StatusBadRequest
	}
	body := map[string]any{"error": e.Code}
	if e.Description != "" {
		body["error_description"] = e.Description
	}
	if e.SubError != "" {
		body["suberror"] = e.SubError
	}
	if e.Claims != "" {
		body["claims"] = e.Claims
	}
	if len(e.ErrorCodes) > 0 {
		body["error_codes"] = e.ErrorCodes
	}
	writeJSON(w, status, body)
}

func constantTimeEqual(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// splitScope splits a scope string on the space character only (RFC 6749
// §3.3), as auth.SplitScope does; authtest does not import auth.
func splitScope(s string) []string {
	var out []string
	for tok := range strings.SplitSeq(s, " ") {
		if tok != "" {
			out = append(out, tok)
		}
	}
	return out
}
