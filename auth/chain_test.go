package auth

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/auth/authtest"
)

func seg(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func TestLooksLikeJWT(t *testing.T) {
	idp := newIDP(t, nil, "ES256")
	real := idp.MustMint(nil)
	unsigned, err := idp.MintUnsigned(nil)
	require.NoError(t, err)
	hdr := seg(`{"alg":"ES256","kid":"k"}`)
	tests := []struct {
		name string
		tok  string
		want bool
	}{
		{"minted JWT", real, true},
		{"unsigned JWT", unsigned, true},
		{"header with white space", seg(" \n{\"alg\":\"none\"}") + ".e30.", true},
		{"long header", seg(`{"alg":"ES256","x":"`+strings.Repeat("y", 2000)+`"}`) + ".e30.c2ln", true},
		{"opaque random", "2YotnFZFEjr1zCsicMWpAA", false},
		{"opaque with dots", "a.b.c", false},
		{"JWE (five segments)", hdr + ".a.b.c.d", false},
		{"two segments", hdr + ".e30", false},
		{"four segments", hdr + ".e30.c2ln.x", false},
		{"empty header", ".e30.c2ln", false},
		{"empty payload", hdr + "..c2ln", false},
		{"header is a JSON array", seg(`["alg"]`) + ".e30.c2ln", false},
		{"header is a JSON string", seg(`"{}"`) + ".e30.c2ln", false},
		{"header is not an object", seg(`{"alg":`) + ".e30.c2ln", false},
		{"header is just braces around anything", seg(`{not json}`) + ".e30.c2ln", true},
		{"padded header", base64.URLEncoding.EncodeToString([]byte(`{"alg":"x"}`)) + ".e30.c2ln", false},
		{"standard base64 alphabet", "+/+/.e30.c2ln", false},
		{"broken payload goes to the JWT validator", hdr + ".e3$0.c2ln", true},
		{"header too long", seg(`{"x":"`+strings.Repeat("y", maxJWTHeaderSegment)+`"}`) + ".e30.c2ln", false},
		{"empty", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, LooksLikeJWT(tt.tok))
		})
	}
}

// countingValidator records calls and answers with fn.
type countingValidator struct {
	calls atomic.Int64
	fn    func(tok string) (*Principal, error)
}

func (c *countingValidator) Validate(_ context.Context, tok string) (*Principal, error) {
	c.calls.Add(1)
	return c.fn(tok)
}

