package interop

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	mcpgoclient "github.com/mark3labs/mcp-go/client"
	mcpgotransport "github.com/mark3labs/mcp-go/client/transport"
	mcpgo "github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/modelcontextprotocol/go-sdk/auth/extauth"
	gosdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/modelcontextprotocol/go-sdk/oauthex"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/authz"
	"github.com/mcpguard/mcpguard/e2e/internal/e2etest"
	"github.com/mcpguard/mcpguard/e2e/oidcprovider"
	"github.com/mcpguard/mcpguard/tenancy"
	"github.com/mcpguard/mcpguard/transport"
)

type client struct{ id, secret, scope, tenant string }

var (
	acme   = client{id: "acme-app", secret: "acme-secret-0123456789abcdef0123456789", scope: "tools:read tools:write", tenant: "acme"}
	globex = client{id: "globex-app", secret: "globex-secret-0123456789abcdef01234567", scope: "tools:read", tenant: "globex"}
)

// notes are each tenant's data, served by the list_notes tool.
var notes = map[string]string{"acme": "acme roadmap", "globex": "globex payroll"}

// exchange is one request the MCP server answered.
type exchange struct {
	status    int
	challenge string
	token     string // sha256 of the bearer token, hex; empty without one
}

// recorder wraps the whole server and keeps what each request got.
type recorder struct {
	mu  sync.Mutex
	log []exchange
}

func (rc *recorder) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(sw, r)
		e := exchange{status: sw.status, challenge: w.Header().Get("WWW-Authenticate")}
		if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
			e.token = fmt.Sprintf("%x", sha256.Sum256([]byte(tok)))
		}
		rc.mu.Lock()
		rc.log = append(rc.log, e)
		rc.mu.Unlock()
	})
}

func (rc *recorder) exchanges() []exchange {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]exchange(nil), rc.log...)
}

type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// env is an oidc-provider and an MCP server guarded by mcpguard, which
// trusts it through discovery.
type env struct {
	provider *oidcprovider.Provider
	resource string
	rec      *recorder
}

// setup starts the provider and the MCP server. ttl is the access token
// lifetime; leeway the validator's clock-skew tolerance.
func setup(t *testing.T, ttl, leeway time.Duration) *env {
	t.Helper()
	jsDir := e2etest.JSDir(t)
	e2etest.SkipUnlessInstalled(t, func() error { return oidcprovider.Installed(jsDir) }, oidcprovider.ErrNotInstalled)
	ctx := context.Background()

	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	resource := "http://" + l.Addr().String() + "/mcp"

	var stderr bytes.Buffer
	var clients []oidcprovider.Client
	for _, c := range []client{acme, globex} {
		// The Go SDK prefers client_secret_post when the provider offers it.
		clients = append(clients, oidcprovider.Client{ID: c.id, Secret: c.secret, Scope: c.scope, Tenant: c.tenant, PostSecret: true})
	}
	p, err := oidcprovider.Start(ctx, oidcprovider.Config{
		JSDir:     jsDir,
		WorkDir:   t.TempDir(),
		Log:       &lockedWriter{w: &stderr},
		Clients:   clients,
		Resources: []oidcprovider.Resource{{Prefix: resource, Scope: "tools:read tools:write", TTL: ttl}},
		// The Go SDK's client-credentials handler (v1.8.0) sends no RFC 8707
		// resource parameter; the provider then issues for the MCP server.
		DefaultResource: resource,
	})
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = p.Stop()
		if t.Failed() {
			t.Logf("provider stderr:\n%s", stderr.String())
		}
	})

	v, err := auth.NewJWTValidator(auth.JWTConfig{
		Issuer:       p.Issuer(),
		Audience:     resource,
		RequireATJWT: true,
		Leeway:       leeway,
		// A rotated key is picked up within one cooldown.
		RefetchCooldown: 100 * time.Millisecond,
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = v.Close() })
	tenants, err := tenancy.New(tenancy.Config{Claim: "tenant"})
	require.NoError(t, err)
	policy, err := authz.New(authz.Config{ReadScope: "tools:read", WriteScope: "tools:write"})
	require.NoError(t, err)
	guard, err := transport.New(transport.Config{
		Resource:             resource,
		AuthorizationServers: []string{p.Issuer()},
		// scopes_supported names the baseline scope only: a client that is
		// not told which scope to ask for requests all of scopes_supported,
		// and the provider refuses scopes a client is not allowed. More
		// comes by step-up.
		ScopesSupported: []string{"tools:read"},
		Validator:       v,
		Policy:          policy,
		Tenancy:         tenants,
	})
	require.NoError(t, err)

	srv := server.NewMCPServer("interop", "1.0.0",
		append([]server.ServerOption{server.WithToolCapabilities(true)}, guard.ServerOptions()...)...)
	srv.AddTool(mcpgo.NewTool("whoami", mcpgo.WithDescription("Names the caller"), mcpgo.WithReadOnlyHintAnnotation(true)),
		func(ctx context.Context, _ mcpgo.CallToolRequest) (*mcpgo.CallToolResult, error) {
			p, _ := auth.FromContext(ctx)
			tenant, _ := tenancy.FromContext(ctx)
			return mcpgo.NewToolResultText(fmt.Sprintf("sub=%s tenant=%s", p.Subject, tenant)), nil
		})
	srv.AddTool(mcpgo.NewTool("list_notes", mcpgo.WithDescription("The caller's tenant's notes"), mcpgo.WithReadOnlyHintAnnotation(true)),
		func(ctx context.Context, _ mcpgo.CallToolRequest) (*mcpgo.CallToolResult, error) {
			tenant, err := tenancy.Require(ctx)
			if err != nil {
				return nil, err
			}
			return mcpgo.NewToolResultText(notes[tenant]), nil
		})
	srv.AddTool(mcpgo.NewTool("write_note", mcpgo.WithDescription("Needs tools:write"), mcpgo.WithReadOnlyHintAnnotation(false)),
		func(context.Context, mcpgo.CallToolRequest) (*mcpgo.CallToolResult, error) {
			return mcpgo.NewToolResultText("written"), nil
		})
	mux := guard.Handler(srv)
	rec := &recorder{}
	hs := &http.Server{Handler: rec.wrap(mux), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hs.Serve(l) }()
	t.Cleanup(func() { _ = hs.Close() })
	return &env{provider: p, resource: resource, rec: rec}
}

