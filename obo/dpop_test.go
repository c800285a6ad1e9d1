package obo_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/auth/authtest"
	"github.com/mcpguard/mcpguard/obo"
)

// dpopDownstream is a downstream API guarded by auth.Middleware with
// DPoPRequired: it accepts a DPoP-bound token only with a valid proof
// (RFC 9449 §4.3, checked by auth, not by obo), optionally demanding its
// server nonce, and records what each request carried.
type dpopDownstream struct {
	srv      *httptest.Server
	url      string
	mu       sync.Mutex
	schemes  []string
	statuses []int
	bodies   []string
}

func newDPoPDownstream(t *testing.T, idp *authtest.Server, nonce bool) *dpopDownstream {
	t.Helper()
	d := &dpopDownstream{}
	var h http.Handler
	d.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	t.Cleanup(d.srv.Close)
	d.url = d.srv.URL + "/api"
	v, err := auth.NewJWTValidator(auth.JWTConfig{
		Issuer: idp.Issuer(), Audience: d.url, JWKSURL: idp.JWKSURL(),
		DPoP: auth.DPoPConfig{Mode: auth.DPoPRequired, Resource: d.url, RequireNonce: nonce},
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = v.Close() })
	mw, err := auth.Middleware(v, auth.MiddlewareConfig{ResourceMetadataURL: d.srv.URL + "/.well-known/oauth-protected-resource"})
	require.NoError(t, err)
	inner := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		d.mu.Lock()
		d.bodies = append(d.bodies, string(b))
		d.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		inner.ServeHTTP(rec, r)
		scheme, _, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		d.mu.Lock()
		d.schemes = append(d.schemes, scheme)
		d.statuses = append(d.statuses, rec.Code)
		d.mu.Unlock()
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	})
	return d
}

func (d *dpopDownstream) log() ([]string, []int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.schemes...), append([]int(nil), d.statuses...)
}

func newDPoPKey(t *testing.T) (*ecdsa.PrivateKey, *authtest.DPoPKey) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	ak, err := authtest.NewKey("dpop", "ES256", k)
	require.NoError(t, err)
	dk, err := authtest.DPoPKeyFrom(ak)
	require.NoError(t, err)
	return k, dk
}

