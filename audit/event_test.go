package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/tenancy"
)

func fullEvent() Event {
	return Event{
		Time:      time.Date(2026, 5, 6, 7, 8, 9, 123456789, time.UTC),
		Kind:      KindToolCall,
		RequestID: "req-1", SessionID: "sess-1", RPCID: "7",
		Subject: "alice", Actor: "svc", ClientID: "cli", AuthKind: "user", JobID: "job-1", Tenant: "acme",
		Tool: "search", Resource: "docs://a", Prompt: "p", Audience: "api://x", Grant: "token-exchange",
		Method: "POST", Path: "/mcp", RemoteAddr: "127.0.0.1:5000",
		Decision: DecisionAllow, Reason: "ok", Status: 200, Duration: 1500 * time.Microsecond,
		ErrorClass: "tool_error",
		Args:       []Arg{{Name: "limit", Value: "10", HasValue: true}, {Name: "query"}},
		Dropped:    3,
	}
}

func TestKindAndDecisionNames(t *testing.T) {
	seen := map[string]Kind{}
	for k := KindUnknown; k < kindCount; k++ {
		name := k.String()
		require.NotEmpty(t, name)
		_, dup := seen[name]
		assert.False(t, dup, "duplicate kind name %q", name)
		seen[name] = k
	}
	assert.Equal(t, "unknown", Kind(200).String())
	assert.Equal(t, "tool_denied", KindToolDenied.String())
	assert.Equal(t, "", DecisionNone.String())
	assert.Equal(t, "allow", DecisionAllow.String())
	assert.Equal(t, "deny", DecisionDeny.String())
}

func TestNewEventFromContext(t *testing.T) {
	assert.Equal(t, Event{Kind: KindRateLimited}, NewEvent(context.Background(), KindRateLimited))

	ctx := auth.NewContext(context.Background(), &auth.Principal{
		Kind: auth.KindJob, Subject: "bob", ClientID: "c1", JobID: "j-9",
		Actor: &auth.Principal{ClientID: "svc-client"},
	})
	ctx = tenancy.NewContext(ctx, "globex")
	ctx = NewRequestIDContext(ctx, "r1")
	ctx = NewRPCIDContext(ctx, "abc")
	ctx = server.NewMCPServer("x", "1").WithContext(ctx, server.NewInProcessSession("s1", nil))
	ctx = auth.NewCredentialContext(ctx, auth.NewCredential("raw-token-value-that-must-not-leak"))
	e := NewEvent(ctx, KindRateLimited)
	assert.Equal(t, Event{
		Kind: KindRateLimited, RequestID: "r1", RPCID: "abc", SessionID: "s1",
		Subject: "bob", ClientID: "c1", AuthKind: "job", JobID: "j-9", Actor: "svc-client", Tenant: "globex",
	}, e)
}

func TestRequestAndRPCIDContext(t *testing.T) {
	_, ok := RequestIDFromContext(context.Background())
	assert.False(t, ok)
	_, ok = RequestIDFromContext(NewRequestIDContext(context.Background(), ""))
	assert.False(t, ok, "empty is none")
	id, ok := RequestIDFromContext(NewRequestIDContext(context.Background(), "x"))
	assert.True(t, ok)
	assert.Equal(t, "x", id)
	id, ok = RPCIDFromContext(NewRPCIDContext(context.Background(), "9"))
	assert.True(t, ok)
	assert.Equal(t, "9", id)
	_, ok = RPCIDFromContext(context.Background())
	assert.False(t, ok)
}

func TestMarshalJSON(t *testing.T) {
	b, err := json.Marshal(fullEvent())
	require.NoError(t, err)
	want := `{"time":"2026-05-06T07:08:09.123456789Z","kind":"tool_call","request_id":"req-1","session_id":"sess-1",` +
		`"rpc_id":"7","subject":"alice","actor":"svc","client_id":"cli","auth_kind":"user","job_id":"job-1",` +
		`"tenant":"acme","tool":"search","resource":"docs://a","prompt":"p","audience":"api://x",` +
		`"grant":"token-exchange","method":"POST","path":"/mcp","remote_addr":"127.0.0.1:5000",` +
		`"decision":"allow","reason":"ok","status":200,"duration_ns":1500000,"error_class":"tool_error",` +
		`"args":["limit","query"],"arg_values":{"limit":"10"},"dropped":3}`
	assert.JSONEq(t, want, string(b))
	assert.Equal(t, want, string(b), "key order is fixed")

	minimal, err := json.Marshal(Event{Kind: KindQueueOverflow, Dropped: 1})
	require.NoError(t, err)
	assert.Equal(t, `{"time":"0001-01-01T00:00:00Z","kind":"queue_overflow","dropped":1}`, string(minimal))
}

