package transport

import (
	"net/http"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestStackSessionRefusalAudited: a request the session binding refuses —
// another principal's session ID, a forged one, one its owner ended, two
// of them — is audited as session_rejected with decision deny, a reason
// and the caller who tried, in both eras (a 2026-07-28 request naming a
// session is checked too). Before, the trail held only an http_request
// with a status, no decision and no reason: a hijack attempt read like a
// plain 404.
func TestStackSessionRefusalAudited(t *testing.T) {
	st := newStack(t, nil)
	bob := st.token(t, map[string]any{"sub": "bob", "scope": "notes:read"})
	mallory := st.token(t, map[string]any{"sub": "mallory", "scope": "notes:read"})
	c, err := eraClient(t, st.url, bob, mcp.ProtocolVersion20251125)
	require.NoError(t, err)
	bobs := c.GetSessionId()
	require.NotEmpty(t, bobs)
	ended, err := eraClient(t, st.url, bob, mcp.ProtocolVersion20251125)
	require.NoError(t, err)
	endedID := ended.GetSessionId()
	del, err := http.NewRequest(http.MethodDelete, st.url, nil)
	require.NoError(t, err)
	del.Header.Set("Authorization", "Bearer "+bob)
	del.Header.Set("Mcp-Session-Id", endedID)
	resp, err := http.DefaultClient.Do(del)
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "the owner ends the session")

	send := func(era, token string, sids ...string) int {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, st.url, strings.NewReader(rpcBody(era, "tools/list")))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set(mcp.HeaderProtocolVersion, era)
		if era == mcp.ProtocolVersion20260728 {
			req.Header.Set(mcp.HeaderMethod, "tools/list")
		}
		for _, sid := range sids {
			req.Header.Add("Mcp-Session-Id", sid)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	want := map[string]int{}
	for _, era := range eras {
		assert.Equal(t, http.StatusNotFound, send(era, mallory, bobs), era)
		assert.Equal(t, http.StatusNotFound, send(era, mallory, "mcp-session-forged"), era)
		assert.Equal(t, http.StatusNotFound, send(era, bob, endedID), era)
		assert.Equal(t, http.StatusBadRequest, send(era, bob, bobs, bobs), era)
		want["mallory:session_unknown"] += 2
		want["bob:session_terminated"]++
		want["bob:multiple_session_ids"]++
	}
	assert.Equal(t, http.StatusOK, send(mcp.ProtocolVersion20251125, bob, bobs), "the owner is served")

	require.NoError(t, st.rec.Close())
	got := map[string]int{}
	for _, e := range auditEvents(t, st) {
		if e["kind"] != "session_rejected" {
			continue
		}
		assert.Equal(t, "deny", e["decision"], e)
		assert.Equal(t, "acme", e["tenant"], e)
		got[e["subject"].(string)+":"+e["reason"].(string)]++
	}
	assert.Equal(t, want, got)
	assert.NotContains(t, st.audit.String(), bob)
	assert.NotContains(t, st.audit.String(), mallory)
}
