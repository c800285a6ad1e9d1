package transport

import (
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/mcpguard/mcpguard/transport/ratelimit"
)

// In each era, every rate-limit and tool-budget decision is counted —
// allowed ones as well as refusals — by limiter and outcome, and allowed
// ones record the fraction of the burst left.
func TestStackTelemetryRateLimit(t *testing.T) {
	for _, era := range eras {
		t.Run(era, func(t *testing.T) {
			lim, err := ratelimit.NewMemory(ratelimit.MemoryConfig{})
			require.NoError(t, err)
			perUser, err := ratelimit.NewRequestLimit(ratelimit.RequestLimitConfig{Limiter: lim, Limit: ratelimit.PerSecond(1000),
				Tenants: map[string]ratelimit.Limit{"slow": {Events: 1, Period: time.Hour, Burst: 3}}})
			require.NoError(t, err)
			budgets, err := ratelimit.NewToolBudgets(ratelimit.ToolBudgetsConfig{Limiter: lim,
				Tools: map[string]ratelimit.Budget{"whoami": {Rate: ratelimit.Limit{Events: 1, Period: time.Hour, Burst: 1}}}})
			require.NoError(t, err)
			ts := newTelemetryStack(t, func(c *Config) {
				c.RateLimit = perUser
				c.ToolBudgets = budgets
				c.Telemetry.TenantAttribute = true
				c.Telemetry.ToolAttribute = true
			})
			require.ErrorIs(t, budgets.SetObserver(ts.guard.Telemetry()), ratelimit.ErrConfig,
				"the Guard installed its telemetry on the budgets itself")

			hs := &hookStack{url: ts.url}
			bob := ts.token(t, map[string]any{"sub": "bob", "scope": "notes:read", "tenant_id": "slow"})
			sid := hs.open(t, era, bob) // 2025-11-25: the initialize spends one event
			calls := 4
			if sid != "" {
				calls = 3
			}
			var statuses []int
			for range calls {
				status, _ := hs.call(t, era, sid, bob, "whoami")
				statuses = append(statuses, status)
			}
			assert.Equal(t, http.StatusTooManyRequests, statuses[len(statuses)-1], "the fourth request is over the tenant's burst")

			toolRefusals := int64(1)
			if era == mcp.ProtocolVersion20260728 {
				toolRefusals = 2 // three calls reached the tool budget
			}
			m := ts.metrics(t)
			assert.Equal(t, map[string]int64{
				"mcpguard.limiter=http,mcpguard.outcome=allowed,mcpguard.tenant=slow":                         3,
				"mcpguard.limiter=http,mcpguard.outcome=limited,mcpguard.tenant=slow":                         1,
				"gen_ai.tool.name=whoami,mcpguard.limiter=tool,mcpguard.outcome=allowed,mcpguard.tenant=slow": 1,
				"gen_ai.tool.name=whoami,mcpguard.limiter=tool,mcpguard.outcome=limited,mcpguard.tenant=slow": toolRefusals,
			}, sums(t, m["mcpguard.rate_limit.decisions"]))

			hr, ok := m["mcpguard.rate_limit.headroom"].(metricdata.Histogram[float64])
			require.True(t, ok)
			got := map[string][2]float64{}
			for _, dp := range hr.DataPoints {
				got[attrString(dp.Attributes)] = [2]float64{float64(dp.Count), dp.Sum}
			}
			assert.Equal(t, map[string][2]float64{
				// 2/3, 1/3 and 0 of the burst left after the three allowed requests.
				"mcpguard.limiter=http,mcpguard.outcome=allowed,mcpguard.tenant=slow": {3, 1},
				// The tool's one-event burst is spent by its one allowed call.
				"gen_ai.tool.name=whoami,mcpguard.limiter=tool,mcpguard.outcome=allowed,mcpguard.tenant=slow": {1, 0},
			}, got)
		})
	}
}

// Tool budgets report to one observer: budgets that already have one are a
// configuration error for a Guard with telemetry, named by the field.
func TestNewRefusesObservedToolBudgets(t *testing.T) {
	budgets, err := ratelimit.NewToolBudgets(ratelimit.ToolBudgetsConfig{Default: ratelimit.Budget{MaxConcurrent: 1}})
	require.NoError(t, err)
	require.NoError(t, budgets.SetObserver(nopLimitObserver{}))
	_, err = New(Config{Mode: ModeDev, Addr: "127.0.0.1:1", Policy: notesPolicy(t), Logger: slogTo(io.Discard),
		ToolBudgets: budgets, MeterProvider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))})
	require.ErrorIs(t, err, ErrConfig)
	assert.Contains(t, err.Error(), "Config.ToolBudgets")
}
