package audit

import (
	"context"
	"log/slog"
	"time"

	"github.com/mark3labs/mcp-go/server"

	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/internal/redact"
	"github.com/mcpguard/mcpguard/tenancy"
)

// Kind says what an event records.
type Kind uint8

// Event kinds. The zero value is KindUnknown.
const (
	// KindUnknown is the zero Kind; recorders never produce it themselves.
	KindUnknown Kind = iota
	// KindRequest is an HTTP request outcome that fits no narrower kind.
	KindRequest
	// KindAuthFailure is a request rejected because its credential was
	// missing, malformed, invalid or expired (RFC 6750 §3.1, HTTP 401).
	KindAuthFailure
	// KindAccessDenied is a request refused at the edge for an
	// authenticated caller: unknown or forbidden tenant, insufficient
	// scope for an HTTP-level step-up (HTTP 403).
	KindAccessDenied
	// KindOriginRejected is a request refused by the Origin/Host
	// (DNS-rebinding) check.
	KindOriginRejected
	// KindSessionRejected is a request whose MCP session ID belongs to
	// another principal or does not exist.
	KindSessionRejected
	// KindRateLimited is a request or tool call refused by a rate limit or
	// tool budget (HTTP 429, or 503 when a fail-closed limiter could not
	// decide; for a tool call also a concurrency refusal or the budget's
	// timeout), with Event.Limit naming the limit and Reason the decision.
	// An event of this kind with DecisionAllow and reason
	// "limiter_fail_open" records a request or tool call a failing limiter
	// let through uncounted (fail open).
	KindRateLimited
	// KindToolCall is a tool call that ran, successfully or not.
	KindToolCall
	// KindToolDenied is a tool call refused before it ran.
	KindToolDenied
	// KindResourceRead is a resource read that ran.
	KindResourceRead
	// KindResourceDenied is a resource read refused before it ran.
	KindResourceDenied
	// KindPromptGet is a prompt request that ran.
	KindPromptGet
	// KindPromptDenied is a prompt request refused before it ran.
	KindPromptDenied
	// KindTokenExchange is a downstream token exchange (RFC 8693, Entra
	// on-behalf-of or client credentials) made by package obo.
	KindTokenExchange
	// KindQueueOverflow reports events that an asynchronous Recorder could
	// not queue; Event.Dropped holds how many since the previous report.
	KindQueueOverflow
	// KindStoreFailure reports a shared store (package redisstore) whose
	// backend failed, or answered again: Reason is the store and what it
	// did ("dpop_replay:fail_closed", "obo_tokens:degrade_local",
	// "session_counts:recovered"), ErrorClass "store_unavailable" while
	// failing; Decision is deny when the store refuses requests meanwhile.
	KindStoreFailure
	// KindAccessAllowed is a mediated request with no handler middleware
	// of its own (completion/complete, resources/subscribe,
	// resources/unsubscribe, subscriptions/listen) that the policy allowed,
	// recorded by Recorder.Allowed with DecisionAllow and Method naming
	// it; its refusal is KindAccessDenied (Recorder.Denial).
	KindAccessAllowed
	kindCount
)

var kindNames = [kindCount]string{
	KindUnknown:         "unknown",
	KindRequest:         "http_request",
	KindAuthFailure:     "auth_failure",
	KindAccessDenied:    "access_denied",
	KindOriginRejected:  "origin_rejected",
	KindSessionRejected: "session_rejected",
	KindRateLimited:     "rate_limited",
	KindToolCall:        "tool_call",
	KindToolDenied:      "tool_denied",
	KindResourceRead:    "resource_read",
	KindResourceDenied:  "resource_denied",
	KindPromptGet:       "prompt_get",
	KindPromptDenied:    "prompt_denied",
	KindTokenExchange:   "token_exchange",
	KindQueueOverflow:   "queue_overflow",
	KindStoreFailure:    "store_failure",
	KindAccessAllowed:   "access_allowed",
}

// String returns the kind's snake_case name, as written in records.
func (k Kind) String() string {
	if k < kindCount {
		return kindNames[k]
	}
	return "unknown"
}

// refusal reports whether the kind records something refused.
func (k Kind) refusal() bool {
	switch k {
	case KindAuthFailure, KindAccessDenied, KindOriginRejected, KindSessionRejected,
		KindRateLimited, KindToolDenied, KindResourceDenied, KindPromptDenied:
		return true
	}
	return false
}

// Decision is the access decision an event records.
type Decision uint8

const (
	// DecisionNone means the event records no access decision.
	DecisionNone Decision = iota
	// DecisionAllow means the action was allowed.
	DecisionAllow
	// DecisionDeny means the action was refused.
	DecisionDeny
)

