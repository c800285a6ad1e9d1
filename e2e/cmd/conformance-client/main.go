// Command conformance-client is the MCP client the official conformance
// suite (@modelcontextprotocol/conformance) drives in its client-leg DPoP
// scenarios, auth/dpop and auth/dpop-nonce: the suite plays the
// authorization server and the MCP server and grades the client's DPoP
// proofs (SEP-1932, RFC 9449).
//
// The suite runs it as `conformance-client <server-url>` with
// MCP_CONFORMANCE_SCENARIO naming the scenario and
// MCP_CONFORMANCE_PROTOCOL_VERSION the protocol revision to speak
// (2025-11-25: initialize handshake and a session; 2026-07-28: stateless).
//
// The flow, each step bounded (10 s per HTTP exchange, 1 MiB per body, no
// redirects followed) and failing closed with the step named in the error:
//
//  1. An unauthenticated POST to the server URL; its 401 challenge names
//     the protected resource metadata (RFC 9728 §5.1), else the well-known
//     URL of the server's path is used (§3.1).
//  2. The metadata's resource must be the server URL; its first
//     authorization server's RFC 8414 metadata is fetched and its issuer
//     must match exactly (§3.3).
//  3. Dynamic client registration (RFC 7591) as a native public client.
//  4. The authorization request, authorization code with PKCE S256 and the
//     resource indicator (RFC 8707); the suite's authorization endpoint
//     approves at once, so the redirect's Location is read instead of
//     followed, and its state and iss (RFC 9207) are checked.
//  5. The token request with a DPoP proof (RFC 9449 §5) through
//     authtest.DPoPTransport, which retries an authorization server's
//     use_dpop_nonce answer once with its nonce (§8). Only a token of type
//     DPoP is accepted: a bearer token would be sent without a proof.
//  6. mcp-go's client over Streamable HTTP with the token, through
//     authtest.DPoPTransport: scheme DPoP and a fresh proof (ath, htm, htu)
//     on every request (§7.1), a use_dpop_nonce 401 retried once (§9).
//     It initializes, lists tools and calls the first one.
//
// Steps 1–5 are our own rather than mcp-go's OAuth client
// (transport.OAuthConfig): in v1.2.1 that client signs no DPoP proof, at
// the token endpoint or on MCP requests, and sends a token as
// "<token_type> <token>" alone, so a DPoP-bound token would go out without
// the proof that makes it usable.
//
// No credential (code, verifier, client secret, token) is ever printed.
package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpguard/mcpguard/auth/authtest"
)

const (
	maxBody     = 1 << 20 // per response body
	stepTimeout = 10 * time.Second
	// redirectURI is the loopback redirect a native client registers
	// (RFC 8252 §7.3); nothing listens on it, since the code is read from
	// the authorization endpoint's Location header.
	redirectURI = "http://127.0.0.1:8765/callback"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: conformance-client <server-url>")
		os.Exit(2)
	}
	scenario := os.Getenv("MCP_CONFORMANCE_SCENARIO")
	switch scenario {
	case "auth/dpop", "auth/dpop-nonce":
	default:
		fmt.Fprintf(os.Stderr, "conformance-client: scenario %q is not supported (only auth/dpop and auth/dpop-nonce)\n", scenario)
		os.Exit(2)
	}
	version := os.Getenv("MCP_CONFORMANCE_PROTOCOL_VERSION")
	if version == "" {
		version = "2025-11-25"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
	defer cancel()
	if err := run(ctx, os.Args[len(os.Args)-1], version); err != nil {
		fmt.Fprintln(os.Stderr, "conformance-client:", err)
		os.Exit(1)
	}
	fmt.Println("conformance-client: ok")
}

