package telemetry

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel/metric"
)

// ObserveSessions reports live() as the gauge mcpguard.sessions.live each
// time the meter is collected. live must be cheap, safe for concurrent use
// and must not block; the transport passes its in-memory session count.
// Call it at most once; Close unregisters the callback.
func (t *Telemetry) ObserveSessions(live func() int) error {
	if live == nil {
		return fmt.Errorf("%w: ObserveSessions: nil function", ErrConfig)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.sessionsReg != nil {
		return fmt.Errorf("%w: ObserveSessions: already observing", ErrConfig)
	}
	g, err := t.meter.Int64ObservableGauge("mcpguard.sessions.live",
		metric.WithUnit("{session}"),
		metric.WithDescription("Stateful (pre-2026-07-28) session slots held: live sessions and initializes in flight."))
	if err != nil {
		return fmt.Errorf("telemetry: %w", err)
	}
	t.sessionsReg, err = t.meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		o.ObserveInt64(g, int64(live()))
		return nil
	}, g)
	if err != nil {
		return fmt.Errorf("telemetry: %w", err)
	}
	return nil
}
