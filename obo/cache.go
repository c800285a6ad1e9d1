package obo

import (
	"container/list"
	"context"
	"sync"
	"time"
)

// SharedCache is a cache of exchanged tokens shared among replicas, below
// each Exchanger's own memory cache. Keys are SHA-256 digests of the
// exchanger (token endpoint, issuer, client ID, DPoP key), of the target and
// of the user's token, never the token, so exchangers of different clients
// or authorization servers can share one; an implementation should hash
// them again with a secret and must seal the token before it leaves the
// process (redisstore.TokenCache does both).
//
// Get returns the token stored under key, if any, while now is before its
// refresh time. Put stores tok under key until refreshAt, which is always
// before tok.Expiry. A backend that fails answers a miss (Get) or drops the
// token (Put): the exchanger then exchanges again, which is always safe.
// Implementations must be safe for concurrent use.
type SharedCache interface {
	Get(ctx context.Context, key [32]byte, now time.Time) (tok Token, refreshAt time.Time, ok bool)
	Put(ctx context.Context, key [32]byte, tok Token, refreshAt time.Time)
}

// cache is a bounded LRU map from cache key to exchanged token. It is safe
// for concurrent use; its lock is never held during I/O.
type cache struct {
	mu  sync.Mutex
	max int
	m   map[[32]byte]*list.Element
	ll  list.List // of *cacheEntry, most recently used first
}

type cacheEntry struct {
	key       [32]byte
	tok       Token
	refreshAt time.Time // expiry minus skew: after it, the entry is a miss
}

func newCache(size int) *cache {
	return &cache{max: size, m: make(map[[32]byte]*list.Element, min(size, 1024))}
}

// get returns the token for key if one is stored and now is before its
// refresh time. An entry past its refresh time is removed.
func (c *cache) get(key [32]byte, now time.Time) (Token, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.m[key]
	if !ok {
		return Token{}, false
	}
	e := el.Value.(*cacheEntry)
	if !now.Before(e.refreshAt) {
		c.ll.Remove(el)
		delete(c.m, key)
		return Token{}, false
	}
	c.ll.MoveToFront(el)
	return e.tok, true
}

// put stores tok under key until refreshAt, evicting the least recently
// used entry when the cache is full.
func (c *cache) put(key [32]byte, tok Token, refreshAt time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.m[key]; ok {
		e := el.Value.(*cacheEntry)
		e.tok, e.refreshAt = tok, refreshAt
		c.ll.MoveToFront(el)
		return
	}
	for c.ll.Len() >= c.max {
		last := c.ll.Back()
		c.ll.Remove(last)
		delete(c.m, last.Value.(*cacheEntry).key)
	}
	c.m[key] = c.ll.PushFront(&cacheEntry{key: key, tok: tok, refreshAt: refreshAt})
}

// len reports the number of entries.
func (c *cache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ll.Len()
}
