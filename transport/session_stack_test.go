package transport

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	mcptransport "github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/auth"
)

// rawSession sends one request with a session ID and returns the status.
func rawSession(t *testing.T, method, url, token, sid, body string) int {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Mcp-Session-Id", sid)
	req.Header.Set(mcp.HeaderProtocolVersion, mcp.ProtocolVersion20251125)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
	}
	if method == http.MethodGet {
		req.Header.Set("Accept", "text/event-stream")
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	return resp.StatusCode
}

// TestStackDeleteTerminates: after its owner's DELETE a session ID answers
// 404 to every request, whoever sends it, whichever session manager mcp-go
// runs (StatelessGeneratingSessionIdManager, the multi-replica choice,
// forgets nothing on its own).
func TestStackDeleteTerminates(t *testing.T) {
	for name, opt := range map[string]server.StreamableHTTPOption{
		"stateful":             server.WithStateful(true),
		"stateless-generating": server.WithSessionIdManager(&server.StatelessGeneratingSessionIdManager{}),
	} {
		t.Run(name, func(t *testing.T) {
			st := newStack(t, nil, opt)
			alice := st.token(t, map[string]any{"sub": "alice", "scope": "notes:read"})
			ctx := context.Background()
			c := st.client(t, alice)
			_, err := c.Initialize(ctx, initReq(mcp.ProtocolVersion20251125))
			require.NoError(t, err)
			sid := c.GetSessionId()
			require.NotEmpty(t, sid)
			_, err = callText(t, c, "whoami")
			require.NoError(t, err)

			require.Equal(t, http.StatusOK, rawSession(t, http.MethodDelete, st.url, alice, sid, ""))

			call := `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"whoami"}}`
			assert.Equal(t, http.StatusNotFound, rawSession(t, http.MethodPost, st.url, alice, sid, call), "POST after DELETE")
			assert.Equal(t, http.StatusNotFound, rawSession(t, http.MethodGet, st.url, alice, sid, ""), "GET after DELETE")
			assert.Equal(t, http.StatusNotFound, rawSession(t, http.MethodDelete, st.url, alice, sid, ""), "DELETE after DELETE")
			_, err = callText(t, c, "whoami")
			assert.ErrorIs(t, err, mcptransport.ErrSessionTerminated, "the mcp-go client sees its session ended")

			// A new session for the same caller works.
			c2 := st.client(t, alice)
			_, err = c2.Initialize(ctx, initReq(mcp.ProtocolVersion20251125))
			require.NoError(t, err)
			assert.NotEqual(t, sid, c2.GetSessionId())
			_, err = callText(t, c2, "whoami")
			assert.NoError(t, err)
		})
	}
}

