package auth

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"
	"golang.org/x/time/rate"

	"github.com/mcpguard/mcpguard/internal/lru"
)

// Defaults and limits of IntrospectionConfig.
const (
	// DefaultIntrospectionTimeout bounds one introspection request,
	// including the wait for a free slot (see MaxInFlight).
	DefaultIntrospectionTimeout = 5 * time.Second
	// DefaultIntrospectionCacheTTL is the longest an active result is
	// served from the cache; a token's own "exp" shortens it.
	DefaultIntrospectionCacheTTL = 60 * time.Second
	// MaxIntrospectionCacheTTL is the largest CacheTTL accepted.
	MaxIntrospectionCacheTTL = 10 * time.Minute
	// DefaultNegativeCacheTTL is how long a rejection is remembered.
	DefaultNegativeCacheTTL = 5 * time.Second
	// MaxNegativeCacheTTL is the largest NegativeCacheTTL accepted.
	MaxNegativeCacheTTL = time.Minute
	// DefaultNegativeCacheSize is the capacity of the rejection cache.
	DefaultNegativeCacheSize = 1_000
	// DefaultMaxInFlight is the default cap on concurrent introspection
	// requests to the authorization server.
	DefaultMaxInFlight = 64
)

// Client authentication methods for the introspection endpoint (RFC 7662
// §2.1 requires one; the names are those of RFC 8414 §2 and RFC 7591 §2).
const (
	// ClientSecretBasic sends the client ID and secret in an HTTP Basic
	// Authorization header, each form-encoded first (RFC 6749 §2.3.1).
	ClientSecretBasic = "client_secret_basic"
	// ClientSecretPost sends them as client_id and client_secret form
	// parameters in the request body (RFC 6749 §2.3.1).
	ClientSecretPost = "client_secret_post"
)

// Client-safe descriptions of introspection outcomes.
const (
	descIntroUnavailable  = "token introspection is temporarily unavailable"
	descInactive          = "the access token is not active"
	descIntroClaims       = "the token's introspected claims are malformed"
	descSenderConstrained = "the token is bound to a key and cannot be used as a bearer token"
)

// errRedirectRefused is returned by the introspection client's CheckRedirect.
var errRedirectRefused = errors.New("redirect refused: the token and client secret are never re-sent")

