package obo

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/sync/singleflight"

	"github.com/mcpguard/mcpguard/auth"
)

// Exchanger obtains downstream tokens: it exchanges the user's credential
// (RFC 8693 token exchange or Entra on-behalf-of) or obtains a service
// token (client credentials), caches the result until shortly before it
// expires, and shares one in-flight exchange among concurrent callers
// asking for the same token.
//
// An Exchanger is safe for concurrent use. Build it with New; the zero value
// is not usable.
type Exchanger struct {
	cfg     Config
	client  *http.Client
	signer  jwt.SigningMethod // private_key_jwt only
	dpop    *dpopSigner       // nil without Config.DPoPKey
	cache   *cache            // nil when caching is disabled
	id      [32]byte          // who obtains the tokens; starts every cache key
	flight  singleflight.Group
	targets targetMemo // compiled Targets passed to Token

	endpoint   atomic.Pointer[string] // resolved token endpoint
	discFlight singleflight.Group
	discMu     sync.Mutex
	discErr    error
	discErrAt  time.Time
}

// New checks cfg, fills its defaults and returns an Exchanger. Every mistake
// is an error wrapping ErrConfig that names the field. New makes no network
// call; with Config.Issuer the token endpoint is discovered on first use
// (call TokenEndpoint at start-up to fail fast).
func New(cfg Config) (*Exchanger, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	e := &Exchanger{cfg: cfg}
	if cfg.AuthMethod == PrivateKeyJWT {
		pk := *cfg.PrivateKey
		e.cfg.PrivateKey = &pk
		m, err := signingMethod(&pk)
		if err != nil {
			return nil, err
		}
		e.signer = m
	}
	if cfg.DPoPKey != nil {
		k := *cfg.DPoPKey
		e.cfg.DPoPKey = &k
		d, err := newDPoPSigner(&k, cfg.Now)
		if err != nil {
			return nil, err
		}
		e.dpop = d
	}
	if cfg.HTTPClient != nil {
		c := *cfg.HTTPClient
		e.client = &c
	} else {
		e.client = &http.Client{}
	}
	// Never follow a redirect: Go's client would re-send the POST body (the
	// client secret and the user's token) to wherever a 307/308 points.
	e.client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	if e.client.Timeout == 0 {
		e.client.Timeout = cfg.Timeout
	}
	if cfg.CacheSize > 0 {
		e.cache = newCache(cfg.CacheSize)
	}
	e.id = e.identity()
	if cfg.TokenEndpoint != "" {
		ep := cfg.TokenEndpoint
		e.endpoint.Store(&ep)
	}
	return e, nil
}

