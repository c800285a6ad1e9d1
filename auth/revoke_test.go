package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func newMemoryRevoker(t testing.TB, clock *fakeClock, edit func(*RevokerConfig)) *MemoryRevoker {
	t.Helper()
	cfg := RevokerConfig{}
	if clock != nil {
		cfg.Now = clock.Now
	}
	if edit != nil {
		edit(&cfg)
	}
	r, err := NewMemoryRevoker(cfg)
	require.NoError(t, err)
	return r
}

// assertRevoked checks that err is the revocation refusal and names
// neither the token nor the revoked values.
func assertRevoked(t *testing.T, err error, secrets ...string) {
	t.Helper()
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrRevoked)
	assert.ErrorIs(t, err, ErrInvalidToken)
	var e *Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, http.StatusUnauthorized, e.Status)
	assert.Equal(t, CodeInvalidToken, e.Code)
	assert.Contains(t, e.Description, "revoked")
	for _, s := range secrets {
		assert.NotContains(t, err.Error(), s)
		assert.NotContains(t, fmt.Sprintf("%+v %#v", err, err), s)
	}
}

func TestRevocationKind(t *testing.T) {
	long := strings.Repeat("x", MaxRevocationFieldBytes+1)
	for _, tc := range []struct {
		name string
		r    Revocation
		kind RevocationKind
		bad  string
	}{
		{"jti", Revocation{Issuer: "i", TokenID: "j"}, RevokeTokenID, ""},
		{"sid", Revocation{Issuer: "i", SessionID: "s"}, RevokeSessionID, ""},
		{"sub", Revocation{Issuer: "i", Subject: "u"}, RevokeSubject, ""},
		{"sub with bound", Revocation{Issuer: "i", Subject: "u", IssuedBefore: time.Unix(1, 0)}, RevokeSubject, ""},
		{"no issuer", Revocation{TokenID: "j"}, 0, "iss is required"},
		{"no target", Revocation{Issuer: "i"}, 0, "exactly one"},
		{"two targets", Revocation{Issuer: "i", TokenID: "j", Subject: "u"}, 0, "exactly one"},
		{"bound without sub", Revocation{Issuer: "i", TokenID: "j", IssuedBefore: time.Unix(1, 0)}, 0, "sub only"},
		{"long issuer", Revocation{Issuer: long, TokenID: "j"}, 0, "iss is longer"},
		{"long jti", Revocation{Issuer: "i", TokenID: long}, 0, "jti is longer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, err := tc.r.Kind()
			if tc.bad == "" {
				require.NoError(t, err)
				assert.Equal(t, tc.kind, k)
				return
			}
			assert.ErrorIs(t, err, ErrRevocation)
			assert.ErrorContains(t, err, tc.bad)
			assert.NotContains(t, err.Error(), long)
		})
	}
}

func TestRevokerConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  RevokerConfig
		bad  string
	}{
		{"defaults", RevokerConfig{}, ""},
		{"negative capacity", RevokerConfig{Capacity: -1}, "Capacity"},
		{"huge capacity", RevokerConfig{Capacity: MaxRevocationCapacity + 1}, "Capacity"},
		{"short lifetime", RevokerConfig{MaxTokenLifetime: time.Millisecond}, "MaxTokenLifetime"},
		{"long lifetime", RevokerConfig{MaxTokenLifetime: MaxMaxTokenLifetime + time.Hour}, "MaxTokenLifetime"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewMemoryRevoker(tc.cfg)
			if tc.bad == "" {
				require.NoError(t, err)
				return
			}
			assert.ErrorIs(t, err, ErrConfig)
			assert.ErrorContains(t, err, tc.bad)
		})
	}
	_, err := NewRevocationSet(RevokerConfig{}, []byte("short"))
	assert.ErrorIs(t, err, ErrConfig)
}

