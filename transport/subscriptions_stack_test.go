package transport

import (
	"bufio"
	"context"
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
	"github.com/mcpguard/mcpguard/authz"
)

// subsClock is a settable clock shared by the validator and the registry.
type subsClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *subsClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *subsClock) Advance(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

// newSubscriptionsStack is the mediation stack (stateful) with a
// Subscriptions registry built from subsCfg, the validator and the
// registry on clock when it is set, and a signal per subscriptions/listen
// that reached the server (sent after the registry's hook has run).
func newSubscriptionsStack(t *testing.T, clock *subsClock, subsCfg authz.SubscriptionsConfig) (*stack, *authz.Subscriptions, <-chan struct{}) {
	t.Helper()
	var subs *authz.Subscriptions
	listening := make(chan struct{}, 64)
	if clock != nil {
		subsCfg.Now = clock.Now
	}
	st := newMediationStackWith(t, func(c *Config) {
		if clock != nil {
			v, err := auth.NewJWTValidator(auth.JWTConfig{Issuer: c.AuthorizationServers[0], Audience: c.Resource, Now: clock.Now})
			require.NoError(t, err)
			t.Cleanup(func() { _ = v.Close() })
			c.Validator = v
		}
	}, func(g *Guard, s *server.MCPServer) {
		var err error
		subs, err = authz.NewSubscriptions(g.cfg.Policy, subsCfg)
		require.NoError(t, err)
		for _, opt := range subs.ServerOptions() {
			opt(s)
		}
		s.GetHooks().AddBeforeSubscriptionsListen(func(context.Context, any, *mcp.SubscriptionsListenRequest) {
			listening <- struct{}{}
		})
	}, server.WithStateful(true))
	return st, subs, listening
}

// listenOpen opens a 2026-07-28 subscriptions/listen stream on c that stays
// open for the rest of the test, once the server has registered it.
func listenOpen(t *testing.T, c *client.Client, listening <-chan struct{}, uris ...string) {
	t.Helper()
	stop, err := c.ListenAsync(context.Background(), mcp.SubscriptionFilter{ResourceSubscriptions: uris}, nil)
	require.NoError(t, err)
	t.Cleanup(stop)
	select {
	case <-listening:
	case <-time.After(10 * time.Second):
		t.Fatal("the listen stream never reached the server")
	}
}

// TestStackSubscriptionsEndWithToken: once the token a subscription was
// made with has expired, the registry queues no update for it, on a
// 2026-07-28 subscriptions/listen stream and on a 2025-11-25 GET stream
// alike, while every new request with that token gets 401.
func TestStackSubscriptionsEndWithToken(t *testing.T) {
	ctx := context.Background()
	const uri = "notes://public/readme"
	t.Run(mcp.ProtocolVersion20260728, func(t *testing.T) {
		clock := &subsClock{now: time.Now()}
		st, subs, listening := newSubscriptionsStack(t, clock, authz.SubscriptionsConfig{})
		tok := st.token(t, map[string]any{"sub": "alice", "scope": "notes:read", "exp": clock.Now().Add(2 * time.Minute).Unix()})
		c := st.connect(t, tok, mcp.ProtocolVersion20260728)
		n := watch(c)
		listenOpen(t, c, listening, uri)
		require.Equal(t, 1, subs.NotifyUpdated(uri), "tracked while the token is valid")
		waitNote(t, n)

		clock.Advance(time.Hour)
		status, _, _ := rawCall(t, st.url, tok, "whoami", "")
		require.Equal(t, http.StatusUnauthorized, status, "the token is expired for every new request")
		assert.Zero(t, subs.NotifyUpdated(uri), "no update is queued for a principal whose token expired")
		time.Sleep(300 * time.Millisecond)
		assert.Equal(t, []string{uri}, n.list(), "only the update from before the expiry arrived")
	})
	t.Run(mcp.ProtocolVersion20251125, func(t *testing.T) {
		clock := &subsClock{now: time.Now()}
		st, subs, _ := newSubscriptionsStack(t, clock, authz.SubscriptionsConfig{})
		tok := st.token(t, map[string]any{"sub": "alice", "scope": "notes:read", "exp": clock.Now().Add(2 * time.Minute).Unix()})
		c := st.client(t, tok, mcptransport.WithContinuousListening())
		n := watch(c)
		require.NoError(t, c.Start(ctx))
		_, err := c.Initialize(ctx, initReq(mcp.ProtocolVersion20251125))
		require.NoError(t, err)
		require.NoError(t, c.Subscribe(ctx, mcp.SubscribeRequest{Params: mcp.SubscribeParams{URI: uri}}))
		deliver(t, n, uri, func() int { return subs.NotifyUpdated(uri) }, 1)

		clock.Advance(time.Hour)
		status, _, _ := rawCall(t, st.url, tok, "whoami", "")
		require.Equal(t, http.StatusUnauthorized, status, "the token is expired for every new request")
		before := len(n.list())
		for range 3 {
			assert.Zero(t, subs.NotifyUpdated(uri), "no update is queued for a principal whose token expired")
		}
		time.Sleep(300 * time.Millisecond)
		assert.Len(t, n.list(), before, "the GET stream receives no update after the expiry")
	})
}

// TestStackSubscriptionsPerOwnerCap: one principal cannot fill the
// registry's global MaxSessions with subscriptions/listen streams (each one
// a session of its own, which the live-session cap does not count) or with
// 2025-11-25 sessions: the subscription beyond MaxPerOwner is refused with
// a JSON-RPC error the client sees, and another principal still subscribes
// and hears of updates.
func TestStackSubscriptionsPerOwnerCap(t *testing.T) {
	ctx := context.Background()
	cfg := authz.SubscriptionsConfig{MaxSessions: 4, MaxPerOwner: 2}
	t.Run(mcp.ProtocolVersion20260728, func(t *testing.T) {
		st, subs, listening := newSubscriptionsStack(t, nil, cfg)
		bob := st.token(t, map[string]any{"sub": "bob", "scope": "notes:read"})
		alice := st.token(t, map[string]any{"sub": "alice", "scope": "notes:read"})
		for _, uri := range []string{"notes://public/bob-a", "notes://public/bob-b"} {
			listenOpen(t, st.connect(t, bob, mcp.ProtocolVersion20260728), listening, uri)
		}
		for range 2 {
			c := st.connect(t, bob, mcp.ProtocolVersion20260728)
			lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			err := c.Listen(lctx, mcp.SubscriptionFilter{ResourceSubscriptions: []string{"notes://public/bob-c"}})
			refusedInTime := lctx.Err() == nil
			cancel()
			require.Error(t, err, "bob's third stream is refused")
			assert.True(t, refusedInTime, "refused at once, not left open untracked")
			assert.Contains(t, err.Error(), authz.ErrTooManySubscriptions.Error())
		}
		c := st.connect(t, alice, mcp.ProtocolVersion20260728)
		n := watch(c)
		listenOpen(t, c, listening, "notes://public/alice")
		assert.Equal(t, 1, subs.NotifyUpdated("notes://public/alice"), "alice's subscription is tracked whatever bob holds open")
		waitNote(t, n)
		assert.Equal(t, 1, subs.NotifyUpdated("notes://public/bob-a"))
		assert.Zero(t, subs.NotifyUpdated("notes://public/bob-c"), "refused, so not tracked")
	})
	t.Run(mcp.ProtocolVersion20251125, func(t *testing.T) {
		st, subs, _ := newSubscriptionsStack(t, nil, cfg)
		bob := st.token(t, map[string]any{"sub": "bob", "scope": "notes:read"})
		alice := st.token(t, map[string]any{"sub": "alice", "scope": "notes:read"})
		subscribe := func(c *client.Client, uri string) error {
			return c.Subscribe(ctx, mcp.SubscribeRequest{Params: mcp.SubscribeParams{URI: uri}})
		}
		b1 := st.connect(t, bob, mcp.ProtocolVersion20251125)
		require.NoError(t, subscribe(b1, "notes://public/bob-a"))
		require.NoError(t, subscribe(st.connect(t, bob, mcp.ProtocolVersion20251125), "notes://public/bob-b"))
		err := subscribe(st.connect(t, bob, mcp.ProtocolVersion20251125), "notes://public/bob-c")
		require.Error(t, err, "a third session of bob's is refused")
		assert.Contains(t, err.Error(), authz.ErrTooManySubscriptions.Error())
		require.NoError(t, subscribe(b1, "notes://public/bob-c"), "a session already tracked subscribes on")

		c := st.client(t, alice, mcptransport.WithContinuousListening())
		n := watch(c)
		require.NoError(t, c.Start(ctx))
		_, err = c.Initialize(ctx, initReq(mcp.ProtocolVersion20251125))
		require.NoError(t, err)
		require.NoError(t, subscribe(c, "notes://public/alice"))
		deliver(t, n, "notes://public/alice", func() int { return subs.NotifyUpdated("notes://public/alice") }, 1)
	})
}

// TestStackUpdatesDecidedByTheStream: a resource update goes out on a
// stream only if the policy lets that stream's caller read the resource.
// In the 2025-11-25 era alice subscribes in her session with a token that
// may read notes://private/ and then opens the session's GET stream with
// another token of hers that may not: the registry queues the update (the
// subscriber may read it), and the stream drops it, while the update of a
// note she may still read arrives (found in review: the private update
// arrived). A 2026-07-28 listen stream has one principal throughout; its
// updates pass the same filter.
func TestStackUpdatesDecidedByTheStream(t *testing.T) {
	const private, public = "notes://private/keys", "notes://public/readme"
	t.Run(mcp.ProtocolVersion20251125, func(t *testing.T) {
		st, subs, _ := newSubscriptionsStack(t, nil, authz.SubscriptionsConfig{})
		broad := st.token(t, map[string]any{"sub": "alice", "scope": "notes:read notes:admin"})
		narrow := st.token(t, map[string]any{"sub": "alice", "scope": "notes:read"})
		sid := initSession(t, st, broad)
		require.NotEmpty(t, sid)
		for _, uri := range []string{private, public} {
			status, body := postRPC(t, st, broad, mcp.ProtocolVersion20251125, sid, "resources/subscribe",
				`{"jsonrpc":"2.0","id":3,"method":"resources/subscribe","params":{"uri":"`+uri+`"}}`)
			require.Equal(t, http.StatusOK, status, body)
			require.NotContains(t, body, `"error"`, body)
		}

		req, err := http.NewRequest(http.MethodGet, st.url, nil)
		require.NoError(t, err)
		req.Header.Set("Accept", "text/event-stream")
		req.Header.Set("Authorization", "Bearer "+narrow)
		req.Header.Set(mcp.HeaderSessionID, sid)
		req.Header.Set(mcp.HeaderProtocolVersion, mcp.ProtocolVersion20251125)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		t.Cleanup(cancel)
		resp, err := http.DefaultClient.Do(req.WithContext(ctx))
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode, "a token of the session's own principal opens its stream")
		lines := make(chan string, 64)
		go func() {
			defer resp.Body.Close()
			sc := bufio.NewScanner(resp.Body)
			for sc.Scan() {
				if strings.Contains(sc.Text(), authz.MethodNotificationsUpdated) {
					lines <- sc.Text()
				}
			}
			close(lines)
		}()

		var got []string
		arrived := func() bool {
			timeout := time.After(time.Second)
			for {
				select {
				case l, ok := <-lines:
					if !ok {
						t.Fatal("the GET stream ended")
					}
					got = append(got, l)
					if strings.Contains(l, public) {
						return true
					}
				case <-timeout:
					return false
				}
			}
		}
		delivered := false
		for range 20 {
			// The registry decides by the subscriber's principal, which may
			// read both. The private update is queued first, so once the
			// public one has arrived, the private one has been through the
			// stream.
			require.Equal(t, 1, subs.NotifyUpdated(private))
			require.Equal(t, 1, subs.NotifyUpdated(public))
			if delivered = arrived(); delivered {
				break
			}
		}
		require.True(t, delivered, "the update of a note the stream's caller may read arrives")
		for _, l := range got {
			assert.NotContains(t, l, private, "the stream's caller may not read the private note")
		}
	})
	t.Run(mcp.ProtocolVersion20260728, func(t *testing.T) {
		st, subs, listening := newSubscriptionsStack(t, nil, authz.SubscriptionsConfig{})
		admin := st.token(t, map[string]any{"sub": "alice", "scope": "notes:read notes:admin"})
		c := st.connect(t, admin, mcp.ProtocolVersion20260728)
		n := watch(c)
		listenOpen(t, c, listening, private, public)
		require.Equal(t, 1, subs.NotifyUpdated(private))
		waitNote(t, n)
		require.Equal(t, 1, subs.NotifyUpdated(public))
		waitNote(t, n)
		assert.Equal(t, []string{private, public}, n.list(), "the listen stream's own principal may read both")
	})
}
