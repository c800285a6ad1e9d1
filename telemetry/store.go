package telemetry

import (
	"context"

	"go.opentelemetry.io/otel/metric"
)

// ReportStore counts a shared store's failure or recovery in
// mcpguard.store.events by store and outcome ("fail_closed",
// "degrade_local", "recovered"). It makes a *Telemetry a
// redisstore.Reporter for deployments that want the metric without an
// audit log (redisstore.Config{Reporter: tel}); with an audit log, pass the
// *audit.Recorder instead: its observer counts the same events. A nil
// *Telemetry ignores the report.
func (t *Telemetry) ReportStore(ctx context.Context, store, outcome string) {
	if t == nil || !t.metricsOn {
		return
	}
	t.countStore(ctx, store, outcome)
}

// countStore adds one to mcpguard.store.events; store and outcome come
// from fixed lists and are capped anyway.
func (t *Telemetry) countStore(ctx context.Context, store, outcome string) {
	t.storeEvents.Add(ctx, 1, metric.WithAttributes(keyStore.String(cut(store)), keyOutcome.String(cut(outcome))))
}