// TestJWTRevocation revokes by jti, by sid and by subject-before-T tokens
// the validator has already cached, and checks that unrelated tokens are
// still served.
func TestJWTRevocation(t *testing.T) {
	clock := newFakeClock()
	idp := newIDP(t, clock)
	rev := newMemoryRevoker(t, clock, nil)
	v := newValidator(t, idp, clock, func(c *JWTConfig) { c.Revoker = rev })

	mint := func(claims map[string]any) string { return idp.MustMint(claims) }
	target := mint(map[string]any{"sub": "alice", "jti": "jti-target"})
	sibling := mint(map[string]any{"sub": "alice", "jti": "jti-sibling"})
	inSession := mint(map[string]any{"sub": "bob", "jti": "jti-s1", "sid": "session-1"})
	otherSession := mint(map[string]any{"sub": "bob", "jti": "jti-s2", "sid": "session-2"})
	carol := mint(map[string]any{"sub": "carol", "jti": "jti-c1"})
	dave := mint(map[string]any{"sub": "dave", "jti": "jti-d1"})
	all := []string{target, sibling, inSession, otherSession, carol, dave}
	for _, tok := range all {
		_, err := v.Validate(t.Context(), tok)
		require.NoError(t, err)
	}
	require.Equal(t, len(all), v.cache.len(), "every token is cached, so what follows tests cache hits")
	fetches := idp.JWKSFetches()

	served := func(tok string) {
		t.Helper()
		_, err := v.Validate(t.Context(), tok)
		assert.NoError(t, err)
	}
	refused := func(tok string, secrets ...string) {
		t.Helper()
		_, err := v.Validate(t.Context(), tok)
		assertRevoked(t, err, append(secrets, tok)...)
	}

	// jti: only that token.
	require.NoError(t, rev.Revoke(t.Context(), Revocation{Issuer: idp.Issuer(), TokenID: "jti-target"}))
	refused(target, "jti-target")
	served(sibling)
	// The same jti from another issuer is another token.
	require.NoError(t, rev.Revoke(t.Context(), Revocation{Issuer: "https://elsewhere.example", TokenID: "jti-sibling"}))
	served(sibling)

	// sid: every token of the session, none of another.
	require.NoError(t, rev.Revoke(t.Context(), Revocation{Issuer: idp.Issuer(), SessionID: "session-1"}))
	refused(inSession, "session-1")
	served(otherSession)

	// Subject before T: carol's tokens issued before now, not dave's, and
	// not carol's next token.
	clock.Advance(time.Second)
	require.NoError(t, rev.Revoke(t.Context(), Revocation{Issuer: idp.Issuer(), Subject: "carol"}))
	refused(carol, "carol")
	served(dave)
	clock.Advance(2 * time.Second)
	fresh := mint(map[string]any{"sub": "carol", "jti": "jti-c2"})
	served(fresh)

	assert.Equal(t, fetches, idp.JWKSFetches(), "the refusals were cache hits")

	// A refused token stays refused after a fresh verification, too.
	v2 := newValidator(t, idp, clock, func(c *JWTConfig) { c.Revoker = rev; c.DisableCache = true })
	_, err := v2.Validate(t.Context(), target)
	assertRevoked(t, err)
	_, err = v2.Validate(t.Context(), sibling)
	assert.NoError(t, err)
}

