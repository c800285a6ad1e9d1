package authtest

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestTokenEndpointDPoP: a token request with a valid proof gets a token
// bound to its key; each RFC 9449 §4.3 rule the endpoint checks refuses a
// proof that breaks it alone.
func TestTokenEndpointDPoP(t *testing.T) {
	s := newTokenServer(t)
	k, err := NewDPoPKey("ES256")
	require.NoError(t, err)
	form := url.Values{"grant_type": {GrantClientCredentials}}
	call := func(proofs ...string) (int, map[string]any) {
		req, err := http.NewRequest(http.MethodPost, s.TokenURL(), strings.NewReader(form.Encode()))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(url.QueryEscape(svcID), url.QueryEscape(svcSecret))
		for _, p := range proofs {
			req.Header.Add("DPoP", p)
		}
		resp, err := s.Client().Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		body := map[string]any{}
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
		return resp.StatusCode, body
	}
	sign := func(edit func(*Proof)) string {
		p := Proof{Method: http.MethodPost, URL: s.TokenURL()}
		if edit != nil {
			edit(&p)
		}
		return k.MustSign(p)
	}

	status, body := call(sign(nil))
	require.Equal(t, http.StatusOK, status, "%v", body)
	assert.Equal(t, "DPoP", body["token_type"])
	c, err := s.validateGrantToken(body["access_token"].(string), "")
	require.NoError(t, err)
	assert.Equal(t, map[string]any{"jkt": k.Thumbprint()}, c["cnf"])
	assert.Equal(t, 1, s.TokenDPoPProofs())

	status, body = call()
	require.Equal(t, http.StatusOK, status)
	assert.Equal(t, "Bearer", body["token_type"], "no proof, a bearer token")

	replayed := sign(nil)
	status, _ = call(replayed)
	require.Equal(t, http.StatusOK, status)
	for name, proof := range map[string]string{
		"replayed jti": replayed,
		"wrong htm":    sign(func(p *Proof) { p.Method = http.MethodGet }),
		"wrong htu":    sign(func(p *Proof) { p.URL = s.Issuer() + "/other" }),
		"stale iat":    sign(func(p *Proof) { p.IssuedAt = time.Now().Add(-10 * time.Minute) }),
		"wrong typ":    sign(func(p *Proof) { p.Header = map[string]any{"typ": "JWT"} }),
		"private jwk":  sign(func(p *Proof) { p.Header = map[string]any{"jwk": withPrivate(t, k)} }),
		"bad sig":      sign(nil) + "A",
	} {
		t.Run(name, func(t *testing.T) {
			status, body := call(proof)
			assert.Equal(t, http.StatusBadRequest, status)
			assert.Equal(t, "invalid_dpop_proof", body["error"])
		})
	}

	t.Run("two proofs", func(t *testing.T) {
		status, body := call(sign(nil), sign(nil))
		assert.Equal(t, http.StatusBadRequest, status)
		assert.Equal(t, "invalid_dpop_proof", body["error"])
		assert.Equal(t, "exactly one DPoP header is required", body["error_description"])
	})

	t.Run("nonce", func(t *testing.T) {
		s.SetTokenDPoPNonce("n-1")
		defer s.SetTokenDPoPNonce("")
		status, body := call(sign(nil))
		assert.Equal(t, http.StatusBadRequest, status)
		assert.Equal(t, "use_dpop_nonce", body["error"])
		status, _ = call(sign(func(p *Proof) { p.Nonce = "n-1" }))
		assert.Equal(t, http.StatusOK, status)
	})

	t.Run("DPoPBound client", func(t *testing.T) {
		require.NoError(t, s.RegisterClient(Client{ID: svcID, Secret: svcSecret, DPoPBound: true}))
		status, body := call()
		assert.Equal(t, http.StatusBadRequest, status)
		assert.Equal(t, "invalid_dpop_proof", body["error"])
		status, _ = call(sign(nil))
		assert.Equal(t, http.StatusOK, status)
	})
}

// withPrivate returns k's JWK with its private member d.
func withPrivate(t *testing.T, k *DPoPKey) map[string]any {
	t.Helper()
	m := k.PublicJWK()
	m["d"] = "AAAA"
	return m
}

// FuzzTokenProof feeds arbitrary DPoP headers to the token endpoint's proof
// check: it never panics, accepts only proofs it can name a key for, and
// refuses everything else with a DPoP error code.
func FuzzTokenProof(f *testing.F) {
	s, err := New(Config{TB: f, Algorithms: []string{"ES256"}})
	require.NoError(f, err)
	k, err := NewDPoPKey("ES256")
	require.NoError(f, err)
	f.Add(k.MustSign(Proof{Method: http.MethodPost, URL: s.TokenURL()}))
	f.Add(k.MustSign(Proof{Method: http.MethodGet, URL: s.TokenURL()}))
	f.Add("e30.e30.")
	f.Add("")
	f.Fuzz(func(t *testing.T, proof string) {
		r := httptest.NewRequest(http.MethodPost, s.TokenURL(), nil)
		r.Header.Set("DPoP", proof)
		jkt, e := s.tokenProof(r, httptest.NewRecorder())
		switch {
		case e == nil && jkt == "":
			t.Fatal("a proof accepted without a key thumbprint")
		case e != nil && e.Code != "invalid_dpop_proof" && e.Code != "use_dpop_nonce" && e.Code != "temporarily_unavailable":
			t.Fatalf("unexpected error code %q", e.Code)
		}
	})
}