func TestChainRouting(t *testing.T) {
	jwtTok := seg(`{"alg":"ES256"}`) + "." + seg(`{"sub":"alice"}`) + ".c2ln"
	const opaqueTok = "opaque-2YotnFZFEjr1zCsicMWpAA"
	alice := &Principal{Subject: "alice", Issuer: "https://as.example"}
	accept := func(p *Principal) func(string) (*Principal, error) {
		return func(string) (*Principal, error) { cp := *p; return &cp, nil }
	}
	reject := func(string) (*Principal, error) {
		return nil, InvalidToken(descInactive, ErrInvalidToken)
	}
	tests := []struct {
		name                string
		jwt, opaque         func(string) (*Principal, error) // nil: no such validator
		both                bool
		tok                 string
		wantJWT, wantOpaque int64
		wantErr             error
	}{
		{name: "JWT to the JWT validator", jwt: accept(alice), opaque: accept(alice), tok: jwtTok, wantJWT: 1},
		{name: "opaque to introspection", jwt: accept(alice), opaque: accept(alice), tok: opaqueTok, wantOpaque: 1},
		{name: "no JWT validator: JWTs are introspected", opaque: accept(alice), tok: jwtTok, wantOpaque: 1},
		{name: "no opaque validator: opaque refused locally", jwt: accept(alice), tok: opaqueTok, wantErr: ErrInvalidToken},
		{name: "JWT rejection is final", jwt: reject, opaque: accept(alice), tok: jwtTok, wantJWT: 1, wantErr: ErrInvalidToken},
		{name: "both: accepted by both", jwt: accept(alice), opaque: accept(alice), both: true, tok: jwtTok, wantJWT: 1, wantOpaque: 1},
		{name: "both: revoked at the server", jwt: accept(alice), opaque: reject, both: true, tok: jwtTok, wantJWT: 1, wantOpaque: 1, wantErr: ErrInvalidToken},
		{name: "both: forged JWT never leaves the process", jwt: reject, opaque: accept(alice), both: true, tok: jwtTok, wantJWT: 1, wantErr: ErrInvalidToken},
		{name: "both: disagreement on subject", jwt: accept(alice), opaque: accept(&Principal{Subject: "mallory", Issuer: alice.Issuer}), both: true, tok: jwtTok, wantJWT: 1, wantOpaque: 1, wantErr: ErrInvalidToken},
		{name: "both: opaque still introspected once", jwt: accept(alice), opaque: accept(alice), both: true, tok: opaqueTok, wantOpaque: 1},
		{name: "both: JWT validator returns nothing", jwt: func(string) (*Principal, error) { return nil, nil }, opaque: accept(alice), both: true, tok: jwtTok, wantJWT: 1, wantErr: ErrInvalidToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ChainConfig{IntrospectJWTs: tt.both}
			var j, o *countingValidator
			if tt.jwt != nil {
				j = &countingValidator{fn: tt.jwt}
				cfg.JWT = j
			}
			if tt.opaque != nil {
				o = &countingValidator{fn: tt.opaque}
				cfg.Opaque = o
			}
			c, err := NewChainValidator(cfg)
			require.NoError(t, err)
			p, err := c.Validate(t.Context(), tt.tok)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				assert.Nil(t, p)
				assert.NotContains(t, err.Error(), tt.tok)
			} else {
				require.NoError(t, err)
				assert.Equal(t, "alice", p.Subject)
			}
			if j != nil {
				assert.Equal(t, tt.wantJWT, j.calls.Load(), "JWT validator calls")
			}
			if o != nil {
				assert.Equal(t, tt.wantOpaque, o.calls.Load(), "opaque validator calls")
			}
		})
	}
}

func TestChainConfigErrors(t *testing.T) {
	v := ValidatorFunc(func(context.Context, string) (*Principal, error) { return nil, errors.New("x") })
	for name, cfg := range map[string]ChainConfig{
		"nothing":                       {},
		"IntrospectJWTs without JWT":    {Opaque: v, IntrospectJWTs: true},
		"IntrospectJWTs without Opaque": {JWT: v, IntrospectJWTs: true},
	} {
		t.Run(name, func(t *testing.T) {
			c, err := NewChainValidator(cfg)
			assert.Nil(t, c)
			require.ErrorIs(t, err, ErrConfig)
			assert.Contains(t, err.Error(), "ChainConfig.")
		})
	}
}

// TestChainWithRealValidators wires the JWT validator (trusting authtest)
// and the introspection validator (asking fakeAS) together.
func TestChainWithRealValidators(t *testing.T) {
	idp := newIDP(t, nil, "ES256")
	jv := newValidator(t, idp, nil, func(c *JWTConfig) { c.Audience = testAudience })
	a := newFakeAS(t).serve()
	a.add("opaque-bob-token", map[string]any{"sub": "bob"})
	iv := newIntrospection(t, a, nil)
	c, err := NewChainValidator(ChainConfig{JWT: jv, Opaque: iv})
	require.NoError(t, err)

	jwtTok := idp.MustMint(map[string]any{"aud": testAudience})
	p, err := c.Validate(t.Context(), jwtTok)
	require.NoError(t, err)
	assert.Equal(t, "alice", p.Subject)
	assert.EqualValues(t, 0, a.requests.Load(), "a JWT is validated locally")

	p, err = c.Validate(t.Context(), "opaque-bob-token")
	require.NoError(t, err)
	assert.Equal(t, "bob", p.Subject)
	assert.EqualValues(t, 1, a.requests.Load())

	forged, err := idp.MintBadSignature(map[string]any{"aud": testAudience})
	require.NoError(t, err)
	_, err = c.Validate(t.Context(), forged)
	require.ErrorIs(t, err, ErrInvalidToken)
	assert.EqualValues(t, 1, a.requests.Load(), "a forged JWT never reaches the authorization server")
}

