// Package ctxval stores a string in a context.Context with one allocation
// instead of the two context.WithValue needs (the context node and the
// string boxed in an interface).
//
// It is internal to mcpguard: the packages that own a per-request string
// (audit's request and JSON-RPC IDs, tenancy's tenant) keep their own
// unexported key types and NewContext/FromContext functions, and use this
// only as the storage behind them:
//
//	type tenantKey struct{}
//
//	func NewContext(ctx context.Context, t string) context.Context {
//		return ctxval.WithString(ctx, tenantKey{}, t)
//	}
//
//	func FromContext(ctx context.Context) (string, bool) {
//		return ctxval.String(ctx, tenantKey{})
//	}
//
// Dependencies: the standard library only.
package ctxval

import (
	"context"
	"fmt"
)

// stringCtx is a context carrying one string under the key type K. Its
// Value answers any key of type K with the node itself (a pointer, so no
// allocation) and passes every other key to the parent, as context.WithValue
// does; cancellation, deadlines and causes come from the parent.
type stringCtx[K comparable] struct {
	context.Context
	v string
}

func (c *stringCtx[K]) Value(key any) any {
	if _, ok := key.(K); ok {
		return c
	}
	return c.Context.Value(key)
}

// String names the context without the value, which may be an identifier
// that does not belong in logs.
func (c *stringCtx[K]) String() string {
	if s, ok := c.Context.(fmt.Stringer); ok {
		return s.String() + ".WithString"
	}
	return "ctxval.WithString"
}

// WithString returns a copy of parent in which the key type K maps to v.
// K must be a package's own unexported key type: every value of K is the
// same key. A later WithString with the same K hides this one, as with
// context.WithValue.
func WithString[K comparable](parent context.Context, _ K, v string) context.Context {
	return &stringCtx[K]{Context: parent, v: v}
}

// String returns the string stored under the key type K by the nearest
// WithString, and whether there is one.
func String[K comparable](ctx context.Context, key K) (string, bool) {
	switch c := ctx.Value(key).(type) {
	case *stringCtx[K]:
		return c.v, true
	case *string:
		// A context that carries several per-request strings in one node
		// (transport's edge context) answers the key with a pointer to its
		// field.
		return *c, c != nil
	}
	return "", false
}

// RequestIDKey and RPCIDKey are the keys of audit's request ID and
// JSON-RPC id, here so that transport's edge context can carry both in the
// node it allocates anyway. A context that answers them with a *string
// must only do so once the string is set.
type (
	RequestIDKey struct{}
	RPCIDKey     struct{}
)
