package transport

import (
	"github.com/mark3labs/mcp-go/mcp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/authz"
)

// TestStackPolicyDenialAudited: every tools/call the policy refuses is
// recorded as a denial (tool_denied or access_denied, decision deny), in
// both eras: one refused by a tenant allow-list or a rule nobody meets,
// which mcp-go's call-time tool filter answers "tool not found" before any
// tool middleware runs, and one refused for scope with the HTTP step-up
// turned off, which the policy's request hook answers.
func TestStackPolicyDenialAudited(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*Config)
		tool   string
		scope  string
	}{
		{name: "tenant allow-list", tool: "notes_read", scope: "notes:read", mutate: func(c *Config) {
			pl, err := authz.New(authz.Config{
				ReadScope: "notes:read", WriteScope: "notes:write",
				ToolRules:   map[string]authz.Rule{"whoami": {Authenticated: true}},
				TenantTools: map[string][]string{"acme": {"whoami"}},
			})
			require.NoError(t, err)
			c.Policy = pl
		}},
		{name: "no rule", tool: "notes_write", scope: "notes:read", mutate: func(c *Config) {
			pl, err := authz.New(authz.Config{ToolRules: map[string]authz.Rule{"whoami": {Authenticated: true}}})
			require.NoError(t, err)
			c.Policy = pl
		}},
		{name: "scope without step-up", tool: "notes_write", scope: "notes:read", mutate: func(c *Config) { c.DisableStepUp = true }},
	}
	for _, tc := range cases {
		for _, era := range eras {
			t.Run(tc.name+" "+era, func(t *testing.T) {
				st := newStack(t, tc.mutate)
				tok := st.token(t, map[string]any{"sub": "alice", "scope": tc.scope})
				c, err := eraClient(t, st.url, tok, era)
				require.NoError(t, err)
				_, err = callText(t, c, tc.tool)
				require.Error(t, err, "the policy refuses the call")
				require.NoError(t, st.rec.Close())
				denied := 0
				for _, e := range auditEvents(t, st) {
					if e["decision"] == "deny" && (e["kind"] == "tool_denied" || e["kind"] == "access_denied") {
						denied++
					}
					assert.False(t, e["kind"] == "tool_call" && e["tool"] == tc.tool, "a refused call is not recorded as one that ran: %v", e)
				}
				assert.Equal(t, 1, denied, "the refusal is audited once: %s", st.audit.String())
			})
		}
	}
}

// TestStackCompletionDenialAudited: a completion/complete the policy's
// request hook refuses is recorded as a denial naming the method, in both
// eras.
func TestStackCompletionDenialAudited(t *testing.T) {
	for _, era := range eras {
		t.Run(era, func(t *testing.T) {
			st := newMediationStack(t, nil)
			reader := st.token(t, map[string]any{"sub": "bob", "scope": "notes:read"})
			c := st.connect(t, reader, era)
			_, err := complete(c, mcp.PromptReference{Type: "ref/prompt", Name: "admin_digest"})
			require.Error(t, err)
			require.NoError(t, st.rec.Close())
			denied := 0
			for _, e := range auditEvents(t, st) {
				if e["decision"] == "deny" && e["method"] == "completion/complete" && e["subject"] == "bob" {
					denied++
				}
			}
			assert.Equal(t, 1, denied, "the refused completion is audited once: %s", st.audit.String())
		})
	}
}
