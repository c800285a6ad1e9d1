package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mcpguard/mcpguard/audit"
	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/obo"
	"github.com/mcpguard/mcpguard/redisstore"
	"github.com/mcpguard/mcpguard/transport"
	"github.com/mcpguard/mcpguard/transport/ratelimit"
)

// redisEnv reads MCPGUARD_REDIS_URL and MCPGUARD_SEAL_KEY. Neither the URL
// (it may carry a password) nor the key ever appears in an error.
func redisEnv(getenv func(string) string, cfg *config) error {
	if raw := strings.TrimSpace(getenv("MCPGUARD_SEAL_KEY")); raw != "" {
		key, err := decodeSealKey(raw)
		if err != nil {
			return fmt.Errorf("MCPGUARD_SEAL_KEY: %w", err)
		}
		cfg.sealKey = key
	}
	u := strings.TrimSpace(getenv("MCPGUARD_REDIS_URL"))
	if u == "" {
		return nil
	}
	opts, err := redis.ParseURL(u)
	if err != nil {
		return errors.New("MCPGUARD_REDIS_URL: want redis://[user:password@]host:port[/db] or rediss://… (the value is not shown: it may hold a password)")
	}
	if cfg.sealKey == nil {
		return errors.New("MCPGUARD_SEAL_KEY is required with MCPGUARD_REDIS_URL: 32 random bytes in base64 (e.g. openssl rand -base64 32), the same on every replica; it seals what goes to Redis and keys the sessions")
	}
	// Requests wait on Redis: keep a sick one from holding them long.
	if opts.DialTimeout == 0 {
		opts.DialTimeout = 500 * time.Millisecond
	}
	if opts.ReadTimeout == 0 {
		opts.ReadTimeout = 500 * time.Millisecond
	}
	if opts.WriteTimeout == 0 {
		opts.WriteTimeout = 500 * time.Millisecond
	}
	if opts.PoolTimeout == 0 {
		opts.PoolTimeout = time.Second
	}
	if opts.MaxRetries == 0 {
		opts.MaxRetries = 1
	}
	cfg.redis = opts
	switch v := strings.TrimSpace(getenv("MCPGUARD_REVOCATION_ON_OUTAGE")); v {
	case "", "closed":
	case "degrade":
		cfg.revocationDegrade = true
	default:
		return fmt.Errorf("MCPGUARD_REVOCATION_ON_OUTAGE: want closed (default) or degrade, got %q", v)
	}
	return nil
}

// decodeSealKey accepts standard or URL-safe base64, padded or not, of
// exactly 32 bytes.
func decodeSealKey(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			if len(b) != redisstore.SealKeySize {
				return nil, fmt.Errorf("want %d bytes in base64, got %d bytes", redisstore.SealKeySize, len(b))
			}
			return b, nil
		}
	}
	return nil, errors.New("not base64: want 32 random bytes in base64 (e.g. openssl rand -base64 32)")
}

// sessionKey derives the session-binding key from the seal key, so one
// secret serves both without the two uses meeting.
func sessionKey(sealKey []byte) []byte {
	m := hmac.New(sha256.New, sealKey)
	m.Write([]byte("mcpguard prodmode session key v1"))
	return m.Sum(nil)
}

// shared is the state MCPGUARD_REDIS_URL moves to Redis.
type shared struct {
	limiter    ratelimit.Limiter
	replay     auth.ReplayStore
	terminated transport.TerminatedSessions
	counts     transport.SessionCounts
	revoker    *redisstore.Revoker
	tokens     obo.SharedCache
	close      func() error
}

// newShared connects to Redis (failing start-up if it does not answer) and
// builds every shared store. Policies: session counts and DPoP replay fail
// closed (503 while Redis is down), terminated sessions too once this
// replica's copy of them is a second old, and so does the
// revocation list unless MCPGUARD_REVOCATION_ON_OUTAGE=degrade; rate limits
// degrade to this replica's memory (each replica enforces the limit on its
// own traffic), so stateless calls keep working through an outage. Every
// store failure and recovery is audited as store_failure.
func newShared(ctx context.Context, cfg config, rec *audit.Recorder) (*shared, error) {
	rdb := redis.NewClient(cfg.redis)
	ping, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := rdb.Ping(ping).Err(); err != nil {
		_ = rdb.Close()
		return nil, fmt.Errorf("MCPGUARD_REDIS_URL: Redis at %s does not answer: %w", cfg.redis.Addr, err)
	}
	st, err := redisstore.New(redisstore.Config{Client: rdb, SealKey: cfg.sealKey, Reporter: rec})
	if err != nil {
		_ = rdb.Close()
		return nil, err
	}
	s := &shared{close: rdb.Close}
	if s.limiter, err = st.RateLimiter(redisstore.StoreConfig{Policy: redisstore.DegradeLocal}); err != nil {
		return nil, err
	}
	if s.replay, err = st.ReplayStore(redisstore.StoreConfig{}); err != nil {
		return nil, err
	}
	// Terminated sessions: Immediate, so a session deleted on one replica
	// is refused by every other at once (one ZSCORE per session request
	// whose session this replica does not know as ended; what it knows is
	// answered from its polled copy). While Redis cannot answer, requests
	// carrying a session ID get 503.
	terminated, err := st.TerminatedSessions(redisstore.StoreConfig{Immediate: true})
	if err != nil {
		return nil, err
	}
	s.terminated = terminated
	if s.counts, err = st.SessionCounts(redisstore.StoreConfig{}); err != nil {
		return nil, err
	}
	// The revocation list fails closed while Redis is down, as the
	// library does by default: once this replica's copy is a second old,
	// authenticated requests get 503 rather than an answer from a list
	// that may miss a revocation. MCPGUARD_REVOCATION_ON_OUTAGE=degrade
	// serves from the last copy instead (no revocation can be published
	// during the outage anyway; the copy misses only one that reached
	// Redis less than a poll, 250 ms, before it failed).
	revocationPolicy := redisstore.FailClosed
	if cfg.revocationDegrade {
		revocationPolicy = redisstore.DegradeLocal
	}
	if s.revoker, err = st.Revoker(redisstore.RevokerConfig{Policy: revocationPolicy}); err != nil {
		return nil, err
	}
	s.close = func() error { _ = s.revoker.Close(); _ = terminated.Close(); return rdb.Close() }
	s.tokens = st.TokenCache() // degrades to the exchanger's own cache
	return s, nil
}