// String returns "allow", "deny" or "" for DecisionNone.
func (d Decision) String() string {
	switch d {
	case DecisionAllow:
		return "allow"
	case DecisionDeny:
		return "deny"
	}
	return ""
}

// Length bounds, in bytes of the original value, applied when an event is
// encoded. Longer values are cut at a rune boundary and marked with "…".
const (
	// MaxIDLen bounds request, session and JSON-RPC ids.
	MaxIDLen = 128
	// MaxNameLen bounds tool, resource and prompt names, argument names,
	// error classes, grants and reasons.
	MaxNameLen = 256
	// MaxTextLen bounds subjects, client IDs, tenants, audiences, paths,
	// remote addresses and argument values.
	MaxTextLen = 512
	// MaxArgs bounds the number of arguments recorded for one call; the
	// rest are counted in Event.ArgsOmitted.
	MaxArgs = 64
)

// Event is one audit record: who did what, for which tenant, with what
// outcome. It is a plain struct of strings and numbers with no field able
// to hold a credential: no token, no Authorization header, no query
// string, no error text (only a class), and argument values only for
// names an operator allow-listed per tool (see Config.ArgValues).
//
// Free-text fields are bounded (MaxIDLen, MaxNameLen, MaxTextLen) and
// escaped by every encoder here (LogValue, MarshalJSON, JSONSink), so a
// value holding newlines or control characters cannot forge a second
// record. The zero value is an empty event of KindUnknown. An Event is a
// value: copy it freely; do not modify Args after recording it.
type Event struct {
	// Time is when the outcome was known. Recorder.Record sets it when zero.
	Time time.Time
	// Kind says what the event records.
	Kind Kind

	// RequestID is the request ID set by the transport (see
	// NewRequestIDContext).
	RequestID string
	// SessionID is the MCP session ID (Mcp-Session-Id), when there is one.
	SessionID string
	// RPCID is the JSON-RPC request id rendered as text (see
	// NewRPCIDContext).
	RPCID string

	// Subject is the principal's "sub".
	Subject string
	// Actor is the subject of the party acting for Subject (the calling
	// service in dual-token mode, auth.Principal.Actor), empty otherwise.
	Actor string
	// ClientID is the OAuth client the principal's token was issued to.
	ClientID string
	// AuthKind is how the principal was authenticated ("user", "job",
	// "dev", "stdio"), empty when there is no principal.
	AuthKind string
	// JobID is set for job principals.
	JobID string
	// Tenant is the tenant from verified claims (package tenancy).
	Tenant string

	// Tool is the tool name of a tool call.
	Tool string
	// Resource is the resource URI of a resource read, without its query
	// or fragment and with any userinfo replaced by "[REDACTED]".
	Resource string
	// Prompt is the prompt name of a prompt request.
	Prompt string
	// Audience is the downstream audience of a token exchange.
	Audience string
	// Grant is the flow of a token exchange, e.g. "token-exchange",
	// "jwt-bearer" (on-behalf-of) or "client_credentials".
	Grant string
	// Limit is, for KindRateLimited, the key namespace of the rate limit
	// or tool budget that decided (transport/ratelimit's Namespace, such
	// as "preauth", "unauth", "http" or "tool"). Never a limiter key.
	Limit string

	// Method is the HTTP method of an edge event, or the JSON-RPC method of
	// a denial (Recorder.Denial) that is not a tool, prompt or resource
	// request, or of an allowed request (Recorder.Allowed).
	Method string
	// Path is the URL path of an edge event, never the query (which may
	// carry an access_token, RFC 6750 §2.3).
	Path string
	// RemoteAddr is the peer address as net/http reports it. Forwarded
	// headers are not consulted.
	RemoteAddr string

	// Decision is the access decision.
	Decision Decision
	// Reason is a short machine-readable reason for the decision or
	// outcome, such as "insufficient_scope" or "invalid_token".
	Reason string
	// Status is the HTTP status of an edge event, 0 otherwise.
	Status int
	// Duration is how long the request, call or exchange took.
	Duration time.Duration
	// ErrorClass classifies a failure ("tool_error", "canceled",
	// "invalid_token", ...); empty on success. Never an error's text.
	ErrorClass string

	// Args lists the call's argument names (sorted), with values only for
	// allow-listed names; a name that looks like a token is recorded as
	// "[REDACTED]".
	Args []Arg
	// ArgsOmitted counts arguments beyond MaxArgs that were not listed.
	ArgsOmitted int

	// Dropped is, for KindQueueOverflow, the number of events lost since
	// the previous overflow report.
	Dropped uint64
}

// Arg is one tool-call argument: its name always, its value only when the
// operator allow-listed that name for that tool.
type Arg struct {
	// Name is the argument name.
	Name string
	// Value is the recorded value, meaningful only when HasValue is true.
	Value string
	// HasValue reports whether Value was recorded.
	HasValue bool
}

