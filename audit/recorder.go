package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Mode says when a Recorder hands events to its sink.
type Mode uint8

const (
	// Sync writes each event to the sink before Record returns: nothing is
	// queued, so nothing can be lost in a crash, and a slow sink slows
	// every caller. The zero value.
	Sync Mode = iota
	// Async queues events (bounded by Config.QueueSize) for one background
	// goroutine that writes them to the sink, what queued up together at
	// once (a JSONSink writes them in one Write) and at most a few
	// milliseconds after they were recorded; Config.OnFull says what
	// happens when the queue is full.
	Async
)

// String returns "sync" or "async".
func (m Mode) String() string {
	if m == Async {
		return "async"
	}
	return "sync"
}

// FullPolicy says what an asynchronous Recorder does with an event when its
// queue is full.
type FullPolicy uint8

const (
	// Block makes Record wait until the queue has room (or the Recorder is
	// shut down): no event is lost, and callers slow to the sink's pace.
	// The zero value.
	Block FullPolicy = iota
	// DropAndCount drops the event and counts it (Stats.Dropped). When the
	// queue next drains, the count since the previous report is itself
	// recorded as a KindQueueOverflow event, so losses are never silent.
	DropAndCount
	// FailClosed refuses tool calls while their outcome could not be
	// queued: ToolMiddleware claims a queue slot before the call and, when
	// none is free, answers ErrUnavailable without running the tool.
	// Other events that do not fit are dropped and counted as under
	// DropAndCount. With Mode Sync, tool calls are refused while the sink
	// is failing (after an Emit error, until an Emit succeeds).
	FailClosed
)

// String returns the policy's name.
func (p FullPolicy) String() string {
	switch p {
	case DropAndCount:
		return "drop_and_count"
	case FailClosed:
		return "fail_closed"
	}
	return "block"
}

// Queue size bounds.
const (
	// DefaultQueueSize is the queue size of an Async Recorder when
	// Config.QueueSize is zero.
	DefaultQueueSize = 4096
	// MaxQueueSize is the largest Config.QueueSize accepted.
	MaxQueueSize = 1 << 20
	// DefaultCloseTimeout bounds Close when Config.CloseTimeout is zero.
	DefaultCloseTimeout = 5 * time.Second
)

// Config configures a Recorder. The zero value of every field but Sink is
// a valid, secure choice.
type Config struct {
	// Sink receives the events. Required. Use Fanout for several.
	Sink Sink
	// Mode is Sync (default) or Async.
	Mode Mode
	// QueueSize bounds the Async queue. Zero means DefaultQueueSize; it
	// must not exceed MaxQueueSize. Ignored in Sync mode.
	QueueSize int
	// OnFull is the Async full-queue policy (default Block). FailClosed
	// also applies to Sync mode (see FailClosed).
	OnFull FullPolicy

	// ArgValues allow-lists, per tool name, the argument names whose values
	// ToolMiddleware records. Argument names are always recorded; values
	// never, except for these. Names that suggest a credential (token,
	// secret, password, authorization, api key, cookie, credential,
	// private key) are refused by New. Values are recorded as text: strings
	// as they are, numbers and booleans in JSON form, "null", and
	// "[object]" or "[array]" for compound values; then RedactArg, then a
	// last check that replaces anything shaped like a token with
	// "[REDACTED]".
	ArgValues map[string][]string
	// RedactArg, if set, rewrites each allow-listed value before it is
	// recorded (to mask an e-mail address, say). It must be safe for
	// concurrent use.
	RedactArg func(tool, arg, value string) string
	// ClassifyError, if set, classifies a tool, resource, prompt or
	// exchange error: a short class for Event.ErrorClass and whether the
	// error means the action was denied (the event is then of the …Denied
	// kind with DecisionDeny). It is for errors of your own that cannot
	// carry a method; an error with a method AuditClass() (class string,
	// denied bool) anywhere in its chain (obo's errors) names its class
	// itself. An empty class defers to that method, then to the default,
	// which knows context cancellation, the auth sentinels
	// (auth.ErrInsufficientScope and the token errors count as denials),
	// errors that errors.As converts to an *auth.Error with status 401 or
	// 403 (authz's denials: "access_denied" or their RFC 6750 code),
	// ErrUnavailable, and calls everything else "error". It must be safe
	// for concurrent use and must not return error text.
	ClassifyError func(err error) (class string, denied bool)
	// RecordAllRequests makes Middleware record every HTTP request. By
	// default it records responses with status 400 or above, and requests
	// an inner handler annotated (see Annotate).
	RecordAllRequests bool

	// Observer, if set, sees every event synchronously as Record is
	// called, before it is queued or written, with the recording
	// request's context: package telemetry counts decisions and annotates
	// the request's span through it. It must be fast, must not block and
	// must be safe for concurrent use. See also Recorder.SetObserver.
	Observer Observer

	// CloseTimeout bounds Close: past it, Close gives up on what is still
	// queued or in flight and returns an *UnwrittenError counting it, so a
	// stuck sink cannot keep a stopping process alive. Zero means
	// DefaultCloseTimeout (5 s); it must not be negative. Shutdown is
	// bounded by its context instead.
	CloseTimeout time.Duration

	// Now returns the current time. Default time.Now.
	Now func() time.Time
	// Logger receives a warning when the sink starts failing and a note
	// when it recovers (never one per failed event). Default: no logging;
	// Stats still counts every failure.
	Logger *slog.Logger
}

