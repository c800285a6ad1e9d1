package audit

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/internal/redact"
)

// ToolMiddleware records the outcome of every tool call that reaches it:
// KindToolCall with DecisionAllow, the duration and, on failure, an error
// class ("tool_error" for a result with IsError, else from
// Config.ClassifyError, an AuditClass method of the error, as obo's errors
// have, or the default table); or KindToolDenied with DecisionDeny when the
// error is classified as a denial (an authz refusal returned by an inner
// middleware); or KindRateLimited with DecisionDeny when the error says it
// is a limit's decision: a method LimitReason() string naming the reason
// (ReasonRateLimited, ReasonLimiterUnavailable, ReasonConcurrencyLimited,
// ReasonBudgetTimeout), as ratelimit.ToolError has, or else a method
// RateLimited() bool returning true (reason ReasonRateLimited); Event.Limit
// is then the limit's namespace (LimitNamespace() string). Each event carries the caller (auth.FromContext), tenant,
// request ID, JSON-RPC id, MCP session ID, tool name and argument names,
// with values only for names allow-listed in Config.ArgValues.
//
// Under FailClosed it claims room for the outcome before running the tool
// and, when there is none, refuses the call with ErrUnavailable (counted in
// Stats.Refused) without calling next. A panic in next is recorded with
// class "panic" and re-raised.
//
// Its signature is server.ToolHandlerMiddleware: register it first
// (server.WithToolHandlerMiddleware(rec.ToolMiddleware)), so it is
// outermost and sees authz's and the tool budget's refusals.
func (r *Recorder) ToolMiddleware(next server.ToolHandlerFunc) server.ToolHandlerFunc {
	return func(ctx context.Context, req mcp.CallToolRequest) (res *mcp.CallToolResult, err error) {
		t, ok := r.begin()
		if !ok {
			r.refused.Add(1)
			e := r.toolEvent(ctx, &req)
			e.Kind = KindToolDenied
			e.Decision = DecisionDeny
			e.Reason = "audit_unavailable"
			_ = r.Record(ctx, e)
			return nil, ErrUnavailable
		}
		start := r.now()
		finished := false
		defer func() {
			if finished {
				return
			}
			e := r.toolEvent(ctx, &req)
			e.Kind = KindToolCall
			e.Decision = DecisionAllow
			e.ErrorClass = "panic"
			e.Time = r.now()
			e.Duration = e.Time.Sub(start)
			_ = r.finish(ctx, t, e)
		}()
		res, err = next(ctx, req)
		finished = true
		e := r.toolEvent(ctx, &req)
		e.Time = r.now()
		e.Duration = e.Time.Sub(start)
		r.outcome(&e, err, KindToolCall, KindToolDenied)
		if err == nil && res != nil && res.IsError {
			e.ErrorClass = "tool_error"
		}
		_ = r.finish(ctx, t, e)
		return res, err
	}
}

// ResourceMiddleware records resource reads as ToolMiddleware records tool
// calls (KindResourceRead / KindResourceDenied). The resource URI is
// recorded without its query or fragment and with any userinfo
// ("user:password@") replaced by [REDACTED]. Its signature is
// server.ResourceHandlerMiddleware (server.WithResourceHandlerMiddleware).
func (r *Recorder) ResourceMiddleware(next server.ResourceHandlerFunc) server.ResourceHandlerFunc {
	return func(ctx context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
		start := r.now()
		res, err := next(ctx, req)
		e := NewEvent(ctx, KindResourceRead)
		e.Resource = recordedURI(req.Params.URI)
		e.Args, e.ArgsOmitted = argNames(req.Params.Arguments)
		e.Time = r.now()
		e.Duration = e.Time.Sub(start)
		r.outcome(&e, err, KindResourceRead, KindResourceDenied)
		_ = r.Record(ctx, e)
		return res, err
	}
}

// PromptMiddleware records prompt requests as ToolMiddleware records tool
// calls (KindPromptGet / KindPromptDenied), with argument names only. Its
// signature is server.PromptHandlerMiddleware
// (server.WithPromptHandlerMiddleware).
func (r *Recorder) PromptMiddleware(next server.PromptHandlerFunc) server.PromptHandlerFunc {
	return func(ctx context.Context, req mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
		start := r.now()
		res, err := next(ctx, req)
		e := NewEvent(ctx, KindPromptGet)
		e.Prompt = req.Params.Name
		e.Args, e.ArgsOmitted = argNames(req.Params.Arguments)
		e.Time = r.now()
		e.Duration = e.Time.Sub(start)
		r.outcome(&e, err, KindPromptGet, KindPromptDenied)
		_ = r.Record(ctx, e)
		return res, err
	}
}

