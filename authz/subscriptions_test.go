package authz_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/authz"
	"github.com/mcpguard/mcpguard/tenancy"
)

// TestSubscriptionsNotifyOnlyReaders: even a subscription recorded without
// the policy's request hook (here: the hook is not installed) is only
// notified while its principal may read the resource; sessions are
// forgotten when mcp-go unregisters them.
func TestSubscriptionsNotifyOnlyReaders(t *testing.T) {
	pl, err := authz.New(authz.Config{ResourceRules: []authz.ResourceRule{
		{Prefix: "notes://", Rule: authz.Rule{AllOf: []string{"notes:read"}}},
		{Prefix: "notes://private/", Rule: authz.Rule{AllOf: []string{"notes:admin"}}},
	}})
	require.NoError(t, err)
	subs, err := authz.NewSubscriptions(pl, authz.SubscriptionsConfig{MaxPerSession: 2})
	require.NoError(t, err)
	srv := server.NewMCPServer("t", "1", append([]server.ServerOption{server.WithResourceCapabilities(true, false)}, subs.ServerOptions()...)...)

	session := func(id string, scopes ...string) (*server.InProcessSession, context.Context) {
		s := server.NewInProcessSession(id, nil)
		require.NoError(t, srv.RegisterSession(context.Background(), s))
		s.Initialize()
		p := &auth.Principal{Issuer: "i", Subject: id, Scopes: scopes}
		return s, auth.NewContext(srv.WithContext(context.Background(), s), p)
	}
	subscribe := func(ctx context.Context, uri string) {
		b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": "resources/subscribe", "params": map[string]any{"uri": uri}})
		srv.HandleMessage(ctx, b)
	}
	_, actx := session("alice", "notes:read", "notes:admin")
	reader, rctx := session("bob", "notes:read")
	subscribe(actx, "notes://private/keys")
	subscribe(rctx, "notes://priv%61te/keys") // not refused: no request hook here
	subscribe(rctx, "notes://a")
	subscribe(rctx, "notes://b")
	subscribe(rctx, "notes://c") // over MaxPerSession: not tracked

	assert.Equal(t, 1, subs.NotifyUpdated("notes://private/keys"), "only alice may read it")
	assert.Equal(t, 1, subs.NotifyUpdated("notes://a"))
	assert.Equal(t, 0, subs.NotifyUpdated("notes://c"))
	assert.Equal(t, 0, subs.NotifyUpdated("notes://public/../private/keys"), "refused URIs reach nobody")

	srv.UnregisterSession(context.Background(), reader.SessionID())
	assert.Equal(t, 0, subs.NotifyUpdated("notes://a"), "forgotten with its session")

	_, err = authz.NewSubscriptions(nil, authz.SubscriptionsConfig{})
	assert.ErrorIs(t, err, auth.ErrConfig)
	_, err = authz.NewSubscriptions(pl, authz.SubscriptionsConfig{MaxSessions: -1})
	assert.ErrorIs(t, err, auth.ErrConfig)
}

