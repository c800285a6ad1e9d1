package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mcpguard/mcpguard/auth"
)

// StoreRevocation is the store name (see Reporter) of the revocation list.
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
	set *auth.RevocationSet
	c   *syncCopy
}

var _ auth.Revoker = (*Revoker)(nil)

// Revoker returns the shared revocation list and starts its poller; the
// first refresh happens in the background (Check waits for it when a
// request comes first). Close stops it.
func (s *Shared) Revoker(cfg RevokerConfig) (*Revoker, error) {
	if err := cfg.Policy.check("RevokerConfig.Policy"); err != nil {
		return nil, err
	}
	stale, poll, err := syncTiming("RevokerConfig", cfg.MaxStaleness, cfg.PollInterval)
	if err != nil {
		return nil, err
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
	r := &Revoker{set: set}
	r.c = newSyncCopy(s, StoreRevocation, "rv", cfg.Policy, stale, poll, cfg.Now, capacity,
		fmt.Errorf("%w: %w", auth.ErrUnavailable, ErrRevocationOverflow), revocationEntries{set})
	return r, nil
}

// Close stops the poller and waits for it. Check keeps answering by its
// policy (with FailClosed: 503 once the copy is stale). Safe to call more
// than once.
func (r *Revoker) Close() error {
	r.c.close()
	return nil
}

// Revoke adds rv to the shared list: in Redis, then in this replica's
// copy. Every replica applies it within MaxStaleness of Revoke returning
// nil. Errors wrap auth.ErrRevocation (a malformed rv),
// auth.ErrRevocationListFull (Redis holds Capacity live entries) or
// ErrUnavailable (Redis could not take it: the revocation then holds on
// this replica, which writes it to Redis once Redis answers again; it
// should be retried all the same).
func (r *Revoker) Revoke(ctx context.Context, rv auth.Revocation) error {
	now := r.c.now()
	e, err := r.set.Entry(rv, now)
	if err != nil {
		return err
	}
	// Redis holds milliseconds: round the bound and the expiry up, never
	// down, so that the entry is never weaker than the memory revoker's (a
	// token issued in the millisecond before the bound was served).
	if e.Kind == auth.RevokeSubject {
		e.Before = ceilMilli(e.Before)
		e.Expiry = e.Before.Add(r.set.Horizon())
	}
	e.Expiry = ceilMilli(e.Expiry)
	full, err := r.c.add(ctx, encodeEntry(e), e.Expiry)
	if err != nil {
		// Still refused here: a revocation is never weaker for a failure.
		_ = r.set.Add(e, now)
		return err
	}
	if full {
		return fmt.Errorf("%w: %d live entries in Redis", auth.ErrRevocationListFull, r.c.capacity)
	}
	if err := r.set.Add(e, now); err != nil {
		r.c.overflow.Store(true)
		return fmt.Errorf("%w: %w", ErrRevocationOverflow, err)
	}
	return nil
}

// Check implements auth.Revoker. It answers from this replica's copy
// while the copy is fresh (see Revoker), refreshing it first when it is
// not; when Redis cannot answer, FailClosed returns an error wrapping
// auth.ErrUnavailable (503) and DegradeLocal answers from the copy.
func (r *Revoker) Check(ctx context.Context, p *auth.Principal) error {
	now := r.c.now()
	// A refusal from the copy always stands (entries only expire); only
	// "not revoked" needs a fresh copy.
	if err := r.set.Check(p, now); err != nil {
		return err
	}
	refreshed, err := r.c.confirm(ctx, now)
	if refreshed {
		if err := r.set.Check(p, now); err != nil {
			return err
		}
	}
	if err != nil {
		if errors.Is(err, auth.ErrUnavailable) {
			return err
		}
		return fmt.Errorf("%w: %w", auth.ErrUnavailable, err)
	}
	return nil
}

// ceilMilli rounds t up to the millisecond.
func ceilMilli(t time.Time) time.Time {
	if u := t.Truncate(time.Millisecond); u.Before(t) {
		return u.Add(time.Millisecond)
	}
	return t
}

// revocationEntries is the Revoker's copy as a syncCopy sees it.
type revocationEntries struct{ set *auth.RevocationSet }

func (v revocationEntries) merge(m string, expiry, now time.Time) (bool, error) {
	e, ok := decodeEntry(m, expiry)
	if !ok {
		return false, nil // not ours: ignored, never trusted to un-revoke anything
	}
	return true, v.set.Add(e, now)
}

func (v revocationEntries) sweep(now time.Time) { v.set.Sweep(now) }

func (v revocationEntries) members(now time.Time) []redis.Z {
	entries := v.set.Entries(now)
	zs := make([]redis.Z, 0, len(entries))
	for _, e := range entries {
		zs = append(zs, redis.Z{Score: float64(e.Expiry.UnixMilli()), Member: encodeEntry(e)})
	}
	return zs
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
		// Only what encodeEntry writes: decimal digits, no sign, no
		// leading zero (two spellings of one time would be two members).
		if !ok || ms == "" || len(ms) > 15 || ms[0] == '+' || ms[0] == '-' || (len(ms) > 1 && ms[0] == '0') {
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
