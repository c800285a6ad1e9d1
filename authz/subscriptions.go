package authz

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/internal/era"
	"github.com/mcpguard/mcpguard/internal/jsonrpc"
	"github.com/mcpguard/mcpguard/tenancy"
)

// Default caps of a Subscriptions registry.
const (
	DefaultMaxSubscribedSessions = 10000
	DefaultMaxSubscribedPerOwner = 32
	DefaultMaxSubscriptionsPer   = 256
	DefaultMaxSubscriptionBytes  = 16 << 20
)

// ErrTooManySubscriptions is the error with which the registry's request
// hook refuses a resources/subscribe or subscriptions/listen request that
// would track one more session for an owner already at
// SubscriptionsConfig.MaxPerOwner. mcp-go answers the request with
// JSON-RPC error -32600 whose message is this error's fixed text.
var ErrTooManySubscriptions = errors.New("too many subscriptions")

// SubscriptionsConfig configures a Subscriptions registry. The zero value
// uses the defaults.
type SubscriptionsConfig struct {
	// MaxSessions caps the sessions tracked at once (default
	// DefaultMaxSubscribedSessions). A session subscribing beyond the cap
	// is not tracked and so receives no update notifications (fail closed).
	MaxSessions int
	// MaxPerOwner caps the sessions tracked at once for one owner: one
	// principal (issuer, subject, kind and actor) in one tenant
	// (tenancy.FromContext). Each 2026-07-28 subscriptions/listen stream
	// with resourceSubscriptions is a session of its own, each 2025-11-25
	// session with a subscription is one. Default
	// DefaultMaxSubscribedPerOwner. A resources/subscribe or
	// subscriptions/listen request that would track one more session for
	// an owner at the cap is refused with ErrTooManySubscriptions (the
	// client gets a JSON-RPC error), so that no owner can fill MaxSessions
	// for everyone else. Sessions whose principal has expired do not count.
	// Two such requests of one owner racing for its last slot may both be
	// answered; the cap still holds and the later one is not tracked.
	MaxPerOwner int
	// MaxPerSession caps the URIs tracked for one session (default
	// DefaultMaxSubscriptionsPer); further subscriptions of that session are
	// not tracked.
	MaxPerSession int
	// MaxBytes caps the resource URIs tracked over all sessions, in bytes
	// of their canonical form (default DefaultMaxSubscriptionBytes), so that
	// the registry stays small however long the URIs (each up to
	// MaxResourceURI): a subscription beyond it is not tracked.
	MaxBytes int
	// Now is the registry's clock, against which a subscriber's
	// auth.Principal.Expiry is compared; nil means time.Now.
	Now func() time.Time
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
// unregisters it. A subscriber whose principal's Expiry (the token's "exp",
// RFC 7519 section 4.1.4) has passed is never notified again: the registry
// forgets it when it next sees it (NotifyUpdated, or a subscription of the
// same owner or session), and the client must subscribe again with a fresh
// token. Each subscription of a session records the principal it was made
// with, which is then the one decisions are made with. Behind
// transport.Guard, an update is decided once more as it goes out, by the
// caller of the stream that carries it: a session's GET stream opened with
// a token of fewer scopes does not carry updates that token may not read.
// URIs are matched in their CanonicalResourceURI form.
// Build it with NewSubscriptions and install it with ServerOptions; it is
// safe for concurrent use.
type Subscriptions struct {
	pl            *Policy
	maxSessions   int
	maxPerOwner   int
	maxPerSession int
	maxBytes      int
	now           func() time.Time

	mu       sync.Mutex
	sessions map[server.ClientSession]*subscriber
	owners   map[owner]map[server.ClientSession]struct{} // the sessions of each owner; as many owners as sessions at most
	bytes    int                                         // sum of the tracked canonical URIs' lengths
}

type subscriber struct {
	p      *auth.Principal     // of the session's latest subscription
	owner  owner               // of p, with the tenant
	tenant string              // tenancy.FromContext when it subscribed; "" for none
	uris   map[string]struct{} // canonical URIs
}

// owner identifies whose a subscribed session is: a session serves one
// principal and tenant, and the per-owner cap counts by it.
type owner struct {
	kind            auth.Kind
	issuer, subject string
	actor           bool
	actorIssuer     string
	actorSubject    string
	tenant          string
}

func ownerOf(p *auth.Principal, tenant string) owner {
	o := owner{kind: p.Kind, issuer: p.Issuer, subject: p.Subject, tenant: tenant}
	if p.Actor != nil {
		o.actor, o.actorIssuer, o.actorSubject = true, p.Actor.Issuer, p.Actor.Subject
	}
	return o
}

// expired reports whether p's token has expired at now (RFC 7519 section
// 4.1.4: not accepted on or after "exp"); a zero Expiry never expires.
func expired(p *auth.Principal, now time.Time) bool {
	return !p.Expiry.IsZero() && !now.Before(p.Expiry)
}

// NewSubscriptions returns a registry deciding with pl. pl must not be nil;
// negative caps are an error wrapping auth.ErrConfig.
func NewSubscriptions(pl *Policy, cfg SubscriptionsConfig) (*Subscriptions, error) {
	if pl == nil {
		return nil, fmt.Errorf("%w: authz: NewSubscriptions: nil Policy", auth.ErrConfig)
	}
	if cfg.MaxSessions < 0 || cfg.MaxPerOwner < 0 || cfg.MaxPerSession < 0 || cfg.MaxBytes < 0 {
		return nil, fmt.Errorf("%w: authz: SubscriptionsConfig: negative cap", auth.ErrConfig)
	}
	s := &Subscriptions{pl: pl, maxSessions: cfg.MaxSessions, maxPerOwner: cfg.MaxPerOwner, maxPerSession: cfg.MaxPerSession,
		maxBytes: cfg.MaxBytes, now: cfg.Now,
		sessions: map[server.ClientSession]*subscriber{}, owners: map[owner]map[server.ClientSession]struct{}{}}
	if s.maxSessions == 0 {
		s.maxSessions = DefaultMaxSubscribedSessions
	}
	if s.maxPerOwner == 0 {
		s.maxPerOwner = DefaultMaxSubscribedPerOwner
	}
	if s.now == nil {
		s.now = time.Now
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
// hooks (added to the server's hooks, created if there are none), among
// them a request-initialization hook refusing subscriptions over
// MaxPerOwner. Pass it after any server.WithHooks option and after
// Policy.ServerOptions, so that the policy decides a request first.
func (s *Subscriptions) ServerOptions() []server.ServerOption {
	return []server.ServerOption{func(srv *server.MCPServer) {
		h := srv.GetHooks()
		if h == nil {
			h = &server.Hooks{}
			server.WithHooks(h)(srv)
		}
		h.AddOnRequestInitialization(s.admit)
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

// admit is the request-initialization hook that refuses, with
// ErrTooManySubscriptions, a resources/subscribe (2025-11-25) or a
// subscriptions/listen naming resources (2026-07-28) that would track a new
// session for an owner already at the per-owner cap. Requests of the other
// era pass on to mcp-go, which refuses them itself. add enforces the cap
// again when it records the subscription.
func (s *Subscriptions) admit(ctx context.Context, _ any, message any) error {
	body, ok := messageBody(message)
	if !ok {
		return nil
	}
	msg, err := jsonrpc.PeekMemo(ctx, body)
	if err != nil {
		return nil // the policy's hook or mcp-go refuses it; add still caps
	}
	switch msg.Method {
	case MethodResourcesSubscribe:
		if era.BodyModern(body) {
			return nil
		}
	case MethodSubscriptionsListen:
		if !era.BodyModern(body) {
			return nil
		}
		var req mcp.SubscriptionsListenRequest
		if json.Unmarshal(body, &req) != nil || len(req.Params.Notifications.ResourceSubscriptions) == 0 {
			return nil // nothing to track
		}
	default:
		return nil
	}
	cs := server.ClientSessionFromContext(ctx)
	p, ok := auth.FromContext(ctx)
	if cs == nil || !ok {
		return nil
	}
	tenant, _ := tenancy.FromContext(ctx)
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if sub := s.sessions[cs]; sub != nil && !expired(sub.p, now) {
		return nil // tracked already: no new session
	}
	if s.ownerFull(ownerOf(p, tenant), now) {
		return ErrTooManySubscriptions
	}
	return nil
}

// ownerFull reports whether o has maxPerOwner sessions tracked, after
// dropping those of its sessions whose principal has expired. s.mu is held.
func (s *Subscriptions) ownerFull(o owner, now time.Time) bool {
	set := s.owners[o]
	if len(set) < s.maxPerOwner {
		return false
	}
	for cs := range set {
		if sub := s.sessions[cs]; sub != nil && expired(sub.p, now) {
			s.drop(cs, sub)
		}
	}
	return len(s.owners[o]) >= s.maxPerOwner
}

// drop forgets the tracked session cs, whose entry is sub. s.mu is held.
func (s *Subscriptions) drop(cs server.ClientSession, sub *subscriber) {
	for uri := range sub.uris {
		s.bytes -= len(uri)
	}
	delete(s.sessions, cs)
	if set := s.owners[sub.owner]; set != nil {
		delete(set, cs)
		if len(set) == 0 {
			delete(s.owners, sub.owner)
		}
	}
}

func (s *Subscriptions) forget(cs server.ClientSession) {
	s.mu.Lock()
	if sub := s.sessions[cs]; sub != nil {
		s.drop(cs, sub)
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
	o := ownerOf(p, tenant)
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	sub := s.sessions[cs]
	if sub != nil && expired(sub.p, now) {
		s.drop(cs, sub) // its subscriptions ended with its token
		sub = nil
	}
	if sub == nil {
		if len(s.sessions) >= s.maxSessions || s.bytes+len(canon) > s.maxBytes || s.ownerFull(o, now) {
			return
		}
		sub = &subscriber{p: p, owner: o, tenant: tenant, uris: map[string]struct{}{}}
		s.sessions[cs] = sub
		if s.owners[o] == nil {
			s.owners[o] = map[server.ClientSession]struct{}{}
		}
		s.owners[o][cs] = struct{}{}
	}
	if sub.owner != o {
		return // a session serves one principal and tenant; never mix
	}
	sub.p = p // the latest token of the owner: its expiry and scopes decide
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
			s.drop(cs, sub)
		}
	}
}

// NotifyUpdated sends notifications/resources/updated for uri to every
// subscribed session whose principal the policy lets read it now and whose
// principal has not expired (by SubscriptionsConfig.Now), whatever its
// tenant, and returns how many sessions it was queued for; it forgets every
// session with an expired principal it comes across. When the same
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
	now := s.now()
	s.mu.Lock()
	for cs, sub := range s.sessions {
		if expired(sub.p, now) {
			s.drop(cs, sub) // deleting during range is allowed
			continue
		}
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
