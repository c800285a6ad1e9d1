package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/singleflight"

	"github.com/mcpguard/mcpguard/auth"
)

// StoreRevocation is the Event.Store name of the revocation list.
const StoreRevocation = "revocation"

// Defaults of RevokerConfig.
const (
	// DefaultMaxStaleness is RevokerConfig.MaxStaleness when zero: a
	// revocation made on any replica is in force on every replica at most
	// this long after Revoke returned.
	DefaultMaxStaleness = time.Second
	// MinMaxStaleness is the smallest MaxStaleness accepted.
	MinMaxStaleness = 50 * time.Millisecond
)

// ErrRevocationOverflow is wrapped when this replica's copy of the list
// could not take every entry Redis holds; Check then fails closed.
var ErrRevocationOverflow = errors.New("redisstore: the local revocation copy is full")

// RevokerConfig configures Shared.Revoker. Its zero value is the secure
// default.
type RevokerConfig struct {
	// RevokerConfig sets the token lifetime the entries must cover and the
	// capacity (enforced in Redis, atomically, for all replicas together),
	// as for auth.MemoryRevoker. Now is the clock of both.
	auth.RevokerConfig
	// Policy is what Check does when its copy is older than MaxStaleness
	// and Redis cannot be reached to refresh it. FailClosed (the zero
	// value) refuses every request with 503, since a revocation made on
	// another replica meanwhile would be missed; DegradeLocal keeps
	// answering from the last copy (revocations made meanwhile on other
	// replicas are missed until Redis is back; those made here apply).
	Policy FailurePolicy
	// MaxStaleness bounds how old this replica's copy of the list may be
	// when Check answers from it: the delay after which a revocation made
	// on any replica holds here. Zero means DefaultMaxStaleness (1 s); at
	// least MinMaxStaleness, at most a minute.
	MaxStaleness time.Duration
	// PollInterval is how often the copy is refreshed in the background.
	// Zero means a quarter of MaxStaleness; it must be shorter than
	// MaxStaleness.
	PollInterval time.Duration
}

// Revoker is an auth.Revoker whose list is shared by every replica
// through Redis, with a local copy so that Check does no Redis round trip
// on the warm path.
//
// Redis holds one sorted set of entries, keyed digests only (the
// auth.RevocationSet digest under a key derived from the seal key, so
// neither subject, session nor jti appears), scored by expiry so that
// expired entries are dropped, and a version counter. Revoke adds the entry
// and bumps the version in one Lua script, which also enforces the
// capacity. Each replica polls the version every PollInterval (one GET)
// and reloads the set when it moved; entries are merged into the local
// copy, which forgets an entry only when it expires — so a Redis that lost
// its data (restarted without persistence) is repopulated by the replicas
// from their copies.
//
// A change makes each replica reload the whole list, at most once per
// poll: cheap for revocations made by operators (a few a minute, even a
// burst of thousands costs a few reloads), not meant for a feed of
// thousands a second against a list near its capacity.
//
// Why polling rather than pub/sub: a pub/sub message sent while a replica
// is reconnecting is lost, so pub/sub would need the poll anyway to be
// correct; the poll alone gives a bounded delay, costs one GET per replica
// per interval whatever the traffic, and needs no connection of its own.
//
// The delay bound holds by construction, not by timing: Check answers from
// its copy only while the copy was confirmed against Redis less than
// MaxStaleness ago (the time the version was read, before the entries);
// when the poller is late Check refreshes it itself (one refresh shared by
// concurrent callers), and when Redis cannot answer the Policy applies.
//
// Construct it with Shared.Revoker and Close it to stop the poller. It is
// safe for concurrent use.
type Revoker struct {
	s      *Shared
	health *Health
	set    *auth.RevocationSet
	now    func() time.Time
	policy FailurePolicy
	stale  time.Duration
	poll   time.Duration

	entriesKey, versionKey, epochKey string
	capacity                         int

	flights  singleflight.Group
	version  atomic.Int64 // version of Redis the copy holds; -1 before the first load
	epoch    atomic.Value // string: the Redis data set the copy was loaded from
	synced   atomic.Int64 // unix nanoseconds when the copy was last confirmed
	overflow atomic.Bool

	stop      context.CancelFunc
	done      chan struct{}
	closeOnce sync.Once
}

var _ auth.Revoker = (*Revoker)(nil)