type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (lw *lockedWriter) Write(p []byte) (int, error) {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	return lw.w.Write(p)
}

// goSDKSession connects the official Go SDK's client with no token and its
// client-credentials handler.
func (e *env) goSDKSession(t *testing.T, c client) *gosdk.ClientSession {
	t.Helper()
	cs, err := e.connectGoSDK(c)
	require.NoError(t, err)
	t.Cleanup(func() { _ = cs.Close() })
	return cs
}

func (e *env) connectGoSDK(c client) (*gosdk.ClientSession, error) {
	h, err := extauth.NewClientCredentialsHandler(&extauth.ClientCredentialsHandlerConfig{
		Credentials: &oauthex.ClientCredentials{
			ClientID:         c.id,
			ClientSecretAuth: &oauthex.ClientSecretAuth{ClientSecret: c.secret},
			Issuer:           e.provider.Issuer(),
		},
	})
	if err != nil {
		return nil, err
	}
	cl := gosdk.NewClient(&gosdk.Implementation{Name: "go-sdk-e2e", Version: "1"}, nil)
	return cl.Connect(context.Background(), &gosdk.StreamableClientTransport{Endpoint: e.resource, OAuthHandler: h}, nil)
}

func callText(t *testing.T, cs *gosdk.ClientSession, tool string) (string, bool) {
	t.Helper()
	res, err := cs.CallTool(context.Background(), &gosdk.CallToolParams{Name: tool})
	if err != nil {
		return err.Error(), false
	}
	var b strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(*gosdk.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String(), !res.IsError
}

// TestGoSDKDiscoversTheAuthorizationServer: the Go SDK's client starts
// with no token, gets mcpguard's 401, follows resource_metadata to the
// protected resource metadata, finds oidc-provider there, gets a token with
// client_credentials and calls a tool as itself.
func TestGoSDKDiscoversTheAuthorizationServer(t *testing.T) {
	e := setup(t, 5*time.Minute, 0)
	cs := e.goSDKSession(t, acme)

	text, ok := callText(t, cs, "whoami")
	require.True(t, ok, text)
	assert.Equal(t, "sub=acme-app tenant=acme", text)

	log := e.rec.exchanges()
	require.NotEmpty(t, log)
	first := log[0]
	assert.Equal(t, http.StatusUnauthorized, first.status)
	assert.Empty(t, first.token, "the client starts with no token")
	assert.Contains(t, first.challenge, `resource_metadata="`+strings.TrimSuffix(e.resource, "/mcp")+`/.well-known/oauth-protected-resource/mcp"`)
	assert.NotContains(t, first.challenge, "error=", "RFC 6750 §3.1: no error code without a token")
	var prm, authed int
	for _, x := range log[1:] {
		if x.token != "" && x.status < 300 {
			authed++
		}
		if x.token == "" && x.status == http.StatusOK {
			prm++ // the metadata document
		}
	}
	assert.Positive(t, prm, "the client fetched the protected resource metadata")
	assert.Positive(t, authed, "then sent a bearer token that was accepted")
}

// TestTenantIsolation: two clients of two tenants, side by side, each see
// their own tenant's data only.
func TestTenantIsolation(t *testing.T) {
	e := setup(t, 5*time.Minute, 0)
	sessions := map[client]*gosdk.ClientSession{acme: e.goSDKSession(t, acme), globex: e.goSDKSession(t, globex)}
	var wg sync.WaitGroup
	for c, cs := range sessions {
		wg.Go(func() {
			for range 5 {
				text, ok := callText(t, cs, "list_notes")
				assert.True(t, ok, text)
				assert.Equal(t, notes[c.tenant], text, c.id)
			}
		})
	}
	wg.Wait()
}

// TestScopeGatedTool: the baseline token (tools:read) lists and calls
// read-only tools; the write tool is hidden and refused. mcp-go's client
// with a bearer token holding tools:write may call it.
func TestScopeGatedTool(t *testing.T) {
	e := setup(t, 5*time.Minute, 0)
	cs := e.goSDKSession(t, globex)
	list, err := cs.ListTools(context.Background(), nil)
	require.NoError(t, err)
	var names []string
	for _, tl := range list.Tools {
		names = append(names, tl.Name)
	}
	assert.ElementsMatch(t, []string{"whoami", "list_notes"}, names)
	text, ok := callText(t, cs, "write_note")
	assert.False(t, ok, "a tools:read token cannot call write_note")
	assert.NotContains(t, text, "written")

	ctx := context.Background()
	tok, err := e.provider.ClientCredentials(ctx, acme.id, acme.secret, e.resource, "tools:read", "tools:write")
	require.NoError(t, err)
	mc, err := mcpgoclient.NewStreamableHttpClient(e.resource,
		mcpgotransport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + tok.AccessToken}))
	require.NoError(t, err)
	defer mc.Close()
	require.NoError(t, mc.Start(ctx))
	init := mcpgo.InitializeRequest{}
	init.Params.ProtocolVersion = mcpgo.LATEST_PROTOCOL_VERSION
	init.Params.ClientInfo = mcpgo.Implementation{Name: "mcp-go-e2e", Version: "1"}
	_, err = mc.Initialize(ctx, init)
	require.NoError(t, err)
	req := mcpgo.CallToolRequest{}
	req.Params.Name = "write_note"
	res, err := mc.CallTool(ctx, req)
	require.NoError(t, err)
	require.False(t, res.IsError)
	assert.Equal(t, "written", res.Content[0].(mcpgo.TextContent).Text)
}

