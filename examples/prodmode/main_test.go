package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	mcptransport "github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/auth/authtest"
)

// testSealKey is a MCPGUARD_SEAL_KEY for tests: 32 bytes in base64.
const testSealKey = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="

// TestMain lets a test run the real main in a child process, to check the
// exit status and the streams a user sees.
func TestMain(m *testing.M) {
	if os.Getenv("PRODMODE_TEST_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// syncBuffer collects output written by the server's goroutines.
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

// lineSignal is a stdout that reports its first line.
type lineSignal struct {
	syncBuffer
	once  sync.Once
	first chan string
}

func newLineSignal() *lineSignal { return &lineSignal{first: make(chan string, 1)} }

func (l *lineSignal) Write(p []byte) (int, error) {
	n, err := l.syncBuffer.Write(p)
	if line, _, ok := strings.Cut(l.String(), "\n"); ok {
		l.once.Do(func() { l.first <- line })
	}
	return n, err
}

// instance is a prodmode server run in-process.
type instance struct {
	url    string
	idp    *authtest.Server
	stdout *lineSignal
	stderr *syncBuffer
	minted []string
	stop   func() error // stops the server and returns run's result
}

// start runs prodmode against a fresh authtest IdP on a random port, with
// env laid over the defaults (a nil value removes a variable).
func start(t *testing.T, env map[string]*string) *instance {
	t.Helper()
	return startWith(t, authtest.NewServer(t), env)
}

// startWith is start with a given IdP.
func startWith(t *testing.T, idp *authtest.Server, env map[string]*string) *instance {
	t.Helper()
	vars := map[string]string{"MCPGUARD_ADDR": "127.0.0.1:0", "MCPGUARD_ISSUER": idp.Issuer()}
	for k, v := range env {
		if v == nil {
			delete(vars, k)
		} else {
			vars[k] = *v
		}
	}
	in := &instance{idp: idp, stdout: newLineSignal(), stderr: &syncBuffer{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, func(k string) string { return vars[k] }, in.stdout, in.stderr) }()
	var once sync.Once
	var result error
	in.stop = func() error {
		once.Do(func() { cancel(); result = <-done })
		return result
	}
	t.Cleanup(func() { _ = in.stop() })
	select {
	case line := <-in.stdout.first:
		require.True(t, strings.HasPrefix(line, "listening on http://127.0.0.1:"), line)
		in.url = strings.TrimPrefix(line, "listening on ")
	case err := <-done:
		t.Fatalf("run returned before listening: %v\nstderr:\n%s", err, in.stderr)
	case <-time.After(20 * time.Second):
		t.Fatal("no listening line")
	}
	return in
}

func ptr(s string) *string { return &s }

// token mints a token for the instance: alice of acme with no scope unless
// claims say otherwise.
func (in *instance) token(t *testing.T, claims map[string]any) string {
	t.Helper()
	c := map[string]any{"aud": in.url, "sub": "alice", "tenant_id": "acme"}
	for k, v := range claims {
		c[k] = v
	}
	tok := in.idp.MustMint(c)
	in.minted = append(in.minted, tok)
	return tok
}

// response is what a raw call got.
type response struct {
	status int
	header http.Header
	body   string
}

// post sends one JSON-RPC request as a 2026-07-28 stateless request.
func (in *instance) post(t *testing.T, token, body string, mod ...func(*http.Request)) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, in.url, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set(mcp.HeaderProtocolVersion, mcp.ProtocolVersion20260728)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for _, m := range mod {
		m(req)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return response{resp.StatusCode, resp.Header, string(b)}
}

func callBody(tool string, args map[string]any) string {
	b, _ := json.Marshal(map[string]any{
		"jsonrpc": "2.0", "id": 1, "method": "tools/call",
		"params": map[string]any{
			"name": tool, "arguments": args,
			"_meta": map[string]any{
				mcp.MetaKeyProtocolVersion:    mcp.ProtocolVersion20260728,
				mcp.MetaKeyClientInfo:         map[string]any{"name": "prodmode-test", "version": "1"},
				mcp.MetaKeyClientCapabilities: map[string]any{},
			},
		},
	})
	return string(b)
}

// call makes a stateless tools/call and returns the HTTP response.
func (in *instance) call(t *testing.T, token, tool string, args map[string]any) response {
	t.Helper()
	return in.post(t, token, callBody(tool, args), func(r *http.Request) {
		r.Header.Set(mcp.HeaderMethod, "tools/call")
		r.Header.Set(mcp.HeaderName, tool)
	})
}

// toolText calls a tool that must succeed at the HTTP level and returns its
// text and whether it was a tool error.
func (in *instance) toolText(t *testing.T, token, tool string, args map[string]any) (string, bool) {
	t.Helper()
	r := in.call(t, token, tool, args)
	require.Equal(t, http.StatusOK, r.status, r.body)
	var msg struct {
		Result *mcp.CallToolResult `json:"result"`
		Error  *struct{ Message string }
	}
	require.NoError(t, json.Unmarshal([]byte(sseData(r.body)), &msg), r.body)
	require.Nil(t, msg.Error, r.body)
	require.NotNil(t, msg.Result, r.body)
	require.Len(t, msg.Result.Content, 1)
	return msg.Result.Content[0].(mcp.TextContent).Text, msg.Result.IsError
}

// sseData returns the JSON of a response that may be an SSE stream.
func sseData(body string) string {
	if !strings.HasPrefix(body, "event:") && !strings.HasPrefix(body, "data:") {
		return body
	}
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		if d, ok := strings.CutPrefix(sc.Text(), "data:"); ok {
			return strings.TrimSpace(d)
		}
	}
	return body
}

func TestConfigErrors(t *testing.T) {
	idp := authtest.NewServer(t)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer busy.Close()
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	deadURL := "http://" + dead.Addr().String()
	require.NoError(t, dead.Close()) // nothing listens there now

	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"no issuer", map[string]string{"MCPGUARD_ISSUER": ""}, "MCPGUARD_ISSUER is required"},
		{"issuer not a URL", map[string]string{"MCPGUARD_ISSUER": "acme"}, "MCPGUARD_ISSUER"},
		{"issuer plain http off loopback", map[string]string{"MCPGUARD_ISSUER": "http://idp.example.com"}, "MCPGUARD_ISSUER"},
		{"issuer unreachable", map[string]string{"MCPGUARD_ISSUER": deadURL}, "MCPGUARD_ISSUER"},
		{"issuer with query", map[string]string{"MCPGUARD_ISSUER": idp.Issuer() + "?x=1"}, "MCPGUARD_ISSUER"},
		{"jwks plain http off loopback", map[string]string{"MCPGUARD_JWKS_URL": "http://keys.example.com/jwks"}, "MCPGUARD_JWKS_URL"},
		{"jwks unreachable", map[string]string{"MCPGUARD_JWKS_URL": deadURL + "/jwks"}, "MCPGUARD_JWKS_URL"},
		{"resource not http", map[string]string{"MCPGUARD_RESOURCE": "ftp://127.0.0.1/mcp"}, "MCPGUARD_RESOURCE"},
		{"resource plain http off loopback", map[string]string{"MCPGUARD_RESOURCE": "http://mcp.example.com/mcp"}, "MCPGUARD_RESOURCE"},
		{"resource relative", map[string]string{"MCPGUARD_RESOURCE": "/mcp"}, "MCPGUARD_RESOURCE"},
		{"addr without port", map[string]string{"MCPGUARD_ADDR": "127.0.0.1"}, "MCPGUARD_ADDR"},
		{"addr bad port", map[string]string{"MCPGUARD_ADDR": "127.0.0.1:99999"}, "MCPGUARD_ADDR"},
		{"addr in use", map[string]string{"MCPGUARD_ADDR": busy.Addr().String()}, "MCPGUARD_ADDR"},
		{"all interfaces without resource", map[string]string{"MCPGUARD_ADDR": ":0"}, "MCPGUARD_RESOURCE is required"},
		{"public address without resource", map[string]string{"MCPGUARD_ADDR": "0.0.0.0:8080"}, "MCPGUARD_RESOURCE is required"},
		{"trusted proxy not an address", map[string]string{"MCPGUARD_TRUSTED_PROXIES": "10.0.0.0/8,proxy.example"}, "MCPGUARD_TRUSTED_PROXIES"},
		{"trusted proxy with a zone", map[string]string{"MCPGUARD_TRUSTED_PROXIES": "fe80::1%eth0"}, "MCPGUARD_TRUSTED_PROXIES"},
		{"public address, loopback http resource", map[string]string{"MCPGUARD_ADDR": "0.0.0.0:8080", "MCPGUARD_RESOURCE": "http://127.0.0.1:8080/mcp"}, "must be https"},
		{"all interfaces, loopback http resource", map[string]string{"MCPGUARD_ADDR": ":8080", "MCPGUARD_RESOURCE": "http://localhost:8080/mcp"}, "must be https"},
		{"audience with space", map[string]string{"MCPGUARD_AUDIENCE": "api://notes, a b"}, "MCPGUARD_AUDIENCE"},
		{"audience wildcard", map[string]string{"MCPGUARD_AUDIENCE": "api://notes,*"}, "MCPGUARD_AUDIENCE"},
		{"audience with a wildcard", map[string]string{"MCPGUARD_AUDIENCE": "api://*"}, "MCPGUARD_AUDIENCE"},
		{"tenant claim control char", map[string]string{"MCPGUARD_TENANT_CLAIM": "org\x01id"}, "MCPGUARD_TENANT_CLAIM"},
		{"rate zero", map[string]string{"MCPGUARD_RATE_LIMIT": "0"}, "MCPGUARD_RATE_LIMIT"},
		{"rate negative", map[string]string{"MCPGUARD_RATE_LIMIT": "-3"}, "MCPGUARD_RATE_LIMIT"},
		{"rate fraction", map[string]string{"MCPGUARD_RATE_LIMIT": "1.5"}, "MCPGUARD_RATE_LIMIT"},
		{"rate word", map[string]string{"MCPGUARD_RATE_LIMIT": "fast"}, "MCPGUARD_RATE_LIMIT"},
		{"rate huge", map[string]string{"MCPGUARD_RATE_LIMIT": "99999999999"}, "MCPGUARD_RATE_LIMIT"},
		{"redis without seal key", map[string]string{"MCPGUARD_REDIS_URL": "redis://127.0.0.1:1"}, "MCPGUARD_SEAL_KEY is required with MCPGUARD_REDIS_URL"},
		{"redis not a URL, password not echoed", map[string]string{"MCPGUARD_REDIS_URL": "http://user:hunter2secret@127.0.0.1:1", "MCPGUARD_SEAL_KEY": testSealKey}, "MCPGUARD_REDIS_URL: want redis://"},
		{"redis unreachable", map[string]string{"MCPGUARD_REDIS_URL": "redis://127.0.0.1:1", "MCPGUARD_SEAL_KEY": testSealKey}, "MCPGUARD_REDIS_URL: Redis at 127.0.0.1:1 does not answer"},
		{"seal key short", map[string]string{"MCPGUARD_SEAL_KEY": "c2hvcnQ="}, "MCPGUARD_SEAL_KEY: want 32 bytes"},
		{"revocation outage policy unknown", map[string]string{"MCPGUARD_REDIS_URL": "redis://127.0.0.1:1", "MCPGUARD_SEAL_KEY": testSealKey, "MCPGUARD_REVOCATION_ON_OUTAGE": "open"}, "MCPGUARD_REVOCATION_ON_OUTAGE: want closed (default) or degrade"},
		{"seal key not base64", map[string]string{"MCPGUARD_SEAL_KEY": "not base64!"}, "MCPGUARD_SEAL_KEY: not base64"},
		// A URL's userinfo (or query) may hold a password or a token: the
		// error names the variable and what is wrong, never the secret.
		{"issuer with user info, password not echoed", map[string]string{"MCPGUARD_ISSUER": "https://user:hunter2secret@idp.example.com"}, "MCPGUARD_ISSUER"},
		{"issuer token as user name, not echoed", map[string]string{"MCPGUARD_ISSUER": "https://hunter2secret@idp.example.com"}, "MCPGUARD_ISSUER"},
		{"issuer query, secret not echoed", map[string]string{"MCPGUARD_ISSUER": "https://idp.example.com?key=hunter2secret"}, "MCPGUARD_ISSUER"},
		{"jwks with user info, password not echoed", map[string]string{"MCPGUARD_JWKS_URL": "https://user:hunter2secret@keys.example.com/jwks"}, "MCPGUARD_JWKS_URL"},
		{"resource with user info, password not echoed", map[string]string{"MCPGUARD_RESOURCE": "https://user:hunter2secret@mcp.example.com/mcp"}, "MCPGUARD_RESOURCE"},
		{"resource off loopback with user info, password not echoed", map[string]string{"MCPGUARD_ADDR": "0.0.0.0:8080", "MCPGUARD_RESOURCE": "http://user:hunter2secret@127.0.0.1:8080/mcp"}, "MCPGUARD_RESOURCE"},
		{"downstream with user info, password not echoed", map[string]string{"MCPGUARD_DOWNSTREAM_URL": "http://user:hunter2secret@api.example.com/x", "MCPGUARD_CLIENT_ID": "x", "MCPGUARD_CLIENT_SECRET": "y"}, "MCPGUARD_DOWNSTREAM_URL"},
		{"otlp not http with user info, password not echoed", map[string]string{"MCPGUARD_OTLP_ENDPOINT": "ftp://user:hunter2secret@collector"}, "MCPGUARD_OTLP_ENDPOINT"},
		{"otlp with user info refused", map[string]string{"MCPGUARD_OTLP_ENDPOINT": "http://user:hunter2secret@127.0.0.1:4318/v1/traces"}, "MCPGUARD_OTLP_ENDPOINT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{"MCPGUARD_ADDR": "127.0.0.1:0", "MCPGUARD_ISSUER": idp.Issuer()}
			for k, v := range tt.env {
				env[k] = v
			}
			var stdout, stderr bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			err := run(ctx, func(k string) string { return env[k] }, &stdout, &stderr)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			assert.NotContains(t, err.Error(), "hunter2secret")
			assert.NotContains(t, err.Error(), testSealKey)
			assert.Empty(t, stdout.String(), "nothing may claim to listen")
		})
	}
}