func run(ctx context.Context, serverURL, version string) error {
	key, err := authtest.NewDPoPKey("ES256")
	if err != nil {
		return fmt.Errorf("DPoP key: %w", err)
	}
	hc := &http.Client{
		Timeout:       stepTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	f := &flow{hc: hc, key: key, serverURL: serverURL}
	tok, err := f.authorize(ctx)
	if err != nil {
		return err
	}
	return callServer(ctx, serverURL, version, &authtest.DPoPTransport{Key: key, Token: tok})
}

// flow is one OAuth authorization-code run.
type flow struct {
	hc        *http.Client
	key       *authtest.DPoPKey
	serverURL string
}

// authorize runs steps 1–5 and returns the DPoP-bound access token.
func (f *flow) authorize(ctx context.Context) (string, error) {
	prmURL, scope, err := f.challenge(ctx)
	if err != nil {
		return "", fmt.Errorf("step 1, challenge: %w", err)
	}
	var prm struct {
		Resource             string   `json:"resource"`
		AuthorizationServers []string `json:"authorization_servers"`
		ScopesSupported      []string `json:"scopes_supported"`
	}
	if err := f.getJSON(ctx, prmURL, &prm); err != nil {
		return "", fmt.Errorf("step 2, protected resource metadata: %w", err)
	}
	if prm.Resource != f.serverURL {
		return "", fmt.Errorf("step 2, protected resource metadata: resource %q is not the server URL %q (RFC 9728 §3.3)", prm.Resource, f.serverURL)
	}
	if len(prm.AuthorizationServers) == 0 {
		return "", errors.New("step 2, protected resource metadata: no authorization_servers")
	}
	if scope == "" {
		scope = strings.Join(prm.ScopesSupported, " ")
	}
	as, err := f.asMetadata(ctx, prm.AuthorizationServers[0])
	if err != nil {
		return "", fmt.Errorf("step 2, authorization server metadata: %w", err)
	}
	clientID, secret, method, err := f.register(ctx, as)
	if err != nil {
		return "", fmt.Errorf("step 3, client registration: %w", err)
	}
	verifier := randomString(32)
	code, err := f.authorizationCode(ctx, as, clientID, scope, prm.Resource, verifier)
	if err != nil {
		return "", fmt.Errorf("step 4, authorization request: %w", err)
	}
	tok, err := f.token(ctx, as, clientID, secret, method, code, verifier, prm.Resource)
	if err != nil {
		return "", fmt.Errorf("step 5, token request: %w", err)
	}
	return tok, nil
}

// challenge sends the unauthenticated request and returns the protected
// resource metadata URL and the scope its 401 challenge names.
func (f *flow) challenge(ctx context.Context) (prmURL, scope string, err error) {
	body := `{"jsonrpc":"2.0","id":0,"method":"ping"}`
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.serverURL, strings.NewReader(body))
	if err != nil {
		return "", "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := f.hc.Do(req)
	if err != nil {
		return "", "", err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody))
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		return "", "", fmt.Errorf("an unauthenticated request got %d, want 401", resp.StatusCode)
	}
	for _, h := range resp.Header.Values("WWW-Authenticate") {
		if v, ok := authParam(h, "resource_metadata"); ok && prmURL == "" {
			prmURL = v
		}
		if v, ok := authParam(h, "scope"); ok && scope == "" {
			scope = v
		}
	}
	if prmURL == "" {
		u, err := url.Parse(f.serverURL)
		if err != nil {
			return "", "", err
		}
		prmURL = u.Scheme + "://" + u.Host + "/.well-known/oauth-protected-resource" + strings.TrimSuffix(u.Path, "/")
	}
	return prmURL, scope, nil
}

// authParam returns the quoted or token value of the auth-param name in a
// WWW-Authenticate value (RFC 9110 §11.6.1). Bounded by the header's size.
func authParam(h, name string) (string, bool) {
	for i := 0; i < len(h); {
		j := strings.Index(h[i:], name+"=")
		if j < 0 {
			return "", false
		}
		j += i
		if j > 0 && h[j-1] != ' ' && h[j-1] != ',' {
			i = j + len(name)
			continue
		}
		v := h[j+len(name)+1:]
		if strings.HasPrefix(v, `"`) {
			end := strings.IndexByte(v[1:], '"')
			if end < 0 {
				return "", false
			}
			return v[1 : 1+end], true
		}
		if end := strings.IndexAny(v, ", "); end >= 0 {
			v = v[:end]
		}
		if strings.ContainsRune(v, '"') {
			// An unquoted value is a token (RFC 9110 §5.6.2): a quote
			// inside one makes the header malformed.
			return "", false
		}
		return v, true
	}
	return "", false
}

// asMeta is the part of RFC 8414 authorization server metadata used.
type asMeta struct {
	Issuer                    string   `json:"issuer"`
	AuthorizationEndpoint     string   `json:"authorization_endpoint"`
	TokenEndpoint             string   `json:"token_endpoint"`
	RegistrationEndpoint      string   `json:"registration_endpoint"`
	CodeChallengeMethods      []string `json:"code_challenge_methods_supported"`
	DPoPSigningAlgs           []string `json:"dpop_signing_alg_values_supported"`
	ISSParameterSupported     bool     `json:"authorization_response_iss_parameter_supported"`
	TokenEndpointAuthMethods  []string `json:"token_endpoint_auth_methods_supported"`
	ClientIDMetadataDocuments bool     `json:"client_id_metadata_document_supported"`
}

