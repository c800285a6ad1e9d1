package redisstore

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/singleflight"
)

// copyEntries is the local copy a syncCopy keeps in step with Redis: the
// Revoker's revocation set, or the terminated sessions.
type copyEntries interface {
	// merge adds a member read from Redis; ok is false when the member is
	// not one this store writes (it is then ignored, never trusted), err
	// non-nil when the copy is full.
	merge(member string, expiry, now time.Time) (ok bool, err error)
	// sweep drops the entries expired at now.
	sweep(now time.Time)
	// members lists the live entries, as Redis holds them.
	members(now time.Time) []redis.Z
}

// syncTiming checks and defaults a staleness bound and a poll interval;
// what names the configuration fields in errors.
func syncTiming(what string, stale, poll time.Duration) (time.Duration, time.Duration, error) {
	switch {
	case stale == 0:
		stale = DefaultMaxStaleness
	case stale < MinMaxStaleness || stale > time.Minute:
		return 0, 0, fmt.Errorf("%w: %s.MaxStaleness must be between %v and one minute", ErrConfig, what, MinMaxStaleness)
	}
	switch {
	case poll == 0:
		poll = stale / 4
	case poll < 0 || poll >= stale:
		return 0, 0, fmt.Errorf("%w: %s.PollInterval must be positive and shorter than MaxStaleness (%v)", ErrConfig, what, stale)
	}
	return stale, poll, nil
}

// syncCopy is the mechanism the Revoker and TerminatedSessions share: a
// set of entries in Redis (a sorted set scored by expiry in Unix
// milliseconds, a version counter and an epoch marker, in one hash slot),
// and a local copy that answers on the warm path. A poller confirms the
// copy every poll interval (one MGET) and reloads the entries when the
// version moved; a copy confirmed less than stale ago may answer "absent",
// otherwise confirm refreshes it first (one refresh shared by concurrent
// callers) and the failure policy applies. The copy forgets an entry only
// when it expires, so a Redis that lost its data (a new epoch) is given
// back the replicas' entries; so are the entries this replica could not
// write while Redis was down (dirty).
type syncCopy struct {
	s        *Shared
	health   *health
	name     string
	entries  copyEntries
	now      func() time.Time
	policy   FailurePolicy
	stale    time.Duration
	poll     time.Duration
	capacity int   // live entries Redis may hold, for all replicas together
	full     error // what confirm fails with while the copy could not take every entry

	entriesKey, versionKey, epochKey string

	flights  singleflight.Group
	version  atomic.Int64 // version of Redis the copy holds; -1 before the first load
	epoch    atomic.Value // string: the Redis data set the copy was loaded from
	synced   atomic.Int64 // unix nanoseconds when the copy was last confirmed
	overflow atomic.Bool
	dirty    atomic.Bool // the copy holds entries Redis may lack

	stop      context.CancelFunc
	done      chan struct{}
	closeOnce sync.Once
}

// newSyncCopy returns the mechanism with its poller started; tag names the
// Redis keys ({tag} is their hash slot).
func newSyncCopy(s *Shared, name, tag string, policy FailurePolicy, stale, poll time.Duration,
	now func() time.Time, capacity int, full error, entries copyEntries) *syncCopy {
	ctx, stop := context.WithCancel(context.Background())
	c := &syncCopy{
		s: s, health: s.health(name, policy), name: name, entries: entries, now: now,
		policy: policy, stale: stale, poll: poll, capacity: capacity, full: full,
		entriesKey: s.prefix + "{" + tag + "}entries", versionKey: s.prefix + "{" + tag + "}version",
		epochKey: s.prefix + "{" + tag + "}epoch",
		stop:     stop, done: make(chan struct{}),
	}
	c.version.Store(-1)
	c.epoch.Store("")
	go c.run(ctx)
	return c
}

// close stops the poller and waits for it; safe to call more than once.
func (c *syncCopy) close() {
	c.closeOnce.Do(func() {
		c.stop()
		<-c.done
	})
}

