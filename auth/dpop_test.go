package auth

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mcpguard/mcpguard/auth/authtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const dpopResource = "https://mcp.example.com/mcp"

// dpopFixture is an identity provider, a DPoP-aware validator behind
// Middleware and a client proof key, all on one fake clock.
type dpopFixture struct {
	clock *fakeClock
	idp   *authtest.Server
	key   *authtest.DPoPKey
	v     *JWTValidator
	h     http.Handler
}

func newDPoPFixture(t *testing.T, mode DPoPMode, edit func(*JWTConfig)) *dpopFixture {
	t.Helper()
	f := &dpopFixture{clock: newFakeClock()}
	f.idp = newIDP(t, f.clock)
	k, err := authtest.NewDPoPKey("ES256")
	require.NoError(t, err)
	f.key = k.WithClock(f.clock.Now)
	f.v = newValidator(t, f.idp, f.clock, func(c *JWTConfig) {
		c.DPoP = DPoPConfig{Mode: mode, Resource: dpopResource}
		if edit != nil {
			edit(c)
		}
	})
	mw, err := Middleware(f.v, MiddlewareConfig{ResourceMetadataURL: testMetaURL})
	require.NoError(t, err)
	f.h = mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	return f
}

func (f *dpopFixture) do(scheme, token string, proofs ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, dpopResource, strings.NewReader("{}"))
	r.Header.Set("Authorization", scheme+" "+token)
	for _, p := range proofs {
		r.Header.Add("DPoP", p)
	}
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, r)
	return w
}

func (f *dpopFixture) proof(token string, edit func(*authtest.Proof)) string {
	p := authtest.Proof{Method: http.MethodPost, URL: dpopResource, AccessToken: token}
	if edit != nil {
		edit(&p)
	}
	return f.key.MustSign(p)
}

