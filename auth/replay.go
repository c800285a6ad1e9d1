package auth

import (
	"container/heap"
	"context"
	"errors"
	"sync"
	"time"
)

// ReplayStore remembers the identifiers of accepted DPoP proofs so that no
// proof is accepted twice (RFC 9449 §11.1).
//
// CheckAndStore records id until expiry and reports whether it was already
// recorded and not yet expired; recording and checking are one atomic step.
// An error (a full store, an unreachable backend) makes the proof refused
// with 503: a replay store fails closed. Implementations must be safe for
// concurrent use and should keep ids hashed or opaque, never a credential.
type ReplayStore interface {
	CheckAndStore(ctx context.Context, id string, expiry time.Time) (seen bool, err error)
}

// ErrReplayStoreFull: the store holds its capacity of unexpired entries.
var ErrReplayStoreFull = errors.New("auth: DPoP replay store is full")

// MemoryReplayStore is a bounded in-memory ReplayStore for one process.
// When it is full it first drops expired entries; when all entries are
// still live it refuses (ErrReplayStoreFull) rather than forget one, since
// a forgotten id could be replayed.
//
// Construct it with NewMemoryReplayStore; it is safe for concurrent use.
type MemoryReplayStore struct {
	mu   sync.Mutex
	max  int
	now  func() time.Time
	ids  map[string]time.Time
	heap expiryHeap
}

// NewMemoryReplayStore returns a store of at most capacity live entries
// (DefaultReplayCapacity when capacity <= 0).
func NewMemoryReplayStore(capacity int) *MemoryReplayStore {
	if capacity <= 0 {
		capacity = DefaultReplayCapacity
	}
	return &MemoryReplayStore{max: capacity, now: time.Now, ids: make(map[string]time.Time)}
}

// CheckAndStore implements ReplayStore.
func (s *MemoryReplayStore) CheckAndStore(_ context.Context, id string, expiry time.Time) (bool, error) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if exp, ok := s.ids[id]; ok {
		if now.Before(exp) {
			return true, nil
		}
		delete(s.ids, id)
	}
	if len(s.ids) >= s.max {
		s.evictExpired(now)
		if len(s.ids) >= s.max {
			return false, ErrReplayStoreFull
		}
	}
	s.ids[id] = expiry
	heap.Push(&s.heap, expiryEntry{id: id, at: expiry})
	// The heap may hold stale entries for ids re-added or dropped above;
	// keep it within twice the capacity.
	if len(s.heap) > 2*s.max {
		s.rebuild()
	}
	return false, nil
}

// Len returns the number of ids held, expired ones included until evicted.
func (s *MemoryReplayStore) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.ids)
}

func (s *MemoryReplayStore) evictExpired(now time.Time) {
	for len(s.heap) > 0 && !now.Before(s.heap[0].at) {
		e := heap.Pop(&s.heap).(expiryEntry)
		if at, ok := s.ids[e.id]; ok && at.Equal(e.at) {
			delete(s.ids, e.id)
		}
	}
}

func (s *MemoryReplayStore) rebuild() {
	s.heap = s.heap[:0]
	for id, at := range s.ids {
		s.heap = append(s.heap, expiryEntry{id: id, at: at})
	}
	heap.Init(&s.heap)
}

type expiryEntry struct {
	id string
	at time.Time
}

type expiryHeap []expiryEntry

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h expiryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *expiryHeap) Push(x any)        { *h = append(*h, x.(expiryEntry)) }
func (h *expiryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}
