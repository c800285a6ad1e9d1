package transport

import (
	"context"

	"github.com/mcpguard/mcpguard/audit"
	"github.com/mcpguard/mcpguard/transport/ratelimit"
)

// limitAudit is the ratelimit.Reporter the Guard gives each of its request
// limits (PreAuthRateLimit, UnauthenticatedRateLimit, RateLimit) and its
// ToolBudgets when Config.Audit is set: the limit's own decision becomes
// the audit record, named by the limit's namespace, instead of a guess
// from the status.
//
//   - A request limit's refusal annotates the request's edge event
//     (audit.Middleware, outermost) as KindRateLimited with the namespace
//     and the reason rate_limited (429) or limiter_unavailable (503), and
//     the principal and tenant when the limit runs after authentication.
//   - A tool budget's refusal (rate, concurrency, fail-closed limiter) or
//     timeout is recorded once, by the audit tool middleware, which is
//     outermost among the tool middleware and so gets the budget's
//     decision as a ratelimit.ToolError: KindRateLimited, DecisionDeny,
//     its reason (LimitReason), namespace, tool, caller, tenant, argument
//     names and duration. Recording it here too would count it twice.
//   - A request or tool call a failing limiter let through uncounted is
//     recorded here as an event of its own, which nothing else sees:
//     KindRateLimited, DecisionAllow, reason limiter_fail_open, with the
//     tool for a tool budget.
//
// The limiter key is never recorded (it holds subjects and addresses in a
// limiter's own format); the namespace, tool, principal and tenant say the
// same. Nor is the cause (Event.Err), whose text may name a backend.
type limitAudit struct {
	rec   *audit.Recorder
	tools bool // reporting for ToolBudgets, not a request limit
}

// ReportLimit implements ratelimit.Reporter.
func (a limitAudit) ReportLimit(ctx context.Context, ev ratelimit.Event) {
	if a.tools {
		if ev.Kind == ratelimit.EventFailOpen {
			e := audit.NewEvent(ctx, audit.KindRateLimited)
			e.Decision = audit.DecisionAllow
			e.Reason = audit.ReasonLimiterFailOpen
			e.Limit = ev.Namespace
			e.Tool = ev.Tool
			_ = a.rec.Record(ctx, e)
		}
		return
	}
	switch ev.Kind {
	case ratelimit.EventLimited:
		audit.AnnotateRateLimited(ctx, ev.Namespace, audit.ReasonRateLimited)
	case ratelimit.EventUnavailable:
		audit.AnnotateRateLimited(ctx, ev.Namespace, audit.ReasonLimiterUnavailable)
	case ratelimit.EventFailOpen:
		e := audit.NewEvent(ctx, audit.KindRateLimited)
		e.Decision = audit.DecisionAllow
		e.Reason = audit.ReasonLimiterFailOpen
		e.Limit = ev.Namespace
		_ = a.rec.Record(ctx, e)
	}
}
