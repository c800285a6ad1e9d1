package interop

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	mcpgoclient "github.com/mark3labs/mcp-go/client"
	mcpgotransport "github.com/mark3labs/mcp-go/client/transport"
	mcpgo "github.com/mark3labs/mcp-go/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/auth/authtest"
	"github.com/mcpguard/mcpguard/e2e/internal/e2etest"
	"github.com/mcpguard/mcpguard/e2e/oidcprovider"
	"github.com/mcpguard/mcpguard/obo"
)

// The DPoP (RFC 9449, SEP-1932) interop run: examples/prodmode, built and
// run as its own process with MCPGUARD_DPOP=required, trusts oidc-provider
// (whose DPoP feature binds tokens requested with a proof, and here also
// demands its server nonce), and is called by
//   - the official TypeScript client (@modelcontextprotocol/client, its
//     own DPoP support), which starts with no token and discovers the
//     authorization server from prodmode's challenge;
//   - mcpguard's obo exchanger as a DPoP client (client credentials) with
//     mcp-go's client over obo's Transport;
// in both protocol eras, and by raw requests that replay a proof or
// downgrade the bound token to Bearer, which prodmode refuses.

var (
	// dpopTS is registered with dpop_bound_access_tokens: the provider
	// issues it no token without a proof.
	dpopTS = client{id: "dpop-ts", secret: "dpop-ts-secret-0123456789abcdef01234", scope: "notes:read notes:write", tenant: "acme"}
	dpopGo = client{id: "dpop-go", secret: "dpop-go-secret-0123456789abcdef01234", scope: "notes:read", tenant: "globex"}
	// plain gets bearer tokens (it sends no proof).
	plain = client{id: "plain-app", secret: "plain-secret-0123456789abcdef0123456", scope: "notes:read", tenant: "acme"}
)

var eras = []string{mcpgo.ProtocolVersion20251125, mcpgo.ProtocolVersion20260728}

// prodmodeBinary builds examples/prodmode once per test binary.
var prodmodeBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "mcpguard-e2e-prodmode-")
	if err != nil {
		return "", err
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	root := filepath.Join(wd, "..", "..") // e2e/interop → the repository
	bin := filepath.Join(dir, "prodmode")
	cmd := exec.Command("go", "build", "-o", bin, "./examples/prodmode")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building examples/prodmode: %v\n%s", err, out)
	}
	return bin, nil
})

type dpopEnv struct {
	provider *oidcprovider.Provider
	url      string // prodmode's resource URL
	jsDir    string
}

// setupDPoP starts oidc-provider (nonces required) and prodmode with
// MCPGUARD_DPOP=required trusting it.
func setupDPoP(t *testing.T) *dpopEnv {
	t.Helper()
	jsDir := e2etest.JSDir(t)
	e2etest.SkipUnlessInstalled(t, func() error { return oidcprovider.Installed(jsDir) }, oidcprovider.ErrNotInstalled)
	bin, err := prodmodeBinary()
	require.NoError(t, err)

	var stderr bytes.Buffer
	p, err := oidcprovider.Start(context.Background(), oidcprovider.Config{
		JSDir:   jsDir,
		WorkDir: t.TempDir(),
		Log:     &lockedWriter{w: &stderr},
		Clients: []oidcprovider.Client{
			{ID: dpopTS.id, Secret: dpopTS.secret, Scope: dpopTS.scope, Tenant: dpopTS.tenant, DPoPBound: true},
			{ID: dpopGo.id, Secret: dpopGo.secret, Scope: dpopGo.scope, Tenant: dpopGo.tenant, DPoPBound: true},
			{ID: plain.id, Secret: plain.secret, Scope: plain.scope, Tenant: plain.tenant},
		},
		Resources: []oidcprovider.Resource{{Prefix: "http://127.0.0.1:", Scope: "notes:read notes:write", TTL: 5 * time.Minute}},
		DPoPNonce: true,
	})
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = p.Stop()
		if t.Failed() {
			t.Logf("provider stderr:\n%s", stderr.String())
		}
	})

	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin)
	cmd.Env = append(os.Environ(),
		"MCPGUARD_ADDR=127.0.0.1:0",
		"MCPGUARD_ISSUER="+p.Issuer(),
		"MCPGUARD_TENANT_CLAIM=tenant",
		"MCPGUARD_DPOP=required",
		"MCPGUARD_RATE_LIMIT=1000",
	)
	var serverLog lockedWriter
	serverLog.w = &bytes.Buffer{}
	cmd.Stderr = &serverLog
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		if t.Failed() {
			serverLog.mu.Lock()
			t.Logf("prodmode stderr:\n%s", serverLog.w.String())
			serverLog.mu.Unlock()
		}
	})
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), "listening on "); ok {
				ready <- u
			}
		}
		close(ready)
	}()
	select {
	case u, ok := <-ready:
		require.True(t, ok, "prodmode exited before listening")
		return &dpopEnv{provider: p, url: u, jsDir: jsDir}
	case <-time.After(2 * time.Minute):
		t.Fatal("prodmode did not start")
	}
	return nil
}

