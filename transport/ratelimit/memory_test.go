package ratelimit

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func newMemory(t testing.TB, cfg MemoryConfig) *Memory {
	t.Helper()
	m, err := NewMemory(cfg)
	require.NoError(t, err)
	return m
}

func TestMemoryAllowAt(t *testing.T) {
	type step struct {
		at      time.Duration // since t0
		limit   Limit
		allowed bool
		retry   time.Duration
	}
	tenPerSec := Limit{Events: 10, Period: time.Second, Burst: 3}
	tests := []struct {
		name  string
		steps []step
	}{
		{name: "burst then refusal with exact retry", steps: []step{
			{0, tenPerSec, true, 0},
			{0, tenPerSec, true, 0},
			{0, tenPerSec, true, 0},
			{0, tenPerSec, false, 100 * time.Millisecond},
			{40 * time.Millisecond, tenPerSec, false, 60 * time.Millisecond},
			{100 * time.Millisecond, tenPerSec, true, 0},
			{100 * time.Millisecond, tenPerSec, false, 100 * time.Millisecond},
		}},
		{name: "refill caps at burst", steps: []step{
			{0, tenPerSec, true, 0},
			{time.Hour, tenPerSec, true, 0},
			{time.Hour, tenPerSec, true, 0},
			{time.Hour, tenPerSec, true, 0},
			{time.Hour, tenPerSec, false, 100 * time.Millisecond},
		}},
		{name: "defaults: period one second, burst events", steps: []step{
			{0, Limit{Events: 2}, true, 0},
			{0, Limit{Events: 2}, true, 0},
			{0, Limit{Events: 2}, false, 500 * time.Millisecond},
		}},
		{name: "per minute", steps: []step{
			{0, PerMinute(1), true, 0},
			{time.Second, PerMinute(1), false, 59 * time.Second},
			{time.Minute, PerMinute(1), true, 0},
		}},
		{name: "a bucket keeps its limit: another limit for the key is another bucket", steps: []step{
			{0, PerSecond(1), true, 0},
			{0, PerSecond(1), false, time.Second},
			{0, Limit{Events: 1, Burst: 3}, true, 0},
			{0, Limit{Events: 1, Burst: 3}, true, 0},
			{0, Limit{Events: 1, Burst: 3}, true, 0},
			{0, Limit{Events: 1, Burst: 3}, false, time.Second},
			{0, PerSecond(1), false, time.Second},
		}},
		{name: "a spent bucket is not refilled by a larger limit arriving", steps: []step{
			{0, PerSecond(1), true, 0},
			{0, PerSecond(5), true, 0},
			{0, PerSecond(1), false, time.Second},
		}},
		{name: "time going backwards gains nothing", steps: []step{
			{time.Second, PerSecond(1), true, 0},
			{0, PerSecond(1), false, time.Second},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := newMemory(t, MemoryConfig{})
			for i, s := range tc.steps {
				d, err := m.AllowAt("k", s.limit, t0.Add(s.at))
				require.NoError(t, err)
				assert.Equal(t, s.allowed, d.Allowed, "step %d", i)
				assert.InDelta(t, float64(s.retry), float64(d.RetryAfter), float64(time.Microsecond), "step %d", i)
				assert.NoError(t, d.FailedOpen)
			}
		})
	}
}

func TestMemoryKeysAreIndependent(t *testing.T) {
	m := newMemory(t, MemoryConfig{})
	for _, k := range []string{"a", "b", "", strings.Repeat("x", 200)} {
		d, err := m.AllowAt(k, PerMinute(1), t0)
		require.NoError(t, err)
		assert.True(t, d.Allowed, "%q", k)
	}
	for _, k := range []string{"a", "b", "", strings.Repeat("x", 200)} {
		d, err := m.AllowAt(k, PerMinute(1), t0)
		require.NoError(t, err)
		assert.False(t, d.Allowed, "%q", k)
	}
}

