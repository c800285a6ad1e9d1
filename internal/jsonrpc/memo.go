package jsonrpc

import (
	"bytes"
	"context"
)

// Memo remembers the Peek result of one request body, so that the layers
// that each look at the same bytes (transport's step-up check, authz's
// request hook inside mcp-go) peek once per request. A context carries it
// under MemoKey; transport's edge context holds one beside the body it
// read, so it costs no allocation of its own.
//
// A Memo is filled by the first PeekMemo and read by the later ones; the
// layers of one request run one after another, so it needs no lock.
type Memo struct {
	body []byte
	msg  Message
	err  error
	set  bool

	// One small fact about a name the request refers to (authz: the
	// annotations of the tool it calls), so the layers that each look it
	// up in mcp-go (which allocates per lookup) do so once.
	factName string
	fact     uint8
	factSet  bool
}

// Recall returns the fact kept for name by Keep, if any. A nil Memo
// remembers nothing.
func (m *Memo) Recall(name string) (uint8, bool) {
	if m == nil || !m.factSet || m.factName != name {
		return 0, false
	}
	return m.fact, true
}

// Keep remembers v for name, unless a fact is already kept. A nil Memo
// keeps nothing.
func (m *Memo) Keep(name string, v uint8) {
	if m != nil && !m.factSet {
		m.factName, m.fact, m.factSet = name, v, true
	}
}

// MemoKey is the context key under which a *Memo is found.
type MemoKey struct{}

// PeekMemo is Peek(body), answered from the *Memo ctx carries when that
// Memo holds the result for the very same bytes, and remembered in it
// otherwise. Without a Memo in ctx it is Peek.
func PeekMemo(ctx context.Context, body []byte) (Message, error) {
	m, _ := ctx.Value(MemoKey{}).(*Memo)
	if m.Remembers(body) {
		return m.msg, m.err
	}
	msg, err := Peek(body)
	if m != nil && !m.set {
		m.body, m.msg, m.err, m.set = body, msg, err, true
	}
	return msg, err
}

// sameBytes is bytes.Equal with a shortcut for the same slice.
func sameBytes(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	if len(a) == 0 || &a[0] == &b[0] {
		return true
	}
	return bytes.Equal(a, b)
}

// Remembers reports whether PeekMemo would answer body from m.
func (m *Memo) Remembers(body []byte) bool {
	return m != nil && m.set && sameBytes(m.body, body)
}
