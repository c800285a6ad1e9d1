package transport

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcpguard/mcpguard/audit"
	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/internal/listpage"
	"github.com/mcpguard/mcpguard/tenancy"
)

// DefaultTaskOwnerTTL is how long a task's owner is remembered when
// Config.Tasks.TTL is zero. A task whose owner was forgotten is served to
// no one (it answers as an unknown task).
const DefaultTaskOwnerTTL = 24 * time.Hour

// DefaultMaxTaskOwners caps MemoryTaskOwners when its Max is zero.
const DefaultMaxTaskOwners = 100_000

// TaskOwners remembers which principal created each task. The owner is an
// opaque digest of (issuer, subject, kind, tenant, actor); it is not a
// credential and holds no claim in clear. One replica can use
// MemoryTaskOwners; replicas that share tasks need a shared store.
type TaskOwners interface {
	// Bind records owner as the owner of taskID until the given time.
	Bind(ctx context.Context, taskID, owner string, until time.Time) error
	// Owner returns taskID's owner; ok is false when it is unknown or
	// expired.
	Owner(ctx context.Context, taskID string, now time.Time) (owner string, ok bool, err error)
}

// TaskConfig configures how tasks are bound to their owners.
type TaskConfig struct {
	// Owners stores task owners. Nil: a MemoryTaskOwners.
	Owners TaskOwners
	// TTL is how long an owner is remembered; zero means
	// DefaultTaskOwnerTTL. A task whose own TTL is longer keeps its owner
	// for that TTL.
	TTL time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// MemoryTaskOwners is the in-memory TaskOwners of one replica. It holds at
// most Max entries (DefaultMaxTaskOwners when zero); when full, expired
// entries go first, then the oldest, whose task then answers as unknown to
// everyone (fail closed). The zero value is ready to use and safe for
// concurrent use.
type MemoryTaskOwners struct {
	// Max caps the number of entries; zero means DefaultMaxTaskOwners.
	Max int

	mu    sync.Mutex
	m     map[string]taskOwner
	order []string
}

type taskOwner struct {
	owner string
	until time.Time
}

// Bind implements TaskOwners.
func (m *MemoryTaskOwners) Bind(_ context.Context, taskID, owner string, until time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.m == nil {
		m.m = make(map[string]taskOwner)
	}
	max := m.Max
	if max <= 0 {
		max = DefaultMaxTaskOwners
	}
	if _, ok := m.m[taskID]; !ok {
		for len(m.m) >= max && len(m.order) > 0 {
			delete(m.m, m.order[0])
			m.order = m.order[1:]
		}
		m.order = append(m.order, taskID)
	}
	m.m[taskID] = taskOwner{owner: owner, until: until}
	return nil
}

// Owner implements TaskOwners.
func (m *MemoryTaskOwners) Owner(_ context.Context, taskID string, now time.Time) (string, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := 0; i < 8 && len(m.order) > 0; i++ {
		k := m.order[0]
		if e, ok := m.m[k]; ok && now.Before(e.until) {
			break
		}
		delete(m.m, k)
		m.order = m.order[1:]
	}
	e, ok := m.m[taskID]
	if !ok || !now.Before(e.until) {
		return "", false, nil
	}
	return e.owner, true, nil
}

// Len reports the number of entries held, expired or not.
func (m *MemoryTaskOwners) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.m)
}

// taskBinding closes a gap mcp-go v1.2.1 leaves open: it isolates tasks by
// session ID only, and skips even that when either side has no session
// (server.go getTask, getTaskEntry, listTasks), so every 2026-07-28
// stateless request, and every request of another session that knows an
// ID, reaches every task. taskBinding binds each task to the principal that
// created it (through mcp-go's request hooks: the created task is seen in
// the tools/call result) and
//
//   - for tasks/get, tasks/result and tasks/cancel by anyone else, rewrites
//     the task ID to one that cannot exist before mcp-go looks it up, so the
//     answer is mcp-go's own "task not found" error, byte for byte the
//     answer to an unknown task, and, with Config.Audit, records an
//     access_denied event with reason ReasonForeignTask;
//   - for tasks/list, drops every task not bound to the caller from the
//     result. With server.WithPaginationLimit the next cursor, which mcp-go
//     makes of the page's last task ID, is moved to the last task kept; a
//     page whose tasks are all someone else's ends the listing (fail closed:
//     the caller's later tasks are still served by ID, not listed).
//
// The hooks are used rather than server.WithTaskHooks because mcp-go keeps
// a single TaskHooks value that a later option would replace (and that
// cannot be read back to chain); request hooks are added to the server's
// existing Hooks. A task whose owner is unknown (forgotten, or the store
// failed) is served to no one.
type taskBinding struct {
	owners TaskOwners
	ttl    time.Duration
	now    func() time.Time
	key    []byte
	audit  *audit.Recorder // records each use of a foreign task; nil: none
}

