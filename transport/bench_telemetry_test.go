package transport

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/mcpguard/mcpguard/audit"
	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/auth/authtest"
	"github.com/mcpguard/mcpguard/tenancy"
)

// BenchmarkStackTelemetry is one warm tools/call through the prod stack
// (JWT cache hit, tenancy, policy, audit to a discarding sink) without
// telemetry, with the OpenTelemetry no-op providers, and with the real SDK
// (every span sampled and ended, metrics aggregated by a manual reader
// that is never collected: the recording cost without an exporter's).
func BenchmarkStackTelemetry(b *testing.B) {
	const resource = "http://127.0.0.1:8080/mcp"
	idp := authtest.NewServer(b)
	tok := idp.MustMint(map[string]any{"aud": resource, "tenant_id": "acme", "scope": "notes:read"})
	build := func(b *testing.B, mp metric.MeterProvider, tp trace.TracerProvider) http.Handler {
		v, err := auth.NewJWTValidator(auth.JWTConfig{Issuer: idp.Issuer(), Audience: resource})
		require.NoError(b, err)
		res, err := tenancy.New(tenancy.Config{})
		require.NoError(b, err)
		sink, err := audit.NewJSONSink(io.Discard)
		require.NoError(b, err)
		rec, err := audit.New(audit.Config{Sink: sink})
		require.NoError(b, err)
		g, err := New(Config{
			Resource: resource, AuthorizationServers: []string{idp.Issuer()}, Validator: v,
			Policy: notesPolicy(b), Tenancy: res, Audit: rec, MeterProvider: mp, TracerProvider: tp,
		})
		require.NoError(b, err)
		return g.Handler(notesServer(g.ServerOptions()...))
	}
	run := func(b *testing.B, h http.Handler) {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, benchCall(resource, tok))
		require.Equal(b, http.StatusOK, w.Code, w.Body.String())
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, benchCall(resource, tok))
			if w.Code != http.StatusOK {
				b.Fatal(w.Code)
			}
		}
	}
	b.Run("off", func(b *testing.B) { run(b, build(b, nil, nil)) })
	b.Run("noop", func(b *testing.B) { run(b, build(b, metricnoop.NewMeterProvider(), tracenoop.NewTracerProvider())) })
	b.Run("sdk", func(b *testing.B) {
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
		tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()))
		run(b, build(b, mp, tp))
	})
}
