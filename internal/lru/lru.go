// Package lru is the intrusive doubly linked list behind mcpguard's
// bounded caches (verified tokens, introspection verdicts, limiter keys):
// an entry type embeds Links, so keeping recency order costs no allocation.
//
// Dependencies: the standard library only.
package lru

// Links is embedded in an entry type E to put its values on a List.
type Links[E any] struct {
	prev, next *E
}

// LRULinks returns l; embedding Links promotes it, which is how a List
// reaches the links of an entry.
func (l *Links[E]) LRULinks() *Links[E] { return l }

// Entry is the constraint on a List's element pointers: *E whose E embeds
// Links[E].
type Entry[E any] interface {
	*E
	LRULinks() *Links[E]
}

// List orders entries from most recently used (front) to least (back).
// The zero value is an empty list. It is not safe for concurrent use: the
// cache holding it guards it with its own lock. An entry is on at most one
// list at a time.
type List[E any, P Entry[E]] struct {
	head, tail P
}

// Front returns the most recently used entry, nil when empty.
func (l *List[E, P]) Front() P { return l.head }

// Back returns the least recently used entry, nil when empty: the one to
// evict.
func (l *List[E, P]) Back() P { return l.tail }

// PushFront puts e, which must not be on a list, at the front.
func (l *List[E, P]) PushFront(e P) {
	lk := e.LRULinks()
	lk.prev, lk.next = nil, l.head
	if l.head != nil {
		l.head.LRULinks().prev = e
	}
	l.head = e
	if l.tail == nil {
		l.tail = e
	}
}

// Remove takes e, which must be on l, off the list.
func (l *List[E, P]) Remove(e P) {
	lk := e.LRULinks()
	if lk.prev != nil {
		P(lk.prev).LRULinks().next = lk.next
	} else {
		l.head = lk.next
	}
	if lk.next != nil {
		P(lk.next).LRULinks().prev = lk.prev
	} else {
		l.tail = lk.prev
	}
	lk.prev, lk.next = nil, nil
}

// MoveToFront marks e, which must be on l, as the most recently used.
func (l *List[E, P]) MoveToFront(e P) {
	if l.head == e {
		return
	}
	l.Remove(e)
	l.PushFront(e)
}