// FuzzLooksLikeJWT checks the sniffer against the JWS parser: every token
// the JWT validator could parse must be routed to it, and a JWT-shaped
// token has exactly three segments.
func FuzzLooksLikeJWT(f *testing.F) {
	for _, s := range []string{
		seg(`{"alg":"ES256"}`) + ".e30.c2ln", "opaque", "a.b.c", "..", "e30.e30.", seg(`[]`) + ".e30.x",
		seg(`{"alg":"x","pad":"`+strings.Repeat("p", 300)+`"}`) + ".e30.c2ln",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		looks := LooksLikeJWT(tok)
		if looks && strings.Count(tok, ".") != 2 {
			t.Fatalf("JWT-shaped token with %d dots", strings.Count(tok, "."))
		}
		if _, err := parseJWS(tok, MaxTokenBytesLimit); err == nil && !looks && strings.IndexByte(tok, '.') <= maxJWTHeaderSegment {
			t.Fatal("a token the JWS parser accepts was not recognised as a JWT")
		}
	})
}

func BenchmarkLooksLikeJWT(b *testing.B) {
	idp := newIDP(b, nil, "ES256")
	tok := idp.MustMint(nil)
	b.ReportAllocs()
	for b.Loop() {
		if !LooksLikeJWT(tok) {
			b.Fatal("not recognised")
		}
	}
}

