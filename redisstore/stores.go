package redisstore

import (
	"context"
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
	// zero means the in-memory store's own default.
	LocalMax int
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
// validator answers 503); with DegradeLocal this replica's own
// auth.MemoryReplayStore answers while Redis fails, so a proof could then
// be replayed once to another replica. Construct it with
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
	d, ok := ttl(r.s.now(), expiry)
	if !ok {
		// Already expired: the validator refuses such a proof anyway;
		// nothing to record.
		return false, nil
	}
	if r.health.Skip() {
		return r.degrade(ctx, id, expiry, nil)
	}
	set, err := r.s.client.SetNX(ctx, r.s.key("replay", []byte(id)), "1", d).Result()
	if err != nil {
		return r.degrade(ctx, id, expiry, err)
	}
	r.health.OK(ctx)
	return !set, nil
}

func (r *ReplayStore) degrade(ctx context.Context, id string, expiry time.Time, cause error) (bool, error) {
	err := r.health.Fail(ctx, cause)
	if r.local == nil {
		return false, err
	}
	return r.local.CheckAndStore(ctx, id, expiry)
}

// TerminatedSessions is a transport.TerminatedSessions in Redis: a
// terminated session's key is set with an expiry of its idle time, so a
// session ended on one replica answers 404 on every replica. What this
// replica terminated itself is also kept in a bounded local store, checked
// first: a terminated session needs no round trip to be refused again.
//
// With FailClosed (the default) a Redis failure answers 503 to requests
// carrying a session ID (and a DELETE is refused, so it can be retried);
// with DegradeLocal the local store answers alone while Redis fails, so a
// session ended on another replica meanwhile could still serve here; what
// this replica ended meanwhile is written to Redis (at most 10,000
// entries) by the first call that reaches it again.
// Construct it with Shared.TerminatedSessions; it is safe for concurrent
// use.
type TerminatedSessions struct {
	s      *Shared
	health *health
	local  *transport.MemoryTerminatedSessions

	// pending holds what Terminate could not write to Redis (DegradeLocal):
	// it is written on the next call that reaches Redis, so the other
	// replicas learn of it once Redis is back. At most maxPending entries;
	// the oldest go first (they also run out first).
	mu      sync.Mutex
	pending []pendingTermination
}

type pendingTermination struct {
	key   string
	until time.Time
}

// maxPending caps the terminations kept for Redis while it is down.
const maxPending = 10_000

var _ transport.TerminatedSessions = (*TerminatedSessions)(nil)

// TerminatedSessions returns the shared store of terminated sessions.
func (s *Shared) TerminatedSessions(cfg StoreConfig) (*TerminatedSessions, error) {
	if err := cfg.check("TerminatedSessions"); err != nil {
		return nil, err
	}
	return &TerminatedSessions{
		s:      s,
		health: s.health(StoreTerminatedSessions, cfg.Policy),
		local:  &transport.MemoryTerminatedSessions{Max: cfg.LocalMax},
	}, nil
}

// Terminate implements transport.TerminatedSessions.
func (t *TerminatedSessions) Terminate(ctx context.Context, key string, until time.Time) error {
	_ = t.local.Terminate(ctx, key, until)
	d, ok := ttl(t.s.now(), until)
	if !ok {
		return nil
	}
	if t.health.Skip() {
		return t.degradeTerminate(ctx, key, until, nil)
	}
	if err := t.s.client.Set(ctx, t.s.key("term", []byte(key)), "1", d).Err(); err != nil {
		return t.degradeTerminate(ctx, key, until, err)
	}
	t.ok(ctx)
	return nil
}

func (t *TerminatedSessions) degradeTerminate(ctx context.Context, key string, until time.Time, cause error) error {
	err := t.degrade(ctx, cause)
	if err == nil { // DegradeLocal: tell Redis later
		t.mu.Lock()
		if len(t.pending) >= maxPending {
			t.pending = t.pending[1:]
		}
		t.pending = append(t.pending, pendingTermination{key, until})
		t.mu.Unlock()
	}
	return err
}

// ok records a success and writes what is pending, in one pipeline.
func (t *TerminatedSessions) ok(ctx context.Context) {
	t.health.OK(ctx)
	t.mu.Lock()
	pending := t.pending
	t.pending = nil
	t.mu.Unlock()
	if len(pending) == 0 {
		return
	}
	now := t.s.now()
	_, err := t.s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, e := range pending {
			if d, ok := ttl(now, e.until); ok {
				p.Set(ctx, t.s.key("term", []byte(e.key)), "1", d)
			}
		}
		return nil
	})
	if err != nil {
		t.mu.Lock()
		t.pending = append(pending, t.pending...)
		if n := len(t.pending) - maxPending; n > 0 {
			t.pending = t.pending[n:]
		}
		t.mu.Unlock()
		_ = t.health.Fail(ctx, err)
	}
}

// Terminated implements transport.TerminatedSessions.
func (t *TerminatedSessions) Terminated(ctx context.Context, key string, now time.Time) (bool, error) {
	if dead, _ := t.local.Terminated(ctx, key, now); dead {
		return true, nil
	}
	if t.health.Skip() {
		return false, t.degrade(ctx, nil)
	}
	n, err := t.s.client.Exists(ctx, t.s.key("term", []byte(key))).Result()
	if err != nil {
		return false, t.degrade(ctx, err)
	}
	t.ok(ctx)
	return n > 0, nil
}

// degrade reports the failure and returns nil when the local store is to
// answer alone (DegradeLocal), the error otherwise.
func (t *TerminatedSessions) degrade(ctx context.Context, cause error) error {
	err := t.health.Fail(ctx, cause)
	if t.health.Policy() == DegradeLocal {
		return nil
	}
	return err
}

// isRedisNil reports a missing key, which is an answer, not a failure.
func isRedisNil(err error) bool { return errors.Is(err, redis.Nil) }