// TestSubscriptionsNotifyTenant: NotifyTenantUpdated reaches only the
// subscribers of the resource's tenant — notes://plan is another note in
// each tenant.
func TestSubscriptionsNotifyTenant(t *testing.T) {
	pl, err := authz.New(authz.Config{ResourceRules: []authz.ResourceRule{
		{Prefix: "notes://", Rule: authz.Rule{AllOf: []string{"notes:read"}}},
	}})
	require.NoError(t, err)
	subs, err := authz.NewSubscriptions(pl, authz.SubscriptionsConfig{})
	require.NoError(t, err)
	srv := server.NewMCPServer("t", "1", append([]server.ServerOption{server.WithResourceCapabilities(true, false)}, subs.ServerOptions()...)...)
	subscribe := func(id, tenant string) *server.InProcessSession {
		s := server.NewInProcessSession(id, nil)
		require.NoError(t, srv.RegisterSession(context.Background(), s))
		s.Initialize()
		ctx := auth.NewContext(srv.WithContext(context.Background(), s), &auth.Principal{Issuer: "i", Subject: id, Scopes: []string{"notes:read"}})
		if tenant != "" {
			ctx = tenancy.NewContext(ctx, tenant)
		}
		b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": "resources/subscribe", "params": map[string]any{"uri": "notes://plan"}})
		srv.HandleMessage(ctx, b)
		return s
	}
	acme, globex := subscribe("alice", "acme"), subscribe("bob", "globex")
	subscribe("carol", "")

	assert.Equal(t, 1, subs.NotifyTenantUpdated("acme", "notes://plan"))
	assert.Len(t, acme.ClientNotifications(), 1)
	assert.Empty(t, globex.ClientNotifications(), "globex's plan did not change")
	assert.Equal(t, 1, subs.NotifyTenantUpdated("", "notes://plan"), "no tenant: only the subscriber without one")
	assert.Equal(t, 0, subs.NotifyTenantUpdated("initech", "notes://plan"))
	assert.Equal(t, 3, subs.NotifyUpdated("notes://plan"), "NotifyUpdated ignores tenants")
}

// TestSubscriptionsByteCap: the URIs tracked over all sessions stay within
// MaxBytes; a subscription beyond it is not tracked, and room freed by an
// unsubscription or a session's end is used again.
func TestSubscriptionsByteCap(t *testing.T) {
	pl, err := authz.New(authz.Config{ResourceRules: []authz.ResourceRule{
		{Prefix: "notes://", Rule: authz.Rule{Authenticated: true}},
	}})
	require.NoError(t, err)
	long := func(c string) string { return "notes://" + strings.Repeat(c, 92) } // 100 bytes
	subs, err := authz.NewSubscriptions(pl, authz.SubscriptionsConfig{MaxBytes: 250})
	require.NoError(t, err)
	srv := server.NewMCPServer("t", "1", append([]server.ServerOption{server.WithResourceCapabilities(true, false)}, subs.ServerOptions()...)...)
	session := func(id string) context.Context {
		s := server.NewInProcessSession(id, nil)
		require.NoError(t, srv.RegisterSession(context.Background(), s))
		s.Initialize()
		return auth.NewContext(srv.WithContext(context.Background(), s), &auth.Principal{Issuer: "i", Subject: id})
	}
	call := func(ctx context.Context, method, uri string) {
		b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": method, "params": map[string]any{"uri": uri}})
		srv.HandleMessage(ctx, b)
	}
	a, b := session("a"), session("b")
	call(a, "resources/subscribe", long("a"))
	call(a, "resources/subscribe", long("a")) // again: no more bytes
	call(b, "resources/subscribe", long("b"))
	call(b, "resources/subscribe", long("c")) // 300 > 250: not tracked
	assert.Equal(t, 1, subs.NotifyUpdated(long("a")))
	assert.Equal(t, 1, subs.NotifyUpdated(long("b")))
	assert.Equal(t, 0, subs.NotifyUpdated(long("c")), "over the byte cap")

	call(a, "resources/unsubscribe", long("a"))
	call(b, "resources/subscribe", long("c"))
	assert.Equal(t, 1, subs.NotifyUpdated(long("c")), "room freed by the unsubscription")
	srv.UnregisterSession(context.Background(), "b")
	call(a, "resources/subscribe", long("d"))
	call(a, "resources/subscribe", long("e"))
	assert.Equal(t, 1, subs.NotifyUpdated(long("d")))
	assert.Equal(t, 1, subs.NotifyUpdated(long("e")), "room freed by the session's end")

	_, err = authz.NewSubscriptions(pl, authz.SubscriptionsConfig{MaxBytes: -1})
	assert.ErrorIs(t, err, auth.ErrConfig)
}

// fakeClock is a settable clock for SubscriptionsConfig.Now.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *fakeClock) Advance(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

