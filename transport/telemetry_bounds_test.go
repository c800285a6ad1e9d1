package transport

import (
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/mcpguard/mcpguard/telemetry"
)

// postNoAuth posts one JSON-RPC message of era without a credential, the
// protocol version header set to version and, for 2026-07-28, the
// Mcp-Method (and Mcp-Name) headers of the request; it returns the status.
func postNoAuth(t *testing.T, url, era, version, method, name string) int {
	t.Helper()
	params := ""
	if name != "" {
		params = `"name":"` + name + `","arguments":{}`
	}
	if era == mcp.ProtocolVersion20260728 {
		if params != "" {
			params += ","
		}
		params += `"_meta":{"` + mcp.MetaKeyProtocolVersion + `":"` + era + `","` + mcp.MetaKeyClientInfo + `":{"name":"t","version":"1"},"` +
			mcp.MetaKeyClientCapabilities + `":{}}`
	}
	body := `{"jsonrpc":"2.0","id":1,"method":"` + method + `","params":{` + params + `}}`
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set(mcp.HeaderProtocolVersion, version)
	if era == mcp.ProtocolVersion20260728 {
		req.Header.Set(mcp.HeaderMethod, method)
		if name != "" {
			req.Header.Set(mcp.HeaderName, name)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	return resp.StatusCode
}

// opPoints renders mcp.server.operation.duration's points as "k=v,k=v" →
// count.
func opPoints(t *testing.T, ts *telemetryStack) map[string]uint64 {
	t.Helper()
	op, ok := ts.metrics(t)["mcp.server.operation.duration"].(metricdata.Histogram[float64])
	require.True(t, ok)
	out := map[string]uint64{}
	for _, dp := range op.DataPoints {
		out[attrString(dp.Attributes)] += dp.Count
	}
	return out
}

// Method names and protocol versions chosen by unauthenticated clients
// create no series of their own: 300 requests refused with 401, each with
// its own made-up method and Mcp-Protocol-Version, fold into one series
// (and one span name), while an authenticated call keeps its real method
// and version — in both eras.
func TestStackTelemetryUnauthenticatedSeries(t *testing.T) {
	for _, era := range eras {
		t.Run(era, func(t *testing.T) {
			ts := newTelemetryStack(t, nil)
			const n = 300
			for i := range n {
				status := postNoAuth(t, ts.url, era, "junk-"+strconv.Itoa(i), "evil/"+strconv.Itoa(i), "")
				require.Equal(t, http.StatusUnauthorized, status)
			}
			// A known method with an unknown version, and the reverse.
			require.Equal(t, http.StatusUnauthorized, postNoAuth(t, ts.url, era, "junk", "tools/list", ""))
			require.Equal(t, http.StatusUnauthorized, postNoAuth(t, ts.url, era, era, "evil/x", ""))

			alice := ts.token(t, map[string]any{"sub": "alice", "scope": "notes:read"})
			c, err := eraClient(t, ts.url, alice, era)
			require.NoError(t, err)
			_, err = callText(t, c, "whoami")
			require.NoError(t, err)

			ops := opPoints(t, ts)
			assert.Equal(t, uint64(n), ops["error.type=no_credential,mcp.method.name=_other,mcp.protocol.version=_other"], "every made-up value is %q: %v", telemetry.Other, ops)
			assert.Equal(t, uint64(1), ops["error.type=no_credential,mcp.method.name=tools/list,mcp.protocol.version=_other"], "%v", ops)
			assert.Equal(t, uint64(1), ops["error.type=no_credential,mcp.method.name=_other,mcp.protocol.version="+era], "%v", ops)
			assert.LessOrEqual(t, len(ops), 8, "a handful of series, not one per request: %v", ops)
			for series := range ops {
				assert.NotContains(t, series, "evil/", series)
				assert.NotContains(t, series, "junk", series)
			}
			assert.Equal(t, uint64(1), ops["mcp.method.name=tools/call,mcp.protocol.version="+era], "the real call keeps its values: %v", ops)

			names := map[string]bool{}
			for _, s := range ts.spans.Ended() {
				names[s.Name()] = true
				a := spanAttrs(s)
				assert.NotContains(t, a["mcp.method.name"], "evil/", s.Name())
				assert.NotContains(t, a["mcp.protocol.version"], "junk", s.Name())
			}
			assert.True(t, names[telemetry.Other], "the made-up methods' spans are named %q: %v", telemetry.Other, names)
			assert.True(t, names["tools/call whoami"], "%v", names)
			assert.LessOrEqual(t, len(names), 8, "a handful of span names: %v", names)
		})
	}
}

// With ToolAttribute, only authenticated, dispatched requests for a tool
// the server has take one of the MaxTools slots: tool names sent without a
// credential (401) and made-up names sent with a valid token count as
// "_other" and leave the slots to the real tools, in both eras.
func TestStackTelemetryToolSlotsNotForRefused(t *testing.T) {
	for _, era := range eras {
		t.Run(era, func(t *testing.T) {
			ts := newTelemetryStack(t, func(c *Config) {
				c.Telemetry.ToolAttribute = true
				c.Telemetry.MaxTools = 2
			})
			for i := range 5 {
				status := postNoAuth(t, ts.url, era, era, "tools/call", "junk-"+strconv.Itoa(i))
				require.Equal(t, http.StatusUnauthorized, status)
			}
			alice := ts.token(t, map[string]any{"sub": "alice", "scope": "notes:read"})
			c, err := eraClient(t, ts.url, alice, era)
			require.NoError(t, err)
			for i := range 3 {
				_, err := callText(t, c, "ghost-"+strconv.Itoa(i))
				require.Error(t, err, "no such tool")
			}
			_, err = callText(t, c, "notes_write")
			require.Error(t, err, "notes_write needs notes:write")
			for range 2 {
				out, err := callText(t, c, "whoami")
				require.NoError(t, err)
				assert.Contains(t, out, "alice")
			}

			ops := opPoints(t, ts)
			tools := map[string]uint64{}
			for series, n := range ops {
				for _, kv := range strings.Split(series, ",") {
					if v, ok := strings.CutPrefix(kv, "gen_ai.tool.name="); ok {
						tools[v] += n
					}
				}
			}
			assert.Equal(t, uint64(2), tools["whoami"], "the real tool has its slot: %v", ops)
			assert.GreaterOrEqual(t, tools[telemetry.Other], uint64(5+3), "refused and made-up names are %q: %v", telemetry.Other, ops)
			for name := range tools {
				assert.Contains(t, []string{"whoami", "notes_write", telemetry.Other}, name, "only registered tools are named: %v", ops)
			}
		})
	}
}
