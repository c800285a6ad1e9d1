package redisstore

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func testKey(b byte) []byte { return bytes.Repeat([]byte{b}, SealKeySize) }

func TestNewConfig(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { _ = c.Close() })
	tests := []struct {
		name  string
		cfg   Config
		field string
	}{
		{"no client", Config{SealKey: testKey(1)}, "Client"},
		{"no seal key", Config{Client: c}, "SealKey"},
		{"short seal key", Config{Client: c, SealKey: testKey(1)[:16]}, "SealKey"},
		{"braces in prefix", Config{Client: c, SealKey: testKey(1), Prefix: "a{b}:"}, "Prefix"},
		{"long prefix", Config{Client: c, SealKey: testKey(1), Prefix: strings.Repeat("p", 129)}, "Prefix"},
		{"negative retry", Config{Client: c, SealKey: testKey(1), RetryAfter: -time.Second}, "RetryAfter"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg)
			require.ErrorIs(t, err, ErrConfig)
			assert.Contains(t, err.Error(), tc.field)
		})
	}
	s, err := New(Config{Client: c, SealKey: testKey(1)})
	require.NoError(t, err)
	assert.Equal(t, DefaultPrefix, s.prefix)
	assert.Equal(t, DefaultRetryAfter, s.retryAfter)
}

func TestKeyIsKeyedHash(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { _ = c.Close() })
	a, err := New(Config{Client: c, SealKey: testKey(1), Prefix: "p:"})
	require.NoError(t, err)
	b, err := New(Config{Client: c, SealKey: testKey(2), Prefix: "p:"})
	require.NoError(t, err)

	k := a.key("replay", []byte("alice-token"))
	assert.True(t, strings.HasPrefix(k, "p:replay:"), k)
	assert.NotContains(t, k, "alice")
	assert.Len(t, k, len("p:replay:")+43)
	assert.Equal(t, k, a.key("replay", []byte("alice-token")), "deterministic")
	assert.NotEqual(t, k, b.key("replay", []byte("alice-token")), "another seal key, another key")
	assert.NotEqual(t, k, a.key("replay2", []byte("alice-token")), "namespaces differ")
	// Parts are length-prefixed: splitting differently is another key.
	assert.NotEqual(t, a.key("k", []byte("ab"), []byte("c")), a.key("k", []byte("a"), []byte("bc")))
}

func TestSealOpen(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { _ = c.Close() })
	a, err := New(Config{Client: c, SealKey: testKey(1)})
	require.NoError(t, err)
	b, err := New(Config{Client: c, SealKey: testKey(2)})
	require.NoError(t, err)

	msg := []byte("eyJhbGciOi.secret-token")
	sealed := a.seal("k1", msg)
	assert.False(t, bytes.Contains(sealed, msg))
	assert.NotEqual(t, sealed, a.seal("k1", msg), "a fresh nonce each time")
	got, err := a.open("k1", sealed)
	require.NoError(t, err)
	assert.Equal(t, msg, got)

	_, err = a.open("k2", sealed)
	assert.ErrorIs(t, err, errSealed, "bound to its key")
	_, err = b.open("k1", sealed)
	assert.ErrorIs(t, err, errSealed, "another seal key")
	flipped := bytes.Clone(sealed)
	flipped[len(flipped)-1] ^= 1
	_, err = a.open("k1", flipped)
	assert.ErrorIs(t, err, errSealed)
	_, err = a.open("k1", sealed[:10])
	assert.ErrorIs(t, err, errSealed)
	_, err = a.open("k1", nil)
	assert.ErrorIs(t, err, errSealed)
}

func TestHealthEvents(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { _ = c.Close() })
	now := time.Unix(1000, 0)
	var rep events
	s, err := New(Config{Client: c, SealKey: testKey(1), Now: func() time.Time { return now }, Reporter: &rep})
	require.NoError(t, err)
	h := s.health("dpop_replay", FailClosed)
	ctx := context.Background()

	h.OK(ctx)
	assert.Empty(t, rep.list(), "no event while healthy")
	assert.False(t, h.Skip())

	err = h.Fail(ctx, errors.New("connection refused"))
	require.ErrorIs(t, err, ErrUnavailable)
	assert.Contains(t, err.Error(), "dpop_replay")
	assert.True(t, h.Skip(), "Redis is skipped right after a failure")
	assert.True(t, h.Failing())
	_ = h.Fail(ctx, errors.New("again"))
	require.Len(t, rep.list(), 1, "one event per second at most")
	assert.Equal(t, report{Store: "dpop_replay", Outcome: "fail_closed"}, rep.list()[0])

	now = now.Add(DefaultRetryAfter)
	assert.False(t, h.Skip(), "tried again after RetryAfter")
	now = now.Add(time.Second)
	_ = h.Fail(ctx, errors.New("still"))
	require.Len(t, rep.list(), 2)

	h.OK(ctx)
	require.Len(t, rep.list(), 3)
	assert.Equal(t, report{Store: "dpop_replay", Outcome: "recovered", Recovered: true}, rep.list()[2])
	assert.False(t, h.Skip())
	h.OK(ctx)
	assert.Len(t, rep.list(), 3, "one recovery event")
}

// TestHealthSkipDoesNotExtend: calls skipped after a failure do not push
// the next try back, so a store asked every few milliseconds still tries
// Redis again RetryAfter after the last real failure (it never did before:
// each skip restarted the window, and the store stayed down for good).
func TestHealthSkipDoesNotExtend(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { _ = c.Close() })
	now := time.Unix(1000, 0)
	s, err := New(Config{Client: c, SealKey: testKey(1), Now: func() time.Time { return now }})
	require.NoError(t, err)
	h := s.health("terminated_sessions", FailClosed)
	ctx := context.Background()
	_ = h.Fail(ctx, errors.New("connection refused"))
	for range 10 {
		now = now.Add(DefaultRetryAfter / 10)
		if h.Skip() {
			assert.ErrorIs(t, h.Fail(ctx, nil), ErrUnavailable)
		}
	}
	assert.False(t, h.Skip(), "RetryAfter after the failure, Redis is tried again")
}

func TestTTLNeverOutlives(t *testing.T) {
	now := time.Unix(1000, 0)
	d, ok := ttl(now, now.Add(1500*time.Microsecond))
	assert.True(t, ok)
	assert.Equal(t, time.Millisecond, d, "rounded down")
	_, ok = ttl(now, now.Add(999*time.Microsecond))
	assert.False(t, ok)
	_, ok = ttl(now, now.Add(-time.Second))
	assert.False(t, ok)
}
