package audit

import (
	"context"
	"errors"
)

// Sink receives audit events. Emit must be safe for concurrent use (a
// synchronous Recorder calls it from many goroutines), must not retain e's
// Args slice after returning, and should return an error wrapping ErrSink
// when the event was not written.
type Sink interface {
	Emit(ctx context.Context, e Event) error
}

// SinkFunc adapts a function to Sink.
type SinkFunc func(ctx context.Context, e Event) error

// Emit calls f.
func (f SinkFunc) Emit(ctx context.Context, e Event) error { return f(ctx, e) }

// Fanout is a Sink that emits every event to each of its sinks in order.
// A failing sink does not stop the others; Emit returns all their errors
// joined. Nil entries are skipped. The zero value emits nowhere. A Fanout
// is safe for concurrent use when its sinks are; do not modify it once in
// use.
type Fanout []Sink

// Emit emits e to every sink.
func (f Fanout) Emit(ctx context.Context, e Event) error {
	var errs []error
	for _, s := range f {
		if s == nil {
			continue
		}
		if err := s.Emit(ctx, e); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Flush flushes every sink that has a Flush method, returning their errors
// joined.
func (f Fanout) Flush() error {
	var errs []error
	for _, s := range f {
		if fl, ok := s.(flusher); ok {
			if err := fl.Flush(); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// flusher is implemented by sinks that buffer; Recorder.Close calls Flush
// after the last event.
type flusher interface {
	Flush() error
}
