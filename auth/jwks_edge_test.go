package auth

import (
	"log/slog"
	"testing"
	"time"

	"github.com/mcpguard/mcpguard/auth/authtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// blockedWriter is a log destination nobody reads (a stuck stderr pipe):
// every Write blocks until release is closed.
type blockedWriter struct {
	release chan struct{}
	writes  chan struct{}
}

func newBlockedWriter() *blockedWriter {
	return &blockedWriter{release: make(chan struct{}), writes: make(chan struct{}, 16)}
}

func (w *blockedWriter) Write(p []byte) (int, error) {
	select {
	case w.writes <- struct{}{}:
	default:
	}
	<-w.release
	return len(p), nil
}

// TestJWKSFailedFetchDoesNotWaitOnLog: a request waiting on a JWKS fetch
// that fails is answered within the fetch timeout even when the log write
// reporting the failure blocks (issue 15.5).
func TestJWKSFailedFetchDoesNotWaitOnLog(t *testing.T) {
	const fetchTimeout = 200 * time.Millisecond
	clock := newFakeClock()
	idp := newIDP(t, clock, "ES256")
	w := newBlockedWriter()
	v := newValidator(t, idp, clock, func(c *JWTConfig) {
		c.FetchTimeout = fetchTimeout
		c.Logger = slog.New(slog.NewTextHandler(w, nil))
	})
	t.Cleanup(func() { close(w.release) }) // runs before the validator's Close
	_, err := v.Validate(t.Context(), idp.MustMint(nil))
	require.NoError(t, err)

	idp.SetJWKSFault(authtest.FaultDown)
	next, err := idp.Rotate("ES256")
	require.NoError(t, err)
	clock.Advance(time.Minute) // past the refetch cooldown
	tok := mustMintWith(t, idp, next)

	done := make(chan error, 1)
	start := time.Now()
	go func() {
		_, err := v.Validate(t.Context(), tok)
		done <- err
	}()
	select {
	case err = <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the request waited on the blocked log write")
	}
	assert.Less(t, time.Since(start), fetchTimeout+2*time.Second)
	assert.ErrorIs(t, err, ErrUnavailable)
	select {
	case <-w.writes:
	case <-time.After(5 * time.Second):
		t.Fatal("the failure was not logged at all")
	}
}

// TestJWKSRemovedKeyStopsWithinDefaultInterval: with the default schedule
// a key the issuer removes — its fresh and its cached tokens — stops
// validating within DefaultRefreshInterval (fake clock), and the next key
// works (issue 15.6).
func TestJWKSRemovedKeyStopsWithinDefaultInterval(t *testing.T) {
	require.LessOrEqual(t, DefaultRefreshInterval, 15*time.Minute)
	clock := newFakeClock()
	idp := newIDP(t, clock, "ES256")
	v := newValidator(t, idp, clock, nil)
	cached := idp.MustMint(nil)
	_, err := v.Validate(t.Context(), cached)
	require.NoError(t, err)
	fresh := idp.MustMint(map[string]any{"jti": "fresh"}) // never seen: not cached

	leaked := idp.SigningKey().ID()
	_, err = idp.Rotate("ES256")
	require.NoError(t, err)
	require.NoError(t, idp.RetireKey(leaked))
	clock.Advance(DefaultRefreshInterval)
	_, _ = v.Validate(t.Context(), cached) // due: starts the scheduled refresh
	require.Eventually(t, func() bool {
		_, err := v.Validate(t.Context(), cached)
		return err != nil
	}, 5*time.Second, 5*time.Millisecond, "the cached token of the removed key still validates")
	_, err = v.Validate(t.Context(), cached)
	assertDesc(t, err, descUnknownKey)
	_, err = v.Validate(t.Context(), fresh)
	assertDesc(t, err, descUnknownKey)
	_, err = v.Validate(t.Context(), idp.MustMint(nil))
	assert.NoError(t, err)
}

// TestJWKSChangedKeyUnderKnownKID: an issuer that puts new material under
// a kid already held is noticed: tokens signed with the new material
// validate (the failed signature refetches, as an unknown kid does), and
// those of the old material — cached ones included — stop (issue 15.6).
func TestJWKSChangedKeyUnderKnownKID(t *testing.T) {
	clock := newFakeClock()
	idp := newIDP(t, clock, "ES256")
	v := newValidator(t, idp, clock, nil)
	old := idp.SigningKey()
	oldTok := idp.MustMint(nil)
	_, err := v.Validate(t.Context(), oldTok)
	require.NoError(t, err)
	require.Equal(t, 1, idp.JWKSFetches())

	// Same kid, new material.
	replaced, err := authtest.GenerateKey("ES256", old.ID())
	require.NoError(t, err)
	require.NoError(t, idp.RetireKey(old.ID()))
	require.NoError(t, idp.AddKey(replaced))
	require.NoError(t, idp.SetSigningKey(replaced.ID()))
	clock.Advance(time.Minute) // past the refetch cooldown, well before the schedule

	_, err = v.Validate(t.Context(), mustMintWith(t, idp, replaced))
	require.NoError(t, err, "the new material under the known kid is learnt")
	assert.Equal(t, 2, idp.JWKSFetches())
	_, err = v.Validate(t.Context(), oldTok)
	assertDesc(t, err, descSignature)
	_, err = v.Validate(t.Context(), mustMintWith(t, idp, old))
	assertDesc(t, err, descSignature)
}

// TestJWKSForgedSignatureRefetchBounded: tokens with a known kid and a bad
// signature refetch at most once per cooldown, as unknown kids do.
func TestJWKSForgedSignatureRefetchBounded(t *testing.T) {
	clock := newFakeClock()
	idp := newIDP(t, clock, "ES256")
	v := newValidator(t, idp, clock, nil)
	_, err := v.Validate(t.Context(), idp.MustMint(nil))
	require.NoError(t, err)
	clock.Advance(time.Minute)
	for range 50 {
		forged, err := idp.MintBadSignature(nil)
		require.NoError(t, err)
		_, err = v.Validate(t.Context(), forged)
		assertDesc(t, err, descSignature)
	}
	assert.Equal(t, 2, idp.JWKSFetches(), "one refetch in the cooldown window")
}

func TestJWKSScheduleJitter(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	ks := &keySource{interval: 10 * time.Minute, minGap: 5 * time.Second}
	seen := map[int64]bool{}
	for range 200 {
		ks.scheduleLocked(now)
		wait := time.Duration(ks.nextDue.Load() - now.UnixNano())
		require.LessOrEqual(t, wait, 10*time.Minute, "never later than the interval")
		require.GreaterOrEqual(t, wait, 9*time.Minute+30*time.Second, "jitter of at most 5%")
		seen[int64(wait)] = true
	}
	assert.Greater(t, len(seen), 1, "jittered")
	// Never sooner than the cooldown.
	ks = &keySource{interval: 5 * time.Second, minGap: 5 * time.Second}
	for range 50 {
		ks.scheduleLocked(now)
		assert.Equal(t, now.Add(5*time.Second).UnixNano(), ks.nextDue.Load())
	}
}

func TestJWTRefreshIntervalNotBelowCooldown(t *testing.T) {
	idp := newIDP(t, nil, "ES256")
	_, err := NewJWTValidator(JWTConfig{Issuer: idp.Issuer(), Audience: idp.Audience(), JWKSURL: idp.JWKSURL(),
		RefreshInterval: 2 * time.Second, RefetchCooldown: 10 * time.Second})
	require.ErrorIs(t, err, ErrConfig)
	assert.Contains(t, err.Error(), "RefreshInterval")
}

// TestJWKSInstallStoresBeforeMarking: once a key is marked removed, the
// new set is already the one served (issue 15.6), and a key that stays in
// the set keeps its identity, so its cache entries stay.
func TestJWKSInstallStoresBeforeMarking(t *testing.T) {
	a, err := authtest.GenerateKey("ES256", "a")
	require.NoError(t, err)
	b, err := authtest.GenerateKey("ES256", "b")
	require.NoError(t, err)
	ka := &verifyKey{kid: "a", key: a.Public()}
	kb := &verifyKey{kid: "b", key: b.Public()}
	ks := &keySource{}
	ks.install([]*verifyKey{ka, kb})
	stop := make(chan struct{})
	bad := make(chan string, 1)
	go func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if ka.removed.Load() {
				if _, ok := ks.snap.Load().lookup("a", true); ok {
					bad <- "key marked removed while it was still served"
				}
				return
			}
		}
	}()
	// b comes again as a new parse of the same JWK: the held key is kept.
	kb2 := &verifyKey{kid: "b", key: b.Public()}
	ks.install([]*verifyKey{kb2})
	time.Sleep(10 * time.Millisecond)
	close(stop)
	select {
	case msg := <-bad:
		t.Fatal(msg)
	default:
	}
	assert.True(t, ka.removed.Load(), "a left the set")
	assert.False(t, kb.removed.Load(), "b stayed")
	cands, _ := ks.snap.Load().lookup("b", true)
	require.Len(t, cands, 1)
	assert.Same(t, kb, cands[0], "b keeps its identity across fetches")

	// Other material under b's kid is a new key: the old one is removed.
	c, err := authtest.GenerateKey("ES256", "b")
	require.NoError(t, err)
	ks.install([]*verifyKey{{kid: "b", key: c.Public()}})
	assert.True(t, kb.removed.Load(), "b's old material left the set")
}

