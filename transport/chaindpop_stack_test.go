package transport

import (
	"net/http"
	"sync"
	"testing"

	mcptransport "github.com/mark3labs/mcp-go/client/transport"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/auth/authtest"
)

// noncelessDPoP sends token with the DPoP scheme and a fresh proof signed
// by key on every request, never with a server nonce, and keeps the status
// and challenge of the first answer.
type noncelessDPoP struct {
	key   *authtest.DPoPKey
	token string

	mu     sync.Mutex
	status int
	chal   string
}

func (n *noncelessDPoP) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	u := *r.URL
	u.RawQuery, u.Fragment = "", ""
	proof, err := n.key.Sign(authtest.Proof{Method: r.Method, URL: u.String(), AccessToken: n.token})
	if err != nil {
		return nil, err
	}
	r.Header.Set("Authorization", "DPoP "+n.token)
	r.Header.Set("DPoP", proof)
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err == nil {
		n.mu.Lock()
		if n.status == 0 {
			n.status, n.chal = resp.StatusCode, resp.Header.Get("WWW-Authenticate")
		}
		n.mu.Unlock()
	}
	return resp, err
}

func (n *noncelessDPoP) answer() (int, string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.status, n.chal
}

// TestStackChainIntrospectJWTsNonce: a Guard whose validator is a
// ChainValidator with IntrospectJWTs, the introspection validator requiring
// DPoP server nonces (RFC 9449 §8) and the JWT validator not. A DPoP-bound
// JWT goes through both validators, so its proofs must carry the nonce:
// without one the request is answered 401 use_dpop_nonce in both eras (it
// was served, the introspection validator's setting skipped), and a client
// that follows the nonce challenge is served.
func TestStackChainIntrospectJWTsNonce(t *testing.T) {
	idp := authtest.NewServer(t)
	require.NoError(t, idp.RegisterClient(authtest.Client{ID: "mcp-rs", Secret: "rs-secret"}))
	st := newStack(t, func(c *Config) {
		c.AuthorizationServers = []string{idp.Issuer()}
		jv, err := auth.NewJWTValidator(auth.JWTConfig{
			Issuer: idp.Issuer(), Audience: c.Resource,
			DPoP: auth.DPoPConfig{Mode: auth.DPoPRequired},
		})
		require.NoError(t, err)
		t.Cleanup(func() { _ = jv.Close() })
		iv, err := auth.NewIntrospectionValidator(auth.IntrospectionConfig{
			Issuer: idp.Issuer(), Endpoint: idp.IntrospectionURL(), Audience: c.Resource,
			ClientID: "mcp-rs", ClientSecret: auth.NewCredential("rs-secret"),
			DPoP: auth.DPoPConfig{Mode: auth.DPoPRequired, RequireNonce: true},
		})
		require.NoError(t, err)
		t.Cleanup(func() { _ = iv.Close() })
		c.Validator, err = auth.NewChainValidator(auth.ChainConfig{JWT: jv, Opaque: iv, IntrospectJWTs: true})
		require.NoError(t, err)
	})
	key, err := authtest.NewDPoPKey("ES256")
	require.NoError(t, err)
	for _, era := range eras {
		t.Run(era, func(t *testing.T) {
			bound, err := idp.MintBound(map[string]any{"aud": st.url, "tenant_id": "acme", "sub": "alice", "scope": "notes:read"}, key)
			require.NoError(t, err)

			rt := &noncelessDPoP{key: key, token: bound}
			_, err = eraClient(t, st.url, "", era, mcptransport.WithHTTPBasicClient(&http.Client{Transport: rt}))
			require.Error(t, err, "proofs without the introspection validator's nonce")
			status, chal := rt.answer()
			assert.Equal(t, http.StatusUnauthorized, status)
			assert.Contains(t, chal, `error="use_dpop_nonce"`)

			c, err := eraClient(t, st.url, "", era, mcptransport.WithHTTPBasicClient(&http.Client{
				Transport: &authtest.DPoPTransport{Key: key, Token: bound},
			}))
			require.NoError(t, err, "a client that follows the nonce challenge")
			got, err := callText(t, c, "notes_read")
			require.NoError(t, err)
			assert.Equal(t, "read for acme", got)
		})
	}
}
