package authtest

import (
	"encoding/base64"
	"encoding/json"
	"io"
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

// TestDPoPTransportTokenRequest: with Token empty, DPoPTransport is a
// token-request client: the token endpoint's use_dpop_nonce answer (400,
// RFC 9449 §8) is retried once with its nonce, the caller's client
// authentication is kept, and the token issued is bound to the key.
func TestDPoPTransportTokenRequest(t *testing.T) {
	s := newTokenServer(t)
	s.SetTokenDPoPNonce("as-nonce-1")
	k, err := NewDPoPKey("ES256")
	require.NoError(t, err)
	hc := &http.Client{Transport: &DPoPTransport{Key: k}}
	form := url.Values{"grant_type": {GrantClientCredentials}}
	req, err := http.NewRequest(http.MethodPost, s.TokenURL(), strings.NewReader(form.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(svcID), url.QueryEscape(svcSecret))
	resp, err := hc.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body := map[string]any{}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	require.Equal(t, http.StatusOK, resp.StatusCode, "%v", body)
	assert.Equal(t, "DPoP", body["token_type"])
	c, err := s.validateGrantToken(body["access_token"].(string), "")
	require.NoError(t, err)
	assert.Equal(t, map[string]any{"jkt": k.Thumbprint()}, c["cnf"])
	assert.Equal(t, 1, s.TokenDPoPProofs(), "the retry's proof, the first was refused for its missing nonce")
}

// TestDPoPTransportChallenges: which answers DPoPTransport retries with a
// new nonce, what each proof carries, and that an answer it does not retry
// reaches the caller whole.
func TestDPoPTransportChallenges(t *testing.T) {
	k, err := NewDPoPKey("ES256")
	require.NoError(t, err)
	big := `{"error":"invalid_grant","error_description":"` + strings.Repeat("x", 2*maxChallengeBody) + `"}`
	cases := []struct {
		name      string
		token     string
		status    int
		header    http.Header
		body      string
		wantCalls int
	}{
		{"400 use_dpop_nonce, token request", "", 400, http.Header{"Dpop-Nonce": {"n1"}}, `{"error":"use_dpop_nonce"}`, 2},
		{"400 use_dpop_nonce, resource request", "tok", 400, http.Header{"Dpop-Nonce": {"n1"}}, `{"error":"use_dpop_nonce"}`, 2},
		{"401 use_dpop_nonce", "tok", 401, http.Header{"Dpop-Nonce": {"n1"}, "Www-Authenticate": {`DPoP error="use_dpop_nonce"`}}, "", 2},
		{"400 other error with a nonce", "", 400, http.Header{"Dpop-Nonce": {"n1"}}, big, 1},
		{"400 not JSON", "", 400, http.Header{"Dpop-Nonce": {"n1"}}, "use_dpop_nonce", 1},
		{"400 use_dpop_nonce without a nonce", "", 400, nil, `{"error":"use_dpop_nonce"}`, 1},
		{"401 without use_dpop_nonce", "tok", 401, http.Header{"Dpop-Nonce": {"n1"}, "Www-Authenticate": {`DPoP error="invalid_token"`}}, "", 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var proofs []map[string]any
			var auths, bodies []string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				bodies = append(bodies, string(b))
				auths = append(auths, r.Header.Get("Authorization"))
				proofs = append(proofs, proofClaims(t, r.Header.Get("DPoP")))
				if len(proofs) > 1 {
					_, _ = io.WriteString(w, `{"ok":true}`)
					return
				}
				for name, v := range tc.header {
					w.Header()[name] = v
				}
				w.WriteHeader(tc.status)
				_, _ = io.WriteString(w, tc.body)
			}))
			defer srv.Close()
			hc := &http.Client{Transport: &DPoPTransport{Key: k, Token: tc.token}}
			req, err := http.NewRequest(http.MethodPost, srv.URL+"/token?q=1", strings.NewReader("a=b"))
			require.NoError(t, err)
			req.SetBasicAuth("client", "pw")
			resp, err := hc.Do(req)
			require.NoError(t, err)
			got, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			_ = resp.Body.Close()

			require.Len(t, proofs, tc.wantCalls)
			if tc.wantCalls == 2 {
				assert.Equal(t, `{"ok":true}`, string(got))
				assert.Equal(t, "n1", proofs[1]["nonce"], "the retry carries the server's nonce")
				assert.NotEqual(t, proofs[0]["jti"], proofs[1]["jti"], "a fresh proof for the retry")
				assert.Equal(t, []string{"a=b", "a=b"}, bodies, "the body is sent again")
			} else {
				assert.Equal(t, tc.body, string(got), "the answer reaches the caller whole")
			}
			for i, p := range proofs {
				assert.Equal(t, http.MethodPost, p["htm"])
				assert.Equal(t, srv.URL+"/token", p["htu"], "htu without the query")
				if tc.token == "" {
					assert.NotContains(t, p, "ath", "a token request's proof has no ath")
					assert.True(t, strings.HasPrefix(auths[i], "Basic "), "the caller's client authentication is kept")
				} else {
					assert.Equal(t, AccessTokenHash(tc.token), p["ath"])
					assert.Equal(t, "DPoP "+tc.token, auths[i])
				}
			}
			assert.NotContains(t, proofs[0], "nonce")
		})
	}
}

// proofClaims returns the claims of a compact proof, unverified.
func proofClaims(t *testing.T, proof string) map[string]any {
	t.Helper()
	parts := strings.Split(proof, ".")
	require.Len(t, parts, 3)
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	require.NoError(t, err)
	m := map[string]any{}
	require.NoError(t, json.Unmarshal(raw, &m))
	return m
}
