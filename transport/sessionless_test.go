package transport

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestStackSessionlessRefused: a 2025-11-25 request without a session ID
// is served by mcp-go in the session "" when its session ID manager takes
// that one (server.WithStateLess): every caller's sessionless requests and
// GET streams then shared one session, and bob's subscriptions and tool
// notifications reached alice's stream (found in review). Session binding
// now refuses a sessionless 2025-11-25 GET (400) and POST other than
// initialize (404, mcp-go's own answer in its default mode), in either
// mode; initialize and every 2026-07-28 request are served as before.
func TestStackSessionlessRefused(t *testing.T) {
	for name, opts := range map[string][]server.StreamableHTTPOption{
		"default":   nil,
		"stateless": {server.WithStateLess(true)},
	} {
		t.Run(name, func(t *testing.T) {
			st := newMediationStack(t, func(_ *Guard, s *server.MCPServer) {
				s.AddTool(mcp.NewTool("whoami", mcp.WithReadOnlyHintAnnotation(true)), func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
					return mcp.NewToolResultText("you"), nil
				})
			}, opts...)
			alice := st.token(t, map[string]any{"sub": "alice", "scope": "notes:read"})
			do := func(method, version, body string) (int, string) {
				var rd io.Reader
				if body != "" {
					rd = strings.NewReader(body)
				}
				// A stream that opens would never end: bound the wait.
				ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
				defer cancel()
				req, err := http.NewRequestWithContext(ctx, method, st.url, rd)
				require.NoError(t, err)
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Accept", "application/json, text/event-stream")
				req.Header.Set("Authorization", "Bearer "+alice)
				if version != "" {
					req.Header.Set(mcp.HeaderProtocolVersion, version)
				}
				if version == mcp.ProtocolVersion20260728 {
					req.Header.Set(mcp.HeaderMethod, "tools/call")
					req.Header.Set(mcp.HeaderName, "whoami")
				}
				resp, err := http.DefaultClient.Do(req)
				require.NoError(t, err)
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				return resp.StatusCode, string(b)
			}
			old := mcp.ProtocolVersion20251125
			for _, v := range []string{old, ""} {
				status, body := do(http.MethodGet, v, "")
				assert.Equal(t, http.StatusBadRequest, status, "GET %q: %s", v, body)
				status, body = do(http.MethodPost, v, `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami","arguments":{}}}`)
				assert.Equal(t, http.StatusNotFound, status, "POST %q: %s", v, body)
				status, body = do(http.MethodPost, v, `{"jsonrpc":"2.0","method":"notifications/initialized"}`)
				assert.Equal(t, http.StatusNotFound, status, "notification %q: %s", v, body)
			}
			assert.Contains(t, st.audit.String(), `"reason":"missing_session"`)

			// initialize is served, and so is a 2026-07-28 request.
			status, body := do(http.MethodPost, old, `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"`+old+`","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`)
			assert.Equal(t, http.StatusOK, status, body)
			modern := mcp.ProtocolVersion20260728
			status, body = do(http.MethodPost, modern, `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami","arguments":{},"_meta":{"`+
				mcp.MetaKeyProtocolVersion+`":"`+modern+`","`+mcp.MetaKeyClientInfo+`":{"name":"t","version":"1"},"`+mcp.MetaKeyClientCapabilities+`":{}}}}`)
			assert.Equal(t, http.StatusOK, status, body)
			assert.Contains(t, body, "you")
			// A 2026-07-28 client works in either mode, and so does a
			// 2025-11-25 client in mcp-go's default mode. With WithStateLess
			// mcp-go issues no session, so a 2025-11-25 client cannot
			// follow initialize at all: served without a session, its
			// requests would share one with every other caller's.
			c := st.connect(t, alice, mcp.ProtocolVersion20260728)
			_, err := c.ListTools(t.Context(), mcp.ListToolsRequest{})
			assert.NoError(t, err)
			_, err = eraClient(t, st.url, alice, old)
			if name == "default" {
				assert.NoError(t, err)
			} else {
				assert.Error(t, err)
			}
		})
	}
}