// Stats are a Recorder's counters since New.
type Stats struct {
	// Recorded counts events the sink accepted.
	Recorded uint64
	// Dropped counts events lost: queue full under DropAndCount or
	// FailClosed, recorded after Close, or still blocked when Shutdown's
	// context ended.
	Dropped uint64
	// Refused counts tool calls refused under FailClosed.
	Refused uint64
	// SinkErrors counts events the sink failed to write.
	SinkErrors uint64
	// Waits counts Record calls that had to wait for room under Block.
	Waits uint64
	// Queued is the number of events waiting in the queue now.
	Queued int
}

// Recorder records audit events to a sink, synchronously or through a
// bounded queue, and provides the HTTP middleware, tool middleware and
// token-exchange hook that produce them.
//
// Create one with New; the zero value is not usable. A Recorder is safe
// for concurrent use. Close (or Shutdown) it when the server stops: it
// flushes every queued event.
type Recorder struct {
	sink      Sink
	mode      Mode
	onFull    FullPolicy
	queueSize int64
	now       func() time.Time
	logger    *slog.Logger
	argValues map[string]map[string]struct{}
	redactArg func(tool, arg, value string) string
	classify  func(error) (string, bool)
	recordAll bool
	closeWait time.Duration
	observer  atomic.Pointer[observerBox]

	q       chan Event
	slots   atomic.Int64  // FailClosed: queue slots claimed (queued or reserved)
	linger  time.Duration // the writer's pause between batches
	hurry   chan struct{} // one token: the queue is half full, end the pause
	hurryAt int           // the queue length that sends hurry

	// state holds closingBit once Close has begun, plus the number of
	// Record calls (and reserved tool calls) in flight.
	state       atomic.Int64
	sendersDone chan struct{}
	sendersOnce sync.Once
	closeOnce   sync.Once
	qCloseOnce  sync.Once
	abort       chan struct{}
	abortOnce   sync.Once
	workerDone  chan struct{}

	recorded, dropped, refused, sinkErrors, waits atomic.Uint64
	unreported                                    atomic.Uint64 // drops not yet reported as KindQueueOverflow
	failing                                       atomic.Bool
	inSink                                        atomic.Int64 // events the Async writer has handed to the sink and not yet seen written
}

const closingBit = int64(1) << 62

// credentialWords are substrings of argument names whose values New
// refuses to allow-list.
var credentialWords = [...]string{
	"token", "secret", "password", "passwd", "passphrase", "authorization",
	"apikey", "api_key", "api-key", "cookie", "credential", "private_key", "privatekey",
}