func (c *syncCopy) run(ctx context.Context) {
	defer close(c.done)
	t := time.NewTicker(c.poll)
	defer t.Stop()
	for {
		// Through the same flight as the requests' refreshes, so two never
		// run at once.
		_, _, _ = c.flights.Do("refresh", func() (any, error) {
			rctx, cancel := context.WithTimeout(ctx, c.stale)
			defer cancel()
			return nil, c.refresh(rctx)
		})
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// addScript removes expired entries, refuses a new member beyond the
// capacity (-1), adds the member (keeping the later expiry of one already
// there), keeps the set's own expiry at its last entry's, and bumps the
// version; it returns the epoch, set to ARGV[5] when there is none. KEYS:
// entries, version, epoch; ARGV: now ms, member, expiry ms, capacity, a
// new epoch.
var addScript = redis.NewScript(`
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if not redis.call('ZSCORE', KEYS[1], ARGV[2]) and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then
  return -1
end
redis.call('ZADD', KEYS[1], 'GT', ARGV[3], ARGV[2])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[1], last[2])
redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[3], ARGV[5], 'NX')
return redis.call('GET', KEYS[3])
`)

// add writes member to Redis, one round trip. full reports that Redis
// holds capacity live entries and refused it; err (wrapping
// ErrUnavailable) that Redis could not be reached, and the entry is then
// written back by the first refresh that reaches it. The caller adds the
// entry to its copy either way.
func (c *syncCopy) add(ctx context.Context, member string, expiry time.Time) (full bool, err error) {
	now := c.now()
	res, err := addScript.Run(ctx, c.s.client, []string{c.entriesKey, c.versionKey, c.epochKey},
		now.UnixMilli(), member, expiry.UnixMilli(), c.capacity, newEpoch()).Result()
	if err != nil {
		c.dirty.Store(true)
		return false, c.health.Fail(ctx, err)
	}
	c.health.OK(ctx)
	switch res := res.(type) {
	case int64:
		return true, nil
	case string:
		// A replica that has not refreshed yet learns the data set it
		// wrote to, so that a later loss of it is noticed.
		c.epoch.CompareAndSwap("", res)
	}
	return false, nil
}

// confirm makes sure the copy may answer "absent" at now: fresh, or
// refreshed first (refreshed then reports that the caller should look
// again). err is non-nil when it may not: Redis could not refresh it and
// the policy is FailClosed, or the copy is full.
func (c *syncCopy) confirm(ctx context.Context, now time.Time) (refreshed bool, err error) {
	if now.UnixNano()-c.synced.Load() >= int64(c.stale) {
		refreshed = true
		if err := c.refreshFor(ctx, now); err != nil && c.policy == FailClosed {
			return true, err
		}
	}
	if c.overflow.Load() {
		return refreshed, c.full
	}
	return refreshed, nil
}

// refreshFor refreshes the copy on a request's behalf, unless Redis
// failed a moment ago (health.Skip); the request waits for the shared
// refresh at most until its context ends.
func (c *syncCopy) refreshFor(ctx context.Context, now time.Time) error {
	if c.health.Skip() {
		return c.health.Fail(ctx, nil)
	}
	ch := c.flights.DoChan("refresh", func() (any, error) {
		rctx, cancel := context.WithTimeout(context.Background(), c.stale)
		defer cancel()
		return nil, c.refresh(rctx)
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return res.Err
		}
		if now.UnixNano()-c.synced.Load() >= int64(c.stale) {
			return fmt.Errorf("%w: %s: the copy is still stale", ErrUnavailable, c.name)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w: %s: %w", ErrUnavailable, c.name, ctx.Err())
	}
}

// refresh confirms the copy against Redis: it writes back what this
// replica could not write (dirty), reads the version and the epoch (a
// random marker set once per Redis data set), reloads the entries when the
// version moved, and republishes this replica's entries when the epoch
// changed (Redis lost its data: restarted without persistence, or
// flushed). It runs only inside the "refresh" flight, so never twice at
// once.
func (c *syncCopy) refresh(ctx context.Context) error {
	started := c.now()
	if c.dirty.Swap(false) {
		if err := c.republish(ctx, started); err != nil {
			c.dirty.Store(true)
			return c.health.Fail(ctx, err)
		}
	}
	vals, err := c.s.client.MGet(ctx, c.versionKey, c.epochKey).Result()
	if err != nil {
		return c.health.Fail(ctx, err)
	}
	var v int64
	if s, ok := vals[0].(string); ok {
		if v, err = strconv.ParseInt(s, 10, 64); err != nil {
			return c.health.Fail(ctx, fmt.Errorf("the version is not a number"))
		}
	}
	epoch, _ := vals[1].(string)
	if epoch == "" {
		if err := c.s.client.SetNX(ctx, c.epochKey, newEpoch(), 0).Err(); err != nil {
			return c.health.Fail(ctx, err)
		}
		if epoch, err = c.s.client.Get(ctx, c.epochKey).Result(); err != nil {
			return c.health.Fail(ctx, err)
		}
	}
	if known := c.epoch.Load().(string); known != "" && epoch != known {
		if err := c.republish(ctx, started); err != nil {
			return c.health.Fail(ctx, err)
		}
		c.epoch.Store(epoch)
		c.version.Store(-1) // reload with the entries of the other replicas
		return c.refresh(ctx)
	}
	c.epoch.Store(epoch)
	if v != c.version.Load() {
		if err := c.load(ctx, started); err != nil {
			return c.health.Fail(ctx, err)
		}
		c.version.Store(v)
	}
	c.health.OK(ctx)
	storeMax(&c.synced, started.UnixNano())
	return nil
}

// load merges every live entry of Redis into the copy.
func (c *syncCopy) load(ctx context.Context, now time.Time) error {
	zs, err := c.s.client.ZRangeByScoreWithScores(ctx, c.entriesKey, &redis.ZRangeBy{
		// One more than the copy holds (twice the capacity), so that a
		// copy too small for what Redis holds notices it.
		Min: strconv.FormatInt(now.UnixMilli()+1, 10), Max: "+inf", Count: int64(2*c.capacity) + 1,
	}).Result()
	if err != nil {
		return err
	}
	c.entries.sweep(now)
	full := false
	for _, z := range zs {
		m, ok := z.Member.(string)
		if !ok {
			continue
		}
		if _, err := c.entries.merge(m, time.UnixMilli(int64(z.Score)), now); err != nil {
			full = true
		}
	}
	c.overflow.Store(full)
	return nil
}

// republish writes this replica's live entries to Redis, in batches, and
// bumps the version so that every replica reloads.
func (c *syncCopy) republish(ctx context.Context, now time.Time) error {
	zs := c.entries.members(now)
	const batch = 1000
	for i := 0; i < len(zs); i += batch {
		if err := c.s.client.ZAddArgs(ctx, c.entriesKey, redis.ZAddArgs{GT: true, Members: zs[i:min(i+batch, len(zs))]}).Err(); err != nil {
			return err
		}
	}
	return tidyScript.Run(ctx, c.s.client, []string{c.entriesKey, c.versionKey}, now.UnixMilli()).Err()
}

// tidyScript ends a republish: it removes expired entries, sets the set's
// own expiry to its last entry's (as addScript does, so nothing written
// back outlives its entries) and bumps the version. KEYS: entries,
// version; ARGV: now ms.
var tidyScript = redis.NewScript(`
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if last[2] then
  redis.call('PEXPIREAT', KEYS[1], last[2])
end
return redis.call('INCR', KEYS[2])
`)
