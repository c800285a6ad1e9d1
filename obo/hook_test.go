package obo_test

import (
	"bytes"
	"context"
	"errors"
	"net/url"
	"strings"
	"sync"
	"testing"

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

// TestAuditHookWithRecorder wires the hook to the real audit recorder: one
// record per exchange made, none for cache hits, no token anywhere.
func TestAuditHookWithRecorder(t *testing.T) {
	var out lockedBuffer
	sink, err := audit.NewJSONSink(&out)
	require.NoError(t, err)
	rec, err := audit.New(audit.Config{Sink: sink, ClassifyError: obo.Classify})
	require.NoError(t, err)

	as := newFakeAS(t, "client_secret_basic")
	ex := newExchanger(t, as, func(c *obo.Config) { c.OnExchange = obo.AuditHook(rec.TokenExchange) })
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
	assert.Contains(t, lines[2], `"interaction_required"`)
	assertNoSecrets(t, out.String(), alice, bob, tok.AccessToken.Reveal(), as.secret)
}

func TestClassify(t *testing.T) {
	tests := []struct {
		err    error
		class  string
		denied bool
	}{
		{nil, "", false},
		{errors.New("other"), "", false},
		{&obo.Error{Err: obo.ErrNoCredential}, "no_credential", true},
		{&obo.Error{Err: obo.ErrPassthrough}, "passthrough", true},
		{&obo.Error{Code: "invalid_grant", Err: obo.ErrRejected}, "invalid_grant", true},
		{&obo.Error{Code: "invalid_grant", SubError: "consent_required", Err: obo.ErrRejected}, "interaction_required", true},
		{&obo.Error{Err: obo.ErrRejected}, "exchange_rejected", true},
		{&obo.Error{Err: obo.ErrUnavailable}, "exchange_unavailable", false},
		{&obo.Error{Err: obo.ErrInvalidResponse}, "exchange_invalid_response", false},
		{obo.ErrConfig, "exchange_config", false},
	}
	for _, tt := range tests {
		class, denied := obo.Classify(tt.err)
		assert.Equal(t, tt.class, class, "%v", tt.err)
		assert.Equal(t, tt.denied, denied, "%v", tt.err)
	}
	assert.Nil(t, obo.AuditHook(nil))
}
