package transport

import (
	"context"
	"net/http/httptest"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/stretchr/testify/require"
)

// The same mid-call streaming check against bare mcp-go, so a failure of
// the stack's version can be told apart from an mcp-go behaviour change.
func TestBareMCPGoStreamsMidCall(t *testing.T) {
	seen := make(chan struct{})
	ts := httptest.NewServer(server.NewStreamableHTTPServer(notesServerSeen(seen), server.WithStateful(true)))
	defer ts.Close()
	c := newClient(t, ts.URL, "x")
	_, err := c.Initialize(context.Background(), initReq(mcp.ProtocolVersion20251125))
	require.NoError(t, err)
	streamMidCall(t, ts.URL, "x", c.GetSessionId(), seen)
}
