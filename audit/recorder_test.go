package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNewValidatesConfig(t *testing.T) {
	sink := &memSink{}
	tests := []struct {
		name  string
		cfg   Config
		field string
	}{
		{"nil sink", Config{}, "Config.Sink"},
		{"unknown mode", Config{Sink: sink, Mode: 7}, "Config.Mode"},
		{"unknown policy", Config{Sink: sink, OnFull: 9}, "Config.OnFull"},
		{"negative queue", Config{Sink: sink, Mode: Async, QueueSize: -1}, "Config.QueueSize"},
		{"huge queue", Config{Sink: sink, Mode: Async, QueueSize: MaxQueueSize + 1}, "Config.QueueSize"},
		{"token arg allow-listed", Config{Sink: sink, ArgValues: map[string][]string{"t": {"q", "access_token"}}}, "Config.ArgValues"},
		{"password arg allow-listed", Config{Sink: sink, ArgValues: map[string][]string{"t": {"Password"}}}, "Config.ArgValues"},
		{"api key allow-listed", Config{Sink: sink, ArgValues: map[string][]string{"t": {"apiKey"}}}, "Config.ArgValues"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := New(tt.cfg)
			require.Error(t, err)
			assert.Nil(t, r)
			assert.ErrorIs(t, err, ErrConfig)
			assert.Contains(t, err.Error(), tt.field)
		})
	}
}

func TestNewDefaults(t *testing.T) {
	r := mustNew(t, Config{Sink: &memSink{}, Mode: Async})
	assert.Equal(t, int64(DefaultQueueSize), r.queueSize)
	assert.Equal(t, DefaultQueueSize, cap(r.q))
	assert.Equal(t, "async", Async.String())
	assert.Equal(t, "sync", Sync.String())
	assert.Equal(t, "block", Block.String())
	assert.Equal(t, "drop_and_count", DropAndCount.String())
	assert.Equal(t, "fail_closed", FailClosed.String())
}

func TestSyncModeWritesBeforeReturning(t *testing.T) {
	sink := &memSink{}
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	r := mustNew(t, Config{Sink: sink, Now: fixedClock(t0, time.Second)})

	require.NoError(t, r.Record(context.Background(), ev("a")))
	require.Equal(t, 1, sink.len(), "event written before Record returned")
	assert.Equal(t, t0, sink.all()[0].Time, "zero Time filled from Now")

	stamped := ev("b")
	stamped.Time = t0.Add(-time.Hour)
	require.NoError(t, r.Record(context.Background(), stamped))
	assert.Equal(t, t0.Add(-time.Hour), sink.all()[1].Time, "a set Time is kept")

	sink.setFail(errors.New("disk full"))
	err := r.Record(context.Background(), ev("c"))
	require.ErrorIs(t, err, ErrSink)
	st := r.Stats()
	assert.Equal(t, uint64(2), st.Recorded)
	assert.Equal(t, uint64(1), st.SinkErrors)

	require.NoError(t, r.Close())
	assert.ErrorIs(t, r.Record(context.Background(), ev("d")), ErrClosed)
	assert.Equal(t, uint64(1), r.Stats().Dropped)
}

func TestSyncConcurrent(t *testing.T) {
	sink := &memSink{}
	r := mustNew(t, Config{Sink: sink})
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 100 {
				assert.NoError(t, r.Record(context.Background(), ev(fmt.Sprintf("%d-%d", i, j))))
			}
		})
	}
	wg.Wait()
	require.NoError(t, r.Close())
	assert.Equal(t, 800, sink.len())
}

// fillQueue holds the writer inside Emit with the first event and fills
// the queue (size n) behind it, so the next Record meets a full queue.
func fillQueue(t *testing.T, r *Recorder, sink *gateSink, n int) {
	t.Helper()
	require.NoError(t, r.Record(context.Background(), ev("held")))
	<-sink.entered // the writer took "held" and is blocked in Emit
	for i := range n {
		require.NoError(t, r.Record(context.Background(), ev(fmt.Sprintf("q%d", i))))
	}
	require.Equal(t, n, r.Stats().Queued)
}

