package redisrate

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/internal/redistest"
	"github.com/mcpguard/mcpguard/transport/ratelimit"
)

// redisServer is a redis-server process on a loopback port, owned by a
// test (internal/redistest), under the names these tests use.
type redisServer struct {
	*redistest.Server
	addr string
}

// startRedis starts redis-server on a free loopback port and stops it when
// the test ends. It skips the test only when the binary is not installed.
func startRedis(t testing.TB) *redisServer {
	t.Helper()
	s := redistest.Start(t)
	return &redisServer{Server: s, addr: s.Addr}
}

// stop kills the server; safe to call twice.
func (s *redisServer) stop() { s.Stop() }

// newRedisClient returns a client that fails fast: no retries, short
// timeouts, as Config recommends.
func newRedisClient(t testing.TB, addr string) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{
		Addr:         addr,
		MaxRetries:   -1,
		DialTimeout:  500 * time.Millisecond,
		ReadTimeout:  500 * time.Millisecond,
		WriteTimeout: 500 * time.Millisecond,
		PoolTimeout:  time.Second,
	})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func newRedis(t testing.TB, cfg Config) *Limiter {
	t.Helper()
	l, err := New(cfg)
	require.NoError(t, err)
	return l
}

// hourly allows Burst events and then refills one event every 12 minutes,
// so no refill can happen while a test runs: results are deterministic
// although Redis uses its own clock.
var hourly = ratelimit.Limit{Events: 5, Period: time.Hour, Burst: 3}

func TestRedisAllow(t *testing.T) {
	srv := startRedis(t)
	l := newRedis(t, Config{Client: newRedisClient(t, srv.addr), Prefix: "test:" + t.Name() + ":"})
	ctx := context.Background()

	for i := range hourly.Burst {
		d, err := l.Allow(ctx, "alice", hourly)
		require.NoError(t, err)
		assert.True(t, d.Allowed, "event %d", i)
		assert.Zero(t, d.RetryAfter)
	}
	d, err := l.Allow(ctx, "alice", hourly)
	require.NoError(t, err)
	assert.False(t, d.Allowed)
	// One event per 12 minutes: the next is due in just under 12 minutes.
	assert.InDelta(t, float64(12*time.Minute), float64(d.RetryAfter), float64(10*time.Second))
	assert.NoError(t, d.FailedOpen)

	d, err = l.Allow(ctx, "bob", hourly)
	require.NoError(t, err)
	assert.True(t, d.Allowed, "keys are independent")

	long := strings.Repeat("k", 500)
	d, err = l.Allow(ctx, long, ratelimit.PerMinute(1))
	require.NoError(t, err)
	assert.True(t, d.Allowed)
	d, err = l.Allow(ctx, long, ratelimit.PerMinute(1))
	require.NoError(t, err)
	assert.False(t, d.Allowed, "a digested key keeps its budget")

	_, err = l.Allow(ctx, "alice", ratelimit.Limit{})
	assert.ErrorIs(t, err, ratelimit.ErrConfig)
}

func TestRedisKeysStayShort(t *testing.T) {
	srv := startRedis(t)
	c := newRedisClient(t, srv.addr)
	l := newRedis(t, Config{Client: c})
	ctx := context.Background()
	_, err := l.Allow(ctx, strings.Repeat("k", 10_000), ratelimit.PerMinute(1))
	require.NoError(t, err)
	_, err = l.Allow(ctx, "short", ratelimit.PerMinute(1))
	require.NoError(t, err)
	keys, err := c.Keys(ctx, "*").Result()
	require.NoError(t, err)
	require.Len(t, keys, 2)
	for _, k := range keys {
		assert.True(t, strings.Contains(k, DefaultPrefix), k)
		assert.Less(t, len(k), 128, k, "prefix, limit and at most a 71-byte key or digest")
	}
}

// A bucket's limit is fixed: the same key under another limit counts in a
// bucket of its own, so a caller spending one limit cannot switch another
// caller's bucket to it.
func TestRedisLimitIsFixedPerBucket(t *testing.T) {
	srv := startRedis(t)
	l := newRedis(t, Config{Client: newRedisClient(t, srv.addr), Prefix: "fixed:"})
	ctx := context.Background()
	one := ratelimit.Limit{Events: 1, Period: time.Hour}
	three := ratelimit.Limit{Events: 1, Period: time.Hour, Burst: 3}
	d, err := l.Allow(ctx, "k", one)
	require.NoError(t, err)
	assert.True(t, d.Allowed)
	d, err = l.Allow(ctx, "k", one)
	require.NoError(t, err)
	assert.False(t, d.Allowed)
	for i := range 3 {
		d, err = l.Allow(ctx, "k", three)
		require.NoError(t, err)
		assert.True(t, d.Allowed, "event %d under the other limit", i)
	}
	d, err = l.Allow(ctx, "k", three)
	require.NoError(t, err)
	assert.False(t, d.Allowed)
	d, err = l.Allow(ctx, "k", one)
	require.NoError(t, err)
	assert.False(t, d.Allowed, "the first bucket is still spent")
}

