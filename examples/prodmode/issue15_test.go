package main

import (
	"bufio"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/auth/authtest"
	"github.com/mcpguard/mcpguard/transport"
)

// eraHeaders makes a raw request one of era's: stateless with Mcp-Method
// for 2026-07-28, in the session sid for 2025-11-25.
func eraHeaders(era, sid, method string) func(*http.Request) {
	return func(r *http.Request) {
		r.Header.Set(mcp.HeaderProtocolVersion, era)
		if era == mcp.ProtocolVersion20260728 {
			r.Header.Set(mcp.HeaderMethod, method)
		} else if sid != "" {
			r.Header.Set("Mcp-Session-Id", sid)
		}
	}
}

// session2025 opens a 2025-11-25 session for token with raw requests and
// returns its ID.
func session2025(t *testing.T, in *instance, token string) string {
	t.Helper()
	v := func(r *http.Request) { r.Header.Set(mcp.HeaderProtocolVersion, mcp.ProtocolVersion20251125) }
	r := in.post(t, token, `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"`+mcp.ProtocolVersion20251125+
		`","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`, v)
	require.Equal(t, http.StatusOK, r.status, r.body)
	sid := r.header.Get("Mcp-Session-Id")
	require.NotEmpty(t, sid)
	r = in.post(t, token, `{"jsonrpc":"2.0","method":"notifications/initialized"}`, v, func(r *http.Request) { r.Header.Set("Mcp-Session-Id", sid) })
	require.Equal(t, http.StatusAccepted, r.status, r.body)
	return sid
}

// eraListBody is a tools/list of era.
func eraListBody(era string) string {
	if era == mcp.ProtocolVersion20260728 {
		return `{"jsonrpc":"2.0","id":3,"method":"tools/list","params":{"_meta":{"` + mcp.MetaKeyProtocolVersion + `":"` + era +
			`","` + mcp.MetaKeyClientInfo + `":{"name":"t","version":"1"},"` + mcp.MetaKeyClientCapabilities + `":{}}}}`
	}
	return `{"jsonrpc":"2.0","id":3,"method":"tools/list"}`
}

// TestIssue15RFC6750Answers checks issue 15's RFC-exact answers (item 7)
// on the prodmode binary as a client sees them, in both eras: the
// oversized token, the query-only token, the ambiguous requests (a second
// token in the query or in a form body), a scope string split on NBSP and
// a key-bound JWT sent as a bearer token.
func TestIssue15RFC6750Answers(t *testing.T) {
	in := start(t, nil)
	good := in.token(t, map[string]any{"scope": "notes:read"})
	other := in.token(t, map[string]any{"sub": "mallory", "scope": "notes:read notes:write"})
	huge, err := in.idp.MintOversized(map[string]any{"aud": in.url, "tenant_id": "acme"}, 20<<10)
	require.NoError(t, err)
	k, err := authtest.NewDPoPKey("ES256")
	require.NoError(t, err)
	bound, err := in.idp.MintBound(map[string]any{"aud": in.url, "tenant_id": "acme", "sub": "alice", "scope": "notes:read"}, k)
	require.NoError(t, err)
	in.minted = append(in.minted, huge, bound)
	meta := `Bearer resource_metadata="` + strings.TrimSuffix(in.url, "/mcp") + `/.well-known/oauth-protected-resource/mcp"`
	ambiguous := meta + `, error="invalid_request", error_description="malformed bearer request"`

	sid := session2025(t, in, good)
	for _, era := range []string{mcp.ProtocolVersion20251125, mcp.ProtocolVersion20260728} {
		tests := []struct {
			name, token, body string
			mod               func(*http.Request)
			status            int
			chal              string
		}{
			// prodmode names the scope to connect with on every 401.
			{name: "oversized well-formed token", token: huge, status: 401,
				chal: meta + `, error="invalid_token", error_description="the access token is too large", scope="notes:read"`},
			{name: "token only in the query", mod: func(r *http.Request) { r.URL.RawQuery = "access_token=" + good }, status: 401, chal: meta + `, scope="notes:read"`},
			{name: "header and query token", token: good, mod: func(r *http.Request) { r.URL.RawQuery = "access_token=" + other }, status: 400, chal: ambiguous},
			{name: "header and form-body token", token: good, body: "access_token=" + other,
				mod: func(r *http.Request) { r.Header.Set("Content-Type", "application/x-www-form-urlencoded") }, status: 400, chal: ambiguous},
			{name: "key-bound JWT as bearer", token: bound, status: 401},
			{name: "the good token alone", token: good, status: 200},
		}
		for _, tt := range tests {
			t.Run(era+"/"+tt.name, func(t *testing.T) {
				body := tt.body
				if body == "" {
					body = eraListBody(era)
				}
				mods := []func(*http.Request){eraHeaders(era, sid, "tools/list")}
				if tt.mod != nil {
					mods = append(mods, tt.mod)
				}
				r := in.post(t, tt.token, body, mods...)
				assert.Equal(t, tt.status, r.status, r.body)
				if tt.chal != "" {
					assert.Equal(t, tt.chal, r.header.Get("WWW-Authenticate"))
				}
				if tt.token == bound {
					assert.Contains(t, r.header.Get("WWW-Authenticate"), `error="invalid_token"`)
				}
			})
		}
	}

	// NBSP is no scope separator (RFC 6749 §3.3): this token holds one odd
	// scope, neither notes:read nor notes:write.
	nbsp := in.token(t, map[string]any{"sub": "nina", "scope": "notes:read\u00a0notes:write"})
	r := in.call(t, nbsp, "notes_write", map[string]any{"key": "k", "text": "v"})
	assert.NotEqual(t, http.StatusOK, r.status, r.body)
	assert.NotContains(t, r.body, `"isError":false`)

	require.NoError(t, in.stop())
	out := in.stderr.String()
	for _, tok := range in.minted {
		for i := 0; i+16 <= len(tok); i += 8 {
			require.NotContains(t, out, tok[i:i+16], "a token fragment reached stderr")
		}
	}
}