func TestRevocationSubjectBound(t *testing.T) {
	clock := newFakeClock()
	idp := newIDP(t, clock)
	rev := newMemoryRevoker(t, clock, nil)
	v := newValidator(t, idp, clock, func(c *JWTConfig) { c.Revoker = rev })
	now := clock.Now()
	before := idp.MustMint(map[string]any{"sub": "erin", "iat": now.Add(-time.Minute).Unix()})
	at := idp.MustMint(map[string]any{"sub": "erin", "iat": now.Unix()})
	noIAT := idp.MustMint(map[string]any{"sub": "erin", "iat": nil})
	require.NoError(t, rev.Revoke(t.Context(), Revocation{Issuer: idp.Issuer(), Subject: "erin", IssuedBefore: now}))
	_, err := v.Validate(t.Context(), before)
	assertRevoked(t, err)
	_, err = v.Validate(t.Context(), at)
	assert.NoError(t, err, "iat == T is not before T")
	_, err = v.Validate(t.Context(), noIAT)
	assertRevoked(t, err) // a token without iat cannot show it came after T

	// A later revocation of the same subject moves the bound forward.
	clock.Advance(time.Minute)
	require.NoError(t, rev.Revoke(t.Context(), Revocation{Issuer: idp.Issuer(), Subject: "erin"}))
	_, err = v.Validate(t.Context(), at)
	assertRevoked(t, err)
	assert.Equal(t, 1, rev.Len())
	// And an earlier one does not move it back.
	require.NoError(t, rev.Revoke(t.Context(), Revocation{Issuer: idp.Issuer(), Subject: "erin", IssuedBefore: now.Add(-time.Hour)}))
	_, err = v.Validate(t.Context(), at)
	assertRevoked(t, err)

	for _, bad := range []time.Time{now.Add(time.Hour + time.Minute), now.Add(-DefaultMaxTokenLifetime - time.Hour)} {
		err := rev.Revoke(t.Context(), Revocation{Issuer: idp.Issuer(), Subject: "erin", IssuedBefore: bad})
		assert.ErrorIs(t, err, ErrRevocation, "bound %v", bad)
	}
}

// TestRevocationHorizon: a token that could outlive its revocation entry
// is refused; entries expire once no token they name can be valid.
func TestRevocationHorizon(t *testing.T) {
	clock := newFakeClock()
	idp := newIDP(t, clock)
	rev := newMemoryRevoker(t, clock, func(c *RevokerConfig) { c.MaxTokenLifetime = 2 * time.Hour })
	v := newValidator(t, idp, clock, func(c *JWTConfig) { c.Revoker = rev })
	now := clock.Now()
	for _, tc := range []struct {
		name   string
		claims map[string]any
		ok     bool
	}{
		{"within", map[string]any{"exp": now.Add(2 * time.Hour).Unix()}, true},
		{"lifetime too long", map[string]any{"iat": now.Add(-time.Hour).Unix(), "exp": now.Add(2 * time.Hour).Unix()}, false},
		{"no iat, too much left", map[string]any{"iat": nil, "exp": now.Add(3 * time.Hour).Unix()}, false},
		{"no iat, within", map[string]any{"iat": nil, "exp": now.Add(time.Hour).Unix()}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := v.Validate(t.Context(), idp.MustMint(tc.claims))
			if tc.ok {
				assert.NoError(t, err)
				return
			}
			assert.ErrorIs(t, err, ErrRevocationHorizon)
			assert.ErrorIs(t, err, ErrInvalidToken)
			assert.Equal(t, http.StatusUnauthorized, AsError(err).Status)
		})
	}

	// An entry lives MaxTokenLifetime + MaxLeeway, then is swept when room
	// is needed.
	tok := idp.MustMint(map[string]any{"jti": "j-old"})
	require.NoError(t, rev.Revoke(t.Context(), Revocation{Issuer: idp.Issuer(), TokenID: "j-old"}))
	_, err := v.Validate(t.Context(), tok)
	assertRevoked(t, err)
	clock.Advance(2*time.Hour + MaxLeeway - time.Second)
	assert.ErrorIs(t, rev.Check(t.Context(), &Principal{Issuer: idp.Issuer(), TokenID: "j-old", Expiry: clock.Now().Add(time.Minute)}), ErrRevoked)
	clock.Advance(2 * time.Second)
	assert.NoError(t, rev.Check(t.Context(), &Principal{Issuer: idp.Issuer(), TokenID: "j-old", Expiry: clock.Now().Add(time.Minute)}))
}

