package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcpguard/mcpguard/internal/httpx"
	"github.com/mcpguard/mcpguard/tenancy"
)

// DefaultMaxInFlightKeys is the in-flight key cap of a ToolBudgets whose
// MaxInFlightKeys is zero.
const DefaultMaxInFlightKeys = 65536

// Budget is what one tool call may use. Each zero field imposes nothing
// of its own; in overrides it inherits (see ToolBudgetsConfig).
type Budget struct {
	// Rate limits calls of the tool per key (see ToolBudgetsConfig.KeyBy).
	Rate Limit
	// MaxConcurrent caps the calls of the tool in flight per key on this
	// replica. A call that ran past Timeout still counts until its
	// handler returns.
	MaxConcurrent int
	// Timeout bounds a call: the handler's context is cancelled when it
	// expires and the caller gets an error wrapping ErrTimeout without
	// waiting for a handler that ignores its context.
	Timeout time.Duration
}

// IsZero reports whether b sets nothing.
func (b Budget) IsZero() bool { return b == Budget{} }

// inherit fills b's zero fields from parent.
func (b Budget) inherit(parent Budget) Budget {
	if b.Rate.IsZero() {
		b.Rate = parent.Rate
	}
	if b.MaxConcurrent == 0 {
		b.MaxConcurrent = parent.MaxConcurrent
	}
	if b.Timeout == 0 {
		b.Timeout = parent.Timeout
	}
	return b
}

func (b Budget) check(field string) error {
	if !b.Rate.IsZero() {
		if err := b.Rate.check(); err != nil {
			return fmt.Errorf("%s.Rate: %w", field, err)
		}
	}
	if b.MaxConcurrent < 0 {
		return fmt.Errorf("%w: %s.MaxConcurrent must not be negative", ErrConfig, field)
	}
	if b.Timeout < 0 {
		return fmt.Errorf("%w: %s.Timeout must not be negative", ErrConfig, field)
	}
	return nil
}

// TenantBudget overrides budgets for one tenant.
type TenantBudget struct {
	// Default overrides ToolBudgetsConfig.Default for this tenant.
	Default Budget
	// Tools overrides budgets of named tools for this tenant.
	Tools map[string]Budget
}

// ToolBudgetsConfig configures per-tool budgets.
//
// The budget of a call of tool T by tenant N is built field by field: each
// field of Budget comes from the first of these that sets it (non-zero):
// Tenants[N].Tools[T], Tools[T], Tenants[N].Default, Default. So a
// tool-specific setting beats a tenant-wide one, and a tenant override
// that sets only Rate keeps the global Timeout. A field left zero
// everywhere imposes nothing.
type ToolBudgetsConfig struct {
	// Limiter holds the rate budgets. Required when any Budget sets Rate.
	Limiter Limiter
	// Default applies to every tool.
	Default Budget
	// Tools sets budgets for named tools. The map is copied.
	Tools map[string]Budget
	// Tenants overrides budgets per tenant (tenancy.FromContext). The maps
	// are copied.
	Tenants map[string]TenantBudget
	// KeyBy selects what rate and concurrency budgets are counted per,
	// besides the tool: Tenant, Subject, Client or a combination; Address
	// is not available to tool middleware. Zero means DefaultParts
	// (Tenant|Subject). Calls carrying none of the selected parts share
	// one "anonymous" budget per tool.
	KeyBy Parts
	// MaxInFlightKeys caps the number of keys tracked for MaxConcurrent
	// (only keys with calls in flight are tracked). When it is reached,
	// calls under new keys are refused with ErrConcurrency. Zero means
	// DefaultMaxInFlightKeys.
	MaxInFlightKeys int
	// Namespace keeps these budgets' keys apart from every other user of
	// the same Limiter (see RequestLimitConfig.Namespace). 1-32 of
	// [a-z0-9_.-]; empty means DefaultToolNamespace.
	Namespace string
	// Reporter, when set, is told of every refusal (EventLimited,
	// EventUnavailable, EventConcurrency), every EventTimeout and every
	// EventFailOpen, for audit (see Reporter).
	Reporter Reporter
}