// proofKey is an ES256 key as obo's DPoPKey and as authtest's, for proofs
// of raw requests made with the same binding.
func proofKey(t *testing.T) (*ecdsa.PrivateKey, *authtest.DPoPKey) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	ak, err := authtest.NewKey("dpop", "ES256", k)
	require.NoError(t, err)
	dk, err := authtest.DPoPKeyFrom(ak)
	require.NoError(t, err)
	return k, dk
}

// claimsOf decodes a JWT's payload without verifying it (prodmode does).
func claimsOf(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	require.Len(t, parts, 3, "a JWT access token")
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m))
	return m
}

type tsResult struct {
	Tools      []string `json:"tools"`
	Text       string   `json:"text"`
	TokenType  string   `json:"tokenType"`
	Version    string   `json:"protocolVersion"`
	Thumbprint string   `json:"thumbprint"`
	Requests   []struct {
		Path   string `json:"path"`
		Method string `json:"method"`
		Scheme string `json:"scheme"`
		Proof  bool   `json:"proof"`
		Status int    `json:"status"`
	} `json:"requests"`
}

// TestDPoPTypeScriptClient: the official TypeScript client, with no token
// at first, discovers oidc-provider from prodmode's DPoP challenge, gets a
// DPoP-bound token (a proof on the token request, retried with the
// provider's nonce) and calls tools with the DPoP scheme and a proof on
// every request, in both eras.
func TestDPoPTypeScriptClient(t *testing.T) {
	e := setupDPoP(t)
	for _, era := range eras {
		t.Run(era, func(t *testing.T) {
			cfgPath := filepath.Join(t.TempDir(), "client.json")
			b, err := json.Marshal(map[string]string{
				"url": e.url, "issuer": e.provider.Issuer(), "clientId": dpopTS.id, "clientSecret": dpopTS.secret,
				"scope": "notes:read", "era": era, "tool": "whoami",
			})
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(cfgPath, b, 0o600))
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, oidcprovider.NodePath(e.jsDir), filepath.Join(e.jsDir, "dpop-client.mjs"), cfgPath)
			cmd.Dir = e.jsDir
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			require.NoError(t, err, "TypeScript client: %s", stderr.String())
			var res tsResult
			require.NoError(t, json.Unmarshal(out, &res), "%s", out)

			assert.Equal(t, era, res.Version, "the era the client spoke")
			assert.True(t, strings.EqualFold(res.TokenType, "DPoP"), "token_type %q", res.TokenType)
			var id struct {
				Subject, Tenant string
			}
			require.NoError(t, json.Unmarshal([]byte(res.Text), &id), res.Text)
			assert.Equal(t, dpopTS.id, id.Subject)
			assert.Equal(t, dpopTS.tenant, id.Tenant)
			assert.Contains(t, res.Tools, "whoami")

			var mcpAuthed, tokenReqs, nonceChallenges int
			for _, r := range res.Requests {
				switch {
				case r.Path == "/mcp" && r.Scheme != "":
					mcpAuthed++
					assert.Equal(t, "DPoP", r.Scheme, "every authenticated MCP request uses the DPoP scheme")
					assert.True(t, r.Proof, "every authenticated MCP request carries a proof")
					assert.Less(t, r.Status, 300, "prodmode accepted %s %s", r.Method, r.Path)
				case strings.Contains(r.Path, "token"):
					tokenReqs++
					assert.True(t, r.Proof, "the token request carries a proof")
					if r.Status == http.StatusBadRequest {
						nonceChallenges++
					}
				}
			}
			assert.GreaterOrEqual(t, mcpAuthed, 3, "initialize (or discover), tools/list, tools/call")
			assert.Equal(t, 1, nonceChallenges, "the provider's use_dpop_nonce, answered by one retry")
			assert.Equal(t, 2, tokenReqs, "%+v", res.Requests)
		})
	}
}