// IntrospectionConfig configures an IntrospectionValidator. Issuer,
// Audience (or AllowMissingAudience), ClientID and ClientSecret are
// required; every other zero value is a documented, safe default.
type IntrospectionConfig struct {
	// Issuer is the authorization server's issuer identifier (RFC 8414
	// §2), an absolute URL. A response's "iss", when present, must equal
	// it; a response without "iss" gets it as the principal's Issuer.
	// When Endpoint is empty, the endpoint is discovered from Issuer's
	// metadata. Required.
	Issuer string
	// Endpoint is the introspection endpoint (RFC 7662 §2). Empty means
	// the "introspection_endpoint" of the issuer's RFC 8414 metadata,
	// then of its OpenID Connect discovery document, whose "issuer" must
	// equal Issuer. Must be https, or http to a loopback host (see
	// InsecureAllowHTTP): the client secret and the token travel to it.
	Endpoint string

	// ClientID and ClientSecret authenticate this resource server to the
	// introspection endpoint (RFC 7662 §2.1). Both required. The secret is
	// a Credential so that printing the config never shows it.
	ClientID     string
	ClientSecret Credential
	// AuthMethod is ClientSecretBasic (the default when empty) or
	// ClientSecretPost.
	AuthMethod string

	// Audience is this resource server's identifier (RFC 8707 §2). An
	// active response's "aud" (a string or an array) must hold Audience or
	// one of AudienceAliases. Required unless AllowMissingAudience.
	Audience string
	// AudienceAliases are other identifiers of this resource in "aud".
	AudienceAliases []string
	// AllowMissingAudience accepts active responses that carry no "aud"
	// member, trusting the authorization server to have judged the token
	// for the client that asked (RFC 7662 §4). A response that does carry
	// "aud" is still checked, so without Audience it is refused.
	AllowMissingAudience bool

	// HTTPClient sends the introspection and discovery requests. Nil means
	// a new client. It is copied, and the copy follows no redirect at all,
	// so the token and secret are never re-sent to another URL.
	HTTPClient *http.Client
	// Timeout bounds one introspection (waiting for a slot, the request
	// and reading the response) and one discovery. Zero means
	// DefaultIntrospectionTimeout (5 s); at most one minute.
	Timeout time.Duration
	// InsecureAllowHTTP allows a plain-http endpoint or issuer on a
	// non-loopback host: the client secret and every token would cross
	// the network in clear text.
	InsecureAllowHTTP bool
	// MaxInFlight caps the introspection requests running at once, whatever
	// the number of callers; a flood of distinct tokens then waits (up to
	// Timeout) instead of flooding the authorization server. Zero means
	// DefaultMaxInFlight (64).
	MaxInFlight int

	// Leeway tolerates clock skew when checking exp, nbf and iat. Zero
	// means DefaultLeeway (60 s); at most MaxLeeway.
	Leeway time.Duration
	// MaxTokenBytes is the largest token sent for introspection, checked
	// first. Zero means DefaultMaxTokenBytes (16 KiB); at most
	// MaxTokenBytesLimit.
	MaxTokenBytes int
	// ScopeMapper computes Principal.Scopes from the response. Nil means
	// standardScopes.
	ScopeMapper ScopeMapper

	// CacheTTL is the longest an active result is served without asking
	// again; a token's "exp" shortens it, never the other way round. Zero
	// means DefaultIntrospectionCacheTTL (60 s); at most
	// MaxIntrospectionCacheTTL. A token revoked at the authorization
	// server keeps working here for up to CacheTTL.
	CacheTTL time.Duration
	// CacheSize is the capacity of the active-result cache (least recently
	// used entries are evicted). Zero means DefaultCacheSize (10,000).
	CacheSize int
	// DisableCache introspects every request.
	DisableCache bool
	// NegativeCacheTTL is how long a rejection (active:false, expired,
	// wrong issuer or audience...) is remembered, so that a client
	// retrying a dead token does not reach the authorization server on
	// every request. Rejections live in their own small cache, so a flood
	// of junk tokens cannot evict active entries. Outages (503) are never
	// cached. Zero means DefaultNegativeCacheTTL (5 s); at most
	// MaxNegativeCacheTTL.
	NegativeCacheTTL time.Duration
	// NegativeCacheSize is the capacity of the rejection cache. Zero means
	// DefaultNegativeCacheSize (1,000).
	NegativeCacheSize int
	// DisableNegativeCache introspects every rejected token again.
	DisableNegativeCache bool

	// SharedCache, when set, shares introspection answers among replicas
	// (redisstore.IntrospectionCache keeps them in Redis, sealed): on a miss
	// of this validator's own caches it is asked before the endpoint, and
	// every answer the endpoint gives about a token is stored in it for as
	// long as this validator would cache the verdict (CacheTTL and "exp" for
	// an active token, NegativeCacheTTL for a rejection). An answer from it
	// is checked exactly like one from the endpoint. Validators of another
	// Issuer, Endpoint or ClientID never see this one's answers, so one
	// cache may serve them all. Nil: per process only.
	SharedCache IntrospectionCache

	// Now is the clock. Nil means time.Now.
	Now func() time.Time

	// Revoker, when set, is asked about every active token, fresh from the
	// endpoint or from the cache, before the DPoP proof is checked: a
	// revoked token is refused with 401 invalid_token (errors.Is
	// ErrRevoked) even while its active verdict is cached; a revoker that
	// cannot answer makes the request fail with 503. Nil revokes nothing.
	Revoker Revoker

	// DPoP configures DPoP-bound tokens (RFC 9449 §6.2: "cnf.jkt" in the
	// response, token_type "DPoP"). The zero value (DPoPDisabled) refuses
	// them as before.
	DPoP DPoPConfig
}

// IntrospectionCache shares RFC 7662 answers among replicas, below each
// validator's own caches. The key is a SHA-256 digest of the validator's
// authorization server and client (Issuer, Endpoint, ClientID) and of the
// whole token, never the token, so validators of different servers or
// clients may share one cache and never use each other's answers; an
// implementation should hash it again with a secret and must seal the
// answer (it holds the token's claims) before it leaves the process.
//
// Get returns the answer stored under key and the time it may be used
// until. Put stores an answer until the given time, which never passes the
// token's expiry. A failing backend answers a miss and drops puts: the
// validator then asks the endpoint, which is always safe. Implementations
// must be safe for concurrent use.
type IntrospectionCache interface {
	Get(ctx context.Context, key [32]byte, now time.Time) (response []byte, until time.Time, ok bool)
	Put(ctx context.Context, key [32]byte, response []byte, until time.Time)
}