// ToolBudgets enforces per-tool budgets — rate, concurrency, timeout — as
// mcp-go tool middleware. Refusals reach the client as JSON-RPC errors (see
// ToolError).
//
// ToolBudgets is safe for concurrent use. Construct it with NewToolBudgets.
type ToolBudgets struct {
	ns      string // Namespace
	scope   string // Namespace + "|"
	lim     Limiter
	def     Budget
	tools   map[string]Budget
	tenants map[string]tenantBudgets
	parts   Parts
	obs     *observerSlot // shared with the copies Reporting makes
	reports []Reporter    // the configured Reporter, then those of Reporting
	flight  *inFlight     // shared with the copies Reporting makes
}

// inFlight counts the calls in flight per key for MaxConcurrent.
type inFlight struct {
	mu      sync.Mutex
	n       map[string]int
	maxKeys int
}

type tenantBudgets struct {
	def   Budget
	tools map[string]Budget
}

// NewToolBudgets returns tool budgets configured by cfg.
func NewToolBudgets(cfg ToolBudgetsConfig) (*ToolBudgets, error) {
	needLimiter := !cfg.Default.Rate.IsZero()
	if err := cfg.Default.check("ToolBudgetsConfig.Default"); err != nil {
		return nil, err
	}
	for name, b := range cfg.Tools {
		if name == "" {
			return nil, fmt.Errorf("%w: ToolBudgetsConfig.Tools: empty tool name", ErrConfig)
		}
		if err := b.check(fmt.Sprintf("ToolBudgetsConfig.Tools[%q]", name)); err != nil {
			return nil, err
		}
		needLimiter = needLimiter || !b.Rate.IsZero()
	}
	for t, tb := range cfg.Tenants {
		if t == "" {
			return nil, fmt.Errorf("%w: ToolBudgetsConfig.Tenants: empty tenant", ErrConfig)
		}
		if err := tb.Default.check(fmt.Sprintf("ToolBudgetsConfig.Tenants[%q].Default", t)); err != nil {
			return nil, err
		}
		needLimiter = needLimiter || !tb.Default.Rate.IsZero()
		for name, b := range tb.Tools {
			if name == "" {
				return nil, fmt.Errorf("%w: ToolBudgetsConfig.Tenants[%q].Tools: empty tool name", ErrConfig, t)
			}
			if err := b.check(fmt.Sprintf("ToolBudgetsConfig.Tenants[%q].Tools[%q]", t, name)); err != nil {
				return nil, err
			}
			needLimiter = needLimiter || !b.Rate.IsZero()
		}
	}
	if needLimiter && cfg.Limiter == nil {
		return nil, fmt.Errorf("%w: ToolBudgetsConfig.Limiter is required when a budget sets Rate", ErrConfig)
	}
	if cfg.KeyBy == 0 {
		cfg.KeyBy = DefaultParts
	}
	if cfg.KeyBy&^(Tenant|Subject|Client) != 0 {
		return nil, fmt.Errorf("%w: ToolBudgetsConfig.KeyBy: only Tenant, Subject and Client are available to tool budgets", ErrConfig)
	}
	if cfg.MaxInFlightKeys < 0 {
		return nil, fmt.Errorf("%w: ToolBudgetsConfig.MaxInFlightKeys must not be negative", ErrConfig)
	}
	if cfg.MaxInFlightKeys == 0 {
		cfg.MaxInFlightKeys = DefaultMaxInFlightKeys
	}
	if err := checkNamespace("ToolBudgetsConfig.Namespace", &cfg.Namespace, DefaultToolNamespace); err != nil {
		return nil, err
	}

	tb := &ToolBudgets{
		ns:      cfg.Namespace,
		scope:   cfg.Namespace + "|",
		lim:     cfg.Limiter,
		def:     normalizeBudget(cfg.Default),
		tools:   make(map[string]Budget, len(cfg.Tools)),
		tenants: make(map[string]tenantBudgets, len(cfg.Tenants)),
		parts:   cfg.KeyBy,
		reports: reporters(cfg.Reporter),
		obs:     new(observerSlot),
		flight:  &inFlight{n: make(map[string]int), maxKeys: cfg.MaxInFlightKeys},
	}
	for name, b := range cfg.Tools {
		tb.tools[name] = normalizeBudget(b.inherit(cfg.Default))
	}
	for t, o := range cfg.Tenants {
		def := o.Default.inherit(cfg.Default)
		tools := make(map[string]Budget, len(cfg.Tools)+len(o.Tools))
		for name, b := range cfg.Tools {
			tools[name] = normalizeBudget(b.inherit(def))
		}
		for name, b := range o.Tools {
			tools[name] = normalizeBudget(b.inherit(cfg.Tools[name]).inherit(def))
		}
		tb.tenants[t] = tenantBudgets{def: normalizeBudget(def), tools: tools}
	}
	return tb, nil
}

