package redisstore

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/transport"
)

// StoreConfig configures one store built on Shared. Its zero value is the
// store's secure default: FailClosed, and the in-memory defaults for the
// local store DegradeLocal falls back on.
type StoreConfig struct {
	// Policy is what the store does when Redis cannot answer. The zero
	// value is FailClosed.
	Policy FailurePolicy
	// LocalMax caps the entries of the local store used by DegradeLocal;
	// zero means the in-memory store's own default. For
	// TerminatedSessions it is the capacity of the shared list (see
	// there).
	LocalMax int
	// MaxStaleness and PollInterval apply to TerminatedSessions only, as
	// RevokerConfig's do to the Revoker: a session ended on any replica is
	// refused on every replica at most MaxStaleness (zero: 1 s) after
	// Terminate returned; the copy is refreshed every PollInterval (zero:
	// a quarter of MaxStaleness).
	MaxStaleness time.Duration
	PollInterval time.Duration
	// Immediate applies to TerminatedSessions only: a session the copy does
	// not know as ended is looked up in Redis on every call (one ZSCORE),
	// so a session ended on any replica is refused on every other at once,
	// not within MaxStaleness, at one round trip per session request. When
	// Redis cannot answer, the policy applies as without it.
	Immediate bool
}

func (c StoreConfig) check(name string) error {
	if err := c.Policy.check("StoreConfig.Policy of " + name); err != nil {
		return err
	}
	if c.LocalMax < 0 {
		return fmt.Errorf("%w: StoreConfig.LocalMax of %s must not be negative", ErrConfig, name)
	}
	return nil
}

// Store names, as a Reporter hears them.
const (
	StoreTerminatedSessions = "terminated_sessions"
	StoreSessionCounts      = "session_counts"
	StoreReplay             = "dpop_replay"
	StoreTokens             = "obo_tokens"
	StoreIntrospection      = "introspection"
)

// ReplayStore is an auth.ReplayStore in Redis: each proof identifier is
// recorded with SET NX PX, one atomic round trip, until the proof's expiry,
// so a proof accepted by one replica is refused by every other. Keys are
// keyed hashes of the identifier; the value is a single byte.
//
// With FailClosed (the default) a Redis failure refuses the proof (the
// validator answers 503); with DegradeLocal every proof is also recorded in
// this replica's own auth.MemoryReplayStore, which answers while Redis
// fails, so a proof could then be replayed once to another replica, never
// to this one. Construct it with
// Shared.ReplayStore; it is safe for concurrent use.
type ReplayStore struct {
	s      *Shared
	health *health
	local  *auth.MemoryReplayStore // DegradeLocal only
}

var _ auth.ReplayStore = (*ReplayStore)(nil)

// ReplayStore returns the shared DPoP replay store.
func (s *Shared) ReplayStore(cfg StoreConfig) (*ReplayStore, error) {
	if err := cfg.check("ReplayStore"); err != nil {
		return nil, err
	}
	r := &ReplayStore{s: s, health: s.health(StoreReplay, cfg.Policy)}
	if cfg.Policy == DegradeLocal {
		r.local = auth.NewMemoryReplayStore(cfg.LocalMax)
	}
	return r, nil
}

// CheckAndStore implements auth.ReplayStore.
func (r *ReplayStore) CheckAndStore(ctx context.Context, id string, expiry time.Time) (bool, error) {
	d, ok := replayTTL(r.s.now(), expiry)
	if !ok {
		// Already expired: the validator refuses such a proof anyway;
		// nothing to record.
		return false, nil
	}
	// DegradeLocal: every proof reaches this replica's own store too, so
	// that once Redis fails it still refuses what it accepted before.
	var localSeen bool
	var localErr error
	if r.local != nil {
		localSeen, localErr = r.local.CheckAndStore(ctx, id, expiry)
	}
	if r.health.Skip() {
		return r.degrade(ctx, nil, localSeen, localErr)
	}
	set, err := r.s.client.SetNX(ctx, r.s.key("replay", []byte(id)), "1", d).Result()
	if err != nil {
		return r.degrade(ctx, err, localSeen, localErr)
	}
	r.health.OK(ctx)
	// Redis decides; a full local store does not refuse what Redis takes.
	return !set || localSeen, nil
}

// replayTTL is how long a proof valid until expiry is recorded: the time
// left rounded up to the millisecond Redis counts in, unlike a cache's
// lifetime (ttl), so that a record may outlive the proof's window by under
// 1 ms and never ends before it. A proof with under 1 ms left was once not
// recorded at all, and its replays in that millisecond were accepted. ok is
// false for a proof already expired.
func replayTTL(now, expiry time.Time) (d time.Duration, ok bool) {
	if !expiry.After(now) {
		return 0, false
	}
	return (expiry.Sub(now) + time.Millisecond - 1).Truncate(time.Millisecond), true
}

// degrade answers while Redis fails: with the local store's answer under
// DegradeLocal, with the failure otherwise.
func (r *ReplayStore) degrade(ctx context.Context, cause error, localSeen bool, localErr error) (bool, error) {
	err := r.health.Fail(ctx, cause)
	if r.local == nil {
		return false, err
	}
	return localSeen, localErr
}