func TestMarshalJSONArgsOmitted(t *testing.T) {
	args := make([]Arg, MaxArgs+5)
	for i := range args {
		args[i] = Arg{Name: "a"}
	}
	b, err := json.Marshal(Event{Kind: KindToolCall, Args: args, ArgsOmitted: 2})
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m))
	assert.Len(t, m["args"], MaxArgs)
	assert.EqualValues(t, 7, m["args_omitted"])
}

func TestJSONSink(t *testing.T) {
	var buf bytes.Buffer
	s, err := NewJSONSink(&buf)
	require.NoError(t, err)
	require.NoError(t, s.Emit(context.Background(), fullEvent()))
	require.NoError(t, s.Emit(context.Background(), Event{Kind: KindAuthFailure, Status: 401}))
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	require.Len(t, lines, 2)
	want, _ := fullEvent().MarshalJSON()
	assert.Equal(t, string(want), lines[0])
	assert.JSONEq(t, `{"time":"0001-01-01T00:00:00Z","kind":"auth_failure","status":401}`, lines[1])

	_, err = NewJSONSink(nil)
	assert.ErrorIs(t, err, ErrConfig)

	bad, err := NewJSONSink(failWriter{})
	require.NoError(t, err)
	err = bad.Emit(context.Background(), Event{})
	assert.ErrorIs(t, err, ErrSink)
	assert.ErrorIs(t, err, errWrite)

	short, err := NewJSONSink(shortWriter{})
	require.NoError(t, err)
	assert.ErrorIs(t, short.Emit(context.Background(), Event{}), ErrSink)
}

var errWrite = errors.New("write failed")

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errWrite }

type shortWriter struct{}

func (shortWriter) Write(b []byte) (int, error) { return len(b) / 2, nil }

func TestLogValue(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(slog.NewJSONHandler(&buf, nil))
	l.Info("x", "event", fullEvent())
	var m map[string]any
	require.NoError(t, json.Unmarshal(buf.Bytes(), &m))
	e, ok := m["event"].(map[string]any)
	require.True(t, ok)
	assert.Equal(t, "tool_call", e["kind"])
	assert.Equal(t, "alice", e["subject"])
	assert.Equal(t, "allow", e["decision"])
	assert.EqualValues(t, 200, e["status"])
	assert.EqualValues(t, 1500*time.Microsecond, e["duration"])
	assert.Equal(t, []any{"limit", "query"}, e["args"])
	assert.Equal(t, map[string]any{"limit": "10"}, e["arg_values"])
	assert.EqualValues(t, 3, e["dropped"])
	assert.Equal(t, "2026-05-06T07:08:09.123456789Z", e["time"])

	buf.Reset()
	l.Info("x", "event", Event{Kind: KindRequest})
	require.NoError(t, json.Unmarshal(buf.Bytes(), &m))
	assert.Equal(t, map[string]any{"kind": "http_request"}, m["event"], "empty fields omitted")
}

func TestSlogSink(t *testing.T) {
	var buf bytes.Buffer
	s, err := NewSlogSink(SlogConfig{Handler: slog.NewJSONHandler(&buf, nil)})
	require.NoError(t, err)
	ok := fullEvent()
	ok.ErrorClass = ""
	require.NoError(t, s.Emit(context.Background(), ok))
	deny := Event{Time: time.Unix(10, 0), Kind: KindAuthFailure, Decision: DecisionDeny, Reason: "invalid_token"}
	require.NoError(t, s.Emit(context.Background(), deny))

	dec := json.NewDecoder(&buf)
	var first, second map[string]any
	require.NoError(t, dec.Decode(&first))
	require.NoError(t, dec.Decode(&second))
	assert.Equal(t, "audit", first["msg"])
	assert.Equal(t, "INFO", first["level"])
	assert.Equal(t, "2026-05-06T07:08:09.123456789Z", first["time"])
	assert.Equal(t, "search", first["tool"], "fields at top level")
	assert.Equal(t, "WARN", second["level"])
	assert.Equal(t, "invalid_token", second["reason"])

	_, err = NewSlogSink(SlogConfig{})
	assert.ErrorIs(t, err, ErrConfig)

	quiet, err := NewSlogSink(SlogConfig{
		Handler: slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelError}),
		Message: "audit-event",
	})
	require.NoError(t, err)
	assert.ErrorIs(t, quiet.Emit(context.Background(), fullEvent()), ErrSink,
		"a disabled handler must not swallow audit events silently")

	custom, err := NewSlogSink(SlogConfig{
		Handler: slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelError}),
		Level:   slog.LevelError, DenyLevel: slog.LevelError + 4, Message: "audit-event",
	})
	require.NoError(t, err)
	buf.Reset()
	require.NoError(t, custom.Emit(context.Background(), deny))
	assert.Contains(t, buf.String(), `"msg":"audit-event"`)
	assert.Contains(t, buf.String(), `"level":"ERROR+4"`)
}
