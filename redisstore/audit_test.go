package redisstore

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/audit"
)

type recordFunc func(context.Context, audit.Event) error

func (f recordFunc) Record(ctx context.Context, e audit.Event) error { return f(ctx, e) }

func TestAuditTo(t *testing.T) {
	var got []audit.Event
	hook := AuditTo(recordFunc(func(_ context.Context, e audit.Event) error { got = append(got, e); return nil }))
	secretErr := errors.New("dial tcp: password=hunter2")
	hook(context.Background(), Event{Store: StoreReplay, Policy: FailClosed, Err: secretErr})
	hook(context.Background(), Event{Store: StoreTokens, Policy: DegradeLocal, Err: secretErr})
	hook(context.Background(), Event{Store: StoreReplay, Recovered: true})
	require.Len(t, got, 3)
	assert.Equal(t, audit.KindStoreFailure, got[0].Kind)
	assert.Equal(t, "dpop_replay:fail_closed", got[0].Reason)
	assert.Equal(t, audit.DecisionDeny, got[0].Decision)
	assert.Equal(t, "store_unavailable", got[0].ErrorClass)
	assert.Equal(t, "obo_tokens:degrade_local", got[1].Reason)
	assert.Equal(t, audit.DecisionNone, got[1].Decision)
	assert.Equal(t, "dpop_replay:recovered", got[2].Reason)
	assert.Empty(t, got[2].ErrorClass)
	for _, e := range got {
		b, err := e.MarshalJSON()
		require.NoError(t, err)
		assert.NotContains(t, string(b), "hunter2", "no error text in the audit event")
		assert.Contains(t, string(b), `"kind":"store_failure"`)
	}
}
