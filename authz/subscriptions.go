package authz

import (
	"context"
	"fmt"
	"sync"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/tenancy"
)

// Default caps of a Subscriptions registry.
const (
	DefaultMaxSubscribedSessions = 10000
	DefaultMaxSubscriptionsPer   = 256
	DefaultMaxSubscriptionBytes  = 16 << 20
)

// SubscriptionsConfig configures a Subscriptions registry. The zero value
// uses the defaults.
type SubscriptionsConfig struct {
	// MaxSessions caps the sessions tracked at once (default
	// DefaultMaxSubscribedSessions). A session subscribing beyond the cap
	// is not tracked and so receives no update notifications (fail closed).
	MaxSessions int
	// MaxPerSession caps the URIs tracked for one session (default
	// DefaultMaxSubscriptionsPer); further subscriptions of that session are
	// not tracked.
	MaxPerSession int
	// MaxBytes caps the resource URIs tracked over all sessions, in bytes
	// of their canonical form (default DefaultMaxSubscriptionBytes), so that
	// the registry stays small however long the URIs (each up to
	// MaxResourceURI): a subscription beyond it is not tracked.
	MaxBytes int
}

// Subscriptions tracks which session subscribed to which resource, with the
// principal that subscribed, and sends notifications/resources/updated only
// to the subscribed sessions whose principal the policy still lets read the
// resource. mcp-go records subscriptions but leaves delivering updates to
// the author, and its broadcast (SendNotificationToAllClients) reaches every
// session, subscribed or not, allowed or not: send updates through
// NotifyUpdated instead.
//
// It learns subscriptions from mcp-go's hooks (resources/subscribe and
// unsubscribe in the 2025-11-25 era, the resourceSubscriptions of
// subscriptions/listen in 2026-07-28) and forgets a session when mcp-go
// unregisters it. URIs are matched in their CanonicalResourceURI form.
// Build it with NewSubscriptions and install it with ServerOptions; it is
// safe for concurrent use.
type Subscriptions struct {
	pl            *Policy
	maxSessions   int
	maxPerSession int
	maxBytes      int

	mu       sync.Mutex
	sessions map[server.ClientSession]*subscriber
	bytes    int // sum of the tracked canonical URIs' lengths
}

type subscriber struct {
	p      *auth.Principal
	tenant string              // tenancy.FromContext when it subscribed; "" for none
	uris   map[string]struct{} // canonical URIs
}

// NewSubscriptions returns a registry deciding with pl. pl must not be nil;
// negative caps are an error wrapping auth.ErrConfig.
func NewSubscriptions(pl *Policy, cfg SubscriptionsConfig) (*Subscriptions, error) {
	if pl == nil {
		return nil, fmt.Errorf("%w: authz: NewSubscriptions: nil Policy", auth.ErrConfig)
	}
	if cfg.MaxSessions < 0 || cfg.MaxPerSession < 0 || cfg.MaxBytes < 0 {
		return nil, fmt.Errorf("%w: authz: SubscriptionsConfig: negative cap", auth.ErrConfig)
	}
	s := &Subscriptions{pl: pl, maxSessions: cfg.MaxSessions, maxPerSession: cfg.MaxPerSession, maxBytes: cfg.MaxBytes,
		sessions: map[server.ClientSession]*subscriber{}}
	if s.maxSessions == 0 {
		s.maxSessions = DefaultMaxSubscribedSessions
	}
	if s.maxPerSession == 0 {
		s.maxPerSession = DefaultMaxSubscriptionsPer
	}
	if s.maxBytes == 0 {
		s.maxBytes = DefaultMaxSubscriptionBytes
	}
	return s, nil
}

// ServerOptions returns the mcp-go option that installs the registry's
// hooks (added to the server's hooks, created if there are none). Pass it
// after any server.WithHooks option, like Policy.ServerOptions.
func (s *Subscriptions) ServerOptions() []server.ServerOption {
	return []server.ServerOption{func(srv *server.MCPServer) {
		h := srv.GetHooks()
		if h == nil {
			h = &server.Hooks{}
			server.WithHooks(h)(srv)
		}
		h.AddAfterSubscribe(func(ctx context.Context, _ any, req *mcp.SubscribeRequest, _ *mcp.EmptyResult) {
			s.add(ctx, req.Params.URI)
		})
		h.AddAfterUnsubscribe(func(ctx context.Context, _ any, req *mcp.UnsubscribeRequest, _ *mcp.EmptyResult) {
			s.remove(ctx, req.Params.URI)
		})
		h.AddBeforeSubscriptionsListen(func(ctx context.Context, _ any, req *mcp.SubscriptionsListenRequest) {
			for _, uri := range req.Params.Notifications.ResourceSubscriptions {
				s.add(ctx, uri)
			}
			// A 2026-07-28 listen stream's session lives as long as its
			// request; mcp-go unregisters no such session.
			if cs := server.ClientSessionFromContext(ctx); cs != nil {
				context.AfterFunc(ctx, func() { s.forget(cs) })
			}
		})
		h.AddOnUnregisterSession(func(_ context.Context, cs server.ClientSession) { s.forget(cs) })
	}}
}