// TestTokenExpiry: a token past its exp is refused with 401
// invalid_token; the Go SDK's client (through golang.org/x/oauth2, which
// renews a token shortly before it expires) keeps working with new tokens.
func TestTokenExpiry(t *testing.T) {
	e := setup(t, time.Second, time.Millisecond)
	ctx := context.Background()
	cs := e.goSDKSession(t, acme)
	text, ok := callText(t, cs, "whoami")
	require.True(t, ok, text)

	// mcp-go's client with a fixed token, which it cannot renew.
	tok, err := e.provider.ClientCredentials(ctx, acme.id, acme.secret, e.resource, "tools:read")
	require.NoError(t, err)
	mc, err := mcpgoclient.NewStreamableHttpClient(e.resource,
		mcpgotransport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + tok.AccessToken}))
	require.NoError(t, err)
	defer mc.Close()
	require.NoError(t, mc.Start(ctx))
	init := mcpgo.InitializeRequest{}
	init.Params.ProtocolVersion = mcpgo.LATEST_PROTOCOL_VERSION
	init.Params.ClientInfo = mcpgo.Implementation{Name: "mcp-go-e2e", Version: "1"}
	_, err = mc.Initialize(ctx, init)
	require.NoError(t, err, "the fresh token is accepted")

	time.Sleep(2100 * time.Millisecond) // exp is whole seconds after iat
	_, err = mc.ListTools(ctx, mcpgo.ListToolsRequest{})
	require.Error(t, err, "the expired token is refused")
	text, ok = callText(t, cs, "whoami")
	require.True(t, ok, text)
	assert.Equal(t, "sub=acme-app tenant=acme", text)

	fixed := fmt.Sprintf("%x", sha256.Sum256([]byte(tok.AccessToken)))
	sdkTokens := map[string]bool{}
	refused := false
	for _, x := range e.rec.exchanges() {
		switch {
		case x.token == fixed && x.status == http.StatusUnauthorized:
			refused = true
			assert.Contains(t, x.challenge, `error="invalid_token"`)
		case x.token != "" && x.token != fixed:
			sdkTokens[x.token] = true
		}
	}
	assert.True(t, refused, "the expired token got 401 invalid_token")
	assert.GreaterOrEqual(t, len(sdkTokens), 2, "the Go SDK's client renewed its token")
}