func TestAsyncBlockWaitsForRoom(t *testing.T) {
	sink := newGateSink()
	r := mustNew(t, Config{Sink: sink, Mode: Async, QueueSize: 2, OnFull: Block})
	fillQueue(t, r, sink, 2)

	done := make(chan error, 1)
	go func() { done <- r.Record(context.Background(), ev("late")) }()
	waitFor(t, "Record waits for room", func() bool { return r.Stats().Waits == 1 })
	select {
	case err := <-done:
		require.FailNow(t, "Record returned while the queue was full", "%v", err)
	default:
	}

	sink.open()
	require.NoError(t, <-done)
	require.NoError(t, r.Close())
	assert.Equal(t, []string{"held", "q0", "q1", "late"}, tools(sink.all()))
	st := r.Stats()
	assert.Zero(t, st.Dropped)
	assert.Equal(t, uint64(4), st.Recorded)
}

func TestAsyncDropAndCount(t *testing.T) {
	sink := newGateSink()
	r := mustNew(t, Config{Sink: sink, Mode: Async, QueueSize: 2, OnFull: DropAndCount})
	fillQueue(t, r, sink, 2)

	assert.ErrorIs(t, r.Record(context.Background(), ev("lost1")), ErrQueueFull)
	assert.ErrorIs(t, r.Record(context.Background(), ev("lost2")), ErrQueueFull)
	assert.Equal(t, uint64(2), r.Stats().Dropped)

	// When the queue drains, the drop count is itself recorded, before
	// Close and without any further Record.
	sink.open()
	waitFor(t, "overflow reported", func() bool { return sink.len() == 4 })
	got := sink.all()
	assert.Equal(t, []string{"held", "q0", "q1", "<overflow>"}, tools(got))
	overflow := got[3]
	assert.Equal(t, KindQueueOverflow, overflow.Kind)
	assert.Equal(t, uint64(2), overflow.Dropped)
	assert.Equal(t, "queue_full", overflow.Reason)
	assert.False(t, overflow.Time.IsZero())

	require.NoError(t, r.Record(context.Background(), ev("after")))
	require.NoError(t, r.Close())
	assert.Equal(t, []string{"held", "q0", "q1", "<overflow>", "after"}, tools(sink.all()))
	assert.Equal(t, uint64(2), r.Stats().Dropped, "the count stays exposed")
}

func TestAsyncFailClosedRefusesToolCalls(t *testing.T) {
	sink := newGateSink()
	r := mustNew(t, Config{Sink: sink, Mode: Async, QueueSize: 2, OnFull: FailClosed})
	fillQueue(t, r, sink, 2)

	called := false
	h := r.ToolMiddleware(func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		called = true
		return mcp.NewToolResultText("ok"), nil
	})
	req := mcp.CallToolRequest{Params: mcp.CallToolParams{Name: "delete_everything"}}
	res, err := h(context.Background(), req)
	require.ErrorIs(t, err, ErrUnavailable)
	assert.Nil(t, res)
	assert.False(t, called, "the tool must not run when its outcome cannot be recorded")

	// Other events are dropped and counted.
	assert.ErrorIs(t, r.Record(context.Background(), ev("lost")), ErrQueueFull)
	st := r.Stats()
	assert.Equal(t, uint64(1), st.Refused)
	assert.Equal(t, uint64(2), st.Dropped, "the refusal event and the plain event")

	sink.open()
	waitFor(t, "overflow reported", func() bool { return sink.len() == 4 })
	assert.Equal(t, uint64(2), sink.all()[3].Dropped)

	// Room again: the call runs and its outcome is recorded.
	_, err = h(context.Background(), req)
	require.NoError(t, err)
	assert.True(t, called)
	require.NoError(t, r.Close())
	last := sink.all()[4]
	assert.Equal(t, KindToolCall, last.Kind)
	assert.Equal(t, "delete_everything", last.Tool)
	assert.Equal(t, DecisionAllow, last.Decision)
}