// Revoker returns the shared revocation list and starts its poller; the
// first refresh happens in the background (Check waits for it when a
// request comes first). Close stops it.
func (s *Shared) Revoker(cfg RevokerConfig) (*Revoker, error) {
	if err := cfg.Policy.check("RevokerConfig.Policy"); err != nil {
		return nil, err
	}
	stale := cfg.MaxStaleness
	switch {
	case stale == 0:
		stale = DefaultMaxStaleness
	case stale < MinMaxStaleness || stale > time.Minute:
		return nil, fmt.Errorf("%w: RevokerConfig.MaxStaleness must be between %v and one minute", ErrConfig, MinMaxStaleness)
	}
	poll := cfg.PollInterval
	switch {
	case poll == 0:
		poll = stale / 4
	case poll < 0 || poll >= stale:
		return nil, fmt.Errorf("%w: RevokerConfig.PollInterval must be positive and shorter than MaxStaleness (%v)", ErrConfig, stale)
	}
	if cfg.Now == nil {
		cfg.Now = s.now
	}
	capacity := cfg.Capacity
	switch {
	case capacity == 0:
		capacity = auth.DefaultRevocationCapacity
	case capacity < 0 || capacity > auth.MaxRevocationCapacity/2:
		return nil, fmt.Errorf("%w: RevokerConfig.Capacity must be between 1 and %d", ErrConfig, auth.MaxRevocationCapacity/2)
	}
	// The local copy has room for twice what Redis may hold: entries this
	// replica merged before Redis dropped them (a flush) come on top.
	local := cfg.RevokerConfig
	local.Capacity = 2 * capacity
	key := s.digest("revocation digest key v1")
	set, err := auth.NewRevocationSet(local, key[:])
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	ctx, stop := context.WithCancel(context.Background())
	r := &Revoker{
		s: s, health: s.Health(StoreRevocation, cfg.Policy), set: set, now: cfg.Now,
		policy: cfg.Policy, stale: stale, poll: poll, capacity: capacity,
		entriesKey: s.prefix + "{rv}entries", versionKey: s.prefix + "{rv}version", epochKey: s.prefix + "{rv}epoch",
		stop: stop, done: make(chan struct{}),
	}
	r.version.Store(-1)
	r.epoch.Store("")
	go r.run(ctx)
	return r, nil
}

// Close stops the poller and waits for it. Check keeps answering by its
// policy (with FailClosed: 503 once the copy is stale). Safe to call more
// than once.
func (r *Revoker) Close() error {
	r.closeOnce.Do(func() {
		r.stop()
		<-r.done
	})
	return nil
}