func TestRevocationCapacityFailsClosed(t *testing.T) {
	clock := newFakeClock()
	rev := newMemoryRevoker(t, clock, func(c *RevokerConfig) { c.Capacity = 2; c.MaxTokenLifetime = time.Hour })
	ctx := t.Context()
	require.NoError(t, rev.Revoke(ctx, Revocation{Issuer: "i", TokenID: "a"}))
	require.NoError(t, rev.Revoke(ctx, Revocation{Issuer: "i", TokenID: "b"}))
	require.NoError(t, rev.Revoke(ctx, Revocation{Issuer: "i", TokenID: "a"}), "re-revoking is no new entry")
	err := rev.Revoke(ctx, Revocation{Issuer: "i", TokenID: "c"})
	require.ErrorIs(t, err, ErrRevocationListFull)
	assert.ErrorContains(t, err, "2 live entries")
	// Nothing was forgotten to make room.
	p := &Principal{Issuer: "i", TokenID: "a", Expiry: clock.Now().Add(time.Minute)}
	assert.ErrorIs(t, rev.Check(ctx, p), ErrRevoked)
	p.TokenID = "b"
	assert.ErrorIs(t, rev.Check(ctx, p), ErrRevoked)
	// Once the entries expire there is room again.
	clock.Advance(time.Hour + MaxLeeway + time.Second)
	require.NoError(t, rev.Revoke(ctx, Revocation{Issuer: "i", TokenID: "c"}))
	assert.Equal(t, 1, rev.Len())
}

func TestRevokerErrorMapping(t *testing.T) {
	p := &Principal{Subject: "s", Issuer: "i"}
	for _, tc := range []struct {
		name   string
		err    error
		status int
		is     error
	}{
		{"nil", nil, 0, nil},
		{"revoked", ErrRevoked, http.StatusUnauthorized, ErrRevoked},
		{"horizon", ErrRevocationHorizon, http.StatusUnauthorized, ErrRevocationHorizon},
		{"unavailable", fmt.Errorf("%w: redis down", ErrUnavailable), http.StatusServiceUnavailable, ErrUnavailable},
		{"deadline", context.DeadlineExceeded, http.StatusServiceUnavailable, ErrUnavailable},
		{"unknown error fails closed", errors.New("boom"), http.StatusUnauthorized, ErrRevoked},
		{"an *Error is kept", InvalidToken("custom", ErrInvalidToken), http.StatusUnauthorized, ErrInvalidToken},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := checkRevoked(t.Context(), RevokerFunc(func(context.Context, *Principal) error { return tc.err }), p)
			if tc.err == nil {
				assert.Nil(t, e)
				return
			}
			require.NotNil(t, e)
			assert.Equal(t, tc.status, e.Status)
			assert.ErrorIs(t, e, tc.is)
		})
	}
	assert.Nil(t, checkRevoked(t.Context(), nil, p))
}

// TestRevocationMiddleware: the HTTP answer is 401 invalid_token with the
// revocation's description, and OnError sees ErrRevoked.
func TestRevocationMiddleware(t *testing.T) {
	idp := newIDP(t, nil)
	rev := newMemoryRevoker(t, nil, nil)
	v := newValidator(t, idp, nil, func(c *JWTConfig) { c.Revoker = rev })
	var seen []*Error
	var mu sync.Mutex
	mw, err := Middleware(v, MiddlewareConfig{ResourceMetadataURL: testMetaURL, OnError: func(_ *http.Request, e *Error) {
		mu.Lock()
		seen = append(seen, e)
		mu.Unlock()
	}})
	require.NoError(t, err)
	h := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	tok := idp.MustMint(map[string]any{"jti": "jti-http"})
	do := func() *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodPost, "/mcp", nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	require.Equal(t, http.StatusNoContent, do().Code)
	require.NoError(t, rev.Revoke(t.Context(), Revocation{Issuer: idp.Issuer(), TokenID: "jti-http"}))
	w := do()
	assert.Equal(t, http.StatusUnauthorized, w.Code)
	assert.Contains(t, w.Header().Get("WWW-Authenticate"), `error="invalid_token"`)
	assert.Contains(t, w.Header().Get("WWW-Authenticate"), `error_description="the access token has been revoked"`)
	assert.JSONEq(t, `{"error":"invalid_token","error_description":"the access token has been revoked"}`, w.Body.String())
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, seen, 1)
	assert.ErrorIs(t, seen[0], ErrRevoked)
	assert.NotContains(t, seen[0].Error(), tok)
}