// fakeClock is a settable clock for the session stores.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// rawInit posts a 2025-11-25 initialize and returns the response.
func rawInit(t *testing.T, url, token string) *http.Response {
	t.Helper()
	body := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"` + mcp.ProtocolVersion20251125 +
		`","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp
}

// TestStackSessionCaps: past the per-principal or the total cap an
// initialize gets 429 with Retry-After and an audit event, before mcp-go
// allocates a session; DELETE and idle expiry free slots; stateless
// 2026-07-28 requests hold no session and are never refused by the cap.
func TestStackSessionCaps(t *testing.T) {
	clock := &fakeClock{now: time.Now()}
	st := newStack(t, func(c *Config) {
		c.Sessions = SessionConfig{MaxPerPrincipal: 2, MaxTotal: 3, Now: clock.Now}
	})
	alice := st.token(t, map[string]any{"sub": "alice", "scope": "notes:read"})
	bob := st.token(t, map[string]any{"sub": "bob", "scope": "notes:read"})
	ctx := context.Background()

	open := func(tok string) (*client.Client, error) {
		c := st.client(t, tok)
		_, err := c.Initialize(ctx, initReq(mcp.ProtocolVersion20251125))
		return c, err
	}
	a1, err := open(alice)
	require.NoError(t, err)
	_, err = open(alice)
	require.NoError(t, err)

	resp := rawInit(t, st.url, alice)
	assert.Equal(t, http.StatusTooManyRequests, resp.StatusCode, "alice is at her cap")
	assert.NotEmpty(t, resp.Header.Get("Retry-After"))
	assert.Empty(t, resp.Header.Get("Mcp-Session-Id"))
	_, err = open(alice)
	assert.Error(t, err, "the mcp-go client is refused too")
	require.Eventually(t, func() bool {
		out := st.audit.String()
		return strings.Contains(out, "session_limit") && strings.Contains(out, `"rate_limited"`)
	}, 2*time.Second, 10*time.Millisecond, "the refusal is audited")

	// A 2026-07-28 stateless call holds no session and is not capped.
	status, _, body := rawCall(t, st.url, alice, "whoami", "")
	assert.Equal(t, http.StatusOK, status, body)

	// Bob takes the last slot of the total; then the server is full.
	_, err = open(bob)
	require.NoError(t, err)
	assert.Equal(t, http.StatusTooManyRequests, rawInit(t, st.url, bob).StatusCode, "total cap")

	// DELETE frees a slot.
	require.Equal(t, http.StatusOK, rawSession(t, http.MethodDelete, st.url, alice, a1.GetSessionId(), ""))
	_, err = open(alice)
	require.NoError(t, err, "DELETE freed alice's slot")
	assert.Equal(t, http.StatusTooManyRequests, rawInit(t, st.url, alice).StatusCode)

	// Idle expiry frees every slot.
	clock.Advance(DefaultSessionIdleTTL + time.Second)
	_, err = open(alice)
	require.NoError(t, err, "expired sessions no longer count")
	_, err = open(bob)
	require.NoError(t, err)
}

func TestMemorySessionCounts(t *testing.T) {
	ctx := context.Background()
	now := time.Unix(1000, 0)
	m := &MemorySessionCounts{}
	lim := SessionLimits{PerOwner: 1, Total: 2}
	r, _, err := m.Reserve(ctx, "a", lim, now)
	require.NoError(t, err)
	_, retry, err := m.Reserve(ctx, "a", lim, now)
	require.ErrorIs(t, err, ErrSessionLimit, "a reservation counts")
	assert.Positive(t, retry)
	require.NoError(t, m.Commit(ctx, r, "s1", now.Add(time.Minute)))
	require.NoError(t, m.Touch(ctx, "s1", now.Add(time.Hour)))
	_, _, err = m.Reserve(ctx, "a", lim, now.Add(30*time.Minute))
	assert.ErrorIs(t, err, ErrSessionLimit, "touched: still live")
	r2, _, err := m.Reserve(ctx, "b", lim, now)
	require.NoError(t, err)
	require.NoError(t, m.Release(ctx, r2))
	require.NoError(t, m.Release(ctx, "s1"))
	assert.Zero(t, m.Len())
	_, _, err = m.Reserve(ctx, "a", lim, now)
	assert.NoError(t, err)
}

// principalsValidator maps fixed test tokens to principals, so one user can
// arrive directly, as a job principal, or through one service or another.
type principalsValidator map[string]*auth.Principal

func (v principalsValidator) Validate(_ context.Context, tok string) (*auth.Principal, error) {
	if p, ok := v[tok]; ok {
		return p, nil
	}
	return nil, auth.ErrInvalidToken
}

// TestStackSessionBindingActorKind: a session created by a user directly,
// or by a service acting for that user, serves only exactly that caller; a
// job principal or another service acting for the same user gets 404 — in
// the session era, and the same principals' 2026-07-28 stateless calls are
// unaffected.
func TestStackSessionBindingActorKind(t *testing.T) {
	const iss = "https://idp.example.com"
	scopes := []string{"notes:read"}
	svc := func(name string) *auth.Principal { return &auth.Principal{Issuer: iss, Subject: name, Scopes: scopes} }
	callers := principalsValidator{
		"direct": {Issuer: iss, Subject: "alice", Scopes: scopes},
		"job":    {Issuer: iss, Subject: "alice", Scopes: scopes, Kind: auth.KindJob, JobID: "j1"},
		"svc-a":  {Issuer: iss, Subject: "alice", Scopes: scopes, Actor: svc("svc-a")},
		"svc-b":  {Issuer: iss, Subject: "alice", Scopes: scopes, Actor: svc("svc-b")},
	}
	st := newStack(t, func(c *Config) {
		c.Validator = callers
		c.Tenancy = nil
	})
	ctx := context.Background()
	for _, owner := range []string{"direct", "svc-a"} {
		t.Run(owner, func(t *testing.T) {
			c := st.client(t, owner)
			_, err := c.Initialize(ctx, initReq(mcp.ProtocolVersion20251125))
			require.NoError(t, err)
			sid := c.GetSessionId()
			require.NotEmpty(t, sid)
			call := `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"whoami"}}`
			for tok := range callers {
				want := http.StatusNotFound
				if tok == owner {
					want = http.StatusOK
				}
				assert.Equal(t, want, rawSession(t, http.MethodPost, st.url, tok, sid, call), "%s in %s's session", tok, owner)
			}
			for _, era := range eras {
				other, err := eraClient(t, st.url, "job", era)
				require.NoError(t, err, era)
				_, err = callText(t, other, "whoami")
				assert.NoError(t, err, "the job principal's own %s calls still work", era)
			}
		})
	}
}

// failingTerminated is a TerminatedSessions whose backend is down.
type failingTerminated struct{}

func (failingTerminated) Terminate(context.Context, string, time.Time) error { return assert.AnError }
func (failingTerminated) Terminated(context.Context, string, time.Time) (bool, error) {
	return false, assert.AnError
}

// TestStackSessionStoreFailsClosed: a terminated-session store that cannot
// answer makes session requests 503, never a silent pass.
func TestStackSessionStoreFailsClosed(t *testing.T) {
	st := newStack(t, func(c *Config) { c.Sessions.Terminated = failingTerminated{} })
	alice := st.token(t, map[string]any{"sub": "alice", "scope": "notes:read"})
	c := st.client(t, alice)
	// initialize itself carries no session ID; the initialized
	// notification that follows does, and is refused.
	_, err := c.Initialize(context.Background(), initReq(mcp.ProtocolVersion20251125))
	require.ErrorContains(t, err, "503")
	sid := c.GetSessionId()
	require.NotEmpty(t, sid)
	call := `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"whoami"}}`
	assert.Equal(t, http.StatusServiceUnavailable, rawSession(t, http.MethodPost, st.url, alice, sid, call))
	assert.Equal(t, http.StatusServiceUnavailable, rawSession(t, http.MethodDelete, st.url, alice, sid, ""))
}