func (r *Revoker) run(ctx context.Context) {
	defer close(r.done)
	t := time.NewTicker(r.poll)
	defer t.Stop()
	for {
		// Through the same flight as the requests' refreshes, so two never
		// run at once.
		_, _, _ = r.flights.Do("refresh", func() (any, error) {
			rctx, cancel := context.WithTimeout(ctx, r.stale)
			defer cancel()
			return nil, r.refresh(rctx)
		})
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// revokeScript removes expired entries, refuses a new member beyond the
// capacity (-1), adds the member (keeping the later expiry of one already
// there), keeps the set's own expiry at its last entry's, and bumps the
// version; it returns the epoch, set to ARGV[5] when there is none. KEYS:
// entries, version, epoch; ARGV: now ms, member, expiry ms, capacity, a
// new epoch.
var revokeScript = redis.NewScript(`
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

// Revoke adds rv to the shared list: in Redis, then in this replica's
// copy. Every replica applies it within MaxStaleness of Revoke returning
// nil. Errors wrap auth.ErrRevocation (a malformed rv),
// auth.ErrRevocationListFull (Redis holds Capacity live entries) or
// ErrUnavailable (Redis could not take it: the revocation then holds on
// this replica only, and should be retried).
func (r *Revoker) Revoke(ctx context.Context, rv auth.Revocation) error {
	now := r.now()
	e, err := r.set.Entry(rv, now)
	if err != nil {
		return err
	}
	e.Before = e.Before.Truncate(time.Millisecond)
	res, err := revokeScript.Run(ctx, r.s.client, []string{r.entriesKey, r.versionKey, r.epochKey},
		now.UnixMilli(), encodeEntry(e), e.Expiry.UnixMilli(), r.capacity, newEpoch()).Result()
	if err != nil {
		// Still refused here: a revocation is never weaker for a failure.
		_ = r.set.Add(e, now)
		return r.health.Fail(ctx, err)
	}
	r.health.OK(ctx)
	switch res := res.(type) {
	case int64:
		return fmt.Errorf("%w: %d live entries in Redis", auth.ErrRevocationListFull, r.capacity)
	case string:
		// A replica that has not refreshed yet learns the data set it
		// wrote to, so that a later loss of it is noticed.
		r.epoch.CompareAndSwap("", res)
	}
	if err := r.set.Add(e, now); err != nil {
		r.overflow.Store(true)
		return fmt.Errorf("%w: %w", ErrRevocationOverflow, err)
	}
	return nil
}

// Check implements auth.Revoker. It answers from this replica's copy
// while the copy is fresh (see Revoker), refreshing it first when it is
// not; when Redis cannot answer, FailClosed returns an error wrapping
// auth.ErrUnavailable (503) and DegradeLocal answers from the copy.
func (r *Revoker) Check(ctx context.Context, p *auth.Principal) error {
	now := r.now()
	// A refusal from the copy always stands (entries only expire); only
	// "not revoked" needs a fresh copy.
	if err := r.set.Check(p, now); err != nil {
		return err
	}
	if now.UnixNano()-r.synced.Load() >= int64(r.stale) {
		if err := r.refreshFor(ctx, now); err != nil && r.policy == FailClosed {
			return fmt.Errorf("%w: %w", auth.ErrUnavailable, err)
		}
		if err := r.set.Check(p, now); err != nil {
			return err
		}
	}
	if r.overflow.Load() {
		return fmt.Errorf("%w: %w", auth.ErrUnavailable, ErrRevocationOverflow)
	}
	return nil
}

// refreshFor refreshes the copy on a request's behalf, unless Redis
// failed a moment ago (Health.Skip); the request waits for the shared
// refresh at most until its context ends.
func (r *Revoker) refreshFor(ctx context.Context, now time.Time) error {
	if r.health.Skip() {
		return r.health.Fail(ctx, nil)
	}
	ch := r.flights.DoChan("refresh", func() (any, error) {
		rctx, cancel := context.WithTimeout(context.Background(), r.stale)
		defer cancel()
		return nil, r.refresh(rctx)
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return res.Err
		}
		if now.UnixNano()-r.synced.Load() >= int64(r.stale) {
			return fmt.Errorf("%w: %s: the copy is still stale", ErrUnavailable, StoreRevocation)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w: %s: %w", ErrUnavailable, StoreRevocation, ctx.Err())
	}
}

// refresh confirms the copy against Redis: it reads the version and the
// epoch (a random marker set once per Redis data set), reloads the entries
// when the version moved, and republishes this replica's entries when the
// epoch changed (Redis lost its data: restarted without persistence, or
// flushed). It runs only inside the "refresh" flight, so never twice at
// once.
func (r *Revoker) refresh(ctx context.Context) error {
	started := r.now()
	vals, err := r.s.client.MGet(ctx, r.versionKey, r.epochKey).Result()
	if err != nil {
		return r.health.Fail(ctx, err)
	}
	var v int64
	if s, ok := vals[0].(string); ok {
		if v, err = strconv.ParseInt(s, 10, 64); err != nil {
			return r.health.Fail(ctx, fmt.Errorf("the version is not a number"))
		}
	}
	epoch, _ := vals[1].(string)
	if epoch == "" {
		if err := r.s.client.SetNX(ctx, r.epochKey, newEpoch(), 0).Err(); err != nil {
			return r.health.Fail(ctx, err)
		}
		if epoch, err = r.s.client.Get(ctx, r.epochKey).Result(); err != nil {
			return r.health.Fail(ctx, err)
		}
	}
	if known := r.epoch.Load().(string); known != "" && epoch != known {
		if err := r.republish(ctx, started); err != nil {
			return r.health.Fail(ctx, err)
		}
		r.epoch.Store(epoch)
		r.version.Store(-1) // reload with the entries of the other replicas
		return r.refresh(ctx)
	}
	r.epoch.Store(epoch)
	if v != r.version.Load() {
		if err := r.load(ctx, started); err != nil {
			return r.health.Fail(ctx, err)
		}
		r.version.Store(v)
	}
	r.health.OK(ctx)
	storeMax(&r.synced, started.UnixNano())
	return nil
}

// load merges every live entry of Redis into the copy.
func (r *Revoker) load(ctx context.Context, now time.Time) error {
	zs, err := r.s.client.ZRangeByScoreWithScores(ctx, r.entriesKey, &redis.ZRangeBy{
		Min: strconv.FormatInt(now.UnixMilli()+1, 10), Max: "+inf", Count: int64(r.capacity),
	}).Result()
	if err != nil {
		return err
	}
	r.set.Sweep(now)
	full := false
	for _, z := range zs {
		m, ok := z.Member.(string)
		if !ok {
			continue
		}
		e, ok := decodeEntry(m, time.UnixMilli(int64(z.Score)))
		if !ok {
			continue // not ours: ignored, never trusted to un-revoke anything
		}
		if err := r.set.Add(e, now); err != nil {
			full = true
		}
	}
	r.overflow.Store(full)
	return nil
}

// republish writes this replica's live entries back to Redis after it lost
// them, in batches, and bumps the version so that every replica reloads.
func (r *Revoker) republish(ctx context.Context, now time.Time) error {
	entries := r.set.Entries(now)
	const batch = 1000
	for i := 0; i < len(entries); i += batch {
		zs := make([]redis.Z, 0, batch)
		for _, e := range entries[i:min(i+batch, len(entries))] {
			zs = append(zs, redis.Z{Score: float64(e.Expiry.UnixMilli()), Member: encodeEntry(e)})
		}
		if err := r.s.client.ZAddArgs(ctx, r.entriesKey, redis.ZAddArgs{GT: true, Members: zs}).Err(); err != nil {
			return err
		}
	}
	return r.s.client.Incr(ctx, r.versionKey).Err()
}

func newEpoch() string {
	var rnd [16]byte
	_, _ = rand.Read(rnd[:])
	return base64.RawURLEncoding.EncodeToString(rnd[:])
}

// Len returns the number of entries in this replica's copy.
func (r *Revoker) Len() int { return r.set.Len() }

func storeMax(a *atomic.Int64, v int64) {
	for {
		old := a.Load()
		if v <= old || a.CompareAndSwap(old, v) {
			return
		}
	}
}

// maxMemberBytes bounds a member decodeEntry looks at.
const maxMemberBytes = 64

// encodeEntry is the Redis member of e: its kind, the base64url digest
// and, for a subject, "." and the iat bound in Unix milliseconds.
func encodeEntry(e auth.RevocationEntry) string {
	var b strings.Builder
	b.Grow(maxMemberBytes)
	b.WriteByte(byte(e.Kind))
	b.WriteString(base64.RawURLEncoding.EncodeToString(e.Digest[:]))
	if e.Kind == auth.RevokeSubject {
		b.WriteByte('.')
		b.WriteString(strconv.FormatInt(e.Before.UnixMilli(), 10))
	}
	return b.String()
}

// decodeEntry parses a member written by encodeEntry; anything else is
// refused.
func decodeEntry(m string, expiry time.Time) (auth.RevocationEntry, bool) {
	const digestLen = 43 // base64url of 32 bytes, unpadded
	if len(m) < 1+digestLen || len(m) > maxMemberBytes {
		return auth.RevocationEntry{}, false
	}
	e := auth.RevocationEntry{Kind: auth.RevocationKind(m[0]), Expiry: expiry}
	n, err := base64.RawURLEncoding.Strict().Decode(e.Digest[:], []byte(m[1:1+digestLen]))
	if err != nil || n != len(e.Digest) {
		return auth.RevocationEntry{}, false
	}
	rest := m[1+digestLen:]
	switch e.Kind {
	case auth.RevokeTokenID, auth.RevokeSessionID:
		return e, rest == ""
	case auth.RevokeSubject:
		ms, ok := strings.CutPrefix(rest, ".")
		if !ok || ms == "" || len(ms) > 15 || ms[0] == '+' || ms[0] == '-' {
			return auth.RevocationEntry{}, false
		}
		v, err := strconv.ParseInt(ms, 10, 64)
		if err != nil {
			return auth.RevocationEntry{}, false
		}
		e.Before = time.UnixMilli(v)
		return e, true
	}
	return auth.RevocationEntry{}, false
}
