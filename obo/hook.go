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

// ExchangeFunc is the shape of an audit hook that records one exchange:
// the grant (Flavor.Grant), the downstream audience, how long it took and
// its error. audit.Recorder.TokenExchange has this shape; obo declares its
// own type so that it need not import audit.
type ExchangeFunc func(ctx context.Context, grant, audience string, d time.Duration, err error)

// AuditHook adapts f to Config.OnExchange:
//
//	obo.Config{OnExchange: obo.AuditHook(rec.TokenExchange)}
//
// f is called for each call that went to the token endpoint itself, and
// for each failure that sent nothing (no credential, a refused
// passthrough); cache hits and callers that shared another's exchange are
// not recorded again. The audience is the Target's Audience, else its
// Resource, else the resource of its first scope (Entra's
// "api://calendar" for "api://calendar/.default").
func AuditHook(f ExchangeFunc) func(context.Context, ExchangeEvent) {
	if f == nil {
		return nil
	}
	return func(ctx context.Context, ev ExchangeEvent) {
		if ev.Cached || ev.Shared {
			return
		}
		f(ctx, ev.Flavor.Grant(), ev.audience(), ev.Duration, ev.Err)
	}
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

// Classify names the class of an obo error for an audit record, and whether
// it means the call was denied, in the shape of audit.Config.ClassifyError:
// "no_credential", "passthrough", "interaction_required" (including consent
// and claims challenges) and the OAuth code of any other rejection are
// denials; "exchange_unavailable", "exchange_invalid_response" and
// "exchange_config" are not. It returns "" for errors that are not obo's.
// The class never holds error text.
func Classify(err error) (class string, denied bool) {
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