func TestAsyncFailClosedReservesBeforeTheCall(t *testing.T) {
	sink := &memSink{}
	r := mustNew(t, Config{Sink: sink, Mode: Async, QueueSize: 1, OnFull: FailClosed})

	inside := make(chan struct{})
	release := make(chan struct{})
	slow := r.ToolMiddleware(func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		close(inside)
		<-release
		return mcp.NewToolResultText("ok"), nil
	})
	fast := r.ToolMiddleware(func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultText("ok"), nil
	})

	done := make(chan error, 1)
	go func() {
		_, err := slow(context.Background(), mcp.CallToolRequest{Params: mcp.CallToolParams{Name: "slow"}})
		done <- err
	}()
	<-inside
	// The queue is empty, but its only slot is promised to the slow call.
	_, err := fast(context.Background(), mcp.CallToolRequest{Params: mcp.CallToolParams{Name: "fast"}})
	require.ErrorIs(t, err, ErrUnavailable)

	close(release)
	require.NoError(t, <-done)
	require.NoError(t, r.Close())
	got := sink.all()
	require.NotEmpty(t, got)
	assert.Contains(t, tools(got), "slow")
	assert.Equal(t, uint64(1), r.Stats().Refused)
}

func TestSyncFailClosedRefusesWhileSinkFails(t *testing.T) {
	sink := &memSink{}
	r := mustNew(t, Config{Sink: sink, Mode: Sync, OnFull: FailClosed})
	calls := 0
	h := r.ToolMiddleware(func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		calls++
		return mcp.NewToolResultText("ok"), nil
	})
	req := mcp.CallToolRequest{Params: mcp.CallToolParams{Name: "t"}}

	sink.setFail(errors.New("write: broken pipe"))
	_, err := h(context.Background(), req) // runs; its outcome fails to write
	require.NoError(t, err)
	assert.Equal(t, 1, calls)

	_, err = h(context.Background(), req) // sink known to fail: refused
	require.ErrorIs(t, err, ErrUnavailable)
	assert.Equal(t, 1, calls)

	sink.setFail(nil)
	_, err = h(context.Background(), req) // refused, but the refusal is written: healthy again
	require.ErrorIs(t, err, ErrUnavailable)
	_, err = h(context.Background(), req)
	require.NoError(t, err)
	assert.Equal(t, 2, calls)

	got := sink.all()
	require.Len(t, got, 2)
	assert.Equal(t, KindToolDenied, got[0].Kind)
	assert.Equal(t, "audit_unavailable", got[0].Reason)
	assert.Equal(t, KindToolCall, got[1].Kind)
}

func TestCloseFlushesEverything(t *testing.T) {
	for _, policy := range []FullPolicy{Block, DropAndCount, FailClosed} {
		t.Run(policy.String(), func(t *testing.T) {
			sink := newGateSink()
			r := mustNew(t, Config{Sink: sink, Mode: Async, QueueSize: 256, OnFull: policy})
			for i := range 200 {
				require.NoError(t, r.Record(context.Background(), ev(fmt.Sprint(i))))
			}
			closed := make(chan error, 1)
			go func() { closed <- r.Close() }()
			sink.open()
			require.NoError(t, <-closed)
			got := sink.all()
			require.Len(t, got, 200)
			for i, e := range got {
				assert.Equal(t, fmt.Sprint(i), e.Tool)
			}
			assert.ErrorIs(t, r.Record(context.Background(), ev("x")), ErrClosed)
			require.NoError(t, r.Close(), "Close is idempotent")
		})
	}
}

func TestCloseWaitsForBlockedSenders(t *testing.T) {
	sink := newGateSink()
	r := mustNew(t, Config{Sink: sink, Mode: Async, QueueSize: 2, OnFull: Block})
	fillQueue(t, r, sink, 2)

	const waiting = 20
	var wg sync.WaitGroup
	for i := range waiting {
		wg.Go(func() { assert.NoError(t, r.Record(context.Background(), ev(fmt.Sprint("w", i)))) })
	}
	waitFor(t, "all senders wait", func() bool { return r.Stats().Waits == waiting })

	closed := make(chan error, 1)
	go func() { closed <- r.Close() }()
	sink.open()
	require.NoError(t, <-closed)
	wg.Wait()
	assert.Equal(t, 3+waiting, sink.len(), "every accepted and waiting event written")
	assert.Zero(t, r.Stats().Dropped)
}