func TestRedisReplicasShareOneBudget(t *testing.T) {
	srv := startRedis(t)
	// Two limiters with their own clients stand for two replicas.
	a := newRedis(t, Config{Client: newRedisClient(t, srv.addr)})
	b := newRedis(t, Config{Client: newRedisClient(t, srv.addr)})
	ctx := context.Background()
	limit := ratelimit.Limit{Events: 10, Period: time.Hour, Burst: 10}

	var mu sync.Mutex
	allowed := map[string]int{}
	var wg sync.WaitGroup
	for _, replica := range []struct {
		name string
		l    *Limiter
	}{{"a", a}, {"b", b}} {
		for range 4 {
			wg.Go(func() {
				for range 10 {
					d, err := replica.l.Allow(ctx, "tenant-1", limit)
					if !assert.NoError(t, err) {
						return
					}
					if d.Allowed {
						mu.Lock()
						allowed[replica.name]++
						mu.Unlock()
					}
				}
			})
		}
	}
	wg.Wait()
	// 80 attempts over two replicas; the shared budget is 10.
	assert.Equal(t, 10, allowed["a"]+allowed["b"], "per replica: %v", allowed)

	// Spending on one replica is seen by the other.
	d, err := a.Allow(ctx, "tenant-2", ratelimit.PerMinute(1))
	require.NoError(t, err)
	require.True(t, d.Allowed)
	d, err = b.Allow(ctx, "tenant-2", ratelimit.PerMinute(1))
	require.NoError(t, err)
	assert.False(t, d.Allowed)

	// A different prefix is a different budget.
	other := newRedis(t, Config{Client: newRedisClient(t, srv.addr), Prefix: "other:"})
	d, err = other.Allow(ctx, "tenant-2", ratelimit.PerMinute(1))
	require.NoError(t, err)
	assert.True(t, d.Allowed)
}

func TestRedisGoesAway(t *testing.T) {
	tests := []struct {
		policy FailurePolicy
		check  func(t *testing.T, d ratelimit.Decision, err error)
	}{
		{policy: FailClosed, check: func(t *testing.T, d ratelimit.Decision, err error) {
			require.ErrorIs(t, err, ratelimit.ErrUnavailable)
			assert.False(t, d.Allowed)
			assert.Equal(t, UnavailableRetryAfter, d.RetryAfter)
			assert.NoError(t, d.FailedOpen)
		}},
		{policy: FailOpen, check: func(t *testing.T, d ratelimit.Decision, err error) {
			require.NoError(t, err)
			assert.True(t, d.Allowed)
			require.Error(t, d.FailedOpen)
			assert.ErrorIs(t, d.FailedOpen, ratelimit.ErrUnavailable)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.policy.String(), func(t *testing.T) {
			srv := startRedis(t)
			l := newRedis(t, Config{Client: newRedisClient(t, srv.addr), FailurePolicy: tc.policy})
			ctx := context.Background()
			d, err := l.Allow(ctx, "k", ratelimit.PerMinute(1))
			require.NoError(t, err)
			require.True(t, d.Allowed)
			d, err = l.Allow(ctx, "k", ratelimit.PerMinute(1))
			require.NoError(t, err)
			require.False(t, d.Allowed, "budget is enforced while Redis is up")

			srv.stop()
			for i := range 3 {
				d, err := l.Allow(ctx, "k", ratelimit.PerMinute(1))
				t.Logf("call %d after stop: %+v, %v", i, d, err)
				tc.check(t, d, err)
			}

			// Redis comes back (empty, on the same port): the limiter
			// recovers by itself, reloading its script.
			srv.Start()
			d, err = l.Allow(ctx, "k", ratelimit.PerMinute(1))
			require.NoError(t, err)
			assert.True(t, d.Allowed)
			assert.NoError(t, d.FailedOpen)
			d, err = l.Allow(ctx, "k", ratelimit.PerMinute(1))
			require.NoError(t, err)
			assert.False(t, d.Allowed, "enforced again")
		})
	}
}

func TestNewRedisConfig(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { _ = c.Close() })
	tests := []struct {
		name  string
		cfg   Config
		field string
	}{
		{"no client", Config{}, "Client"},
		{"unknown policy", Config{Client: c, FailurePolicy: 7}, "FailurePolicy"},
		{"braces in prefix", Config{Client: c, Prefix: "{x}:"}, "Prefix"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg)
			require.ErrorIs(t, err, ratelimit.ErrConfig)
			assert.Contains(t, err.Error(), tc.field)
		})
	}
	l, err := New(Config{Client: c})
	require.NoError(t, err)
	assert.Equal(t, DefaultPrefix, l.prefix)
	assert.Equal(t, FailClosed, l.policy, "fail closed by default")
}

func BenchmarkRedisAllow(b *testing.B) {
	srv := startRedis(b)
	l := newRedis(b, Config{Client: newRedisClient(b, srv.addr)})
	ctx := context.Background()
	limit := ratelimit.Limit{Events: 1 << 30, Burst: 1 << 30}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := l.Allow(ctx, "http|t4:acmei0:s5:alice", limit); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
