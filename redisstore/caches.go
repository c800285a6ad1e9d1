package redisstore

import (
	"context"
	"encoding/json"
	"time"

	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/obo"
)

// maxCachedValue bounds what a cache reads back from Redis: an answer
// larger than an introspection response may be (1 MiB) plus sealing is
// not one of ours.
const maxCachedValue = 1<<20 + 4<<10

// TokenCache is an obo.SharedCache in Redis: the tokens an Exchanger
// obtained, shared by every replica so that the same user and target cost
// one exchange between them. The Redis key is a keyed hash (HMAC-SHA256
// under the seal key) of the exchanger's cache key, itself a digest of the
// exchanger's identity, the target and the user's token; the value is the token sealed with
// AES-256-GCM, bound to its key. It expires at the token's refresh time
// (its expiry minus the exchanger's skew).
//
// A cache always degrades: when Redis fails a Get is a miss and a Put is
// dropped (the exchanger's own memory cache still serves), and the failure
// is reported. Construct it with Shared.TokenCache; it is safe for
// concurrent use.
type TokenCache struct {
	s      *Shared
	health *health
}

var _ obo.SharedCache = (*TokenCache)(nil)

// TokenCache returns the shared cache of exchanged tokens.
func (s *Shared) TokenCache() *TokenCache {
	return &TokenCache{s: s, health: s.health(StoreTokens, DegradeLocal)}
}

type sealedToken struct {
	AccessToken     string `json:"t"`
	TokenType       string `json:"tt,omitempty"`
	IssuedTokenType string `json:"it,omitempty"`
	Expiry          int64  `json:"e"`
	Scope           string `json:"s,omitempty"`
	RefreshAt       int64  `json:"r"`
}

// Get implements obo.SharedCache.
func (c *TokenCache) Get(ctx context.Context, key [32]byte, now time.Time) (obo.Token, time.Time, bool) {
	if c.health.Skip() {
		return obo.Token{}, time.Time{}, false
	}
	rkey := c.s.key("obo", key[:])
	v, err := c.s.client.Get(ctx, rkey).Bytes()
	if isRedisNil(err) {
		c.health.OK(ctx)
		return obo.Token{}, time.Time{}, false
	}
	if err != nil {
		_ = c.health.Fail(ctx, err)
		return obo.Token{}, time.Time{}, false
	}
	c.health.OK(ctx)
	if len(v) > maxCachedValue {
		return obo.Token{}, time.Time{}, false
	}
	plain, err := c.s.open(rkey, v)
	if err != nil {
		return obo.Token{}, time.Time{}, false
	}
	var st sealedToken
	if json.Unmarshal(plain, &st) != nil || st.AccessToken == "" {
		return obo.Token{}, time.Time{}, false
	}
	refreshAt := time.Unix(0, st.RefreshAt)
	if !now.Before(refreshAt) {
		return obo.Token{}, time.Time{}, false
	}
	return obo.Token{
		AccessToken:     auth.NewCredential(st.AccessToken),
		TokenType:       st.TokenType,
		IssuedTokenType: st.IssuedTokenType,
		Expiry:          time.Unix(0, st.Expiry),
		Scope:           st.Scope,
	}, refreshAt, true
}

// Put implements obo.SharedCache.
func (c *TokenCache) Put(ctx context.Context, key [32]byte, tok obo.Token, refreshAt time.Time) {
	if tok.AccessToken.IsZero() || tok.Expiry.IsZero() || !refreshAt.Before(tok.Expiry) {
		return
	}
	d, ok := ttl(c.s.now(), refreshAt)
	if !ok || c.health.Skip() {
		return
	}
	plain, err := json.Marshal(sealedToken{
		AccessToken: tok.AccessToken.Reveal(), TokenType: tok.TokenType, IssuedTokenType: tok.IssuedTokenType,
		Expiry: tok.Expiry.UnixNano(), Scope: tok.Scope, RefreshAt: refreshAt.UnixNano(),
	})
	if err != nil {
		return
	}
	rkey := c.s.key("obo", key[:])
	sealed := c.s.seal(rkey, plain)
	clear(plain)
	if err := c.s.client.Set(ctx, rkey, sealed, d).Err(); err != nil {
		_ = c.health.Fail(ctx, err)
		return
	}
	c.health.OK(ctx)
}

// IntrospectionCache is an auth.IntrospectionCache in Redis: the RFC 7662
// answers an IntrospectionValidator obtained, shared by every replica so
// that a token is introspected once between them. The Redis key is a keyed
// hash (HMAC-SHA256 under the seal key) of the validator's cache key, itself
// a digest of its authorization server, its client and the token; the value is
// the answer (which holds the token's claims, its subject among them)
// sealed with AES-256-GCM, bound to its key, expiring when the validator's
// verdict would (never past the token's expiry).
//
// A cache always degrades: when Redis fails a Get is a miss and a Put is
// dropped (the validator's own caches still serve), and the failure is
// reported. Construct it with Shared.IntrospectionCache; it is safe for
// concurrent use.
type IntrospectionCache struct {
	s      *Shared
	health *health
}

var _ auth.IntrospectionCache = (*IntrospectionCache)(nil)

// IntrospectionCache returns the shared cache of introspection answers.
func (s *Shared) IntrospectionCache() *IntrospectionCache {
	return &IntrospectionCache{s: s, health: s.health(StoreIntrospection, DegradeLocal)}
}

type sealedAnswer struct {
	Until    int64           `json:"u"`
	Response json.RawMessage `json:"a"`
}

// Get implements auth.IntrospectionCache.
func (c *IntrospectionCache) Get(ctx context.Context, key [32]byte, now time.Time) ([]byte, time.Time, bool) {
	if c.health.Skip() {
		return nil, time.Time{}, false
	}
	rkey := c.s.key("intro", key[:])
	v, err := c.s.client.Get(ctx, rkey).Bytes()
	if isRedisNil(err) {
		c.health.OK(ctx)
		return nil, time.Time{}, false
	}
	if err != nil {
		_ = c.health.Fail(ctx, err)
		return nil, time.Time{}, false
	}
	c.health.OK(ctx)
	if len(v) > maxCachedValue {
		return nil, time.Time{}, false
	}
	plain, err := c.s.open(rkey, v)
	if err != nil {
		return nil, time.Time{}, false
	}
	var a sealedAnswer
	if json.Unmarshal(plain, &a) != nil || len(a.Response) == 0 {
		return nil, time.Time{}, false
	}
	until := time.Unix(0, a.Until)
	if !now.Before(until) {
		return nil, time.Time{}, false
	}
	return a.Response, until, true
}

// Put implements auth.IntrospectionCache.
func (c *IntrospectionCache) Put(ctx context.Context, key [32]byte, response []byte, until time.Time) {
	d, ok := ttl(c.s.now(), until)
	if !ok || c.health.Skip() || !json.Valid(response) {
		return
	}
	plain, err := json.Marshal(sealedAnswer{Until: until.UnixNano(), Response: response})
	if err != nil {
		return
	}
	rkey := c.s.key("intro", key[:])
	sealed := c.s.seal(rkey, plain)
	clear(plain)
	if err := c.s.client.Set(ctx, rkey, sealed, d).Err(); err != nil {
		_ = c.health.Fail(ctx, err)
		return
	}
	c.health.OK(ctx)
}