// TestMainExitStatus runs the real main in a child process: a config
// mistake exits 1 with the variable named on stderr; a good config prints
// the listening line and exits 0 on SIGTERM.
func TestMainExitStatus(t *testing.T) {
	exe, err := os.Executable()
	require.NoError(t, err)
	idp := authtest.NewServer(t)
	// authtest sets its issuer after it starts serving; an in-process
	// request orders that write before the child's requests for the race
	// detector, which cannot see through another process.
	warm, err := http.Get(idp.DiscoveryURL())
	require.NoError(t, err)
	_ = warm.Body.Close()
	child := func(env ...string) *exec.Cmd {
		cmd := exec.Command(exe, "-test.run=^$")
		cmd.Env = append([]string{"PRODMODE_TEST_MAIN=1", "PATH=" + os.Getenv("PATH")}, env...)
		return cmd
	}

	cmd := child("MCPGUARD_ADDR=127.0.0.1:0")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit)
	assert.Equal(t, 1, exit.ExitCode())
	assert.Contains(t, stderr.String(), "MCPGUARD_ISSUER")
	assert.Empty(t, out)

	cmd = child("MCPGUARD_ADDR=127.0.0.1:0", "MCPGUARD_ISSUER="+idp.Issuer())
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = io.Discard
	require.NoError(t, cmd.Start())
	line, err := bufio.NewReader(stdout).ReadString('\n')
	require.NoError(t, err)
	assert.Regexp(t, `^listening on http://127\.0\.0\.1:\d+/mcp\n$`, line)
	url := strings.TrimSpace(strings.TrimPrefix(line, "listening on "))
	resp, err := http.Post(url, "application/json", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"ping"}`))
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, cmd.Wait(), "a clean stop exits 0")
}

func TestDiscovery(t *testing.T) {
	in := start(t, nil)
	base := strings.TrimSuffix(in.url, "/mcp")
	metaURL := base + "/.well-known/oauth-protected-resource/mcp"

	// No token: 401 pointing at the metadata, without an error code.
	r := in.post(t, "", `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`)
	assert.Equal(t, http.StatusUnauthorized, r.status)
	assert.Equal(t, `Bearer resource_metadata="`+metaURL+`", scope="notes:read"`, r.header.Get("WWW-Authenticate"), "no error code without a token; the scope to request first (MCP scope selection)")
	// A bad token: invalid_token.
	forged, err := in.idp.MintBadSignature(map[string]any{"aud": in.url, "tenant_id": "acme"})
	require.NoError(t, err)
	r = in.post(t, forged, `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`)
	assert.Equal(t, http.StatusUnauthorized, r.status)
	assert.Contains(t, r.header.Get("WWW-Authenticate"), `error="invalid_token"`)
	assert.Contains(t, r.header.Get("WWW-Authenticate"), `resource_metadata="`+metaURL+`"`)

	for _, u := range []string{metaURL, base + "/.well-known/oauth-protected-resource"} {
		resp, err := http.Get(u)
		require.NoError(t, err)
		var doc struct {
			Resource             string   `json:"resource"`
			AuthorizationServers []string `json:"authorization_servers"`
			ScopesSupported      []string `json:"scopes_supported"`
			BearerMethods        []string `json:"bearer_methods_supported"`
		}
		require.Equal(t, http.StatusOK, resp.StatusCode, u)
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&doc))
		_ = resp.Body.Close()
		assert.Equal(t, in.url, doc.Resource)
		assert.Equal(t, []string{in.idp.Issuer()}, doc.AuthorizationServers)
		assert.ElementsMatch(t, []string{"notes:read", "notes:write", "notes:admin"}, doc.ScopesSupported)
		assert.Equal(t, []string{"header"}, doc.BearerMethods)
	}
}

func TestToolScopes(t *testing.T) {
	in := start(t, nil)
	args := map[string]map[string]any{
		"whoami":        {},
		"notes_list":    {},
		"notes_summary": {},
		"notes_read":    {"key": "k"},
		"notes_write":   {"key": "k", "text": "v"},
	}
	tests := []struct {
		scope   string
		allowed []string
		denied  map[string]string // tool → scope named in the challenge
	}{
		{"", []string{"whoami"}, map[string]string{"notes_list": "notes:read", "notes_read": "notes:read", "notes_summary": "notes:read", "notes_write": "notes:write"}},
		{"notes:read", []string{"whoami", "notes_list", "notes_read", "notes_summary"}, map[string]string{"notes_write": "notes:write"}},
		{"notes:write", []string{"whoami", "notes_write"}, map[string]string{"notes_list": "notes:read", "notes_read": "notes:read", "notes_summary": "notes:read"}},
		{"notes:read notes:write", []string{"whoami", "notes_list", "notes_read", "notes_summary", "notes_write"}, nil},
	}
	for _, tt := range tests {
		t.Run("scope="+tt.scope, func(t *testing.T) {
			tok := in.token(t, map[string]any{"sub": "u-" + strings.ReplaceAll(tt.scope, " ", "+"), "scope": tt.scope})
			for _, tool := range tt.allowed {
				r := in.call(t, tok, tool, args[tool])
				assert.Equal(t, http.StatusOK, r.status, "%s: %s", tool, r.body)
			}
			for tool, scope := range tt.denied {
				r := in.call(t, tok, tool, args[tool])
				assert.Equal(t, http.StatusForbidden, r.status, tool)
				chal := r.header.Get("WWW-Authenticate")
				assert.Contains(t, chal, `error="insufficient_scope"`, tool)
				assert.Contains(t, chal, `scope="`+scope+`"`, tool)
			}
			// tools/list shows exactly the tools the caller may call.
			c := in.client(t, tok)
			res, err := c.ListTools(context.Background(), mcp.ListToolsRequest{})
			require.NoError(t, err)
			var names []string
			for _, tl := range res.Tools {
				names = append(names, tl.Name)
			}
			assert.ElementsMatch(t, tt.allowed, names)
		})
	}
}

// client is an initialized mcp-go client (a stateful session).
func (in *instance) client(t *testing.T, token string, opts ...mcptransport.StreamableHTTPCOption) *client.Client {
	t.Helper()
	opts = append(opts, mcptransport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + token}))
	c, err := client.NewStreamableHttpClient(in.url, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	init.Params.ClientInfo = mcp.Implementation{Name: "prodmode-test", Version: "1"}
	_, err = c.Initialize(context.Background(), init)
	require.NoError(t, err)
	return c
}

func TestWhoami(t *testing.T) {
	in := start(t, nil)
	tests := []struct {
		name   string
		claims map[string]any
		want   string
	}{
		{"scope string", map[string]any{"scope": "notes:read notes:write"},
			`{"subject":"alice","tenant":"acme","client_id":"mcp-client","scopes":["notes:read","notes:write"]}`},
		{"scp array", map[string]any{"sub": "bob", "tenant_id": "globex", "client_id": "okta-app", "scp": []string{"notes:read"}},
			`{"subject":"bob","tenant":"globex","client_id":"okta-app","scopes":["notes:read"]}`},
		{"no scopes", map[string]any{"sub": "carol"},
			`{"subject":"carol","tenant":"acme","client_id":"mcp-client","scopes":[]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text, isErr := in.toolText(t, in.token(t, tt.claims), "whoami", nil)
			assert.False(t, isErr)
			assert.JSONEq(t, tt.want, text)
			assert.Equal(t, tt.want, text, "the exact shape")
		})
	}
}

