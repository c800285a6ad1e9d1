package transport

import (
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// liveSessions reads the mcpguard.sessions.live gauge's single point.
func liveSessions(t *testing.T, ts *telemetryStack) int64 {
	t.Helper()
	g, ok := ts.metrics(t)["mcpguard.sessions.live"].(metricdata.Gauge[int64])
	require.True(t, ok, "mcpguard.sessions.live missing or not an int64 gauge")
	require.Len(t, g.DataPoints, 1)
	assert.Equal(t, 0, g.DataPoints[0].Attributes.Len(), "the gauge carries no attribute")
	return g.DataPoints[0].Value
}

// The live-session gauge follows the transport's session counts over real
// HTTP: each 2025-11-25 client holds a slot; a 2026-07-28 stateless client
// holds none.
func TestStackTelemetrySessionsLive(t *testing.T) {
	ts := newTelemetryStack(t, nil)
	tok := ts.token(t, map[string]any{"sub": "alice", "scope": "notes:read"})
	assert.Equal(t, int64(0), liveSessions(t, ts))

	stateless, err := eraClient(t, ts.url, tok, mcp.ProtocolVersion20260728)
	require.NoError(t, err)
	_, err = callText(t, stateless, "whoami")
	require.NoError(t, err)
	assert.Equal(t, int64(0), liveSessions(t, ts), "a stateless client holds no session")

	c1, err := eraClient(t, ts.url, tok, mcp.ProtocolVersion20251125)
	require.NoError(t, err)
	c2, err := eraClient(t, ts.url, tok, mcp.ProtocolVersion20251125)
	require.NoError(t, err)
	_, err = callText(t, c1, "whoami")
	require.NoError(t, err)
	assert.Equal(t, int64(2), liveSessions(t, ts))
	_ = c2
}
