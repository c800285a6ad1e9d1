package redisstore

import (
	"context"
	"errors"
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
				// A proof accepted through Redis before the outage: every
				// write reaches the local store too, so this replica still
				// refuses it (before, the local store heard only of proofs
				// seen during the outage; found in review).
				seen, err = r.CheckAndStore(ctx, "before", exp)
				require.NoError(t, err)
				assert.True(t, seen, "a proof accepted before the outage is refused by the replica that accepted it")
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

// A proof with under a millisecond of its window left is still recorded,
// and the record lasts at least as long as the window: before, the
// lifetime was rounded down to 0 ms, nothing was stored and every replay in
// that millisecond was accepted (found in review).
func TestReplayTTL(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		left time.Duration
		want time.Duration
		ok   bool
	}{
		{600 * time.Microsecond, time.Millisecond, true},
		{time.Nanosecond, time.Millisecond, true},
		{time.Millisecond, time.Millisecond, true},
		{1200 * time.Microsecond, 2 * time.Millisecond, true},
		{time.Minute, time.Minute, true},
		{0, 0, false},
		{-time.Second, 0, false},
	} {
		d, ok := replayTTL(now, now.Add(tc.left))
		assert.Equal(t, tc.ok, ok, "%v left", tc.left)
		assert.Equal(t, tc.want, d, "%v left", tc.left)
		if ok {
			assert.GreaterOrEqual(t, d, tc.left, "the record never ends before the window")
		}
	}
	// Through Redis: a proof with 0.6 ms left is recorded, for 1 ms.
	srv := startRedis(t)
	exp := time.Now().Add(time.Minute)
	clock := exp.Add(-600 * time.Microsecond)
	sh := newShared(t, srv.addr, nil)
	sh.now = func() time.Time { return clock }
	r, err := sh.ReplayStore(StoreConfig{})
	require.NoError(t, err)
	seen, err := r.CheckAndStore(context.Background(), "last-ms", exp)
	require.NoError(t, err)
	assert.False(t, seen)
	seen, err = r.CheckAndStore(context.Background(), "expired", clock)
	require.NoError(t, err)
	assert.False(t, seen, "an expired proof is not recorded (the validator refuses it)")
}

func newTerminated(t testing.TB, sh *Shared, cfg StoreConfig) *TerminatedSessions {
	t.Helper()
	return closing[*TerminatedSessions](t)(sh.TerminatedSessions(cfg))
}

// awaitTerminated asks ts about key until it answers terminated, and
// proves the bound: a Terminated asked MaxStaleness after Terminate
// returned must answer true, whatever the scheduling (the store's
// guarantee, not a timing). It returns the delay observed.
func awaitTerminated(t *testing.T, ts *TerminatedSessions, key string, ended time.Time) time.Duration {
	t.Helper()
	d, ok := awaitBound(ended, ts.c.stale, func() bool {
		dead, err := ts.Terminated(context.Background(), key, time.Now())
		return err == nil && dead
	})
	require.True(t, ok, "not refused %v after the termination", ts.c.stale)
	return d
}

// TestTerminatedAcrossReplicas: two replicas share one redis-server; a
// session either ends is refused by the other within MaxStaleness (one
// second by default), measured; at once by the one that ended it; other
// sessions serve.
func TestTerminatedAcrossReplicas(t *testing.T) {
	srv := startRedis(t)
	a := newTerminated(t, newShared(t, srv.addr, nil), StoreConfig{})
	b := newTerminated(t, newShared(t, srv.addr, nil), StoreConfig{})
	require.Equal(t, DefaultMaxStaleness, b.c.stale)
	ctx := context.Background()

	for _, k := range []string{"sess-1", "sess-2", "sess-3"} {
		for _, ts := range []*TerminatedSessions{a, b} {
			dead, err := ts.Terminated(ctx, k, time.Now())
			require.NoError(t, err)
			assert.False(t, dead)
		}
	}
	var worst time.Duration
	for _, tc := range []struct {
		name     string
		key      string
		from, to *TerminatedSessions
	}{{"a→b", "sess-1", a, b}, {"b→a", "sess-2", b, a}} {
		require.NoError(t, tc.from.Terminate(ctx, tc.key, time.Now().Add(time.Minute)))
		done := time.Now()
		dead, err := tc.from.Terminated(ctx, tc.key, time.Now())
		require.NoError(t, err)
		assert.True(t, dead, "%s: at once on the replica that ended it", tc.name)
		d := awaitTerminated(t, tc.to, tc.key, done)
		t.Logf("%s: refused on the other replica after %v (bound %v)", tc.name, d, tc.to.c.stale)
		worst = max(worst, d)
	}
	t.Logf("worst cross-replica delay observed: %v", worst)
	for _, ts := range []*TerminatedSessions{a, b} {
		dead, err := ts.Terminated(ctx, "sess-3", time.Now())
		require.NoError(t, err)
		assert.False(t, dead, "an unrelated session still serves")
		// Expiry: the entry lasts until the time Terminate was given.
		dead, err = ts.Terminated(ctx, "sess-1", time.Now().Add(time.Minute))
		require.NoError(t, err)
		assert.False(t, dead, "expired with the session")
	}
}

