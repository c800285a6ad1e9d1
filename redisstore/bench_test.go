package redisstore

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/mcpguard/mcpguard/transport"
	"github.com/mcpguard/mcpguard/transport/ratelimit"
)

// The per-request cost of each store on a warm call, against a
// redis-server on loopback (one client, as a replica has).
func BenchmarkWarmCall(b *testing.B) {
	srv := startRedis(b)
	sh := newShared(b, srv.addr, nil)
	ctx := context.Background()
	now := time.Now()

	b.Run("terminated_check", func(b *testing.B) {
		ts, _ := sh.TerminatedSessions(StoreConfig{})
		b.ReportAllocs()
		for b.Loop() {
			_, _ = ts.Terminated(ctx, "session-key", now)
		}
	})
	b.Run("session_touch_throttled", func(b *testing.B) {
		sc, _ := sh.SessionCounts(StoreConfig{})
		r, _, err := sc.Reserve(ctx, "owner", transport.SessionLimits{PerOwner: 10, Total: 10}, now)
		if err != nil {
			b.Fatal(err)
		}
		_ = sc.Commit(ctx, r, "s", now.Add(15*time.Minute))
		b.ReportAllocs()
		for b.Loop() {
			_ = sc.Touch(ctx, "s", now.Add(15*time.Minute))
		}
	})
	b.Run("rate_limit", func(b *testing.B) {
		l, _ := sh.RateLimiter(StoreConfig{})
		limit := ratelimit.Limit{Events: 1_000_000_000, Period: time.Second}
		b.ReportAllocs()
		for b.Loop() {
			_, _ = l.Allow(ctx, "tenant|subject", limit)
		}
	})
	b.Run("dpop_replay", func(b *testing.B) {
		r, _ := sh.ReplayStore(StoreConfig{})
		exp := now.Add(time.Minute)
		i := 0
		b.ReportAllocs()
		for b.Loop() {
			i++
			_, _ = r.CheckAndStore(ctx, "jti-"+strconv.Itoa(i), exp)
		}
	})
	b.Run("key_hash", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = sh.key("term", []byte("session-key-0123456789abcdef"))
		}
	})
}
