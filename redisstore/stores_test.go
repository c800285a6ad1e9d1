package redisstore

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/transport"
	"github.com/mcpguard/mcpguard/transport/ratelimit"
)

// Two stores on one Redis stand for two replicas.
func TestReplayAcrossReplicas(t *testing.T) {
	srv := startRedis(t)
	a, err := newShared(t, srv.addr, nil).ReplayStore(StoreConfig{})
	require.NoError(t, err)
	b, err := newShared(t, srv.addr, nil).ReplayStore(StoreConfig{})
	require.NoError(t, err)
	ctx := context.Background()
	exp := time.Now().Add(time.Minute)

	seen, err := a.CheckAndStore(ctx, "proof-1", exp)
	require.NoError(t, err)
	assert.False(t, seen)
	seen, err = b.CheckAndStore(ctx, "proof-1", exp)
	require.NoError(t, err)
	assert.True(t, seen, "used on a, refused on b")
	seen, err = a.CheckAndStore(ctx, "proof-1", exp)
	require.NoError(t, err)
	assert.True(t, seen)
	seen, err = b.CheckAndStore(ctx, "proof-2", exp)
	require.NoError(t, err)
	assert.False(t, seen)

	// The key expires with the proof, never later.
	c := newClient(t, srv.addr)
	keys, err := c.Keys(ctx, "t:replay:*").Result()
	require.NoError(t, err)
	require.Len(t, keys, 2)
	for _, k := range keys {
		d, err := c.PTTL(ctx, k).Result()
		require.NoError(t, err)
		assert.LessOrEqual(t, d, time.Minute)
		assert.Greater(t, d, 50*time.Second)
		assert.NotContains(t, k, "proof")
	}
	seen, err = a.CheckAndStore(ctx, "proof-3", time.Now().Add(-time.Second))
	require.NoError(t, err)
	assert.False(t, seen, "an expired proof is not recorded")
}

func TestReplayRedisDown(t *testing.T) {
	for _, policy := range []FailurePolicy{FailClosed, DegradeLocal} {
		t.Run(policy.String(), func(t *testing.T) {
			srv := startRedis(t)
			var ev events
			r, err := newShared(t, srv.addr, &ev).ReplayStore(StoreConfig{Policy: policy})
			require.NoError(t, err)
			ctx := context.Background()
			exp := time.Now().Add(time.Minute)
			_, err = r.CheckAndStore(ctx, "before", exp)
			require.NoError(t, err)

			srv.stop()
			seen, err := r.CheckAndStore(ctx, "during", exp)
			if policy == FailClosed {
				require.ErrorIs(t, err, ErrUnavailable)
				assert.False(t, seen)
			} else {
				require.NoError(t, err)
				assert.False(t, seen)
				seen, err = r.CheckAndStore(ctx, "during", exp)
				require.NoError(t, err)
				assert.True(t, seen, "the local store still refuses a replay")
			}
			evs := ev.list()
			require.NotEmpty(t, evs)
			assert.Equal(t, StoreReplay, evs[0].Store)
			assert.Equal(t, policy.String(), evs[0].Outcome)

			srv.start()
			waitRecovered(t, func() error { _, err := r.CheckAndStore(ctx, "after", exp); return err })
			seen, err = r.CheckAndStore(ctx, "after", exp)
			require.NoError(t, err)
			assert.True(t, seen, "enforced in Redis again")
			evs = ev.list()
			assert.True(t, evs[len(evs)-1].Recovered)
		})
	}
}

func TestTerminatedAcrossReplicas(t *testing.T) {
	srv := startRedis(t)
	a, err := newShared(t, srv.addr, nil).TerminatedSessions(StoreConfig{})
	require.NoError(t, err)
	b, err := newShared(t, srv.addr, nil).TerminatedSessions(StoreConfig{})
	require.NoError(t, err)
	ctx := context.Background()
	now := time.Now()

	dead, err := b.Terminated(ctx, "sess-1", now)
	require.NoError(t, err)
	assert.False(t, dead)
	require.NoError(t, a.Terminate(ctx, "sess-1", now.Add(time.Minute)))
	dead, err = b.Terminated(ctx, "sess-1", now)
	require.NoError(t, err)
	assert.True(t, dead, "ended on a, refused on b")
	dead, err = a.Terminated(ctx, "sess-2", now)
	require.NoError(t, err)
	assert.False(t, dead)
}