func normalizeBudget(b Budget) Budget {
	if !b.Rate.IsZero() {
		b.Rate = b.Rate.normalize()
	}
	return b
}

// BudgetFor returns the effective budget of tool for tenant (empty when the
// call has no tenant), after inheritance.
func (tb *ToolBudgets) BudgetFor(tenant, tool string) Budget {
	if tenant != "" {
		if o, ok := tb.tenants[tenant]; ok {
			if b, ok := o.tools[tool]; ok {
				return b
			}
			return o.def
		}
	}
	if b, ok := tb.tools[tool]; ok {
		return b
	}
	return tb.def
}

// ToolError is what a tool call refused by a budget returns to mcp-go.
//
// mcp-go answers a tool handler's error with a JSON-RPC error, code -32603
// (internal error), whose message is Error(): an mcp-go client's CallTool
// returns an error matching mcp.ErrInternalError whose text ends with, for
// example, `tool "search": rate limit exceeded, retry after 2s`. Error()
// is built from a fixed table, the tool name and the delay only; the cause
// (a Redis error, say) is reachable through Unwrap for audit but never sent.
type ToolError struct {
	// Tool is the name of the refused tool.
	Tool string
	// Namespace is the key namespace of the budgets that refused it.
	Namespace string
	// Kind is one of ErrLimited, ErrUnavailable, ErrConcurrency, ErrTimeout.
	Kind error
	// RetryAfter is the delay advised to the client, zero when none.
	RetryAfter time.Duration
	// Cause is the internal cause, nil when there is none.
	Cause error
}

// Error returns the client-safe message.
func (e *ToolError) Error() string {
	var text string
	switch e.Kind {
	case ErrLimited:
		text = "rate limit exceeded"
	case ErrUnavailable:
		text = "rate limiter unavailable"
	case ErrConcurrency:
		text = "too many concurrent calls"
	case ErrTimeout:
		text = "timed out"
	default:
		text = "refused by budget"
	}
	s := "tool " + strconv.Quote(e.Tool) + ": " + text
	if e.RetryAfter > 0 {
		s += ", retry after " + strconv.FormatInt(httpx.RetryAfterSeconds(e.RetryAfter), 10) + "s"
	}
	return s
}

// RateLimited reports whether the call was refused before it ran (rate,
// concurrency, or a fail-closed limiter), not timed out: audit records such
// a refusal as rate_limited (see audit.ToolMiddleware).
func (e *ToolError) RateLimited() bool { return e.Kind != ErrTimeout }

// LimitReason returns the fixed code audit records as the refusal's
// reason: "rate_limited" (ErrLimited), "limiter_unavailable"
// (ErrUnavailable: the limiter could not decide and fails closed),
// "concurrency_limited" (ErrConcurrency) or "budget_timeout" (ErrTimeout:
// the call ran and was cut off by its budget's Timeout).
func (e *ToolError) LimitReason() string {
	switch e.Kind {
	case ErrLimited:
		return "rate_limited"
	case ErrUnavailable:
		return "limiter_unavailable"
	case ErrConcurrency:
		return "concurrency_limited"
	case ErrTimeout:
		return "budget_timeout"
	}
	return ""
}

