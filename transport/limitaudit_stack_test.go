package transport

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/transport/ratelimit"
)

// brokenLimiter is a backend that cannot decide: it fails closed (an error
// wrapping ErrUnavailable) or, with failOpen, lets every event through
// uncounted, as redisrate does when Redis is down.
type brokenLimiter struct {
	failOpen bool
	calls    atomic.Int64
}

func (b *brokenLimiter) Allow(context.Context, string, ratelimit.Limit) (ratelimit.Decision, error) {
	b.calls.Add(1)
	cause := errors.New("dial tcp 127.0.0.1:6379: connection refused")
	if b.failOpen {
		return ratelimit.Decision{Allowed: true, FailedOpen: cause}, nil
	}
	return ratelimit.Decision{RetryAfter: time.Second}, errors.Join(ratelimit.ErrUnavailable, cause)
}

// auditEvents parses the stack's JSON audit lines.
func auditEvents(t *testing.T, st *stack) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(st.audit.String()), "\n") {
		if line == "" {
			continue
		}
		var e map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &e), line)
		out = append(out, e)
	}
	return out
}

// limitEvents returns the rate_limited events of the audit trail.
func limitEvents(t *testing.T, st *stack) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, e := range auditEvents(t, st) {
		if e["kind"] == "rate_limited" {
			out = append(out, e)
		}
	}
	return out
}

// eraPost sends one tools/list in era: within the 2025-11-25 session sid,
// or stateless for 2026-07-28.
func eraPost(t *testing.T, st *stack, era, sid, token string) int {
	t.Helper()
	status, _ := postRPC(t, st, token, era, sid, "tools/list", rpcBody(era, "tools/list"))
	return status
}

// eraSession opens a 2025-11-25 session for token (empty for 2026-07-28,
// which has none).
func eraSession(t *testing.T, st *stack, era, token string) string {
	t.Helper()
	if era != mcp.ProtocolVersion20251125 {
		return ""
	}
	c, err := eraClient(t, st.url, token, era)
	require.NoError(t, err)
	sid := c.GetSessionId()
	require.NotEmpty(t, sid)
	return sid
}

