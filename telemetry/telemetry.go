package telemetry

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/mcpguard/mcpguard/audit"
)

// ScopeName is the instrumentation scope of every tracer and meter.
const ScopeName = "github.com/mcpguard/mcpguard"

// Limits on what becomes an attribute.
const (
	// MaxValueLen bounds, in bytes, every attribute value taken from a
	// request (names, URIs, ids); longer values are cut.
	MaxValueLen = 256
	// DefaultMaxTenants and DefaultMaxTools are the default caps on
	// distinct tenant and tool values in metric attributes.
	DefaultMaxTenants = 100
	DefaultMaxTools   = 100
	// maxReasons caps distinct reason values (a backstop: reasons come
	// from mcpguard's code).
	maxReasons = 64
	// Other is the value that stands for every value past a cap.
	Other = "_other"
)

// ErrConfig reports an unusable Config.
var ErrConfig = errors.New("telemetry: invalid configuration")

// Config configures a Telemetry. The zero value uses the global providers
// (no-ops until the application installs an SDK) and no opt-in attributes.
type Config struct {
	// MeterProvider and TracerProvider are where metrics and spans go. Nil
	// means otel.GetMeterProvider() / otel.GetTracerProvider().
	MeterProvider  metric.MeterProvider
	TracerProvider trace.TracerProvider
	// Propagator reads the W3C trace context of the HTTP request and of
	// params._meta. Nil means propagation.TraceContext{}.
	Propagator propagation.TextMapPropagator

	// TenantAttribute adds mcpguard.tenant to decision and rate-limit
	// metrics and to spans, for at most MaxTenants distinct tenants
	// (default DefaultMaxTenants); the rest count as Other.
	TenantAttribute bool
	MaxTenants      int
	// ToolAttribute adds gen_ai.tool.name / gen_ai.prompt.name to the
	// operation-duration metric, for at most MaxTools distinct names
	// (default DefaultMaxTools), taken only by authenticated, dispatched
	// requests for a tool or prompt the server has (see Dispatched); every
	// other name is Other. Spans always carry them (cut to MaxValueLen).
	ToolAttribute bool
	MaxTools      int
	// SubjectHashKey, when set (at least 16 bytes), adds
	// mcpguard.subject_hash to spans: the first 16 bytes of
	// HMAC-SHA256(key, issuer NUL subject), hex. Without it no span says
	// who called.
	SubjectHashKey []byte
}

// Telemetry turns mcpguard's decisions into spans and metrics. Build it
// with New; it is safe for concurrent use. It implements audit.Observer.
type Telemetry struct {
	tracer     trace.Tracer
	propagator propagation.TextMapPropagator
	subjectKey []byte

	tenants, tools, reasons *folder
	tenantAttr, toolAttr    bool
	// metricsOn and tracesOn are false for the API's no-op providers,
	// whose work is then skipped entirely.
	metricsOn, tracesOn bool

	opDuration       metric.Float64Histogram
	decisions        metric.Int64Counter
	rateLimited      metric.Int64Counter
	storeEvents      metric.Int64Counter
	exchangeDuration metric.Float64Histogram

	mu        sync.Mutex
	recorders []*audit.Recorder
	reg       metric.Registration
	// sessionsReg is ObserveSessions' callback.
	sessionsReg metric.Registration
	meter       metric.Meter

	hooks hooks // the auth and obo hooks' instruments

	limiters    *folder
	rlDecisions metric.Int64Counter
	rlHeadroom  metric.Float64Histogram
}

