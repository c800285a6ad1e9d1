package auth

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/auth/authtest"
)

// mapIntroCache is an IntrospectionCache in a map, standing for Redis.
type mapIntroCache struct {
	mu sync.Mutex
	m  map[[32]byte]introEntry
}

type introEntry struct {
	body  []byte
	until time.Time
}

func (c *mapIntroCache) Get(_ context.Context, key [32]byte, now time.Time) ([]byte, time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[key]
	if !ok || !now.Before(e.until) {
		return nil, time.Time{}, false
	}
	return e.body, e.until, true
}

func (c *mapIntroCache) Put(_ context.Context, key [32]byte, body []byte, until time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[[32]byte]introEntry{}
	}
	c.m[key] = introEntry{body, until}
}

// Two validators sharing a cache stand for two replicas: one
// introspection per token between them, for active and inactive tokens,
// and the second replica's entry ends when the first one's does.
func TestIntrospectionSharedCache(t *testing.T) {
	clock := newFakeClock()
	idp := newIDP(t, clock, "ES256")
	require.NoError(t, idp.RegisterClient(authtest.Client{ID: "mcp-rs", Secret: "rs-secret"}))
	shared := &mapIntroCache{}
	newV := func() *IntrospectionValidator {
		v, err := NewIntrospectionValidator(IntrospectionConfig{
			Issuer: idp.Issuer(), Endpoint: idp.IntrospectionURL(), Audience: idp.Audience(),
			ClientID: "mcp-rs", ClientSecret: NewCredential("rs-secret"), Now: clock.Now,
			CacheTTL: 30 * time.Second, SharedCache: shared,
		})
		require.NoError(t, err)
		t.Cleanup(func() { _ = v.Close() })
		return v
	}
	r1, r2 := newV(), newV()

	tok := idp.MustMintOpaque(map[string]any{"scope": "notes:read"})
	_, err := r1.Validate(t.Context(), tok)
	require.NoError(t, err)
	require.Equal(t, 1, idp.IntrospectionRequests())
	clock.Advance(20 * time.Second)
	p, err := r2.Validate(t.Context(), tok)
	require.NoError(t, err)
	assert.Equal(t, "alice", p.Subject)
	assert.Equal(t, []string{"notes:read"}, p.Scopes)
	assert.Equal(t, 1, idp.IntrospectionRequests(), "the second replica used the first one's answer")

	// Revoked at the AS: both replicas stop serving it when the first
	// answer's CacheTTL ends, not 30 s after the second replica read it.
	idp.Revoke(tok)
	clock.Advance(10 * time.Second)
	_, err = r2.Validate(t.Context(), tok)
	require.ErrorIs(t, err, ErrInvalidToken)
	assert.Equal(t, 2, idp.IntrospectionRequests())
	_, err = r1.Validate(t.Context(), tok)
	require.ErrorIs(t, err, ErrInvalidToken)
	assert.Equal(t, 2, idp.IntrospectionRequests(), "the rejection is shared too")

	// A rejection the shared cache holds is checked again here: a wrong
	// audience stays wrong.
	other := idp.MustMintOpaque(map[string]any{"aud": "https://other.example/api"})
	_, err = r1.Validate(t.Context(), other)
	require.ErrorIs(t, err, ErrInvalidToken)
	_, err = r2.Validate(t.Context(), other)
	require.ErrorIs(t, err, ErrInvalidToken)
	assert.Equal(t, descAudience, AsError(err).Description)
	assert.Equal(t, 3, idp.IntrospectionRequests())
}

// Validators of different authorization servers or clients sharing one
// cache (one Redis for several resources or tenants) never use each
// other's answers: an authorization server's answer is about its own
// tokens, for the client that asked. A token active at one server, whose
// answer names no issuer, was accepted by a validator of another server as
// one of its own.
func TestIntrospectionSharedCacheKeyedByValidator(t *testing.T) {
	shared := &mapIntroCache{}
	a, b := newFakeAS(t).serve(), newFakeAS(t).serve()
	a.add("tenant-a-token", map[string]any{"iss": nil})
	va := newIntrospection(t, a, func(c *IntrospectionConfig) { c.SharedCache = shared })
	vb := newIntrospection(t, b, func(c *IntrospectionConfig) { c.SharedCache = shared })
	stranger := newIntrospection(t, a, func(c *IntrospectionConfig) {
		c.SharedCache = shared
		c.ClientID = "another resource"
	})
	replica := newIntrospection(t, a, func(c *IntrospectionConfig) { c.SharedCache = shared })

	p, err := va.Validate(t.Context(), "tenant-a-token")
	require.NoError(t, err)
	assert.Equal(t, a.issuer, p.Issuer)
	require.EqualValues(t, 1, a.requests.Load())

	_, err = vb.Validate(t.Context(), "tenant-a-token")
	require.ErrorIs(t, err, ErrInvalidToken, "another authorization server's token")
	assert.EqualValues(t, 1, b.requests.Load(), "its own server was asked")

	_, err = stranger.Validate(t.Context(), "tenant-a-token")
	require.Error(t, err, "another client is not the one the server answered")
	assert.EqualValues(t, 2, a.requests.Load(), "the server was asked for that client")

	p, err = replica.Validate(t.Context(), "tenant-a-token")
	require.NoError(t, err)
	assert.Equal(t, a.issuer, p.Issuer)
	assert.EqualValues(t, 2, a.requests.Load(), "a replica uses the shared answer")
}

// One SharedCache may serve several validators (a redisstore.Shared serves
// the whole process), while each validator's own caches are its alone:
// an answer is about the token at the authorization server that gave it,
// to the client that asked. A validator of another issuer read it as its
// own server's: an active answer without "iss" (RFC 7662 makes it
// optional) became a principal of its issuer for a token its server never
// issued, and an inactive one refused a token its server would accept.
func TestIntrospectionSharedCacheKeptPerValidator(t *testing.T) {
	shared := &mapIntroCache{}
	asA, asB := newFakeAS(t).serve(), newFakeAS(t).serve()
	va := newIntrospection(t, asA, func(c *IntrospectionConfig) { c.SharedCache = shared })
	vb := newIntrospection(t, asB, func(c *IntrospectionConfig) { c.SharedCache = shared })

	onlyA := "token-of-server-a"
	asA.add(onlyA, map[string]any{"iss": nil, "sub": "mallory"})
	p, err := va.Validate(t.Context(), onlyA)
	require.NoError(t, err)
	assert.Equal(t, asA.issuer, p.Issuer)
	_, err = vb.Validate(t.Context(), onlyA)
	require.ErrorIs(t, err, ErrInvalidToken, "server B's validator took server A's answer for its own")
	assert.EqualValues(t, 1, asB.requests.Load(), "B asked its own server")

	onlyB := "token-of-server-b"
	asB.add(onlyB, nil)
	_, err = va.Validate(t.Context(), onlyB)
	require.ErrorIs(t, err, ErrInvalidToken)
	p, err = vb.Validate(t.Context(), onlyB)
	require.NoError(t, err, "server A's rejection refused a token server B accepts")
	assert.Equal(t, asB.issuer, p.Issuer)

	// The same validator on another replica still shares.
	vb2 := newIntrospection(t, asB, func(c *IntrospectionConfig) { c.SharedCache = shared })
	_, err = vb2.Validate(t.Context(), onlyB)
	require.NoError(t, err)
	assert.EqualValues(t, 2, asB.requests.Load())
}