func TestTerminatedRedisDown(t *testing.T) {
	for _, policy := range []FailurePolicy{FailClosed, DegradeLocal} {
		t.Run(policy.String(), func(t *testing.T) {
			srv := startRedis(t)
			var ev events
			a, err := newShared(t, srv.addr, &ev).TerminatedSessions(StoreConfig{Policy: policy})
			require.NoError(t, err)
			b, err := newShared(t, srv.addr, nil).TerminatedSessions(StoreConfig{Policy: policy})
			require.NoError(t, err)
			ctx := context.Background()
			now := time.Now()
			require.NoError(t, a.Terminate(ctx, "mine", now.Add(time.Minute)))
			require.NoError(t, b.Terminate(ctx, "theirs", now.Add(time.Minute)))

			srv.stop()
			dead, err := a.Terminated(ctx, "mine", now)
			require.NoError(t, err, "what this replica ended needs no Redis")
			assert.True(t, dead)
			dead, err = a.Terminated(ctx, "other", now)
			if policy == FailClosed {
				require.ErrorIs(t, err, ErrUnavailable)
				require.ErrorIs(t, a.Terminate(ctx, "x", now.Add(time.Minute)), ErrUnavailable)
			} else {
				require.NoError(t, err)
				assert.False(t, dead)
				require.NoError(t, a.Terminate(ctx, "x", now.Add(time.Minute)))
				dead, err = a.Terminated(ctx, "x", now)
				require.NoError(t, err)
				assert.True(t, dead)
			}
			require.NotEmpty(t, ev.list())
			assert.Equal(t, StoreTerminatedSessions, ev.list()[0].Store)

			srv.start() // empty: what was in Redis is gone
			waitRecovered(t, func() error { _, err := a.Terminated(ctx, "other", now); return err })
			require.NoError(t, b.Terminate(ctx, "later", now.Add(time.Minute)))
			dead, err = a.Terminated(ctx, "later", now)
			require.NoError(t, err)
			assert.True(t, dead)
			if policy == DegradeLocal {
				// What a ended while Redis was down reached Redis once it
				// was back: b refuses it too.
				waitRecovered(t, func() error { _, err := b.Terminated(ctx, "x", now); return err })
				dead, err = b.Terminated(ctx, "x", now)
				require.NoError(t, err)
				assert.True(t, dead, "published after the outage")
			}
		})
	}
}

var limits = transport.SessionLimits{PerOwner: 2, Total: 3}

func TestSessionCountsAcrossReplicas(t *testing.T) {
	srv := startRedis(t)
	a, err := newShared(t, srv.addr, nil).SessionCounts(StoreConfig{})
	require.NoError(t, err)
	b, err := newShared(t, srv.addr, nil).SessionCounts(StoreConfig{})
	require.NoError(t, err)
	ctx := context.Background()
	now := time.Now()

	r1, _, err := a.Reserve(ctx, "alice", limits, now)
	require.NoError(t, err)
	require.NoError(t, a.Commit(ctx, r1, "s1", now.Add(15*time.Minute)))
	r2, _, err := b.Reserve(ctx, "alice", limits, now)
	require.NoError(t, err)
	_, retry, err := a.Reserve(ctx, "alice", limits, now)
	require.ErrorIs(t, err, transport.ErrSessionLimit, "the cap per owner holds across replicas")
	assert.InDelta(t, float64(time.Minute), float64(retry), float64(2*time.Second), "the reservation's lease frees first")

	_, _, err = b.Reserve(ctx, "bob", limits, now)
	require.NoError(t, err)
	_, _, err = a.Reserve(ctx, "carol", limits, now)
	require.ErrorIs(t, err, transport.ErrSessionLimit, "the total cap holds across replicas")

	// Released on b (a DELETE served there), the slot frees for a.
	require.NoError(t, b.Release(ctx, "s1"))
	require.NoError(t, b.Release(ctx, r2))
	_, _, err = a.Reserve(ctx, "alice", limits, now)
	require.NoError(t, err)

	// A replica that dies leaks nothing: its slots run out.
	later := now.Add(16 * time.Minute)
	for _, owner := range []string{"dave", "erin", "frank"} {
		_, _, err := b.Reserve(ctx, owner, limits, later)
		require.NoError(t, err, owner)
	}

	// No owner, session ID or reservation in clear.
	for k, vs := range scanKeyspace(t, newClient(t, srv.addr)) {
		for _, s := range append(vs, k) {
			for _, raw := range []string{"alice", "bob", "carol", "dave", "s1"} {
				assert.NotContains(t, s, raw)
			}
		}
	}
}

func TestSessionCountsTouchExtendsLease(t *testing.T) {
	srv := startRedis(t)
	now := time.Now()
	sh := newShared(t, srv.addr, nil)
	a, err := sh.SessionCounts(StoreConfig{})
	require.NoError(t, err)
	b, err := newShared(t, srv.addr, nil).SessionCounts(StoreConfig{})
	require.NoError(t, err)
	ctx := context.Background()
	one := transport.SessionLimits{PerOwner: 1, Total: 10}
	r, _, err := a.Reserve(ctx, "alice", one, now)
	require.NoError(t, err)
	require.NoError(t, a.Commit(ctx, r, "s1", now.Add(10*time.Minute)))
	// Touched on b for another 20 minutes: still held at +15.
	require.NoError(t, b.Touch(ctx, "s1", now.Add(20*time.Minute)))
	_, _, err = a.Reserve(ctx, "alice", one, now.Add(15*time.Minute))
	require.ErrorIs(t, err, transport.ErrSessionLimit)
	_, _, err = a.Reserve(ctx, "alice", one, now.Add(21*time.Minute))
	require.NoError(t, err, "run out at its lease")
	// The keys expire with their last lease.
	c := newClient(t, srv.addr)
	keys, err := c.Keys(ctx, "t:{sc}*").Result()
	require.NoError(t, err)
	require.NotEmpty(t, keys)
	for _, k := range keys {
		d, err := c.PTTL(ctx, k).Result()
		require.NoError(t, err)
		assert.Greater(t, d, time.Duration(0), k)
		assert.LessOrEqual(t, d, 23*time.Minute, k)
	}
}