func TestTenantIsolation(t *testing.T) {
	in := start(t, nil)
	rw := "notes:read notes:write"
	alice := in.token(t, map[string]any{"sub": "alice", "tenant_id": "acme", "scope": rw})
	carol := in.token(t, map[string]any{"sub": "carol", "tenant_id": "acme", "scope": "notes:read"})
	bob := in.token(t, map[string]any{"sub": "bob", "tenant_id": "globex", "scope": rw})

	text, isErr := in.toolText(t, alice, "notes_write", map[string]any{"key": "plan", "text": "acme's secret plan"})
	require.False(t, isErr, text)
	text, isErr = in.toolText(t, carol, "notes_read", map[string]any{"key": "plan"})
	assert.False(t, isErr)
	assert.Equal(t, "acme's secret plan", text, "same tenant shares notes")

	text, isErr = in.toolText(t, bob, "notes_read", map[string]any{"key": "plan"})
	assert.True(t, isErr)
	assert.NotContains(t, text, "secret")
	text, _ = in.toolText(t, bob, "notes_list", nil)
	assert.Equal(t, "[]", text)
	// bob's own note of the same name does not touch acme's.
	_, isErr = in.toolText(t, bob, "notes_write", map[string]any{"key": "plan", "text": "globex plan"})
	require.False(t, isErr)
	text, _ = in.toolText(t, alice, "notes_read", map[string]any{"key": "plan"})
	assert.Equal(t, "acme's secret plan", text)
	text, _ = in.toolText(t, alice, "notes_list", nil)
	assert.Equal(t, `["plan"]`, text)

	// A token without a tenant is refused; a key cannot smuggle a tenant.
	noTenant := in.token(t, map[string]any{"tenant_id": nil, "scope": rw})
	assert.Equal(t, http.StatusForbidden, in.call(t, noTenant, "whoami", nil).status)
	_, isErr = in.toolText(t, bob, "notes_write", map[string]any{"key": "x:tenant:acme:notes:plan", "text": "overwrite?"})
	require.False(t, isErr)
	text, _ = in.toolText(t, alice, "notes_read", map[string]any{"key": "plan"})
	assert.Equal(t, "acme's secret plan", text)
}

