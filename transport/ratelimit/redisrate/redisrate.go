package redisrate

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"

	"github.com/mcpguard/mcpguard/transport/ratelimit"
)

// FailurePolicy says what a limiter does when its backend fails.
type FailurePolicy uint8

const (
	// FailClosed refuses the event: Allow returns an error wrapping
	// ratelimit.ErrUnavailable (HTTP 503, a tool error). It is the zero value.
	FailClosed FailurePolicy = iota
	// FailOpen allows the event uncounted and reports the backend error in
	// Decision.FailedOpen, which the middleware audits as
	// ratelimit.EventFailOpen.
	// Choose it only when availability matters more than the limit.
	FailOpen
)

// String returns "fail_closed" or "fail_open".
func (p FailurePolicy) String() string {
	switch p {
	case FailClosed:
		return "fail_closed"
	case FailOpen:
		return "fail_open"
	}
	return "unknown"
}

// DefaultPrefix is the key prefix of a Limiter whose Prefix is empty.
const DefaultPrefix = "mcpguard:ratelimit:"

// UnavailableRetryAfter is the RetryAfter reported when a failing backend
// makes a limiter refuse an event.
const UnavailableRetryAfter = time.Second

// Config configures a Limiter. Client is required; the zero
// value of every other field is the secure default (fail closed).
type Config struct {
	// Client is the Redis client shared by every replica: a *redis.Client,
	// *redis.ClusterClient, failover or ring client. Its timeouts
	// (DialTimeout, ReadTimeout, WriteTimeout, PoolTimeout, MaxRetries)
	// bound how long Allow waits for a sick Redis before the failure
	// policy applies; keep them short (tens to hundreds of milliseconds),
	// as every request waits on this call. Required.
	Client redis.UniversalClient
	// Prefix namespaces the limiter's keys in Redis. Replicas that must
	// share a budget need the same Prefix. Empty means DefaultPrefix.
	Prefix string
	// FailurePolicy is what Allow does when Redis cannot be reached or
	// answers with an error (a policy value, not a callback: it is not named
	// OnError, which in mcpguard is always a function). The zero value is
	// FailClosed.
	FailurePolicy FailurePolicy
}

// Limiter is a ratelimit.Limiter that keeps its state in Redis with the generic cell
// rate algorithm (GCRA, via github.com/go-redis/redis_rate/v10), so any
// number of replicas pointing at the same Redis and Prefix share one budget
// per key. Each decision is one atomic script run on the Redis server, using
// the server's clock. A key expires from Redis as soon as its budget is
// full again (at most Burst×Period/Events after its last event), so Redis
// memory is bounded by the number of keys recently active.
//
// Limiter is safe for concurrent use. Construct it with New.
type Limiter struct {
	rl     *redis_rate.Limiter
	prefix string
	policy FailurePolicy
}

// New returns a Limiter configured by cfg.
func New(cfg Config) (*Limiter, error) {
	if cfg.Client == nil {
		return nil, fmt.Errorf("%w: Config.Client is required", ratelimit.ErrConfig)
	}
	if cfg.FailurePolicy != FailClosed && cfg.FailurePolicy != FailOpen {
		return nil, fmt.Errorf("%w: Config.FailurePolicy: unknown policy %d", ratelimit.ErrConfig, cfg.FailurePolicy)
	}
	if strings.ContainsAny(cfg.Prefix, "{}") {
		// Braces would change the Redis Cluster hash slot of every key.
		return nil, fmt.Errorf("%w: Config.Prefix must not contain braces", ratelimit.ErrConfig)
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	return &Limiter{
		rl:     redis_rate.NewLimiter(cfg.Client),
		prefix: cfg.Prefix,
		policy: cfg.FailurePolicy,
	}, nil
}

// Allow implements ratelimit.Limiter: the bucket is key's under limit. The decision is made by Redis; when Redis
// fails, the result follows the configured FailurePolicy: FailClosed
// returns an error wrapping ratelimit.ErrUnavailable and the Redis error (with a
// Decision carrying UnavailableRetryAfter), FailOpen returns an allowed
// Decision whose FailedOpen is the Redis error.
func (l *Limiter) Allow(ctx context.Context, key string, limit ratelimit.Limit) (ratelimit.Decision, error) {
	limit, err := limit.Normalize()
	if err != nil {
		return ratelimit.Decision{}, err
	}
	res, err := l.rl.Allow(ctx, l.redisKey(key, limit), redis_rate.Limit{
		Rate:   limit.Events,
		Burst:  limit.Burst,
		Period: limit.Period,
	})
	if err != nil {
		err = fmt.Errorf("%w: redis: %w", ratelimit.ErrUnavailable, err)
		if l.policy == FailOpen {
			return ratelimit.Decision{Allowed: true, FailedOpen: err}, nil
		}
		return ratelimit.Decision{RetryAfter: UnavailableRetryAfter}, err
	}
	if res.Allowed > 0 {
		return ratelimit.Decision{Allowed: true, Remaining: max(res.Remaining, 0), HasRemaining: true}, nil
	}
	return ratelimit.Decision{RetryAfter: max(res.RetryAfter, time.Nanosecond)}, nil
}

// redisKey is Prefix, the limit ("5/3600000000000/3|": events, period in
// nanoseconds, burst) and key, with keys longer than ratelimit.MaxKeyBytes
// replaced by the hex SHA-256 digest so Redis keys stay short. The limit is
// part of the name, so the same key under another limit is another bucket
// (see ratelimit.Limiter): a bucket's limit never changes under it.
func (l *Limiter) redisKey(key string, limit ratelimit.Limit) string {
	b := make([]byte, 0, len(l.prefix)+48+min(len(key), 71))
	b = append(b, l.prefix...)
	b = strconv.AppendInt(b, int64(limit.Events), 10)
	b = append(b, '/')
	b = strconv.AppendInt(b, int64(limit.Period), 10)
	b = append(b, '/')
	b = strconv.AppendInt(b, int64(limit.Burst), 10)
	b = append(b, '|')
	if len(key) > ratelimit.MaxKeyBytes {
		sum := sha256.Sum256([]byte(key))
		b = append(b, "sha256:"...)
		b = hex.AppendEncode(b, sum[:])
		return string(b)
	}
	return string(append(b, key...))
}