func TestCloseWaitsForToolCallsInFlight(t *testing.T) {
	sink := &memSink{}
	r := mustNew(t, Config{Sink: sink, Mode: Async, OnFull: FailClosed})
	inside, release := make(chan struct{}), make(chan struct{})
	h := r.ToolMiddleware(func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		close(inside)
		<-release
		return mcp.NewToolResultText("ok"), nil
	})
	go func() { _, _ = h(context.Background(), mcp.CallToolRequest{Params: mcp.CallToolParams{Name: "long"}}) }()
	<-inside
	closed := make(chan error, 1)
	go func() { closed <- r.Close() }()
	select {
	case <-closed:
		require.FailNow(t, "Close returned while a tool call was in flight")
	default:
	}
	close(release)
	require.NoError(t, <-closed)
	assert.Equal(t, []string{"long"}, tools(sink.all()))
}

func TestShutdownGivesUpWithContext(t *testing.T) {
	sink := newGateSink()
	t.Cleanup(sink.open)
	r, err := New(Config{Sink: sink, Mode: Async, QueueSize: 1, OnFull: Block})
	require.NoError(t, err)
	fillQueue(t, r, sink, 1)
	blocked := make(chan error, 1)
	go func() { blocked <- r.Record(context.Background(), ev("blocked")) }()
	waitFor(t, "sender waits", func() bool { return r.Stats().Waits == 1 })

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err = r.Shutdown(ctx)
	require.ErrorIs(t, err, context.Canceled)
	assert.Contains(t, err.Error(), "unwritten")
	assert.ErrorIs(t, <-blocked, ErrClosed)
	assert.Equal(t, uint64(1), r.Stats().Dropped)
}

func TestRecordIgnoresCancelledContext(t *testing.T) {
	sink := &memSink{}
	r := mustNew(t, Config{Sink: sink, Mode: Async, QueueSize: 1, OnFull: Block})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for i := range 50 {
		require.NoError(t, r.Record(ctx, ev(fmt.Sprint(i))))
	}
	require.NoError(t, r.Close())
	assert.Equal(t, 50, sink.len())
}

