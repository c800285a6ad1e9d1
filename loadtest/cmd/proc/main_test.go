package main

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseStat(t *testing.T) {
	tests := []struct {
		name    string
		stat    string
		want    time.Duration
		wantErr bool
	}{
		{"plain", "4242 (prodmode) S 1 4242 4242 0 -1 4194560 900 0 0 0 150 25 0 0 20 0 8 0 1 2 3", 175 * clockTick, false},
		{"name with spaces and parens", "7 (a) b) c) R 1 7 7 0 -1 0 0 0 0 0 3 4 0 0 20 0 1 0 1 2 3", 7 * clockTick, false},
		{"no name", "7 a R 1 7 7 0 -1 0 0 0 0 0 3 4", 0, true},
		{"too few fields", "7 (a) R 1 7 7", 0, true},
		{"not a number", "7 (a) R 1 7 7 0 -1 0 0 0 0 0 x 4 0", 0, true},
		{"negative", "7 (a) R 1 7 7 0 -1 0 0 0 0 0 -3 4 0", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStat([]byte(tt.stat))
			if tt.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestProcessCPUOfSelf(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	// Burn some CPU so that at least one tick is accounted.
	deadline := time.Now().Add(50 * time.Millisecond)
	for x := 0; time.Now().Before(deadline); x++ {
		_ = fmt.Sprint(x)
	}
	got, err := processCPU(os.Getpid())
	require.NoError(t, err)
	assert.Positive(t, got)
}

func FuzzParseStat(f *testing.F) {
	f.Add([]byte("4242 (prodmode) S 1 4242 4242 0 -1 4194560 900 0 0 0 150 25 0 0 20 0 8 0 1 2 3"))
	f.Add([]byte("7 ()) R"))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := parseStat(b)
		if err == nil {
			assert.GreaterOrEqual(t, d, time.Duration(0))
		}
	})
}

func FuzzParseSwitches(f *testing.F) {
	f.Add([]byte("voluntary_ctxt_switches:\t1200\nnonvoluntary_ctxt_switches:\t34\n"))
	f.Add([]byte("voluntary_ctxt_switches:\t9223372036854775807\nnonvoluntary_ctxt_switches:\t1\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := parseSwitches(b)
		if err == nil {
			assert.GreaterOrEqual(t, n, int64(0))
		}
	})
}

// The Go runtime settings of proc's environment reach both children; no
// other variable of it does.
func TestRuntimeEnv(t *testing.T) {
	t.Setenv("GOGC", "400")
	t.Setenv("GODEBUG", "gctrace=1")
	t.Setenv("MCPGUARD_SEAL_KEY", "not for the children")
	env := runtimeEnv()
	assert.Contains(t, env, "GOGC=400")
	assert.Contains(t, env, "GODEBUG=gctrace=1")
	for _, kv := range env {
		assert.NotContains(t, kv, "MCPGUARD_")
	}
}

// fakeClock is a clock that moves only when the code under test sleeps or
// the test advances it.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) sleep(d time.Duration)   { c.t = c.t.Add(d) }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func TestPacer(t *testing.T) {
	t0 := time.Unix(1000, 0)

	t.Run("staggered and spaced", func(t *testing.T) {
		// 4 clients at 400 calls/s: each calls every 10 ms, client 1 a
		// quarter period after client 0.
		c := &fakeClock{t: t0}
		p := newPacer(400, 4, 1, t0, c.now, c.sleep)
		var sent []time.Duration
		for range 3 {
			p.wait()
			sent = append(sent, c.t.Sub(t0))
		}
		assert.Equal(t, []time.Duration{2500 * time.Microsecond, 12500 * time.Microsecond, 22500 * time.Microsecond}, sent)
	})

	t.Run("behind by less than a period sends at once and keeps the schedule", func(t *testing.T) {
		c := &fakeClock{t: t0}
		p := newPacer(100, 1, 0, t0, c.now, c.sleep) // every 10 ms
		p.wait()                                     // due at t0
		c.advance(14 * time.Millisecond)             // the call took 14 ms
		p.wait()                                     // due at 10 ms: late, no sleep
		assert.Equal(t, 14*time.Millisecond, c.t.Sub(t0))
		p.wait() // due at 20 ms
		assert.Equal(t, 20*time.Millisecond, c.t.Sub(t0))
	})

	t.Run("far behind starts a new schedule instead of a burst", func(t *testing.T) {
		c := &fakeClock{t: t0}
		p := newPacer(100, 1, 0, t0, c.now, c.sleep)
		p.wait()
		c.advance(55 * time.Millisecond) // five periods missed
		p.wait()                         // at once
		assert.Equal(t, 55*time.Millisecond, c.t.Sub(t0))
		p.wait() // one period later, not at once again
		assert.Equal(t, 65*time.Millisecond, c.t.Sub(t0))
	})

	t.Run("no rate never waits", func(t *testing.T) {
		c := &fakeClock{t: t0}
		p := newPacer(0, 16, 3, t0, c.now, c.sleep)
		for range 5 {
			p.wait()
		}
		assert.Equal(t, t0, c.t)
	})
}

func TestParseSwitches(t *testing.T) {
	good := "Name:\tprodmode\nState:\tS (sleeping)\nvoluntary_ctxt_switches:\t1200\nnonvoluntary_ctxt_switches:\t34\n"
	n, err := parseSwitches([]byte(good))
	require.NoError(t, err)
	assert.Equal(t, int64(1234), n)
	for _, bad := range []string{
		"Name:\tx\n",
		"voluntary_ctxt_switches:\t12\n",
		"voluntary_ctxt_switches:\tx\nnonvoluntary_ctxt_switches:\t1\n",
		"voluntary_ctxt_switches:\t-1\nnonvoluntary_ctxt_switches:\t1\n",
	} {
		_, err := parseSwitches([]byte(bad))
		assert.Error(t, err, bad)
	}
	// This process's own threads have counts.
	self, err := processSwitches(os.Getpid())
	require.NoError(t, err)
	assert.Positive(t, self)
}

func TestSpread(t *testing.T) {
	m, lo, hi := spread([]float64{1.4, 1.2, 1.9})
	assert.Equal(t, []float64{1.4, 1.2, 1.9}, []float64{m, lo, hi})
	m, lo, hi = spread([]float64{1.5, 1.1, 1.3, 1.7})
	assert.InDelta(t, 1.4, m, 1e-9)
	assert.Equal(t, []float64{1.1, 1.7}, []float64{lo, hi})
	m, lo, hi = spread(nil)
	assert.Zero(t, m+lo+hi)
}