// asMetadata fetches issuer's metadata from the RFC 8414 §3.1 well-known
// URL, then OpenID Connect discovery, and checks it (§3.3).
func (f *flow) asMetadata(ctx context.Context, issuer string) (*asMeta, error) {
	u, err := url.Parse(issuer)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("authorization server %q is not an absolute URL", issuer)
	}
	origin, path := u.Scheme+"://"+u.Host, strings.TrimSuffix(u.Path, "/")
	var lastErr error
	for _, wk := range []string{
		origin + "/.well-known/oauth-authorization-server" + path,
		origin + "/.well-known/openid-configuration" + path,
		origin + path + "/.well-known/openid-configuration",
	} {
		var m asMeta
		if err := f.getJSON(ctx, wk, &m); err != nil {
			lastErr = err
			continue
		}
		if m.Issuer != issuer {
			return nil, fmt.Errorf("issuer %q is not the authorization server %q (RFC 8414 §3.3)", m.Issuer, issuer)
		}
		if m.AuthorizationEndpoint == "" || m.TokenEndpoint == "" {
			return nil, errors.New("no authorization_endpoint or token_endpoint")
		}
		if len(m.CodeChallengeMethods) > 0 && !slices.Contains(m.CodeChallengeMethods, "S256") {
			return nil, errors.New("the authorization server does not support PKCE S256")
		}
		if len(m.DPoPSigningAlgs) > 0 && !slices.Contains(m.DPoPSigningAlgs, "ES256") {
			return nil, fmt.Errorf("the authorization server accepts DPoP proofs in %v, not ES256", m.DPoPSigningAlgs)
		}
		return &m, nil
	}
	return nil, lastErr
}

// register registers a native public client (RFC 7591) and returns its
// client ID, the secret when one was issued, and its token endpoint
// authentication method.
func (f *flow) register(ctx context.Context, as *asMeta) (id, secret, method string, err error) {
	if as.RegistrationEndpoint == "" {
		return "", "", "", errors.New("the authorization server has no registration_endpoint")
	}
	reg, _ := json.Marshal(map[string]any{
		"client_name":                "mcpguard conformance client",
		"redirect_uris":              []string{redirectURI},
		"grant_types":                []string{"authorization_code", "refresh_token"},
		"response_types":             []string{"code"},
		"token_endpoint_auth_method": "none",
		"application_type":           "native",
		"dpop_bound_access_tokens":   true,
	})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, as.RegistrationEndpoint, strings.NewReader(string(reg)))
	if err != nil {
		return "", "", "", err
	}
	req.Header.Set("Content-Type", "application/json")
	var out struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
		AuthMethod   string `json:"token_endpoint_auth_method"`
	}
	if err := f.doJSON(req, http.StatusCreated, &out); err != nil {
		return "", "", "", err
	}
	if out.ClientID == "" {
		return "", "", "", errors.New("no client_id in the registration response")
	}
	if out.AuthMethod == "" {
		out.AuthMethod = "none" // what was asked for (RFC 7591 §3.2.1)
	}
	return out.ClientID, out.ClientSecret, out.AuthMethod, nil
}

// authorizationCode makes the authorization request and returns the code
// from the redirect, after checking its state and iss.
func (f *flow) authorizationCode(ctx context.Context, as *asMeta, clientID, scope, resource, verifier string) (string, error) {
	sum := sha256.Sum256([]byte(verifier))
	state := randomString(16)
	q := url.Values{
		"response_type":         {"code"},
		"client_id":             {clientID},
		"redirect_uri":          {redirectURI},
		"state":                 {state},
		"code_challenge":        {base64.RawURLEncoding.EncodeToString(sum[:])},
		"code_challenge_method": {"S256"},
		"resource":              {resource},
	}
	if scope != "" {
		q.Set("scope", scope)
	}
	u, err := url.Parse(as.AuthorizationEndpoint)
	if err != nil {
		return "", err
	}
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return "", err
	}
	resp, err := f.hc.Do(req)
	if err != nil {
		return "", err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody))
	_ = resp.Body.Close()
	if resp.StatusCode/100 != 3 {
		return "", fmt.Errorf("the authorization endpoint answered %d, want a redirect", resp.StatusCode)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		return "", errors.New("the redirect's Location is not a URL")
	}
	if got := loc.Scheme + "://" + loc.Host + loc.Path; got != redirectURI {
		return "", fmt.Errorf("redirected to %q, not the registered redirect URI", got)
	}
	back := loc.Query()
	if back.Get("state") != state {
		return "", errors.New("the redirect's state does not match the request's")
	}
	// RFC 9207 §2.4: a present iss must be the issuer, compared as
	// strings; when the server says it sends iss, it must be present.
	if iss, ok := back["iss"]; ok || as.ISSParameterSupported {
		if !ok || len(iss) != 1 || iss[0] != as.Issuer {
			return "", errors.New("the redirect's iss is missing or is not the authorization server's issuer (RFC 9207)")
		}
	}
	if e := back.Get("error"); e != "" {
		return "", fmt.Errorf("the authorization server refused: %q", e)
	}
	code := back.Get("code")
	if code == "" {
		return "", errors.New("no code in the redirect")
	}
	return code, nil
}