// TestIssue15RefusalsSayWhy checks item 8 on the binary: a step-up 403
// names the missing scope in error_description and in scope, its audit
// event records the tool, and a rate-limit refusal is audited as
// rate_limited naming the limit that refused, with the caller — in both
// eras.
func TestIssue15RefusalsSayWhy(t *testing.T) {
	in := start(t, map[string]*string{"MCPGUARD_RATE_LIMIT": ptr("1")}) // burst 2
	reader := in.token(t, map[string]any{"sub": "bob", "scope": "notes:read"})
	r := in.call(t, reader, "notes_write", map[string]any{"key": "k", "text": "v"})
	require.Equal(t, http.StatusForbidden, r.status, r.body)
	assert.Contains(t, r.header.Get("WWW-Authenticate"), `scope="notes:write"`)
	var body struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.body), &body), r.body)
	assert.Equal(t, "insufficient_scope", body.Error)
	assert.Contains(t, body.Description, "notes:write")

	for _, era := range []string{mcp.ProtocolVersion20251125, mcp.ProtocolVersion20260728} {
		sub := "carol-" + era
		tok := in.token(t, map[string]any{"sub": sub, "scope": "notes:read"})
		sid := ""
		if era == mcp.ProtocolVersion20251125 {
			sid = session2025(t, in, tok)
		}
		limited := false
		for range 20 {
			if in.post(t, tok, eraListBody(era), eraHeaders(era, sid, "tools/list")).status == http.StatusTooManyRequests {
				limited = true
				break
			}
		}
		require.True(t, limited, era)
	}
	require.NoError(t, in.stop())
	var stepUp, limitedEvents int
	subjects := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(in.stderr.String()), "\n") {
		var ev map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &ev), line)
		switch {
		case ev["kind"] == "access_denied" && ev["reason"] == "insufficient_scope":
			stepUp++
			assert.Equal(t, "notes_write", ev["tool"], line)
			assert.Equal(t, "bob", ev["subject"], line)
		case ev["kind"] == "rate_limited":
			limitedEvents++
			assert.Equal(t, "deny", ev["decision"], line)
			assert.Equal(t, "rate_limited", ev["reason"], line)
			assert.Equal(t, "http", ev["limit"], line, "the refusal names the per-caller limit")
			assert.Equal(t, "acme", ev["tenant"], line)
			if s, ok := ev["subject"].(string); ok {
				subjects[s] = true
			}
		}
	}
	assert.Equal(t, 1, stepUp)
	assert.GreaterOrEqual(t, limitedEvents, 2)
	assert.True(t, subjects["carol-"+mcp.ProtocolVersion20251125] && subjects["carol-"+mcp.ProtocolVersion20260728], "both eras' refusals carry the caller: %v", subjects)
}