func TestOptionalVariables(t *testing.T) {
	t.Run("MCPGUARD_AUDIENCE", func(t *testing.T) {
		in := start(t, map[string]*string{"MCPGUARD_AUDIENCE": ptr(" api://notes , 0f6c2c1e-app ")})
		for _, aud := range []any{"api://notes", "0f6c2c1e-app", []string{"other", "api://notes"}} {
			text, _ := in.toolText(t, in.token(t, map[string]any{"aud": aud}), "whoami", nil)
			assert.Contains(t, text, `"subject":"alice"`)
		}
		r := in.call(t, in.token(t, map[string]any{"aud": "https://other.example/mcp"}), "whoami", nil)
		assert.Equal(t, http.StatusUnauthorized, r.status)
	})
	t.Run("MCPGUARD_TENANT_CLAIM", func(t *testing.T) {
		in := start(t, map[string]*string{"MCPGUARD_TENANT_CLAIM": ptr("org.id")})
		text, _ := in.toolText(t, in.token(t, map[string]any{"tenant_id": nil, "org": map[string]any{"id": "initech"}}), "whoami", nil)
		assert.Contains(t, text, `"tenant":"initech"`)
		assert.Equal(t, http.StatusForbidden, in.call(t, in.token(t, nil), "whoami", nil).status, "tenant_id is not read any more")
	})
	t.Run("MCPGUARD_JWKS_URL", func(t *testing.T) {
		// An issuer whose metadata does not say where its keys are.
		idp := authtest.NewServer(t)
		idp.EditMetadata(func(doc map[string]any) { delete(doc, "jwks_uri") })
		err := run(context.Background(), func(k string) string {
			return map[string]string{"MCPGUARD_ADDR": "127.0.0.1:0", "MCPGUARD_ISSUER": idp.Issuer()}[k]
		}, io.Discard, io.Discard)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "MCPGUARD_ISSUER")

		in := startWith(t, idp, map[string]*string{"MCPGUARD_JWKS_URL": ptr(idp.JWKSURL())})
		text, _ := in.toolText(t, in.token(t, nil), "whoami", nil)
		assert.Contains(t, text, `"subject":"alice"`)
	})
	t.Run("MCPGUARD_RESOURCE", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addr := ln.Addr().String()
		require.NoError(t, ln.Close())
		resource := "http://" + addr + "/api/notes/mcp"
		in := start(t, map[string]*string{"MCPGUARD_ADDR": ptr(addr), "MCPGUARD_RESOURCE": ptr(resource)})
		assert.Equal(t, resource, in.url)
		text, _ := in.toolText(t, in.token(t, nil), "whoami", nil)
		assert.Contains(t, text, `"subject":"alice"`)
		resp, err := http.Get("http://" + addr + "/.well-known/oauth-protected-resource/api/notes/mcp")
		require.NoError(t, err)
		_ = resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode)
	})
}

