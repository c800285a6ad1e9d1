package obo

import (
	"context"
	"errors"
	"strings"
	"time"
)

// Grant returns the flavor's grant as audit records name it:
// "token-exchange", "jwt-bearer" or "client_credentials".
func (f Flavor) Grant() string {
	switch f {
	case TokenExchange:
		return "token-exchange"
	case EntraOBO:
		return "jwt-bearer"
	case ClientCredentials:
		return "client_credentials"
	}
	return "unknown"
}

// Auditor records token exchanges; *audit.Recorder implements it. It is
// the one connection between obo and an audit log (Config.Audit): obo
// declares it so that it need not import audit, and its errors name their
// own audit class (AuditClass), so the recorder needs no obo-specific
// classifier.
//
// TokenExchange is called for each call that went to the token endpoint
// itself and for each failure that sent nothing (no credential, a refused
// passthrough); cache hits and callers that shared another's exchange are
// not recorded again. grant is Flavor.Grant; the audience is the Target's
// Audience, else its Resource, else the resource of its first scope
// (Entra's "api://calendar" for "api://calendar/.default"). err never
// contains a token. Implementations must be fast, must not block and must
// be safe for concurrent use.
type Auditor interface {
	TokenExchange(ctx context.Context, grant, audience string, d time.Duration, err error)
}

// Observer is told of every Token call (and so every RoundTrip), cache hits
// and shared exchanges included, for metrics, and of every exchange it
// makes, for traces; package telemetry's *Telemetry implements it. It is
// the one connection between obo and telemetry, as Auditor is to audit.
// Implementations must be fast, must not block and must be safe for
// concurrent use; nothing passed to them holds a token or a secret.
type Observer interface {
	// ObserveExchange is called on the caller's goroutine once a Token
	// call's outcome is known, with the caller's context.
	ObserveExchange(ctx context.Context, ev ExchangeEvent)
	// StartExchange reports that an exchange begins: a call to the token
	// endpoint (with the discovery of its address when that is still
	// needed) that neither the cache nor Config.SharedCache answered, made
	// once for every caller waiting for the same token, or a Token call
	// that fails before sending anything (ErrNoCredential). ev describes
	// the target only (Flavor, Audience, Resource, Scope). ctx carries the
	// values of the caller that started the exchange and the exchange's
	// own Config.Timeout.
	//
	// It returns the context the exchange's HTTP requests are made with,
	// which must be derived from ctx (an observer puts a span in it, so
	// the spans of an instrumented Config.HTTPClient nest in it; nil means
	// ctx), and a function the Exchanger calls exactly once, with the
	// exchange's error (nil on success), when it ends; end may be nil.
	StartExchange(ctx context.Context, ev ExchangeEvent) (_ context.Context, end func(err error))
}

func (ev ExchangeEvent) audience() string {
	switch {
	case ev.Audience != "":
		return ev.Audience
	case ev.Resource != "":
		return ev.Resource
	}
	first, _, _ := strings.Cut(ev.Scope, " ")
	if i := strings.LastIndexByte(first, '/'); i > 0 && strings.Contains(first, "://") {
		return first[:i]
	}
	return first
}

// classify names the class of an obo error for an audit record, and
// whether it means the call was denied: "no_credential", "passthrough",
// "interaction_required" (including consent and claims challenges) and the
// OAuth code of any other rejection are denials; "exchange_unavailable",
// "exchange_invalid_response" and "exchange_config" are not. It returns ""
// for errors that are not obo's. The class never holds error text.
func classify(err error) (class string, denied bool) {
	var oe *Error
	switch {
	case err == nil:
		return "", false
	case errors.Is(err, ErrNoCredential):
		return "no_credential", true
	case errors.Is(err, ErrPassthrough):
		return "passthrough", true
	case errors.As(err, &oe) && oe.InteractionRequired():
		return CodeInteractionRequired, true
	case errors.Is(err, ErrRejected):
		if oe != nil && oe.Code != "" {
			return oe.Code, true
		}
		return "exchange_rejected", true
	case errors.Is(err, ErrUnavailable):
		return "exchange_unavailable", false
	case errors.Is(err, ErrInvalidResponse):
		return "exchange_invalid_response", false
	case errors.Is(err, ErrConfig):
		return "exchange_config", false
	}
	return "", false
}

// AuditClass names the error's class for an audit record and whether it
// means the call was denied (see Auditor): the OAuth code of a rejection
// ("interaction_required" for consent and claims challenges too),
// "no_credential" and "passthrough" are denials; "exchange_unavailable",
// "exchange_invalid_response" and "exchange_config" are not. Package audit
// reads it from any error in a chain (errors.As), so a tool that returns an
// obo error is audited with its class. It never holds error text.
func (e *Error) AuditClass() (class string, denied bool) { return classify(e) }

// sentinel is the type of obo's sentinel errors: it names its audit class,
// so an error wrapping one is classified without an obo-specific hook.
type sentinel struct{ msg string }

func (s *sentinel) Error() string { return s.msg }

// AuditClass names the class of an error wrapping this sentinel (see
// Error.AuditClass).
func (s *sentinel) AuditClass() (class string, denied bool) { return classify(s) }
