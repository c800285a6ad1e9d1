package transport

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/tenancy"
)

func testSealer(t testing.TB, cfg RequestStateConfig) *requestSealer {
	t.Helper()
	s, err := newRequestSealer(cfg, make([]byte, 32), "https://mcp.example/mcp", nil)
	require.NoError(t, err)
	return s
}

func principalCtx(sub, tenant string, actor *auth.Principal) context.Context {
	ctx := auth.NewContext(context.Background(), &auth.Principal{Issuer: "https://idp", Subject: sub, Actor: actor})
	return tenancy.NewContext(ctx, tenant)
}

func TestRequestStateConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  RequestStateConfig
		err  string
	}{
		{"short key", RequestStateConfig{Key: make([]byte, 16)}, "Config.RequestState.Key must be 32 bytes"},
		{"negative TTL", RequestStateConfig{TTL: -time.Second}, "Config.RequestState.TTL"},
		{"negative cap", RequestStateConfig{MaxBytes: -1}, "Config.RequestState.MaxBytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newRequestSealer(tt.cfg, make([]byte, 32), "https://mcp.example/mcp", nil)
			require.ErrorIs(t, err, ErrConfig)
			assert.Contains(t, err.Error(), tt.err)
		})
	}
	s := testSealer(t, RequestStateConfig{})
	assert.Equal(t, DefaultRequestStateTTL, s.ttl)
	assert.Equal(t, DefaultMaxRequestStateBytes, s.max)
}

func TestRequestStateSealOpen(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	s := testSealer(t, RequestStateConfig{Now: func() time.Time { return now }})
	digest, err := requestDigest("tools/call", "t", map[string]any{"b": 1, "a": "x"}, nil)
	require.NoError(t, err)
	same, err := requestDigest("tools/call", "t", map[string]any{"a": "x", "b": 1}, nil)
	require.NoError(t, err)
	assert.Equal(t, digest, same, "argument order does not matter")
	other, err := requestDigest("tools/call", "t", map[string]any{"a": "y", "b": 1}, nil)
	require.NoError(t, err)
	renamed, err := requestDigest("prompts/get", "t", map[string]any{"a": "x", "b": 1}, nil)
	require.NoError(t, err)

	service := &auth.Principal{Issuer: "https://idp", Subject: "svc"}
	alice := principalCtx("alice", "acme", nil)
	sealed, err := s.seal(alice, digest, "secret-state")
	require.NoError(t, err)
	assert.NotContains(t, sealed, "secret")
	again, err := s.seal(alice, digest, "secret-state")
	require.NoError(t, err)
	assert.NotEqual(t, sealed, again, "a fresh nonce every time")

	state, reason := s.open(alice, digest, sealed)
	assert.Empty(t, reason)
	assert.Equal(t, "secret-state", state)

	tests := []struct {
		name   string
		ctx    context.Context
		digest []byte
		sealed string
		reason string
	}{
		{"other subject", principalCtx("bob", "acme", nil), digest, sealed, stateForeign},
		{"other tenant", principalCtx("alice", "globex", nil), digest, sealed, stateForeign},
		{"with an actor", principalCtx("alice", "acme", service), digest, sealed, stateForeign},
		{"no principal", context.Background(), digest, sealed, stateForeign},
		{"other arguments", alice, other, sealed, stateOtherRequest},
		{"other method", alice, renamed, sealed, stateOtherRequest},
		{"not ours", alice, digest, "step1", stateMalformed},
		{"bad base64", alice, digest, requestStatePrefix + "!!", stateMalformed},
		{"short", alice, digest, requestStatePrefix + "AAAA", stateMalformed},
		{"tampered", alice, digest, sealed[:len(sealed)-2] + "AA", stateTampered},
		// Another string for the same sealed bytes: a line break (which
		// encoding/base64 skips) or non-zero trailing bits.
		{"line break", alice, digest, sealed[:len(sealed)/2] + "\n" + sealed[len(sealed)/2:], stateMalformed},
		{"carriage return", alice, digest, sealed + "\r", stateMalformed},
		{"too long", alice, digest, sealed + strings.Repeat("A", DefaultMaxRequestStateBytes), stateTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			state, reason := s.open(tt.ctx, tt.digest, tt.sealed)
			assert.Equal(t, tt.reason, reason)
			assert.Empty(t, state)
		})
	}

	t.Run("expired", func(t *testing.T) {
		now = now.Add(DefaultRequestStateTTL)
		_, reason := s.open(alice, digest, sealed)
		assert.Equal(t, stateExpired, reason)
	})
	t.Run("another key", func(t *testing.T) {
		o, err := newRequestSealer(RequestStateConfig{}, []byte(strings.Repeat("k", 32)), "https://mcp.example/mcp", nil)
		require.NoError(t, err)
		_, reason := o.open(alice, digest, again)
		assert.Equal(t, stateTampered, reason)
	})
	t.Run("another resource with the same key", func(t *testing.T) {
		// Found in review: the resource was not bound, so the Guard of
		// another resource sharing the key opened this one's state.
		o, err := newRequestSealer(RequestStateConfig{}, make([]byte, 32), "https://other.example/mcp", nil)
		require.NoError(t, err)
		_, reason := o.open(alice, digest, again)
		assert.Equal(t, stateTampered, reason)
	})
	t.Run("state too large to seal", func(t *testing.T) {
		_, err := s.seal(alice, digest, strings.Repeat("x", DefaultMaxRequestStateBytes))
		require.ErrorIs(t, err, ErrRequestState)
	})
}

// FuzzRequestStateOpen: whatever a client sends as requestState, the opener
// neither panics nor accepts anything but what this key sealed ("mine" is
// the only state ever sealed with it; each fuzz process seals its own copy).
func FuzzRequestStateOpen(f *testing.F) {
	s := testSealer(f, RequestStateConfig{})
	ctx := principalCtx("alice", "acme", nil)
	digest, err := requestDigest("tools/call", "t", map[string]any{"a": "x"}, nil)
	require.NoError(f, err)
	sealed, err := s.seal(ctx, digest, "mine")
	require.NoError(f, err)
	f.Add(sealed)
	f.Add(sealed[:len(sealed)-1])
	f.Add(requestStatePrefix)
	f.Add("")
	f.Add("step1:x")
	f.Fuzz(func(t *testing.T, in string) {
		state, reason := s.open(ctx, digest, in)
		if reason == "" && state != "mine" {
			t.Fatalf("accepted %q as %q", in, state)
		}
	})
}
