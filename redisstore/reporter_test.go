package redisstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/audit"
	"github.com/mcpguard/mcpguard/telemetry"
)

// The audit recorder and telemetry plug in as they are.
var (
	_ Reporter = (*audit.Recorder)(nil)
	_ Reporter = (*telemetry.Telemetry)(nil)
)

// A store's failures and recovery reach an *audit.Recorder given as
// Config.Reporter as store_failure events, without the Redis error's text.
func TestReporterAudit(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { _ = c.Close() })
	var buf bytes.Buffer
	sink, err := audit.NewJSONSink(&buf)
	require.NoError(t, err)
	rec, err := audit.New(audit.Config{Sink: sink})
	require.NoError(t, err)
	now := time.Unix(1000, 0)
	s, err := New(Config{Client: c, SealKey: testKey(1), Reporter: rec, Now: func() time.Time { return now }})
	require.NoError(t, err)

	ctx := context.Background()
	secretErr := errors.New("dial tcp: password=hunter2")
	replay := s.health(StoreReplay, FailClosed)
	tokens := s.health(StoreTokens, DegradeLocal)
	_ = replay.Fail(ctx, secretErr)
	_ = tokens.Fail(ctx, secretErr)
	replay.OK(ctx)
	require.NoError(t, rec.Close())

	assert.NotContains(t, buf.String(), "hunter2", "no error text in the audit trail")
	type line struct {
		Kind, Reason, Decision, ErrorClass string
	}
	var got []line
	for l := range strings.Lines(buf.String()) {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &m), l)
		str := func(k string) string { s, _ := m[k].(string); return s }
		got = append(got, line{str("kind"), str("reason"), str("decision"), str("error_class")})
	}
	assert.Equal(t, []line{
		{"store_failure", "dpop_replay:fail_closed", "deny", "store_unavailable"},
		{"store_failure", "obo_tokens:degrade_local", "", "store_unavailable"},
		{"store_failure", "dpop_replay:recovered", "", ""},
	}, got)
}
