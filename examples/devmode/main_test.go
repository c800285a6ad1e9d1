package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMain(m *testing.M) {
	if os.Getenv("DEVMODE_TEST_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestRefusesNonLoopback(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:8080", ":8080", "[::]:8080", "192.0.2.10:8080", "example.com:8080", "nonsense"} {
		t.Run(addr, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), func(k string) string {
				return map[string]string{"MCPGUARD_ADDR": addr}[k]
			}, &stdout, &stderr)
			require.Error(t, err)
			assert.Contains(t, err.Error(), "MCPGUARD_ADDR")
			if addr != "nonsense" {
				assert.Contains(t, err.Error(), "loopback")
			}
			assert.Empty(t, stdout.String())
		})
	}

	// The real main exits 1 and says why.
	exe, err := os.Executable()
	require.NoError(t, err)
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = []string{"DEVMODE_TEST_MAIN=1", "MCPGUARD_ADDR=0.0.0.0:8080"}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit)
	assert.Equal(t, 1, exit.ExitCode())
	assert.Contains(t, stderr.String(), "MCPGUARD_ADDR")
	assert.Contains(t, stderr.String(), "not loopback")
	assert.Empty(t, out)
}

func TestServes(t *testing.T) {
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, func(k string) string { return map[string]string{"MCPGUARD_ADDR": "127.0.0.1:0"}[k] }, stdout, stderr)
	}()
	var url string
	require.Eventually(t, func() bool {
		line, _, ok := strings.Cut(stdout.String(), "\n")
		url = strings.TrimPrefix(line, "listening on ")
		return ok
	}, 10*time.Second, 10*time.Millisecond)
	require.Regexp(t, `^http://127\.0\.0\.1:\d+/mcp$`, url)

	// Any MCP client works without a token, as the developer.
	c, err := client.NewStreamableHttpClient(url)
	require.NoError(t, err)
	bg := context.Background()
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	init.Params.ClientInfo = mcp.Implementation{Name: "devmode-test", Version: "1"}
	_, err = c.Initialize(bg, init)
	require.NoError(t, err)
	call := func(name string, args map[string]any) string {
		res, err := c.CallTool(bg, mcp.CallToolRequest{Params: mcp.CallToolParams{Name: name, Arguments: args}})
		require.NoError(t, err)
		require.False(t, res.IsError, name)
		return res.Content[0].(mcp.TextContent).Text
	}
	assert.Equal(t, `{"subject":"developer","tenant":"dev","client_id":"mcpguard-dev","scopes":["notes:read","notes:write"]}`, call("whoami", nil))
	call("notes_write", map[string]any{"key": "todo", "text": "try prodmode"})
	assert.Equal(t, "try prodmode", call("notes_read", map[string]any{"key": "todo"}))
	assert.Equal(t, `["todo"]`, call("notes_list", nil))
	require.NoError(t, c.Close())

	// No protected resource metadata, and DNS rebinding is still refused.
	base := strings.TrimSuffix(url, "/mcp")
	resp, err := http.Get(base + "/.well-known/oauth-protected-resource/mcp")
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"ping"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Host = "attacker.example"
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)

	cancel()
	require.NoError(t, <-done)
	// stderr: the dev-mode warning and the audit events, all JSON lines.
	out := stderr.String()
	sc := bufio.NewScanner(strings.NewReader(out))
	var sawWarning, sawCall bool
	for sc.Scan() {
		var ev map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &ev), sc.Text())
		sawWarning = sawWarning || strings.Contains(sc.Text(), "DEV MODE")
		sawCall = sawCall || (ev["kind"] == "tool_call" && ev["subject"] == "developer" && ev["auth_kind"] == "dev")
	}
	assert.True(t, sawWarning, out)
	assert.True(t, sawCall, out)
}