func TestSessionCountsRedisDown(t *testing.T) {
	for _, policy := range []FailurePolicy{FailClosed, DegradeLocal} {
		t.Run(policy.String(), func(t *testing.T) {
			srv := startRedis(t)
			var ev events
			a, err := newShared(t, srv.addr, &ev).SessionCounts(StoreConfig{Policy: policy})
			require.NoError(t, err)
			ctx := context.Background()
			now := time.Now()
			r, _, err := a.Reserve(ctx, "alice", limits, now)
			require.NoError(t, err)
			require.NoError(t, a.Commit(ctx, r, "s1", now.Add(time.Minute)))

			srv.stop()
			assert.NoError(t, a.Touch(ctx, "s1", now.Add(30*time.Minute)), "a touch never fails a request")
			assert.NoError(t, a.Release(ctx, "s1"))
			r, _, err = a.Reserve(ctx, "alice", limits, now)
			if policy == FailClosed {
				require.ErrorIs(t, err, ErrUnavailable)
			} else {
				require.NoError(t, err)
				assert.True(t, strings.HasPrefix(r, localPrefix))
				require.NoError(t, a.Commit(ctx, r, "s2", now.Add(time.Minute)))
				_, _, err = a.Reserve(ctx, "alice", limits, now)
				require.NoError(t, err)
				_, _, err = a.Reserve(ctx, "alice", limits, now)
				require.ErrorIs(t, err, transport.ErrSessionLimit, "per-replica caps while degraded")
			}
			require.NotEmpty(t, ev.list())
			assert.Equal(t, StoreSessionCounts, ev.list()[0].Store)

			srv.start()
			waitRecovered(t, func() error { _, _, err := a.Reserve(ctx, "bob", limits, now); return err })
			r, _, err = a.Reserve(ctx, "bob", limits, now)
			require.NoError(t, err)
			assert.True(t, strings.HasPrefix(r, remotePrefix), "back on Redis")
		})
	}
}

func TestRateLimiterSharedAndRedisDown(t *testing.T) {
	for _, policy := range []FailurePolicy{FailClosed, DegradeLocal} {
		t.Run(policy.String(), func(t *testing.T) {
			srv := startRedis(t)
			var ev events
			shA, shB := newShared(t, srv.addr, &ev), newShared(t, srv.addr, nil)
			a, err := shA.RateLimiter(StoreConfig{Policy: policy})
			require.NoError(t, err)
			b, err := shB.RateLimiter(StoreConfig{Policy: policy})
			require.NoError(t, err)
			ctx := context.Background()
			two := ratelimit.Limit{Events: 2, Period: time.Hour}
			for _, l := range []*Limiter{a, b} {
				d, err := l.Allow(ctx, "alice", two)
				require.NoError(t, err)
				assert.True(t, d.Allowed)
			}
			d, err := a.Allow(ctx, "alice", two)
			require.NoError(t, err)
			assert.False(t, d.Allowed, "one budget for both replicas")
			for k := range scanKeyspace(t, newClient(t, srv.addr)) {
				assert.NotContains(t, k, "alice")
			}

			srv.stop()
			d, err = a.Allow(ctx, "alice", two)
			if policy == FailClosed {
				require.ErrorIs(t, err, ratelimit.ErrUnavailable)
				assert.False(t, d.Allowed)
			} else {
				require.NoError(t, err)
				assert.True(t, d.Allowed, "a fresh local budget")
				d, err = a.Allow(ctx, "alice", two)
				require.NoError(t, err)
				assert.True(t, d.Allowed)
				d, err = a.Allow(ctx, "alice", two)
				require.NoError(t, err)
				assert.False(t, d.Allowed, "still limited, per replica")
			}
			require.NotEmpty(t, ev.list())
			assert.Equal(t, StoreRateLimits, ev.list()[0].Store)

			srv.start()
			// Both clients drop their dead connections first.
			for _, sh := range []*Shared{shA, shB} {
				waitRecovered(t, func() error { return sh.client.Ping(ctx).Err() })
			}
			time.Sleep(2 * time.Millisecond) // past RetryAfter
			d, err = a.Allow(ctx, "bob", two)
			require.NoError(t, err)
			assert.True(t, d.Allowed)
			assert.True(t, ev.list()[len(ev.list())-1].Recovered)
			d, err = b.Allow(ctx, "bob", two)
			require.NoError(t, err)
			assert.True(t, d.Allowed)
			d, err = b.Allow(ctx, "bob", two)
			require.NoError(t, err)
			assert.False(t, d.Allowed, "shared again")
		})
	}
}
