package auth

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"
	"unsafe"

	"github.com/mcpguard/mcpguard/internal/lru"
)

// DefaultCacheSize is the default capacity of the verified-token cache.
const DefaultCacheSize = 10_000

// tokenKey identifies a token in the cache: the SHA-256 of the whole token,
// so the cache never holds a credential and two tokens differing in any byte
// (signature included) never share an entry.
type tokenKey [sha256.Size]byte

func keyOf(token string) tokenKey {
	// Sum256 only reads its argument, so hashing the string's bytes in
	// place is safe, and spares a copy of the token on every request.
	return sha256.Sum256(unsafe.Slice(unsafe.StringData(token), len(token)))
}

// keyFor is keyOf(token), reusing the digest Middleware computed for the
// request's credential when ctx carries the very same token: one SHA-256 per
// request serves the verified-token cache and obo's exchange cache. Any
// other token is hashed afresh, so a context can never lend its digest to a
// different token.
func keyFor(ctx context.Context, token string) tokenKey {
	if c, ok := credentialFrom(ctx); ok && c.sum != nil && c.raw == token {
		return tokenKey(*c.sum)
	}
	return keyOf(token)
}

// maxTokenBytes checks a MaxTokenBytes setting: zero means
// DefaultMaxTokenBytes, otherwise 1 to MaxTokenBytesLimit.
func maxTokenBytes(n int) (int, error) {
	switch {
	case n == 0:
		return DefaultMaxTokenBytes, nil
	case n < 0 || n > MaxTokenBytesLimit:
		return 0, fmt.Errorf("must be between 1 and %d", MaxTokenBytesLimit)
	}
	return n, nil
}

// tokenCacheFor checks a CacheSize setting and builds the cache: zero means
// DefaultCacheSize; disable gives none.
func tokenCacheFor(size int, disable bool) (*tokenCache, error) {
	switch {
	case size < 0 || size > 10_000_000:
		return nil, errors.New("must be between 0 and 10,000,000")
	case disable:
		return nil, nil
	case size == 0:
		return newTokenCache(DefaultCacheSize), nil
	}
	return newTokenCache(size), nil
}

// tokenCache is a bounded, sharded LRU of verified principals. An entry
// is served only before its expiry (the token's exp, never later) and only
// while the key set still holds the key that verified it: an entry records
// its key, and when a fetch finds that key gone, that key's entries — and
// no others — are dropped on their next use. It is safe for concurrent use.
type tokenCache struct {
	shards []cacheShard
}

type cacheShard struct {
	mu       sync.Mutex
	m        map[tokenKey]*cacheEntry
	order    lru.List[cacheEntry, *cacheEntry] // most recently used first
	capacity int
}

type cacheEntry struct {
	lru.Links[cacheEntry]
	key    tokenKey
	p      *Principal
	expiry time.Time
	vk     *verifyKey // the key that verified the token; nil when none did
}

// newTokenCache returns a cache holding at most size entries (rounded up
// to a multiple of the shard count, which is 16 for sizes of 256 and more
// and 1 below).
func newTokenCache(size int) *tokenCache {
	n := 1
	if size >= 256 {
		n = 16
	}
	per := (size + n - 1) / n
	c := &tokenCache{shards: make([]cacheShard, n)}
	for i := range c.shards {
		c.shards[i] = cacheShard{m: make(map[tokenKey]*cacheEntry), capacity: per}
	}
	return c
}

func (c *tokenCache) shard(k tokenKey) *cacheShard {
	return &c.shards[binary.LittleEndian.Uint32(k[:4])%uint32(len(c.shards))]
}

// get returns the cached principal for k if it is still fresh at now and
// the key that verified it is still in the key set. Stale entries are
// dropped.
func (c *tokenCache) get(k tokenKey, now time.Time) *Principal {
	s := c.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.m[k]
	if e == nil {
		return nil
	}
	if !now.Before(e.expiry) || !e.vk.usable() {
		s.remove(e)
		return nil
	}
	s.order.MoveToFront(e)
	return e.p
}

// put stores p, verified with vk (nil when no key was involved), until
// expiry, evicting the least recently used entry when the shard is full.
func (c *tokenCache) put(k tokenKey, p *Principal, expiry time.Time, vk *verifyKey) {
	s := c.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.m[k]; e != nil {
		e.p, e.expiry, e.vk = p, expiry, vk
		s.order.MoveToFront(e)
		return
	}
	if oldest := s.order.Back(); len(s.m) >= s.capacity && oldest != nil {
		s.remove(oldest)
	}
	e := &cacheEntry{key: k, p: p, expiry: expiry, vk: vk}
	s.m[k] = e
	s.order.PushFront(e)
}

// len returns the number of entries held.
func (c *tokenCache) len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		n += len(s.m)
		s.mu.Unlock()
	}
	return n
}

func (s *cacheShard) remove(e *cacheEntry) {
	delete(s.m, e.key)
	s.order.Remove(e)
}