// IntrospectionValidator validates opaque access tokens by asking the
// authorization server's token introspection endpoint (RFC 7662).
//
// Validate checks the token's size, then the caches, then POSTs the token
// (with token_type_hint=access_token and client authentication) and reads
// at most 1 MiB of JSON. A 400 whose OAuth error is unsupported_token_type
// or invalid_token is a rejection of the token (401). Any other response
// that is not 200, is not a JSON object, has
// duplicate members or lacks the boolean "active" is an outage: the
// validator fails closed with a 503-class *Error (ErrUnavailable), never a
// 401 that would make a client discard a good token. So are timeouts,
// refused redirects and an unreachable endpoint.
//
// An "active": true response is then checked like a verified JWT: exp (a
// cache entry never outlives it), nbf and iat with Leeway; "iss" equal to
// Issuer when present; "aud" holding Audience; "sub" present, or else "client_id" (a
// client-credentials token acts for its client); no "cnf"
// and no DPoP token_type unless DPoP is configured (sender-constrained
// tokens need a proof, RFC 9449 §7.1, RFC 8705 §3; with IntrospectionConfig.DPoP
// a "cnf.jkt" binding is checked against the request's proof on every
// call, cached or not); not a refresh token.
// The Principal carries sub, iss, client_id (or azp, appid, cid), aud,
// exp, iat, jti, the scopes from the ScopeMapper and every member of the
// response as Claims.
//
// Concurrent Validate calls for the same token share one request
// (singleflight). The request runs detached from any caller's context, so a
// caller that gives up gets ErrUnavailable while the others still get the
// answer.
//
// Construct it with NewIntrospectionValidator. It is safe for concurrent
// use.
type IntrospectionValidator struct {
	issuer     string
	audiences  []string
	allowNoAud bool
	clientID   string
	secret     Credential
	authMethod string
	client     *http.Client
	timeout    time.Duration
	leeway     time.Duration
	maxSize    int
	scopes     ScopeMapper
	ttl        time.Duration
	cache      *tokenCache
	neg        *verdictCache
	negTTL     time.Duration
	shared     IntrospectionCache
	sharedID   [32]byte // starts every SharedCache key
	sem        chan struct{}
	now        func() time.Time
	dpop       *dpopPolicy
	revoker    Revoker
	obs        observerSlot

	flights singleflight.Group

	endpoint      atomic.Pointer[string]
	discoveryURLs []string
	allowHTTP     bool
	discoMu       sync.Mutex
	discoCooldown *rate.Limiter
	discoCall     *fetchCall
	discoErr      error

	ctx    context.Context
	cancel context.CancelFunc
}

