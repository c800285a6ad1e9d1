package transport

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// ErrSessionStore is wrapped by errors of a session store (terminated
// sessions, session counts) that could not answer. The edge then fails
// closed: 503 for the request at hand, never a silent pass.
var ErrSessionStore = errors.New("transport: session store unavailable")

// SessionConfig configures the state the edge keeps about stateful
// (2025-11-25) sessions. Its zero value keeps one replica's state in memory.
type SessionConfig struct {
	// Terminated remembers ended sessions so that their IDs answer 404
	// afterwards. Nil: a MemoryTerminatedSessions. Share one among replicas
	// that share Config.SessionKey.
	Terminated TerminatedSessions
	// MaxPerPrincipal caps the live sessions of one principal (with its
	// actor and tenant); zero means DefaultMaxSessionsPerPrincipal.
	MaxPerPrincipal int
	// MaxTotal caps all live sessions; zero means DefaultMaxSessions.
	MaxTotal int
	// Counts counts live sessions. Nil: a MemorySessionCounts. Share one
	// among replicas that share sessions.
	Counts SessionCounts
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// DefaultMaxTerminatedSessions caps MemoryTerminatedSessions when its Max
// is zero.
const DefaultMaxTerminatedSessions = 100_000

// TerminatedSessions remembers session IDs that were ended (DELETE, idle
// expiry) so that they answer 404 afterwards, whoever presents them. Keys
// are digests of mcp-go's session ID, never the ID itself. An entry need
// only be kept until its expiry: by then the session has idled out of
// mcp-go as well.
//
// One replica can use MemoryTerminatedSessions; replicas that share
// SessionKey must share this store too (a Redis implementation can back
// it). An error from either method is treated as "store unavailable" and
// the request is refused with 503.
type TerminatedSessions interface {
	// Terminate records key as ended until the given time.
	Terminate(ctx context.Context, key string, until time.Time) error
	// Terminated reports whether key was ended and has not yet expired.
	Terminated(ctx context.Context, key string, now time.Time) (bool, error)
}

// MemoryTerminatedSessions is the in-memory TerminatedSessions of one
// replica. It holds at most Max entries (DefaultMaxTerminatedSessions when
// zero): expired entries are dropped first and, when it is still full, the
// entry closest to expiry goes (entries are recorded with the same TTL, so
// that is the oldest). The zero value is ready to use and safe for
// concurrent use.
type MemoryTerminatedSessions struct {
	// Max caps the number of entries; zero means
	// DefaultMaxTerminatedSessions.
	Max int

	mu    sync.Mutex
	until map[string]time.Time
	order []string // insertion order, oldest first
}

func (m *MemoryTerminatedSessions) max() int {
	if m.Max > 0 {
		return m.Max
	}
	return DefaultMaxTerminatedSessions
}

// Terminate implements TerminatedSessions.
func (m *MemoryTerminatedSessions) Terminate(_ context.Context, key string, until time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.until == nil {
		m.until = make(map[string]time.Time)
	}
	if _, ok := m.until[key]; !ok {
		for len(m.until) >= m.max() && len(m.order) > 0 {
			old := m.order[0]
			m.order = m.order[1:]
			delete(m.until, old)
		}
		m.order = append(m.order, key)
	}
	m.until[key] = until
	return nil
}

// Terminated implements TerminatedSessions.
func (m *MemoryTerminatedSessions) Terminated(_ context.Context, key string, now time.Time) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	// Drop what has expired from the front: a bounded amount per call.
	for i := 0; i < 8 && len(m.order) > 0; i++ {
		k := m.order[0]
		if u, ok := m.until[k]; ok && now.Before(u) {
			break
		}
		delete(m.until, k)
		m.order = m.order[1:]
	}
	u, ok := m.until[key]
	return ok && now.Before(u), nil
}

// Len reports the number of entries held, expired or not.
func (m *MemoryTerminatedSessions) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.until)
}

func storeErr(err error) error {
	if err == nil || errors.Is(err, ErrSessionStore) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrSessionStore, err)
}