// LimitNamespace returns the key namespace of the budgets that refused the
// call (ToolBudgetsConfig.Namespace), which audit records as the limit.
func (e *ToolError) LimitNamespace() string { return e.Namespace }

// Unwrap returns Kind and Cause, so errors.Is matches both.
func (e *ToolError) Unwrap() []error {
	if e.Cause == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Cause}
}

// Middleware is the mcp-go tool middleware; pass the method value to
// server.WithToolHandlerMiddleware or MCPServer.Use. Per call, it resolves
// the budget (BudgetFor), takes a concurrency slot, spends one event of the
// tool's rate, and runs next under the timeout. It adds nothing to a call
// whose budget is zero.
func (tb *ToolBudgets) ToolMiddleware(next server.ToolHandlerFunc) server.ToolHandlerFunc {
	return func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		tool := req.Params.Name
		tenant, _ := tenancy.FromContext(ctx)
		b := tb.BudgetFor(tenant, tool)
		if b.IsZero() {
			return next(ctx, req)
		}
		var buf [128]byte
		k := key(ctx, buf[:], tb.scope, tool, tb.parts, nil, nil)

		release := func() {}
		if b.MaxConcurrent > 0 {
			if !tb.acquire(k, b.MaxConcurrent) {
				tb.obs.observe(ctx, Observed{Namespace: tb.ns, Tool: tool, Kind: EventConcurrency, Limit: b.Rate})
				tb.event(ctx, Event{Kind: EventConcurrency, Key: k, Tool: tool})
				return nil, &ToolError{Tool: tool, Namespace: tb.ns, Kind: ErrConcurrency}
			}
			release = func() { tb.release(k) }
		}
		seen := Observed{Namespace: tb.ns, Tool: tool, Limit: b.Rate}
		if !b.Rate.IsZero() {
			d, err := tb.lim.Allow(ctx, k, b.Rate)
			seen.Remaining, seen.HasRemaining = d.Remaining, d.HasRemaining
			switch {
			case err != nil:
				release()
				seen.Kind = EventUnavailable
				tb.obs.observe(ctx, seen)
				tb.event(ctx, Event{Kind: EventUnavailable, Key: k, Tool: tool, Limit: b.Rate, RetryAfter: d.RetryAfter, Err: err})
				return nil, &ToolError{Tool: tool, Namespace: tb.ns, Kind: ErrUnavailable, RetryAfter: d.RetryAfter, Cause: err}
			case !d.Allowed:
				release()
				seen.Kind = EventLimited
				tb.obs.observe(ctx, seen)
				tb.event(ctx, Event{Kind: EventLimited, Key: k, Tool: tool, Limit: b.Rate, RetryAfter: d.RetryAfter})
				return nil, &ToolError{Tool: tool, Namespace: tb.ns, Kind: ErrLimited, RetryAfter: d.RetryAfter}
			case d.FailedOpen != nil:
				seen.Kind = EventFailOpen
				tb.event(ctx, Event{Kind: EventFailOpen, Key: k, Tool: tool, Limit: b.Rate, Err: d.FailedOpen})
			}
		}
		tb.obs.observe(ctx, seen)
		if b.Timeout <= 0 {
			defer release()
			return next(ctx, req)
		}
		return tb.runWithTimeout(ctx, next, req, b.Timeout, k, release)
	}
}

type callResult struct {
	res      *mcp.CallToolResult
	err      error
	panicked bool
	panicVal any
}

