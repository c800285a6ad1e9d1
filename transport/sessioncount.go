package transport

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"sync"
	"time"
)

// Default live-session caps, used when SessionConfig leaves them zero.
// mcp-go allocates about 14 KiB per session up front, so the total default
// bounds that at roughly 140 MiB.
const (
	DefaultMaxSessionsPerPrincipal = 64
	DefaultMaxSessions             = 10_000
)

// reservationTTL bounds how long a slot reserved for an initialize may stay
// neither committed nor released (a handler that never returned).
const reservationTTL = time.Minute

// ErrSessionLimit is returned by SessionCounts.Reserve when the caller, or
// the server as a whole, already holds as many live sessions as allowed.
var ErrSessionLimit = errors.New("transport: too many live sessions")

// SessionLimits are the caps SessionCounts.Reserve enforces.
type SessionLimits struct {
	// PerOwner is the most live sessions one owner (principal, actor and
	// tenant) may hold.
	PerOwner int
	// Total is the most live sessions overall.
	Total int
}

// SessionCounts counts live stateful sessions so that initialize can be
// refused before mcp-go allocates one. A slot is reserved before the
// initialize reaches mcp-go, committed under the session's key once mcp-go
// issued a session ID (or released when it did not), kept alive by each
// request of the session, and freed by DELETE or when it idles out (its
// until time passes). Owner and session keys are digests, never a claim or
// a session ID in clear.
//
// MemorySessionCounts serves one replica; replicas that share sessions
// need a shared implementation. An error other than ErrSessionLimit fails
// closed (503).
type SessionCounts interface {
	// Reserve takes a slot for owner, or fails with an error wrapping
	// ErrSessionLimit and says after how long a slot is expected to free.
	Reserve(ctx context.Context, owner string, limits SessionLimits, now time.Time) (reservation string, retryAfter time.Duration, err error)
	// Commit renames the reservation to the session key, alive until the
	// given time.
	Commit(ctx context.Context, reservation, session string, until time.Time) error
	// Touch extends a live session's slot; an unknown key is not an error.
	Touch(ctx context.Context, session string, until time.Time) error
	// Release frees a reservation or a session's slot; an unknown key is
	// not an error.
	Release(ctx context.Context, key string) error
}

// MemorySessionCounts is the in-memory SessionCounts of one replica. Its
// size is bounded by the Total limit it enforces. The zero value is ready
// to use and safe for concurrent use.
type MemorySessionCounts struct {
	mu        sync.Mutex
	slots     map[string]sessionSlot
	owners    map[string]map[string]struct{}
	lastSweep time.Time
}

type sessionSlot struct {
	owner string
	until time.Time
}

func (m *MemorySessionCounts) init() {
	if m.slots == nil {
		m.slots = make(map[string]sessionSlot)
		m.owners = make(map[string]map[string]struct{})
	}
}

func (m *MemorySessionCounts) drop(key string) {
	s, ok := m.slots[key]
	if !ok {
		return
	}
	delete(m.slots, key)
	if set := m.owners[s.owner]; set != nil {
		delete(set, key)
		if len(set) == 0 {
			delete(m.owners, s.owner)
		}
	}
}

func (m *MemorySessionCounts) add(key, owner string, until time.Time) {
	m.slots[key] = sessionSlot{owner: owner, until: until}
	set := m.owners[owner]
	if set == nil {
		set = make(map[string]struct{})
		m.owners[owner] = set
	}
	set[key] = struct{}{}
}

// Reserve implements SessionCounts.
func (m *MemorySessionCounts) Reserve(_ context.Context, owner string, limits SessionLimits, now time.Time) (string, time.Duration, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.init()
	if set := m.owners[owner]; len(set) >= limits.PerOwner {
		// At most PerOwner slots to look at: drop the expired ones.
		var soonest time.Time
		for k := range set {
			s := m.slots[k]
			if !now.Before(s.until) {
				m.drop(k)
			} else if soonest.IsZero() || s.until.Before(soonest) {
				soonest = s.until
			}
		}
		if len(m.owners[owner]) >= limits.PerOwner {
			return "", soonest.Sub(now), ErrSessionLimit
		}
	}
	if len(m.slots) >= limits.Total {
		// A full sweep at most once a second keeps a flood of refused
		// initialize requests cheap.
		if now.Sub(m.lastSweep) >= time.Second || now.Before(m.lastSweep) {
			m.lastSweep = now
			for k, s := range m.slots {
				if !now.Before(s.until) {
					m.drop(k)
				}
			}
		}
		if len(m.slots) >= limits.Total {
			return "", time.Second, ErrSessionLimit
		}
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	r := "r:" + base64.RawURLEncoding.EncodeToString(b[:])
	m.add(r, owner, now.Add(reservationTTL))
	return r, 0, nil
}

// Commit implements SessionCounts.
func (m *MemorySessionCounts) Commit(_ context.Context, reservation, session string, until time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.init()
	s, ok := m.slots[reservation]
	if !ok {
		return nil // expired meanwhile: the session goes uncounted rather than refused
	}
	m.drop(reservation)
	m.add(session, s.owner, until)
	return nil
}

// Touch implements SessionCounts.
func (m *MemorySessionCounts) Touch(_ context.Context, session string, until time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s, ok := m.slots[session]; ok && until.After(s.until) {
		s.until = until
		m.slots[session] = s
	}
	return nil
}

// Release implements SessionCounts.
func (m *MemorySessionCounts) Release(_ context.Context, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.drop(key)
	return nil
}

// Len reports the number of slots held, expired or not.
func (m *MemorySessionCounts) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.slots)
}