// TestDPoPRules has one case per RFC 9449 §4.3 rule and binding rule; each
// fails when its check is removed, since every other part of the request is
// valid (the "valid" case proves it).
func TestDPoPRules(t *testing.T) {
	other, err := authtest.NewDPoPKey("ES256")
	require.NoError(t, err)
	tests := []struct {
		name     string
		mode     DPoPMode
		send     func(f *dpopFixture) *httptest.ResponseRecorder
		status   int
		code     string // error code in the DPoP challenge
		wantDesc string
	}{
		{name: "valid", mode: DPoPAllowed, status: 204, send: func(f *dpopFixture) *httptest.ResponseRecorder {
			tok := f.idp.MustMintBound(nil, f.key)
			return f.do("DPoP", tok, f.proof(tok, nil))
		}},
		{name: "valid scheme case-insensitive, required mode", mode: DPoPRequired, status: 204, send: func(f *dpopFixture) *httptest.ResponseRecorder {
			tok := f.idp.MustMintBound(nil, f.key)
			return f.do("dpop", tok, f.proof(tok, nil))
		}},
		{name: "wrong htm", mode: DPoPAllowed, status: 401, code: CodeInvalidDPoPProof, wantDesc: descProofRequest, send: func(f *dpopFixture) *httptest.ResponseRecorder {
			tok := f.idp.MustMintBound(nil, f.key)
			return f.do("DPoP", tok, f.proof(tok, func(p *authtest.Proof) { p.Method = http.MethodGet }))
		}},
		{name: "htu other host", mode: DPoPAllowed, status: 401, code: CodeInvalidDPoPProof, wantDesc: descProofRequest, send: htuCase("https://evil.example.com/mcp")},
		{name: "htu other port", mode: DPoPAllowed, status: 401, code: CodeInvalidDPoPProof, wantDesc: descProofRequest, send: htuCase("https://mcp.example.com:8443/mcp")},
		{name: "htu other scheme", mode: DPoPAllowed, status: 401, code: CodeInvalidDPoPProof, wantDesc: descProofRequest, send: htuCase("http://mcp.example.com/mcp")},
		{name: "htu other path", mode: DPoPAllowed, status: 401, code: CodeInvalidDPoPProof, wantDesc: descProofRequest, send: htuCase("https://mcp.example.com/other")},
		{name: "htu with query", mode: DPoPAllowed, status: 401, code: CodeInvalidDPoPProof, wantDesc: descProofRequest, send: htuCase("https://mcp.example.com/mcp?x=1")},
		{name: "htu with fragment", mode: DPoPAllowed, status: 401, code: CodeInvalidDPoPProof, wantDesc: descProofRequest, send: htuCase("https://mcp.example.com/mcp#f")},
		{name: "htu normalised (case, default port)", mode: DPoPAllowed, status: 204, send: htuCase("HTTPS://MCP.Example.com:443/mcp")},
		{name: "stale iat", mode: DPoPAllowed, status: 401, code: CodeInvalidDPoPProof, wantDesc: descProofTime, send: iatCase(-6 * time.Minute)},
		{name: "future iat", mode: DPoPAllowed, status: 401, code: CodeInvalidDPoPProof, wantDesc: descProofTime, send: iatCase(6 * time.Minute)},
		{name: "iat within window", mode: DPoPAllowed, status: 204, send: iatCase(-4 * time.Minute)},
		{name: "replayed jti", mode: DPoPAllowed, status: 401, code: CodeInvalidDPoPProof, wantDesc: descProofReplayed, send: func(f *dpopFixture) *httptest.ResponseRecorder {
			tok := f.idp.MustMintBound(nil, f.key)
			p := f.proof(tok, nil)
			if w := f.do("DPoP", tok, p); w.Code != 204 {
				return w
			}
			return f.do("DPoP", tok, p)
		}},
		{name: "wrong ath", mode: DPoPAllowed, status: 401, code: CodeInvalidDPoPProof, wantDesc: descProofToken, send: func(f *dpopFixture) *httptest.ResponseRecorder {
			tok := f.idp.MustMintBound(nil, f.key)
			return f.do("DPoP", tok, f.proof(tok, func(p *authtest.Proof) { p.AccessToken = "another-token" }))
		}},
		{name: "missing ath", mode: DPoPAllowed, status: 401, code: CodeInvalidDPoPProof, wantDesc: descProofToken, send: func(f *dpopFixture) *httptest.ResponseRecorder {
			tok := f.idp.MustMintBound(nil, f.key)
			return f.do("DPoP", tok, f.proof(tok, func(p *authtest.Proof) { p.AccessToken = "" }))
		}},
		{name: "thumbprint mismatch", mode: DPoPAllowed, status: 401, code: CodeInvalidDPoPProof, wantDesc: descProofKey, send: func(f *dpopFixture) *httptest.ResponseRecorder {
			tok := f.idp.MustMintBound(nil, other)
			return f.do("DPoP", tok, f.proof(tok, nil))
		}},
		{name: "private jwk", mode: DPoPAllowed, status: 401, code: CodeInvalidDPoPProof, wantDesc: descProof, send: func(f *dpopFixture) *httptest.ResponseRecorder {
			tok := f.idp.MustMintBound(nil, f.key)
			jwk := f.key.PublicJWK()
			jwk["d"] = "AAAA"
			return f.do("DPoP", tok, f.proof(tok, func(p *authtest.Proof) { p.Header = map[string]any{"jwk": jwk} }))
		}},
		{name: "signature by another key", mode: DPoPAllowed, status: 401, code: CodeInvalidDPoPProof, wantDesc: descProof, send: func(f *dpopFixture) *httptest.ResponseRecorder {
			tok := f.idp.MustMintBound(nil, f.key)
			p := other.WithClock(f.clock.Now).MustSign(authtest.Proof{Method: "POST", URL: dpopResource, AccessToken: tok, Header: map[string]any{"jwk": f.key.PublicJWK()}})
			return f.do("DPoP", tok, p)
		}},
		{name: "alg none", mode: DPoPAllowed, status: 401, code: CodeInvalidDPoPProof, wantDesc: descProof, send: func(f *dpopFixture) *httptest.ResponseRecorder {
			tok := f.idp.MustMintBound(nil, f.key)
			return f.do("DPoP", tok, f.proof(tok, func(p *authtest.Proof) { p.Alg = "none" }))
		}},
		{name: "alg HS256", mode: DPoPAllowed, status: 401, code: CodeInvalidDPoPProof, wantDesc: descProof, send: func(f *dpopFixture) *httptest.ResponseRecorder {
			tok := f.idp.MustMintBound(nil, f.key)
			p, err := authtest.Sign([]byte(`{"typ":"dpop+jwt","alg":"HS256","jwk":{"kty":"oct","k":"c2VjcmV0"}}`),
				[]byte(`{"jti":"x","htm":"POST","htu":"`+dpopResource+`","iat":`+itoa(f.clock.Now().Unix())+`,"ath":"`+authtest.AccessTokenHash(tok)+`"}`), "HS256", []byte("secret"))
			require.NoError(t, err)
			return f.do("DPoP", tok, p)
		}},
		{name: "typ not dpop+jwt", mode: DPoPAllowed, status: 401, code: CodeInvalidDPoPProof, wantDesc: descProof, send: func(f *dpopFixture) *httptest.ResponseRecorder {
			tok := f.idp.MustMintBound(nil, f.key)
			return f.do("DPoP", tok, f.proof(tok, func(p *authtest.Proof) { p.Header = map[string]any{"typ": "JWT"} }))
		}},
		{name: "two proof headers", mode: DPoPAllowed, status: 401, code: CodeInvalidDPoPProof, wantDesc: descProofCount, send: func(f *dpopFixture) *httptest.ResponseRecorder {
			tok := f.idp.MustMintBound(nil, f.key)
			return f.do("DPoP", tok, f.proof(tok, nil), f.proof(tok, nil))
		}},
		{name: "no proof header", mode: DPoPAllowed, status: 401, code: CodeInvalidDPoPProof, wantDesc: descProofMissing, send: func(f *dpopFixture) *httptest.ResponseRecorder {
			tok := f.idp.MustMintBound(nil, f.key)
			return f.do("DPoP", tok)
		}},
		{name: "bound token with Bearer scheme", mode: DPoPAllowed, status: 401, code: CodeInvalidToken, wantDesc: descBoundAsBearer, send: func(f *dpopFixture) *httptest.ResponseRecorder {
			tok := f.idp.MustMintBound(nil, f.key)
			return f.do("Bearer", tok, f.proof(tok, nil))
		}},
		{name: "bound token with Bearer scheme, DPoP disabled", mode: DPoPDisabled, status: 401, code: CodeInvalidToken, wantDesc: descSenderConstrain, send: func(f *dpopFixture) *httptest.ResponseRecorder {
			tok := f.idp.MustMintBound(nil, f.key)
			return f.do("Bearer", tok)
		}},
		{name: "DPoP scheme, DPoP disabled", mode: DPoPDisabled, status: 401, send: func(f *dpopFixture) *httptest.ResponseRecorder {
			tok := f.idp.MustMintBound(nil, f.key)
			return f.do("DPoP", tok, f.proof(tok, nil))
		}},
		{name: "unbound token with DPoP scheme", mode: DPoPRequired, status: 401, code: CodeInvalidToken, wantDesc: descUnboundAsDPoP, send: func(f *dpopFixture) *httptest.ResponseRecorder {
			tok := f.idp.MustMint(nil)
			return f.do("DPoP", tok, f.proof(tok, nil))
		}},
		{name: "unbound bearer token, required mode", mode: DPoPRequired, status: 401, code: CodeInvalidToken, wantDesc: descDPoPRequired, send: func(f *dpopFixture) *httptest.ResponseRecorder {
			return f.do("Bearer", f.idp.MustMint(nil))
		}},
		{name: "unbound bearer token, allowed mode", mode: DPoPAllowed, status: 204, send: func(f *dpopFixture) *httptest.ResponseRecorder {
			return f.do("Bearer", f.idp.MustMint(nil))
		}},
		{name: "cached token needs a fresh proof", mode: DPoPAllowed, status: 401, code: CodeInvalidDPoPProof, wantDesc: descProofMissing, send: func(f *dpopFixture) *httptest.ResponseRecorder {
			tok := f.idp.MustMintBound(nil, f.key)
			if w := f.do("DPoP", tok, f.proof(tok, nil)); w.Code != 204 {
				return w
			}
			return f.do("DPoP", tok)
		}},
		{name: "cached token with a second fresh proof", mode: DPoPAllowed, status: 204, send: func(f *dpopFixture) *httptest.ResponseRecorder {
			tok := f.idp.MustMintBound(nil, f.key)
			if w := f.do("DPoP", tok, f.proof(tok, nil)); w.Code != 204 {
				return w
			}
			return f.do("DPoP", tok, f.proof(tok, nil))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newDPoPFixture(t, tt.mode, nil)
			w := tt.send(f)
			require.Equal(t, tt.status, w.Code, w.Body.String())
			if tt.status == 204 {
				return
			}
			chal := w.Header().Values("WWW-Authenticate")
			require.NotEmpty(t, chal)
			if tt.code != "" {
				assert.Contains(t, strings.Join(chal, "\n"), `error="`+tt.code+`"`)
				assert.Contains(t, w.Body.String(), tt.wantDesc)
			}
			if tt.mode != DPoPDisabled {
				assert.Contains(t, chal[len(chal)-1], `DPoP algs="ES256 EdDSA RS256 PS256"`)
				for _, c := range chal {
					assert.Contains(t, c, `resource_metadata="`+testMetaURL+`"`)
				}
			}
		})
	}
}

