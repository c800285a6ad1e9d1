package auth

import (
	"fmt"
	"testing"
	"time"

	"github.com/mcpguard/mcpguard/auth/authtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTokenCacheLRUAndBounds(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	later := now.Add(time.Hour)
	c := newTokenCache(3)
	require.Len(t, c.shards, 1)
	p := func(s string) *Principal { return &Principal{Subject: s} }
	for _, s := range []string{"a", "b", "c"} {
		c.put(keyOf(s), p(s), later, nil)
	}
	require.NotNil(t, c.get(keyOf("a"), now)) // a is now the most recent
	c.put(keyOf("d"), p("d"), later, nil)     // evicts b, the least recent
	assert.Equal(t, 3, c.len())
	assert.Nil(t, c.get(keyOf("b"), now))
	for _, s := range []string{"a", "c", "d"} {
		got := c.get(keyOf(s), now)
		if assert.NotNil(t, got, s) {
			assert.Equal(t, s, got.Subject)
		}
	}
	c.put(keyOf("a"), p("a2"), later, nil) // update in place
	assert.Equal(t, "a2", c.get(keyOf("a"), now).Subject)
	assert.Equal(t, 3, c.len())

	t.Run("never past expiry", func(t *testing.T) {
		c := newTokenCache(10)
		exp := now.Add(time.Minute)
		c.put(keyOf("x"), p("x"), exp, nil)
		assert.NotNil(t, c.get(keyOf("x"), exp.Add(-time.Nanosecond)))
		assert.Nil(t, c.get(keyOf("x"), exp))
		assert.Zero(t, c.len(), "expired entry dropped")
	})
	t.Run("removed key", func(t *testing.T) {
		c := newTokenCache(10)
		gone, kept := &verifyKey{kid: "gone"}, &verifyKey{kid: "kept"}
		c.put(keyOf("x"), p("x"), later, gone)
		c.put(keyOf("y"), p("y"), later, kept)
		gone.removed.Store(true)
		assert.Nil(t, c.get(keyOf("x"), now), "the removed key's entry is dropped")
		assert.NotNil(t, c.get(keyOf("y"), now), "another key's entry stays")
		assert.Equal(t, 1, c.len())
	})
	t.Run("sharded bound", func(t *testing.T) {
		c := newTokenCache(1000)
		require.Len(t, c.shards, 16)
		for i := range 5000 {
			c.put(keyOf(fmt.Sprint(i)), p("x"), later, nil)
		}
		assert.LessOrEqual(t, c.len(), 1000+16)
		assert.GreaterOrEqual(t, c.len(), 900)
	})
}

func TestJWTCacheStopsAtExpiry(t *testing.T) {
	clock := newFakeClock()
	idp := newIDP(t, clock, "ES256")
	v := newValidator(t, idp, clock, nil)
	tok := idp.MustMint(map[string]any{"exp": clock.Now().Add(2 * time.Minute).Unix()})
	exp := clock.Now().Add(2 * time.Minute)

	p1, err := v.Validate(t.Context(), tok)
	require.NoError(t, err)
	require.Equal(t, 1, v.cache.len())
	// A cache hit returns a copy sharing the verified claims.
	p2, err := v.Validate(t.Context(), tok)
	require.NoError(t, err)
	assert.Equal(t, p1, p2)

	clock.Advance(2*time.Minute - time.Second)
	require.NotNil(t, v.cache.get(keyOf(tok), clock.Now()), "still cached just before exp")
	clock.Advance(time.Second)
	require.Equal(t, exp, clock.Now())
	assert.Nil(t, v.cache.get(keyOf(tok), clock.Now()), "never served from the cache at or after exp")

	// Within the leeway a full validation still accepts it (and does not
	// cache it past exp)…
	_, err = v.Validate(t.Context(), tok)
	require.NoError(t, err)
	assert.Nil(t, v.cache.get(keyOf(tok), clock.Now()))
	// …and beyond the leeway it is expired.
	clock.Advance(DefaultLeeway)
	_, err = v.Validate(t.Context(), tok)
	require.ErrorIs(t, err, ErrExpired)
	assertNoTokenLeak(t, tok, err)
}

func TestJWTCacheKeyedByWholeToken(t *testing.T) {
	clock := newFakeClock()
	idp := newIDP(t, clock, "ES256")
	v := newValidator(t, idp, clock, nil)
	tok := idp.MustMint(nil)
	_, err := v.Validate(t.Context(), tok)
	require.NoError(t, err)

	// Same header and payload, another signature: never a cache hit.
	bad, err := authtest.CorruptSignature(tok)
	require.NoError(t, err)
	_, err = v.Validate(t.Context(), bad)
	assertDesc(t, err, descSignature)
	// A prefix or suffix variant neither.
	_, err = v.Validate(t.Context(), tok+"A")
	assert.Error(t, err)
	_, err = v.Validate(t.Context(), tok[:len(tok)-1])
	assert.Error(t, err)
	assert.Equal(t, 1, v.cache.len())
}

func TestJWTCacheDisabled(t *testing.T) {
	clock := newFakeClock()
	idp := newIDP(t, clock, "ES256")
	v := newValidator(t, idp, clock, func(c *JWTConfig) { c.DisableCache = true })
	assert.Nil(t, v.cache)
	tok := idp.MustMint(nil)
	for range 3 {
		_, err := v.Validate(t.Context(), tok)
		require.NoError(t, err)
	}
}