// NewEvent returns an event of kind k filled from ctx: request ID and
// JSON-RPC id (this package's contexts), the principal (auth.FromContext),
// the tenant (tenancy.FromContext) and the MCP session
// (server.ClientSessionFromContext). Transport and authz use it to record
// refusals; Time is left zero for Record to fill.
func NewEvent(ctx context.Context, k Kind) Event {
	e := Event{Kind: k}
	e.fill(ctx)
	return e
}

func (e *Event) fill(ctx context.Context) {
	if id, ok := RequestIDFromContext(ctx); ok {
		e.RequestID = id
	}
	if id, ok := RPCIDFromContext(ctx); ok {
		e.RPCID = id
	}
	if p, ok := auth.FromContext(ctx); ok {
		e.setPrincipal(p)
	}
	if t, ok := tenancy.FromContext(ctx); ok {
		e.Tenant = t
	}
	if s := server.ClientSessionFromContext(ctx); s != nil {
		e.SessionID = s.SessionID()
	}
}

func (e *Event) setPrincipal(p *auth.Principal) {
	e.Subject = p.Subject
	e.ClientID = p.ClientID
	e.AuthKind = p.Kind.String()
	e.JobID = p.JobID
	if a := p.Actor; a != nil {
		e.Actor = a.Subject
		if e.Actor == "" {
			e.Actor = a.ClientID
		}
	}
}

// LogValue renders the event for log/slog as a group of its non-empty
// fields. Every string is bounded and escaped with visible escape text
// (\n, \xNN, \uNNNN), so even a handler that prints values raw writes the
// event on one line. Durations are slog durations.
func (e Event) LogValue() slog.Value {
	return slog.GroupValue(e.attrs(true)...)
}

func (e *Event) attrs(withTime bool) []slog.Attr {
	a := make([]slog.Attr, 0, 16)
	if withTime && !e.Time.IsZero() {
		a = append(a, slog.Time("time", e.Time))
	}
	a = append(a, slog.String("kind", e.Kind.String()))
	str := func(key, v string, max int) {
		if v != "" {
			a = append(a, slog.String(key, redact.Text(v, max)))
		}
	}
	str("request_id", e.RequestID, MaxIDLen)
	str("session_id", e.SessionID, MaxIDLen)
	str("rpc_id", e.RPCID, MaxIDLen)
	str("subject", e.Subject, MaxTextLen)
	str("actor", e.Actor, MaxTextLen)
	str("client_id", e.ClientID, MaxTextLen)
	str("auth_kind", e.AuthKind, MaxNameLen)
	str("job_id", e.JobID, MaxIDLen)
	str("tenant", e.Tenant, MaxTextLen)
	str("tool", e.Tool, MaxNameLen)
	str("resource", e.Resource, MaxTextLen)
	str("prompt", e.Prompt, MaxNameLen)
	str("audience", e.Audience, MaxTextLen)
	str("grant", e.Grant, MaxNameLen)
	str("limit", e.Limit, MaxNameLen)
	str("method", e.Method, MaxNameLen)
	str("path", e.Path, MaxTextLen)
	str("remote_addr", e.RemoteAddr, MaxTextLen)
	str("decision", e.Decision.String(), MaxNameLen)
	str("reason", e.Reason, MaxNameLen)
	if e.Status != 0 {
		a = append(a, slog.Int("status", e.Status))
	}
	if e.Duration != 0 {
		a = append(a, slog.Duration("duration", e.Duration))
	}
	str("error_class", e.ErrorClass, MaxNameLen)
	if n := min(len(e.Args), MaxArgs); n > 0 {
		names := make([]string, n)
		var values []slog.Attr
		for i, arg := range e.Args[:n] {
			names[i] = redact.Text(arg.Name, MaxNameLen)
			if arg.HasValue {
				values = append(values, slog.String(names[i], redact.Text(arg.Value, MaxTextLen)))
			}
		}
		a = append(a, slog.Any("args", names))
		if len(values) > 0 {
			a = append(a, slog.Attr{Key: "arg_values", Value: slog.GroupValue(values...)})
		}
	}
	if omitted := e.ArgsOmitted + max(len(e.Args)-MaxArgs, 0); omitted > 0 {
		a = append(a, slog.Int("args_omitted", omitted))
	}
	if e.Dropped != 0 {
		a = append(a, slog.Uint64("dropped", e.Dropped))
	}
	return a
}

// MarshalJSON encodes the event exactly as JSONSink writes it (without the
// trailing newline).
func (e Event) MarshalJSON() ([]byte, error) {
	return appendJSON(make([]byte, 0, 512), &e), nil
}
