package telemetry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/obo"
)

var (
	_ auth.Observer = (*Telemetry)(nil)
	_ obo.Observer  = (*Telemetry)(nil)
)

// Span names of the child spans.
const (
	SpanValidate      = "mcpguard.auth.validate"
	SpanIntrospect    = "mcpguard.auth.introspect"
	SpanFetchKeys     = "mcpguard.jwks.fetch"
	SpanTokenExchange = "mcpguard.token_exchange"
)

// maxKeySets caps the key sets reported by the JWKS gauges (they come from
// configuration, so the cap is only a backstop).
const maxKeySets = 16

// hooks holds the instruments of the auth and obo hooks.
type hooks struct {
	lookups     metric.Int64Counter
	jwksFetches metric.Int64Counter
	// cacheOpts are the prebuilt attribute options of each cache × result,
	// so a warm lookup builds no attribute set.
	cacheOpts map[cacheResult][]metric.AddOption

	keySets   *folder
	jwksMu    sync.Mutex
	keySetFns []func() auth.KeySetInfo // ObserveKeySet's
	jwksReg   metric.Registration
}

type cacheResult struct {
	cache string
	hit   bool
}

// Cache names in mcpguard.cache.lookups.
const (
	cacheToken         = "token"
	cacheIntrospection = "introspection"
	cacheExchange      = "exchange"
)

func (t *Telemetry) newHooks() error {
	h := &t.hooks
	h.keySets = newFolder(maxKeySets)
	var err error
	if h.lookups, err = t.meter.Int64Counter("mcpguard.cache.lookups",
		metric.WithUnit("{lookup}"),
		metric.WithDescription("Lookups in the verified-token, introspection and exchanged-token caches, by cache and result (hit or miss).")); err != nil {
		return err
	}
	h.cacheOpts = make(map[cacheResult][]metric.AddOption, 6)
	for _, c := range [...]string{cacheToken, cacheIntrospection, cacheExchange} {
		for _, hit := range [...]bool{true, false} {
			res := "miss"
			if hit {
				res = "hit"
			}
			h.cacheOpts[cacheResult{c, hit}] = []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(keyCache.String(c), keyResult.String(res)))}
		}
	}
	if h.jwksFetches, err = t.meter.Int64Counter("mcpguard.jwks.fetches",
		metric.WithUnit("{fetch}"),
		metric.WithDescription("JWK Set fetches by key set and outcome (ok or error, with error.type).")); err != nil {
		return err
	}
	keys, err := t.meter.Int64ObservableGauge("mcpguard.jwks.keys",
		metric.WithUnit("{key}"),
		metric.WithDescription("Usable keys in the JWK Set held, after its last successful fetch."))
	if err != nil {
		return err
	}
	age, err := t.meter.Float64ObservableGauge("mcpguard.jwks.age",
		metric.WithUnit("s"),
		metric.WithDescription("Time since the JWK Set held was last fetched successfully."))
	if err != nil {
		return err
	}
	h.jwksReg, err = t.meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		h.jwksMu.Lock()
		fns := h.keySetFns
		h.jwksMu.Unlock()
		now := time.Now()
		for _, fn := range fns {
			info := fn()
			if info.Source == "" && info.Keys == 0 {
				continue // no key set (a chain without a JWT validator)
			}
			opt := metric.WithAttributes(keyKeySet.String(h.keySets.fold(recordedURI(info.Source))))
			o.ObserveInt64(keys, int64(info.Keys), opt)
			if !info.Fetched.IsZero() {
				o.ObserveFloat64(age, max(now.Sub(info.Fetched).Seconds(), 0), opt)
			}
		}
		return nil
	}, keys, age)
	return err
}

// ObserveKeySet reports info() — a validator's KeySet method, such as
// (*auth.JWTValidator).KeySet — as the gauges mcpguard.jwks.keys and
// mcpguard.jwks.age each time the meter is collected, so the age grows
// between fetches and a set fetched before telemetry was on is seen.
// info must be cheap, must not block and must be safe for concurrent use.
// transport calls it for Config.Validator.
func (t *Telemetry) ObserveKeySet(info func() auth.KeySetInfo) error {
	if info == nil {
		return fmt.Errorf("%w: ObserveKeySet: nil function", ErrConfig)
	}
	t.hooks.jwksMu.Lock()
	defer t.hooks.jwksMu.Unlock()
	if len(t.hooks.keySetFns) >= maxKeySets {
		return fmt.Errorf("%w: ObserveKeySet: at most %d key sets", ErrConfig, maxKeySets)
	}
	t.hooks.keySetFns = append(slices.Clip(t.hooks.keySetFns), info)
	return nil
}

// ObserveCache implements auth.Observer: it counts the lookup in
// mcpguard.cache.lookups.
func (t *Telemetry) ObserveCache(ctx context.Context, c auth.Cache, hit bool) {
	if t == nil || !t.metricsOn {
		return
	}
	name := cacheToken
	if c == auth.CacheIntrospection {
		name = cacheIntrospection
	}
	t.hooks.lookups.Add(ctx, 1, t.hooks.cacheOpts[cacheResult{name, hit}]...)
}

