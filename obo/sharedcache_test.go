package obo_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/obo"
)

// mapShared is a SharedCache in a map, standing for Redis.
type mapShared struct {
	mu   sync.Mutex
	m    map[[32]byte]sharedEntry
	gets int
}

type sharedEntry struct {
	tok       obo.Token
	refreshAt time.Time
}

func (c *mapShared) Get(_ context.Context, key [32]byte, now time.Time) (obo.Token, time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gets++
	e, ok := c.m[key]
	if !ok || !now.Before(e.refreshAt) {
		return obo.Token{}, time.Time{}, false
	}
	return e.tok, e.refreshAt, true
}

func (c *mapShared) Put(_ context.Context, key [32]byte, tok obo.Token, refreshAt time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[[32]byte]sharedEntry{}
	}
	c.m[key] = sharedEntry{tok, refreshAt}
}

// Two exchangers sharing a cache stand for two replicas: one exchange for
// the same user and target between them; another user still exchanges.
func TestSharedCacheOneExchangeForReplicas(t *testing.T) {
	clk := newClock()
	as := newFakeAS(t, "client_secret_basic") // expires_in 3600
	shared := &mapShared{}
	cfg := func(c *obo.Config) {
		c.Now = clk.Now
		c.ExpirySkew = time.Minute
		c.SharedCache = shared
	}
	r1 := newExchanger(t, as, cfg)
	r2 := newExchanger(t, as, cfg)

	first, err := r1.Token(userCtx(alice), calendar)
	require.NoError(t, err)
	second, err := r2.Token(userCtx(alice), calendar)
	require.NoError(t, err)
	assert.EqualValues(t, 1, as.calls.Load(), "the second replica found the first one's token")
	assert.Equal(t, first.AccessToken.Reveal(), second.AccessToken.Reveal())
	require.Len(t, shared.m, 1)
	for _, e := range shared.m {
		assert.Equal(t, first.Expiry.Add(-time.Minute), e.refreshAt, "shared no longer than the token, minus the skew")
	}

	gets := shared.gets
	_, err = r2.Token(userCtx(alice), calendar)
	require.NoError(t, err)
	assert.Equal(t, gets, shared.gets, "a warm call stays in the replica's own cache")

	_, err = r2.Token(userCtx(bob), calendar)
	require.NoError(t, err)
	assert.EqualValues(t, 2, as.calls.Load())

	// Past the refresh time, neither level serves it.
	clk.Add(time.Hour)
	_, err = r1.Token(userCtx(alice), calendar)
	require.NoError(t, err)
	assert.EqualValues(t, 3, as.calls.Load())
}