// New returns a Recorder for cfg, starting its background writer in Async
// mode. It returns an error wrapping ErrConfig naming the field for a nil
// Sink, an unknown Mode or OnFull, a QueueSize out of range, or an
// allow-listed argument name that suggests a credential.
func New(cfg Config) (*Recorder, error) {
	if cfg.Sink == nil {
		return nil, fmt.Errorf("%w: Config.Sink is nil", ErrConfig)
	}
	if cfg.Mode > Async {
		return nil, fmt.Errorf("%w: Config.Mode %d is unknown", ErrConfig, cfg.Mode)
	}
	if cfg.OnFull > FailClosed {
		return nil, fmt.Errorf("%w: Config.OnFull %d is unknown", ErrConfig, cfg.OnFull)
	}
	if cfg.CloseTimeout < 0 {
		return nil, fmt.Errorf("%w: Config.CloseTimeout %v is negative", ErrConfig, cfg.CloseTimeout)
	}
	if cfg.QueueSize < 0 || cfg.QueueSize > MaxQueueSize {
		return nil, fmt.Errorf("%w: Config.QueueSize %d is outside [0, %d]", ErrConfig, cfg.QueueSize, MaxQueueSize)
	}
	r := &Recorder{
		sink:        cfg.Sink,
		mode:        cfg.Mode,
		onFull:      cfg.OnFull,
		now:         cfg.Now,
		logger:      cfg.Logger,
		redactArg:   cfg.RedactArg,
		classify:    cfg.ClassifyError,
		recordAll:   cfg.RecordAllRequests,
		closeWait:   cfg.CloseTimeout,
		sendersDone: make(chan struct{}),
		abort:       make(chan struct{}),
		workerDone:  make(chan struct{}),
	}
	if cfg.Observer != nil {
		r.observer.Store(&observerBox{cfg.Observer})
	}
	if r.now == nil {
		r.now = time.Now
	}
	if r.closeWait == 0 {
		r.closeWait = DefaultCloseTimeout
	}
	if len(cfg.ArgValues) > 0 {
		r.argValues = make(map[string]map[string]struct{}, len(cfg.ArgValues))
		for tool, names := range cfg.ArgValues {
			set := make(map[string]struct{}, len(names))
			for _, name := range names {
				lower := strings.ToLower(name)
				for _, w := range credentialWords {
					if strings.Contains(lower, w) {
						return nil, fmt.Errorf("%w: Config.ArgValues[%q] allow-lists %q, which looks like a credential",
							ErrConfig, tool, name)
					}
				}
				set[name] = struct{}{}
			}
			r.argValues[tool] = set
		}
	}
	if r.mode == Async {
		size := cfg.QueueSize
		if size == 0 {
			size = DefaultQueueSize
		}
		r.queueSize = int64(size)
		r.q = make(chan Event, size)
		r.linger = batchLinger
		r.hurry = make(chan struct{}, 1)
		r.hurryAt = max(1, size/2)
		go r.run()
	} else {
		close(r.workerDone)
	}
	return r, nil
}

// Stats returns the Recorder's counters.
func (r *Recorder) Stats() Stats {
	return Stats{
		Recorded:   r.recorded.Load(),
		Dropped:    r.dropped.Load(),
		Refused:    r.refused.Load(),
		SinkErrors: r.sinkErrors.Load(),
		Waits:      r.waits.Load(),
		Queued:     len(r.q),
	}
}

// Observer sees every recorded event as it is recorded (Config.Observer).
// Implementations must be fast, non-blocking and safe for concurrent use;
// they receive the same bounded, credential-free Event the sink receives,
// and the context of the request that produced it.
type Observer interface {
	Observe(ctx context.Context, e Event)
}

type observerBox struct{ o Observer }