// noTask is a task ID mcp-go never issues (its IDs are UUIDs).
const noTask = "mcpguard:foreign-task"

// newTaskBinding derives its digest key from sessionKey, which replicas
// share, so that owners written by one replica match on another.
func newTaskBinding(cfg TaskConfig, sessionKey []byte) *taskBinding {
	m := hmac.New(sha256.New, sessionKey)
	writeField(m, "task-owner")
	b := &taskBinding{owners: cfg.Owners, ttl: cfg.TTL, now: cfg.Now, key: m.Sum(nil)}
	if b.owners == nil {
		b.owners = &MemoryTaskOwners{}
	}
	if b.ttl <= 0 {
		b.ttl = DefaultTaskOwnerTTL
	}
	if b.now == nil {
		b.now = time.Now
	}
	return b
}

// keepFor is how long task's owner is kept: the configured TTL, or the
// task's own TTL when that is longer (bounded to ten years).
func (b *taskBinding) keepFor(task mcp.Task) time.Duration {
	d := b.ttl
	if task.TTL != nil && *task.TTL > 0 {
		ms := min(*task.TTL, int64(10*365*24*time.Hour/time.Millisecond))
		d = max(d, time.Duration(ms)*time.Millisecond)
	}
	return d
}

// ownerOf is the caller's owner digest, or "" when there is no principal.
func (b *taskBinding) ownerOf(ctx context.Context) string {
	p, ok := auth.FromContext(ctx)
	if !ok || p == nil {
		return ""
	}
	tenant, _ := tenancy.FromContext(ctx)
	m := hmac.New(sha256.New, b.key)
	writePrincipal(m, p)
	writePrincipal(m, p.Actor)
	writeField(m, tenant)
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:sessionTagLen])
}

// mayUse reports whether the caller owns taskID.
func (b *taskBinding) mayUse(ctx context.Context, taskID string) bool {
	mine, _ := b.owns(ctx, taskID)
	return mine
}

// owns reports whether the caller owns taskID, and whether the task's
// owner is known at all.
func (b *taskBinding) owns(ctx context.Context, taskID string) (mine, known bool) {
	me := b.ownerOf(ctx)
	if me == "" {
		return false, true
	}
	owner, ok, err := b.owners.Owner(ctx, taskID, b.now())
	if err != nil || !ok {
		return false, false
	}
	return hmac.Equal([]byte(owner), []byte(me)), true
}

// ReasonForeignTask is the audit reason of a tasks/get, tasks/result or
// tasks/cancel naming a task another principal (or tenant) owns: an
// access_denied event with the method, while the client gets the answer
// to an unknown task.
const ReasonForeignTask = "foreign_task"

// guard rewrites *taskID to one that cannot exist unless the caller owns
// the task, and records the use of a task whose owner is someone else.
// An ID whose owner is unknown is not recorded: it may never have existed.
func (b *taskBinding) guard(ctx context.Context, method string, taskID *string) {
	mine, known := b.owns(ctx, *taskID)
	if mine {
		return
	}
	if known && b.audit != nil {
		b.audit.Denial(ctx, method, "", ReasonForeignTask)
	}
	*taskID = noTask
}

// ownerWait bounds how long mayAnnounce waits for a new task's owner.
const ownerWait = 64 * time.Millisecond

// mayAnnounce is mayUse for a status announcement, which mcp-go may send
// before the owner is bound: it binds the owner once tools/call returns
// the created task, and a fast task can finish first. While the owner is
// unknown it looks again, at growing intervals, for up to ownerWait in
// all (a task whose owner stays unknown is announced to no one).
func (b *taskBinding) mayAnnounce(ctx context.Context, taskID string) bool {
	for wait, waited := time.Millisecond, time.Duration(0); ; wait *= 2 {
		mine, known := b.owns(ctx, taskID)
		if known || waited >= ownerWait {
			return mine
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return false
		}
		waited += wait
	}
}