// untilLimited calls whoami with tok until it gets 429 and returns how
// many calls that took and the 429.
func (in *instance) untilLimited(t *testing.T, tok string) (int, response) {
	t.Helper()
	for i := 1; i <= 50; i++ {
		r := in.call(t, tok, "whoami", nil)
		if r.status == http.StatusTooManyRequests {
			return i, r
		}
	}
	t.Fatal("no 429 after 50 requests")
	return 0, response{}
}

// TestTrustedProxies: behind a reverse proxy every client's peer is the
// proxy, so the failed-login budget was one for all of them. With
// MCPGUARD_TRUSTED_PROXIES naming the proxy, each client named in
// X-Forwarded-For has its own; without it, the header is ignored.
func TestTrustedProxies(t *testing.T) {
	failAs := func(in *instance, client string) int {
		return in.post(t, "not-a-jwt", callBody("whoami", nil), func(r *http.Request) {
			r.Header.Set(mcp.HeaderMethod, "tools/call")
			r.Header.Set(mcp.HeaderName, "whoami")
			r.Header.Set("X-Forwarded-For", client)
		}).status
	}
	flood := func(in *instance, client string) {
		for range 50 {
			if failAs(in, client) == http.StatusTooManyRequests {
				return
			}
		}
		t.Fatal("no 429 after 50 failures")
	}
	behind := start(t, map[string]*string{"MCPGUARD_TRUSTED_PROXIES": ptr("127.0.0.1, ::1/128"), "MCPGUARD_RATE_LIMIT": ptr("1")})
	flood(behind, "203.0.113.1")
	assert.Equal(t, http.StatusUnauthorized, failAs(behind, "203.0.113.2"), "another client behind the proxy has its own budget")
	assert.Equal(t, http.StatusTooManyRequests, failAs(behind, "203.0.113.1"))

	direct := start(t, map[string]*string{"MCPGUARD_RATE_LIMIT": ptr("1")})
	flood(direct, "203.0.113.1")
	assert.Equal(t, http.StatusTooManyRequests, failAs(direct, "203.0.113.2"), "without a trusted proxy the header names no one")
}