func htuCase(htu string) func(f *dpopFixture) *httptest.ResponseRecorder {
	return func(f *dpopFixture) *httptest.ResponseRecorder {
		tok := f.idp.MustMintBound(nil, f.key)
		return f.do("DPoP", tok, f.proof(tok, func(p *authtest.Proof) { p.URL = htu }))
	}
}

func iatCase(d time.Duration) func(f *dpopFixture) *httptest.ResponseRecorder {
	return func(f *dpopFixture) *httptest.ResponseRecorder {
		tok := f.idp.MustMintBound(nil, f.key)
		return f.do("DPoP", tok, f.proof(tok, func(p *authtest.Proof) { p.IssuedAt = f.clock.Now().Add(d) }))
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestDPoPChallenges checks the challenge shapes of each mode.
func TestDPoPChallenges(t *testing.T) {
	t.Run("allowed, no credential: both schemes, no error", func(t *testing.T) {
		f := newDPoPFixture(t, DPoPAllowed, nil)
		r := httptest.NewRequest(http.MethodPost, dpopResource, nil)
		w := httptest.NewRecorder()
		f.h.ServeHTTP(w, r)
		require.Equal(t, 401, w.Code)
		assert.Equal(t, []string{
			`Bearer resource_metadata="` + testMetaURL + `"`,
			`DPoP algs="ES256 EdDSA RS256 PS256", resource_metadata="` + testMetaURL + `"`,
		}, w.Header().Values("WWW-Authenticate"))
	})
	t.Run("required, no credential: DPoP only", func(t *testing.T) {
		f := newDPoPFixture(t, DPoPRequired, nil)
		r := httptest.NewRequest(http.MethodPost, dpopResource, nil)
		w := httptest.NewRecorder()
		f.h.ServeHTTP(w, r)
		require.Equal(t, 401, w.Code)
		assert.Equal(t, []string{`DPoP algs="ES256 EdDSA RS256 PS256", resource_metadata="` + testMetaURL + `"`}, w.Header().Values("WWW-Authenticate"))
	})
	t.Run("allowed, bad bearer token: error on Bearer", func(t *testing.T) {
		f := newDPoPFixture(t, DPoPAllowed, nil)
		w := f.do("Bearer", "not.a.token")
		require.Equal(t, 401, w.Code)
		ch := w.Header().Values("WWW-Authenticate")
		require.Len(t, ch, 2)
		assert.Contains(t, ch[0], `error="invalid_token"`)
		assert.NotContains(t, ch[1], "error=")
	})
	t.Run("WriteErrorFor after Middleware sends the DPoP challenge", func(t *testing.T) {
		f := newDPoPFixture(t, DPoPAllowed, nil)
		mw, err := Middleware(f.v, MiddlewareConfig{ResourceMetadataURL: testMetaURL})
		require.NoError(t, err)
		h := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			WriteErrorFor(w, r, testMetaURL, InsufficientScope("notes:write"))
		}))
		tok := f.idp.MustMintBound(nil, f.key)
		r := httptest.NewRequest(http.MethodPost, dpopResource, nil)
		r.Header.Set("Authorization", "DPoP "+tok)
		r.Header.Set("DPoP", f.proof(tok, nil))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		require.Equal(t, 403, w.Code)
		ch := w.Header().Values("WWW-Authenticate")
		require.Len(t, ch, 2)
		assert.NotContains(t, ch[0], "error=")
		assert.Contains(t, ch[1], `DPoP algs=`)
		assert.Contains(t, ch[1], `error="insufficient_scope"`)
	})
}

