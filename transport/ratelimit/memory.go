package ratelimit

import (
	"context"
	"crypto/sha256"
	"fmt"
	"hash/maphash"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/mcpguard/mcpguard/internal/lru"
)

// DefaultMaxKeys is the key cap of a Memory limiter whose MaxKeys is zero.
const DefaultMaxKeys = 65536

// MaxKeyBytes is the longest key a Memory limiter stores as is; longer keys
// are replaced by their SHA-256 digest, so every stored key costs at most
// this many bytes whatever callers pass.
const MaxKeyBytes = 64

const (
	maxShards      = 64
	minShardLength = 64
)

// MemoryConfig configures a Memory limiter. The zero value is usable: at
// most DefaultMaxKeys keys, wall-clock time.
type MemoryConfig struct {
	// MaxKeys is a hard cap on the number of keys held. When it is
	// reached, the least recently used key (within its shard, see Memory)
	// is forgotten; it starts again with a full burst if it returns.
	// Zero means DefaultMaxKeys. Memory grows with MaxKeys, not with the
	// number of distinct keys seen: at most 384 bytes per key (about 222
	// measured; see the package documentation).
	MaxKeys int
	// Now returns the current time for Allow. Nil means time.Now. AllowAt
	// takes the time as an argument instead.
	Now func() time.Time
}

// Memory is an in-process, keyed Limiter built on golang.org/x/time/rate
// token buckets, with a hard cap on the number of keys and least recently
// used eviction.
//
// Keys are spread over up to 64 shards by a hash with a per-limiter random
// seed (so no one can aim keys at one shard), each holding at most
// MaxKeys/shards keys with its own LRU list: eviction is LRU within a shard,
// an approximation of global LRU, and hot keys in different shards do not
// contend. An evicted key loses its state and starts again with a full
// burst, so a flood of distinct keys can make the limiter more lenient (a
// spent budget is forgotten), never stricter; size MaxKeys above the number
// of keys active within a Period. Each replica has its own budget;
// use Redis to share one.
//
// Memory never fails for a valid limit. It is safe for concurrent use.
// Construct it with NewMemory.
type Memory struct {
	now    func() time.Time
	seed   maphash.Seed
	mask   uint64
	shards []memShard
}

type memShard struct {
	mu      sync.Mutex
	max     int
	entries map[string]*memEntry
	order   lru.List[memEntry, *memEntry] // most recently used first
	_       [88]byte                      // pad to 128 bytes: shards do not share cache lines
}

type memEntry struct {
	lru.Links[memEntry]
	lim   rate.Limiter
	key   string
	limit Limit
}

