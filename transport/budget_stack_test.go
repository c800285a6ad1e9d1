package transport

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/transport/ratelimit"
)

// A tool-budget refusal is audited as rate_limited (denied), not as an
// allowed call that failed, in both protocol eras.
func TestStackToolBudgetRefusalAuditedAsRateLimited(t *testing.T) {
	for _, era := range eras {
		t.Run(era, func(t *testing.T) {
			mem, err := ratelimit.NewMemory(ratelimit.MemoryConfig{})
			require.NoError(t, err)
			budgets, err := ratelimit.NewToolBudgets(ratelimit.ToolBudgetsConfig{Limiter: mem,
				Tools: map[string]ratelimit.Budget{"whoami": {Rate: ratelimit.Limit{Events: 1, Period: time.Hour}}}})
			require.NoError(t, err)
			st := newStack(t, func(c *Config) { c.ToolBudgets = budgets })
			tok := st.token(t, map[string]any{"sub": "alice", "scope": "notes:read"})
			c, err := eraClient(t, st.url, tok, era)
			require.NoError(t, err)
			_, err = callText(t, c, "whoami")
			require.NoError(t, err)
			_, err = callText(t, c, "whoami")
			require.Error(t, err, "the budget refuses the second call")
			require.NoError(t, st.rec.Close())
			out := st.audit.String()
			assert.Contains(t, out, `"kind":"rate_limited"`)
			assert.Contains(t, out, `"limit":"tool"`, "the refusal names the budgets' namespace")
			assert.Equal(t, 1, countLines(out, `"kind":"tool_call"`), "only the first call ran: %s", out)
		})
	}
}

func countLines(s, sub string) int {
	n := 0
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			n++
		}
	}
	return n
}