func TestDPoPConfig(t *testing.T) {
	idp := newIDP(t, nil)
	for name, c := range map[string]DPoPConfig{
		"unknown mode":                        {Mode: 7},
		"HMAC algorithm":                      {Mode: DPoPAllowed, Resource: dpopResource, Algorithms: []string{"HS256"}},
		"relative resource":                   {Mode: DPoPAllowed, Resource: "/mcp"},
		"window too large":                    {Mode: DPoPAllowed, Resource: dpopResource, Window: 2 * time.Hour},
		"short nonce secret":                  {Mode: DPoPAllowed, Resource: dpopResource, RequireNonce: true, NonceSecret: []byte("short")},
		"nonce lifetime without RequireNonce": {Mode: DPoPAllowed, Resource: dpopResource, NonceLifetime: time.Minute},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := NewJWTValidator(JWTConfig{Issuer: idp.Issuer(), Audience: idp.Audience(), JWKSURL: idp.JWKSURL(), DPoP: c})
			require.ErrorIs(t, err, ErrConfig)
			assert.Contains(t, err.Error(), "JWTConfig.DPoP.")
		})
	}
}

func TestMemoryReplayStore(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	s := NewMemoryReplayStore(2)
	s.now = clock.Now
	exp := clock.Now().Add(time.Minute)
	seen, err := s.CheckAndStore(ctx, "a", exp)
	require.NoError(t, err)
	assert.False(t, seen)
	seen, err = s.CheckAndStore(ctx, "a", exp)
	require.NoError(t, err)
	assert.True(t, seen, "replay detected")
	_, err = s.CheckAndStore(ctx, "b", exp)
	require.NoError(t, err)
	_, err = s.CheckAndStore(ctx, "c", exp)
	require.ErrorIs(t, err, ErrReplayStoreFull, "full of live entries: fail closed")
	clock.Advance(2 * time.Minute)
	seen, err = s.CheckAndStore(ctx, "c", clock.Now().Add(time.Minute))
	require.NoError(t, err, "expired entries are evicted first")
	assert.False(t, seen)
	assert.Equal(t, 1, s.Len())
}

