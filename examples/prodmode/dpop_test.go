package main

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/client"
	mcptransport "github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/auth/authtest"
)

// dpopClient is an initialized mcp-go client speaking version whose every
// request carries the bound token with the DPoP scheme and a fresh proof
// (authtest.DPoPTransport), over real HTTP.
func (in *instance) dpopClient(t *testing.T, key *authtest.DPoPKey, token, version string) *client.Client {
	t.Helper()
	hc := &http.Client{Transport: &authtest.DPoPTransport{Key: key, Token: token}}
	c, err := client.NewStreamableHttpClient(in.url, mcptransport.WithHTTPBasicClient(hc))
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = version
	init.Params.ClientInfo = mcp.Implementation{Name: "prodmode-dpop-test", Version: "1"}
	_, err = c.Initialize(context.Background(), init)
	require.NoError(t, err)
	return c
}

// rawDPoP sends a stateless tools/call with the given Authorization and
// DPoP headers.
func (in *instance) rawDPoP(t *testing.T, authz string, proofs ...string) response {
	t.Helper()
	return in.post(t, "", callBody("whoami", nil), func(r *http.Request) {
		r.Header.Set(mcp.HeaderMethod, "tools/call")
		r.Header.Set(mcp.HeaderName, "whoami")
		r.Header.Set("Authorization", authz)
		for _, p := range proofs {
			r.Header.Add("DPoP", p)
		}
	})
}

func TestDPoPRequired(t *testing.T) {
	in := start(t, map[string]*string{"MCPGUARD_DPOP": ptr("required")})
	key, err := authtest.NewDPoPKey("ES256")
	require.NoError(t, err)
	claims := map[string]any{"aud": in.url, "sub": "alice", "tenant_id": "acme", "scope": "notes:read"}
	bound := in.idp.MustMintBound(claims, key)
	metaURL := strings.TrimSuffix(in.url, "/mcp") + "/.well-known/oauth-protected-resource/mcp"

	for _, era := range eras {
		t.Run("mcp-go client "+era, func(t *testing.T) {
			c := in.dpopClient(t, key, bound, era)
			res, err := c.CallTool(context.Background(), mcp.CallToolRequest{Params: mcp.CallToolParams{Name: "whoami"}})
			require.NoError(t, err)
			require.False(t, res.IsError)
			assert.Contains(t, res.Content[0].(mcp.TextContent).Text, "alice")
			// A second call on the same (now cached) token signs a new proof.
			res, err = c.CallTool(context.Background(), mcp.CallToolRequest{Params: mcp.CallToolParams{Name: "notes_list"}})
			require.NoError(t, err)
			require.False(t, res.IsError)
		})
	}

	proof := func() string {
		return key.MustSign(authtest.Proof{Method: http.MethodPost, URL: in.url, AccessToken: bound})
	}
	t.Run("bound token as bearer", func(t *testing.T) {
		r := in.rawDPoP(t, "Bearer "+bound, proof())
		require.Equal(t, http.StatusUnauthorized, r.status)
		assert.Equal(t, []string{`DPoP algs="ES256 EdDSA RS256 PS256", resource_metadata="` + metaURL + `", error="invalid_token", error_description="a DPoP-bound token must be sent with the DPoP scheme", scope="notes:read"`},
			r.header.Values("WWW-Authenticate"))
	})
	t.Run("unbound token refused", func(t *testing.T) {
		r := in.rawDPoP(t, "Bearer "+in.token(t, nil))
		require.Equal(t, http.StatusUnauthorized, r.status)
		assert.Contains(t, r.header.Get("WWW-Authenticate"), `DPoP algs=`)
	})
	t.Run("replayed proof", func(t *testing.T) {
		p := proof()
		require.Equal(t, http.StatusOK, in.rawDPoP(t, "DPoP "+bound, p).status)
		r := in.rawDPoP(t, "DPoP "+bound, p)
		require.Equal(t, http.StatusUnauthorized, r.status)
		assert.Contains(t, r.header.Get("WWW-Authenticate"), `error="invalid_dpop_proof"`)
	})
	t.Run("proof for another host", func(t *testing.T) {
		p := key.MustSign(authtest.Proof{Method: http.MethodPost, URL: "http://evil.example.com/mcp", AccessToken: bound})
		r := in.rawDPoP(t, "DPoP "+bound, p)
		require.Equal(t, http.StatusUnauthorized, r.status)
		assert.Contains(t, r.header.Get("WWW-Authenticate"), `error="invalid_dpop_proof"`)
	})
	t.Run("step-up 403 carries the DPoP challenge", func(t *testing.T) {
		r := in.post(t, "", callBody("notes_write", map[string]any{"key": "k", "text": "v"}), func(r *http.Request) {
			r.Header.Set(mcp.HeaderMethod, "tools/call")
			r.Header.Set(mcp.HeaderName, "notes_write")
			r.Header.Set("Authorization", "DPoP "+bound)
			r.Header.Set("DPoP", proof())
		})
		require.Equal(t, http.StatusForbidden, r.status, r.body)
		ch := r.header.Get("WWW-Authenticate")
		assert.True(t, strings.HasPrefix(ch, "DPoP algs="), ch)
		assert.Contains(t, ch, `error="insufficient_scope"`)
	})
	t.Run("metadata says DPoP is required", func(t *testing.T) {
		resp, err := http.Get(metaURL)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		assert.Contains(t, string(b), `"dpop_bound_access_tokens_required":true`)
		assert.Contains(t, string(b), `"dpop_signing_alg_values_supported":["ES256","EdDSA","RS256","PS256"]`)
	})
	assert.NotContains(t, in.stderr.String(), bound, "the token is never logged")
}

