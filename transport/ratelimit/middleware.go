package ratelimit

import (
	"fmt"
	"maps"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/mcpguard/mcpguard/internal/clientip"
	"github.com/mcpguard/mcpguard/internal/httpx"
	"github.com/mcpguard/mcpguard/tenancy"
)

// RequestLimitConfig configures request-level rate limiting. Limiter and
// Limit are required; every other field's zero value is a secure default.
type RequestLimitConfig struct {
	// Limiter holds the budgets: a *Memory for one replica, a
	// redisrate.Limiter to share budgets across replicas. Nil means a new
	// in-memory limiter of this middleware's own (NewMemory with the
	// default key cap), which is the common single-replica case.
	Limiter Limiter
	// Limit applies to every key unless Tenants overrides it. Required.
	Limit Limit
	// Tenants overrides Limit for the requests of a tenant
	// (tenancy.FromContext), e.g. a premium tenant gets more. With
	// KeyBy including Subject, the override is each user's budget in that
	// tenant. The map is copied.
	Tenants map[string]Limit
	// KeyBy selects what a budget is keyed by. Zero means DefaultParts
	// (Tenant|Subject). Requests carrying none of the selected identity
	// parts (unauthenticated traffic) are keyed by client address.
	KeyBy Parts
	// TrustedProxies are the reverse proxies and load balancers allowed
	// to name the client in X-Forwarded-For. Only when the connection's
	// peer is inside one of them is the header read, right to left,
	// skipping trusted hops. Empty means the header is never read, which
	// is right when clients connect directly. The slice is copied.
	TrustedProxies []netip.Prefix
	// Namespace keeps this middleware's budgets apart from every other
	// user of the same Limiter: two middlewares (or a middleware and tool
	// budgets) with different namespaces never share a bucket, even for the
	// same caller. Give each middleware sharing a Limiter its own (for
	// example "preauth", "unauth", "http"); replicas sharing a Redis budget
	// use the same one. 1-32 of [a-z0-9_.-]; empty means DefaultNamespace.
	Namespace string
	// Reporter, when set, is told of every refusal (EventLimited,
	// EventUnavailable) and every EventFailOpen, for audit (see Reporter;
	// ReporterFunc adapts a function).
	Reporter Reporter
}

// RequestLimit limits the rate of HTTP requests per key, answering 429
// with Retry-After when a budget is spent. Its Middleware method is the
// HTTP middleware.
//
// RequestLimit is safe for concurrent use. Construct it with
// NewRequestLimit.
type RequestLimit struct {
	ns      string // namespace
	scope   string // namespace + "|": the key prefix
	lim     Limiter
	limit   Limit
	tenants map[string]Limit
	parts   Parts
	trusted []netip.Prefix
	obs     *observerSlot // shared with the copies Reporting makes
	reports []Reporter    // the configured Reporter, then those of Reporting
}

// NewRequestLimit returns request-level rate limiting configured by cfg.
func NewRequestLimit(cfg RequestLimitConfig) (*RequestLimit, error) {
	if cfg.Limiter == nil {
		m, err := NewMemory(MemoryConfig{})
		if err != nil {
			return nil, err
		}
		cfg.Limiter = m
	}
	if err := cfg.Limit.check(); err != nil {
		return nil, fmt.Errorf("RequestLimitConfig.Limit: %w", err)
	}
	for t, l := range cfg.Tenants {
		if t == "" {
			return nil, fmt.Errorf("%w: RequestLimitConfig.Tenants: empty tenant", ErrConfig)
		}
		if err := l.check(); err != nil {
			return nil, fmt.Errorf("RequestLimitConfig.Tenants[%q]: %w", t, err)
		}
	}
	if cfg.KeyBy == 0 {
		cfg.KeyBy = DefaultParts
	}
	if cfg.KeyBy&^allParts != 0 {
		return nil, fmt.Errorf("%w: RequestLimitConfig.KeyBy: unknown parts %#x", ErrConfig, uint8(cfg.KeyBy&^allParts))
	}
	if err := checkNamespace("RequestLimitConfig.Namespace", &cfg.Namespace, DefaultNamespace); err != nil {
		return nil, err
	}
	trusted, i, ok := clientip.Prefixes(cfg.TrustedProxies)
	if !ok {
		return nil, fmt.Errorf("%w: RequestLimitConfig.TrustedProxies[%d] is not a valid prefix", ErrConfig, i)
	}
	return &RequestLimit{
		ns:      cfg.Namespace,
		scope:   cfg.Namespace + "|",
		lim:     cfg.Limiter,
		limit:   cfg.Limit.normalize(),
		tenants: normalizeLimits(cfg.Tenants),
		parts:   cfg.KeyBy,
		trusted: trusted,
		reports: reporters(cfg.Reporter),
		obs:     new(observerSlot),
	}, nil
}