// TestProviderRotationAndRestartMidRun: sessions keep working while the
// provider restarts and rotates its keys; new sessions get tokens signed by
// the new key, which mcpguard fetches from the JWKS on first sight.
func TestProviderRotationAndRestartMidRun(t *testing.T) {
	e := setup(t, 5*time.Minute, 0)
	ctx := context.Background()
	before := e.goSDKSession(t, acme)
	text, ok := callText(t, before, "whoami")
	require.True(t, ok, text)

	require.NoError(t, e.provider.Restart(ctx))
	text, ok = callText(t, before, "whoami")
	assert.True(t, ok, "a session survives a provider restart: %s", text)
	afterRestart := e.goSDKSession(t, globex)
	text, ok = callText(t, afterRestart, "whoami")
	assert.True(t, ok, text)
	assert.Equal(t, "sub=globex-app tenant=globex", text)

	kids, err := e.provider.Rotate(ctx, true)
	require.NoError(t, err)
	require.Len(t, kids, 1)
	// The first token under the new key may arrive within the refetch
	// cooldown of the last JWKS fetch; the client then retries once.
	require.Eventually(t, func() bool {
		cs, err := e.connectGoSDK(acme)
		if err != nil {
			return false
		}
		defer cs.Close()
		res, err := cs.CallTool(ctx, &gosdk.CallToolParams{Name: "whoami"})
		if err != nil || res.IsError || len(res.Content) != 1 {
			return false
		}
		tc, ok := res.Content[0].(*gosdk.TextContent)
		return ok && tc.Text == "sub=acme-app tenant=acme"
	}, 10*time.Second, 200*time.Millisecond, "a token signed by the rotated key is accepted")
}

// TestStepUp: the Go SDK's client holds the baseline token (tools:read);
// calling a write tool gets mcpguard's HTTP 403 insufficient_scope challenge
// naming tools:write, the client asks the provider for tools:read and
// tools:write and the retried call succeeds. A client the provider does not
// allow tools:write stays refused.
func TestStepUp(t *testing.T) {
	e := setup(t, 5*time.Minute, 0)
	cs := e.goSDKSession(t, acme)
	text, ok := callText(t, cs, "whoami")
	require.True(t, ok, text)

	text, ok = callText(t, cs, "write_note")
	require.True(t, ok, text)
	assert.Equal(t, "written", text)

	var challenge string
	tokens := map[string]bool{}
	for _, x := range e.rec.exchanges() {
		if x.token != "" {
			tokens[x.token] = true
		}
		if x.status == http.StatusForbidden {
			challenge = x.challenge
		}
	}
	require.NotEmpty(t, challenge, "the write call was challenged")
	assert.True(t, strings.HasPrefix(challenge, "Bearer "), challenge)
	for _, part := range []string{
		`error="insufficient_scope"`,
		`scope="tools:write"`,
		`resource_metadata="` + strings.TrimSuffix(e.resource, "/mcp") + `/.well-known/oauth-protected-resource/mcp"`,
	} {
		assert.Contains(t, challenge, part)
	}
	assert.Len(t, tokens, 2, "one baseline token, one stepped-up token")

	other := e.goSDKSession(t, globex)
	text, ok = callText(t, other, "write_note")
	assert.False(t, ok, "globex may not get tools:write: %s", text)
	assert.NotContains(t, text, "written")
}
