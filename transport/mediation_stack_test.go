package transport

import (
	"context"
	"net/http"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestStackStepUpNamesScopesAndTool: a 403 for missing scopes names them in
// error_description (mcp-go's client shows only the body), and the edge's
// audit event names the refused tool (issue 15.8).
func TestStackStepUpNamesScopesAndTool(t *testing.T) {
	st := newStack(t, nil)
	tok := st.token(t, map[string]any{"sub": "bob", "scope": "notes:read"})

	t.Run("stateless", func(t *testing.T) {
		status, _, body := rawCall(t, st.url, tok, "notes_write", "")
		require.Equal(t, http.StatusForbidden, status)
		assert.JSONEq(t, `{"error":"insufficient_scope","error_description":"insufficient scope: this request requires notes:write"}`, body)
	})
	t.Run("session", func(t *testing.T) {
		c := st.client(t, tok)
		_, err := c.Initialize(context.Background(), initReq(mcp.ProtocolVersion20251125))
		require.NoError(t, err)
		_, err = callText(t, c, "notes_write")
		require.Error(t, err)
		assert.Contains(t, err.Error(), "insufficient_scope")
	})
	require.NoError(t, st.rec.Close())
	out := st.audit.String()
	assert.Regexp(t, `"kind":"access_denied"[^\n]*"tool":"notes_write"[^\n]*"reason":"insufficient_scope"`, out)
	assert.NotContains(t, out, tok)
}
