package transport

import (
	"context"
	"net/http"
	"strings"
	"testing"

	mcptransport "github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rawSession sends one request with a session ID and returns the status.
func rawSession(t *testing.T, method, url, token, sid, body string) int {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Mcp-Session-Id", sid)
	req.Header.Set(mcp.HeaderProtocolVersion, mcp.ProtocolVersion20251125)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
	}
	if method == http.MethodGet {
		req.Header.Set("Accept", "text/event-stream")
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	return resp.StatusCode
}

// TestStackDeleteTerminates: after its owner's DELETE a session ID answers
// 404 to every request, whoever sends it, whichever session manager mcp-go
// runs (StatelessGeneratingSessionIdManager, the multi-replica choice,
// forgets nothing on its own).
func TestStackDeleteTerminates(t *testing.T) {
	for name, opt := range map[string]server.StreamableHTTPOption{
		"stateful":             server.WithStateful(true),
		"stateless-generating": server.WithSessionIdManager(&server.StatelessGeneratingSessionIdManager{}),
	} {
		t.Run(name, func(t *testing.T) {
			st := newStack(t, nil, opt)
			alice := st.token(t, map[string]any{"sub": "alice", "scope": "notes:read"})
			ctx := context.Background()
			c := st.client(t, alice)
			_, err := c.Initialize(ctx, initReq(mcp.ProtocolVersion20251125))
			require.NoError(t, err)
			sid := c.GetSessionId()
			require.NotEmpty(t, sid)
			_, err = callText(t, c, "whoami")
			require.NoError(t, err)

			require.Equal(t, http.StatusOK, rawSession(t, http.MethodDelete, st.url, alice, sid, ""))

			call := `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"whoami"}}`
			assert.Equal(t, http.StatusNotFound, rawSession(t, http.MethodPost, st.url, alice, sid, call), "POST after DELETE")
			assert.Equal(t, http.StatusNotFound, rawSession(t, http.MethodGet, st.url, alice, sid, ""), "GET after DELETE")
			assert.Equal(t, http.StatusNotFound, rawSession(t, http.MethodDelete, st.url, alice, sid, ""), "DELETE after DELETE")
			_, err = callText(t, c, "whoami")
			assert.ErrorIs(t, err, mcptransport.ErrSessionTerminated, "the mcp-go client sees its session ended")

			// A new session for the same caller works.
			c2 := st.client(t, alice)
			_, err = c2.Initialize(ctx, initReq(mcp.ProtocolVersion20251125))
			require.NoError(t, err)
			assert.NotEqual(t, sid, c2.GetSessionId())
			_, err = callText(t, c2, "whoami")
			assert.NoError(t, err)
		})
	}
}