// NewIntrospectionValidator checks cfg and returns a validator. It does
// no I/O: the endpoint is discovered on first use. Every configuration
// mistake is an error naming the field and wrapping ErrConfig.
func NewIntrospectionValidator(cfg IntrospectionConfig) (*IntrospectionValidator, error) {
	cfgErr := func(field, format string, args ...any) error {
		return fmt.Errorf("%w: IntrospectionConfig.%s: %s", ErrConfig, field, fmt.Sprintf(format, args...))
	}
	v := &IntrospectionValidator{
		issuer:     cfg.Issuer,
		allowNoAud: cfg.AllowMissingAudience,
		clientID:   cfg.ClientID,
		secret:     cfg.ClientSecret,
		authMethod: cfg.AuthMethod,
		scopes:     cfg.ScopeMapper,
		now:        cfg.Now,
		allowHTTP:  cfg.InsecureAllowHTTP,
		revoker:    cfg.Revoker,
	}
	if err := checkFetchURL(cfg.Issuer, cfg.InsecureAllowHTTP); err != nil {
		return nil, cfgErr("Issuer", "%v", err)
	}
	if cfg.Endpoint != "" {
		if err := checkFetchURL(cfg.Endpoint, cfg.InsecureAllowHTTP); err != nil {
			return nil, cfgErr("Endpoint", "%v", err)
		}
		u := cfg.Endpoint
		v.endpoint.Store(&u)
	} else {
		urls, err := discoveryURLs(cfg.Issuer)
		if err != nil {
			return nil, cfgErr("Issuer", "%v", err)
		}
		// RFC 8414 defines introspection_endpoint; try it first.
		v.discoveryURLs = []string{urls[1], urls[0]}
	}
	switch {
	case cfg.ClientID == "":
		return nil, cfgErr("ClientID", "required (RFC 7662 §2.1: the resource server must authenticate)")
	case cfg.ClientSecret.IsZero():
		return nil, cfgErr("ClientSecret", "required")
	case strings.ContainsAny(cfg.ClientID, "\x00\r\n"):
		return nil, cfgErr("ClientID", "contains a control character")
	}
	switch cfg.AuthMethod {
	case "":
		v.authMethod = ClientSecretBasic
	case ClientSecretBasic, ClientSecretPost:
	default:
		return nil, cfgErr("AuthMethod", "%q is not %s or %s", cfg.AuthMethod, ClientSecretBasic, ClientSecretPost)
	}
	if cfg.Audience != "" {
		if err := checkAbsoluteURL(cfg.Audience); err != nil {
			return nil, cfgErr("Audience", "%v (an RFC 8707 resource URI; put other identifiers in AudienceAliases)", err)
		}
		v.audiences = append(v.audiences, cfg.Audience)
	}
	for _, a := range cfg.AudienceAliases {
		if a == "" {
			return nil, cfgErr("AudienceAliases", "empty alias")
		}
		v.audiences = append(v.audiences, a)
	}
	if cfg.Audience == "" && (len(cfg.AudienceAliases) > 0 || !cfg.AllowMissingAudience) {
		return nil, cfgErr("Audience", "required (the resource URI of this server, RFC 8707)")
	}

	var err error
	if v.timeout, err = durationOr(cfg.Timeout, DefaultIntrospectionTimeout, time.Millisecond, time.Minute); err != nil {
		return nil, cfgErr("Timeout", "%v", err)
	}
	if v.leeway, err = durationOr(cfg.Leeway, DefaultLeeway, 0, MaxLeeway); err != nil {
		return nil, cfgErr("Leeway", "%v", err)
	}
	if v.ttl, err = durationOr(cfg.CacheTTL, DefaultIntrospectionCacheTTL, time.Second, MaxIntrospectionCacheTTL); err != nil {
		return nil, cfgErr("CacheTTL", "%v", err)
	}
	if v.negTTL, err = durationOr(cfg.NegativeCacheTTL, DefaultNegativeCacheTTL, time.Millisecond, MaxNegativeCacheTTL); err != nil {
		return nil, cfgErr("NegativeCacheTTL", "%v", err)
	}
	if v.maxSize, err = maxTokenBytes(cfg.MaxTokenBytes); err != nil {
		return nil, cfgErr("MaxTokenBytes", "%v", err)
	}
	if v.cache, err = tokenCacheFor(cfg.CacheSize, cfg.DisableCache); err != nil {
		return nil, cfgErr("CacheSize", "%v", err)
	}
	switch {
	case cfg.NegativeCacheSize < 0 || cfg.NegativeCacheSize > 1_000_000:
		return nil, cfgErr("NegativeCacheSize", "must be between 0 and 1,000,000")
	case cfg.DisableNegativeCache:
	case cfg.NegativeCacheSize == 0:
		v.neg = newVerdictCache(DefaultNegativeCacheSize)
	default:
		v.neg = newVerdictCache(cfg.NegativeCacheSize)
	}
	switch {
	case cfg.MaxInFlight < 0 || cfg.MaxInFlight > 10_000:
		return nil, cfgErr("MaxInFlight", "must be between 0 and 10,000")
	case cfg.MaxInFlight == 0:
		v.sem = make(chan struct{}, DefaultMaxInFlight)
	default:
		v.sem = make(chan struct{}, cfg.MaxInFlight)
	}
	if v.now == nil {
		v.now = time.Now
	}
	v.shared = cfg.SharedCache
	v.sharedID = introspectionIdentity(cfg.Issuer, cfg.Endpoint, cfg.ClientID)
	if v.dpop, err = newDPoPPolicy(cfg.DPoP, cfg.Audience, v.now, "IntrospectionConfig"); err != nil {
		return nil, err
	}
	v.client = noRedirectClient(cfg.HTTPClient)
	v.discoCooldown = rate.NewLimiter(rate.Every(DefaultRefetchCooldown), 1)
	v.ctx, v.cancel = context.WithCancel(context.Background())
	return v, nil
}

// DPoPMode returns the configured DPoP mode.
func (v *IntrospectionValidator) DPoPMode() DPoPMode { return v.dpop.modeOf() }

// DPoPAlgorithms returns the accepted DPoP proof algorithms, nil when DPoP
// is disabled.
func (v *IntrospectionValidator) DPoPAlgorithms() []string { return v.dpop.algorithms() }

// SetObserver makes o the validator's Observer: it is told of every
// cache lookup (CacheIntrospection) and every introspection (OpIntrospect).
// It may be called once, before or while the validator serves; a second
// call, or a nil o, is an error wrapping ErrConfig.
func (v *IntrospectionValidator) SetObserver(o Observer) error {
	return v.obs.set(o, "IntrospectionValidator")
}

