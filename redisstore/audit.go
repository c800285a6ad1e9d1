package redisstore

import (
	"context"

	"github.com/mcpguard/mcpguard/audit"
)

// Recorder is what AuditTo records to; *audit.Recorder implements it.
type Recorder interface {
	Record(ctx context.Context, e audit.Event) error
}

// AuditTo returns a Config.OnEvent that records every Event as an
// audit.KindStoreFailure event: Reason is the store and the policy that
// applied ("dpop_replay:fail_closed") or "recovered", ErrorClass is
// "store_unavailable" while failing (never the error's text), and Decision
// is deny when the store refuses requests meanwhile (FailClosed). The
// recorder's telemetry observer (package telemetry) counts them in
// mcpguard.store.events by store and outcome.
func AuditTo(rec Recorder) func(context.Context, Event) {
	return func(ctx context.Context, ev Event) {
		_ = rec.Record(ctx, AuditEvent(ctx, ev))
	}
}

// AuditEvent is the audit event AuditTo records for ev.
func AuditEvent(ctx context.Context, ev Event) audit.Event {
	e := audit.NewEvent(ctx, audit.KindStoreFailure)
	switch {
	case ev.Recovered:
		e.Reason = ev.Store + ":recovered"
		e.Decision = audit.DecisionNone
	case ev.Policy == FailClosed:
		e.Reason = ev.Store + ":" + ev.Policy.String()
		e.ErrorClass = "store_unavailable"
		e.Decision = audit.DecisionDeny
	default:
		e.Reason = ev.Store + ":" + ev.Policy.String()
		e.ErrorClass = "store_unavailable"
	}
	return e
}
