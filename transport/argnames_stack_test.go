package transport

import (
	"context"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestStackTokenShapedArgNameRedacted: argument names are always audited,
// so a token a client sends as an argument's name — its own bearer token
// pasted in the wrong place — is recorded as [REDACTED], over real HTTP in
// both eras; the tool still runs.
func TestStackTokenShapedArgNameRedacted(t *testing.T) {
	st := newStack(t, nil)
	tok := st.token(t, map[string]any{"sub": "bob", "scope": "notes:read"})
	for _, era := range eras {
		t.Run(era, func(t *testing.T) {
			c, err := eraClient(t, st.url, tok, era)
			require.NoError(t, err)
			res, err := c.CallTool(context.Background(), mcp.CallToolRequest{Params: mcp.CallToolParams{
				Name: "whoami", Arguments: map[string]any{tok: true, "verbose": true},
			}})
			require.NoError(t, err)
			require.False(t, res.IsError)
		})
	}
	require.NoError(t, st.rec.Close())
	assert.NotContains(t, st.audit.String(), tok[:24])
	calls := 0
	for _, e := range auditEvents(t, st) {
		if e["kind"] == "tool_call" && e["tool"] == "whoami" {
			assert.Equal(t, []any{"[REDACTED]", "verbose"}, e["args"], e)
			calls++
		}
	}
	assert.Equal(t, 2, calls)
}
