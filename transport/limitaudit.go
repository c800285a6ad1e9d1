package transport

import (
	"context"

	"github.com/mcpguard/mcpguard/audit"
	"github.com/mcpguard/mcpguard/transport/ratelimit"
)

// limitAudit is the ratelimit.Reporter the Guard gives each of its request
// limits (PreAuthRateLimit, UnauthenticatedRateLimit, RateLimit) when
// Config.Audit is set: the limit's own decision becomes the audit record,
// named by the limit's namespace, instead of a guess from the status.
//
//   - A refusal annotates the request's edge event (audit.Middleware,
//     outermost) as KindRateLimited with the namespace and the reason
//     rate_limited (429) or limiter_unavailable (503), and the principal
//     and tenant when the limit runs after authentication.
//   - A request a failing limiter let through uncounted is recorded as an
//     event of its own: KindRateLimited, DecisionAllow, reason
//     limiter_fail_open.
//
// The limiter key is never recorded (it holds subjects and addresses in a
// limiter's own format); the namespace, principal and tenant say the same.
type limitAudit struct {
	rec *audit.Recorder
}

// ReportLimit implements ratelimit.Reporter.
func (a limitAudit) ReportLimit(ctx context.Context, ev ratelimit.Event) {
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
