package audit

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// memSink keeps every event it is given.
type memSink struct {
	mu     sync.Mutex
	events []Event
	fail   error // when set, Emit fails with it
}

func (s *memSink) Emit(_ context.Context, e Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return errors.Join(ErrSink, s.fail)
	}
	s.events = append(s.events, e)
	return nil
}

func (s *memSink) setFail(err error) {
	s.mu.Lock()
	s.fail = err
	s.mu.Unlock()
}

func (s *memSink) all() []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Event(nil), s.events...)
}

func (s *memSink) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.events)
}

// gateSink blocks every Emit until the gate opens, announcing each Emit
// on entered first. It lets tests hold the background writer still and
// fill the queue deterministically.
type gateSink struct {
	memSink
	entered chan struct{}
	gate    chan struct{}
	once    sync.Once
}

func newGateSink() *gateSink {
	return &gateSink{entered: make(chan struct{}, 1<<16), gate: make(chan struct{})}
}

func (s *gateSink) Emit(ctx context.Context, e Event) error {
	s.entered <- struct{}{}
	<-s.gate
	return s.memSink.Emit(ctx, e)
}

func (s *gateSink) open() { s.once.Do(func() { close(s.gate) }) }

// waitFor polls cond until it holds. It is not a timed assertion: it only
// fails when the test as a whole would otherwise hang.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			require.FailNow(t, "condition never held", what)
		}
		runtime.Gosched()
		time.Sleep(100 * time.Microsecond)
	}
}

// fixedClock returns a Now that starts at t0 and advances by step per call.
func fixedClock(t0 time.Time, step time.Duration) func() time.Time {
	var mu sync.Mutex
	cur := t0
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		now := cur
		cur = cur.Add(step)
		return now
	}
}

func mustNew(t *testing.T, cfg Config) *Recorder {
	t.Helper()
	r, err := New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = r.Close() })
	return r
}

func ev(tool string) Event { return Event{Kind: KindToolCall, Tool: tool} }

func tools(events []Event) []string {
	out := make([]string, 0, len(events))
	for _, e := range events {
		if e.Kind == KindQueueOverflow {
			out = append(out, "<overflow>")
			continue
		}
		out = append(out, e.Tool)
	}
	return out
}