func TestRateLimit(t *testing.T) {
	in := start(t, map[string]*string{"MCPGUARD_RATE_LIMIT": ptr("2")}) // burst 4
	alice := in.token(t, map[string]any{"sub": "alice"})
	bob := in.token(t, map[string]any{"sub": "bob"})
	aliceGlobex := in.token(t, map[string]any{"sub": "alice", "tenant_id": "globex"})

	limited := func(tok string) (int, response) { return in.untilLimited(t, tok) }
	n, r := limited(alice)
	assert.GreaterOrEqual(t, n, 5, "a burst of 4 is served first")
	assert.NotEmpty(t, r.header.Get("Retry-After"))
	assert.Regexp(t, `^[1-9][0-9]*$`, r.header.Get("Retry-After"))
	// Other callers from the same address keep their own budgets.
	assert.Equal(t, http.StatusOK, in.call(t, bob, "whoami", nil).status)
	assert.Equal(t, http.StatusOK, in.call(t, aliceGlobex, "whoami", nil).status, "tenant+subject, not subject alone")

	// Before authentication the caller is its address: failed
	// authentications are charged to it, and a flood is cut with 429 —
	// whatever the failure, since they share the address's budget.
	n, r = limited("")
	assert.GreaterOrEqual(t, n, 5, "a burst of 4 failures is answered 401 first")
	assert.NotEmpty(t, r.header.Get("Retry-After"))
	assert.Empty(t, r.header.Get("WWW-Authenticate"))
	for _, tok := range []string{"not-a-jwt", in.token(t, map[string]any{"aud": "https://elsewhere.example"})} {
		_, r := limited(tok)
		assert.NotEmpty(t, r.header.Get("Retry-After"))
	}
	// Authenticated callers of that address are still served.
	carol := in.token(t, map[string]any{"sub": "carol"})
	assert.Equal(t, http.StatusOK, in.call(t, carol, "whoami", nil).status)
}