// NewMemory returns a Memory limiter configured by cfg.
func NewMemory(cfg MemoryConfig) (*Memory, error) {
	if cfg.MaxKeys < 0 {
		return nil, fmt.Errorf("%w: MemoryConfig.MaxKeys must not be negative", ErrConfig)
	}
	if cfg.MaxKeys == 0 {
		cfg.MaxKeys = DefaultMaxKeys
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	n := 1
	for n < maxShards && cfg.MaxKeys/(n*2) >= minShardLength {
		n *= 2
	}
	m := &Memory{
		now:    cfg.Now,
		seed:   maphash.MakeSeed(),
		mask:   uint64(n - 1),
		shards: make([]memShard, n),
	}
	per := cfg.MaxKeys / n
	for i := range m.shards {
		m.shards[i].max = per
		m.shards[i].entries = make(map[string]*memEntry)
	}
	return m, nil
}

// Allow implements Limiter at the time given by MemoryConfig.Now. It
// returns an error only for an invalid limit.
func (m *Memory) Allow(_ context.Context, key string, limit Limit) (Decision, error) {
	return m.AllowAt(key, limit, m.now())
}

// AllowAt reports whether one event may happen for key at time now under
// limit, consuming it if so. The bucket is key's under limit: the same key
// under another limit has a bucket of its own (see Limiter). It returns an error wrapping ErrConfig only for
// an invalid limit. Times should not go backwards for a key; if they do,
// the key gains nothing from it.
func (m *Memory) AllowAt(key string, limit Limit, now time.Time) (Decision, error) {
	if err := limit.check(); err != nil {
		return Decision{}, err
	}
	limit = limit.normalize()
	if len(key) > MaxKeyBytes {
		key = digestKey(key)
	}
	s := &m.shards[maphash.String(m.seed, key)&m.mask]
	s.mu.Lock()
	return m.decide(s, s.get(key, limit), limit, now), nil
}

// allowBytes is AllowAt for a key in a buffer: a bucket that exists is
// found without converting the key to a string (the warm path allocates
// nothing); a new bucket stores a copy.
func (m *Memory) allowBytes(key []byte, limit Limit, now time.Time) (Decision, error) {
	if len(key) > MaxKeyBytes {
		return m.AllowAt(string(key), limit, now)
	}
	if err := limit.check(); err != nil {
		return Decision{}, err
	}
	limit = limit.normalize()
	// maphash.Bytes and maphash.String hash equal contents alike, so both
	// entry points reach the same shard.
	s := &m.shards[maphash.Bytes(m.seed, key)&m.mask]
	s.mu.Lock()
	e, ok := s.entries[string(key)]
	if ok {
		s.order.MoveToFront(e)
	} else {
		e = s.get(string(key), limit)
	}
	return m.decide(s, e, limit, now), nil
}

// decide takes one event from e (or, when e's limit is another, from the
// bucket of the key under limit) at now and unlocks s.
func (m *Memory) decide(s *memShard, e *memEntry, limit Limit, now time.Time) Decision {
	key := e.key
	if e.limit != limit {
		// Another limit for this key: a bucket of its own, named by the
		// key and the limit (a NUL never appears in keys built by this
		// package's middleware), so a bucket's limit never changes.
		e = s.get(limitedKey(key, limit), limit)
		if e.limit != limit {
			resetLimiter(&e.lim, limit)
			e.limit = limit
		}
	}
	var d Decision
	if e.lim.AllowN(now, 1) {
		d.Allowed = true
		d.Remaining, d.HasRemaining = max(int(e.lim.TokensAt(now)), 0), true
	} else {
		d.RetryAfter = retryAfter(e.lim.TokensAt(now), limit)
	}
	s.mu.Unlock()
	return d
}

// size returns the number of keys currently held (at most MaxKeys).
func (m *Memory) size() int {
	n := 0
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		n += len(s.entries)
		s.mu.Unlock()
	}
	return n
}

// limitedKey names key's bucket under a limit other than its first.
func limitedKey(key string, l Limit) string {
	b := make([]byte, 0, len(key)+40)
	b = append(b, key...)
	b = append(b, 0)
	b = strconv.AppendInt(b, int64(l.Events), 10)
	b = append(b, '/')
	b = strconv.AppendInt(b, int64(l.Period), 10)
	b = append(b, '/')
	b = strconv.AppendInt(b, int64(l.Burst), 10)
	if len(b) > MaxKeyBytes {
		return digestKey(string(b))
	}
	return string(b)
}

// get returns key's entry, most recently used, creating it (by reusing the
// least recently used entry when the shard is full) with a full bucket for
// limit. s.mu is held.
func (s *memShard) get(key string, limit Limit) *memEntry {
	if e, ok := s.entries[key]; ok {
		s.order.MoveToFront(e)
		return e
	}
	var e *memEntry
	if oldest := s.order.Back(); len(s.entries) >= s.max && oldest != nil {
		e = oldest
		s.order.Remove(e)
		delete(s.entries, e.key)
	} else {
		e = new(memEntry)
	}
	e.key = key
	e.limit = limit
	resetLimiter(&e.lim, limit)
	s.entries[key] = e
	s.order.PushFront(e)
	return e
}

// resetLimiter makes lim a full bucket for limit, whatever it held before.
// Setting the limit and burst "at" the zero time leaves lim's last update
// at the zero time, so the next call at any real time refills it to Burst —
// exactly the state rate.NewLimiter creates, without allocating.
func resetLimiter(lim *rate.Limiter, limit Limit) {
	lim.SetLimitAt(time.Time{}, tokenRate(limit))
	lim.SetBurstAt(time.Time{}, limit.Burst)
}

// tokenRate converts a normalized limit to tokens per second.
func tokenRate(l Limit) rate.Limit {
	return rate.Limit(float64(l.Events) / l.Period.Seconds())
}

// retryAfter is the time until the bucket holding tokens has one token.
func retryAfter(tokens float64, l Limit) time.Duration {
	missing := 1 - tokens
	if missing <= 0 {
		return time.Nanosecond
	}
	d := time.Duration(missing * float64(l.Period) / float64(l.Events))
	return max(d, time.Nanosecond)
}

// digestKey replaces an overlong key by a fixed-size digest. A leading NUL
// keeps digests apart from ordinary keys in practice (a collision needs a
// SHA-256 preimage).
func digestKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return "\x00" + string(sum[:])
}