// SetObserver installs o as the Recorder's observer when none was
// configured, for a component (such as transport with telemetry) that is
// handed a Recorder built elsewhere. Call it before serving. It returns
// ErrConfig when an observer is already set: observers do not stack
// silently; combine them in one Observer instead.
func (r *Recorder) SetObserver(o Observer) error {
	if o == nil {
		return fmt.Errorf("%w: SetObserver: nil observer", ErrConfig)
	}
	if !r.observer.CompareAndSwap(nil, &observerBox{o}) {
		return fmt.Errorf("%w: SetObserver: the recorder already has an observer", ErrConfig)
	}
	return nil
}

// Record records e, filling e.Time when it is zero. In Sync mode it
// returns the sink's error; in Async mode it returns once e is queued,
// ErrQueueFull when the policy dropped it, or ErrClosed after Close.
// Every lost event is counted in Stats.Dropped. Record does not allocate
// in Async mode.
//
// ctx is passed to the sink in Sync mode; an Async sink receives
// context.Background(). Record does not give up when ctx is done: an audit
// record of a cancelled request is still recorded.
func (r *Recorder) Record(ctx context.Context, e Event) error {
	if e.Time.IsZero() {
		e.Time = r.now()
	}
	if ob := r.observer.Load(); ob != nil {
		ob.o.Observe(ctx, e)
	}
	if !r.enter() {
		r.drop()
		return ErrClosed
	}
	defer r.exit()
	if r.mode == Sync {
		return r.emit(ctx, e)
	}
	return r.enqueue(e)
}

// enter registers a Record in flight; it reports false once Close began.
func (r *Recorder) enter() bool {
	if r.state.Add(1)&closingBit != 0 {
		r.exit()
		return false
	}
	return true
}

func (r *Recorder) exit() {
	if r.state.Add(-1) == closingBit {
		r.sendersOnce.Do(func() { close(r.sendersDone) })
	}
}

func (r *Recorder) drop() {
	r.dropped.Add(1)
	r.unreported.Add(1)
}

// enqueue queues e under the full-queue policy (Async mode only).
func (r *Recorder) enqueue(e Event) error {
	switch r.onFull {
	case DropAndCount:
		select {
		case r.q <- e:
			r.sent()
			return nil
		default:
			r.drop()
			return ErrQueueFull
		}
	case FailClosed:
		if !r.acquire() {
			r.drop()
			return ErrQueueFull
		}
		r.q <- e // cannot block: a slot is held
		r.sent()
		return nil
	}
	select {
	case r.q <- e:
		r.sent()
		return nil
	default:
	}
	r.waits.Add(1)
	select {
	case r.q <- e:
		r.sent()
		return nil
	case <-r.abort:
		r.drop()
		return ErrClosed
	}
}

// sent ends the writer's pause between batches once the queue is half
// full, so that a pause never makes the queue overflow, block senders or
// refuse tool calls: with a small queue the writer hardly pauses at all.
func (r *Recorder) sent() {
	if len(r.q) >= r.hurryAt {
		select {
		case r.hurry <- struct{}{}:
		default:
		}
	}
}

// acquire claims a queue slot under FailClosed. At most queueSize claims
// succeed at once, so a send by a claimant never blocks.
func (r *Recorder) acquire() bool {
	if r.slots.Add(1) > r.queueSize {
		r.slots.Add(-1)
		return false
	}
	return true
}

// emit writes e to the sink and keeps the counters.
func (r *Recorder) emit(ctx context.Context, e Event) error {
	err := r.sink.Emit(ctx, e)
	if err != nil {
		r.sinkFailed(1)
		return err
	}
	r.sinkWrote(1)
	return nil
}

// sinkFailed counts n events the sink failed to write and logs the first
// failure of a run of them.
func (r *Recorder) sinkFailed(n int) {
	r.sinkErrors.Add(uint64(n))
	if !r.failing.Load() && !r.failing.Swap(true) && r.logger != nil {
		r.logger.LogAttrs(context.Background(), slog.LevelWarn, "audit sink failing",
			slog.String("error_class", "sink"), slog.Uint64("sink_errors", r.sinkErrors.Load()))
	}
}