// TestDPoPAgainstAuthtest: with Config.DPoPKey the exchanger sends a proof
// to the test IdP's token endpoint for every flavor and client
// authentication method, gets a token bound to its key (token_type DPoP,
// cnf.jkt its thumbprint), and Transport presents it downstream with the
// DPoP scheme and a fresh proof that auth's RFC 9449 §4.3 checks accept.
func TestDPoPAgainstAuthtest(t *testing.T) {
	s := newIDP(t, authtest.Config{})
	key, dk := newDPoPKey(t)
	down := newDPoPDownstream(t, s.idp, false)
	user := s.idp.MustMint(map[string]any{"sub": "alice", "scope": "mcp"})
	targets := map[string]struct {
		target obo.Target
		ctx    context.Context
	}{
		"token exchange":     {obo.Target{Flavor: obo.TokenExchange, Audience: down.url}, userCtx(user)},
		"client credentials": {obo.Target{Flavor: obo.ClientCredentials, Resource: down.url}, context.Background()},
	}
	proofs := 0
	for _, method := range []obo.AuthMethod{obo.ClientSecretBasic, obo.ClientSecretPost, obo.PrivateKeyJWT} {
		ex := s.exchanger(t, method, func(c *obo.Config) { c.DPoPKey = &obo.PrivateKey{Signer: key} })
		for name, tc := range targets {
			t.Run(string(method)+"/"+name, func(t *testing.T) {
				tok, err := ex.Token(tc.ctx, tc.target)
				require.NoError(t, err)
				proofs++
				assert.Equal(t, proofs, s.idp.TokenDPoPProofs(), "the token request carried a valid proof")
				assert.Equal(t, "DPoP", tok.TokenType)
				claims := s.verify(t, tok.AccessToken.Reveal(), down.url)
				assert.Equal(t, map[string]any{"jkt": dk.Thumbprint()}, claims["cnf"])

				c, err := ex.Client(tc.target, nil)
				require.NoError(t, err)
				for range 2 { // a fresh proof each time: a reused jti would be refused
					req, err := http.NewRequestWithContext(tc.ctx, http.MethodPost, down.url+"?q=1", strings.NewReader("{}"))
					require.NoError(t, err)
					resp, err := c.Do(req)
					require.NoError(t, err)
					_ = resp.Body.Close()
					assert.Equal(t, http.StatusNoContent, resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
				}
			})
		}
	}
	schemes, _ := down.log()
	for _, sc := range schemes {
		assert.Equal(t, "DPoP", sc, "never sent as a bearer token")
	}
}

// TestDPoPNonces: a token endpoint that requires a nonce answers the first
// request 400 use_dpop_nonce with DPoP-Nonce; the exchanger retries once
// with it (and a fresh client assertion, since each carries a jti). A
// downstream that requires a nonce answers 401 use_dpop_nonce; Transport
// retries once with it, re-sending the body, and uses the remembered
// nonce from then on.
func TestDPoPNonces(t *testing.T) {
	s := newIDP(t, authtest.Config{})
	s.idp.SetTokenDPoPNonce("as-nonce-1")
	key, _ := newDPoPKey(t)
	down := newDPoPDownstream(t, s.idp, true)
	ex := s.exchanger(t, obo.PrivateKeyJWT, func(c *obo.Config) { c.DPoPKey = &obo.PrivateKey{Signer: key} })
	target := obo.Target{Flavor: obo.ClientCredentials, Resource: down.url}
	tok, err := ex.Token(context.Background(), target)
	require.NoError(t, err)
	assert.Equal(t, "DPoP", tok.TokenType)
	assert.Equal(t, 2, s.idp.TokenRequests(), "one challenge, one retry")
	assert.Equal(t, 1, s.idp.TokenDPoPProofs())

	c, err := ex.Client(target, nil)
	require.NoError(t, err)
	post := func(body string) int {
		req, err := http.NewRequest(http.MethodPost, down.url, strings.NewReader(body))
		require.NoError(t, err)
		resp, err := c.Do(req)
		require.NoError(t, err)
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	assert.Equal(t, http.StatusNoContent, post(`{"n":1}`))
	assert.Equal(t, http.StatusNoContent, post(`{"n":2}`))
	_, statuses := down.log()
	assert.Equal(t, []int{401, 204, 204}, statuses, "one nonce challenge, then the remembered nonce")

	// A request without a body is retried too, on a fresh exchanger (no
	// nonce remembered yet).
	exGet := s.exchanger(t, obo.ClientSecretBasic, func(c *obo.Config) { c.DPoPKey = &obo.PrivateKey{Signer: key} })
	cGet, err := exGet.Client(target, nil)
	require.NoError(t, err)
	req, err := http.NewRequest(http.MethodGet, down.url, nil)
	require.NoError(t, err)
	resp, err := cGet.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusNoContent, resp.StatusCode)
	_, statuses = down.log()
	assert.Equal(t, []int{401, 204, 204, 401, 204}, statuses)
	down.mu.Lock()
	assert.Equal(t, []string{`{"n":1}`, `{"n":2}`, ""}, down.bodies, "the retried request carried its body")
	down.mu.Unlock()

	// A body that cannot be re-read is not retried: the challenge is the
	// answer.
	s2 := newIDP(t, authtest.Config{})
	down2 := newDPoPDownstream(t, s2.idp, true)
	ex2 := s2.exchanger(t, obo.ClientSecretBasic, func(c *obo.Config) { c.DPoPKey = &obo.PrivateKey{Signer: key} })
	c2, err := ex2.Client(obo.Target{Flavor: obo.ClientCredentials, Resource: down2.url}, nil)
	require.NoError(t, err)
	req, err = http.NewRequest(http.MethodPost, down2.url, io.NopCloser(strings.NewReader("x")))
	require.NoError(t, err)
	resp, err = c2.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	assert.Contains(t, resp.Header.Get("WWW-Authenticate"), "use_dpop_nonce")
}

// TestDPoPBoundClientNeedsKey: a client whose tokens the IdP binds
// (DPoPBound) gets none without Config.DPoPKey, and an answer of
// token_type DPoP is refused by an exchanger that has no key to prove it.
func TestDPoPBoundClientNeedsKey(t *testing.T) {
	s := newIDP(t, authtest.Config{})
	require.NoError(t, s.idp.RegisterClient(authtest.Client{ID: "mcp-bound", Secret: idpSecret, DPoPBound: true}))
	cfg := obo.Config{TokenEndpoint: s.idp.TokenURL(), ClientID: "mcp-bound", ClientSecret: auth.NewCredential(idpSecret)}
	ex, err := obo.New(cfg)
	require.NoError(t, err)
	target := obo.Target{Flavor: obo.ClientCredentials, Resource: "https://api.example.com"}
	_, err = ex.Token(context.Background(), target)
	var oe *obo.Error
	require.True(t, errors.As(err, &oe), "%v", err)
	assert.Equal(t, "invalid_dpop_proof", oe.Code)

	key, _ := newDPoPKey(t)
	cfg.DPoPKey = &obo.PrivateKey{Signer: key}
	ex, err = obo.New(cfg)
	require.NoError(t, err)
	tok, err := ex.Token(context.Background(), target)
	require.NoError(t, err)
	assert.Equal(t, "DPoP", tok.TokenType)
}

// TestDPoPConfig: the proof key follows PrivateKey's rules, and a proof
// names its key only by the jwk header.
func TestDPoPConfig(t *testing.T) {
	key, _ := newDPoPKey(t)
	base := obo.Config{TokenEndpoint: "https://as.example.com/token", ClientID: "c", ClientSecret: auth.NewCredential("s")}
	for name, k := range map[string]*obo.PrivateKey{
		"no signer":     {},
		"kid":           {Signer: key, KeyID: "k1"},
		"x5t":           {Signer: key, Thumbprint: "abc"},
		"alg off curve": {Signer: key, Algorithm: "ES384"},
		"symmetric alg": {Signer: key, Algorithm: "HS256"},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := base
			cfg.DPoPKey = k
			_, err := obo.New(cfg)
			require.ErrorIs(t, err, obo.ErrConfig)
			assert.Contains(t, err.Error(), "Config.DPoPKey")
		})
	}
	cfg := base
	cfg.DPoPKey = &obo.PrivateKey{Signer: key}
	_, err := obo.New(cfg)
	require.NoError(t, err)
}