// TestTerminatedExpiryBounded: Redis keeps an entry no longer than the
// expiry Terminate was given (the session's idle time), and the set itself
// expires with its last entry.
func TestTerminatedExpiryBounded(t *testing.T) {
	srv := startRedis(t)
	sh := newShared(t, srv.addr, nil)
	a := newTerminated(t, sh, StoreConfig{})
	ctx := context.Background()
	before := time.Now()
	until := before.Add(90 * time.Second)
	require.NoError(t, a.Terminate(ctx, "sess-1", until))
	require.NoError(t, a.Terminate(ctx, "sess-2", until.Add(-30*time.Second)))
	c := newClient(t, srv.addr)
	zs, err := c.ZRangeWithScores(ctx, a.c.entriesKey, 0, -1).Result()
	require.NoError(t, err)
	require.Len(t, zs, 2)
	for _, z := range zs {
		assert.LessOrEqual(t, int64(z.Score), until.UnixMilli())
		_, ok := decodeTerminated(z.Member.(string))
		assert.True(t, ok)
		assert.NotContains(t, z.Member.(string), "sess-")
	}
	pttl, err := c.PTTL(ctx, a.c.entriesKey).Result()
	require.NoError(t, err)
	assert.Greater(t, pttl, time.Duration(0))
	// Redis reads its clock once per event-loop turn, so its "now" may lag
	// ours; it is no earlier than before, taken ahead of Terminate.
	assert.LessOrEqual(t, pttl, until.Sub(before)+time.Millisecond)
	require.NoError(t, a.Terminate(ctx, "sess-0", time.Now().Add(-time.Second)), "already expired: nothing to record")
	assert.Equal(t, int64(2), c.ZCard(ctx, a.c.entriesKey).Val())
}

// TestTerminatedWrittenBackExpires: the entries a replica writes back to a
// Redis that lost them expire with the last of them, as Terminate's do.
func TestTerminatedWrittenBackExpires(t *testing.T) {
	srv := startRedis(t)
	a := newTerminated(t, newShared(t, srv.addr, nil), StoreConfig{MaxStaleness: 200 * time.Millisecond})
	ctx := context.Background()
	before := time.Now()
	until := before.Add(time.Minute)
	require.NoError(t, a.Terminate(ctx, "k", until))
	srv.stop()
	srv.start() // empty
	fresh := newTerminated(t, newShared(t, srv.addr, nil), StoreConfig{})
	waitRecovered(t, func() error {
		if dead, err := fresh.Terminated(ctx, "k", time.Now()); err != nil || !dead {
			return errors.New("not written back yet")
		}
		return nil
	})
	pttl, err := newClient(t, srv.addr).PTTL(ctx, a.c.entriesKey).Result()
	require.NoError(t, err)
	assert.Greater(t, pttl, time.Duration(0), "the set expires")
	// Redis reads its clock once per event-loop turn, so its "now" may lag
	// ours; it is no earlier than before, taken ahead of Terminate.
	assert.LessOrEqual(t, pttl, until.Sub(before)+time.Millisecond)
}