// Close aborts the introspection requests in flight; their callers get
// ErrUnavailable. Cached results are still served, but no further request
// is sent. Close is safe to call more than once.
func (v *IntrospectionValidator) Close() error {
	v.cancel()
	return nil
}

// introResult is what one shared introspection produces.
type introResult struct {
	p   *Principal
	err *Error
}

// Validate introspects token and returns the principal it proves. Errors
// are *Error values with a fixed client-safe description: invalid_token
// (401, errors.Is ErrInvalidToken; also ErrExpired when expired) when the
// authorization server says the token is inactive or its claims do not
// fit this resource; 503 (ErrUnavailable) when the answer could not be
// obtained, including when ctx ends first. No error contains the token or
// the client secret.
//
// The returned principal is a fresh copy; its slices and Claims are shared
// with the cache and must not be modified.
func (v *IntrospectionValidator) Validate(ctx context.Context, token string) (*Principal, error) {
	if token == "" {
		return nil, InvalidToken(descMalformed, fmt.Errorf("%w: empty token", ErrInvalidToken))
	}
	if len(token) > v.maxSize {
		return nil, InvalidToken(descTooLarge, fmt.Errorf("%w: token longer than %d bytes", ErrInvalidToken, v.maxSize))
	}
	k := keyFor(ctx, token)
	now := v.now()
	if v.cache != nil {
		if p := v.cache.get(k, now); p != nil {
			v.obs.lookup(ctx, CacheIntrospection, true)
			// A revocation applies to cached verdicts too.
			if e := checkRevoked(ctx, v.revoker, p); e != nil {
				return nil, e
			}
			// A cached token still needs this request's own proof.
			if e := v.dpop.check(ctx, token, p); e != nil {
				return nil, e
			}
			cp := *p
			return &cp, nil
		}
	}
	if v.neg != nil {
		if e := v.neg.get(k, now); e != nil {
			v.obs.lookup(ctx, CacheIntrospection, true)
			ce := *e
			return nil, &ce
		}
	}
	if v.cache != nil || v.neg != nil {
		v.obs.lookup(ctx, CacheIntrospection, false)
	}
	ch := v.flights.DoChan(string(k[:]), func() (any, error) {
		return v.introspectShared(ctx, token, k), nil
	})
	select {
	case res := <-ch:
		r := res.Val.(introResult)
		if r.err != nil {
			ce := *r.err
			return nil, &ce
		}
		if e := checkRevoked(ctx, v.revoker, r.p); e != nil {
			return nil, e
		}
		if e := v.dpop.check(ctx, token, r.p); e != nil {
			return nil, e
		}
		cp := *r.p
		return &cp, nil
	case <-ctx.Done():
		return nil, Unavailable(descIntroUnavailable, fmt.Errorf("%w: gave up waiting for introspection: %w", ErrUnavailable, ctx.Err()))
	}
}

// introspectShared runs one introspection on behalf of every caller
// waiting for token, detached from their contexts, and fills the caches.
// caller is the context of the caller that started it; only the Observer
// (if any) sees it.
func (v *IntrospectionValidator) introspectShared(caller context.Context, token string, k tokenKey) introResult {
	life := v.ctx
	octx, end := v.obs.start(caller, Operation{Kind: OpIntrospect, Source: v.issuer})
	if end != nil {
		var stop context.CancelFunc
		life, stop = withValuesOf(octx, v.ctx)
		defer stop()
	}
	ctx, cancel := context.WithTimeout(life, v.timeout)
	defer cancel()
	p, until, err := v.introspect(ctx, token, k)
	if end != nil {
		if err != nil {
			end(Outcome{Err: err})
		} else {
			end(Outcome{})
		}
	}
	now := v.now()
	if err != nil {
		if err.Status != http.StatusServiceUnavailable && v.neg != nil {
			v.neg.put(k, err, now.Add(v.negTTL))
		}
		return introResult{err: err}
	}
	if v.cache != nil && until.After(now) {
		v.cache.put(k, p, until, nil)
	}
	return introResult{p: p}
}