// New builds a Telemetry from cfg.
func New(cfg Config) (*Telemetry, error) {
	mp, tp := cfg.MeterProvider, cfg.TracerProvider
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	if cfg.MaxTenants < 0 || cfg.MaxTools < 0 {
		return nil, fmt.Errorf("%w: MaxTenants and MaxTools must not be negative", ErrConfig)
	}
	if cfg.SubjectHashKey != nil && len(cfg.SubjectHashKey) < 16 {
		return nil, fmt.Errorf("%w: SubjectHashKey must be at least 16 bytes", ErrConfig)
	}
	t := &Telemetry{
		tracer:     tp.Tracer(ScopeName),
		propagator: cfg.Propagator,
		subjectKey: append([]byte(nil), cfg.SubjectHashKey...),
		tenants:    newFolder(orDefault(cfg.MaxTenants, DefaultMaxTenants)),
		tools:      newFolder(orDefault(cfg.MaxTools, DefaultMaxTools)),
		reasons:    newFolder(maxReasons),
		tenantAttr: cfg.TenantAttribute,
		toolAttr:   cfg.ToolAttribute,
		metricsOn:  !isNoopMeter(mp),
		tracesOn:   !isNoopTracer(tp),
	}
	if len(t.subjectKey) == 0 {
		t.subjectKey = nil
	}
	if t.propagator == nil {
		t.propagator = propagation.TraceContext{}
	}
	t.meter = mp.Meter(ScopeName)
	var err error
	if t.opDuration, err = t.meter.Float64Histogram("mcp.server.operation.duration",
		metric.WithUnit("s"),
		metric.WithDescription("MCP request duration as observed on the receiver from the time it was received until the result or ack is sent."),
		metric.WithExplicitBucketBoundaries(0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60, 120, 300)); err != nil {
		return nil, fmt.Errorf("telemetry: %w", err)
	}
	if t.decisions, err = t.meter.Int64Counter("mcpguard.decisions",
		metric.WithUnit("{decision}"),
		metric.WithDescription("Access decisions by event kind, result and reason, as audited.")); err != nil {
		return nil, fmt.Errorf("telemetry: %w", err)
	}
	if t.rateLimited, err = t.meter.Int64Counter("mcpguard.rate_limit.refusals",
		metric.WithUnit("{request}"),
		metric.WithDescription("Requests and tool calls refused by a rate limit or tool budget.")); err != nil {
		return nil, fmt.Errorf("telemetry: %w", err)
	}
	if t.storeEvents, err = t.meter.Int64Counter("mcpguard.store.events",
		metric.WithUnit("{event}"),
		metric.WithDescription("Shared-store (Redis) failures and recoveries by store and outcome (fail_closed, degrade_local, recovered), as audited.")); err != nil {
		return nil, fmt.Errorf("telemetry: %w", err)
	}
	if t.exchangeDuration, err = t.meter.Float64Histogram("mcpguard.token_exchange.duration",
		metric.WithUnit("s"),
		metric.WithDescription("Downstream token exchanges by grant and outcome."),
		metric.WithExplicitBucketBoundaries(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)); err != nil {
		return nil, fmt.Errorf("telemetry: %w", err)
	}
	if err := t.newHooks(); err != nil {
		return nil, fmt.Errorf("telemetry: %w", err)
	}
	t.limiters = newFolder(maxLimiters)
	if t.rlDecisions, err = t.meter.Int64Counter("mcpguard.rate_limit.decisions",
		metric.WithUnit("{decision}"),
		metric.WithDescription("Rate-limit and tool-budget decisions by limiter and outcome (allowed, limited, unavailable, concurrency, fail_open).")); err != nil {
		return nil, fmt.Errorf("telemetry: %w", err)
	}
	if t.rlHeadroom, err = t.meter.Float64Histogram("mcpguard.rate_limit.headroom",
		metric.WithUnit("1"),
		metric.WithDescription("Fraction of the burst left in the caller's bucket after an allowed event, where the limiter knows it."),
		metric.WithExplicitBucketBoundaries(0, 0.05, 0.1, 0.25, 0.5, 0.75, 1)); err != nil {
		return nil, fmt.Errorf("telemetry: %w", err)
	}
	return t, nil
}

// Active reports whether either provider can record anything: false when
// both are the OpenTelemetry API's no-op providers, in which case
// transport installs nothing and a request costs what it costs without
// telemetry.
func (t *Telemetry) Active() bool { return t.metricsOn || t.tracesOn }

func isNoopMeter(mp metric.MeterProvider) bool {
	switch mp.(type) {
	case metricnoop.MeterProvider, *metricnoop.MeterProvider:
		return true
	}
	return false
}

func isNoopTracer(tp trace.TracerProvider) bool {
	switch tp.(type) {
	case tracenoop.TracerProvider, *tracenoop.TracerProvider:
		return true
	}
	return false
}

// ObserveRecorder reports rec's queue depth and drop count as
// mcpguard.audit.queue.depth and mcpguard.audit.events.dropped. Call it
// once per recorder; Close unregisters the callbacks.
func (t *Telemetry) ObserveRecorder(rec *audit.Recorder) error {
	if rec == nil {
		return fmt.Errorf("%w: ObserveRecorder: nil recorder", ErrConfig)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, r := range t.recorders {
		if r == rec {
			return nil
		}
	}
	t.recorders = append(t.recorders, rec)
	if t.reg != nil {
		if err := t.reg.Unregister(); err != nil {
			return fmt.Errorf("telemetry: %w", err)
		}
		t.reg = nil
	}
	depth, err := t.meter.Int64ObservableGauge("mcpguard.audit.queue.depth",
		metric.WithUnit("{event}"), metric.WithDescription("Audit events waiting in an asynchronous recorder's queue."))
	if err != nil {
		return fmt.Errorf("telemetry: %w", err)
	}
	dropped, err := t.meter.Int64ObservableCounter("mcpguard.audit.events.dropped",
		metric.WithUnit("{event}"), metric.WithDescription("Audit events the recorder lost (queue full, or recorded after close)."))
	if err != nil {
		return fmt.Errorf("telemetry: %w", err)
	}
	recs := append([]*audit.Recorder(nil), t.recorders...)
	t.reg, err = t.meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		var q, d int64
		for _, r := range recs {
			st := r.Stats()
			q += int64(st.Queued)
			d += int64(st.Dropped)
		}
		o.ObserveInt64(depth, q)
		o.ObserveInt64(dropped, d)
		return nil
	}, depth, dropped)
	if err != nil {
		return fmt.Errorf("telemetry: %w", err)
	}
	return nil
}