// sinkWrote counts n events the sink wrote and logs a recovery.
func (r *Recorder) sinkWrote(n int) {
	if n == 0 {
		return
	}
	r.recorded.Add(uint64(n))
	if r.failing.Load() && r.failing.Swap(false) && r.logger != nil {
		r.logger.LogAttrs(context.Background(), slog.LevelInfo, "audit sink recovered",
			slog.Uint64("sink_errors", r.sinkErrors.Load()))
	}
}

// batchSink is implemented by sinks that write several events at once
// (JSONSink: one Write for many lines). emitBatch writes events in order
// and returns how many of the first of them were written.
type batchSink interface {
	emitBatch(ctx context.Context, events []Event) (written int, err error)
}

// maxBatch bounds the events the Async writer takes from the queue at once.
const maxBatch = 256

// batchLinger is the Async writer's pause after writing what it found
// queued, so under load it wakes (and writes) about once per batchLinger
// rather than once per event: each event handed to a waiting writer would
// otherwise wake it, and each wake costs a scheduler round trip. An event
// waits at most about batchLinger longer to be written; the pause ends
// early once the queue is half full (sent) and on Close, which still
// writes everything queued. It is a variable for tests, read by New.
var batchLinger = 2 * time.Millisecond

// run is the Async writer: it empties the queue into the sink, a batch at
// a time, and reports drops each time the queue drains.
func (r *Recorder) run() {
	defer close(r.workerDone)
	ctx := context.Background()
	batch := make([]Event, 0, maxBatch)
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	for {
		var e Event
		var ok bool
		select {
		case e, ok = <-r.q:
		case <-r.abort:
			return
		}
		closed := !ok
		if ok {
			batch = append(batch[:0], e)
		drain:
			for len(batch) < maxBatch {
				select {
				case e, ok := <-r.q:
					if !ok {
						closed = true
						break drain
					}
					batch = append(batch, e)
				default:
					break drain
				}
			}
			r.write(ctx, batch)
			clear(batch) // drop the events' Args for the collector
		}
		if closed {
			r.reportOverflow(ctx)
			return
		}
		if len(r.q) == 0 {
			r.reportOverflow(ctx)
		}
		linger.Reset(r.linger)
		select {
		case <-linger.C:
		case <-r.hurry:
			linger.Stop()
		case <-r.abort:
			return
		}
	}
}

// write hands batch to the sink: in one call when it can take several
// events, one by one otherwise.
func (r *Recorder) write(ctx context.Context, batch []Event) {
	if r.onFull == FailClosed {
		r.slots.Add(-int64(len(batch)))
	}
	r.inSink.Store(int64(len(batch)))
	defer r.inSink.Store(0)
	if bs, ok := r.sink.(batchSink); ok && len(batch) > 1 {
		n, err := bs.emitBatch(ctx, batch)
		r.sinkWrote(n)
		if err != nil {
			r.sinkFailed(len(batch) - n)
		}
		return
	}
	for i := range batch {
		_ = r.emit(ctx, batch[i])
		r.inSink.Add(-1)
	}
}

// reportOverflow records the drops not yet reported as one
// KindQueueOverflow event, written directly to the sink.
func (r *Recorder) reportOverflow(ctx context.Context) {
	n := r.unreported.Swap(0)
	if n == 0 {
		return
	}
	e := Event{Time: r.now(), Kind: KindQueueOverflow, Reason: "queue_full", Dropped: n}
	if err := r.emit(ctx, e); err != nil {
		// Not written: keep the count for the next report.
		r.unreported.Add(n)
	}
}

// Close stops accepting events, waits for Record calls and reserved tool
// calls in flight, writes every queued event (and a final overflow report
// when events were dropped), then flushes the sink if it has a Flush
// method — for at most Config.CloseTimeout (DefaultCloseTimeout). Past it
// Close gives up as Shutdown does when its context ends, returning an
// *UnwrittenError that counts the events left unwritten.
// Close is safe to call more than once.
func (r *Recorder) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), r.closeWait)
	defer cancel()
	return r.Shutdown(ctx)
}

