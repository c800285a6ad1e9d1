package obo

import (
	"container/list"
	"sync"
	"time"
)

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