func TestMemoryLongKeysDigested(t *testing.T) {
	m := newMemory(t, MemoryConfig{MaxKeys: 64})
	long1 := strings.Repeat("a", MaxKeyBytes) + "1"
	long2 := strings.Repeat("a", MaxKeyBytes) + "2"
	_, err := m.AllowAt(long1, PerMinute(1), t0)
	require.NoError(t, err)
	d, err := m.AllowAt(long2, PerMinute(1), t0)
	require.NoError(t, err)
	assert.True(t, d.Allowed, "keys sharing a long prefix are distinct")
	for i := range m.shards {
		for k := range m.shards[i].entries {
			assert.LessOrEqual(t, len(k), MaxKeyBytes)
		}
	}
}

func TestMemoryInvalidLimit(t *testing.T) {
	m := newMemory(t, MemoryConfig{})
	for name, l := range map[string]Limit{
		"zero":            {},
		"negative events": {Events: -1},
		"negative period": {Events: 1, Period: -time.Second},
		"negative burst":  {Events: 1, Burst: -1},
	} {
		t.Run(name, func(t *testing.T) {
			d, err := m.AllowAt("k", l, t0)
			require.ErrorIs(t, err, ErrConfig)
			assert.False(t, d.Allowed)
			_, err = m.Allow(context.Background(), "k", l)
			assert.ErrorIs(t, err, ErrConfig)
		})
	}
}

func TestNewMemoryConfig(t *testing.T) {
	_, err := NewMemory(MemoryConfig{MaxKeys: -1})
	require.ErrorIs(t, err, ErrConfig)
	assert.Contains(t, err.Error(), "MaxKeys")

	m := newMemory(t, MemoryConfig{})
	assert.Len(t, m.shards, maxShards)
	assert.Equal(t, DefaultMaxKeys/maxShards, m.shards[0].max)

	small := newMemory(t, MemoryConfig{MaxKeys: 10})
	assert.Len(t, small.shards, 1)
	assert.Equal(t, 10, small.shards[0].max)
}

func TestMemoryNowHook(t *testing.T) {
	now := t0
	m := newMemory(t, MemoryConfig{Now: func() time.Time { return now }})
	ctx := context.Background()
	d, err := m.Allow(ctx, "k", PerSecond(1))
	require.NoError(t, err)
	require.True(t, d.Allowed)
	d, err = m.Allow(ctx, "k", PerSecond(1))
	require.NoError(t, err)
	assert.False(t, d.Allowed)
	now = now.Add(time.Second)
	d, err = m.Allow(ctx, "k", PerSecond(1))
	require.NoError(t, err)
	assert.True(t, d.Allowed)
}

func TestMemoryLRUEviction(t *testing.T) {
	// One shard of four keys, so eviction order is exact LRU.
	m := newMemory(t, MemoryConfig{MaxKeys: 4})
	require.Len(t, m.shards, 1)
	spend := func(k string) Decision {
		d, err := m.AllowAt(k, PerMinute(1), t0)
		require.NoError(t, err)
		return d
	}
	for _, k := range []string{"a", "b", "c", "d"} {
		require.True(t, spend(k).Allowed)
	}
	assert.False(t, spend("a").Allowed, "a is used again, so b is now least recently used")
	require.True(t, spend("e").Allowed) // evicts b
	assert.Equal(t, 4, m.size())

	assert.False(t, spend("a").Allowed, "a survived")
	assert.False(t, spend("c").Allowed, "c survived")
	assert.False(t, spend("d").Allowed, "d survived")
	assert.False(t, spend("e").Allowed, "e is held")
	// b was forgotten: it starts again with a full bucket, which also
	// shows that a reused entry is reset. Its return evicts a.
	assert.True(t, spend("b").Allowed)
	assert.True(t, spend("a").Allowed, "a was evicted by b")
	assert.Equal(t, 4, m.size())
}

func TestMemoryReusedEntryGetsNewLimit(t *testing.T) {
	m := newMemory(t, MemoryConfig{MaxKeys: 1})
	_, err := m.AllowAt("a", PerMinute(1), t0)
	require.NoError(t, err)
	// b evicts a and reuses its entry with another limit and a full burst.
	for i := range 3 {
		d, err := m.AllowAt("b", Limit{Events: 1, Period: time.Hour, Burst: 3}, t0)
		require.NoError(t, err)
		assert.True(t, d.Allowed, "call %d", i)
	}
	d, err := m.AllowAt("b", Limit{Events: 1, Period: time.Hour, Burst: 3}, t0)
	require.NoError(t, err)
	assert.False(t, d.Allowed)
	assert.InDelta(t, float64(time.Hour), float64(d.RetryAfter), float64(time.Millisecond))
}

