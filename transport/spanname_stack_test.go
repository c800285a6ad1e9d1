package transport

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestStackSpanTokenShapedToolName: a tools/call naming a token as the
// tool (a client that pasted its credential there) is answered as any
// unknown tool, and neither the span's name nor an attribute holds it,
// over real HTTP in both eras.
func TestStackSpanTokenShapedToolName(t *testing.T) {
	ts := newTelemetryStack(t, nil)
	tok := ts.token(t, map[string]any{"sub": "bob", "scope": "notes:read"})
	for _, era := range eras {
		t.Run(era, func(t *testing.T) {
			sid := eraSession(t, ts.stack, era, tok)
			body := rpcBody(era, "tools/call")
			if strings.Contains(body, `"params":{}`) {
				body = strings.Replace(body, `"params":{}`, `"params":{"name":"`+tok+`"}`, 1)
			} else {
				body = strings.Replace(body, `"params":{`, `"params":{"name":"`+tok+`",`, 1)
			}
			req, err := http.NewRequest(http.MethodPost, ts.url, strings.NewReader(body))
			require.NoError(t, err)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/event-stream")
			req.Header.Set("Authorization", "Bearer "+tok)
			req.Header.Set(mcp.HeaderProtocolVersion, era)
			if sid != "" {
				req.Header.Set("Mcp-Session-Id", sid)
			} else {
				req.Header.Set(mcp.HeaderMethod, "tools/call")
				req.Header.Set(mcp.HeaderName, tok)
			}
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			b, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			require.NotContains(t, string(b), `"result"`, string(b))
		})
	}
	spans := findSpans(ts.spans, "tools/call _other")
	assert.Len(t, spans, 2)
	for _, s := range ts.spans.Ended() {
		assert.NotContains(t, s.Name(), tok[:24])
		for _, kv := range s.Attributes() {
			assert.NotContains(t, kv.Value.Emit(), tok[:24], "%s %s", s.Name(), kv.Key)
		}
	}
}