func TestDPoPReplayStoreFullIs503(t *testing.T) {
	f := newDPoPFixture(t, DPoPAllowed, func(c *JWTConfig) {
		c.DPoP.Replay = replayFunc(func(context.Context, string, time.Time) (bool, error) { return false, ErrReplayStoreFull })
	})
	tok := f.idp.MustMintBound(nil, f.key)
	w := f.do("DPoP", tok, f.proof(tok, nil))
	assert.Equal(t, http.StatusServiceUnavailable, w.Code)
}

type replayFunc func(context.Context, string, time.Time) (bool, error)

func (f replayFunc) CheckAndStore(ctx context.Context, id string, exp time.Time) (bool, error) {
	return f(ctx, id, exp)
}

// TestDPoPIntrospection binds an opaque token through the introspection
// response's "cnf.jkt" (RFC 9449 §6.2).
func TestDPoPIntrospection(t *testing.T) {
	clock := newFakeClock()
	idp := newIDP(t, clock, "ES256")
	require.NoError(t, idp.RegisterClient(authtest.Client{ID: "mcp-rs", Secret: "rs-secret"}))
	k, err := authtest.NewDPoPKey("ES256")
	require.NoError(t, err)
	k = k.WithClock(clock.Now)
	newV := func(mode DPoPMode) http.Handler {
		v, err := NewIntrospectionValidator(IntrospectionConfig{
			Issuer: idp.Issuer(), Endpoint: idp.IntrospectionURL(), Audience: idp.Audience(),
			ClientID: "mcp-rs", ClientSecret: NewCredential("rs-secret"), Now: clock.Now,
			DPoP: DPoPConfig{Mode: mode, Resource: dpopResource},
		})
		require.NoError(t, err)
		t.Cleanup(func() { _ = v.Close() })
		mw, err := Middleware(v, MiddlewareConfig{ResourceMetadataURL: testMetaURL})
		require.NoError(t, err)
		return mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }))
	}
	do := func(h http.Handler, scheme, tok string, proofs ...string) int {
		r := httptest.NewRequest(http.MethodPost, dpopResource, nil)
		r.Header.Set("Authorization", scheme+" "+tok)
		for _, p := range proofs {
			r.Header.Add("DPoP", p)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	proof := func(tok string) string {
		return k.MustSign(authtest.Proof{Method: "POST", URL: dpopResource, AccessToken: tok})
	}
	bound := idp.MustMintOpaque(map[string]any{"cnf": map[string]any{"jkt": k.Thumbprint()}, "token_type": "DPoP"})

	disabled := newV(DPoPDisabled)
	assert.Equal(t, 401, do(disabled, "Bearer", bound), "bound token refused when DPoP is off")

	h := newV(DPoPRequired)
	assert.Equal(t, 401, do(h, "Bearer", bound), "bound token refused as a bearer token")
	assert.Equal(t, 204, do(h, "DPoP", bound, proof(bound)))
	assert.Equal(t, 401, do(h, "DPoP", bound), "a cached token still needs a proof")
	assert.Equal(t, 204, do(h, "DPoP", bound, proof(bound)))
	unbound := idp.MustMintOpaque(nil)
	assert.Equal(t, 401, do(h, "Bearer", unbound), "required mode refuses unbound tokens")
	assert.Equal(t, 204, do(newV(DPoPAllowed), "Bearer", unbound))
}

func TestDPoPMetadata(t *testing.T) {
	base := MetadataConfig{Resource: dpopResource, AuthorizationServers: []string{"https://idp.example.com"}}
	for _, mode := range []DPoPMode{DPoPDisabled, DPoPAllowed, DPoPRequired} {
		t.Run(mode.String(), func(t *testing.T) {
			f := newDPoPFixture(t, mode, nil)
			mux := http.NewServeMux()
			_, err := MountMetadata(mux, DPoPMetadata(base, f.v))
			require.NoError(t, err)
			w := httptest.NewRecorder()
			mux.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "https://mcp.example.com/.well-known/oauth-protected-resource/mcp", nil))
			require.Equal(t, 200, w.Code)
			body := w.Body.String()
			switch mode {
			case DPoPDisabled:
				assert.NotContains(t, body, "dpop")
			case DPoPAllowed:
				assert.Contains(t, body, `"dpop_signing_alg_values_supported":["ES256","EdDSA","RS256","PS256"]`)
				assert.NotContains(t, body, "dpop_bound_access_tokens_required")
			case DPoPRequired:
				assert.Contains(t, body, `"dpop_bound_access_tokens_required":true`)
			}
		})
	}
}

