package obo_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/audit"
	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/obo"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// The audit recorder is obo's Auditor.
var _ obo.Auditor = (*audit.Recorder)(nil)

// TestAuditWithRecorder wires Config.Audit to the real audit recorder, with
// no obo-specific classifier: one record per exchange made, none for cache
// hits, obo's classes from the errors themselves, no token anywhere.
func TestAuditWithRecorder(t *testing.T) {
	var out lockedBuffer
	sink, err := audit.NewJSONSink(&out)
	require.NoError(t, err)
	rec, err := audit.New(audit.Config{Sink: sink})
	require.NoError(t, err)

	as := newFakeAS(t, "client_secret_basic")
	ex := newExchanger(t, as, func(c *obo.Config) { c.Audit = rec })
	ctx := auth.NewContext(userCtx(alice), &auth.Principal{Subject: "alice", Issuer: "https://idp"})
	tok, err := ex.Token(ctx, calendar)
	require.NoError(t, err)
	_, err = ex.Token(ctx, calendar) // cache hit: not recorded again
	require.NoError(t, err)
	_, err = ex.Token(context.Background(), obo.Target{Flavor: obo.EntraOBO, Scopes: []string{"api://mail/.default"}})
	require.ErrorIs(t, err, obo.ErrNoCredential)
	as.respond = func(url.Values) (int, any) {
		return 400, map[string]any{"error": "interaction_required", "claims": `{"id_token":{}}`}
	}
	_, err = ex.Token(userCtx(bob), calendar)
	require.Error(t, err)
	require.NoError(t, rec.Close())

	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	require.Len(t, lines, 3, out.String())
	assert.Contains(t, lines[0], `"grant":"token-exchange"`)
	assert.Contains(t, lines[0], `"audience":"calendar-api"`)
	assert.Contains(t, lines[0], `"subject":"alice"`)
	assert.Contains(t, lines[1], `"grant":"jwt-bearer"`)
	assert.Contains(t, lines[1], `"audience":"api://mail"`)
	assert.Contains(t, lines[1], `"no_credential"`)
	assert.Contains(t, lines[1], `"decision":"deny"`)
	assert.Contains(t, lines[2], `"interaction_required"`)
	assert.Contains(t, lines[2], `"decision":"deny"`)
	assertNoSecrets(t, out.String(), alice, bob, tok.AccessToken.Reveal(), as.secret)
}

// auditClassed is what package audit looks for in an error chain.
type auditClassed interface {
	AuditClass() (class string, denied bool)
}

func TestAuditClass(t *testing.T) {
	tests := []struct {
		err    error
		class  string
		denied bool
	}{
		{errors.New("other"), "", false},
		{&obo.Error{Err: obo.ErrNoCredential}, "no_credential", true},
		{&obo.Error{Err: obo.ErrPassthrough}, "passthrough", true},
		{&obo.Error{Code: "invalid_grant", Err: obo.ErrRejected}, "invalid_grant", true},
		{&obo.Error{Code: "invalid_grant", SubError: "consent_required", Err: obo.ErrRejected}, "interaction_required", true},
		{&obo.Error{Err: obo.ErrRejected}, "exchange_rejected", true},
		{&obo.Error{Err: obo.ErrUnavailable}, "exchange_unavailable", false},
		{&obo.Error{Err: obo.ErrInvalidResponse}, "exchange_invalid_response", false},
		{obo.ErrConfig, "exchange_config", false},
		{fmt.Errorf("obo: Target.Scopes: %w", obo.ErrConfig), "exchange_config", false},
		{fmt.Errorf("%w: header X-Token", obo.ErrPassthrough), "passthrough", true},
		{fmt.Errorf("calendar tool: %w", &obo.Error{Code: "invalid_scope", Err: obo.ErrRejected}), "invalid_scope", true},
	}
	for _, tt := range tests {
		var c auditClassed
		if !errors.As(tt.err, &c) {
			assert.Empty(t, tt.class, "%v names no class", tt.err)
			continue
		}
		class, denied := c.AuditClass()
		assert.Equal(t, tt.class, class, "%v", tt.err)
		assert.Equal(t, tt.denied, denied, "%v", tt.err)
	}
}

// TestToolErrorClassifiedByAudit: a tool that returns an obo error is
// audited with obo's class, with no classifier configured.
func TestToolErrorClassifiedByAudit(t *testing.T) {
	var out lockedBuffer
	sink, err := audit.NewJSONSink(&out)
	require.NoError(t, err)
	rec, err := audit.New(audit.Config{Sink: sink})
	require.NoError(t, err)
	tool := rec.ToolMiddleware(func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return nil, fmt.Errorf("calendar: %w", &obo.Error{Code: obo.CodeConsentRequired, Err: obo.ErrRejected})
	})
	req := mcp.CallToolRequest{}
	req.Params.Name = "calendar"
	_, err = tool(context.Background(), req)
	require.Error(t, err)
	require.NoError(t, rec.Close())
	assert.Contains(t, out.String(), `"error_class":"interaction_required"`)
	assert.Contains(t, out.String(), `"decision":"deny"`)
}

// observerFunc adapts a function to obo.Observer in tests.
type observerFunc func(ctx context.Context, ev obo.ExchangeEvent)

func (f observerFunc) ObserveExchange(ctx context.Context, ev obo.ExchangeEvent) { f(ctx, ev) }

func (f observerFunc) StartExchange(ctx context.Context, _ obo.ExchangeEvent) (context.Context, func(error)) {
	return ctx, nil
}

