package redisstore

import (
	"context"
	"encoding/base64"
	"errors"

	"github.com/mcpguard/mcpguard/transport/ratelimit"
	"github.com/mcpguard/mcpguard/transport/ratelimit/redisrate"
)

// StoreRateLimits is the store name (see Reporter) of the limiter built by RateLimiter.
const StoreRateLimits = "rate_limits"

// Limiter is a ratelimit.Limiter whose budgets live in Redis (a
// redisrate.Limiter under Prefix + "ratelimit:", sharing Shared's client,
// each key replaced by its keyed hash so no tenant or subject is stored)
// with this package's failure policies and health events: with FailClosed
// (the default) a Redis failure refuses the event (ratelimit.ErrUnavailable,
// 503); with DegradeLocal the event is counted in a process-local
// ratelimit.Memory instead while Redis fails, so every replica still
// enforces the limit on its own share of the traffic. Construct it with
// Shared.RateLimiter; it is safe for concurrent use.
type Limiter struct {
	s      *Shared
	remote *redisrate.Limiter
	local  *ratelimit.Memory // DegradeLocal only
	health *health
}

var _ ratelimit.Limiter = (*Limiter)(nil)

// RateLimiter returns the shared rate limiter.
func (s *Shared) RateLimiter(cfg StoreConfig) (*Limiter, error) {
	if err := cfg.check("RateLimiter"); err != nil {
		return nil, err
	}
	remote, err := redisrate.New(redisrate.Config{Client: s.client, Prefix: s.prefix + "ratelimit:"})
	if err != nil {
		return nil, err
	}
	l := &Limiter{s: s, remote: remote, health: s.health(StoreRateLimits, cfg.Policy)}
	if cfg.Policy == DegradeLocal {
		if l.local, err = ratelimit.NewMemory(ratelimit.MemoryConfig{MaxKeys: cfg.LocalMax, Now: s.now}); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// Allow implements ratelimit.Limiter.
func (l *Limiter) Allow(ctx context.Context, key string, limit ratelimit.Limit) (ratelimit.Decision, error) {
	if l.health.Skip() {
		return l.degrade(ctx, key, limit, nil)
	}
	// The key names a tenant and a subject: only its keyed hash goes to
	// Redis.
	sum := l.s.digest("ratelimit", []byte(key))
	d, err := l.remote.Allow(ctx, base64.RawURLEncoding.EncodeToString(sum[:]), limit)
	if err != nil && errors.Is(err, ratelimit.ErrUnavailable) {
		return l.degrade(ctx, key, limit, err)
	}
	if err == nil {
		l.health.OK(ctx)
	}
	return d, err
}

func (l *Limiter) degrade(ctx context.Context, key string, limit ratelimit.Limit, cause error) (ratelimit.Decision, error) {
	err := l.health.Fail(ctx, cause)
	if l.local == nil {
		return ratelimit.Decision{RetryAfter: redisrate.UnavailableRetryAfter}, errors.Join(ratelimit.ErrUnavailable, err)
	}
	return l.local.Allow(ctx, key, limit)
}
