package transport

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/mcpguard/mcpguard/audit"
	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/auth/authtest"
	"github.com/mcpguard/mcpguard/tenancy"
	"github.com/mcpguard/mcpguard/transport/ratelimit"
)

type nopAuthObserver struct{}

func (nopAuthObserver) ObserveCache(context.Context, auth.Cache, bool) {}
func (nopAuthObserver) StartOperation(ctx context.Context, _ auth.Operation) (context.Context, func(auth.Outcome)) {
	return ctx, nil
}

type nopAuditObserver struct{}

func (nopAuditObserver) Observe(context.Context, audit.Event) {}

type nopLimitObserver struct{}

func (nopLimitObserver) ObserveRateLimit(context.Context, ratelimit.Observed) {}

// With no providers, or the API's no-op ones, the Guard installs no
// telemetry anywhere — no audit observer, no validator or limit observer —
// and a warm request allocates exactly what it does without telemetry.
func TestTelemetryOffInstallsNothing(t *testing.T) {
	const resource = "http://127.0.0.1:8080/mcp"
	idp := authtest.NewServer(t)
	tok := idp.MustMint(map[string]any{"aud": resource, "tenant_id": "acme", "scope": "notes:read"})
	type parts struct {
		v   *auth.JWTValidator
		rl  *ratelimit.RequestLimit
		tb  *ratelimit.ToolBudgets
		rec *audit.Recorder
		g   *Guard
		h   http.Handler
	}
	build := func(t *testing.T, mp metric.MeterProvider, tp trace.TracerProvider) parts {
		v, err := auth.NewJWTValidator(auth.JWTConfig{Issuer: idp.Issuer(), Audience: resource})
		require.NoError(t, err)
		t.Cleanup(func() { _ = v.Close() })
		res, err := tenancy.New(tenancy.Config{})
		require.NoError(t, err)
		sink, err := audit.NewJSONSink(io.Discard)
		require.NoError(t, err)
		rec, err := audit.New(audit.Config{Sink: sink})
		require.NoError(t, err)
		rl, err := ratelimit.NewRequestLimit(ratelimit.RequestLimitConfig{Limit: ratelimit.PerSecond(1 << 20)})
		require.NoError(t, err)
		tb, err := ratelimit.NewToolBudgets(ratelimit.ToolBudgetsConfig{Default: ratelimit.Budget{MaxConcurrent: 1 << 20}})
		require.NoError(t, err)
		g, err := New(Config{
			Resource: resource, AuthorizationServers: []string{idp.Issuer()}, Validator: v,
			Policy: notesPolicy(t), Tenancy: res, Audit: rec, RateLimit: rl, ToolBudgets: tb, MeterProvider: mp, TracerProvider: tp,
		})
		require.NoError(t, err)
		h := g.Handler(notesServer(g.ServerOptions()...))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, benchCall(resource, tok))
		require.Equal(t, http.StatusOK, w.Code, w.Body.String())
		return parts{v: v, rl: rl, tb: tb, rec: rec, g: g, h: h}
	}
	warmAllocs := func(h http.Handler) float64 {
		return testing.AllocsPerRun(200, func() {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, benchCall(resource, tok))
			if w.Code != http.StatusOK {
				t.Fatal(w.Code)
			}
		})
	}
	off := build(t, nil, nil)
	offAllocs := warmAllocs(off.h)
	for name, p := range map[string]parts{
		"no providers":    off,
		"no-op providers": build(t, metricnoop.NewMeterProvider(), tracenoop.NewTracerProvider()),
	} {
		t.Run(name, func(t *testing.T) {
			assert.Nil(t, p.g.Telemetry())
			assert.NoError(t, p.v.SetObserver(nopAuthObserver{}), "the validator had no observer")
			assert.NoError(t, p.rl.SetObserver(nopLimitObserver{}), "the limit had no observer")
			assert.NoError(t, p.tb.SetObserver(nopLimitObserver{}), "the tool budgets had no observer")
			assert.NoError(t, p.rec.SetObserver(nopAuditObserver{}), "the recorder had no observer")
		})
	}
	// Measured on fresh stacks (the ones above now have observers).
	noop := build(t, metricnoop.NewMeterProvider(), tracenoop.NewTracerProvider())
	noopAllocs := warmAllocs(noop.h)
	t.Logf("warm request: %v allocs without telemetry, %v with the no-op providers", offAllocs, noopAllocs)
	if raceEnabled {
		// The race detector makes sync.Pool drop items at random, so counts
		// wander by an allocation or two; telemetry's own cost would be
		// several per request.
		assert.InDelta(t, offAllocs, noopAllocs, 2, "the no-op providers cost no allocation on the warm path")
		return
	}
	assert.Equal(t, offAllocs, noopAllocs, "the no-op providers cost no allocation on the warm path")
}