func TestHostileRequests(t *testing.T) {
	in := start(t, nil)
	tok := in.token(t, map[string]any{"scope": "notes:read notes:write"})
	huge, err := in.idp.MintOversized(map[string]any{"aud": in.url, "tenant_id": "acme"}, 20<<10)
	require.NoError(t, err)
	tests := []struct {
		name   string
		token  string
		body   string
		mod    func(*http.Request)
		status int
	}{
		{"body over the limit", tok, `{"jsonrpc":"2.0","id":1,"method":"ping","params":{"pad":"` + strings.Repeat("x", 5<<20) + `"}}`, nil, http.StatusRequestEntityTooLarge},
		{"text/plain", tok, `{"jsonrpc":"2.0","id":1,"method":"ping"}`, func(r *http.Request) { r.Header.Set("Content-Type", "text/plain") }, http.StatusUnsupportedMediaType},
		{"cross-site origin", tok, `{"jsonrpc":"2.0","id":1,"method":"ping"}`, func(r *http.Request) { r.Header.Set("Origin", "https://evil.example") }, http.StatusForbidden},
		{"rebinding host", tok, `{"jsonrpc":"2.0","id":1,"method":"ping"}`, func(r *http.Request) { r.Host = "evil.example" }, http.StatusForbidden},
		{"token in query", "", `{"jsonrpc":"2.0","id":1,"method":"ping"}`, func(r *http.Request) { r.URL.RawQuery = "access_token=" + tok }, http.StatusUnauthorized}, // ignored: no credential (RFC 6750 §2.3 unsupported)
		{"token in query and header", tok, `{"jsonrpc":"2.0","id":1,"method":"ping"}`, func(r *http.Request) { r.URL.RawQuery = "access_token=" + tok }, http.StatusBadRequest},
		{"two credentials", tok, `{"jsonrpc":"2.0","id":1,"method":"ping"}`, func(r *http.Request) { r.Header.Add("Authorization", "Bearer "+tok) }, http.StatusBadRequest},
		{"oversized token", huge, `{"jsonrpc":"2.0","id":1,"method":"ping"}`, nil, http.StatusUnauthorized}, // invalid_token (RFC 6750 §3.1)
		{"basic auth", "", `{"jsonrpc":"2.0","id":1,"method":"ping"}`, func(r *http.Request) { r.SetBasicAuth("alice", "pw") }, http.StatusUnauthorized},
		{"unsigned token", "", `{"jsonrpc":"2.0","id":1,"method":"ping"}`, func(r *http.Request) {
			u, _ := in.idp.MintUnsigned(map[string]any{"aud": in.url, "tenant_id": "acme"})
			r.Header.Set("Authorization", "Bearer "+u)
		}, http.StatusUnauthorized},
		{"case-variant tool name", tok, `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"notes_read","Name":"notes_write","arguments":{}}}`, nil, http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mods []func(*http.Request)
			if tt.mod != nil {
				mods = append(mods, tt.mod)
			}
			r := in.post(t, tt.token, tt.body, mods...)
			assert.Equal(t, tt.status, r.status, r.body)
		})
	}

	// Tool arguments are bounded with clear errors.
	argTests := []struct {
		name string
		args map[string]any
		want string
	}{
		{"text too long", map[string]any{"key": "k", "text": strings.Repeat("x", 5000)}, "at most 4096 bytes"},
		{"key too long", map[string]any{"key": strings.Repeat("k", 200), "text": "t"}, "1 to 128 bytes"},
		{"empty key", map[string]any{"key": "", "text": "t"}, "1 to 128 bytes"},
		{"control character", map[string]any{"key": "a\nb", "text": "t"}, "printable"},
		{"key not a string", map[string]any{"key": 7, "text": "t"}, "key: a string is required"},
		{"no text", map[string]any{"key": "k"}, "text: a string is required"},
	}
	for _, tt := range argTests {
		t.Run(tt.name, func(t *testing.T) {
			text, isErr := in.toolText(t, tok, "notes_write", tt.args)
			assert.True(t, isErr)
			assert.Contains(t, text, tt.want)
		})
	}
	text, isErr := in.toolText(t, tok, "notes_read", map[string]any{"key": "missing"})
	assert.True(t, isErr)
	assert.Equal(t, `no such note: "missing"`, text)
}