// StartOperation implements auth.Observer: a cold validation, an
// introspection and a JWK Set fetch each get a child span of ctx's (the
// request's MCP span, or the validation a fetch is part of), with
// error.type on failure; a fetch also counts in mcpguard.jwks.fetches.
func (t *Telemetry) StartOperation(ctx context.Context, op auth.Operation) (context.Context, func(auth.Outcome)) {
	if t == nil {
		return ctx, nil
	}
	fetch := op.Kind == auth.OpFetchKeys
	if !t.tracesOn && !(fetch && t.metricsOn) {
		return ctx, nil
	}
	var span trace.Span
	if t.tracesOn {
		name, kind := SpanValidate, trace.SpanKindInternal
		switch op.Kind {
		case auth.OpIntrospect:
			name, kind = SpanIntrospect, trace.SpanKindClient
		case auth.OpFetchKeys:
			name, kind = SpanFetchKeys, trace.SpanKindClient
		}
		attrs := make([]attribute.KeyValue, 0, 2)
		if op.Source != "" {
			attrs = append(attrs, keySource.String(cut(recordedURI(op.Source))))
		}
		ctx, span = t.tracer.Start(ctx, name, trace.WithSpanKind(kind), trace.WithAttributes(attrs...))
	}
	return ctx, func(out auth.Outcome) {
		errType := ""
		if out.Err != nil {
			errType = authErrorType(op.Kind, out.Err)
		}
		// The count first: whoever sees the span ended sees the fetch counted.
		if fetch && t.metricsOn {
			t.fetched(ctx, op.Source, errType)
		}
		if span != nil {
			if fetch && out.Err == nil {
				span.SetAttributes(keyKeys.Int(out.Keys))
			}
			if errType != "" {
				span.SetAttributes(keyErrorType.String(errType))
				span.SetStatus(codes.Error, errType)
			}
			span.End()
		}
	}
}

// fetched records one JWK Set fetch.
func (t *Telemetry) fetched(ctx context.Context, source, errType string) {
	src := t.hooks.keySets.fold(recordedURI(source))
	attrs := make([]attribute.KeyValue, 0, 3)
	attrs = append(attrs, keyKeySet.String(src))
	if errType != "" {
		attrs = append(attrs, keyOutcome.String("error"), keyErrorType.String(errType))
	} else {
		attrs = append(attrs, keyOutcome.String("ok"))
	}
	t.hooks.jwksFetches.Add(ctx, 1, metric.WithAttributes(attrs...))
}

// authErrorType is a failure's error.type: the RFC 6750 code of a
// validation that refused the token, "unavailable" when it could not be
// checked, and for a fetch "timeout", "canceled" or "fetch_failed". Never
// error text, which may quote the request.
func authErrorType(kind auth.OpKind, err error) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case kind == auth.OpFetchKeys:
		return "fetch_failed"
	}
	e := auth.AsError(err)
	switch {
	case e.Code != "":
		return e.Code
	case e.Status == http.StatusServiceUnavailable:
		return "unavailable"
	}
	return "_OTHER"
}

// ObserveExchange implements obo.Observer
// (obo.Config{Observer: guard.Telemetry()}): it counts the exchanged-token
// cache lookup (a hit, or a miss for a call that exchanged or waited for
// another's exchange; with the Exchanger's cache disabled every call is a
// miss). A nil *Telemetry ignores the event, so the wiring works with
// telemetry off.
func (t *Telemetry) ObserveExchange(ctx context.Context, ev obo.ExchangeEvent) {
	if t == nil {
		return
	}
	// A call without a credential fails before the cache is looked at.
	if t.metricsOn && !errors.Is(ev.Err, obo.ErrNoCredential) {
		t.hooks.lookups.Add(ctx, 1, t.hooks.cacheOpts[cacheResult{cacheExchange, ev.Cached}]...)
	}
}

// StartExchange implements obo.Observer: each exchange that goes to the
// token endpoint, and each Token call that fails before it, gets a CLIENT
// span under ctx's span (the request's MCP span), started when the
// exchange starts and returned in the context the exchange's HTTP requests
// are made with, so the span of an instrumented HTTP client is its child.
// It carries mcpguard.grant, the target's audience and, on failure,
// error.type (the class the error's AuditClass gives, never error text).
func (t *Telemetry) StartExchange(ctx context.Context, ev obo.ExchangeEvent) (context.Context, func(error)) {
	if t == nil || !t.tracesOn {
		return ctx, nil
	}
	attrs := make([]attribute.KeyValue, 0, 2)
	attrs = append(attrs, keyGrant.String(ev.Flavor.Grant()))
	if aud := exchangeAudience(ev); aud != "" {
		attrs = append(attrs, keyAudience.String(cut(recordedURI(aud))))
	}
	ctx, span := t.tracer.Start(ctx, SpanTokenExchange, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	return ctx, func(err error) {
		if err != nil {
			class := "_OTHER"
			var c interface{ AuditClass() (string, bool) }
			if errors.As(err, &c) {
				if cl, _ := c.AuditClass(); cl != "" {
					class = cl
				}
			}
			class = t.reasons.fold(class)
			span.SetAttributes(keyErrorType.String(class))
			span.SetStatus(codes.Error, class)
		}
		span.End()
	}
}

// exchangeAudience is the target's audience, else its resource (both from
// the server's configuration, never from the request).
func exchangeAudience(ev obo.ExchangeEvent) string {
	if ev.Audience != "" {
		return ev.Audience
	}
	return ev.Resource
}