// identity digests what, beside the target and the subject, decides which
// token the authorization server issues: the server (TokenEndpoint,
// Issuer), the client (ClientID) and the key DPoP-bound tokens are bound to.
// Exchangers that differ in any of these never share a cache entry, though
// they share a SharedCache; replicas of one configuration do.
func (e *Exchanger) identity() [32]byte {
	h := sha256.New()
	var n [8]byte
	field := func(s string) {
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	h.Write([]byte{keyVersion})
	field(e.cfg.TokenEndpoint)
	field(e.cfg.Issuer)
	field(e.cfg.ClientID)
	var jwk []byte
	if e.dpop != nil {
		jwk, _ = json.Marshal(e.dpop.jwk) // map keys in sorted order
	}
	field(string(jwk))
	var id [32]byte
	h.Sum(id[:0])
	return id
}

// Token returns a token for t. For TokenExchange and EntraOBO the subject is
// the user's credential in ctx (auth.CredentialFromContext); without one it
// fails with ErrNoCredential and sends nothing. ClientCredentials needs no
// credential.
//
// A cached token is returned while now is before its expiry minus
// Config.ExpirySkew; otherwise one exchange is made and shared by every
// concurrent caller asking for the same token. That exchange runs with its
// own Config.Timeout and is not cancelled when one caller's ctx is: a
// caller whose ctx ends gets its context error, the others still get the
// token. Failures are not cached and never retried here.
func (e *Exchanger) Token(ctx context.Context, t Target) (Token, error) {
	ct, err := e.targets.compile(t)
	if err != nil {
		return Token{}, err
	}
	return e.token(ctx, ct)
}

type fillResult struct {
	tok    Token
	cached bool // found in the cache by the flight leader
}

func (e *Exchanger) token(ctx context.Context, ct *target) (Token, error) {
	var start time.Time
	if e.cfg.Observer != nil || e.cfg.Audit != nil {
		start = time.Now()
	}
	var subject string
	var digest [32]byte // of the subject token; zero for ClientCredentials
	if ct.Flavor.needsSubject() {
		cred, ok := auth.CredentialFromContext(ctx)
		if !ok {
			err := &Error{Flavor: ct.Flavor, Err: ErrNoCredential}
			if o := e.cfg.Observer; o != nil {
				// Nothing is sent; the observer still sees the failure.
				if _, end := o.StartExchange(ctx, ct.event()); end != nil {
					end(err)
				}
			}
			e.emit(ctx, ct, start, false, false, err)
			return Token{}, err
		}
		subject, digest = cred.Reveal(), cred.Digest()
	}
	key := ct.key(e.id, digest)
	if e.cache != nil {
		if tok, ok := e.cache.get(key, e.cfg.Now()); ok {
			e.emit(ctx, ct, start, true, false, nil)
			return tok, nil
		}
	}
	// led is set by the flight function, which runs only for the caller
	// that started the flight; the channel receive orders it before the read.
	led := false
	missed := key // captured by the closure: keeps key itself on the stack
	ch := e.flight.DoChan(string(key[:]), func() (any, error) {
		led = true
		return e.fill(ctx, ct, subject, missed)
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			e.emit(ctx, ct, start, false, !led, r.Err)
			return Token{}, r.Err
		}
		res := r.Val.(fillResult)
		e.emit(ctx, ct, start, res.cached && led, !led, nil)
		return res.tok, nil
	case <-ctx.Done():
		err := &Error{Flavor: ct.Flavor, Err: fmt.Errorf("%w: gave up waiting: %w", ErrUnavailable, ctx.Err())}
		e.emit(ctx, ct, start, false, false, err)
		return Token{}, err
	}
}

// fill runs once per key at a time (singleflight). It checks the cache
// again, since a flight that finished between the caller's miss and this
// call has filled it, then Config.SharedCache (another replica's exchange),
// then exchanges with a context that keeps ctx's values but not its
// cancellation.
func (e *Exchanger) fill(ctx context.Context, ct *target, subject string, key [32]byte) (fillResult, error) {
	if e.cache != nil {
		if tok, ok := e.cache.get(key, e.cfg.Now()); ok {
			return fillResult{tok: tok, cached: true}, nil
		}
	}
	xctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.cfg.Timeout)
	defer cancel()
	if sc := e.cfg.SharedCache; sc != nil && e.cache != nil {
		// Another replica may have exchanged already.
		now := e.cfg.Now()
		if tok, refreshAt, ok := sc.Get(xctx, key, now); ok && now.Before(refreshAt) && refreshAt.Before(tok.Expiry) {
			e.cache.put(key, tok, refreshAt)
			return fillResult{tok: tok, cached: true}, nil
		}
	}
	tok, err := e.observedExchange(xctx, ct, subject)
	if err != nil {
		return fillResult{}, err
	}
	if e.cache != nil && !tok.Expiry.IsZero() {
		if refreshAt := tok.Expiry.Add(-e.cfg.ExpirySkew); e.cfg.Now().Before(refreshAt) {
			e.cache.put(key, tok, refreshAt)
			if sc := e.cfg.SharedCache; sc != nil {
				sc.Put(xctx, key, tok, refreshAt)
			}
		}
	}
	return fillResult{tok: tok}, nil
}

// observedExchange runs exchange between Config.Observer's StartExchange
// and its end, in the context the observer returns (so its span is the
// parent of the HTTP client's). Without an observer it is exchange.
func (e *Exchanger) observedExchange(ctx context.Context, ct *target, subject string) (Token, error) {
	o := e.cfg.Observer
	if o == nil {
		return e.exchange(ctx, ct, subject)
	}
	octx, end := o.StartExchange(ctx, ct.event())
	if octx == nil {
		octx = ctx
	}
	tok, err := e.exchange(octx, ct, subject)
	if end != nil {
		end(err)
	}
	return tok, err
}

// event is the ExchangeEvent describing ct, with no outcome.
func (ct *target) event() ExchangeEvent {
	return ExchangeEvent{Flavor: ct.Flavor, Audience: ct.Audience, Resource: ct.Resource, Scope: ct.scope}
}

