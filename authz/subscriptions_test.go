package authz_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

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