// TestSessions drives the server as a stateful mcp-go client does, with a
// standing GET stream, and checks that a session serves only its owner.
func TestSessions(t *testing.T) {
	in := start(t, nil)
	alice := in.token(t, map[string]any{"sub": "alice", "scope": "notes:read notes:write"})
	bob := in.token(t, map[string]any{"sub": "bob", "scope": "notes:read notes:write"})
	c := in.client(t, alice, mcptransport.WithContinuousListening())
	sid := c.GetSessionId()
	require.NotEmpty(t, sid)
	ctx := context.Background()
	res, err := c.CallTool(ctx, mcp.CallToolRequest{Params: mcp.CallToolParams{Name: "notes_write", Arguments: map[string]any{"key": "k", "text": "v"}}})
	require.NoError(t, err)
	require.False(t, res.IsError)
	res, err = c.CallTool(ctx, mcp.CallToolRequest{Params: mcp.CallToolParams{Name: "notes_read", Arguments: map[string]any{"key": "k"}}})
	require.NoError(t, err)
	assert.Equal(t, "v", res.Content[0].(mcp.TextContent).Text)

	withSession := func(r *http.Request) {
		r.Header.Set("Mcp-Session-Id", sid)
		r.Header.Set(mcp.HeaderProtocolVersion, mcp.ProtocolVersion20251125)
	}
	r := in.post(t, bob, `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`, withSession)
	assert.Equal(t, http.StatusNotFound, r.status, "bob cannot ride alice's session")
	r = in.post(t, alice, `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`, withSession)
	assert.Equal(t, http.StatusOK, r.status, r.body)
	require.NoError(t, c.Close())
}

// TestAuditOnStderr: after a varied run, stderr holds only JSON lines, the
// audit events name who did what, and no token appears anywhere.
func TestAuditOnStderr(t *testing.T) {
	in := start(t, map[string]*string{"MCPGUARD_RATE_LIMIT": ptr("1")})
	reader := in.token(t, map[string]any{"sub": "bob", "tenant_id": "globex", "scope": "notes:read"})
	writer := in.token(t, map[string]any{"sub": "alice", "scope": "notes:read notes:write"})
	forged, err := in.idp.MintBadSignature(map[string]any{"aud": in.url, "tenant_id": "acme"})
	require.NoError(t, err)
	in.minted = append(in.minted, forged)

	_, isErr := in.toolText(t, writer, "notes_write", map[string]any{"key": "k", "text": "v"})
	require.False(t, isErr)
	assert.Equal(t, http.StatusForbidden, in.call(t, reader, "notes_write", map[string]any{"key": "k", "text": "v"}).status)
	assert.Equal(t, http.StatusUnauthorized, in.call(t, forged, "whoami", nil).status)
	in.untilLimited(t, writer)
	require.NoError(t, in.stop())

	out := in.stderr.String()
	kinds := map[string]bool{}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for _, line := range lines {
		var ev map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &ev), "not JSON: %q", line)
		if k, ok := ev["kind"].(string); ok {
			kinds[k] = true
		}
	}
	for _, k := range []string{"tool_call", "access_denied", "auth_failure", "rate_limited"} {
		assert.True(t, kinds[k], "no %s event in:\n%s", k, out)
	}
	assert.Regexp(t, `"kind":"tool_call".*"subject":"alice".*"tenant":"acme".*"tool":"notes_write"`, out)
	assert.Regexp(t, `"kind":"access_denied".*"subject":"bob".*"tenant":"globex"`, out)
	for _, tok := range in.minted {
		for i := 0; i+16 <= len(tok); i += 8 {
			require.NotContains(t, out, tok[i:i+16], "a token fragment reached stderr")
		}
	}
	assert.Equal(t, fmt.Sprintf("listening on %s\n", in.url), in.stdout.String(), "stdout holds the one line")
}

// TestCPUProfile: MCPGUARD_CPUPROFILE writes a gzipped pprof profile of the
// run when the server shuts down; a path that cannot be created stops the
// server before it listens, with the variable named.
func TestCPUProfile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "cpu.pprof")
	in := start(t, map[string]*string{"MCPGUARD_CPUPROFILE": ptr(path)})
	tok := in.token(t, nil)
	for range 20 {
		_, isErr := in.toolText(t, tok, "whoami", nil)
		require.False(t, isErr)
	}
	require.NoError(t, in.stop())

	f, err := os.Open(path)
	require.NoError(t, err, "the profile is written on shutdown")
	defer f.Close()
	zr, err := gzip.NewReader(f)
	require.NoError(t, err, "a pprof profile is gzipped protobuf")
	b, err := io.ReadAll(zr)
	require.NoError(t, err)
	assert.NotEmpty(t, b)

	var stdout, stderr bytes.Buffer
	env := map[string]string{
		"MCPGUARD_ADDR": "127.0.0.1:0", "MCPGUARD_ISSUER": in.idp.Issuer(),
		"MCPGUARD_CPUPROFILE": filepath.Join(dir, "missing", "cpu.pprof"),
	}
	err = run(context.Background(), func(k string) string { return env[k] }, &stdout, &stderr)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "MCPGUARD_CPUPROFILE")
	assert.Empty(t, stdout.String(), "nothing may claim to listen")
}
