package redisstore

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/internal/redistest"
)

// redisServer is a redis-server process on a loopback port, owned by a
// test (internal/redistest), under the names these tests use.
type redisServer struct {
	*redistest.Server
	addr string
}

// startRedis starts redis-server on a free loopback port and stops it when
// the test ends. It skips the test only when the binary is not installed.
func startRedis(t testing.TB) *redisServer {
	t.Helper()
	s := redistest.Start(t)
	return &redisServer{Server: s, addr: s.Addr}
}

// start runs the server again, empty, on its port.
func (s *redisServer) start() { s.Start() }

// stop kills the server; safe to call twice.
func (s *redisServer) stop() { s.Stop() }

// newClient returns a client that fails fast, as Config recommends.
func newClient(t testing.TB, addr string) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{
		Addr:         addr,
		MaxRetries:   -1,
		DialTimeout:  500 * time.Millisecond,
		ReadTimeout:  500 * time.Millisecond,
		WriteTimeout: 500 * time.Millisecond,
		PoolTimeout:  time.Second,
	})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// report is one call of Reporter.ReportStore.
type report struct {
	Store, Outcome string
	Recovered      bool
}

// events is a Reporter that collects what a Shared reports.
type events struct {
	mu  sync.Mutex
	evs []report
}

func (e *events) ReportStore(_ context.Context, store, outcome string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.evs = append(e.evs, report{Store: store, Outcome: outcome, Recovered: outcome == "recovered"})
}

func (e *events) list() []report {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]report(nil), e.evs...)
}

// newShared returns plumbing on addr with a fresh client, standing for one
// replica; RetryAfter is tiny so that tests see recovery at once.
func newShared(t testing.TB, addr string, ev *events) *Shared {
	t.Helper()
	cfg := Config{Client: newClient(t, addr), SealKey: testKey(7), Prefix: "t:", RetryAfter: time.Millisecond}
	if ev != nil {
		cfg.Reporter = ev
	}
	s, err := New(cfg)
	require.NoError(t, err)
	return s
}

// waitRecovered retries f until it succeeds (after a restart, the first
// calls may still hit a stale pooled connection).
func waitRecovered(t testing.TB, f func() error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("did not recover: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// scanKeyspace returns every key and its value (strings as they are, hashes
// and sorted sets as their fields and members).
func scanKeyspace(t testing.TB, c *redis.Client) map[string][]string {
	t.Helper()
	ctx := context.Background()
	out := map[string][]string{}
	keys, err := c.Keys(ctx, "*").Result()
	require.NoError(t, err)
	for _, k := range keys {
		typ, err := c.Type(ctx, k).Result()
		require.NoError(t, err)
		switch typ {
		case "string":
			v, err := c.Get(ctx, k).Result()
			require.NoError(t, err)
			out[k] = []string{v}
		case "hash":
			m, err := c.HGetAll(ctx, k).Result()
			require.NoError(t, err)
			for f, v := range m {
				out[k] = append(out[k], f, v)
			}
		case "zset":
			m, err := c.ZRange(ctx, k, 0, -1).Result()
			require.NoError(t, err)
			out[k] = m
		default:
			out[k] = []string{"<" + typ + ">"}
		}
	}
	return out
}