// introspect asks the endpoint about token and checks the answer. until is
// how long an active result may be cached.
func (v *IntrospectionValidator) introspect(ctx context.Context, token string, k tokenKey) (*Principal, time.Time, *Error) {
	var sk [32]byte
	if v.shared != nil {
		sk = v.sharedKey(k)
		if body, until, ok := v.shared.Get(ctx, sk, v.now()); ok {
			if m, err := decodeIntrospection(body); err == nil {
				p, u, e := v.verdict(m)
				if e == nil && until.Before(u) {
					u = until // never past what the replica that asked stored
				}
				return p, u, e
			}
		}
	}
	endpoint, uerr := v.endpointURL(ctx)
	if uerr != nil {
		return nil, time.Time{}, uerr
	}
	select {
	case v.sem <- struct{}{}:
		defer func() { <-v.sem }()
	case <-ctx.Done():
	}
	if err := ctx.Err(); err != nil {
		// Also when a slot and the deadline arrived together: send nothing.
		return nil, time.Time{}, Unavailable(descIntroUnavailable, fmt.Errorf("%w: waiting for an introspection slot: %w", ErrUnavailable, err))
	}
	body, err := v.post(ctx, endpoint, token)
	if errors.Is(err, errTokenRefused) {
		// The server answered, about this token: it will not introspect it.
		return nil, time.Time{}, InvalidToken(descInactive, fmt.Errorf("%w: introspection: %w", ErrInvalidToken, err))
	}
	if err != nil {
		return nil, time.Time{}, Unavailable(descIntroUnavailable, fmt.Errorf("%w: introspection: %w", ErrUnavailable, err))
	}
	m, err := decodeIntrospection(body)
	if err != nil {
		return nil, time.Time{}, Unavailable(descIntroUnavailable, fmt.Errorf("%w: introspection: %w", ErrUnavailable, err))
	}
	p, until, e := v.verdict(m)
	if v.shared != nil {
		now := v.now()
		switch {
		case e == nil && v.cache != nil && until.After(now):
			v.shared.Put(ctx, sk, body, until)
		case e != nil && e.Status != http.StatusServiceUnavailable && v.neg != nil:
			v.shared.Put(ctx, sk, body, now.Add(v.negTTL))
		}
	}
	return p, until, e
}