// TestDPoPRequiredFailuresLimited: with MCPGUARD_DPOP=required the 401s
// carry only a DPoP challenge, and failed authentications are still cut
// with 429 by the per-address limit. Before, only a Bearer challenge was
// counted, so a flood of bad tokens was never cut (found in review).
func TestDPoPRequiredFailuresLimited(t *testing.T) {
	in := start(t, map[string]*string{"MCPGUARD_DPOP": ptr("required"), "MCPGUARD_RATE_LIMIT": ptr("2")}) // burst 4
	n, r := in.untilLimited(t, "not-a-jwt")
	assert.GreaterOrEqual(t, n, 5, "a burst of 4 failures is answered 401 first")
	assert.NotEmpty(t, r.header.Get("Retry-After"))
	assert.Empty(t, r.header.Get("WWW-Authenticate"))
	r = in.call(t, "", "whoami", nil)
	assert.Equal(t, http.StatusTooManyRequests, r.status, "no credential shares the address's budget")
	key, err := authtest.NewDPoPKey("ES256")
	require.NoError(t, err)
	bound := in.idp.MustMintBound(map[string]any{"aud": in.url, "sub": "carol", "tenant_id": "acme", "scope": "notes:read"}, key)
	r = in.rawDPoP(t, "DPoP "+bound, key.MustSign(authtest.Proof{Method: http.MethodPost, URL: in.url, AccessToken: bound}))
	assert.Equal(t, http.StatusOK, r.status, "an authenticated caller of that address is still served: %s", r.body)
}

func TestDPoPAllowed(t *testing.T) {
	in := start(t, map[string]*string{"MCPGUARD_DPOP": ptr("allowed")})
	key, err := authtest.NewDPoPKey("EdDSA")
	require.NoError(t, err)
	bound := in.idp.MustMintBound(map[string]any{"aud": in.url, "sub": "alice", "tenant_id": "acme"}, key)
	for _, era := range eras {
		t.Run(era, func(t *testing.T) {
			res, err := in.dpopClient(t, key, bound, era).CallTool(context.Background(), mcp.CallToolRequest{Params: mcp.CallToolParams{Name: "whoami"}})
			require.NoError(t, err)
			require.False(t, res.IsError)
			// An ordinary bearer client keeps working beside it.
			res, err = in.clientIn(t, in.token(t, nil), era).CallTool(context.Background(), mcp.CallToolRequest{Params: mcp.CallToolParams{Name: "whoami"}})
			require.NoError(t, err)
			require.False(t, res.IsError)
		})
	}
	r := in.post(t, "", `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`)
	require.Equal(t, http.StatusUnauthorized, r.status)
	ch := r.header.Values("WWW-Authenticate")
	require.Len(t, ch, 2, "Bearer and DPoP challenges")
	assert.True(t, strings.HasPrefix(ch[0], "Bearer "))
	assert.True(t, strings.HasPrefix(ch[1], "DPoP algs="))
	assert.Equal(t, http.StatusUnauthorized, in.rawDPoP(t, "Bearer "+bound).status, "no downgrade to bearer")
}

func TestDPoPOffAndConfig(t *testing.T) {
	in := start(t, nil)
	key, err := authtest.NewDPoPKey("ES256")
	require.NoError(t, err)
	bound := in.idp.MustMintBound(map[string]any{"aud": in.url, "sub": "alice", "tenant_id": "acme"}, key)
	assert.Equal(t, http.StatusUnauthorized, in.rawDPoP(t, "Bearer "+bound).status, "a bound token is refused when DPoP is off")
	p := key.MustSign(authtest.Proof{Method: http.MethodPost, URL: in.url, AccessToken: bound})
	assert.Equal(t, http.StatusUnauthorized, in.rawDPoP(t, "DPoP "+bound, p).status)

	_, err = configFromEnv(func(k string) string {
		return map[string]string{"MCPGUARD_ISSUER": "https://idp.example.com", "MCPGUARD_DPOP": "maybe"}[k]
	})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "MCPGUARD_DPOP")
}