// outcome sets kind, decision and error class from err.
func (r *Recorder) outcome(e *Event, err error, ran, denied Kind) {
	e.Kind = ran
	e.Decision = DecisionAllow
	if err == nil {
		return
	}
	var lr limitReasoner
	reason := ""
	if errors.As(err, &lr) {
		reason = lr.LimitReason()
	}
	var rl rateLimited
	if reason == "" && errors.As(err, &rl) && rl.RateLimited() {
		reason = ReasonRateLimited
	}
	if reason != "" {
		// A rate limit or budget decided the call: it refused it before
		// it ran, or (ReasonBudgetTimeout) cut it off.
		e.Kind = KindRateLimited
		e.Decision = DecisionDeny
		e.ErrorClass = reason
		e.Reason = reason
		var ns limitNamespacer
		if errors.As(err, &ns) {
			e.Limit = ns.LimitNamespace()
		}
		return
	}
	class, deny := r.classifyError(err)
	e.ErrorClass = class
	if deny {
		e.Kind = denied
		e.Decision = DecisionDeny
		e.Reason = class
	}
}

// rateLimited is implemented by errors of limiters that refuse a call
// before it runs (ratelimit.ToolError); such a refusal is recorded as
// KindRateLimited, not as a call that ran and failed.
type rateLimited interface {
	error
	RateLimited() bool
}

// limitReasoner is implemented by errors of limits that name the fixed
// reason of their decision (ratelimit.ToolError: ReasonRateLimited,
// ReasonLimiterUnavailable, ReasonConcurrencyLimited, ReasonBudgetTimeout);
// any such error is recorded as KindRateLimited with that reason.
type limitReasoner interface {
	error
	LimitReason() string
}

// limitNamespacer is implemented by rate-limit errors that name the key
// namespace of their limit (ratelimit.ToolError), recorded as Event.Limit.
type limitNamespacer interface {
	error
	LimitNamespace() string
}

// classified is implemented by errors that name their own audit class,
// as obo's do: the one way another package's errors reach the audit record
// (a rate-limit refusal's RateLimited is the other, for its own kind).
type classified interface {
	AuditClass() (class string, denied bool)
}

func (r *Recorder) classifyError(err error) (string, bool) {
	if r.classify != nil {
		if class, denied := r.classify(err); class != "" {
			return class, denied
		}
	}
	var c classified
	if errors.As(err, &c) {
		if class, denied := c.AuditClass(); class != "" {
			return class, denied
		}
	}
	return classify(err)
}

// classify is the default error classification. It reads only error
// identities, never error text.
func classify(err error) (class string, denied bool) {
	switch {
	case errors.Is(err, ErrUnavailable):
		return "audit_unavailable", true
	case errors.Is(err, context.Canceled):
		return "canceled", false
	case errors.Is(err, context.DeadlineExceeded):
		return "deadline_exceeded", false
	case errors.Is(err, auth.ErrInsufficientScope):
		return auth.CodeInsufficientScope, true
	case errors.Is(err, auth.ErrNoCredential):
		return "no_credential", true
	case errors.Is(err, auth.ErrExpired):
		return "expired_token", true
	case errors.Is(err, auth.ErrInvalidToken):
		return auth.CodeInvalidToken, true
	case errors.Is(err, auth.ErrMalformedRequest):
		return auth.CodeInvalidRequest, true
	case errors.Is(err, auth.ErrUnavailable):
		return "auth_unavailable", false
	}
	// Denials that convert to an *auth.Error (as authz's do) without
	// matching a sentinel above: classify them by status.
	var ae *auth.Error
	if errors.As(err, &ae) && ae != nil {
		switch {
		case ae.Status == http.StatusServiceUnavailable:
			return "auth_unavailable", false
		case ae.Code != "":
			return ae.Code, true
		case ae.Status == http.StatusUnauthorized:
			return "no_credential", true
		case ae.Status == http.StatusForbidden:
			return "access_denied", true
		}
	}
	return "error", false
}

// toolEvent builds the common part of a tool event.
func (r *Recorder) toolEvent(ctx context.Context, req *mcp.CallToolRequest) Event {
	e := NewEvent(ctx, KindToolCall)
	e.Tool = req.Params.Name
	args := req.GetArguments()
	if len(args) == 0 {
		return e
	}
	names := sortedNames(args)
	e.ArgsOmitted = len(names) - min(len(names), MaxArgs)
	names = names[:min(len(names), MaxArgs)]
	allowed := r.argValues[req.Params.Name]
	e.Args = make([]Arg, len(names))
	for i, name := range names {
		e.Args[i].Name = recordedName(name)
		if _, ok := allowed[name]; ok {
			e.Args[i].Value = r.argValue(req.Params.Name, name, args[name])
			e.Args[i].HasValue = true
		}
	}
	return e
}