// TestJWKSRemovedKeyDropsOnlyItsCacheEntries: when the live IdP removes one
// of two keys, the next request with a token of the removed key is refused
// at once — cached or not — while the cached tokens of the key that stays
// are still served from the cache, not verified again (issue 15.6).
func TestJWKSRemovedKeyDropsOnlyItsCacheEntries(t *testing.T) {
	clock := newFakeClock()
	idp := newIDP(t, clock, "ES256")
	v := newValidator(t, idp, clock, nil)
	leaked := idp.SigningKey()
	kept, err := idp.NewKey("ES256")
	require.NoError(t, err)
	leakedTok := mustMintWith(t, idp, leaked)
	var keptToks []string
	for _, sub := range []string{"alice", "bob"} {
		tok, err := idp.MintToken(authtest.Token{Key: kept, Claims: map[string]any{"sub": sub}})
		require.NoError(t, err)
		keptToks = append(keptToks, tok)
	}
	for _, tok := range append([]string{leakedTok}, keptToks...) {
		_, err := v.Validate(t.Context(), tok)
		require.NoError(t, err)
	}
	require.Equal(t, 3, v.cache.len())
	keptEntries := func() []*cacheEntry {
		var out []*cacheEntry
		for _, tok := range keptToks {
			s := v.cache.shard(keyOf(tok))
			s.mu.Lock()
			out = append(out, s.m[keyOf(tok)])
			s.mu.Unlock()
		}
		return out
	}
	before := keptEntries()

	// The IdP rotates the leaked key out; the validator's next fetch sees it.
	require.NoError(t, idp.SetSigningKey(kept.ID()))
	require.NoError(t, idp.RetireKey(leaked.ID()))
	require.NoError(t, v.Refresh(t.Context()))

	_, err = v.Validate(t.Context(), leakedTok)
	assertDesc(t, err, descUnknownKey)
	_, err = v.Validate(t.Context(), mustMintWith(t, idp, leaked))
	assertDesc(t, err, descUnknownKey)
	fetches := idp.JWKSFetches()
	for i, tok := range keptToks {
		require.NotNil(t, v.cache.get(keyOf(tok), clock.Now()), "the kept key's token %d lost its cache entry", i)
		p, err := v.Validate(t.Context(), tok)
		require.NoError(t, err)
		assert.NotEmpty(t, p.Subject)
	}
	assert.Equal(t, before, keptEntries(), "the kept key's entries are the ones cached before the rotation")
	assert.Equal(t, fetches, idp.JWKSFetches(), "serving the kept tokens fetched nothing")
	assert.Equal(t, 2, v.cache.len(), "only the removed key's entry left the cache")
}