func normalizeLimits(in map[string]Limit) map[string]Limit {
	out := maps.Clone(in)
	for k, v := range out {
		out[k] = v.normalize()
	}
	return out
}

// Namespace returns the key namespace this middleware's budgets live in.
func (m *RequestLimit) Namespace() string { return m.ns }

// Reporting returns a copy of m that, besides its configured Reporter, tells rep
// of every event it reports (refusals and fail-opens), with the event's
// Namespace set. The copy shares m's Limiter, and so its budgets, and its
// Observer (set on either, it is told of both); m is not changed. The
// transport uses it to hand each limit's decisions to its audit
// recorder. A nil rep returns m.
func (m *RequestLimit) Reporting(rep Reporter) *RequestLimit {
	if rep == nil {
		return m
	}
	c := *m
	c.reports = append(slices.Clone(m.reports), rep)
	return &c
}

// Decide decides whether r may proceed and consumes one event from its
// budget if so, without writing anything; an error (wrapping
// ErrUnavailable or ErrConfig) means r must be refused. It reports what it
// decided, as Middleware does:
// a refusal (an error, or a Decision not Allowed) as EventUnavailable or
// EventLimited, a fail-open as EventFailOpen, to every
// Reporter. It writes nothing: it is for callers that answer the request
// themselves (the transport's unauthenticated-request limit).
func (m *RequestLimit) Decide(r *http.Request) (Decision, error) {
	var buf [128]byte
	d, kb, limit, err := m.check(r, &buf)
	switch {
	case err != nil:
		m.event(r, Event{Kind: EventUnavailable, Key: string(kb), Limit: limit, RetryAfter: d.RetryAfter, Err: err})
	case !d.Allowed:
		m.event(r, Event{Kind: EventLimited, Key: string(kb), Limit: limit, RetryAfter: d.RetryAfter})
	case d.FailedOpen != nil:
		m.event(r, Event{Kind: EventFailOpen, Key: string(kb), Limit: limit, Err: d.FailedOpen})
	}
	return d, err
}

// check decides r against its limit. The key it returns is in buf when it
// fits (no allocation on the warm path); copy it before keeping it.
func (m *RequestLimit) check(r *http.Request, buf *[128]byte) (Decision, []byte, Limit, error) {
	ctx := r.Context()
	limit := m.limit
	if len(m.tenants) > 0 {
		if t, ok := tenancy.FromContext(ctx); ok {
			if l, ok := m.tenants[t]; ok {
				limit = l
			}
		}
	}
	k := appendKey(ctx, buf[:], m.scope, "", m.parts, r, m.trusted)
	var d Decision
	var err error
	if mem, ok := m.lim.(*Memory); ok {
		d, err = mem.allowBytes(k, limit, mem.now())
	} else {
		d, err = m.lim.Allow(ctx, string(k), limit)
	}
	if m.obs.p.Load() != nil {
		var kind EventKind
		switch {
		case err != nil:
			kind = EventUnavailable
		case !d.Allowed:
			kind = EventLimited
		case d.FailedOpen != nil:
			kind = EventFailOpen
		}
		m.obs.observe(ctx, Observed{Namespace: m.ns, Kind: kind, Limit: limit, Remaining: d.Remaining, HasRemaining: d.HasRemaining})
	}
	return d, k, limit, err
}

// Middleware returns next wrapped by the limit. A request within its budget
// reaches next unchanged. A request over budget gets 429 Too Many Requests
// (RFC 6585 §4) with Retry-After in whole seconds, rounded up (RFC 9110
// §10.2.3); a request the limiter could not decide on, with a fail-closed
// limiter, gets 503 Service Unavailable with Retry-After. Response bodies
// are fixed texts; causes go to the Reporters only. A request let through by a
// fail-open limiter reaches next and is reported as EventFailOpen (one
// event per request while the backend is down).
func (m *RequestLimit) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d, err := m.Decide(r)
		switch {
		case err != nil:
			refuse(w, http.StatusServiceUnavailable, d.RetryAfter, "rate limiter unavailable")
		case !d.Allowed:
			refuse(w, http.StatusTooManyRequests, d.RetryAfter, "rate limit exceeded")
		default:
			next.ServeHTTP(w, r)
		}
	})
}

// SetObserver makes o the RequestLimit's Observer: it is told of every
// decision Middleware and Decide make, allowed or not. It may be called
// once; a second call, or a nil o, is an error wrapping ErrConfig.
func (m *RequestLimit) SetObserver(o Observer) error { return m.obs.set(o, "RequestLimit") }

func (m *RequestLimit) event(r *http.Request, ev Event) {
	ev.Namespace = m.ns
	for _, rep := range m.reports {
		rep.ReportLimit(r.Context(), ev)
	}
}

func refuse(w http.ResponseWriter, status int, retry time.Duration, text string) {
	w.Header().Set("Retry-After", strconv.FormatInt(httpx.RetryAfterSeconds(retry), 10))
	http.Error(w, text, status)
}