// TestTerminatedCapacity: the capacity holds for all replicas together in
// Redis; a Terminate beyond it fails closed (and still ends the session
// here); a copy that cannot hold Redis's entries fails closed.
func TestTerminatedCapacity(t *testing.T) {
	srv := startRedis(t)
	a := newTerminated(t, newShared(t, srv.addr, nil), StoreConfig{LocalMax: 2})
	b := newTerminated(t, newShared(t, srv.addr, nil), StoreConfig{LocalMax: 2})
	ctx := context.Background()
	until := time.Now().Add(time.Minute)
	require.NoError(t, a.Terminate(ctx, "x", until))
	require.NoError(t, b.Terminate(ctx, "y", until))
	require.NoError(t, b.Terminate(ctx, "x", until), "the same session again takes no room")
	err := a.Terminate(ctx, "z", until)
	require.ErrorIs(t, err, ErrTerminatedSessionsFull, "the cap holds for all replicas together")
	require.ErrorIs(t, err, ErrUnavailable)
	dead, err := a.Terminated(ctx, "z", time.Now())
	require.NoError(t, err)
	assert.True(t, dead, "refused Redis-side, still ended here")
	awaitTerminated(t, a, "y", time.Now())

	// A replica configured with a smaller capacity (1: a copy of 2) than
	// Redis holds (4, written by one with a larger capacity) cannot take
	// every entry: it refuses to answer "not terminated" rather than miss
	// one, and still refuses what it holds.
	big := newTerminated(t, newShared(t, srv.addr, nil), StoreConfig{LocalMax: 10})
	require.NoError(t, big.Terminate(ctx, "w1", until))
	require.NoError(t, big.Terminate(ctx, "w2", until))
	small := newTerminated(t, newShared(t, srv.addr, nil), StoreConfig{LocalMax: 1})
	waitRecovered(t, func() error {
		if _, err = small.Terminated(ctx, "v", time.Now()); err == nil {
			return errors.New("answered from a copy that could not take every entry")
		}
		return nil
	})
	require.ErrorIs(t, err, ErrTerminatedSessionsFull)
	require.ErrorIs(t, err, ErrUnavailable)
	assert.Equal(t, 2, small.Len())
}