// introspectionIdentity digests what, beside the token, an answer depends
// on: the authorization server that gave it and the client it was given to
// (RFC 7662 §2.2 lets a server answer each protected resource differently).
func introspectionIdentity(issuer, endpoint, clientID string) [32]byte {
	h := sha256.New()
	var n [8]byte
	h.Write([]byte("mcpguard introspection v1"))
	for _, s := range [...]string{issuer, endpoint, clientID} {
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	var id [32]byte
	h.Sum(id[:0])
	return id
}

// sharedKey is the SharedCache key of the token whose digest is k.
func (v *IntrospectionValidator) sharedKey(k tokenKey) [32]byte {
	var buf [64]byte
	copy(buf[:32], v.sharedID[:])
	copy(buf[32:], k[:])
	return sha256.Sum256(buf[:])
}

// verdict is the outcome of a decoded answer: inactive, or the principal
// checkResponse makes of it.
func (v *IntrospectionValidator) verdict(m map[string]any) (*Principal, time.Time, *Error) {
	if m["active"] != true {
		return nil, time.Time{}, InvalidToken(descInactive, fmt.Errorf("%w: the authorization server reports the token inactive", ErrInvalidToken))
	}
	return v.checkResponse(m)
}

// post sends the introspection request (RFC 7662 §2.1) and returns the
// body of a 200 response, at most maxRemoteBody bytes. Its errors never
// contain the token or the secret: both travel only in the body and the
// Authorization header.
func (v *IntrospectionValidator) post(ctx context.Context, endpoint, token string) ([]byte, error) {
	form := url.Values{"token": {token}, "token_type_hint": {"access_token"}}
	if v.authMethod == ClientSecretPost {
		form.Set("client_id", v.clientID)
		form.Set("client_secret", v.secret.Reveal())
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, errors.New("building the request failed")
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if v.authMethod == ClientSecretBasic {
		req.SetBasicAuth(url.QueryEscape(v.clientID), url.QueryEscape(v.secret.Reveal()))
	}
	resp, err := v.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		if resp.StatusCode == http.StatusBadRequest {
			var oe struct {
				Error string `json:"error"`
			}
			if json.Unmarshal(b, &oe) == nil && (oe.Error == "unsupported_token_type" || oe.Error == "invalid_token") {
				return nil, fmt.Errorf("%w: status 400 %s", errTokenRefused, oe.Error)
			}
		}
		return nil, fmt.Errorf("POST %s: status %d", endpoint, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxRemoteBody+1))
	if err != nil {
		return nil, fmt.Errorf("POST %s: reading the response: %w", endpoint, err)
	}
	if len(body) > maxRemoteBody {
		return nil, fmt.Errorf("POST %s: response exceeds %d bytes", endpoint, maxRemoteBody)
	}
	return body, nil
}

// errTokenRefused: the introspection endpoint answered 400 with an OAuth
// error about the token itself (unsupported_token_type, invalid_token):
// a verdict on the token, not an outage.
var errTokenRefused = errors.New("the authorization server refused to introspect the token")

// decodeIntrospection parses an RFC 7662 §2.2 response: a JSON object
// without duplicate members (at any depth) whose "active" is a boolean.
func decodeIntrospection(body []byte) (map[string]any, error) {
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil || m == nil {
		return nil, errors.New("the response is not a JSON object")
	}
	if countMembers(body) != totalMembers(m) {
		return nil, errors.New("the response has duplicate members")
	}
	if _, ok := m["active"].(bool); !ok {
		return nil, errors.New(`the response has no boolean "active" member`)
	}
	return m, nil
}

// checkResponse turns the members of an active response into a principal.
func (v *IntrospectionValidator) checkResponse(m map[string]any) (*Principal, time.Time, *Error) {
	now := v.now()
	p := &Principal{Kind: KindUser, Claims: NewClaims(m)}
	bad := func(e *Error) (*Principal, time.Time, *Error) {
		if errors.Is(e.Err, errMalformed) {
			return nil, time.Time{}, InvalidToken(descIntroClaims, e.Err)
		}
		return nil, time.Time{}, e
	}

	dpop := v.dpop.modeOf() != DPoPDisabled
	_, bound := m["cnf"]
	if bound && !dpop {
		return bad(InvalidToken(descSenderConstrained, fmt.Errorf(`%w: the response carries "cnf" (a sender-constrained token)`, ErrInvalidToken)))
	}
	if err := checkTokenUse(m, dpop && bound); err != nil {
		return bad(err)
	}

	until := now.Add(v.ttl)
	exp, present, err := numericDate(m, "exp")
	switch {
	case err != nil:
		return bad(err)
	case present && !now.Before(exp.Add(v.leeway)):
		return bad(InvalidToken(descExpired, fmt.Errorf("%w: %w: exp is %s", ErrInvalidToken, ErrExpired, exp.UTC().Format(time.RFC3339))))
	case present:
		p.Expiry = exp
		if exp.Before(until) {
			until = exp
		}
	}
	nbf, present, err := numericDate(m, "nbf")
	switch {
	case err != nil:
		return bad(err)
	case present && now.Add(v.leeway).Before(nbf):
		return bad(InvalidToken(descNotYetValid, fmt.Errorf("%w: nbf is %s", ErrInvalidToken, nbf.UTC().Format(time.RFC3339))))
	}
	iat, present, err := numericDate(m, "iat")
	switch {
	case err != nil:
		return bad(err)
	case present && iat.After(now.Add(v.leeway)):
		return bad(InvalidToken(descIssuedInFuture, fmt.Errorf("%w: iat is %s", ErrInvalidToken, iat.UTC().Format(time.RFC3339))))
	case present:
		p.IssuedAt = iat
	}

	iss, present, err := stringClaim(m, "iss")
	switch {
	case err != nil:
		return bad(err)
	case present && iss != v.issuer:
		return bad(InvalidToken(descIssuer, fmt.Errorf("%w: iss %s is not the configured issuer", ErrInvalidToken, quoteShort(iss))))
	}
	p.Issuer = v.issuer
	var ok bool
	if p.Subject, ok, err = stringClaim(m, "sub"); err != nil {
		return bad(err)
	}
	if p.TokenID, _, err = stringClaim(m, "jti"); err != nil {
		return bad(err)
	}
	if p.ClientID, err = clientID(m); err != nil {
		return bad(err)
	}
	if !ok || p.Subject == "" {
		// "sub" is optional in RFC 7662 §2.2. A token with no resource
		// owner (client credentials) acts for its client, as RFC 9068
		// §2.2 writes sub for such tokens; with neither, fail closed.
		if p.ClientID == "" {
			return bad(InvalidToken(descMissingClaim, fmt.Errorf("%w: the response has neither sub nor client_id", ErrInvalidToken)))
		}
		p.Subject = p.ClientID
	}
	if p.Audience, err = audienceClaim(m); err != nil {
		return bad(err)
	}
	if _, present := m["aud"]; present || !v.allowNoAud {
		if !slices.ContainsFunc(p.Audience, func(a string) bool { return slices.Contains(v.audiences, a) }) {
			return bad(InvalidToken(descAudience, fmt.Errorf("%w: aud holds none of the accepted audiences", ErrInvalidToken)))
		}
	}

	var serr error
	if v.scopes == nil {
		p.Scopes, serr = standardScopes(p.Claims)
	} else {
		p.Scopes, serr = v.scopes.MapScopes(p.Claims)
	}
	if serr != nil {
		var e *Error
		if errors.As(serr, &e) {
			return bad(e)
		}
		return bad(InvalidToken(descScope, fmt.Errorf("%w: scope mapping: %w", ErrInvalidToken, serr)))
	}
	return p, until, nil
}

// endpointURL returns the configured endpoint or discovers it from the
// issuer's metadata and keeps it. Concurrent callers share one discovery,
// which runs detached from their contexts; after a failure the next one
// starts no sooner than DefaultRefetchCooldown later.
func (v *IntrospectionValidator) endpointURL(ctx context.Context) (string, *Error) {
	if u := v.endpoint.Load(); u != nil {
		return *u, nil
	}
	v.discoMu.Lock()
	call := v.discoCall
	if call == nil {
		now := v.now()
		r := v.discoCooldown.ReserveN(now, 1)
		if !r.OK() || r.DelayFrom(now) > 0 {
			r.CancelAt(now)
			cause := v.discoErr
			v.discoMu.Unlock()
			if cause == nil {
				cause = errors.New("no discovery attempted")
			}
			return "", Unavailable(descIntroUnavailable, fmt.Errorf("%w: no introspection endpoint yet and the discovery cooldown is active: %w", ErrUnavailable, cause))
		}
		call = &fetchCall{done: make(chan struct{})}
		v.discoCall = call
		go v.runDiscovery(call)
	}
	v.discoMu.Unlock()
	select {
	case <-call.done:
	case <-ctx.Done():
		return "", Unavailable(descIntroUnavailable, fmt.Errorf("%w: waiting for endpoint discovery: %w", ErrUnavailable, ctx.Err()))
	}
	if call.err != nil {
		return "", Unavailable(descIntroUnavailable, fmt.Errorf("%w: %w", ErrUnavailable, call.err))
	}
	return *v.endpoint.Load(), nil
}

func (v *IntrospectionValidator) runDiscovery(call *fetchCall) {
	ctx, cancel := context.WithTimeout(v.ctx, v.timeout)
	defer cancel()
	u, err := v.discover(ctx)
	if err == nil {
		v.endpoint.Store(&u)
	}
	v.discoMu.Lock()
	v.discoCall = nil
	v.discoErr = err
	v.discoMu.Unlock()
	call.err = err
	close(call.done)
}

// discover fetches the issuer's metadata and returns its
// introspection_endpoint (RFC 8414 §2, RFC 7662 §4).
func (v *IntrospectionValidator) discover(ctx context.Context) (string, error) {
	return discoverEndpoint(ctx, v.client, v.discoveryURLs, v.issuer, "introspection_endpoint", v.allowHTTP)
}

// noRedirectClient returns a copy of base (or a fresh client) that follows
// no redirect: a 3xx answer becomes an error, so a request carrying a
// token or a client secret is never re-sent to another URL.
func noRedirectClient(base *http.Client) *http.Client {
	c := &http.Client{}
	if base != nil {
		*c = *base
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return errRedirectRefused }
	return c
}

// verdictCache is a bounded LRU of rejections, keyed like tokenCache. It
// is safe for concurrent use.
type verdictCache struct {
	mu       sync.Mutex
	m        map[tokenKey]*verdictEntry
	order    lru.List[verdictEntry, *verdictEntry] // most recently used first
	capacity int
}

type verdictEntry struct {
	lru.Links[verdictEntry]
	key   tokenKey
	err   *Error
	until time.Time
}

func newVerdictCache(size int) *verdictCache {
	return &verdictCache{m: make(map[tokenKey]*verdictEntry), capacity: max(size, 1)}
}

func (c *verdictCache) get(k tokenKey, now time.Time) *Error {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.m[k]
	if e == nil {
		return nil
	}
	if !now.Before(e.until) {
		c.remove(e)
		return nil
	}
	c.order.MoveToFront(e)
	return e.err
}

func (c *verdictCache) put(k tokenKey, err *Error, until time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.m[k]; e != nil {
		c.remove(e)
	}
	if oldest := c.order.Back(); len(c.m) >= c.capacity && oldest != nil {
		c.remove(oldest)
	}
	e := &verdictEntry{key: k, err: err, until: until}
	c.m[k] = e
	c.order.PushFront(e)
}

func (c *verdictCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

func (c *verdictCache) remove(e *verdictEntry) {
	delete(c.m, e.key)
	c.order.Remove(e)
}
