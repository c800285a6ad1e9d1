package obo_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/auth"
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

// Exchangers of different clients or authorization servers sharing one
// SharedCache (one Redis for the whole deployment, say one exchanger per
// tenant) never serve each other's tokens: a service token of one client
// is not another client's, and a token exchanged at one authorization
// server was not granted by another, even for the same user and target.
func TestSharedCacheKeyedByExchanger(t *testing.T) {
	clk := newClock()
	shared := &mapShared{}
	cfg := func(c *obo.Config) { c.Now, c.SharedCache = clk.Now, shared }
	asA := newFakeAS(t, "client_secret_basic")
	asB := newFakeAS(t, "client_secret_basic")
	asB.clientID = "tenant-b-server"
	exA := newExchanger(t, asA, cfg)
	exB := newExchanger(t, asB, cfg)
	// Another client of asA, which asA does not know: it must be asked, and
	// refuses.
	stranger := newExchanger(t, asA, func(c *obo.Config) {
		cfg(c)
		c.ClientID, c.ClientSecret = "stranger", auth.NewCredential("stranger-secret")
	})
	// The same client and endpoint, issued DPoP-bound tokens for its key.
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	bound := newExchanger(t, asA, func(c *obo.Config) {
		cfg(c)
		c.DPoPKey = &obo.PrivateKey{Signer: key}
	})
	// The same configuration as exA: a replica, which shares exA's tokens.
	replica := newExchanger(t, asA, cfg)

	service := obo.Target{Flavor: obo.ClientCredentials, Audience: "billing-api", Scopes: []string{"billing.read"}}
	for name, target := range map[string]obo.Target{"client credentials": service, "token exchange": calendar} {
		t.Run(name, func(t *testing.T) {
			ctx := userCtx(alice)
			a, err := exA.Token(ctx, target)
			require.NoError(t, err)

			callsB := asB.calls.Load()
			b, err := exB.Token(ctx, target)
			require.NoError(t, err)
			assert.Equal(t, callsB+1, asB.calls.Load(), "another authorization server and client: its own exchange")
			assert.NotEqual(t, a.AccessToken.Reveal(), b.AccessToken.Reveal())

			callsA := asA.calls.Load()
			_, err = stranger.Token(ctx, target)
			require.Error(t, err, "another client of the same endpoint is not served the first client's token")
			assert.Equal(t, callsA+1, asA.calls.Load())

			callsA = asA.calls.Load()
			_, err = bound.Token(ctx, target)
			require.NoError(t, err)
			assert.Equal(t, callsA+1, asA.calls.Load(), "another DPoP key: its own exchange")

			callsA = asA.calls.Load()
			r, err := replica.Token(ctx, target)
			require.NoError(t, err)
			assert.Equal(t, callsA, asA.calls.Load(), "a replica finds the token in the shared cache")
			assert.Equal(t, a.AccessToken.Reveal(), r.AccessToken.Reveal())
		})
	}
}

// A SharedCache is shared by every exchanger of the process and of the
// replicas (one redisstore.Shared), while each exchanger's own memory cache
// is its alone. The shared key must then name the exchanger too: two
// exchangers with their own client (one per tenant, say) asking for the
// same target got each other's tokens, client credentials above all, whose
// key has no user in it.
func TestSharedCacheKeptPerExchanger(t *testing.T) {
	reports := obo.Target{Flavor: obo.ClientCredentials, Audience: "reports-api", Scopes: []string{"reports.read"}}
	tests := []struct {
		name   string
		target obo.Target
		ctx    context.Context
		second func(t *testing.T, first *fakeAS) (*fakeAS, func(*obo.Config))
	}{
		{"client credentials, another authorization server and client", reports, context.Background(),
			func(t *testing.T, _ *fakeAS) (*fakeAS, func(*obo.Config)) {
				as := newFakeAS(t, "client_secret_basic")
				as.clientID = "tenant-b"
				return as, nil
			}},
		{"client credentials, same endpoint, another client", reports, context.Background(),
			func(t *testing.T, first *fakeAS) (*fakeAS, func(*obo.Config)) {
				return first, func(c *obo.Config) { c.ClientID = "tenant-b" }
			}},
		{"token exchange, another authorization server", calendar, userCtx(alice),
			func(t *testing.T, _ *fakeAS) (*fakeAS, func(*obo.Config)) {
				return newFakeAS(t, "client_secret_basic"), nil
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			shared := &mapShared{}
			withShared := func(more func(*obo.Config)) func(*obo.Config) {
				return func(c *obo.Config) {
					c.SharedCache = shared
					if more != nil {
						more(c)
					}
				}
			}
			asA := newFakeAS(t, "client_secret_basic")
			asA.clientID = "tenant-a"
			a := newExchanger(t, asA, withShared(nil))
			asB, mutate := tt.second(t, asA)
			b := newExchanger(t, asB, withShared(mutate))

			first, err := a.Token(tt.ctx, tt.target)
			require.NoError(t, err)
			second, err := b.Token(tt.ctx, tt.target)
			if asB == asA {
				// asA authenticates tenant-a only: b's own exchange is
				// refused, which is what it must get, not a's token.
				require.Error(t, err, "b was served a's token from the shared cache")
				return
			}
			require.NoError(t, err)
			assert.EqualValues(t, 1, asA.calls.Load())
			assert.EqualValues(t, 1, asB.calls.Load(), "b exchanged with its own authorization server, not served a's token")
			if tt.target.Flavor == obo.ClientCredentials {
				assert.Equal(t, "tenant-a", decodeIssued(t, first.AccessToken.Reveal()).Sub)
				assert.Equal(t, "tenant-b", decodeIssued(t, second.AccessToken.Reveal()).Sub)
			}
		})
	}
}
