package redisstore

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

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

	// Answered from the replica's copy: no round trip while the poller
	// keeps it fresh (one MGET per replica every 250 ms, whatever the
	// traffic). rtt/op counts the Redis commands the calls sent.
	b.Run("terminated_check", func(b *testing.B) {
		ts := newTerminated(b, sh, StoreConfig{})
		if _, err := ts.Terminated(ctx, "session-key", now); err != nil {
			b.Fatal(err)
		}
		require.NoError(b, ts.Terminate(ctx, "ended-key", now.Add(time.Hour)))
		keys := []string{"session-key", "ended-key"}
		before := commands(b, sh)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			i++
			_, _ = ts.Terminated(ctx, keys[i&1], time.Now())
		}
		b.ReportMetric(float64(commands(b, sh)-before)/float64(b.N), "rtt/op")
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

// commands is the number of commands Redis has processed, as INFO reports
// it (the INFO call itself included).
func commands(b *testing.B, sh *Shared) int64 {
	b.Helper()
	info, err := sh.client.Info(context.Background(), "stats").Result()
	require.NoError(b, err)
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "total_commands_processed:"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			require.NoError(b, err)
			return n
		}
	}
	b.Fatal("no total_commands_processed in INFO")
	return 0
}
