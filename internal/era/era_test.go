package era

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/stretchr/testify/assert"
)

func meta(version string) string {
	return `{"jsonrpc":"2.0","id":1,"method":"ping","params":{"_meta":{"` + mcp.MetaKeyProtocolVersion + `":"` + version + `","` +
		mcp.MetaKeyClientInfo + `":{"name":"t","version":"1"},"` + mcp.MetaKeyClientCapabilities + `":{}}}}`
}

func TestModern(t *testing.T) {
	modern, legacy := mcp.ProtocolVersion20260728, mcp.ProtocolVersion20251125
	for _, tc := range []struct {
		name, header, body string
		want               bool
	}{
		{"neither", "", `{"jsonrpc":"2.0","id":1,"method":"ping"}`, false},
		{"legacy header", legacy, `{"jsonrpc":"2.0","id":1,"method":"ping"}`, false},
		{"modern header", modern, `{"jsonrpc":"2.0","id":1,"method":"ping"}`, true},
		{"modern meta", "", meta(modern), true},
		{"modern meta, legacy header", legacy, meta(modern), true},
		{"legacy meta", "", meta(legacy), false},
		{"case-variant members", "", strings.ReplaceAll(meta(modern), `"params"`, `"PARAMS"`), true},
		{"undecodable body", "", `{"params":`, false},
		{"meta not an object", "", `{"params":{"_meta":7}}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, Modern(tc.header, []byte(tc.body)))
		})
	}
}

// TestModernAgreesWithMCPGo sends each body to mcp-go with a session ID
// that names no session: mcp-go answers a legacy request for an unknown
// session 404, and serves (or refuses on other grounds) a modern one
// without looking the session up.
func TestModernAgreesWithMCPGo(t *testing.T) {
	h := server.NewStreamableHTTPServer(server.NewMCPServer("t", "1"))
	for _, version := range []string{mcp.ProtocolVersion20260728, mcp.ProtocolVersion20251125, "2099-01-01", ""} {
		body := meta(version)
		req := httptest.NewRequest(http.MethodPost, "/mcp", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set(mcp.HeaderSessionID, "no-such-session")
		if version != "" {
			req.Header.Set(mcp.HeaderProtocolVersion, version)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		servedWithoutSession := rec.Code != http.StatusNotFound
		assert.Equal(t, servedWithoutSession, Modern(version, []byte(body)), "version %q: mcp-go answered %d %s", version, rec.Code, rec.Body)
	}
}