// TestDPoPNonce runs the RFC 9449 §8 flow: no nonce → use_dpop_nonce with
// DPoP-Nonce; the issued nonce → accepted; a nonce two lifetimes old →
// use_dpop_nonce again.
func TestDPoPNonce(t *testing.T) {
	f := newDPoPFixture(t, DPoPRequired, func(c *JWTConfig) {
		c.DPoP.RequireNonce = true
		c.DPoP.NonceLifetime = time.Minute
	})
	tok := f.idp.MustMintBound(nil, f.key)
	w := f.do("DPoP", tok, f.proof(tok, nil))
	require.Equal(t, 401, w.Code)
	assert.Contains(t, w.Header().Get("WWW-Authenticate"), `error="use_dpop_nonce"`)
	nonce := w.Header().Get("DPoP-Nonce")
	require.NotEmpty(t, nonce)

	w = f.do("DPoP", tok, f.proof(tok, func(p *authtest.Proof) { p.Nonce = nonce }))
	require.Equal(t, 204, w.Code, w.Body.String())
	assert.NotEmpty(t, w.Header().Get("DPoP-Nonce"), "every answer carries the current nonce")

	w = f.do("DPoP", tok, f.proof(tok, func(p *authtest.Proof) { p.Nonce = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" }))
	require.Equal(t, 401, w.Code, "a forged nonce")
	assert.Contains(t, w.Header().Get("WWW-Authenticate"), `error="use_dpop_nonce"`)

	f.clock.Advance(2 * time.Minute)
	w = f.do("DPoP", tok, f.proof(tok, func(p *authtest.Proof) { p.Nonce = nonce }))
	require.Equal(t, 401, w.Code, "a stale nonce")
	assert.Contains(t, w.Header().Get("WWW-Authenticate"), `error="use_dpop_nonce"`)
	assert.NotEqual(t, nonce, w.Header().Get("DPoP-Nonce"), "rotated")
}

// TestDPoPTransportNonceOverHTTP: authtest's client helper follows the
// nonce challenge against a real HTTP server.
func TestDPoPTransportNonceOverHTTP(t *testing.T) {
	idp := newIDP(t, nil)
	key, err := authtest.NewDPoPKey("ES256")
	require.NoError(t, err)
	var srvURL string
	v := newValidator(t, idp, nil, func(c *JWTConfig) {
		c.DPoP = DPoPConfig{Mode: DPoPRequired, RequireNonce: true, Resource: "http://127.0.0.1/"}
	})
	mw, err := Middleware(v, MiddlewareConfig{ResourceMetadataURL: testMetaURL})
	require.NoError(t, err)
	srv := httptest.NewServer(mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) })))
	defer srv.Close()
	srvURL = srv.URL
	// The configured origin must be the server's: rebuild with its port.
	v = newValidator(t, idp, nil, func(c *JWTConfig) {
		c.DPoP = DPoPConfig{Mode: DPoPRequired, RequireNonce: true, Resource: srvURL + "/mcp"}
	})
	mw, err = Middleware(v, MiddlewareConfig{ResourceMetadataURL: testMetaURL})
	require.NoError(t, err)
	srv.Config.Handler = mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }))

	tok := idp.MustMintBound(nil, key)
	hc := &http.Client{Transport: &authtest.DPoPTransport{Key: key, Token: tok}}
	for range 2 {
		req, err := http.NewRequest(http.MethodPost, srvURL+"/mcp?x=1", strings.NewReader(`{}`))
		require.NoError(t, err)
		resp, err := hc.Do(req)
		require.NoError(t, err)
		_ = resp.Body.Close()
		assert.Equal(t, 204, resp.StatusCode)
	}
}