func TestMemoryConcurrent(t *testing.T) {
	m := newMemory(t, MemoryConfig{MaxKeys: 128})
	const goroutines, calls = 8, 500
	var wg sync.WaitGroup
	allowed := make([]int, goroutines)
	for g := range goroutines {
		wg.Go(func() {
			for i := range calls {
				// One shared hot key plus churn that forces eviction.
				d, err := m.AllowAt("hot", Limit{Events: 1, Period: time.Hour, Burst: 100}, t0)
				if err != nil {
					t.Error(err)
					return
				}
				if d.Allowed {
					allowed[g]++
				}
				if _, err := m.AllowAt(fmt.Sprintf("cold-%d-%d", g, i), PerSecond(1), t0); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	total := 0
	for _, n := range allowed {
		total += n
	}
	// "hot" is touched by every goroutine between cold keys, but cold
	// churn can still evict it; it can never get less than its burst.
	assert.GreaterOrEqual(t, total, 100)
	assert.LessOrEqual(t, m.size(), 128)
}

// memoryBoundPerKey is the documented heap cost of one held key, key bytes
// included (keys are at most MaxKeyBytes), with the map's growth slack.
const memoryBoundPerKey = 384

// TestMemoryMillionKeys sends 1,000,000 distinct keys through a limiter
// with the default cap and checks that the live heap it holds stays under
// DefaultMaxKeys * memoryBoundPerKey (24 MiB), however many keys it saw.
func TestMemoryMillionKeys(t *testing.T) {
	if testing.Short() {
		t.Skip("sends 1,000,000 keys; skipped with -short")
	}
	const keys = 1_000_000
	before := liveHeap()
	m := newMemory(t, MemoryConfig{})
	buf := make([]byte, 0, 64)
	limit := PerSecond(10)
	for i := range keys {
		// Keys shaped like real ones: "http|a" + an address.
		buf = append(buf[:0], "http|a198.51."...)
		buf = strconv.AppendInt(buf, int64(i), 10)
		d, err := m.AllowAt(string(buf), limit, t0)
		if err != nil || !d.Allowed {
			t.Fatalf("key %d: %v %+v", i, err, d)
		}
	}
	after := liveHeap()
	held := m.size()
	runtime.KeepAlive(m)

	growth := int64(after) - int64(before)
	bound := int64(DefaultMaxKeys * memoryBoundPerKey)
	t.Logf("1,000,000 keys: %d held, heap %d -> %d bytes (+%.1f MiB, %.0f B/key held), bound %d MiB",
		held, before, after, float64(growth)/(1<<20), float64(growth)/float64(held), bound>>20)
	assert.LessOrEqual(t, held, DefaultMaxKeys)
	assert.Greater(t, held, DefaultMaxKeys*9/10, "the cap is used, not undershot")
	assert.Less(t, growth, bound)
}

func liveHeap() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

func BenchmarkMemoryAllowHotKey(b *testing.B) {
	m := newMemory(b, MemoryConfig{})
	ctx := context.Background()
	limit := Limit{Events: 1 << 30, Burst: 1 << 30}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := m.Allow(ctx, "http|t4:acmei0:s5:alice", limit); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkMemoryAllowAtHotKey(b *testing.B) {
	m := newMemory(b, MemoryConfig{})
	limit := Limit{Events: 1 << 30, Burst: 1 << 30}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.AllowAt("http|t4:acmei0:s5:alice", limit, t0); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMemoryAllowDistinctKeys(b *testing.B) {
	m := newMemory(b, MemoryConfig{MaxKeys: 4096})
	keys := make([]string, 1<<16)
	for i := range keys {
		keys[i] = "http|a203.0." + strconv.Itoa(i)
	}
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := m.Allow(ctx, keys[i&(len(keys)-1)], PerSecond(10)); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
