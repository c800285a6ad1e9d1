package transport

import (
	"io"
	"log/slog"
	"testing"

	"github.com/mark3labs/mcp-go/client"
	mcptransport "github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/stretchr/testify/require"
)

func slogTo(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }

// eras are the two MCP protocol eras every full-stack test runs in: the
// 2025-11-25 initialize handshake with a session, and 2026-07-28 stateless.
var eras = []string{mcp.ProtocolVersion20251125, mcp.ProtocolVersion20260728}

// eraClient is an mcp-go client pinned to version, initialized against url
// with token (none when empty) and any extra transport options.
func eraClient(t *testing.T, url, token, version string, extra ...mcptransport.StreamableHTTPCOption) (*client.Client, error) {
	t.Helper()
	opts := extra
	if token != "" {
		opts = append(opts, mcptransport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + token}))
	}
	tr, err := mcptransport.NewStreamableHTTP(url, opts...)
	require.NoError(t, err)
	c := client.NewClient(tr, client.WithProtocolVersion(version))
	t.Cleanup(func() { _ = c.Close() })
	require.NoError(t, c.Start(t.Context()))
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = version
	init.Params.ClientInfo = mcp.Implementation{Name: "t", Version: "1"}
	_, err = c.Initialize(t.Context(), init)
	return c, err
}