func TestIntrospectionRevocation(t *testing.T) {
	a := newFakeAS(t).serve()
	rev := newMemoryRevoker(t, nil, nil)
	v := newIntrospection(t, a, func(c *IntrospectionConfig) { c.Revoker = rev })
	a.add("opaque-1", map[string]any{"jti": "ij-1", "sid": "isess"})
	a.add("opaque-2", map[string]any{"jti": "ij-2"})
	a.add("opaque-noexp", map[string]any{"exp": nil})
	for _, tok := range []string{"opaque-1", "opaque-2"} {
		_, err := v.Validate(t.Context(), tok)
		require.NoError(t, err)
	}
	hits := a.requests.Load()
	require.NoError(t, rev.Revoke(t.Context(), Revocation{Issuer: a.issuer, TokenID: "ij-1"}))
	_, err := v.Validate(t.Context(), "opaque-1")
	assertRevoked(t, err, "opaque-1")
	_, err = v.Validate(t.Context(), "opaque-2")
	assert.NoError(t, err)
	assert.Equal(t, hits, a.requests.Load(), "both answers came from the verdict cache")

	// A token without exp could outlive any entry: refused.
	_, err = v.Validate(t.Context(), "opaque-noexp")
	assert.ErrorIs(t, err, ErrRevocationHorizon)
}

// TestDualRevocation: in dual-token mode a revoked user token and a
// revoked service token are each refused, with the token named.
func TestDualRevocation(t *testing.T) {
	idp := newIDP(t, nil)
	rev := newMemoryRevoker(t, nil, nil)
	v := newValidator(t, idp, nil, func(c *JWTConfig) { c.Revoker = rev })
	d, err := NewDualValidator(DualConfig{Service: v, User: v, ServiceClientIDs: []string{"svc"}, UserIssuers: []string{idp.Issuer()}})
	require.NoError(t, err)
	svc := idp.MustMint(map[string]any{"sub": "svc-account", "client_id": "svc", "jti": "svc-jti"})
	user := idp.MustMint(map[string]any{"sub": "alice", "jti": "user-jti"})
	other := idp.MustMint(map[string]any{"sub": "bob", "jti": "other-jti"})
	_, err = d.ValidatePair(t.Context(), svc, user)
	require.NoError(t, err)

	require.NoError(t, rev.Revoke(t.Context(), Revocation{Issuer: idp.Issuer(), TokenID: "user-jti"}))
	_, err = d.ValidatePair(t.Context(), svc, user)
	assertRevoked(t, err, user, svc)
	assert.True(t, strings.HasPrefix(AsError(err).Description, prefixUserToken), AsError(err).Description)
	_, err = d.ValidatePair(t.Context(), svc, other)
	assert.NoError(t, err)

	require.NoError(t, rev.Revoke(t.Context(), Revocation{Issuer: idp.Issuer(), Subject: "svc-account"}))
	_, err = d.ValidatePair(t.Context(), svc, other)
	assertRevoked(t, err, svc, other)
	assert.True(t, strings.HasPrefix(AsError(err).Description, prefixServiceToken), AsError(err).Description)
}

// TestDPoPRevocation: a DPoP-bound token with a valid proof is refused
// once revoked, on a cache hit, and its proof is not spent by the refusal.
func TestDPoPRevocation(t *testing.T) {
	rev := newMemoryRevoker(t, nil, nil)
	replay := NewMemoryReplayStore(0)
	f := newDPoPFixture(t, DPoPAllowed, func(c *JWTConfig) {
		c.Revoker = rev
		c.DPoP.Replay = replay
	})
	rev.now = f.clock.Now
	rev.set.now = f.clock.Now
	tok := f.idp.MustMintBound(map[string]any{"jti": "bound-jti"}, f.key)
	require.Equal(t, http.StatusNoContent, f.do("DPoP", tok, f.proof(tok, nil)).Code)
	require.Equal(t, 1, replay.Len())
	require.NoError(t, rev.Revoke(t.Context(), Revocation{Issuer: f.idp.Issuer(), TokenID: "bound-jti"}))
	w := f.do("DPoP", tok, f.proof(tok, nil))
	assert.Equal(t, http.StatusUnauthorized, w.Code)
	assert.Contains(t, strings.Join(w.Header().Values("WWW-Authenticate"), " "), "the access token has been revoked")
	assert.Equal(t, 1, replay.Len(), "the refused request's proof was not checked")
	other := f.idp.MustMintBound(map[string]any{"jti": "bound-other"}, f.key)
	assert.Equal(t, http.StatusNoContent, f.do("DPoP", other, f.proof(other, nil)).Code)
}