// Shutdown is Close bounded by ctx. When ctx ends first, Record calls still
// waiting under Block give up (their events are counted as dropped), the
// background writer stops after its current event, and Shutdown returns
// an *UnwrittenError wrapping ctx.Err() that says how many events stay
// unwritten. A sink Flush still running when ctx ends is abandoned.
func (r *Recorder) Shutdown(ctx context.Context) error {
	r.closeOnce.Do(func() {
		if r.state.Or(closingBit)&^closingBit == 0 {
			r.sendersOnce.Do(func() { close(r.sendersDone) })
		}
	})
	select {
	case <-r.sendersDone:
	case <-ctx.Done():
		return r.giveUp(ctx)
	}
	if r.mode == Async {
		r.qCloseOnce.Do(func() {
			close(r.q)
			select { // end the writer's pause: what is queued is written now
			case r.hurry <- struct{}{}:
			default:
			}
		})
		select {
		case <-r.workerDone:
		case <-ctx.Done():
			return r.giveUp(ctx)
		}
	}
	if f, ok := r.sink.(flusher); ok {
		flushed := make(chan error, 1)
		go func() { flushed <- f.Flush() }()
		select {
		case err := <-flushed:
			if err != nil {
				return errors.Join(ErrSink, err)
			}
		case <-ctx.Done():
			return &UnwrittenError{Err: fmt.Errorf("flushing the sink: %w", ctx.Err())}
		}
	}
	return nil
}

// UnwrittenError is what Close and Shutdown return when they gave up
// before everything was written: Unwritten counts the events still queued
// or being recorded at that moment (the sink's own buffer, abandoned in a
// Flush, is not counted). Err wraps the context's error.
type UnwrittenError struct {
	Unwritten int
	Err       error
}

func (e *UnwrittenError) Error() string {
	return fmt.Sprintf("audit: shutdown gave up: %d events unwritten: %v", e.Unwritten, e.Err)
}

// Unwrap returns the cause (context.DeadlineExceeded or context.Canceled).
func (e *UnwrittenError) Unwrap() error { return e.Err }

func (r *Recorder) giveUp(ctx context.Context) error {
	r.abortOnce.Do(func() { close(r.abort) })
	// The events the writer is stuck on count, as do those still queued
	// and the Record calls in flight.
	n := len(r.q) + int(r.state.Load()&^closingBit) + int(r.inSink.Load())
	return &UnwrittenError{Unwritten: n, Err: ctx.Err()}
}

// ticket is what a tool call holds between begin and finish.
type ticket struct {
	entered bool // counted in state, so Close waits for finish
	slot    bool // holds a FailClosed queue slot
}

// begin prepares to record a call's outcome. ok is false when the call
// must be refused (FailClosed and no room, or closed).
func (r *Recorder) begin() (t ticket, ok bool) {
	if !r.enter() {
		return ticket{}, r.onFull != FailClosed
	}
	if r.onFull != FailClosed {
		return ticket{entered: true}, true
	}
	if r.mode == Sync {
		if r.failing.Load() {
			r.exit()
			return ticket{}, false
		}
		return ticket{entered: true}, true
	}
	if !r.acquire() {
		r.exit()
		return ticket{}, false
	}
	return ticket{entered: true, slot: true}, true
}

// finish records the outcome of a call started with begin.
func (r *Recorder) finish(ctx context.Context, t ticket, e Event) error {
	if !t.entered {
		return r.Record(ctx, e)
	}
	defer r.exit()
	if e.Time.IsZero() {
		e.Time = r.now()
	}
	if ob := r.observer.Load(); ob != nil {
		ob.o.Observe(ctx, e)
	}
	switch {
	case r.mode == Sync:
		return r.emit(ctx, e)
	case t.slot:
		r.q <- e // cannot block: the slot is held
		r.sent()
		return nil
	}
	return r.enqueue(e)
}
