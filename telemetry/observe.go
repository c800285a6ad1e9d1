package telemetry

import (
	"context"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/mcpguard/mcpguard/audit"
	"github.com/mcpguard/mcpguard/auth"
)

var _ audit.Observer = (*Telemetry)(nil)

// Observe implements audit.Observer: it counts the event's decision,
// rate-limit refusal or token exchange, and notes the decision on the
// request's span. Install it with audit.Config.Observer or
// Recorder.SetObserver (transport does).
func (t *Telemetry) Observe(ctx context.Context, e audit.Event) {
	if t.metricsOn {
		t.count(ctx, e)
	}
	st, _ := ctx.Value(stateKey{}).(*reqState)
	if st == nil {
		return
	}
	decision := effectiveDecision(e)
	reason := ""
	if e.Reason != "" {
		reason = t.reasons.fold(e.Reason)
	}
	subject := ""
	if t.subjectKey != nil {
		if p, ok := auth.FromContext(ctx); ok {
			subject = t.subjectHash(p.Issuer, p.Subject)
		}
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.done {
		return // a task finishing after its request: the span has ended
	}
	// A refusal outranks an earlier allow of the same request.
	if decision == audit.DecisionNone || (st.decision == audit.DecisionDeny.String() && decision != audit.DecisionDeny) {
		if st.errType == "" && e.ErrorClass != "" {
			st.errType = cut(e.ErrorClass)
		}
		return
	}
	st.decision = decision.String()
	st.reason = reason
	st.event = e.Kind.String()
	if e.AuthKind != "" {
		st.kind = cut(e.AuthKind)
	}
	if t.tenantAttr && e.Tenant != "" {
		st.tenant = cut(e.Tenant)
	}
	if subject != "" {
		st.subject = subject
	}
	switch {
	case decision == audit.DecisionDeny && reason != "":
		st.errType = reason
	case decision == audit.DecisionDeny:
		st.errType = e.Kind.String()
	case e.ErrorClass != "":
		st.errType = cut(e.ErrorClass)
	}
}

// count adds the event to the decision, rate-limit and exchange metrics.
func (t *Telemetry) count(ctx context.Context, e audit.Event) {
	tenant := ""
	if t.tenantAttr && e.Tenant != "" {
		tenant = t.tenants.fold(e.Tenant)
	}
	reason := ""
	if e.Reason != "" {
		reason = t.reasons.fold(e.Reason)
	}
	switch e.Kind {
	case audit.KindTokenExchange:
		outcome := "ok"
		switch {
		case e.Decision == audit.DecisionDeny:
			outcome = "denied"
		case e.ErrorClass != "":
			outcome = "error"
		}
		t.exchangeDuration.Record(ctx, e.Duration.Seconds(), metric.WithAttributes(
			keyGrant.String(cut(e.Grant)), keyOutcome.String(outcome)))
		return
	case audit.KindQueueOverflow:
		return // counted by the recorder callback
	case audit.KindStoreFailure:
		// Reason is "<store>:<outcome>", both from fixed lists.
		store, outcome, _ := strings.Cut(e.Reason, ":")
		t.countStore(ctx, store, outcome)
		if e.Decision == audit.DecisionNone {
			return
		}
	case audit.KindRateLimited:
		if e.Decision == audit.DecisionAllow {
			break // a fail-open let through: no refusal
		}
		// The limiter that refused: its namespace (audit.Event.Limit).
		limiter := reason
		if e.Limit != "" {
			limiter = t.reasons.fold(e.Limit)
		}
		attrs := []attribute.KeyValue{keyReason.String(limiter)}
		if tenant != "" {
			attrs = append(attrs, keyTenant.String(tenant))
		}
		t.rateLimited.Add(ctx, 1, metric.WithAttributes(attrs...))
	}
	decision := effectiveDecision(e)
	if decision != audit.DecisionNone {
		attrs := make([]attribute.KeyValue, 0, 4)
		attrs = append(attrs, keyEvent.String(e.Kind.String()), keyDecision.String(decision.String()), keyReason.String(reason))
		if tenant != "" {
			attrs = append(attrs, keyTenant.String(tenant))
		}
		t.decisions.Add(ctx, 1, metric.WithAttributes(attrs...))
	}
}

// effectiveDecision is the event's decision, with "allow" for a tool call,
// resource read or prompt that ran (the policy let it through).
func effectiveDecision(e audit.Event) audit.Decision {
	if e.Decision == audit.DecisionNone {
		switch e.Kind {
		case audit.KindToolCall, audit.KindResourceRead, audit.KindPromptGet:
			return audit.DecisionAllow
		}
	}
	return e.Decision
}
