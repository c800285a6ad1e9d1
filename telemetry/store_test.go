package telemetry

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/mcpguard/mcpguard/audit"
)

// Store failures and recoveries (audit.KindStoreFailure, from package
// redisstore) are counted by store and outcome, whatever their decision,
// whether they come through the audit recorder or straight from a store
// (ReportStore).
func TestObserveStoreEvents(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	tel, err := New(Config{MeterProvider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))})
	require.NoError(t, err)
	t.Cleanup(func() { _ = tel.Close() })
	ctx := context.Background()
	tel.Observe(ctx, audit.Event{Kind: audit.KindStoreFailure, Reason: "dpop_replay:fail_closed", Decision: audit.DecisionDeny, ErrorClass: "store_unavailable"})
	tel.Observe(ctx, audit.Event{Kind: audit.KindStoreFailure, Reason: "obo_tokens:degrade_local", ErrorClass: "store_unavailable"})
	tel.Observe(ctx, audit.Event{Kind: audit.KindStoreFailure, Reason: "obo_tokens:degrade_local", ErrorClass: "store_unavailable"})
	tel.Observe(ctx, audit.Event{Kind: audit.KindStoreFailure, Reason: "dpop_replay:recovered"})
	// As a redisstore.Reporter, without audit: the same counter.
	tel.ReportStore(ctx, "session_counts", "fail_closed")
	tel.ReportStore(ctx, "obo_tokens", "degrade_local")

	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(ctx, &rm))
	got := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != "mcpguard.store.events" {
				continue
			}
			for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
				store, _ := dp.Attributes.Value(keyStore)
				outcome, _ := dp.Attributes.Value(keyOutcome)
				got[store.AsString()+"/"+outcome.AsString()] = dp.Value
			}
		}
	}
	assert.Equal(t, map[string]int64{
		"dpop_replay/fail_closed":    1,
		"obo_tokens/degrade_local":   3,
		"dpop_replay/recovered":      1,
		"session_counts/fail_closed": 1,
	}, got)
}
