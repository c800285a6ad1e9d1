package main

import (
	"context"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	mcptransport "github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/auth/authtest"
)

// TestMain runs main itself when a test re-executes this binary as the
// server (runServer).
func TestMain(m *testing.M) {
	if os.Getenv("MCPGUARD_README_RUN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// The README's "Add it to your server" snippet is this command's main, line
// for line, and at most 30 lines.
func TestReadmeSnippet(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	text := string(readme)
	start := strings.Index(text, "## Add it to your server")
	require.NotEqual(t, -1, start, "README section")
	text = text[start:]
	open := strings.Index(text, "```go\n")
	require.NotEqual(t, -1, open)
	text = text[open+len("```go\n"):]
	snippet := text[:strings.Index(text, "```")]

	src, err := os.ReadFile("main.go")
	require.NoError(t, err)
	s := string(src)
	i := strings.Index(s, "func main() {\n")
	require.NotEqual(t, -1, i)
	j := strings.Index(s[i:], "\n}\n")
	require.NotEqual(t, -1, j)
	mainFunc := s[i : i+j+3]
	assert.Equal(t, mainFunc, snippet, "README snippet and examples/readme/main.go differ")
	assert.LessOrEqual(t, strings.Count(snippet, "\n"), 30, "the common wiring fits in 30 lines")
}

// runServer starts this binary as the README server with env, and waits
// until it listens on addr.
func runServer(t *testing.T, addr string, env ...string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), append([]string{"MCPGUARD_README_RUN=1", "ADDR=" + addr}, env...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			_ = c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("server did not listen on %s:\n%s", addr, stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

func call(t *testing.T, url, token, tool string) (string, bool, error) {
	t.Helper()
	var opts []mcptransport.StreamableHTTPCOption
	if token != "" {
		opts = append(opts, mcptransport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + token}))
	}
	c, err := client.NewStreamableHttpClient(url, opts...)
	require.NoError(t, err)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	init.Params.ClientInfo = mcp.Implementation{Name: "readme-test", Version: "1"}
	if _, err := c.Initialize(ctx, init); err != nil {
		return "", false, err
	}
	res, err := c.CallTool(ctx, mcp.CallToolRequest{Params: mcp.CallToolParams{Name: tool}})
	if err != nil {
		return "", false, err
	}
	return res.Content[0].(mcp.TextContent).Text, res.IsError, nil
}

// The snippet runs: in prod mode against a live IdP (scopes per tool, the
// org_id tenant), and in dev mode without tokens.
func TestReadmeRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the README server as a process")
	}
	t.Run("prod", func(t *testing.T) {
		idp := authtest.NewServer(t)
		addr := freeAddr(t)
		resource := "http://" + addr + "/mcp"
		runServer(t, addr, "RESOURCE="+resource, "ISSUER="+idp.Issuer())

		_, _, err := call(t, resource, "", "notes_read")
		require.Error(t, err, "no token, no service")
		reader := idp.MustMint(map[string]any{"aud": resource, "sub": "alice", "org_id": "org_acme", "scope": "notes:read"})
		text, isErr, err := call(t, resource, reader, "notes_read")
		require.NoError(t, err)
		assert.False(t, isErr)
		assert.Equal(t, "notes of alice in org_acme", text)
		_, _, err = call(t, resource, reader, "notes_write")
		assert.Error(t, err, "notes_write needs notes:write")
		writer := idp.MustMint(map[string]any{"aud": resource, "sub": "bob", "org_id": "org_acme", "scope": "notes:write"})
		text, _, err = call(t, resource, writer, "notes_write")
		require.NoError(t, err)
		assert.Equal(t, "written", text)
	})
	t.Run("dev", func(t *testing.T) {
		addr := freeAddr(t)
		runServer(t, addr, "DEV=1")
		text, isErr, err := call(t, "http://"+addr+"/mcp", "", "notes_read")
		require.NoError(t, err)
		assert.False(t, isErr)
		assert.Equal(t, "notes of dev in dev", text)
	})
}