func TestSinkFailureLoggedOnTransitionsOnly(t *testing.T) {
	var logs bytes.Buffer
	sink := &memSink{}
	r := mustNew(t, Config{Sink: sink, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	sink.setFail(errors.New("boom"))
	for range 5 {
		assert.ErrorIs(t, r.Record(context.Background(), ev("x")), ErrSink)
	}
	sink.setFail(nil)
	for range 3 {
		require.NoError(t, r.Record(context.Background(), ev("y")))
	}
	assert.Equal(t, 1, bytes.Count(logs.Bytes(), []byte("audit sink failing")))
	assert.Equal(t, 1, bytes.Count(logs.Bytes(), []byte("audit sink recovered")))
	assert.Equal(t, uint64(5), r.Stats().SinkErrors)
	assert.NotContains(t, logs.String(), "boom", "sink error text stays out of logs")
}

func TestOverflowReportRetriedWhenSinkFails(t *testing.T) {
	sink := newGateSink()
	r := mustNew(t, Config{Sink: sink, Mode: Async, QueueSize: 1, OnFull: DropAndCount})
	fillQueue(t, r, sink, 1)
	assert.ErrorIs(t, r.Record(context.Background(), ev("lost")), ErrQueueFull)
	sink.setFail(errors.New("down"))
	sink.open()
	waitFor(t, "queue drained", func() bool { return r.Stats().SinkErrors >= 3 })
	sink.setFail(nil)
	require.NoError(t, r.Close())
	got := sink.all()
	require.Len(t, got, 1, "only the final overflow report got through")
	assert.Equal(t, KindQueueOverflow, got[0].Kind)
	assert.Equal(t, uint64(1), got[0].Dropped)
}

func TestFanout(t *testing.T) {
	a, b := &memSink{}, &memSink{}
	b.setFail(errors.New("b down"))
	c := &memSink{}
	f := Fanout{a, nil, b, c}
	err := f.Emit(context.Background(), ev("x"))
	require.ErrorIs(t, err, ErrSink)
	assert.Equal(t, 1, a.len())
	assert.Equal(t, 1, c.len(), "a failing sink does not stop the others")
	require.NoError(t, Fanout{}.Emit(context.Background(), ev("x")))

	fl := &flushSink{}
	require.NoError(t, Fanout{a, fl}.Flush())
	assert.Equal(t, 1, fl.flushed)
}

type flushSink struct {
	memSink
	flushed int
}

func (s *flushSink) Flush() error { s.flushed++; return nil }

func TestCloseFlushesSink(t *testing.T) {
	for _, mode := range []Mode{Sync, Async} {
		t.Run(mode.String(), func(t *testing.T) {
			fl := &flushSink{}
			r, err := New(Config{Sink: fl, Mode: mode})
			require.NoError(t, err)
			require.NoError(t, r.Record(context.Background(), ev("x")))
			require.NoError(t, r.Close())
			assert.Equal(t, 1, fl.flushed)
			assert.Equal(t, 1, fl.len())
		})
	}
}

func TestConcurrentRecordAndClose(t *testing.T) {
	for _, policy := range []FullPolicy{Block, DropAndCount, FailClosed} {
		t.Run(policy.String(), func(t *testing.T) {
			sink := &memSink{}
			r, err := New(Config{Sink: sink, Mode: Async, QueueSize: 8, OnFull: policy})
			require.NoError(t, err)
			var wg sync.WaitGroup
			var mu sync.Mutex
			accepted := 0
			for range 8 {
				wg.Go(func() {
					for range 200 {
						if r.Record(context.Background(), ev("x")) == nil {
							mu.Lock()
							accepted++
							mu.Unlock()
						}
					}
				})
			}
			require.NoError(t, r.Close())
			wg.Wait()
			st := r.Stats()
			// Every Record either got its event written or counted as dropped.
			assert.Equal(t, uint64(1600), uint64(accepted)+st.Dropped)
			written := 0
			var reported uint64
			for _, e := range sink.all() {
				if e.Kind == KindQueueOverflow {
					reported += e.Dropped
					continue
				}
				written++
			}
			assert.Equal(t, accepted, written)
			assert.LessOrEqual(t, reported, st.Dropped)
		})
	}
}

// TestCloseGivesUpOnStuckSink: with a sink that never returns, Close ends
// after CloseTimeout and says how many events it could not write
// (issue 15.5), so SIGTERM can end the process.
func TestCloseGivesUpOnStuckSink(t *testing.T) {
	for _, mode := range []Mode{Sync, Async} {
		t.Run(mode.String(), func(t *testing.T) {
			sink := newGateSink()
			t.Cleanup(sink.open)
			r, err := New(Config{Sink: sink, Mode: mode, QueueSize: 8, CloseTimeout: 100 * time.Millisecond})
			require.NoError(t, err)
			want := 1 // Sync: the one Record stuck in the sink
			if mode == Async {
				fillQueue(t, r, sink, 3)
				want = 4 // three queued and the one the writer is stuck on
			} else {
				go func() { _ = r.Record(context.Background(), ev("stuck")) }()
				<-sink.entered
			}
			start := time.Now()
			closed := make(chan error, 1)
			go func() { closed <- r.Close() }()
			select {
			case err = <-closed:
			case <-time.After(10 * time.Second):
				t.Fatal("Close did not give up")
			}
			assert.Less(t, time.Since(start), 5*time.Second)
			var ue *UnwrittenError
			require.ErrorAs(t, err, &ue)
			assert.Equal(t, want, ue.Unwritten)
			assert.ErrorIs(t, err, context.DeadlineExceeded)
			assert.Contains(t, err.Error(), fmt.Sprintf("%d events unwritten", want))
		})
	}
}

func TestCloseTimeoutNegativeRefused(t *testing.T) {
	_, err := New(Config{Sink: &memSink{}, CloseTimeout: -time.Second})
	assert.ErrorIs(t, err, ErrConfig)
	assert.Contains(t, err.Error(), "Config.CloseTimeout")
}

// gateWriter is an io.Writer that blocks each Write until released and
// keeps what it was given, one entry per Write. fail, when set, makes a
// Write take only its first n bytes and fail.
type gateWriter struct {
	mu      sync.Mutex
	writes  [][]byte
	entered chan struct{}
	gate    chan struct{}
	failAt  int // take this many bytes of the next Write and fail; <0: never
}

func newGateWriter() *gateWriter {
	return &gateWriter{entered: make(chan struct{}, 1<<10), gate: make(chan struct{}, 1<<10), failAt: -1}
}

func (w *gateWriter) Write(p []byte) (int, error) {
	w.entered <- struct{}{}
	<-w.gate
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.failAt >= 0 {
		n := min(w.failAt, len(p))
		w.failAt = -1
		w.writes = append(w.writes, bytes.Clone(p[:n]))
		return n, errors.New("disk full")
	}
	w.writes = append(w.writes, bytes.Clone(p))
	return len(p), nil
}

func (w *gateWriter) release(n int) {
	for range n {
		w.gate <- struct{}{}
	}
}

func (w *gateWriter) lines() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for _, b := range w.writes {
		for _, l := range strings.SplitAfter(string(b), "\n") {
			if l != "" {
				out = append(out, l)
			}
		}
	}
	return out
}

// An Async Recorder hands a JSONSink the events that queued up while it
// was writing, and the sink writes them in one Write, whole lines in
// order; Stats count every event.
func TestAsyncJSONSinkWritesQueuedEventsAtOnce(t *testing.T) {
	w := newGateWriter()
	sink, err := NewJSONSink(w)
	require.NoError(t, err)
	r, err := New(Config{Sink: sink, Mode: Async, QueueSize: 64})
	require.NoError(t, err)
	require.NoError(t, r.Record(context.Background(), ev("first")))
	<-w.entered // the writer is inside the first Write
	for i := range 30 {
		require.NoError(t, r.Record(context.Background(), ev(fmt.Sprintf("t%d", i))))
	}
	w.release(2)
	require.NoError(t, r.Close())
	w.mu.Lock()
	writes := len(w.writes)
	w.mu.Unlock()
	assert.Equal(t, 2, writes, "the first event, then the 30 queued behind it in one Write")
	lines := w.lines()
	require.Len(t, lines, 31)
	assert.Contains(t, lines[0], `"tool":"first"`)
	for i, l := range lines[1:] {
		assert.Contains(t, l, fmt.Sprintf(`"tool":"t%d"`, i))
		assert.True(t, strings.HasSuffix(l, "}\n"), "a whole line: %q", l)
	}
	st := r.Stats()
	assert.Equal(t, uint64(31), st.Recorded)
	assert.Zero(t, st.SinkErrors)
}

// A batch larger than PIPE_BUF is split into Writes of at most 4 KiB, each
// of whole lines, in order; a line longer than that is written alone.
func TestJSONSinkBatchWritesBounded(t *testing.T) {
	w := newGateWriter()
	w.release(1 << 10)
	sink, err := NewJSONSink(w)
	require.NoError(t, err)
	events := make([]Event, 200)
	for i := range events {
		events[i] = Event{Time: time.Now(), Kind: KindToolCall, Tool: fmt.Sprintf("t%d", i)}
	}
	for i := range 20 { // one line of about 10 KiB
		events[100].Args = append(events[100].Args, Arg{Name: fmt.Sprintf("a%02d", i), Value: strings.Repeat("x", 500), HasValue: true})
	}
	n, err := sink.emitBatch(context.Background(), events)
	require.NoError(t, err)
	assert.Equal(t, 200, n)
	w.mu.Lock()
	writes := w.writes
	w.mu.Unlock()
	require.Greater(t, len(writes), 3)
	long := 0
	for _, b := range writes {
		assert.True(t, bytes.HasSuffix(b, []byte("\n")), "whole lines only")
		if len(b) > batchBytes {
			long++
			assert.Equal(t, 1, bytes.Count(b, []byte("\n")), "a long line is written alone")
			assert.Contains(t, string(b), `"tool":"t100"`)
		}
	}
	assert.Equal(t, 1, long)
	lines := w.lines()
	require.Len(t, lines, 200)
	for i, l := range lines {
		assert.Contains(t, l, fmt.Sprintf(`"tool":"t%d"`, i))
	}
}

// A batch Write that fails part-way counts the lines the writer took whole
// as recorded and the rest as sink errors; nothing is counted twice.
func TestAsyncJSONSinkPartialBatchWrite(t *testing.T) {
	w := newGateWriter()
	sink, err := NewJSONSink(w)
	require.NoError(t, err)
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	r, err := New(Config{Sink: sink, Mode: Async, QueueSize: 64, Now: fixedClock(t0, time.Second)})
	require.NoError(t, err)
	require.NoError(t, r.Record(context.Background(), ev("first")))
	<-w.entered
	for i := range 10 {
		require.NoError(t, r.Record(context.Background(), ev(fmt.Sprintf("t%d", i))))
	}
	// The second Write (the ten queued) takes three lines and a half.
	line := len(appendJSON(nil, &Event{Time: t0, Kind: KindToolCall, Tool: "t0"})) + 1
	w.release(1)
	waitFor(t, "the writer is in the second Write", func() bool { return len(w.entered) > 0 })
	w.mu.Lock()
	w.failAt = 3*line + line/2
	w.mu.Unlock()
	w.release(1)
	waitFor(t, "the batch is counted", func() bool {
		st := r.Stats()
		return st.Recorded+st.SinkErrors == 11
	})
	st := r.Stats()
	assert.Equal(t, uint64(4), st.Recorded, "the first and three whole lines")
	assert.Equal(t, uint64(7), st.SinkErrors)
	w.release(8)
	require.NoError(t, r.Close())
}

// Close that gives up while the writer is stuck on a batch counts every
// event of the batch as unwritten.
func TestCloseGivesUpOnStuckBatch(t *testing.T) {
	w := newGateWriter()
	t.Cleanup(func() { w.release(4) })
	sink, err := NewJSONSink(w)
	require.NoError(t, err)
	r, err := New(Config{Sink: sink, Mode: Async, QueueSize: 64, CloseTimeout: 100 * time.Millisecond})
	require.NoError(t, err)
	require.NoError(t, r.Record(context.Background(), ev("first")))
	<-w.entered
	for i := range 5 {
		require.NoError(t, r.Record(context.Background(), ev(fmt.Sprintf("t%d", i))))
	}
	w.release(1)
	<-w.entered // stuck on the batch of five
	err = r.Close()
	var ue *UnwrittenError
	require.ErrorAs(t, err, &ue)
	assert.Equal(t, 5, ue.Unwritten)
}

// withLinger sets the writer's pause between batches for the Recorders
// the test makes.
func withLinger(t *testing.T, d time.Duration) {
	t.Helper()
	old := batchLinger
	batchLinger = d
	t.Cleanup(func() { batchLinger = old })
}

// The writer's pause between batches ends once the queue is half full, so
// it never makes a small queue overflow, block or refuse tool calls; Close
// ends it too. The pause here is an hour: only those ends can write.
func TestAsyncPauseEndsWhenQueueHalfFull(t *testing.T) {
	withLinger(t, time.Hour)
	for _, size := range []int{1, 2, 64} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			sink := &memSink{}
			r, err := New(Config{Sink: sink, Mode: Async, QueueSize: size, OnFull: FailClosed})
			require.NoError(t, err)
			require.NoError(t, r.Record(context.Background(), ev("first")))
			waitFor(t, "the first event is written", func() bool { return sink.len() == 1 })
			// The writer now pauses for an hour. Half a queue ends the pause.
			half := max(1, size/2)
			for i := range half {
				require.NoError(t, r.Record(context.Background(), ev(fmt.Sprint("e", i))))
			}
			waitFor(t, "half a queue is written without waiting out the pause", func() bool { return sink.len() == 1+half })
			if size > 2 {
				// Fewer than half wait for the pause, or for Close.
				require.NoError(t, r.Record(context.Background(), ev("last")))
				assert.Equal(t, 1, r.Stats().Queued)
			}
			done := make(chan error, 1)
			go func() { done <- r.Close() }()
			select {
			case err := <-done:
				require.NoError(t, err)
			case <-time.After(30 * time.Second):
				t.Fatal("Close waited out the pause")
			}
			assert.Zero(t, r.Stats().Dropped)
			assert.Zero(t, r.Stats().Refused)
		})
	}
}