// TestChainDPoP runs DPoP-bound tokens through a ChainValidator behind
// Middleware: the chain is DPoP-aware like its members, a bound token is
// never accepted as a bearer token, and with IntrospectJWTs the proof is
// checked once (by the JWT validator: a second check would see its jti as
// a replay) while introspection still decides revocation and must name the
// same key.
func TestChainDPoP(t *testing.T) {
	clock := newFakeClock()
	idp := newIDP(t, clock, "ES256")
	require.NoError(t, idp.RegisterClient(authtest.Client{ID: "mcp-rs", Secret: "rs-secret"}))
	key, err := authtest.NewDPoPKey("ES256")
	require.NoError(t, err)
	key = key.WithClock(clock.Now)
	other, err := authtest.NewDPoPKey("ES256")
	require.NoError(t, err)
	other = other.WithClock(clock.Now)

	// Both validators share one replay store, as replicas share one: a
	// second check of the same proof would be refused as a replay.
	var jwtChecks, opaqueChecks atomic.Int32
	shared := NewMemoryReplayStore(100)
	counting := func(n *atomic.Int32) ReplayStore {
		m := shared
		return replayFunc(func(ctx context.Context, id string, exp time.Time) (bool, error) {
			n.Add(1)
			return m.CheckAndStore(ctx, id, exp)
		})
	}
	jv := newValidator(t, idp, clock, func(c *JWTConfig) {
		c.DPoP = DPoPConfig{Mode: DPoPRequired, Resource: dpopResource, Replay: counting(&jwtChecks)}
	})
	newIntro := func(mode DPoPMode, algs ...string) *IntrospectionValidator {
		v, err := NewIntrospectionValidator(IntrospectionConfig{
			Issuer: idp.Issuer(), Endpoint: idp.IntrospectionURL(), Audience: idp.Audience(),
			ClientID: "mcp-rs", ClientSecret: NewCredential("rs-secret"), Now: clock.Now,
			DisableCache: true, // every call asks the authorization server
			DPoP:         DPoPConfig{Mode: mode, Resource: dpopResource, Algorithms: algs, Replay: counting(&opaqueChecks)},
		})
		require.NoError(t, err)
		t.Cleanup(func() { _ = v.Close() })
		return v
	}
	iv := newIntro(DPoPRequired)

	t.Run("config", func(t *testing.T) {
		_, err := NewChainValidator(ChainConfig{JWT: jv, Opaque: newIntro(DPoPAllowed)})
		require.ErrorIs(t, err, ErrConfig, "modes differ")
		_, err = NewChainValidator(ChainConfig{JWT: jv, Opaque: newIntro(DPoPRequired, "RS384")})
		require.ErrorIs(t, err, ErrConfig, "no algorithm in common")
		c, err := NewChainValidator(ChainConfig{JWT: jv, Opaque: newIntro(DPoPRequired, "ES256", "RS256")})
		require.NoError(t, err)
		assert.Equal(t, DPoPRequired, c.DPoPMode())
		assert.Equal(t, []string{"ES256", "RS256"}, c.DPoPAlgorithms())
	})

	for _, both := range []bool{false, true} {
		t.Run(map[bool]string{false: "local", true: "IntrospectJWTs"}[both], func(t *testing.T) {
			c, err := NewChainValidator(ChainConfig{JWT: jv, Opaque: iv, IntrospectJWTs: both})
			require.NoError(t, err)
			mw, err := Middleware(c, MiddlewareConfig{ResourceMetadataURL: testMetaURL})
			require.NoError(t, err)
			h := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))
			do := func(scheme, tok string, proofs ...string) *httptest.ResponseRecorder {
				r := httptest.NewRequest(http.MethodPost, dpopResource, nil)
				r.Header.Set("Authorization", scheme+" "+tok)
				for _, p := range proofs {
					r.Header.Add("DPoP", p)
				}
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				return w
			}
			proof := func(k *authtest.DPoPKey, tok string) string {
				return k.MustSign(authtest.Proof{Method: http.MethodPost, URL: dpopResource, AccessToken: tok})
			}
			jwtChecks.Store(0)
			opaqueChecks.Store(0)

			bound := idp.MustMintBound(nil, key)
			assert.Equal(t, http.StatusNoContent, do("DPoP", bound, proof(key, bound)).Code)
			assert.EqualValues(t, 1, jwtChecks.Load(), "the JWT validator checks the proof")
			assert.EqualValues(t, 0, opaqueChecks.Load(), "introspection never checks it again")

			p := proof(key, bound)
			assert.Equal(t, http.StatusNoContent, do("DPoP", bound, p).Code)
			w := do("DPoP", bound, p)
			assert.Equal(t, http.StatusUnauthorized, w.Code, "a replayed proof")
			assert.Contains(t, w.Header().Get("WWW-Authenticate"), `error="invalid_dpop_proof"`)

			w = do("Bearer", bound)
			assert.Equal(t, http.StatusUnauthorized, w.Code, "a bound JWT as a bearer token")
			assert.Equal(t, http.StatusUnauthorized, do("DPoP", bound, proof(other, bound)).Code, "another key's proof")

			opaque := idp.MustMintOpaque(map[string]any{"cnf": map[string]any{"jkt": key.Thumbprint()}, "token_type": "DPoP"})
			assert.Equal(t, http.StatusNoContent, do("DPoP", opaque, proof(key, opaque)).Code, "a bound opaque token")
			assert.EqualValues(t, 1, opaqueChecks.Load(), "introspection checks the proof of an opaque token")
			assert.Equal(t, http.StatusUnauthorized, do("Bearer", opaque).Code, "a bound opaque token as a bearer token")

			unbound := idp.MustMint(nil)
			assert.Equal(t, http.StatusUnauthorized, do("Bearer", unbound).Code, "required mode refuses unbound tokens")

			revoked := idp.MustMintBound(nil, key)
			idp.Revoke(revoked)
			want := http.StatusNoContent
			if both {
				want = http.StatusUnauthorized // introspection still decides
			}
			assert.Equal(t, want, do("DPoP", revoked, proof(key, revoked)).Code, "a revoked bound JWT")
		})
	}
}