// TerminatedSessions is a transport.TerminatedSessions shared by every
// replica through Redis, with a local copy so that Terminated does no
// Redis round trip on the warm path: a session ended on one replica
// answers 404 on every replica within StoreConfig.MaxStaleness (1 s by
// default) of Terminate returning.
//
// It works as the Revoker does (see there): Redis holds one sorted set of
// terminated sessions — keyed digests of the session keys, scored by the
// expiry Terminate was given (the session's idle time, so no entry
// outlives its session), the set itself expiring with its last entry — and
// a version counter. Terminate adds the entry and bumps the version in one
// Lua script, which also enforces the capacity, and adds it to the local
// copy. Each replica polls the version every PollInterval (one MGET) and
// reloads the set when it moved. Terminated answers "terminated" from the
// copy at once; it answers "not terminated" only from a copy confirmed
// against Redis less than MaxStaleness ago, refreshing it first otherwise.
//
// Capacity: StoreConfig.LocalMax live entries in Redis for all replicas
// together (transport.DefaultMaxTerminatedSessions when zero); a Terminate
// beyond it is refused with ErrTerminatedSessionsFull (the edge answers
// 503, and the session is still ended on this replica). The local copy
// holds twice as many; while it could not take every entry of Redis,
// Terminated fails closed for sessions it does not know as terminated.
//
// With FailClosed (the default), once the copy is older than MaxStaleness
// and Redis cannot refresh it, requests carrying a session ID this replica
// does not know as terminated get 503, and a Terminate that Redis could
// not take is refused (so a DELETE can be retried); with DegradeLocal the
// last copy answers while Redis fails, so a session ended on another
// replica meanwhile could still serve here. Either way what this replica
// ended while Redis was down stays refused here and is written to Redis by
// the first refresh that reaches it, and when Redis lost its data the
// replicas put their entries back.
//
// Construct it with Shared.TerminatedSessions and Close it to stop the
// poller. It is safe for concurrent use.
type TerminatedSessions struct {
	s         *Shared
	c         *syncCopy
	local     *terminatedCopy
	immediate bool
}

var _ transport.TerminatedSessions = (*TerminatedSessions)(nil)

// ErrTerminatedSessionsFull is wrapped (with ErrUnavailable) when Redis
// holds StoreConfig.LocalMax live terminated sessions and refuses
// another, or when this replica's copy could not take every entry.
var ErrTerminatedSessionsFull = errors.New("redisstore: the terminated sessions are at capacity")

// TerminatedSessions returns the shared store of terminated sessions and
// starts its poller; Close stops it.
func (s *Shared) TerminatedSessions(cfg StoreConfig) (*TerminatedSessions, error) {
	if err := cfg.check("TerminatedSessions"); err != nil {
		return nil, err
	}
	stale, poll, err := syncTiming("StoreConfig", cfg.MaxStaleness, cfg.PollInterval)
	if err != nil {
		return nil, err
	}
	capacity := cfg.LocalMax
	if capacity == 0 {
		capacity = transport.DefaultMaxTerminatedSessions
	}
	t := &TerminatedSessions{s: s, local: &terminatedCopy{max: 2 * capacity, until: make(map[[sha256.Size]byte]int64)}, immediate: cfg.Immediate}
	t.c = newSyncCopy(s, StoreTerminatedSessions, "ts", cfg.Policy, stale, poll, s.now, capacity,
		fmt.Errorf("%w: %s: %w", ErrUnavailable, StoreTerminatedSessions, ErrTerminatedSessionsFull), t.local)
	return t, nil
}

// Close stops the poller and waits for it. Terminated keeps answering by
// its policy (with FailClosed: 503 once the copy is stale). Safe to call
// more than once.
func (t *TerminatedSessions) Close() error {
	t.c.close()
	return nil
}

// Terminate implements transport.TerminatedSessions: in Redis, then in
// this replica's copy (which keeps it even when Redis failed).
func (t *TerminatedSessions) Terminate(ctx context.Context, key string, until time.Time) error {
	until = until.Truncate(time.Millisecond)
	now := t.c.now()
	if !until.After(now) {
		return nil
	}
	d := t.s.digestString("term", key)
	if t.c.health.Skip() {
		t.c.dirty.Store(true)
		return t.keep(d, until, now, t.degrade(ctx, nil))
	}
	full, err := t.c.add(ctx, encodeTerminated(d), until)
	if err != nil {
		return t.keep(d, until, now, t.degrade(ctx, err))
	}
	if full {
		return t.keep(d, until, now, fmt.Errorf("%w: %s: %w: %d live entries in Redis", ErrUnavailable, StoreTerminatedSessions, ErrTerminatedSessionsFull, t.c.capacity))
	}
	return t.keep(d, until, now, nil)
}

// keep adds the entry to the copy and returns err, or the copy's
// overflow.
func (t *TerminatedSessions) keep(d [sha256.Size]byte, until, now time.Time, err error) error {
	if t.local.add(d, until.UnixMilli(), now) != nil {
		t.c.overflow.Store(true)
		if err == nil {
			err = t.c.full
		}
	}
	return err
}

