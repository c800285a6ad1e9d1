package audit

import "context"

// ReportStore records a shared store's failure or recovery as
// KindStoreFailure: Reason is "<store>:<outcome>" ("dpop_replay:fail_closed",
// "obo_tokens:degrade_local", "session_counts:recovered"), ErrorClass is
// "store_unavailable" while failing (never an error's text), and Decision
// is deny when the store refuses requests meanwhile (outcome
// "fail_closed"). It makes the Recorder a redisstore.Reporter, so the whole
// connection is one field:
//
//	redisstore.Config{Reporter: rec}
func (r *Recorder) ReportStore(ctx context.Context, store, outcome string) {
	e := NewEvent(ctx, KindStoreFailure)
	e.Reason = store + ":" + outcome
	switch outcome {
	case "recovered":
	case "fail_closed":
		e.ErrorClass = "store_unavailable"
		e.Decision = DecisionDeny
	default:
		e.ErrorClass = "store_unavailable"
	}
	_ = r.Record(ctx, e)
}