// token redeems the code with a DPoP proof and returns the DPoP-bound
// access token.
func (f *flow) token(ctx context.Context, as *asMeta, clientID, secret, method, code, verifier, resource string) (string, error) {
	form := url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {code},
		"redirect_uri":  {redirectURI},
		"code_verifier": {verifier},
		"resource":      {resource},
	}
	if method == "client_secret_post" {
		form.Set("client_id", clientID)
		form.Set("client_secret", secret)
	} else if method != "client_secret_basic" {
		form.Set("client_id", clientID)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, as.TokenEndpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if method == "client_secret_basic" {
		req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret)) // RFC 6749 §2.3.1
	}
	// A token request's proof: no access token, so no ath; the transport
	// retries a use_dpop_nonce answer once with the server's nonce.
	tc := *f.hc
	tc.Transport = &authtest.DPoPTransport{Key: f.key}
	var out struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
	}
	if err := (&flow{hc: &tc}).doJSON(req, http.StatusOK, &out); err != nil {
		return "", err
	}
	if out.AccessToken == "" {
		return "", errors.New("no access_token in the token response")
	}
	if !strings.EqualFold(out.TokenType, "DPoP") {
		return "", fmt.Errorf("token_type %q, want DPoP: the token would not be bound to the proof key (RFC 9449 §5)", out.TokenType)
	}
	return out.AccessToken, nil
}

// callServer is step 6: mcp-go's client with the DPoP transport.
func callServer(ctx context.Context, serverURL, version string, dt *authtest.DPoPTransport) error {
	hc := &http.Client{Transport: dt, Timeout: stepTimeout}
	tr, err := transport.NewStreamableHTTP(serverURL, transport.WithHTTPBasicClient(hc))
	if err != nil {
		return fmt.Errorf("step 6, transport: %w", err)
	}
	c := client.NewClient(tr, client.WithProtocolVersion(version))
	defer func() { _ = c.Close() }()
	if err := c.Start(ctx); err != nil {
		return fmt.Errorf("step 6, start: %w", err)
	}
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = version
	init.Params.ClientInfo = mcp.Implementation{Name: "mcpguard-conformance-client", Version: "1.0.0"}
	if _, err := c.Initialize(ctx, init); err != nil {
		return fmt.Errorf("step 6, initialize: %w", err)
	}
	tools, err := c.ListTools(ctx, mcp.ListToolsRequest{})
	if err != nil {
		return fmt.Errorf("step 6, tools/list: %w", err)
	}
	if len(tools.Tools) == 0 {
		return errors.New("step 6, tools/list: no tools")
	}
	call := mcp.CallToolRequest{}
	call.Params.Name = tools.Tools[0].Name
	call.Params.Arguments = map[string]any{}
	res, err := c.CallTool(ctx, call)
	if err != nil {
		return fmt.Errorf("step 6, tools/call %s: %w", call.Params.Name, err)
	}
	if res.IsError {
		return fmt.Errorf("step 6, tools/call %s: the tool returned an error result", call.Params.Name)
	}
	return nil
}

// getJSON GETs u and decodes its 200 JSON answer into v.
func (f *flow) getJSON(ctx context.Context, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	return f.doJSON(req, http.StatusOK, v)
}

// doJSON sends req and decodes an answer of status want, at most maxBody
// bytes, into v. An error answer's RFC 6749 §5.2 error code is reported;
// its description is not, as it is the server's free text.
func (f *flow) doJSON(req *http.Request, want int, v any) error {
	resp, err := f.hc.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return fmt.Errorf("%s %s: reading the answer: %w", req.Method, req.URL.Path, err)
	}
	if len(body) > maxBody {
		return fmt.Errorf("%s %s: the answer is over %d bytes", req.Method, req.URL.Path, maxBody)
	}
	if resp.StatusCode != want {
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(body, &e)
		return fmt.Errorf("%s %s: status %d, want %d (error %q)", req.Method, req.URL.Path, resp.StatusCode, want, e.Error)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("%s %s: the answer is not the JSON expected: %w", req.Method, req.URL.Path, err)
	}
	return nil
}

// randomString returns n random bytes, base64url: PKCE verifiers (RFC 7636
// §4.1, 43 characters for n = 32) and states.
func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
