package audit

import "errors"

// Sentinel errors, matched with errors.Is.
var (
	// ErrConfig: a configuration mistake detected by a constructor.
	ErrConfig = errors.New("audit: invalid configuration")
	// ErrClosed: the Recorder is closed; the event was not recorded (it is
	// counted in Stats.Dropped).
	ErrClosed = errors.New("audit: recorder closed")
	// ErrQueueFull: an asynchronous Recorder's queue was full and the
	// event was dropped and counted (policies DropAndCount and
	// FailClosed).
	ErrQueueFull = errors.New("audit: queue full, event dropped")
	// ErrSink: a sink failed to write an event. Sinks here wrap the
	// writer's or handler's error with it.
	ErrSink = errors.New("audit: sink failed")
	// ErrUnavailable is returned to the client, in place of running the
	// tool, when the Recorder's policy is FailClosed and the call's
	// outcome could not be recorded. Its text is fixed and client-safe.
	ErrUnavailable = errors.New("audit log unavailable: the call was refused; retry later")
)
