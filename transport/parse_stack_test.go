package transport

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// postInit posts a 2025-11-25 initialize whose method member is written
// method (raw JSON string contents), with the session ID sid when set.
func postInit(t *testing.T, url, token, sid, method string) *http.Response {
	t.Helper()
	body := `{"jsonrpc":"2.0","id":1,"method":"` + method + `","params":{"protocolVersion":"` + mcp.ProtocolVersion20251125 +
		`","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if sid != "" {
		req.Header.Set("Mcp-Session-Id", sid)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp
}

// TestStackEscapedInitializeCapped: an initialize whose method is written
// with a JSON escape ("initiali\u007ae", which mcp-go reads as initialize)
// is an initialize to the session binding too: it takes a live-session
// slot (429 past the cap) and the session ID mcp-go issues is bound to the
// caller. The binding looked for the bytes "initialize" and, not finding
// them, let such a request through uncounted when it carried the caller's
// own session ID, and mcp-go allocated a new session each time: the
// per-principal cap did not hold (found in review). Without a session ID
// such an initialize was refused with 404.
func TestStackEscapedInitializeCapped(t *testing.T) {
	clock := &fakeClock{now: time.Now()}
	st := newStack(t, func(c *Config) {
		c.Sessions = SessionConfig{MaxPerPrincipal: 1, MaxTotal: 10, Now: clock.Now}
	})
	alice := st.token(t, map[string]any{"sub": "alice", "scope": "notes:read"})
	bob := st.token(t, map[string]any{"sub": "bob", "scope": "notes:read"})
	escaped := `initiali\u007ae`
	ping := `{"jsonrpc":"2.0","id":2,"method":"ping"}`

	resp := postInit(t, st.url, alice, "", "initialize")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	sid := resp.Header.Get("Mcp-Session-Id")
	require.Equal(t, http.StatusOK, rawSession(t, http.MethodPost, st.url, alice, sid, ping))

	// Alice is at her cap: no initialize, plain or escaped, with or
	// without her session ID, gets her a new session.
	for _, m := range []string{"initialize", escaped} {
		for _, s := range []string{"", sid} {
			resp := postInit(t, st.url, alice, s, m)
			assert.Equal(t, http.StatusTooManyRequests, resp.StatusCode, "%s with session %q", m, s)
			assert.Empty(t, resp.Header.Get("Mcp-Session-Id"), "%s with session %q", m, s)
		}
	}

	// An escaped initialize is served as one: its session is bound to bob.
	resp = postInit(t, st.url, bob, "", escaped)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	bsid := resp.Header.Get("Mcp-Session-Id")
	require.NotEmpty(t, bsid)
	assert.Equal(t, http.StatusOK, rawSession(t, http.MethodPost, st.url, bob, bsid, ping), "bob's session serves bob")
	assert.Equal(t, http.StatusNotFound, rawSession(t, http.MethodPost, st.url, alice, bsid, ping), "and no one else")
	assert.Equal(t, http.StatusTooManyRequests, postInit(t, st.url, bob, "", "initialize").StatusCode, "and counts against his cap")
}

// TestStackRefusalIDIsJSON: the edge's JSON-RPC refusals echo the request's
// id only when it is one JSON string or number. The id was echoed as Peek
// found it, and Peek does not validate a body mcp-go would refuse, so a
// body such as {"id":1"x":"y",…} got a response whose id was 1"x":"y",
// with members of the client's choosing, and {"id":"\q"} one that was not
// JSON at all (found in review). Such an id is now answered as null, as
// mcp-go answers a body it cannot parse.
func TestStackRefusalIDIsJSON(t *testing.T) {
	st := newStack(t, nil)
	tok := st.token(t, map[string]any{"sub": "bob", "scope": "notes:read"})
	for _, era := range eras {
		t.Run(era, func(t *testing.T) {
			for _, tc := range []struct{ id, want string }{
				{`7`, `7`},
				{`"a-7"`, `"a-7"`},
				{`-1.5e3`, `-1.5e3`},
				{`1"x":"y"`, `null`},
				{`1"injected":true`, `null`},
				{`"\q"`, `null`},
				{`01`, `null`},
				{`-`, `null`},
			} {
				body := `{"jsonrpc":"2.0","id":` + tc.id + `,"method":"future/method","params":{}}`
				_, got := postRPC(t, st, tok, era, "", "future/method", body)
				assert.True(t, json.Valid([]byte(got)), "id %s: %s", tc.id, got)
				assert.JSONEq(t, `{"jsonrpc":"2.0","id":`+tc.want+`,"error":{"code":-32601,"message":"method not found"}}`, got, "id %s", tc.id)
			}
		})
	}
}
