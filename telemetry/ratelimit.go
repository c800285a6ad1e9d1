package telemetry

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/mcpguard/mcpguard/tenancy"
	"github.com/mcpguard/mcpguard/transport/ratelimit"
)

var _ ratelimit.Observer = (*Telemetry)(nil)

// maxLimiters caps the limiter namespaces reported (they come from
// configuration, so the cap is only a backstop).
const maxLimiters = 32

// ObserveRateLimit implements ratelimit.Observer: every decision of a
// request limit or tool budget counts in mcpguard.rate_limit.decisions by
// limiter (its namespace) and outcome ("allowed", or the refusal's kind:
// "limited", "unavailable", "concurrency"; "fail_open" for one let through
// uncounted), and an allowed event whose limiter knows its bucket records
// the fraction of the burst left in mcpguard.rate_limit.headroom: how
// close the caller is to the limit (0: the next event may be refused).
// mcpguard.tenant (TenantAttribute) and gen_ai.tool.name (ToolAttribute,
// tool budgets) are added when enabled, capped as elsewhere. A nil
// *Telemetry ignores the decision.
func (t *Telemetry) ObserveRateLimit(ctx context.Context, d ratelimit.Observed) {
	if t == nil || !t.metricsOn {
		return
	}
	outcome := "allowed"
	if d.Kind != 0 {
		outcome = d.Kind.String()
	}
	attrs := make([]attribute.KeyValue, 0, 4)
	attrs = append(attrs, keyLimiter.String(t.limiters.fold(d.Namespace)), keyOutcome.String(outcome))
	if t.tenantAttr {
		if tn, ok := tenancy.FromContext(ctx); ok && tn != "" {
			attrs = append(attrs, keyTenant.String(t.tenants.fold(tn)))
		}
	}
	if t.toolAttr && d.Tool != "" {
		attrs = append(attrs, keyTool.String(t.tools.fold(d.Tool)))
	}
	opt := metric.WithAttributes(attrs...)
	t.rlDecisions.Add(ctx, 1, opt)
	if d.Kind == 0 && d.HasRemaining && d.Limit.Burst > 0 {
		t.rlHeadroom.Record(ctx, min(float64(d.Remaining)/float64(d.Limit.Burst), 1), opt)
	}
}
