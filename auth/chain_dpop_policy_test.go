package auth

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/auth/authtest"
)

// TestChainIntrospectJWTsDPoPPolicy: with ChainConfig.IntrospectJWTs a
// JWT-shaped token is validated by both validators, so the request's proof
// must satisfy the DPoP settings of both. The JWT validator checks the proof
// first (and records its jti); the introspection validator must still hold
// the proof to its own nonce requirement, accepted algorithms, time window
// and resource, or a proof it would refuse for an opaque token is accepted
// for a JWT.
func TestChainIntrospectJWTsDPoPPolicy(t *testing.T) {
	clock := newFakeClock()
	idp := newIDP(t, clock, "ES256")
	require.NoError(t, idp.RegisterClient(authtest.Client{ID: "mcp-rs", Secret: "rs-secret"}))
	es, err := authtest.NewDPoPKey("ES256")
	require.NoError(t, err)
	es = es.WithClock(clock.Now)
	rs, err := authtest.NewDPoPKey("RS256")
	require.NoError(t, err)
	rs = rs.WithClock(clock.Now)

	jv := newValidator(t, idp, clock, func(c *JWTConfig) {
		c.DPoP = DPoPConfig{Mode: DPoPRequired, Resource: dpopResource}
	})
	newIntro := func(d DPoPConfig) *IntrospectionValidator {
		d.Mode = DPoPRequired
		v, err := NewIntrospectionValidator(IntrospectionConfig{
			Issuer: idp.Issuer(), Endpoint: idp.IntrospectionURL(), Audience: idp.Audience(),
			ClientID: "mcp-rs", ClientSecret: NewCredential("rs-secret"), Now: clock.Now,
			DPoP: d,
		})
		require.NoError(t, err)
		t.Cleanup(func() { _ = v.Close() })
		return v
	}

	tests := []struct {
		name  string
		intro DPoPConfig
		key   *authtest.DPoPKey
		proof authtest.Proof // AccessToken is filled in
		// wantCode is the error code introspection's own policy answers.
		wantCode string
	}{
		{name: "introspection requires a nonce", intro: DPoPConfig{Resource: dpopResource, RequireNonce: true},
			key: es, proof: authtest.Proof{Method: http.MethodPost, URL: dpopResource}, wantCode: CodeUseDPoPNonce},
		{name: "introspection accepts ES256 only", intro: DPoPConfig{Resource: dpopResource, Algorithms: []string{"ES256"}},
			key: rs, proof: authtest.Proof{Method: http.MethodPost, URL: dpopResource}, wantCode: CodeInvalidDPoPProof},
		{name: "introspection has a shorter window", intro: DPoPConfig{Resource: dpopResource, Window: time.Minute},
			key: es, proof: authtest.Proof{Method: http.MethodPost, URL: dpopResource, IssuedAt: clock.Now().Add(-3 * time.Minute)}, wantCode: CodeInvalidDPoPProof},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			iv := newIntro(tt.intro)
			do := func(c *ChainValidator, tok string, p authtest.Proof) *httptest.ResponseRecorder {
				mw, err := Middleware(c, MiddlewareConfig{ResourceMetadataURL: testMetaURL})
				require.NoError(t, err)
				h := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))
				p.AccessToken = tok
				r := httptest.NewRequest(http.MethodPost, dpopResource, nil)
				r.Header.Set("Authorization", "DPoP "+tok)
				r.Header.Set("DPoP", tt.key.MustSign(p))
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				return w
			}
			chain, err := NewChainValidator(ChainConfig{JWT: jv, Opaque: iv, IntrospectJWTs: true})
			require.NoError(t, err)

			// Introspection's policy refuses the proof for an opaque token...
			opaque := idp.MustMintOpaque(map[string]any{"cnf": map[string]any{"jkt": tt.key.Thumbprint()}, "token_type": "DPoP"})
			w := do(chain, opaque, tt.proof)
			require.Equal(t, http.StatusUnauthorized, w.Code, "precondition: introspection refuses this proof")
			assert.Contains(t, w.Header().Get("WWW-Authenticate"), `error="`+tt.wantCode+`"`)

			// ...and so for a JWT it also introspects.
			bound := idp.MustMintBound(nil, tt.key)
			w = do(chain, bound, tt.proof)
			assert.Equal(t, http.StatusUnauthorized, w.Code, "a proof introspection's policy refuses")
			assert.Contains(t, w.Header().Get("WWW-Authenticate"), `error="`+tt.wantCode+`"`)

			// A proof that satisfies both policies is accepted, with the
			// nonce introspection's policy asked for.
			fresh := authtest.Proof{Method: http.MethodPost, URL: dpopResource, Nonce: w.Header().Get("DPoP-Nonce")}
			if tt.intro.RequireNonce {
				require.NotEmpty(t, fresh.Nonce, "the refusal carries introspection's nonce")
			}
			good := tt.key
			if tt.key == rs {
				good = es
			}
			bound = idp.MustMintBound(nil, good)
			fresh.AccessToken = bound
			mw, err := Middleware(chain, MiddlewareConfig{ResourceMetadataURL: testMetaURL})
			require.NoError(t, err)
			r := httptest.NewRequest(http.MethodPost, dpopResource, nil)
			r.Header.Set("Authorization", "DPoP "+bound)
			r.Header.Set("DPoP", good.MustSign(fresh))
			w = httptest.NewRecorder()
			mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })).ServeHTTP(w, r)
			assert.Equal(t, http.StatusNoContent, w.Code, "a proof both policies accept")

			// The JWT validator alone accepts such a proof: its policy is not in question.
			w = do(mustChain(t, ChainConfig{JWT: jv}), idp.MustMintBound(nil, tt.key), tt.proof)
			assert.Equal(t, http.StatusNoContent, w.Code, "precondition: the JWT validator's own policy accepts it")
		})
	}
}

func mustChain(t *testing.T, cfg ChainConfig) *ChainValidator {
	t.Helper()
	c, err := NewChainValidator(cfg)
	require.NoError(t, err)
	return c
}