// TestStackLimitDecisionsAudited: each HTTP-level limit reports its own
// decision to audit (ratelimit.Reporter, wired by the transport) — a
// rate_limited event naming the limit's namespace, with the principal and
// tenant where the limit knows them (not before authentication) — in both
// protocol eras, over real HTTP, and the trail holds no credential. A 503
// from a fail-closed limiter is a rate_limited decision too (a status-based
// guess called it a plain request), and a fail-open is recorded as allowed.
func TestStackLimitDecisionsAudited(t *testing.T) {
	newLimit := func(t *testing.T, lim ratelimit.Limiter, ns string, burst int) *ratelimit.RequestLimit {
		m, err := ratelimit.NewRequestLimit(ratelimit.RequestLimitConfig{Limiter: lim, Namespace: ns,
			Limit: ratelimit.Limit{Events: 1, Period: time.Hour, Burst: burst}})
		require.NoError(t, err)
		return m
	}
	// untilRefused sends requests until one gets want, at most n.
	untilRefused := func(t *testing.T, n, want int, send func() int) {
		t.Helper()
		for range n {
			if send() == want {
				return
			}
		}
		t.Fatalf("no %d within %d requests", want, n)
	}
	for _, era := range eras {
		t.Run(era+"/pre-auth", func(t *testing.T) {
			mem, err := ratelimit.NewMemory(ratelimit.MemoryConfig{})
			require.NoError(t, err)
			st := newStack(t, func(c *Config) { c.PreAuthRateLimit = newLimit(t, mem, "preauth", 4) })
			tok := st.token(t, map[string]any{"sub": "alice", "scope": "notes:read"})
			sid := eraSession(t, st, era, tok)
			untilRefused(t, 6, http.StatusTooManyRequests, func() int { return eraPost(t, st, era, sid, tok) })
			require.NoError(t, st.rec.Close())
			evs := limitEvents(t, st)
			require.NotEmpty(t, evs, st.audit.String())
			e := evs[0]
			assert.Equal(t, "preauth", e["limit"])
			assert.Equal(t, "deny", e["decision"])
			assert.Equal(t, "rate_limited", e["reason"])
			assert.EqualValues(t, 429, e["status"])
			assert.Nil(t, e["subject"], "the pre-auth limit runs before anyone is authenticated")
			assert.NotContains(t, st.audit.String(), tok)
		})
		t.Run(era+"/unauthenticated and authenticated", func(t *testing.T) {
			mem, err := ratelimit.NewMemory(ratelimit.MemoryConfig{})
			require.NoError(t, err)
			st := newStack(t, func(c *Config) {
				c.UnauthenticatedRateLimit = newLimit(t, mem, "unauth", 2)
				c.RateLimit = newLimit(t, mem, "http", 5)
			})
			forged, err := st.idp.MintBadSignature(map[string]any{"aud": st.url, "tenant_id": "acme", "sub": "mallory"})
			require.NoError(t, err)
			tok := st.token(t, map[string]any{"sub": "alice", "scope": "notes:read"})
			sid := eraSession(t, st, era, tok)
			untilRefused(t, 4, http.StatusTooManyRequests, func() int { return eraPost(t, st, era, sid, forged) })
			untilRefused(t, 7, http.StatusTooManyRequests, func() int { return eraPost(t, st, era, sid, tok) })
			require.NoError(t, st.rec.Close())
			byLimit := map[string]map[string]any{}
			for _, e := range limitEvents(t, st) {
				byLimit[e["limit"].(string)] = e
			}
			require.Contains(t, byLimit, "unauth", st.audit.String())
			require.Contains(t, byLimit, "http", st.audit.String())
			u := byLimit["unauth"]
			assert.Equal(t, "deny", u["decision"])
			assert.Equal(t, "rate_limited", u["reason"])
			assert.EqualValues(t, 429, u["status"])
			assert.Nil(t, u["subject"], "a failed authentication has no principal")
			a := byLimit["http"]
			assert.Equal(t, "deny", a["decision"])
			assert.Equal(t, "rate_limited", a["reason"])
			assert.EqualValues(t, 429, a["status"])
			assert.Equal(t, "alice", a["subject"])
			assert.Equal(t, "acme", a["tenant"])
			trail := st.audit.String()
			assert.NotContains(t, trail, tok)
			assert.NotContains(t, trail, forged)
			assert.NotContains(t, trail, "http|", "no limiter key is recorded")
		})
		t.Run(era+"/fail closed", func(t *testing.T) {
			broken := &brokenLimiter{}
			st := newStack(t, func(c *Config) { c.RateLimit = newLimit(t, broken, "http", 5) })
			tok := st.token(t, map[string]any{"sub": "alice", "scope": "notes:read"})
			status := eraPost(t, st, mcp.ProtocolVersion20260728, "", tok)
			if era == mcp.ProtocolVersion20251125 {
				c, err := eraClient(t, st.url, tok, era)
				require.Error(t, err, "no session while the limiter is down")
				_ = c
			}
			assert.Equal(t, http.StatusServiceUnavailable, status)
			require.NoError(t, st.rec.Close())
			evs := limitEvents(t, st)
			require.NotEmpty(t, evs, st.audit.String())
			for _, e := range evs {
				assert.Equal(t, "http", e["limit"])
				assert.Equal(t, "deny", e["decision"])
				assert.Equal(t, "limiter_unavailable", e["reason"])
				assert.EqualValues(t, 503, e["status"])
				assert.Equal(t, "alice", e["subject"])
			}
			assert.NotContains(t, st.audit.String(), "connection refused", "no internal cause text in the trail")
			assert.NotContains(t, st.audit.String(), tok)
		})
		t.Run(era+"/fail open", func(t *testing.T) {
			broken := &brokenLimiter{failOpen: true}
			st := newStack(t, func(c *Config) { c.RateLimit = newLimit(t, broken, "http", 5) })
			tok := st.token(t, map[string]any{"sub": "alice", "scope": "notes:read"})
			sid := eraSession(t, st, era, tok)
			assert.Equal(t, http.StatusOK, eraPost(t, st, era, sid, tok))
			require.NoError(t, st.rec.Close())
			evs := limitEvents(t, st)
			require.NotEmpty(t, evs, st.audit.String())
			for _, e := range evs {
				assert.Equal(t, "http", e["limit"])
				assert.Equal(t, "allow", e["decision"])
				assert.Equal(t, "limiter_fail_open", e["reason"])
				assert.Equal(t, "alice", e["subject"])
			}
			assert.GreaterOrEqual(t, broken.calls.Load(), int64(1))
		})
	}
}