// subsServer is an mcp-go server with subs installed and a helper that
// sends resources/subscribe for uri as p (in tenant, when set) on a
// registered in-process session id, returning mcp-go's answer as JSON.
func subsServer(t *testing.T, subs *authz.Subscriptions) (subscribe func(id string, p *auth.Principal, tenant, uri string) string, sessions map[string]*server.InProcessSession, srv *server.MCPServer) {
	t.Helper()
	srv = server.NewMCPServer("t", "1", append([]server.ServerOption{server.WithResourceCapabilities(true, false)}, subs.ServerOptions()...)...)
	sessions = map[string]*server.InProcessSession{}
	subscribe = func(id string, p *auth.Principal, tenant, uri string) string {
		s := sessions[id]
		if s == nil {
			s = server.NewInProcessSession(id, nil)
			require.NoError(t, srv.RegisterSession(context.Background(), s))
			s.Initialize()
			sessions[id] = s
		}
		ctx := auth.NewContext(srv.WithContext(context.Background(), s), p)
		if tenant != "" {
			ctx = tenancy.NewContext(ctx, tenant)
		}
		b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": "resources/subscribe", "params": map[string]any{"uri": uri}})
		out, err := json.Marshal(srv.HandleMessage(ctx, b))
		require.NoError(t, err)
		return string(out)
	}
	return subscribe, sessions, srv
}

// TestSubscriptionsExpiredNotNotified: a subscriber whose principal's
// Expiry has passed by the registry's clock is not notified and is
// forgotten; a principal without an expiry never expires; subscribing again
// with a fresh token on the same session renews the subscription.
func TestSubscriptionsExpiredNotNotified(t *testing.T) {
	pl, err := authz.New(authz.Config{ResourceRules: []authz.ResourceRule{
		{Prefix: "notes://", Rule: authz.Rule{AllOf: []string{"notes:read"}}},
	}})
	require.NoError(t, err)
	clock := &fakeClock{now: time.Date(2026, 7, 28, 12, 0, 0, 0, time.UTC)}
	subs, err := authz.NewSubscriptions(pl, authz.SubscriptionsConfig{Now: clock.Now})
	require.NoError(t, err)
	subscribe, sessions, _ := subsServer(t, subs)
	principal := func(sub string, expiry time.Time) *auth.Principal {
		return &auth.Principal{Issuer: "i", Subject: sub, Scopes: []string{"notes:read"}, Expiry: expiry}
	}
	t0 := clock.Now()
	const uri = "notes://plan"
	assert.NotContains(t, subscribe("alice", principal("alice", t0.Add(time.Minute)), "", uri), `"error"`)
	assert.NotContains(t, subscribe("bob", principal("bob", time.Time{}), "", uri), `"error"`)
	assert.NotContains(t, subscribe("carol", principal("carol", t0.Add(time.Hour)), "", uri), `"error"`)
	require.Equal(t, 3, subs.NotifyUpdated(uri))
	require.Len(t, sessions["alice"].ClientNotifications(), 1)

	clock.Advance(time.Minute) // exactly alice's exp: no longer valid (RFC 7519 4.1.4)
	assert.Equal(t, 2, subs.NotifyUpdated(uri), "alice's token has expired")
	assert.Len(t, sessions["alice"].ClientNotifications(), 1, "nothing more for alice")
	assert.Len(t, sessions["bob"].ClientNotifications(), 2, "no expiry: never expires")
	clock.Advance(2 * time.Hour)
	assert.Equal(t, 1, subs.NotifyUpdated(uri), "carol's token has expired too")
	clock.Advance(-2 * time.Hour)
	assert.Equal(t, 1, subs.NotifyUpdated(uri), "expired subscribers were forgotten, not only skipped")

	// alice comes back with a fresh token on the same session.
	assert.NotContains(t, subscribe("alice", principal("alice", clock.Now().Add(time.Hour)), "", uri), `"error"`)
	assert.Equal(t, 2, subs.NotifyUpdated(uri), "renewed with the fresh token")
	assert.Len(t, sessions["alice"].ClientNotifications(), 2)
}