// TestDPoPOboClient: obo's exchanger as a DPoP client gets a bound token
// from oidc-provider (client credentials, one use_dpop_nonce retry), and
// mcp-go's client calls prodmode through obo's Transport in both eras;
// then a replayed proof, the bound token as a bearer token, and an
// unbound token are refused.
func TestDPoPOboClient(t *testing.T) {
	e := setupDPoP(t)
	key, dk := proofKey(t)
	ex, err := obo.New(obo.Config{
		Issuer: e.provider.Issuer(), ClientID: dpopGo.id, ClientSecret: auth.NewCredential(dpopGo.secret),
		DPoPKey: &obo.PrivateKey{Signer: key},
	})
	require.NoError(t, err)
	target := obo.Target{Flavor: obo.ClientCredentials, Resource: e.url, Scopes: []string{"notes:read"}}
	tok, err := ex.Token(context.Background(), target)
	require.NoError(t, err)
	require.Equal(t, "DPoP", tok.TokenType)
	bound := tok.AccessToken.Reveal()
	assert.Equal(t, map[string]any{"jkt": dk.Thumbprint()}, claimsOf(t, bound)["cnf"], "bound to obo's key")

	hc, err := ex.Client(target, nil)
	require.NoError(t, err)
	for _, era := range eras {
		t.Run("mcp-go over obo.Transport "+era, func(t *testing.T) {
			c, err := mcpgoclient.NewStreamableHttpClient(e.url, mcpgotransport.WithHTTPBasicClient(hc))
			require.NoError(t, err)
			defer c.Close()
			init := mcpgo.InitializeRequest{}
			init.Params.ProtocolVersion = era
			init.Params.ClientInfo = mcpgo.Implementation{Name: "e2e-dpop-obo", Version: "1"}
			_, err = c.Initialize(context.Background(), init)
			require.NoError(t, err)
			res, err := c.CallTool(context.Background(), mcpgo.CallToolRequest{Params: mcpgo.CallToolParams{Name: "whoami"}})
			require.NoError(t, err)
			require.False(t, res.IsError)
			text := res.Content[0].(mcpgo.TextContent).Text
			assert.Contains(t, text, `"tenant":"globex"`)
			assert.Contains(t, text, `"subject":"dpop-go"`)
		})
	}

	post := func(t *testing.T, authz string, proofs ...string) (int, string) {
		t.Helper()
		body := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami","arguments":{},"_meta":{` +
			`"` + mcpgo.MetaKeyProtocolVersion + `":"` + mcpgo.ProtocolVersion20260728 + `",` +
			`"` + mcpgo.MetaKeyClientInfo + `":{"name":"e2e-raw","version":"1"},"` + mcpgo.MetaKeyClientCapabilities + `":{}}}}`
		req, err := http.NewRequest(http.MethodPost, e.url, strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set(mcpgo.HeaderProtocolVersion, mcpgo.ProtocolVersion20260728)
		req.Header.Set(mcpgo.HeaderMethod, "tools/call")
		req.Header.Set(mcpgo.HeaderName, "whoami")
		req.Header.Set("Authorization", authz)
		for _, p := range proofs {
			req.Header.Add("DPoP", p)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, strings.Join(resp.Header.Values("WWW-Authenticate"), ", ")
	}
	proof := func() string {
		return dk.MustSign(authtest.Proof{Method: http.MethodPost, URL: e.url, AccessToken: bound})
	}

	t.Run("replayed proof", func(t *testing.T) {
		p := proof()
		status, challenge := post(t, "DPoP "+bound, p)
		require.Equal(t, http.StatusOK, status, challenge)
		status, challenge = post(t, "DPoP "+bound, p)
		assert.Equal(t, http.StatusUnauthorized, status)
		assert.Contains(t, challenge, `DPoP `)
		assert.Contains(t, challenge, `error="invalid_dpop_proof"`)
	})
	t.Run("bound token as a bearer token", func(t *testing.T) {
		for name, proofs := range map[string][]string{"without a proof": nil, "with a proof": {proof()}} {
			status, challenge := post(t, "Bearer "+bound, proofs...)
			assert.Equal(t, http.StatusUnauthorized, status, name)
			assert.Contains(t, challenge, `error="invalid_token"`, name)
		}
	})
	t.Run("unbound token", func(t *testing.T) {
		plainTok, err := e.provider.ClientCredentials(context.Background(), plain.id, plain.secret, e.url, "notes:read")
		require.NoError(t, err)
		assert.True(t, strings.EqualFold(plainTok.TokenType, "Bearer"))
		status, challenge := post(t, "Bearer "+plainTok.AccessToken)
		assert.Equal(t, http.StatusUnauthorized, status, "MCPGUARD_DPOP=required refuses bearer tokens")
		assert.Contains(t, challenge, `DPoP `)
	})
	t.Run("bound client without a proof key", func(t *testing.T) {
		noKey, err := obo.New(obo.Config{Issuer: e.provider.Issuer(), ClientID: dpopGo.id, ClientSecret: auth.NewCredential(dpopGo.secret)})
		require.NoError(t, err)
		_, err = noKey.Token(context.Background(), target)
		var oe *obo.Error
		require.True(t, errors.As(err, &oe), "%v", err)
		t.Logf("oidc-provider refused a proof-less request of a DPoP-bound client: %s", oe.Code)
	})
}