// countingStarts is an observerFunc that counts StartExchange calls.
type countingStarts struct {
	observerFunc
	starts atomic.Int64
}

func (c *countingStarts) StartExchange(ctx context.Context, _ obo.ExchangeEvent) (context.Context, func(error)) {
	c.starts.Add(1)
	return ctx, nil
}

// startKey marks the context a startObserver returns.
type startKey struct{}

// startObserver records StartExchange calls, the events they describe and
// the errors their end functions get; the context it returns carries the
// call's number under startKey.
type startObserver struct {
	mu     sync.Mutex
	starts []obo.ExchangeEvent
	ends   []error
	deadl  []bool // whether the context given to StartExchange had a deadline
}

func (o *startObserver) ObserveExchange(context.Context, obo.ExchangeEvent) {}

func (o *startObserver) StartExchange(ctx context.Context, ev obo.ExchangeEvent) (context.Context, func(error)) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.starts = append(o.starts, ev)
	_, has := ctx.Deadline()
	o.deadl = append(o.deadl, has)
	n := len(o.starts)
	ended := false
	return context.WithValue(ctx, startKey{}, n), func(err error) {
		o.mu.Lock()
		defer o.mu.Unlock()
		if ended {
			panic("end called twice")
		}
		ended = true
		o.ends = append(o.ends, err)
	}
}

// ctxTransport records the startKey value of each request's context.
type ctxTransport struct {
	mu   sync.Mutex
	seen []any
}

func (c *ctxTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	c.seen = append(c.seen, r.Context().Value(startKey{}))
	c.mu.Unlock()
	return http.DefaultTransport.RoundTrip(r)
}

// TestStartExchange: the observer's start hook runs once per exchange made
// (not for a cache hit), the token endpoint is called with the context it
// returns (so a span it holds is the parent of the HTTP client's), within
// the exchange's timeout, and its end function gets the outcome once; a
// call with no credential is started and ended with ErrNoCredential.
func TestStartExchange(t *testing.T) {
	as := newFakeAS(t, "client_secret_basic")
	obs := &startObserver{}
	ct := &ctxTransport{}
	ex := newExchanger(t, as, func(c *obo.Config) {
		c.Observer = obs
		c.HTTPClient = &http.Client{Transport: ct}
	})
	_, err := ex.Token(userCtx(alice), calendar)
	require.NoError(t, err)
	_, err = ex.Token(userCtx(alice), calendar) // a cache hit
	require.NoError(t, err)
	as.respond = func(url.Values) (int, any) { return 400, map[string]string{"error": "invalid_grant"} }
	_, err = ex.Token(userCtx(bob), calendar)
	require.Error(t, err)
	_, err = ex.Token(context.Background(), calendar)
	require.ErrorIs(t, err, obo.ErrNoCredential)

	obs.mu.Lock()
	defer obs.mu.Unlock()
	require.Len(t, obs.starts, 3, "alice's exchange, bob's, the call with no credential")
	for _, ev := range obs.starts {
		assert.Equal(t, obo.TokenExchange, ev.Flavor)
		assert.Equal(t, "calendar-api", ev.Audience)
		assert.Equal(t, "https://calendar.example.com/", ev.Resource)
		assert.Equal(t, "calendar.read", ev.Scope)
		assert.False(t, ev.Cached || ev.Shared)
		assert.NoError(t, ev.Err)
	}
	assert.Equal(t, []bool{true, true, false}, obs.deadl, "an exchange starts within its own timeout")
	require.Len(t, obs.ends, 3)
	assert.NoError(t, obs.ends[0])
	assert.ErrorIs(t, obs.ends[1], obo.ErrRejected)
	assert.ErrorIs(t, obs.ends[2], obo.ErrNoCredential)
	ct.mu.Lock()
	defer ct.mu.Unlock()
	assert.Equal(t, []any{1, 2}, ct.seen, "each request to the token endpoint is made in its exchange's context")
}

// TestAuditPassthroughRefused: a downstream request Transport refuses for
// carrying the inbound token is a failure that sent nothing, and Auditor's
// contract records those: one deny record of class passthrough, with
// neither token. It went unrecorded.
func TestAuditPassthroughRefused(t *testing.T) {
	var out lockedBuffer
	sink, err := audit.NewJSONSink(&out)
	require.NoError(t, err)
	rec, err := audit.New(audit.Config{Sink: sink})
	require.NoError(t, err)
	as := newFakeAS(t, "client_secret_basic")
	ex := newExchanger(t, as, func(c *obo.Config) { c.Audit = rec })
	tr, err := ex.Transport(calendar, nil)
	require.NoError(t, err)

	ctx := auth.NewContext(userCtx(alice), &auth.Principal{Subject: "alice", Issuer: "https://idp"})
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://127.0.0.1:1/api?access_token="+alice, nil)
	require.NoError(t, err)
	_, err = tr.RoundTrip(req)
	require.ErrorIs(t, err, obo.ErrPassthrough)
	require.NoError(t, rec.Close())
	assert.Zero(t, as.calls.Load(), "nothing exchanged")

	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	require.Len(t, lines, 1, out.String())
	assert.Contains(t, lines[0], `"grant":"token-exchange"`)
	assert.Contains(t, lines[0], `"audience":"calendar-api"`)
	assert.Contains(t, lines[0], `"passthrough"`)
	assert.Contains(t, lines[0], `"decision":"deny"`)
	assert.NotContains(t, out.String(), alice)
}
