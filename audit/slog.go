package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
)

// SlogConfig configures a SlogSink.
type SlogConfig struct {
	// Handler receives the records. Required. Any slog.Handler works:
	// slog.NewJSONHandler, slog.NewTextHandler or your own; values are
	// escaped before they reach it (see Event.LogValue).
	Handler slog.Handler
	// Message is the record message. Default "audit".
	Message string
	// Level is the level of allowed and neutral events. Default
	// slog.LevelInfo.
	Level slog.Level
	// DenyLevel is the level of refusals, failures (an error class or an
	// HTTP status of 400 or above) and overflow reports.
	// Default slog.LevelWarn.
	DenyLevel slog.Level
}

// SlogSink writes each event as one log/slog record whose attributes are
// the event's fields at top level (time is the record's time).
//
// A handler that is not enabled at an event's level does not silently
// swallow it: Emit returns an error wrapping ErrSink, which the Recorder
// counts. A SlogSink is safe for concurrent use when its handler is (all
// standard handlers are).
type SlogSink struct {
	h                slog.Handler
	msg              string
	level, denyLevel slog.Level
}

// NewSlogSink returns a sink writing to cfg.Handler. Zero Level and
// DenyLevel take their defaults (Info and Warn), so a zero level cannot be
// chosen for DenyLevel.
func NewSlogSink(cfg SlogConfig) (*SlogSink, error) {
	if cfg.Handler == nil {
		return nil, fmt.Errorf("%w: SlogConfig.Handler is nil", ErrConfig)
	}
	s := &SlogSink{h: cfg.Handler, msg: cfg.Message, level: cfg.Level, denyLevel: cfg.DenyLevel}
	if s.msg == "" {
		s.msg = "audit"
	}
	if s.denyLevel == 0 {
		s.denyLevel = slog.LevelWarn
	}
	return s, nil
}

var errHandlerDisabled = errors.New("slog handler not enabled at the audit level")

// Emit hands e to the handler as one record.
func (s *SlogSink) Emit(ctx context.Context, e Event) error {
	lvl := s.level
	if e.Decision == DecisionDeny || e.ErrorClass != "" || e.Status >= 400 || e.Kind == KindQueueOverflow || e.Kind.refusal() {
		lvl = s.denyLevel
	}
	if !s.h.Enabled(ctx, lvl) {
		return errors.Join(ErrSink, errHandlerDisabled)
	}
	r := slog.NewRecord(e.Time, lvl, s.msg, 0)
	r.AddAttrs(e.attrs(false)...)
	if err := s.h.Handle(ctx, r); err != nil {
		return errors.Join(ErrSink, err)
	}
	return nil
}
