package transport

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/internal/jsonrpc"
)

// TestStackPeeksTheBodyOnce: behind the edge, the body mcp-go hands its
// request hooks (where authz's early check peeks it) is answered from the
// Peek result the step-up check left in the edge context, in both eras.
func TestStackPeeksTheBodyOnce(t *testing.T) {
	st := newStack(t, nil)
	var mu sync.Mutex
	remembered := map[string]bool{} // tools/call bodies seen by the hook
	hooks := &server.Hooks{}
	hooks.AddOnRequestInitialization(func(ctx context.Context, _ any, message any) error {
		body, ok := message.(json.RawMessage)
		if !ok {
			return nil
		}
		msg, err := jsonrpc.Peek(body)
		if err != nil || msg.Method != string(mcp.MethodToolsCall) {
			return nil
		}
		m, _ := ctx.Value(jsonrpc.MemoKey{}).(*jsonrpc.Memo)
		mu.Lock()
		remembered[string(msg.ID)] = m.Remembers(body)
		mu.Unlock()
		return nil
	})
	srv := notesServer(append([]server.ServerOption{server.WithHooks(hooks)}, st.guard.ServerOptions()...)...)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	hs := &http.Server{Handler: st.guard.Handler(srv), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	t.Cleanup(func() { _ = hs.Close() })
	url := "http://" + ln.Addr().String() + "/mcp"
	tok := st.token(t, map[string]any{"scope": "notes:read"})

	for _, era := range eras {
		t.Run(era, func(t *testing.T) {
			mu.Lock()
			clear(remembered)
			mu.Unlock()
			c, err := eraClient(t, url, tok, era)
			require.NoError(t, err)
			text, err := callText(t, c, "notes_read")
			require.NoError(t, err)
			assert.Equal(t, "read for acme", text)
			mu.Lock()
			defer mu.Unlock()
			require.NotEmpty(t, remembered, "the hook saw the call")
			for id, ok := range remembered {
				assert.True(t, ok, "call %s was peeked again inside mcp-go", id)
			}
		})
	}
}
