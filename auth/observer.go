package auth

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"
)

// Observer is told what a validator does besides deciding: each lookup in
// its caches, each cold validation, each introspection call and each JWK
// Set fetch. It is the hook through which package telemetry turns them into
// metrics and child spans without this package importing OpenTelemetry;
// install one with the validator's SetObserver (transport does, for
// Config.Validator, when telemetry is on).
//
// Methods are called synchronously, on the request's goroutine or on the
// goroutine of work shared by several requests (an introspection, a JWK
// Set fetch), and must be fast, must not block and must be safe for
// concurrent use. Nothing passed to them holds a credential.
type Observer interface {
	// ObserveCache reports one lookup in a validator's cache: hit says the
	// cache answered (for the introspection cache, with a cached active
	// or inactive verdict).
	ObserveCache(ctx context.Context, cache Cache, hit bool)
	// StartOperation reports that op begins as part of the work ctx
	// belongs to. It returns the context to run op in (an observer may put
	// a span in it; a nil one means ctx) and a function that the validator
	// calls exactly once, with op's outcome, when op ends; end may be nil.
	StartOperation(ctx context.Context, op Operation) (_ context.Context, end func(Outcome))
}

// Cache names a validator cache in Observer.ObserveCache.
type Cache uint8

const (
	// CacheToken is the verified-token cache of a JWTValidator.
	CacheToken Cache = iota + 1
	// CacheIntrospection is an IntrospectionValidator's cache of answers
	// (active principals and inactive verdicts).
	CacheIntrospection
)

// String returns "token" or "introspection".
func (c Cache) String() string {
	switch c {
	case CacheToken:
		return "token"
	case CacheIntrospection:
		return "introspection"
	}
	return "unknown"
}

// OpKind is the kind of an Operation.
type OpKind uint8

const (
	// OpValidate is a cold validation of a JWT: one the verified-token
	// cache did not answer (parsing, key selection, signature, claims; a
	// JWK Set fetch it waits for is an OpFetchKeys inside it).
	OpValidate OpKind = iota + 1
	// OpIntrospect is one RFC 7662 introspection of a token the cache did
	// not answer, shared by the callers waiting for it: the call to the
	// endpoint (discovering it first when needed) and the check of the
	// answer.
	OpIntrospect
	// OpFetchKeys is one fetch of a JWK Set (discovering its URL first
	// when needed). An on-demand fetch (no keys yet, an unknown kid) runs
	// in the context of the request that started it; the scheduled
	// refresh in a context of its own.
	OpFetchKeys
)

// String returns "validate", "introspect" or "fetch_keys".
func (k OpKind) String() string {
	switch k {
	case OpValidate:
		return "validate"
	case OpIntrospect:
		return "introspect"
	case OpFetchKeys:
		return "fetch_keys"
	}
	return "unknown"
}

// Operation describes what Observer.StartOperation is told about.
type Operation struct {
	Kind OpKind
	// Source names the configuration the operation belongs to, never the
	// request: the issuer (JWTConfig.Issuer, IntrospectionConfig.Issuer)
	// or, without one, the JWKS URL or introspection endpoint. It may be
	// empty.
	Source string
}

// Outcome is how an Operation ended.
type Outcome struct {
	// Err is nil on success. For OpValidate and OpIntrospect it is the
	// *Error the caller gets (AsError gives its code and status); for
	// OpFetchKeys the fetch error, whatever the keys held still allow. It
	// never holds a credential.
	Err error
	// Keys is, after a successful OpFetchKeys, the number of usable keys
	// in the set now held; zero otherwise.
	Keys int
}

// observerSlot holds a validator's Observer; reading it costs one atomic
// load, so a validator without one pays nothing else.
type observerSlot struct {
	p atomic.Pointer[observerBox]
}

type observerBox struct{ o Observer }

func (s *observerSlot) get() Observer {
	if b := s.p.Load(); b != nil {
		return b.o
	}
	return nil
}

func (s *observerSlot) set(o Observer, who string) error {
	if o == nil {
		return fmt.Errorf("%w: %s.SetObserver: nil observer", ErrConfig, who)
	}
	if !s.p.CompareAndSwap(nil, &observerBox{o}) {
		return fmt.Errorf("%w: %s.SetObserver: the validator already has an observer", ErrConfig, who)
	}
	return nil
}

// start runs Observer.StartOperation when there is an observer, returning
// ctx and a nil end otherwise.
func (s *observerSlot) start(ctx context.Context, op Operation) (context.Context, func(Outcome)) {
	o := s.get()
	if o == nil {
		return ctx, nil
	}
	octx, end := o.StartOperation(ctx, op)
	if octx == nil {
		octx = ctx
	}
	return octx, end
}

// lookup reports a cache lookup when there is an observer.
func (s *observerSlot) lookup(ctx context.Context, c Cache, hit bool) {
	if o := s.get(); o != nil {
		o.ObserveCache(ctx, c, hit)
	}
}

// withValuesOf returns a context carrying the values of vals (an
// observer's span) that is cancelled with life, and its cancel function:
// shared work runs detached from every caller, yet an instrumented HTTP
// client still nests its spans in the observer's.
func withValuesOf(vals, life context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(vals))
	stop := context.AfterFunc(life, cancel)
	return ctx, func() { stop(); cancel() }
}

// KeySetInfo describes the JWK Set a JWTValidator holds, for a gauge that
// must not wait for the next fetch (JWTValidator.KeySet).
type KeySetInfo struct {
	// Source is the issuer, else the JWKS URL (as Operation.Source).
	Source string
	// Keys is the number of usable keys held.
	Keys int
	// Fetched is when the set held was last fetched successfully, by the
	// validator's clock; zero for a fixed JWKS or before the first fetch.
	Fetched time.Time
}