// statWriter is a gateWriter that says, through Stat, what kind of file it
// is.
type statWriter struct {
	*gateWriter
	mode fs.FileMode
}

func (w statWriter) Stat() (fs.FileInfo, error) { return fakeInfo{w.mode}, nil }

type fakeInfo struct{ mode fs.FileMode }

func (fakeInfo) Name() string        { return "audit" }
func (fakeInfo) Size() int64         { return 0 }
func (i fakeInfo) Mode() fs.FileMode { return i.mode }
func (fakeInfo) ModTime() time.Time  { return time.Time{} }
func (i fakeInfo) IsDir() bool       { return i.mode.IsDir() }
func (fakeInfo) Sys() any            { return nil }

// To a regular file a batch goes in Writes of up to 64 KiB; to a pipe, or
// a writer that cannot say, in Writes of up to 4 KiB.
func TestJSONSinkBatchBoundFollowsTheFile(t *testing.T) {
	events := make([]Event, 300)
	for i := range events {
		events[i] = Event{Time: time.Now(), Kind: KindToolCall, Tool: fmt.Sprintf("t%d", i)}
	}
	for _, tt := range []struct {
		name   string
		mode   fs.FileMode
		writes int
	}{
		{"regular file", 0o644, 1},
		{"named pipe", fs.ModeNamedPipe | 0o600, 0},
		{"character device", fs.ModeDevice | fs.ModeCharDevice | 0o600, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := statWriter{newGateWriter(), tt.mode}
			w.release(1 << 10)
			sink, err := NewJSONSink(w)
			require.NoError(t, err)
			n, err := sink.emitBatch(context.Background(), events)
			require.NoError(t, err)
			assert.Equal(t, len(events), n)
			w.mu.Lock()
			writes := w.writes
			w.mu.Unlock()
			total := 0
			for _, b := range writes {
				total += len(b)
				assert.True(t, bytes.HasSuffix(b, []byte("\n")), "whole lines only")
				if tt.writes == 0 {
					assert.LessOrEqual(t, len(b), batchBytes)
				}
			}
			require.Greater(t, total, 2*batchBytes, "the batch is larger than two pipe writes")
			if tt.writes > 0 {
				assert.Len(t, writes, tt.writes)
			} else {
				assert.Greater(t, len(writes), 2)
			}
			assert.Len(t, w.lines(), len(events))
		})
	}

	// Real files: a regular file, a pipe, and writers that are not files.
	f, err := os.CreateTemp(t.TempDir(), "audit")
	require.NoError(t, err)
	defer f.Close()
	assert.Equal(t, fileBatchBytes, batchLimit(f))
	pr, pw, err := os.Pipe()
	require.NoError(t, err)
	defer pr.Close()
	defer pw.Close()
	assert.Equal(t, batchBytes, batchLimit(pw))
	assert.Equal(t, batchBytes, batchLimit(&bytes.Buffer{}))
	closed, err := os.CreateTemp(t.TempDir(), "closed")
	require.NoError(t, err)
	require.NoError(t, closed.Close())
	assert.Equal(t, batchBytes, batchLimit(closed), "a file that cannot be examined is treated as a pipe")
}
