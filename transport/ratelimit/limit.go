package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

// Sentinel errors, one per class, matched with errors.Is.
var (
	// ErrLimited: the key has used its budget; retry after Decision.RetryAfter.
	ErrLimited = errors.New("ratelimit: rate limit exceeded")
	// ErrUnavailable: the limiter could not decide (Redis unreachable) and
	// is configured to fail closed.
	ErrUnavailable = errors.New("ratelimit: limiter unavailable")
	// ErrConcurrency: a tool already has its maximum number of calls in
	// flight for this key.
	ErrConcurrency = errors.New("ratelimit: too many concurrent calls")
	// ErrTimeout: a tool call ran past its budget's timeout.
	ErrTimeout = errors.New("ratelimit: tool call timed out")
	// ErrConfig: a configuration mistake detected by a constructor, or an
	// invalid Limit passed to a Limiter.
	ErrConfig = errors.New("ratelimit: invalid configuration")
)

// Limit is a rate: Events per Period, with bursts of up to Burst events.
// It is a token bucket holding Burst tokens and refilled at Events/Period
// (equivalently, GCRA with emission interval Period/Events and tolerance
// Burst intervals), so a key idle for long enough may spend Burst events at
// once and then Events per Period.
//
// The zero value is not a valid limit: Events must be positive.
type Limit struct {
	// Events is the number of events allowed per Period. Required (> 0).
	Events int
	// Period is the window Events refer to. Zero means one second.
	Period time.Duration
	// Burst is the largest number of events allowed at once. Zero means
	// Events.
	Burst int
}

// PerSecond returns a limit of n events per second with a burst of n.
func PerSecond(n int) Limit { return Limit{Events: n, Period: time.Second, Burst: n} }

// PerMinute returns a limit of n events per minute with a burst of n.
func PerMinute(n int) Limit { return Limit{Events: n, Period: time.Minute, Burst: n} }

// IsZero reports whether l is the zero Limit (no limit configured).
func (l Limit) IsZero() bool { return l == Limit{} }

// String renders l as "10/1s burst 20".
func (l Limit) String() string {
	l = l.normalize()
	return fmt.Sprintf("%d/%s burst %d", l.Events, l.Period, l.Burst)
}

// Normalize returns l with its documented defaults filled in (Period one
// second, Burst Events), or an error wrapping ErrConfig when l is not a
// valid limit. Limiter implementations outside this package (such as
// redisrate.Limiter) call it on every limit they are given.
func (l Limit) Normalize() (Limit, error) {
	if err := l.check(); err != nil {
		return Limit{}, err
	}
	return l.normalize(), nil
}

// normalize fills the documented defaults.
func (l Limit) normalize() Limit {
	if l.Period == 0 {
		l.Period = time.Second
	}
	if l.Burst == 0 {
		l.Burst = l.Events
	}
	return l
}

// check reports a malformed limit. It does not allocate on success.
func (l Limit) check() error {
	switch {
	case l.Events <= 0:
		return fmt.Errorf("%w: Limit.Events must be positive, got %d", ErrConfig, l.Events)
	case l.Period < 0:
		return fmt.Errorf("%w: Limit.Period must not be negative", ErrConfig)
	case l.Burst < 0:
		return fmt.Errorf("%w: Limit.Burst must not be negative", ErrConfig)
	}
	return nil
}

// Decision is a limiter's answer for one event.
type Decision struct {
	// Allowed reports whether the event may happen now.
	Allowed bool
	// RetryAfter is, when Allowed is false, how long until one event will
	// be allowed. It is zero when Allowed is true.
	RetryAfter time.Duration
	// FailedOpen holds the backend error when the limiter could not decide
	// and allowed the event only because it is configured to fail open. It
	// is nil otherwise. Callers should audit it.
	FailedOpen error
	// Remaining is, when Allowed and HasRemaining, the whole events left
	// in the bucket after this one: the headroom before the limit bites.
	// Memory and redisrate know it; a Limiter that does not leaves
	// HasRemaining false.
	Remaining    int
	HasRemaining bool
}

// Limiter decides whether one more event may happen for a key.
//
// Allow consumes one event from key's budget when it allows it. It returns
// an error wrapping ErrConfig for an invalid limit and ErrUnavailable when a
// backend failed and the limiter fails closed; on error the event must be
// refused. Implementations are safe for concurrent use. A bucket is
// identified by key and limit together and is created on first use with a
// full burst: one limiter serves keys with different limits (per-tenant
// overrides), and the same key under another limit counts in a bucket of
// its own, so a bucket's limit never changes under it.
type Limiter interface {
	Allow(ctx context.Context, key string, limit Limit) (Decision, error)
}

// EventKind says what happened to an event that callers should audit.
type EventKind uint8

const (
	// EventLimited: a request or tool call was refused because its key
	// exhausted its rate (HTTP 429, tool error wrapping ErrLimited).
	EventLimited EventKind = iota + 1
	// EventUnavailable: the limiter failed and the event was refused
	// (fail closed: HTTP 503, tool error wrapping ErrUnavailable).
	EventUnavailable
	// EventFailOpen: the limiter failed and the event was let through
	// uncounted because the limiter is configured to fail open.
	EventFailOpen
	// EventConcurrency: a tool call was refused because the tool already
	// had its maximum number of calls in flight for the key.
	EventConcurrency
	// EventTimeout: a tool call ran past its timeout; its context was
	// cancelled and the caller got an error wrapping ErrTimeout.
	EventTimeout
)