func sortedNames[V any](m map[string]V) []string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	slices.Sort(names)
	return names
}

func argNames[V any](m map[string]V) ([]Arg, int) {
	if len(m) == 0 {
		return nil, 0
	}
	names := sortedNames(m)
	n := min(len(names), MaxArgs)
	args := make([]Arg, n)
	for i, name := range names[:n] {
		args[i].Name = recordedName(name)
	}
	return args, len(names) - n
}

// argValue renders an allow-listed value as bounded text.
func (r *Recorder) argValue(tool, name string, v any) string {
	var s string
	switch v := v.(type) {
	case string:
		s = v
	case nil:
		s = "null"
	case bool:
		s = strconv.FormatBool(v)
	case float64:
		s = strconv.FormatFloat(v, 'g', -1, 64)
	case json.Number:
		s = v.String()
	case int:
		s = strconv.Itoa(v)
	case int64:
		s = strconv.FormatInt(v, 10)
	case map[string]any:
		s = "[object]"
	case []any:
		s = "[array]"
	default:
		s = "[value]"
	}
	if len(s) > MaxTextLen {
		s = s[:MaxTextLen]
	}
	if r.redactArg != nil {
		s = r.redactArg(tool, name, s)
	}
	if redact.LooksLikeToken(s) {
		return redact.Redacted
	}
	return s
}

// recordedName is a client-chosen name (an argument's, or the tool or
// prompt of a refused request, which need not exist) as events record it:
// "[REDACTED]" when it looks like a token (redact.LooksLikeToken), for a
// client that sent its credential where a name goes.
func recordedName(name string) string {
	if redact.LooksLikeToken(name) {
		return redact.Redacted
	}
	return name
}

// recordedURI is a resource URI as events record it: without its query
// or fragment, which may carry an access_token (RFC 6750 §2.3), and with
// its userinfo ("user:password@", or a token as the user name) replaced by
// [REDACTED].
func recordedURI(uri string) string { return redact.URI(uri) }

// TokenExchange records a downstream token exchange as KindTokenExchange:
// the caller from ctx, the grant, the audience, the duration and, on
// failure, an error class (a denial when classified so). It never sees a
// token: the call carries none. It makes the Recorder an obo.Auditor, so
// the whole connection is one field, and obo's errors name their own class
// (AuditClass):
//
//	obo.Config{Audit: rec}
func (r *Recorder) TokenExchange(ctx context.Context, grant, audience string, d time.Duration, err error) {
	e := NewEvent(ctx, KindTokenExchange)
	e.Grant = grant
	e.Audience = audience
	e.Duration = d
	e.Decision = DecisionAllow
	if err != nil {
		class, denied := r.classifyError(err)
		e.ErrorClass = class
		if denied {
			e.Decision = DecisionDeny
			e.Reason = class
		}
	}
	_ = r.Record(ctx, e)
}

// Denial records a request refused before dispatch: KindToolDenied,
// KindPromptDenied or KindResourceDenied by method (KindAccessDenied for
// any other method), with DecisionDeny, the reason and the caller from
// ctx. A resource URI is recorded without its query or fragment, and with
// any userinfo replaced by [REDACTED].
func (r *Recorder) Denial(ctx context.Context, method, name, reason string) {
	e := NewEvent(ctx, KindAccessDenied)
	switch method {
	case "tools/call":
		e.Kind, e.Tool = KindToolDenied, recordedName(name)
	case "prompts/get":
		e.Kind, e.Prompt = KindPromptDenied, recordedName(name)
	case "resources/read":
		e.Kind, e.Resource = KindResourceDenied, recordedURI(name)
	default:
		e.Method = method
	}
	e.Decision = DecisionDeny
	e.Reason = reason
	_ = r.Record(ctx, e)
}

// Allowed records a mediated request the policy allowed that no tool,
// prompt or resource middleware sees — completion/complete,
// resources/subscribe, resources/unsubscribe, subscriptions/listen — as
// KindAccessAllowed with DecisionAllow, the method, the caller from ctx
// and, when uri is not empty (the resource a subscription names), the
// resource URI without its query or fragment and with any userinfo
// replaced by [REDACTED]. It is the counterpart of Denial, so that such a
// request leaves a record whichever way it was decided.
func (r *Recorder) Allowed(ctx context.Context, method, uri string) {
	e := NewEvent(ctx, KindAccessAllowed)
	e.Method = method
	if uri != "" {
		e.Resource = recordedURI(uri)
	}
	e.Decision = DecisionAllow
	_ = r.Record(ctx, e)
}