// degrade reports the failure (already reported when cause is non-nil:
// syncCopy.add did) and returns nil when the copy is to answer alone
// (DegradeLocal), the error otherwise.
func (t *TerminatedSessions) degrade(ctx context.Context, failed error) error {
	if failed == nil {
		failed = t.c.health.Fail(ctx, nil)
	}
	if t.c.policy == DegradeLocal {
		return nil
	}
	return failed
}

// Terminated implements transport.TerminatedSessions. It answers from
// this replica's copy while the copy is fresh, refreshing it first when it
// is not (see TerminatedSessions); when Redis cannot answer, FailClosed
// returns an error wrapping ErrUnavailable (503) and DegradeLocal answers
// from the copy.
func (t *TerminatedSessions) Terminated(ctx context.Context, key string, now time.Time) (bool, error) {
	d := t.s.digestString("term", key)
	ms := now.UnixMilli()
	if t.local.has(d, ms) {
		return true, nil // a termination always stands until it expires
	}
	if t.immediate {
		return t.lookup(ctx, d, ms)
	}
	refreshed, err := t.c.confirm(ctx, t.c.now())
	if refreshed && t.local.has(d, ms) {
		return true, nil
	}
	return false, err
}

// lookup asks Redis whether the session of digest d is ended (Immediate):
// its entry's score is the expiry in Unix milliseconds. A hit joins the
// copy; a failure is answered by the policy (DegradeLocal: the copy, which
// does not know it as ended).
func (t *TerminatedSessions) lookup(ctx context.Context, d [sha256.Size]byte, nowMs int64) (bool, error) {
	if t.c.health.Skip() {
		return false, t.degrade(ctx, nil)
	}
	until, err := t.s.client.ZScore(ctx, t.c.entriesKey, encodeTerminated(d)).Result()
	if errors.Is(err, redis.Nil) {
		t.c.health.OK(ctx)
		return false, nil
	}
	if err != nil {
		return false, t.degrade(ctx, t.c.health.Fail(ctx, err))
	}
	t.c.health.OK(ctx)
	if int64(until) <= nowMs {
		return false, nil
	}
	_ = t.local.add(d, int64(until), t.c.now())
	return true, nil
}

// Len returns the number of entries in this replica's copy, expired or
// not.
func (t *TerminatedSessions) Len() int {
	t.local.mu.RLock()
	defer t.local.mu.RUnlock()
	return len(t.local.until)
}

// terminatedCopy is a replica's copy of the terminated sessions: digest
// to expiry in Unix milliseconds, at most max entries (expired ones are
// swept when it is full; beyond that, add fails).
type terminatedCopy struct {
	mu    sync.RWMutex
	max   int
	until map[[sha256.Size]byte]int64
}

var errCopyFull = errors.New("the local copy is full")

func (c *terminatedCopy) has(d [sha256.Size]byte, nowMs int64) bool {
	c.mu.RLock()
	u, ok := c.until[d]
	c.mu.RUnlock()
	return ok && nowMs < u
}

func (c *terminatedCopy) add(d [sha256.Size]byte, untilMs int64, now time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if u, ok := c.until[d]; ok {
		c.until[d] = max(u, untilMs)
		return nil
	}
	if len(c.until) >= c.max {
		c.sweepLocked(now.UnixMilli())
		if len(c.until) >= c.max {
			return errCopyFull
		}
	}
	c.until[d] = untilMs
	return nil
}

func (c *terminatedCopy) sweepLocked(nowMs int64) {
	for d, u := range c.until {
		if u <= nowMs {
			delete(c.until, d)
		}
	}
}

func (c *terminatedCopy) merge(m string, expiry, now time.Time) (bool, error) {
	d, ok := decodeTerminated(m)
	if !ok {
		return false, nil // not ours: ignored
	}
	return true, c.add(d, expiry.UnixMilli(), now)
}

func (c *terminatedCopy) sweep(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sweepLocked(now.UnixMilli())
}

func (c *terminatedCopy) members(now time.Time) []redis.Z {
	nowMs := now.UnixMilli()
	c.mu.RLock()
	defer c.mu.RUnlock()
	zs := make([]redis.Z, 0, len(c.until))
	for d, u := range c.until {
		if u > nowMs {
			zs = append(zs, redis.Z{Score: float64(u), Member: encodeTerminated(d)})
		}
	}
	return zs
}

// encodeTerminated is the Redis member of a terminated session: the
// base64url keyed digest of its key.
func encodeTerminated(d [sha256.Size]byte) string {
	return base64.RawURLEncoding.EncodeToString(d[:])
}

// decodeTerminated parses a member written by encodeTerminated; anything
// else is refused.
func decodeTerminated(m string) (d [sha256.Size]byte, ok bool) {
	if len(m) != base64.RawURLEncoding.EncodedLen(sha256.Size) {
		return d, false
	}
	n, err := base64.RawURLEncoding.Strict().Decode(d[:], []byte(m))
	return d, err == nil && n == sha256.Size
}

// isRedisNil reports a missing key, which is an answer, not a failure.
func isRedisNil(err error) bool { return errors.Is(err, redis.Nil) }