// option adds the hooks to the server's Hooks (created if there are none).
func (b *taskBinding) option() server.ServerOption {
	return func(s *server.MCPServer) {
		h := s.GetHooks()
		if h == nil {
			h = &server.Hooks{}
			server.WithHooks(h)(s)
		}
		h.AddAfterCallTool(func(ctx context.Context, _ any, _ *mcp.CallToolRequest, result any) {
			var task mcp.Task
			switch r := result.(type) {
			case *mcp.CreateTaskResult:
				task = r.Task
			case mcp.CreateTaskResult:
				task = r.Task
			default:
				return
			}
			if me := b.ownerOf(ctx); me != "" && task.TaskId != "" {
				// An error leaves the task unbound: served to no one.
				_ = b.owners.Bind(ctx, task.TaskId, me, b.now().Add(b.keepFor(task)))
			}
		})
		h.AddBeforeGetTask(func(ctx context.Context, _ any, r *mcp.GetTaskRequest) {
			b.guard(ctx, "tasks/get", &r.Params.TaskId)
		})
		h.AddBeforeTaskResult(func(ctx context.Context, _ any, r *mcp.TaskResultRequest) {
			b.guard(ctx, "tasks/result", &r.Params.TaskId)
		})
		h.AddBeforeCancelTask(func(ctx context.Context, _ any, r *mcp.CancelTaskRequest) {
			b.guard(ctx, "tasks/cancel", &r.Params.TaskId)
		})
		h.AddAfterListTasks(func(ctx context.Context, _ any, _ *mcp.ListTasksRequest, r *mcp.ListTasksResult) {
			if r == nil {
				return
			}
			// With server.WithPaginationLimit, mcp-go's next cursor is the
			// base64 of the page's last task ID, which may be another
			// owner's: Narrow points it at the last task kept, or ends the
			// listing when none is (fail closed, as for resources/list).
			r.Tasks, r.NextCursor = listpage.Narrow(r.Tasks, r.NextCursor, func(t mcp.Task) bool {
				return b.mayUse(ctx, t.TaskId)
			})
		})
	}
}

// taskTools is a tool filter that keeps only the tools mcp-go runs
// through its tool handler middlewares: the server's AddTool tools and the
// session's tools. mcp-go v1.2.1 runs a tool registered with AddTaskTool
// without them (executeTaskTool), so the tool budgets, the audit of the
// call, the policy's authoritative check and the sealing of requestState
// would all be skipped for it; it is hidden instead (fail closed), a call
// of it answers "tool not found", and the Guard's logger says why, once. A
// tool registered with AddTool and mcp.WithTaskSupport runs as a task
// through the middlewares and is kept.
type taskTools struct {
	log    func() *slog.Logger
	warned atomic.Bool
}

func (f *taskTools) filter(ctx context.Context, tools []mcp.Tool) []mcp.Tool {
	srv := server.ServerFromContext(ctx)
	if srv == nil {
		return nil
	}
	if len(tools) == 1 {
		// A call: one lookup, the session's tools only when the server has
		// no such tool (mcp-go refuses a task tool named as a server tool).
		if srv.GetTool(tools[0].Name) != nil || inSession(ctx, tools[0].Name) {
			return tools
		}
		f.hidden(tools[0].Name)
		return nil
	}
	registered := srv.ListTools()
	var session map[string]server.ServerTool
	if s, ok := server.ClientSessionFromContext(ctx).(server.SessionWithTools); ok {
		session = s.GetSessionTools()
	}
	out := tools[:0:0] // a copy: the input may be shared
	for _, t := range tools {
		_, mine := session[t.Name]
		if mine || registered[t.Name] != nil {
			out = append(out, t)
		} else {
			f.hidden(t.Name)
		}
	}
	if len(out) == len(tools) {
		return tools
	}
	return out
}

func inSession(ctx context.Context, name string) bool {
	s, ok := server.ClientSessionFromContext(ctx).(server.SessionWithTools)
	if !ok {
		return false
	}
	_, ok = s.GetSessionTools()[name]
	return ok
}

// hidden says, the first time only, that a task tool is hidden and why.
func (f *taskTools) hidden(name string) {
	if f.warned.CompareAndSwap(false, true) {
		f.log().Warn("mcpguard: a tool registered with mcp-go's AddTaskTool is hidden: mcp-go runs it without tool middleware, so no policy check, budget or audit would reach it; register it with AddTool and mcp.WithTaskSupport",
			"tool", name)
	}
}
