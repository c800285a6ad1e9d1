package obo_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
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