func TestRevokerConcurrent(t *testing.T) {
	rev := newMemoryRevoker(t, nil, func(c *RevokerConfig) { c.Capacity = 1000 })
	exp := time.Now().Add(time.Hour)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 200 {
				jti := fmt.Sprintf("w%d-%d", w, i)
				assert.NoError(t, rev.Revoke(t.Context(), Revocation{Issuer: "i", TokenID: jti}))
				assert.ErrorIs(t, rev.Check(t.Context(), &Principal{Issuer: "i", TokenID: jti, Expiry: exp}), ErrRevoked)
				assert.NoError(t, rev.Check(t.Context(), &Principal{Issuer: "i", TokenID: jti + "x", Expiry: exp}))
			}
		})
	}
	wg.Wait()
	assert.Equal(t, 800, rev.Len())
}

func TestRevocationSetReplace(t *testing.T) {
	clock := newFakeClock()
	s, err := NewRevocationSet(RevokerConfig{Capacity: 2, Now: clock.Now}, make([]byte, 32))
	require.NoError(t, err)
	now := clock.Now()
	e1, err := s.Entry(Revocation{Issuer: "i", TokenID: "a"}, now)
	require.NoError(t, err)
	e2, err := s.Entry(Revocation{Issuer: "i", TokenID: "b"}, now)
	require.NoError(t, err)
	e3, err := s.Entry(Revocation{Issuer: "i", TokenID: "c"}, now)
	require.NoError(t, err)
	old := e3
	old.Expiry = now.Add(-time.Second)
	assert.False(t, s.Replace([]RevocationEntry{e1, old, e2}, now), "an expired entry takes no room")
	assert.Equal(t, 2, s.Len())
	assert.True(t, s.Replace([]RevocationEntry{e1, e2, e3}, now))
	assert.Equal(t, 2, s.Len())
	// The same key gives the same digests: replicas agree.
	s2, err := NewRevocationSet(RevokerConfig{}, make([]byte, 32))
	require.NoError(t, err)
	f1, err := s2.Entry(Revocation{Issuer: "i", TokenID: "a"}, now)
	require.NoError(t, err)
	assert.Equal(t, e1.Digest, f1.Digest)
	f2, err := s2.Entry(Revocation{Issuer: "i", SessionID: "a"}, now)
	require.NoError(t, err)
	assert.NotEqual(t, e1.Digest, f2.Digest, "kinds never share a digest")
	f3, err := s2.Entry(Revocation{Issuer: "ia", TokenID: "x"}, now)
	require.NoError(t, err)
	f4, err := s2.Entry(Revocation{Issuer: "i", TokenID: "ax"}, now)
	require.NoError(t, err)
	assert.NotEqual(t, f3.Digest, f4.Digest, "the issuer is length-prefixed")
}

func BenchmarkRevocationCheck(b *testing.B) {
	rev, err := NewMemoryRevoker(RevokerConfig{})
	require.NoError(b, err)
	for i := range 10_000 {
		require.NoError(b, rev.Revoke(b.Context(), Revocation{Issuer: "https://idp.example.com", TokenID: fmt.Sprintf("jti-%d", i)}))
	}
	p := &Principal{Issuer: "https://idp.example.com", Subject: "alice", TokenID: "not-revoked", Expiry: time.Now().Add(time.Hour), IssuedAt: time.Now()}
	b.ReportAllocs()
	for b.Loop() {
		if err := rev.Check(b.Context(), p); err != nil {
			b.Fatal(err)
		}
	}
}