// runWithTimeout runs next on its own goroutine under a deadline, as
// http.TimeoutHandler does: the caller gets an answer when the deadline
// passes even if next ignores its context, and release runs only when next
// has returned, so an abandoned handler keeps its concurrency slot. A panic
// in next is re-raised on the caller's goroutine when it happens in time.
func (tb *ToolBudgets) runWithTimeout(ctx context.Context, next server.ToolHandlerFunc, req mcp.CallToolRequest, timeout time.Duration, k string, release func()) (*mcp.CallToolResult, error) {
	tctx, cancel := context.WithTimeout(ctx, timeout)
	done := make(chan callResult, 1)
	go func() {
		defer release()
		defer func() {
			if p := recover(); p != nil {
				done <- callResult{panicked: true, panicVal: p}
			}
		}()
		res, err := next(tctx, req)
		done <- callResult{res: res, err: err}
	}()
	select {
	case r := <-done:
		cancel()
		if r.panicked {
			panic(r.panicVal)
		}
		if r.err != nil && errors.Is(tctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil {
			return nil, tb.timedOut(ctx, req.Params.Name, k, timeout, r.err)
		}
		return r.res, r.err
	case <-tctx.Done():
		cancel()
		if err := ctx.Err(); err != nil {
			// The caller went away; there is no one to tell about a budget.
			return nil, err
		}
		return nil, tb.timedOut(ctx, req.Params.Name, k, timeout, context.DeadlineExceeded)
	}
}

func (tb *ToolBudgets) timedOut(ctx context.Context, tool, k string, timeout time.Duration, cause error) error {
	tb.event(ctx, Event{Kind: EventTimeout, Key: k, Tool: tool, Err: cause})
	return &ToolError{Tool: tool, Namespace: tb.ns, Kind: ErrTimeout, Cause: fmt.Errorf("after %s: %w", timeout, cause)}
}

func (tb *ToolBudgets) acquire(k string, limit int) bool {
	f := tb.flight
	f.mu.Lock()
	defer f.mu.Unlock()
	n, ok := f.n[k]
	if !ok && len(f.n) >= f.maxKeys {
		return false
	}
	if n >= limit {
		return false
	}
	f.n[k] = n + 1
	return true
}

func (tb *ToolBudgets) release(k string) {
	f := tb.flight
	f.mu.Lock()
	defer f.mu.Unlock()
	if n := f.n[k]; n <= 1 {
		delete(f.n, k)
	} else {
		f.n[k] = n - 1
	}
}

// inFlight returns the number of calls in flight under all keys (those of
// the copies Reporting made included: they share the counts).
func (tb *ToolBudgets) inFlight() int {
	f := tb.flight
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.n {
		n += c
	}
	return n
}

// Namespace returns the key namespace these budgets live in
// (ToolBudgetsConfig.Namespace).
func (tb *ToolBudgets) Namespace() string { return tb.ns }

// Reporting returns a copy of tb that, besides its configured Reporter, tells rep
// of every event it reports — refusals (EventLimited, EventUnavailable,
// EventConcurrency), EventTimeout and EventFailOpen — with the event's
// Namespace and Tool set. The copy shares tb's Limiter (and so its rate
// budgets), its concurrency counts (a call in flight through either counts
// for both) and its Observer (set on either, it is told of both); tb is not
// changed. The transport uses it to hand the budgets' decisions to its
// audit recorder (transport.Config.ToolBudgets). A nil rep returns tb.
func (tb *ToolBudgets) Reporting(rep Reporter) *ToolBudgets {
	if rep == nil {
		return tb
	}
	c := *tb
	c.reports = append(slices.Clone(tb.reports), rep)
	return &c
}

// SetObserver makes o the ToolBudgets' Observer: it is told of every
// decision ToolMiddleware makes for a call with a budget, allowed or not. It
// may be called once; a second call, or a nil o, is an error wrapping
// ErrConfig. Budgets given to transport.Config.ToolBudgets need no call:
// the transport installs its telemetry when it has one.
func (tb *ToolBudgets) SetObserver(o Observer) error { return tb.obs.set(o, "ToolBudgets") }

func (tb *ToolBudgets) event(ctx context.Context, ev Event) {
	ev.Namespace = tb.ns
	for _, rep := range tb.reports {
		rep.ReportLimit(ctx, ev)
	}
}