// TestSubscriptionsPerOwnerCap: one owner (principal and tenant) may have
// MaxPerOwner sessions tracked; a subscription that would track one more is
// refused with a JSON-RPC error the client sees, while other owners still
// subscribe and are notified, and a slot is freed by a session's end or by
// the expiry of its principal.
func TestSubscriptionsPerOwnerCap(t *testing.T) {
	pl, err := authz.New(authz.Config{ResourceRules: []authz.ResourceRule{
		{Prefix: "notes://", Rule: authz.Rule{AllOf: []string{"notes:read"}}},
	}})
	require.NoError(t, err)
	clock := &fakeClock{now: time.Date(2026, 7, 28, 12, 0, 0, 0, time.UTC)}
	subs, err := authz.NewSubscriptions(pl, authz.SubscriptionsConfig{MaxSessions: 6, MaxPerOwner: 2, Now: clock.Now})
	require.NoError(t, err)
	subscribe, sessions, srv := subsServer(t, subs)
	bob := &auth.Principal{Issuer: "i", Subject: "bob", Scopes: []string{"notes:read"}}
	alice := &auth.Principal{Issuer: "i", Subject: "alice", Scopes: []string{"notes:read"}}
	refused := func(t *testing.T, out string) {
		t.Helper()
		var res struct {
			Error struct {
				Code    int    `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		require.NoError(t, json.Unmarshal([]byte(out), &res))
		assert.Equal(t, -32600, res.Error.Code, out)
		assert.Equal(t, authz.ErrTooManySubscriptions.Error(), res.Error.Message, out)
	}
	ok := func(t *testing.T, out string) { t.Helper(); assert.NotContains(t, out, `"error"`) }

	ok(t, subscribe("b1", bob, "", "notes://b1"))
	ok(t, subscribe("b2", bob, "", "notes://b2"))
	refused(t, subscribe("b3", bob, "", "notes://b3"))
	ok(t, subscribe("b1", bob, "", "notes://b1-more")) // a tracked session: no new slot
	ok(t, subscribe("b4", bob, "acme", "notes://b4"))  // another tenant: another owner
	actor := &auth.Principal{Issuer: "i", Subject: "bob", Scopes: []string{"notes:read"}, Actor: &auth.Principal{Issuer: "i", Subject: "svc"}}
	ok(t, subscribe("b5", actor, "", "notes://b5")) // bob through a service: another owner
	ok(t, subscribe("a1", alice, "", "notes://alice"))

	assert.Equal(t, 0, subs.NotifyUpdated("notes://b3"), "refused, so not tracked")
	assert.Equal(t, 1, subs.NotifyUpdated("notes://alice"), "alice is tracked whatever bob holds")
	assert.Len(t, sessions["a1"].ClientNotifications(), 1)
	assert.Equal(t, 1, subs.NotifyUpdated("notes://b1-more"))

	srv.UnregisterSession(context.Background(), "b2")
	ok(t, subscribe("b3", bob, "", "notes://b3"))
	assert.Equal(t, 1, subs.NotifyUpdated("notes://b3"), "the slot freed by b2's end")
	refused(t, subscribe("b6", bob, "", "notes://b6"))

	// Sessions whose principal expired hold no slot.
	mortal := &auth.Principal{Issuer: "i", Subject: "carol", Scopes: []string{"notes:read"}, Expiry: clock.Now().Add(time.Minute)}
	srv.UnregisterSession(context.Background(), "a1")
	ok(t, subscribe("c1", mortal, "", "notes://c1"))
	ok(t, subscribe("c2", mortal, "", "notes://c2"))
	refused(t, subscribe("c3", mortal, "", "notes://c3"))
	clock.Advance(time.Hour)
	fresh := &auth.Principal{Issuer: "i", Subject: "carol", Scopes: []string{"notes:read"}, Expiry: clock.Now().Add(time.Hour)}
	ok(t, subscribe("c3", fresh, "", "notes://c3"))
	assert.Equal(t, 1, subs.NotifyUpdated("notes://c3"))

	_, err = authz.NewSubscriptions(pl, authz.SubscriptionsConfig{MaxPerOwner: -1})
	assert.ErrorIs(t, err, auth.ErrConfig)
}