func (s *Subscriptions) forget(cs server.ClientSession) {
	s.mu.Lock()
	if sub := s.sessions[cs]; sub != nil {
		for uri := range sub.uris {
			s.bytes -= len(uri)
		}
		delete(s.sessions, cs)
	}
	s.mu.Unlock()
}

func (s *Subscriptions) add(ctx context.Context, uri string) {
	cs := server.ClientSessionFromContext(ctx)
	p, ok := auth.FromContext(ctx)
	if cs == nil || !ok {
		return
	}
	tenant, _ := tenancy.FromContext(ctx)
	canon, err := CanonicalResourceURI(uri)
	if err != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sub := s.sessions[cs]
	if sub == nil {
		if len(s.sessions) >= s.maxSessions || s.bytes+len(canon) > s.maxBytes {
			return
		}
		sub = &subscriber{p: p, tenant: tenant, uris: map[string]struct{}{}}
		s.sessions[cs] = sub
	}
	if !samePrincipal(sub.p, p) || sub.tenant != tenant {
		return // a session serves one principal and tenant; never mix
	}
	if _, ok := sub.uris[canon]; ok || len(sub.uris) >= s.maxPerSession || s.bytes+len(canon) > s.maxBytes {
		return
	}
	sub.uris[canon] = struct{}{}
	s.bytes += len(canon)
}

func (s *Subscriptions) remove(ctx context.Context, uri string) {
	cs := server.ClientSessionFromContext(ctx)
	canon, err := CanonicalResourceURI(uri)
	if cs == nil || err != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if sub := s.sessions[cs]; sub != nil {
		if _, ok := sub.uris[canon]; ok {
			delete(sub.uris, canon)
			s.bytes -= len(canon)
		}
		if len(sub.uris) == 0 {
			delete(s.sessions, cs)
		}
	}
}

func samePrincipal(a, b *auth.Principal) bool {
	if a.Issuer != b.Issuer || a.Subject != b.Subject || a.Kind != b.Kind || (a.Actor == nil) != (b.Actor == nil) {
		return false
	}
	return a.Actor == nil || a.Actor.Issuer == b.Actor.Issuer && a.Actor.Subject == b.Actor.Subject
}

// NotifyUpdated sends notifications/resources/updated for uri to every
// subscribed session whose principal the policy lets read it now, whatever
// its tenant, and returns how many sessions it was queued for. When the same
// URI names a different resource in each tenant (the tenant comes from the
// caller, not the URI), use NotifyTenantUpdated. It reaches 2025-11-25
// sessions (on their GET stream) and 2026-07-28 subscriptions/listen
// streams alike. A session whose notification queue is full is skipped, as
// mcp-go's own broadcast does. It holds no lock while sending and is safe
// for concurrent use.
func (s *Subscriptions) NotifyUpdated(uri string) int {
	return s.notify(uri, func(*subscriber) bool { return true })
}

// NotifyTenantUpdated is NotifyUpdated for a resource of one tenant: only
// sessions that subscribed with that tenant in their context
// (tenancy.FromContext) are notified. An empty tenant reaches only sessions
// that subscribed without one.
func (s *Subscriptions) NotifyTenantUpdated(tenant, uri string) int {
	return s.notify(uri, func(sub *subscriber) bool { return sub.tenant == tenant })
}

func (s *Subscriptions) notify(uri string, match func(*subscriber) bool) int {
	canon, err := CanonicalResourceURI(uri)
	if err != nil {
		return 0
	}
	type target struct {
		cs server.ClientSession
		p  *auth.Principal
	}
	var targets []target
	s.mu.Lock()
	for cs, sub := range s.sessions {
		if _, ok := sub.uris[canon]; ok && match(sub) {
			targets = append(targets, target{cs, sub.p})
		}
	}
	s.mu.Unlock()
	note := mcp.JSONRPCNotification{
		JSONRPC: mcp.JSONRPC_VERSION,
		Notification: mcp.Notification{
			Method: MethodNotificationsUpdated,
			Params: mcp.NotificationParams{AdditionalFields: map[string]any{"uri": uri}},
		},
	}
	sent := 0
	for _, t := range targets {
		if !s.pl.checkResource(t.p, uri).Allowed {
			continue
		}
		if up, ok := t.cs.(server.SessionWithStreamableHTTPConfig); ok {
			up.UpgradeToSSEWhenReceiveNotification()
		}
		select {
		case t.cs.NotificationChannel() <- note:
			sent++
		default:
		}
	}
	return sent
}