// TestIssue15SessionCap checks item 4 on the binary: one principal's live
// 2025-11-25 sessions are capped (transport.DefaultMaxSessionsPerPrincipal);
// past the cap initialize answers 429 with Retry-After and is audited; a
// DELETE frees a slot; another principal and stateless 2026-07-28
// requests are not affected.
func TestIssue15SessionCap(t *testing.T) {
	in := start(t, map[string]*string{"MCPGUARD_RATE_LIMIT": ptr("100000")})
	alice := in.token(t, map[string]any{"scope": "notes:read"})
	v := func(r *http.Request) { r.Header.Set(mcp.HeaderProtocolVersion, mcp.ProtocolVersion20251125) }
	initBody := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"` + mcp.ProtocolVersion20251125 +
		`","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`
	var sids []string
	for range transport.DefaultMaxSessionsPerPrincipal {
		sids = append(sids, session2025(t, in, alice))
	}
	r := in.post(t, alice, initBody, v)
	require.Equal(t, http.StatusTooManyRequests, r.status, r.body)
	assert.Regexp(t, `^[1-9][0-9]*$`, r.header.Get("Retry-After"))
	assert.Empty(t, r.header.Get("Mcp-Session-Id"))

	bob := in.token(t, map[string]any{"sub": "bob", "scope": "notes:read"})
	session2025(t, in, bob)
	assert.Equal(t, http.StatusOK, in.call(t, alice, "whoami", nil).status, "stateless calls need no session slot")

	req, err := http.NewRequest(http.MethodDelete, in.url, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+alice)
	req.Header.Set("Mcp-Session-Id", sids[0])
	req.Header.Set(mcp.HeaderProtocolVersion, mcp.ProtocolVersion20251125)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	session2025(t, in, alice) // the freed slot

	require.NoError(t, in.stop())
	assert.Regexp(t, `"kind":"rate_limited"[^\n]*"subject":"alice"[^\n]*"reason":"session_limit"[^\n]*"status":429`, in.stderr.String())
}

// TestIssue15StuckStderrDoesNotHang checks item 5 on the real process: with
// stderr a pipe nobody reads (a stuck log collector), requests are still
// answered once the pipe is full, and SIGTERM still ends the process — the
// audit recorder gives up on what it cannot write.
func TestIssue15StuckStderrDoesNotHang(t *testing.T) {
	exe, err := os.Executable()
	require.NoError(t, err)
	idp := authtest.NewServer(t)
	warm, err := http.Get(idp.DiscoveryURL()) // see TestMainExitStatus
	require.NoError(t, err)
	_ = warm.Body.Close()

	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = []string{"PRODMODE_TEST_MAIN=1", "PATH=" + os.Getenv("PATH"), "MCPGUARD_ADDR=127.0.0.1:0", "MCPGUARD_ISSUER=" + idp.Issuer(), "MCPGUARD_RATE_LIMIT=100000"}
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	pr, pw, err := os.Pipe() // the read end is never read
	require.NoError(t, err)
	t.Cleanup(func() { _ = pr.Close() })
	cmd.Stderr = pw
	require.NoError(t, cmd.Start())
	_ = pw.Close()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	require.NoError(t, err)
	url := strings.TrimSpace(strings.TrimPrefix(line, "listening on "))

	// Each refused request writes an audit line of about 300 bytes: 2000 of
	// them fill a 64 KiB pipe several times over.
	client := &http.Client{Timeout: 10 * time.Second}
	long := strings.Repeat("x", 100)
	for i := range 2000 {
		req, err := http.NewRequest(http.MethodPost, url+"?pad="+long, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"ping"}`))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		require.NoError(t, err, "request %d hung behind the stuck stderr", i)
		_ = resp.Body.Close()
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	}
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done: // the exit status may report unwritten events; it must end
	case <-time.After(30 * time.Second):
		t.Fatal("SIGTERM did not end the process while its stderr was stuck")
	}
}
