package transport

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/authz"
)

// statusFilter decides the notifications mcp-go sends on an event stream
// (a GET stream or a POST answered as a stream) by the stream's own
// caller, since mcp-go has no hook on outgoing notifications:
//
//   - notifications/tasks/status closes a second gap of mcp-go v1.2.1's
//     tasks: it announces every task's status changes (the task ID, its
//     status and status message, which for a failed task is the tool's
//     error text) to every initialized 2025-11-25 session on the server,
//     whoever created the task (SendNotificationToAllClients). An
//     announcement of a task the caller does not own
//     (taskBinding.mayAnnounce) is dropped.
//   - notifications/resources/updated is queued for a session by the
//     principal that subscribed (authz.Subscriptions), but a session's GET
//     stream may have been opened since with another token of the same
//     principal, with fewer scopes. An update of a resource the policy
//     does not let the stream's caller read (resources/read) is dropped.
//
// Every other byte passes through unchanged. An event that names one of
// these methods but cannot be read is dropped too (fail closed).
//
// mcp-go writes each event with one Write, sometimes after an "id:" line
// of its own; a Write that does not end an event is held (up to
// maxHeldEvent) and decided together with the rest of its event.
type statusFilter struct {
	tasks   *taskBinding
	policy  *authz.Policy // decides resource updates; nil drops them
	ctx     context.Context
	started bool   // the header is written
	on      bool   // the response is an event stream
	held    []byte // the start of an event not yet ended
}

// maxHeldEvent bounds what statusFilter holds back of one event. mcp-go
// never writes an event in pieces larger than its "id:" line; past the
// bound, what is held is decided as it is.
const maxHeldEvent = 4 << 10

var (
	statusMethod  = []byte(`"` + mcp.MethodNotificationTasksStatus + `"`)
	updatedMethod = []byte(`"` + authz.MethodNotificationsUpdated + `"`)
	eventEnd      = []byte("\n\n")
)

// decided reports whether p mentions a notification statusFilter decides.
func decided(p []byte) bool {
	return bytes.Contains(p, statusMethod) || bytes.Contains(p, updatedMethod)
}

// start decides, once the handler writes its header, whether the
// response is an event stream to filter.
func (f *statusFilter) start(h http.Header) {
	if f.tasks == nil {
		return
	}
	f.on = isEventStream(h.Get("Content-Type"))
}

// isEventStream reports whether the Content-Type value ct names
// text/event-stream, in any case, with or without parameters. It is read
// on every response, so without mime.ParseMediaType's allocations.
func isEventStream(ct string) bool {
	const es = "text/event-stream"
	ct = strings.TrimLeft(ct, " \t")
	if len(ct) < len(es) || !strings.EqualFold(ct[:len(es)], es) {
		return false
	}
	rest := strings.TrimLeft(ct[len(es):], " \t")
	return rest == "" || rest[0] == ';'
}

// writeHeader writes w's header, deciding first whether to filter.
func (f *statusFilter) writeHeader(w http.ResponseWriter, status int) {
	if !f.started {
		f.started = true
		f.start(w.Header())
	}
	w.WriteHeader(status)
}

// writeBody is Write of a ResponseWriter that filters into w.
func (f *statusFilter) writeBody(w http.ResponseWriter, p []byte) (int, error) {
	if !f.started {
		f.writeHeader(w, http.StatusOK)
	}
	if f.on {
		return f.write(w, p)
	}
	return w.Write(p)
}

// write writes p to w without the events the caller may not see. It
// reports len(p) written unless w fails.
func (f *statusFilter) write(w http.ResponseWriter, p []byte) (int, error) {
	n := len(p)
	if len(f.held) > 0 {
		f.held = append(f.held, p...)
		p = f.held
	}
	if !bytes.HasSuffix(p, eventEnd) && len(p) <= maxHeldEvent {
		if len(f.held) == 0 {
			f.held = append(f.held, p...)
		}
		return n, nil
	}
	f.held = f.held[:0]
	if !decided(p) {
		if _, err := w.Write(p); err != nil {
			return 0, err
		}
		return n, nil
	}
	for len(p) > 0 {
		ev := p
		if i := bytes.Index(p, eventEnd); i >= 0 {
			ev, p = p[:i+len(eventEnd)], p[i+len(eventEnd):]
		} else {
			p = nil
		}
		if decided(ev) && !f.mayAnnounce(ev) {
			continue
		}
		if _, err := w.Write(ev); err != nil {
			return 0, err
		}
	}
	return n, nil
}

// mayAnnounce reports whether the caller may see the SSE event ev, which
// mentions a notification statusFilter decides: it is no such
// notification, or it names a task the caller owns, or a resource the
// caller may read.
func (f *statusFilter) mayAnnounce(ev []byte) bool {
	var data []byte
	for line := range bytes.Lines(ev) {
		line = bytes.TrimRight(line, "\r\n")
		if v, ok := bytes.CutPrefix(line, []byte("data:")); ok {
			if len(data) > 0 {
				data = append(data, '\n')
			}
			data = append(data, bytes.TrimPrefix(v, []byte(" "))...)
		}
	}
	var msg struct {
		Method string `json:"method"`
		Params struct {
			TaskID string `json:"taskId"`
			URI    string `json:"uri"`
		} `json:"params"`
	}
	if json.Unmarshal(data, &msg) != nil {
		return false
	}
	switch msg.Method {
	case mcp.MethodNotificationTasksStatus:
		return msg.Params.TaskID != "" && f.tasks.mayAnnounce(f.ctx, msg.Params.TaskID)
	case authz.MethodNotificationsUpdated:
		p, _ := auth.FromContext(f.ctx)
		return msg.Params.URI != "" && f.policy != nil &&
			f.policy.Check(f.ctx, p, authz.MethodResourcesRead, msg.Params.URI).Allowed
	}
	return true // a result or another notification that quotes a name
}

// filter puts statusFilter, deciding resource updates with policy, around
// the responses of h, and ends its streams when the caller's token expires
// (untilExpiry), for Guard.Wrap around an author's own mcp-go handler;
// direct does both itself.
func (b *taskBinding) filter(policy *authz.Policy, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s, cancel := untilExpiry(r); cancel != nil {
			defer cancel()
			r = s
		}
		if refuseSessionless(w, r) {
			return
		}
		h.ServeHTTP(&statusFilterWriter{ResponseWriter: w, f: statusFilter{tasks: b, policy: policy, ctx: r.Context()}}, r)
	})
}

// statusFilterWriter is statusFilter around a ResponseWriter, for the
// requests direct hands to mcp-go's ServeHTTP (GET streams among them) and
// for Guard.Wrap.
type statusFilterWriter struct {
	http.ResponseWriter
	f statusFilter
}

func (w *statusFilterWriter) WriteHeader(status int) { w.f.writeHeader(w.ResponseWriter, status) }

func (w *statusFilterWriter) Write(p []byte) (int, error) { return w.f.writeBody(w.ResponseWriter, p) }

// Flush keeps streams streaming; what statusFilter holds of an unended
// event waits for the rest of it.
func (w *statusFilterWriter) Flush() {
	if !w.f.started {
		w.WriteHeader(http.StatusOK)
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap returns the underlying writer, for http.ResponseController.
func (w *statusFilterWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