// Close unregisters the callbacks ObserveRecorder and ObserveSessions installed. Spans and
// counters need no closing; the providers belong to the application.
func (t *Telemetry) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	var errs []error
	for _, r := range []*metric.Registration{&t.reg, &t.sessionsReg, &t.hooks.jwksReg} {
		if *r != nil {
			errs = append(errs, (*r).Unregister())
			*r = nil
		}
	}
	return errors.Join(errs...)
}

// subjectHash is the keyed hash of a principal for spans, "" when no key
// is configured.
func (t *Telemetry) subjectHash(issuer, subject string) string {
	if t.subjectKey == nil || subject == "" {
		return ""
	}
	m := hmac.New(sha256.New, t.subjectKey)
	m.Write([]byte(issuer))
	m.Write([]byte{0})
	m.Write([]byte(subject))
	return hex.EncodeToString(m.Sum(nil)[:16])
}

func orDefault(n, def int) int {
	if n == 0 {
		return def
	}
	return n
}

// cut bounds a request-supplied value.
func cut(s string) string {
	if len(s) <= MaxValueLen {
		return s
	}
	// Cut at a UTF-8 boundary.
	i := MaxValueLen
	for i > 0 && s[i]&0xC0 == 0x80 {
		i--
	}
	return s[:i]
}

// folder admits at most max distinct values; later ones become Other.
type folder struct {
	mu   sync.RWMutex
	max  int
	seen map[string]struct{}
}

func newFolder(max int) *folder {
	return &folder{max: max, seen: make(map[string]struct{}, max)}
}

func (f *folder) fold(v string) string {
	v = cut(v)
	f.mu.RLock()
	_, ok := f.seen[v]
	full := len(f.seen) >= f.max
	f.mu.RUnlock()
	if ok {
		return v
	}
	if full {
		return Other
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.seen[v]; ok {
		return v
	}
	if len(f.seen) >= f.max {
		return Other
	}
	f.seen[v] = struct{}{}
	return v
}

// Attribute keys.
const (
	keyMethod        = attribute.Key("mcp.method.name")
	keyTool          = attribute.Key("gen_ai.tool.name")
	keyPrompt        = attribute.Key("gen_ai.prompt.name")
	keyOperation     = attribute.Key("gen_ai.operation.name")
	keyResourceURI   = attribute.Key("mcp.resource.uri")
	keyRequestID     = attribute.Key("jsonrpc.request.id")
	keyProtocol      = attribute.Key("mcp.protocol.version")
	keySession       = attribute.Key("mcp.session.id")
	keyErrorType     = attribute.Key("error.type")
	keyClientAddress = attribute.Key("client.address")
	keyClientPort    = attribute.Key("client.port")
	keyRPCStatus     = attribute.Key("rpc.response.status_code")
	keyNetTransport  = attribute.Key("network.transport")
	keyNetProtocol   = attribute.Key("network.protocol.name")
	keyHTTPStatus    = attribute.Key("http.response.status_code")

	keyDecision    = attribute.Key("mcpguard.decision")
	keyReason      = attribute.Key("mcpguard.reason")
	keyEvent       = attribute.Key("mcpguard.event")
	keyTenant      = attribute.Key("mcpguard.tenant")
	keyKind        = attribute.Key("mcpguard.principal.kind")
	keySubjectHash = attribute.Key("mcpguard.subject_hash")
	keyGrant       = attribute.Key("mcpguard.grant")
	keyOutcome     = attribute.Key("mcpguard.outcome")
	keyStore       = attribute.Key("mcpguard.store")
	keyMissing     = attribute.Key("mcpguard.missing_scopes")
	keyCache       = attribute.Key("mcpguard.cache")
	keyResult      = attribute.Key("mcpguard.result")
	keyKeySet      = attribute.Key("mcpguard.key_set")
	keyKeys        = attribute.Key("mcpguard.keys")
	keySource      = attribute.Key("mcpguard.source")
	keyAudience    = attribute.Key("mcpguard.audience")
	keyLimiter     = attribute.Key("mcpguard.limiter")
)