// String returns the kind's lower-case name, e.g. "limited".
func (k EventKind) String() string {
	switch k {
	case EventLimited:
		return "limited"
	case EventUnavailable:
		return "unavailable"
	case EventFailOpen:
		return "fail_open"
	case EventConcurrency:
		return "concurrency"
	case EventTimeout:
		return "timeout"
	}
	return "unknown"
}

// Event describes a refusal, a fail-open or a timeout, for audit. It never
// holds a credential: Key is built from the tenant, issuer, subject, client
// ID and client address only.
type Event struct {
	// Kind says what happened.
	Kind EventKind
	// Namespace is the key namespace of the Middleware or ToolBudgets that
	// decided (RequestLimitConfig.Namespace, ToolBudgetsConfig.Namespace):
	// it names which limit this was.
	Namespace string
	// Key is the limiter key the event was counted against.
	Key string
	// Tool is the tool name for tool budgets; empty at the HTTP level.
	Tool string
	// Limit is the limit that applied; zero for concurrency and timeout
	// events.
	Limit Limit
	// RetryAfter is the delay the client was told to wait, if any.
	RetryAfter time.Duration
	// Err is the internal cause (for example the Redis error), nil when
	// there is none. It is for audit and logs, never for the client.
	Err error
}

// ReporterFunc adapts a function to Reporter.
type ReporterFunc func(ctx context.Context, ev Event)

// ReportLimit calls f(ctx, ev).
func (f ReporterFunc) ReportLimit(ctx context.Context, ev Event) { f(ctx, ev) }

// reporters is the configured Reporter as a list, empty when nil.
func reporters(r Reporter) []Reporter {
	if r == nil {
		return nil
	}
	return []Reporter{r}
}

// Reporter is told the decisions of a RequestLimit or ToolBudgets that
// audit must see: every refusal (EventLimited, EventUnavailable and, for
// tool budgets, EventConcurrency), every EventTimeout of a tool budget and
// every EventFailOpen, with the context of the request or tool call they
// concern (its principal and tenant, when the limit runs after
// authentication, as tool budgets always do). It is the seam through which
// the transport hands limiter decisions to its audit recorder (see
// RequestLimit.Reporting and ToolBudgets.Reporting) so that they are
// recorded as what they are, not inferred from a status code or an error. ReportLimit is called synchronously on the
// request path, before the response is written; it must be fast, must not
// write a response, and must be safe for concurrent use. Event never holds
// a credential.
type Reporter interface {
	ReportLimit(ctx context.Context, ev Event)
}

// DefaultNamespace and DefaultToolNamespace are the key namespaces of a
// Middleware and of ToolBudgets whose Namespace is empty.
const (
	DefaultNamespace     = "http"
	DefaultToolNamespace = "tool"
)

// maxNamespace is the longest Namespace accepted.
const maxNamespace = 32

// checkNamespace fills the default and reports a namespace that is not
// 1-32 of [a-z0-9_.-].
func checkNamespace(field string, ns *string, def string) error {
	if *ns == "" {
		*ns = def
	}
	if len(*ns) > maxNamespace {
		return fmt.Errorf("%w: %s is longer than %d bytes", ErrConfig, field, maxNamespace)
	}
	for i := 0; i < len(*ns); i++ {
		c := (*ns)[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_' || c == '.' || c == '-') {
			return fmt.Errorf("%w: %s %q: only a-z, 0-9, '_', '.' and '-' are allowed", ErrConfig, field, *ns)
		}
	}
	return nil
}

// Observer is told of every decision a RequestLimit or ToolBudgets makes —
// events allowed within their budget as well as refusals — for metrics;
// package telemetry's *Telemetry implements it. Install it with the
// RequestLimit's or ToolBudgets' SetObserver (transport does for its request
// limits and tool budgets when telemetry is on). It is called synchronously on the request
// path, so it must be fast, must not block and must be safe for concurrent
// use.
type Observer interface {
	ObserveRateLimit(ctx context.Context, d Observed)
}

// Observed is one decision as an Observer sees it. It holds no key (keys
// name callers); the caller's tenant is in ctx.
type Observed struct {
	// Namespace names the limiter: the RequestLimit's or the ToolBudgets'
	// namespace.
	Namespace string
	// Tool is the tool name for tool budgets; empty at the HTTP level.
	Tool string
	// Kind is zero for an event allowed within its budget, else what
	// happened: EventLimited, EventUnavailable, EventConcurrency (refused)
	// or EventFailOpen (let through uncounted).
	Kind EventKind
	// Limit is the rate limit that applied; zero for a tool budget
	// without one.
	Limit Limit
	// Remaining and HasRemaining are the Decision's (see Decision).
	Remaining    int
	HasRemaining bool
}

// observerSlot holds an Observer; reading it is one atomic load.
type observerSlot struct {
	p atomic.Pointer[observerBox]
}

type observerBox struct{ o Observer }

func (s *observerSlot) set(o Observer, who string) error {
	if o == nil {
		return fmt.Errorf("%w: %s.SetObserver: nil observer", ErrConfig, who)
	}
	if !s.p.CompareAndSwap(nil, &observerBox{o}) {
		return fmt.Errorf("%w: %s.SetObserver: it already has an observer", ErrConfig, who)
	}
	return nil
}

func (s *observerSlot) observe(ctx context.Context, d Observed) {
	if b := s.p.Load(); b != nil {
		b.o.ObserveRateLimit(ctx, d)
	}
}