// TestTerminatedRedisDown kills Redis under both policies: what this
// replica ended stays refused; once the copy is older than MaxStaleness,
// FailClosed answers with an error (the edge: 503) and refuses Terminate,
// DegradeLocal answers from the copy; once Redis is back (empty, as after
// a restart without persistence) service resumes with the same store, and
// the entries of the replicas go back to Redis.
func TestTerminatedRedisDown(t *testing.T) {
	for _, policy := range []FailurePolicy{FailClosed, DegradeLocal} {
		t.Run(policy.String(), func(t *testing.T) {
			srv := startRedis(t)
			var ev events
			cfg := StoreConfig{Policy: policy, MaxStaleness: 200 * time.Millisecond}
			a := newTerminated(t, newShared(t, srv.addr, &ev), cfg)
			b := newTerminated(t, newShared(t, srv.addr, nil), cfg)
			ctx := context.Background()
			now := time.Now()
			require.NoError(t, a.Terminate(ctx, "mine", now.Add(time.Minute)))
			require.NoError(t, b.Terminate(ctx, "theirs", now.Add(time.Minute)))
			awaitTerminated(t, a, "theirs", time.Now())

			srv.stop()
			dead, err := a.Terminated(ctx, "mine", now)
			require.NoError(t, err, "what this replica ended needs no Redis")
			assert.True(t, dead)
			err = a.Terminate(ctx, "x", now.Add(time.Minute))
			if policy == FailClosed {
				require.ErrorIs(t, err, ErrUnavailable, "a DELETE is refused, to be retried")
			} else {
				require.NoError(t, err)
			}
			dead, err = a.Terminated(ctx, "x", now)
			require.NoError(t, err)
			assert.True(t, dead, "what this replica ended during the outage holds here")
			time.Sleep(cfg.MaxStaleness + 50*time.Millisecond) // the copy is now stale
			dead, err = a.Terminated(ctx, "other", now)
			if policy == FailClosed {
				require.ErrorIs(t, err, ErrUnavailable)
			} else {
				require.NoError(t, err)
				assert.False(t, dead)
			}
			dead, err = a.Terminated(ctx, "theirs", now)
			require.NoError(t, err, "what the copy refuses stays refused")
			assert.True(t, dead)
			require.NotEmpty(t, ev.list())
			assert.Equal(t, StoreTerminatedSessions, ev.list()[0].Store)
			assert.False(t, ev.list()[0].Recovered)

			srv.start() // empty: what was in Redis is gone
			waitRecovered(t, func() error {
				if evs := ev.list(); !evs[len(evs)-1].Recovered {
					return errors.New("no recovery reported yet")
				}
				_, err := a.Terminated(ctx, "other", time.Now())
				return err
			})
			require.NoError(t, b.Terminate(ctx, "later", time.Now().Add(time.Minute)))
			awaitTerminated(t, a, "later", time.Now())
			// The replicas put their entries back, including what a ended
			// during the outage: a replica started now refuses them.
			fresh := newTerminated(t, newShared(t, srv.addr, nil), cfg)
			for _, k := range []string{"mine", "theirs", "x", "later"} {
				awaitTerminated(t, fresh, k, time.Now())
			}
			dead, err = fresh.Terminated(ctx, "other", time.Now())
			require.NoError(t, err)
			assert.False(t, dead)
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
	// The names are long enough that no digest or sealed value in the
	// keyspace holds one by chance (a two-letter one turns up in random
	// base64 about once in 70).
	const sid = "mcp-session-of-alice-0001"

	r1, _, err := a.Reserve(ctx, "owner-alice", limits, now)
	require.NoError(t, err)
	require.NoError(t, a.Commit(ctx, r1, sid, now.Add(15*time.Minute)))
	r2, _, err := b.Reserve(ctx, "owner-alice", limits, now)
	require.NoError(t, err)
	_, retry, err := a.Reserve(ctx, "owner-alice", limits, now)
	require.ErrorIs(t, err, transport.ErrSessionLimit, "the cap per owner holds across replicas")
	assert.InDelta(t, float64(time.Minute), float64(retry), float64(2*time.Second), "the reservation's lease frees first")

	_, _, err = b.Reserve(ctx, "owner-bob", limits, now)
	require.NoError(t, err)
	_, _, err = a.Reserve(ctx, "owner-carol", limits, now)
	require.ErrorIs(t, err, transport.ErrSessionLimit, "the total cap holds across replicas")

	// Released on b (a DELETE served there), the slot frees for a.
	require.NoError(t, b.Release(ctx, sid))
	require.NoError(t, b.Release(ctx, r2))
	_, _, err = a.Reserve(ctx, "owner-alice", limits, now)
	require.NoError(t, err)

	// A replica that dies leaks nothing: its slots run out.
	later := now.Add(16 * time.Minute)
	for _, owner := range []string{"owner-dave", "owner-erin", "owner-frank"} {
		_, _, err := b.Reserve(ctx, owner, limits, later)
		require.NoError(t, err, owner)
	}

	// No owner, session ID or reservation in clear.
	for k, vs := range scanKeyspace(t, newClient(t, srv.addr)) {
		for _, s := range append(vs, k) {
			for _, raw := range []string{"owner-alice", "owner-bob", "owner-carol", "owner-dave", sid} {
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

// With Immediate, a session ended on one replica is refused on the other
// at once (no poll to wait for), an unknown one is served, and with Redis
// gone the policy answers: FailClosed refuses, what a replica knows as
// ended stays ended.
func TestTerminatedImmediate(t *testing.T) {
	srv := startRedis(t)
	cfg := StoreConfig{Immediate: true, MaxStaleness: time.Minute}
	a := newTerminated(t, newShared(t, srv.addr, nil), cfg)
	b := newTerminated(t, newShared(t, srv.addr, nil), cfg)
	ctx := context.Background()

	dead, err := b.Terminated(ctx, "sess-1", time.Now())
	require.NoError(t, err)
	require.False(t, dead)
	require.NoError(t, a.Terminate(ctx, "sess-1", time.Now().Add(time.Minute)))
	dead, err = b.Terminated(ctx, "sess-1", time.Now())
	require.NoError(t, err)
	assert.True(t, dead, "refused on the other replica at once, though its copy may be a minute old")
	dead, err = b.Terminated(ctx, "sess-2", time.Now())
	require.NoError(t, err)
	assert.False(t, dead, "an unrelated session still serves")
	dead, err = b.Terminated(ctx, "sess-1", time.Now().Add(2*time.Minute))
	require.NoError(t, err)
	assert.False(t, dead, "expired with the session")

	srv.stop()
	_, err = b.Terminated(ctx, "sess-2", time.Now())
	require.ErrorIs(t, err, ErrUnavailable, "FailClosed: a session Redis cannot vouch for is refused")
	dead, err = b.Terminated(ctx, "sess-1", time.Now())
	require.NoError(t, err)
	assert.True(t, dead, "what this replica learnt was ended stays ended without Redis")
}
