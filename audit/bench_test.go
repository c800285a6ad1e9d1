package audit

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
)

// benchEvent is a typical tool-call event.
func benchEvent() Event {
	return Event{
		Time: time.Date(2026, 5, 6, 7, 8, 9, 123456789, time.UTC), Kind: KindToolCall,
		RequestID: "01JH8Z6Q3T6V9K2M4N5P7R8S9T", SessionID: "6f1c2d3e-4b5a-6978-8a9b-0c1d2e3f4a5b", RPCID: "42",
		Subject: "00u1a2b3c4d5e6f7g8h9", ClientID: "0oa9z8y7x6w5v4u3t2s1", AuthKind: "user", Tenant: "acme-corp",
		Tool: "search_documents", Decision: DecisionAllow, Duration: 1830 * time.Microsecond,
		Args: []Arg{{Name: "filters"}, {Name: "limit", Value: "10", HasValue: true}, {Name: "query"}},
	}
}

func reportRate(b *testing.B) {
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(b.N)/s, "events/s")
	}
}

// BenchmarkJSONSink measures encoding and writing one event; run it with
// -cpu 1 for the one-core figure.
func BenchmarkJSONSink(b *testing.B) {
	s, err := NewJSONSink(io.Discard)
	if err != nil {
		b.Fatal(err)
	}
	e := benchEvent()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Emit(ctx, e); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b)
}

// BenchmarkJSONSinkFile is BenchmarkJSONSink writing to a real file: one
// write(2) per event.
func BenchmarkJSONSinkFile(b *testing.B) {
	f, err := os.Create(filepath.Join(b.TempDir(), "audit.jsonl"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	s, err := NewJSONSink(f)
	if err != nil {
		b.Fatal(err)
	}
	e := benchEvent()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Emit(ctx, e); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b)
}

func BenchmarkSlogJSONSink(b *testing.B) {
	s, err := NewSlogSink(SlogConfig{Handler: slog.NewJSONHandler(io.Discard, nil)})
	if err != nil {
		b.Fatal(err)
	}
	e := benchEvent()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Emit(ctx, e); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b)
}

// BenchmarkAsyncRecord measures Record on an Async recorder: the cost the
// caller pays to enqueue. The event is built once; any allocation reported
// here would be Record's own.
func BenchmarkAsyncRecord(b *testing.B) {
	for _, policy := range []FullPolicy{Block, DropAndCount, FailClosed} {
		b.Run(policy.String(), func(b *testing.B) {
			r, err := New(Config{Sink: SinkFunc(func(context.Context, Event) error { return nil }),
				Mode: Async, OnFull: policy, QueueSize: 1 << 16})
			if err != nil {
				b.Fatal(err)
			}
			e := benchEvent()
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				_ = r.Record(ctx, e)
			}
			b.StopTimer()
			if err := r.Close(); err != nil {
				b.Fatal(err)
			}
			st := r.Stats()
			b.ReportMetric(float64(st.Dropped), "dropped")
		})
	}
}

// BenchmarkAsyncRecordParallel enqueues from every P at once.
func BenchmarkAsyncRecordParallel(b *testing.B) {
	r, err := New(Config{Sink: SinkFunc(func(context.Context, Event) error { return nil }),
		Mode: Async, OnFull: DropAndCount, QueueSize: 1 << 16})
	if err != nil {
		b.Fatal(err)
	}
	e := benchEvent()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			_ = r.Record(ctx, e)
		}
	})
	b.StopTimer()
	_ = r.Close()
}

// BenchmarkAsyncEndToEnd drives the queue into a JSON sink: the sustained
// rate one writer goroutine reaches behind the queue.
func BenchmarkAsyncEndToEnd(b *testing.B) {
	s, _ := NewJSONSink(io.Discard)
	r, err := New(Config{Sink: s, Mode: Async, OnFull: Block, QueueSize: 4096})
	if err != nil {
		b.Fatal(err)
	}
	e := benchEvent()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		_ = r.Record(ctx, e)
	}
	if err := r.Close(); err != nil {
		b.Fatal(err)
	}
	reportRate(b)
}

func BenchmarkToolMiddleware(b *testing.B) {
	r, err := New(Config{Sink: SinkFunc(func(context.Context, Event) error { return nil }),
		Mode: Async, OnFull: FailClosed, QueueSize: 1 << 16,
		ArgValues: map[string][]string{"search_documents": {"limit"}}})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	res := mcp.NewToolResultText("ok")
	h := r.ToolMiddleware(func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) { return res, nil })
	req := mcp.CallToolRequest{Params: mcp.CallToolParams{Name: "search_documents",
		Arguments: map[string]any{"query": "q", "limit": 10.0, "filters": map[string]any{}}}}
	ctx := callCtx(nil)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMiddleware(b *testing.B) {
	r, err := New(Config{Sink: SinkFunc(func(context.Context, Event) error { return nil }),
		Mode: Async, OnFull: DropAndCount, QueueSize: 1 << 16})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	for _, tc := range []struct {
		name   string
		status int
	}{{"200 not recorded", 200}, {"401 recorded", 401}} {
		b.Run(tc.name, func(b *testing.B) {
			h := r.Middleware(Capture(respond(tc.status)))
			req := httptest.NewRequest(http.MethodPost, "/mcp", nil)
			w := httptest.NewRecorder()
			b.ReportAllocs()
			for b.Loop() {
				h.ServeHTTP(w, req)
			}
		})
	}
}