// TokenEndpoint returns the token endpoint, discovering it from
// Config.Issuer's metadata if needed. Discovery happens once; a failure is
// remembered for a few seconds, then tried again. Call it at start-up to
// surface a bad issuer early.
func (e *Exchanger) TokenEndpoint(ctx context.Context) (string, error) {
	if p := e.endpoint.Load(); p != nil {
		return *p, nil
	}
	e.discMu.Lock()
	if e.discErr != nil && e.cfg.Now().Sub(e.discErrAt) < discoveryCooldown {
		err := e.discErr
		e.discMu.Unlock()
		return "", err
	}
	e.discMu.Unlock()
	ch := e.discFlight.DoChan("", func() (any, error) {
		if p := e.endpoint.Load(); p != nil {
			return *p, nil
		}
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.cfg.Timeout)
		defer cancel()
		md, err := discover(dctx, e.client, e.cfg.Issuer)
		if err == nil {
			err = md.accepts(e.cfg.AuthMethod)
		}
		e.discMu.Lock()
		defer e.discMu.Unlock()
		if err != nil {
			e.discErr, e.discErrAt = err, e.cfg.Now()
			return "", err
		}
		e.discErr = nil
		ep := md.TokenEndpoint
		e.endpoint.Store(&ep)
		return ep, nil
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return "", r.Err
		}
		return r.Val.(string), nil
	case <-ctx.Done():
		return "", fmt.Errorf("%w: discovery: %w", ErrUnavailable, ctx.Err())
	}
}

// ExchangeEvent describes one Token call (one RoundTrip) for the audit log.
// It never holds a token, a secret or the subject's identity: the hook
// reads the caller from its context (auth.FromContext) if it needs it.
type ExchangeEvent struct {
	// Flavor, Audience, Resource and Scope describe the target; Scope is
	// space-separated and sorted.
	Flavor   Flavor
	Audience string
	Resource string
	Scope    string
	// Cached is true when the token came from the cache, no exchange made.
	Cached bool
	// Shared is true when this caller waited for an exchange started by
	// another caller asking for the same token.
	Shared bool
	// Err is nil on success. It never contains a token; errors.As gives
	// the *Error with the OAuth code and HTTP status.
	Err error
	// Duration is how long the call took.
	Duration time.Duration
}

// Outcome is "ok" or "error".
func (ev ExchangeEvent) Outcome() string {
	if ev.Err != nil {
		return "error"
	}
	return "ok"
}

// LogValue renders the event for log/slog.
func (ev ExchangeEvent) LogValue() slog.Value {
	attrs := []slog.Attr{
		slog.String("flavor", ev.Flavor.String()),
		slog.String("outcome", ev.Outcome()),
		slog.Bool("cached", ev.Cached),
		slog.Bool("shared", ev.Shared),
		slog.Duration("duration", ev.Duration),
	}
	if ev.Audience != "" {
		attrs = append(attrs, slog.String("audience", ev.Audience))
	}
	if ev.Resource != "" {
		attrs = append(attrs, slog.String("resource", ev.Resource))
	}
	if ev.Scope != "" {
		attrs = append(attrs, slog.String("scope", ev.Scope))
	}
	if ev.Err != nil {
		var oe *Error
		if errors.As(ev.Err, &oe) {
			if oe.Code != "" {
				attrs = append(attrs, slog.String("error_code", oe.Code))
			}
			if oe.Status != 0 {
				attrs = append(attrs, slog.Int("status", oe.Status))
			}
		}
		attrs = append(attrs, slog.String("error", ev.Err.Error()))
	}
	return slog.GroupValue(attrs...)
}

func (e *Exchanger) emit(ctx context.Context, ct *target, start time.Time, cached, shared bool, err error) {
	if e.cfg.Observer == nil && e.cfg.Audit == nil {
		return
	}
	var d time.Duration
	if !start.IsZero() {
		d = time.Since(start)
	}
	ev := ct.event()
	ev.Cached, ev.Shared, ev.Err, ev.Duration = cached, shared, err, d
	if e.cfg.Audit != nil && !cached && !shared {
		e.cfg.Audit.TokenExchange(ctx, ev.Flavor.Grant(), ev.audience(), d, err)
	}
	if e.cfg.Observer != nil {
		e.cfg.Observer.ObserveExchange(ctx, ev)
	}
}