// TestStackToolBudgetDecisionsAudited: the tool budgets given to
// Config.ToolBudgets report their decisions to the Guard's audit recorder
// in both protocol eras, over real HTTP: a rate refusal and a fail-closed
// limiter are rate_limited denials naming the budgets' namespace, the
// tool, the principal and the tenant, with the reason of the decision; a
// fail-open is an allowed rate_limited event flagged limiter_fail_open
// (before, it reached only the budgets' own OnEvent). The trail holds no
// credential, limiter key or cause text.
func TestStackToolBudgetDecisionsAudited(t *testing.T) {
	for _, era := range eras {
		for _, tc := range []struct {
			name     string
			lim      func(t *testing.T) ratelimit.Limiter
			calls    int
			decision string
			reason   string
		}{
			{"rate refused", func(t *testing.T) ratelimit.Limiter {
				mem, err := ratelimit.NewMemory(ratelimit.MemoryConfig{})
				require.NoError(t, err)
				return mem
			}, 2, "deny", "rate_limited"},
			{"fail closed", func(*testing.T) ratelimit.Limiter { return &brokenLimiter{} }, 1, "deny", "limiter_unavailable"},
			{"fail open", func(*testing.T) ratelimit.Limiter { return &brokenLimiter{failOpen: true} }, 1, "allow", "limiter_fail_open"},
		} {
			t.Run(era+"/"+tc.name, func(t *testing.T) {
				budgets, err := ratelimit.NewToolBudgets(ratelimit.ToolBudgetsConfig{Limiter: tc.lim(t), Namespace: "budget",
					Tools: map[string]ratelimit.Budget{"whoami": {Rate: ratelimit.Limit{Events: 1, Period: time.Hour, Burst: 1}}}})
				require.NoError(t, err)
				st := newStack(t, func(c *Config) { c.ToolBudgets = budgets })
				tok := st.token(t, map[string]any{"sub": "alice", "scope": "notes:read"})
				c, err := eraClient(t, st.url, tok, era)
				require.NoError(t, err)
				var lastErr error
				for range tc.calls {
					_, lastErr = callText(t, c, "whoami")
				}
				if tc.decision == "allow" {
					require.NoError(t, lastErr, "a fail-open limiter lets the call through")
				} else {
					require.Error(t, lastErr, "the budget refuses the call")
				}
				require.NoError(t, st.rec.Close())
				var budgetEvents []map[string]any
				for _, e := range limitEvents(t, st) {
					if e["limit"] == "budget" {
						budgetEvents = append(budgetEvents, e)
					}
				}
				require.Len(t, budgetEvents, 1, "one record per decision: %s", st.audit.String())
				e := budgetEvents[0]
				assert.Equal(t, "whoami", e["tool"])
				assert.Equal(t, tc.decision, e["decision"])
				assert.Equal(t, tc.reason, e["reason"])
				assert.Equal(t, "alice", e["subject"])
				assert.Equal(t, "acme", e["tenant"])
				ran := 0
				for _, e := range auditEvents(t, st) {
					if e["kind"] == "tool_call" && e["tool"] == "whoami" {
						ran++
					}
				}
				want := 0
				if tc.decision == "allow" || tc.calls == 2 {
					want = 1 // the fail-open call, or the first call within the budget
				}
				assert.Equal(t, want, ran, "calls that ran: %s", st.audit.String())
				trail := st.audit.String()
				assert.NotContains(t, trail, tok)
				assert.NotContains(t, trail, "budget|", "no limiter key is recorded")
				assert.NotContains(t, trail, "connection refused", "no internal cause text in the trail")
			})
		}
	}
}

// TestStackToolBudgetConcurrencyAndTimeoutAudited: the budgets' other two
// decisions reach audit over real HTTP in both eras — a call refused
// because the caller's one concurrent call of the tool is in flight is a
// rate_limited denial with reason concurrency_limited, a call cut off by
// its budget's Timeout one with reason budget_timeout — each naming the
// budgets' namespace, the tool, the principal and the tenant.
func TestStackToolBudgetConcurrencyAndTimeoutAudited(t *testing.T) {
	for _, era := range eras {
		t.Run(era, func(t *testing.T) {
			budgets, err := ratelimit.NewToolBudgets(ratelimit.ToolBudgetsConfig{Namespace: "budget",
				Tools: map[string]ratelimit.Budget{"wait": {MaxConcurrent: 1}, "hang": {Timeout: 10 * time.Millisecond}}})
			require.NoError(t, err)
			started, release := make(chan struct{}, 1), make(chan struct{})
			st := newMediationStackWith(t, func(c *Config) { c.ToolBudgets = budgets }, func(_ *Guard, s *server.MCPServer) {
				s.AddTool(mcp.NewTool("wait", mcp.WithReadOnlyHintAnnotation(true)), func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
					started <- struct{}{}
					<-release
					return mcp.NewToolResultText("done"), nil
				})
				s.AddTool(mcp.NewTool("hang", mcp.WithReadOnlyHintAnnotation(true)), func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
					<-ctx.Done()
					return nil, ctx.Err()
				})
			})
			tok := st.token(t, map[string]any{"sub": "alice", "scope": "notes:read"})
			first, err := eraClient(t, st.url, tok, era)
			require.NoError(t, err)
			second, err := eraClient(t, st.url, tok, era)
			require.NoError(t, err)

			done := make(chan error, 1)
			go func() {
				_, err := callText(t, first, "wait")
				done <- err
			}()
			<-started
			_, err = callText(t, second, "wait")
			require.Error(t, err, "the caller's one concurrent call of wait is in flight")
			close(release)
			require.NoError(t, <-done)
			_, err = callText(t, second, "hang")
			require.Error(t, err, "the budget's timeout cuts hang off")
			require.NoError(t, st.rec.Close())

			byTool := map[string][]map[string]any{}
			for _, e := range limitEvents(t, st) {
				if e["limit"] == "budget" {
					byTool[e["tool"].(string)] = append(byTool[e["tool"].(string)], e)
				}
			}
			for tool, reason := range map[string]string{"wait": "concurrency_limited", "hang": "budget_timeout"} {
				require.Len(t, byTool[tool], 1, "one record of %s's decision: %s", tool, st.audit.String())
				e := byTool[tool][0]
				assert.Equal(t, "deny", e["decision"], tool)
				assert.Equal(t, reason, e["reason"], tool)
				assert.Equal(t, "alice", e["subject"], tool)
				assert.Equal(t, "acme", e["tenant"], tool)
			}
			assert.NotContains(t, st.audit.String(), tok)
		})
	}
}
