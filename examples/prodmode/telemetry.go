package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// observability is what MCPGUARD_METRICS_ADDR and MCPGUARD_OTLP_ENDPOINT
// turn on: providers for transport.Config and what must be closed.
type observability struct {
	meters  metric.MeterProvider
	tracers trace.TracerProvider
	closers []func() error
}

// newObservability starts the /metrics listener (Prometheus text format,
// through the OpenTelemetry Prometheus exporter) and the OTLP/HTTP trace
// exporter when their variables are set. Both off leaves both providers
// nil: transport then installs no telemetry at all.
func newObservability(ctx context.Context, cfg config, logger *slog.Logger) (_ *observability, err error) {
	o := &observability{}
	defer func() {
		if err != nil {
			o.close()
		}
	}()
	if cfg.metricsAddr != "" {
		reg := prometheus.NewRegistry()
		exp, err := otelprom.New(otelprom.WithRegisterer(reg))
		if err != nil {
			return nil, fmt.Errorf("MCPGUARD_METRICS_ADDR: %w", err)
		}
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp))
		o.closers = append(o.closers, func() error { return mp.Shutdown(context.Background()) })
		ln, err := net.Listen("tcp", cfg.metricsAddr)
		if err != nil {
			return nil, fmt.Errorf("MCPGUARD_METRICS_ADDR: %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go func() {
			if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				logger.Warn("metrics listener stopped", "error", err)
			}
		}()
		o.closers = append(o.closers, hs.Close)
		logger.Info("serving metrics", "url", "http://"+ln.Addr().String()+"/metrics")
		o.meters = mp
	}
	if cfg.otlpEndpoint != "" {
		exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(cfg.otlpEndpoint))
		if err != nil {
			return nil, fmt.Errorf("MCPGUARD_OTLP_ENDPOINT: %w", err)
		}
		tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp))
		o.closers = append(o.closers, func() error {
			c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			return tp.Shutdown(c)
		})
		o.tracers = tp
	}
	return o, nil
}

func (o *observability) close() error {
	var errs []error
	for i := len(o.closers) - 1; i >= 0; i-- {
		errs = append(errs, o.closers[i]())
	}
	o.closers = nil
	return errors.Join(errs...)
}