// TestDualDPoP: DualMiddleware reads the Authorization credential as
// Middleware does for the validator that checks it, so a DPoP-bound service
// (or direct) token passes with its proof and never as a bearer token, while
// the user token is always a bearer token: a bound one is refused, since the
// request's proof is the service's.
func TestDualDPoP(t *testing.T) {
	f := newDPoPFixture(t, DPoPAllowed, nil)
	d, err := NewDualValidator(DualConfig{
		Service: f.v, User: f.v, Direct: f.v,
		ServiceClientIDs: []string{"svc"}, UserIssuers: []string{f.idp.Issuer()},
	})
	require.NoError(t, err)
	mw, err := DualMiddleware(d, MiddlewareConfig{ResourceMetadataURL: testMetaURL})
	require.NoError(t, err)
	h := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	svcClaims := map[string]any{"sub": "svc", "azp": "svc", "client_id": "svc"}
	svc := f.idp.MustMint(svcClaims)
	boundSvc := f.idp.MustMintBound(svcClaims, f.key)
	user := f.idp.MustMint(map[string]any{"sub": "bob"})
	boundUser := f.idp.MustMintBound(map[string]any{"sub": "bob"}, f.key)
	_, err = d.ValidatePair(t.Context(), svc, user)
	require.NoError(t, err)
	do := func(authz, userTok string, proofs ...string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodPost, dpopResource, nil)
		r.Header.Set("Authorization", authz)
		if userTok != "" {
			r.Header.Set(DefaultUserTokenHeader, userTok)
		}
		for _, p := range proofs {
			r.Header.Add("DPoP", p)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	replayed := f.proof(boundSvc, nil)
	require.Equal(t, http.StatusNoContent, do("DPoP "+boundSvc, user, replayed).Code)
	for _, c := range []struct {
		name        string
		authz, user string
		proofs      []string
		want        int
	}{
		{"unbound pair", "Bearer " + svc, user, nil, http.StatusNoContent},
		{"unbound direct", "Bearer " + user, "", nil, http.StatusNoContent},
		{"bound service token with its proof", "DPoP " + boundSvc, user, []string{f.proof(boundSvc, nil)}, http.StatusNoContent},
		{"bound direct token with its proof", "DPoP " + boundUser, "", []string{f.proof(boundUser, nil)}, http.StatusNoContent},
		{"bound service token as Bearer", "Bearer " + boundSvc, user, nil, http.StatusUnauthorized},
		{"bound service token without a proof", "DPoP " + boundSvc, user, nil, http.StatusUnauthorized},
		{"bound service token, replayed proof", "DPoP " + boundSvc, user, []string{replayed}, http.StatusUnauthorized},
		{"bound service token, proof for the user token", "DPoP " + boundSvc, user, []string{f.proof(boundUser, nil)}, http.StatusUnauthorized},
		{"bound user token beside a bearer service token", "Bearer " + svc, boundUser, []string{f.proof(boundUser, nil)}, http.StatusUnauthorized},
		{"bound user token beside a bound service token", "DPoP " + boundSvc, boundUser, []string{f.proof(boundSvc, nil)}, http.StatusUnauthorized},
		{"bound direct token as Bearer", "Bearer " + boundUser, "", []string{f.proof(boundUser, nil)}, http.StatusUnauthorized},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := do(c.authz, c.user, c.proofs...)
			assert.Equal(t, c.want, w.Code, w.Header().Get("WWW-Authenticate"))
			if w.Code == http.StatusUnauthorized {
				assert.Contains(t, strings.Join(w.Header().Values("WWW-Authenticate"), ", "), "DPoP ", "a DPoP challenge")
			}
		})
	}
}
