package audit_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/audit"
	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/auth/authtest"
	"github.com/mcpguard/mcpguard/tenancy"
)

// leakWindow is the length of the token substrings searched for.
const leakWindow = 16

// capture collects everything every component writes.
type capture struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (c *capture) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.Write(p)
}

func (c *capture) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}

// leaks returns, for each secret, the first substring of leakWindow bytes
// (or the whole secret, when shorter) that occurs in out.
func leaks(out string, secrets map[string]string) []string {
	windows := make(map[string]struct{}, len(out))
	for i := 0; i+leakWindow <= len(out); i++ {
		windows[out[i:i+leakWindow]] = struct{}{}
	}
	var found []string
	for name, s := range secrets {
		if len(s) < leakWindow {
			if strings.Contains(out, s) {
				found = append(found, name)
			}
			continue
		}
		for i := 0; i+leakWindow <= len(s); i++ {
			if _, ok := windows[s[i:i+leakWindow]]; ok {
				found = append(found, fmt.Sprintf("%s (at %d: %q)", name, i, s[i:i+leakWindow]))
				break
			}
		}
	}
	return found
}

func TestLeakDetectorCatchesLeaks(t *testing.T) {
	secret := "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXZhbHVl"
	secrets := map[string]string{"tok": secret}
	assert.Empty(t, leaks("nothing to see here", secrets))
	assert.NotEmpty(t, leaks("log: ..."+secret[20:36]+"...", secrets), "a 16-byte slice is a leak")
	assert.Empty(t, leaks("log: ..."+secret[20:35]+"...", secrets), "15 bytes are not")
}

// TestNoCredentialLeaks drives a whole session through auth.Middleware,
// tenancy, audit and mcp-go's Streamable HTTP server — valid, expired,
// forged and wrong-audience tokens, a token in the query string, a token
// pasted into a tool argument, and a downstream token exchange — with
// every log and audit output captured, then checks that no token, client
// secret or 16-byte substring of one appears anywhere.
func TestNoCredentialLeaks(t *testing.T) {
	out := &capture{}
	logger := slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelDebug}))
	jsonLogger := slog.New(slog.NewJSONHandler(out, &slog.HandlerOptions{Level: slog.LevelDebug}))

	idp, err := authtest.New(authtest.Config{TB: t})
	require.NoError(t, err)
	const downstreamAud = "https://downstream.example.test/api"
	const clientSecret = "s3cr3t-Client-Secret-Value-0123456789"

	secrets := map[string]string{"client secret": clientSecret}
	mint := func(name string, claims map[string]any) string {
		tok := idp.MustMint(claims)
		secrets[name] = tok
		return tok
	}
	valid := mint("valid", map[string]any{"sub": "alice", "tenant_id": "acme", "scope": "notes:read"})
	pasted := mint("pasted", map[string]any{"sub": "alice", "tenant_id": "acme"})
	expired := mint("expired", map[string]any{"sub": "alice", "tenant_id": "acme",
		"iat": time.Now().Add(-2 * time.Hour).Unix(), "exp": time.Now().Add(-time.Hour).Unix()})
	wrongAud := mint("wrong audience", map[string]any{"aud": "https://other.example.test"})
	noTenant := mint("no tenant", map[string]any{"sub": "carol"})
	inQuery := mint("query", map[string]any{"sub": "alice", "tenant_id": "acme"})
	forge := func(name string) func(string, error) string {
		return func(tok string, err error) string {
			require.NoError(t, err, name)
			secrets[name] = tok
			return tok
		}
	}
	badSig := forge("bad signature")(idp.MintBadSignature(map[string]any{"sub": "mallory", "tenant_id": "acme"}))
	unsigned := forge("unsigned")(idp.MintUnsigned(map[string]any{"sub": "mallory", "tenant_id": "acme"}))
	hmacConfused := forge("hmac confusion")(idp.MintHMAC(map[string]any{"sub": "mallory"}, idp.SigningKey().PublicKeyPEM()))
	rogueKey, err := authtest.GenerateKey("ES256", idp.SigningKey().ID())
	require.NoError(t, err)
	rogue := forge("rogue key")(idp.MintToken(authtest.Token{Key: rogueKey, Claims: map[string]any{"sub": "mallory"}}))

	// The downstream authorization server's token endpoint (RFC 8693) and
	// the downstream API, both on loopback.
	var exchangedMu sync.Mutex
	var exchanged []string
	tokenEndpoint := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil || r.PostForm.Get("grant_type") != "urn:ietf:params:oauth:grant-type:token-exchange" {
			http.Error(w, `{"error":"unsupported_grant_type"}`, http.StatusBadRequest)
			return
		}
		if _, pw, ok := r.BasicAuth(); !ok || pw != clientSecret || r.PostForm.Get("subject_token") != valid {
			http.Error(w, `{"error":"invalid_grant"}`, http.StatusBadRequest)
			return
		}
		tok := idp.MustMint(map[string]any{"sub": "alice", "aud": downstreamAud, "act": map[string]any{"sub": "mcp-server"}})
		exchangedMu.Lock()
		exchanged = append(exchanged, tok)
		exchangedMu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"access_token": tok, "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
			"token_type": "Bearer", "expires_in": 300,
		})
	}))
	defer tokenEndpoint.Close()
	downstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		exchangedMu.Lock()
		defer exchangedMu.Unlock()
		if len(exchanged) == 0 || r.Header.Get("Authorization") != "Bearer "+exchanged[len(exchanged)-1] {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		_, _ = io.WriteString(w, "downstream ok")
	}))
	defer downstream.Close()

	// Audit: JSON lines, slog JSON and slog text, all into the capture.
	jsonSink, err := audit.NewJSONSink(out)
	require.NoError(t, err)
	slogJSON, err := audit.NewSlogSink(audit.SlogConfig{Handler: jsonLogger.Handler()})
	require.NoError(t, err)
	slogText, err := audit.NewSlogSink(audit.SlogConfig{Handler: logger.Handler()})
	require.NoError(t, err)
	var events []audit.Event
	var eventsMu sync.Mutex
	keep := audit.SinkFunc(func(_ context.Context, e audit.Event) error {
		eventsMu.Lock()
		events = append(events, e)
		eventsMu.Unlock()
		return nil
	})
	rec, err := audit.New(audit.Config{
		Sink:              audit.Fanout{jsonSink, slogJSON, slogText, keep},
		Mode:              audit.Async,
		OnFull:            audit.Block,
		RecordAllRequests: true,
		ArgValues:         map[string][]string{"echo": {"message"}},
		Logger:            logger,
	})
	require.NoError(t, err)

	// The MCP server: an echo tool and a tool that calls downstream as the
	// user through a token exchange, reported with rec.TokenExchange.
	mcpSrv := server.NewMCPServer("leak-test", "1.0.0",
		server.WithToolHandlerMiddleware(rec.ToolMiddleware),
		server.WithLogger(logger),
	)
	mcpSrv.AddTool(mcp.NewTool("echo", mcp.WithString("message")),
		func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return mcp.NewToolResultText("echo: " + fmt.Sprint(len(req.GetString("message", "")))), nil
		})
	mcpSrv.AddTool(mcp.NewTool("downstream"),
		func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			cred, ok := auth.CredentialFromContext(ctx)
			if !ok {
				return mcp.NewToolResultError("no credential"), nil
			}
			logger.InfoContext(ctx, "exchanging", "credential", cred, "audience", downstreamAud)
			start := time.Now()
			exTok, err := exchange(ctx, tokenEndpoint.URL, clientSecret, cred.Reveal(), downstreamAud)
			rec.TokenExchange(ctx, "token-exchange", downstreamAud, time.Since(start), err)
			if err != nil {
				return nil, err
			}
			dreq, _ := http.NewRequestWithContext(ctx, http.MethodGet, downstream.URL, nil)
			dreq.Header.Set("Authorization", "Bearer "+exTok)
			resp, err := http.DefaultClient.Do(dreq)
			if err != nil {
				return nil, err
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
			logger.InfoContext(ctx, "downstream answered", "status", resp.StatusCode)
			return mcp.NewToolResultText(string(body)), nil
		})

	v, err := auth.NewJWTValidator(auth.JWTConfig{Issuer: idp.Issuer(), Audience: idp.Audience(), Logger: logger})
	require.NoError(t, err)
	t.Cleanup(func() { _ = v.Close() })
	authMW, err := auth.Middleware(v, auth.MiddlewareConfig{
		ResourceMetadataURL: "http://127.0.0.1/.well-known/oauth-protected-resource",
		OnError: func(r *http.Request, e *auth.Error) {
			// What an operator would log: the full error, cause included.
			logger.WarnContext(r.Context(), "auth rejected", "error", e, "cause", fmt.Sprintf("%+v", e.Err))
			jsonLogger.WarnContext(r.Context(), "auth rejected", "error", e.Error())
		},
	})
	require.NoError(t, err)
	resolver, err := tenancy.New(tenancy.Config{
		OnError: func(r *http.Request, e *tenancy.Error) {
			logger.WarnContext(r.Context(), "tenant rejected", "error", e.Error())
		},
	})
	require.NoError(t, err)

	var h http.Handler = server.NewStreamableHTTPServer(mcpSrv, server.WithStreamableHTTPLogger(logger))
	h = audit.Capture(h)
	h = resolver.Middleware(h)
	h = audit.Capture(h)
	h = authMW(h)
	h = rec.Middleware(h)
	h = requestIDs(h)
	ts := httptest.NewUnstartedServer(h)
	ts.Config.ErrorLog = log.New(out, "http: ", 0)
	ts.Start()
	defer ts.Close()

	ctx := t.Context()

	// A full session with the valid token.
	c, err := client.NewStreamableHttpClient(ts.URL, transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + valid}))
	require.NoError(t, err)
	require.NoError(t, c.Start(ctx))
	_, err = c.Initialize(ctx, mcp.InitializeRequest{Params: mcp.InitializeParams{
		ProtocolVersion: mcp.LATEST_PROTOCOL_VERSION, ClientInfo: mcp.Implementation{Name: "leak-test", Version: "1"},
	}})
	require.NoError(t, err)
	tools, err := c.ListTools(ctx, mcp.ListToolsRequest{})
	require.NoError(t, err)
	require.Len(t, tools.Tools, 2)
	res, err := c.CallTool(ctx, mcp.CallToolRequest{Params: mcp.CallToolParams{Name: "echo",
		Arguments: map[string]any{"message": "hello"}}})
	require.NoError(t, err)
	require.False(t, res.IsError)
	// A user pastes a token into an allow-listed argument.
	_, err = c.CallTool(ctx, mcp.CallToolRequest{Params: mcp.CallToolParams{Name: "echo",
		Arguments: map[string]any{"message": "my token is " + pasted, "note": pasted}}})
	require.NoError(t, err)
	res, err = c.CallTool(ctx, mcp.CallToolRequest{Params: mcp.CallToolParams{Name: "downstream"}})
	require.NoError(t, err)
	require.False(t, res.IsError)
	text, ok := mcp.AsTextContent(res.Content[0])
	require.True(t, ok)
	require.Equal(t, "downstream ok", text.Text)
	require.NoError(t, c.Close())

	// Rejected credentials, sent the way a client would.
	post := func(header http.Header, rawURL string) int {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, rawURL,
			strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"x","version":"1"}}}`))
		require.NoError(t, err)
		req.Header = header
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		resp, err := ts.Client().Do(req)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	bearer := func(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }
	for name, tc := range map[string]struct {
		header http.Header
		url    string
		want   int
	}{
		"expired":          {bearer(expired), ts.URL, 401},
		"bad signature":    {bearer(badSig), ts.URL, 401},
		"unsigned":         {bearer(unsigned), ts.URL, 401},
		"hmac confusion":   {bearer(hmacConfused), ts.URL, 401},
		"rogue key":        {bearer(rogue), ts.URL, 401},
		"wrong audience":   {bearer(wrongAud), ts.URL, 401},
		"no tenant":        {bearer(noTenant), ts.URL, 403},
		"token in query":   {http.Header{}, ts.URL + "?access_token=" + url.QueryEscape(inQuery), 401}, // ignored: no credential
		"query and header": {bearer(valid), ts.URL + "?access_token=" + url.QueryEscape(inQuery), 400},
		"two credentials":  {http.Header{"Authorization": {"Bearer " + valid, "Bearer " + expired}}, ts.URL, 400},
		"lower-case":       {http.Header{"Authorization": {"bearer " + badSig}}, ts.URL, 401},
	} {
		assert.Equal(t, tc.want, post(tc.header, tc.url), name)
	}

	require.NoError(t, rec.Close())
	ts.Close()
	exchangedMu.Lock()
	require.NotEmpty(t, exchanged, "the exchange happened")
	for i, tok := range exchanged {
		secrets[fmt.Sprint("exchanged ", i)] = tok
	}
	exchangedMu.Unlock()

	// The harness saw what it should: the session, each rejection, the
	// exchange and the redacted pasted token.
	eventsMu.Lock()
	defer eventsMu.Unlock()
	kinds := map[audit.Kind]int{}
	for _, e := range events {
		kinds[e.Kind]++
		if e.Kind == audit.KindToolCall && e.Tool == "echo" {
			for _, a := range e.Args {
				if a.Name == "message" && a.Value != "hello" {
					assert.Equal(t, "[REDACTED]", a.Value)
				}
			}
		}
	}
	assert.Equal(t, 3, kinds[audit.KindToolCall])
	assert.Equal(t, 1, kinds[audit.KindTokenExchange])
	assert.Equal(t, 10, kinds[audit.KindAuthFailure], "401s and 400 invalid_request: %v", kinds)
	assert.Equal(t, 1, kinds[audit.KindAccessDenied])

	all := out.String()
	require.Contains(t, all, `"kind":"auth_failure"`, "audit output was captured")
	require.Contains(t, all, "auth rejected", "auth logs were captured")
	require.Contains(t, all, "mcp.tool", "mcp-go logs were captured")
	require.Contains(t, all, "exchanging", "tool logs were captured")
	for _, e := range events {
		b, err := json.Marshal(e)
		require.NoError(t, err)
		all += string(b)
		all += fmt.Sprintf("%v %+v %#v", e, e, e)
	}
	assert.Empty(t, leaks(all, secrets), "credentials found in logs or audit output")
}

// requestIDs stands in for the transport's request-ID middleware.
func requestIDs(next http.Handler) http.Handler {
	var mu sync.Mutex
	n := 0
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		n++
		id := fmt.Sprintf("req-%d", n)
		mu.Unlock()
		next.ServeHTTP(w, r.WithContext(audit.NewRequestIDContext(r.Context(), id)))
	})
}

// exchange performs an RFC 8693 token exchange, as package obo would.
func exchange(ctx context.Context, endpoint, secret, subjectToken, audience string) (string, error) {
	form := url.Values{
		"grant_type":         {"urn:ietf:params:oauth:grant-type:token-exchange"},
		"subject_token":      {subjectToken},
		"subject_token_type": {"urn:ietf:params:oauth:token-type:access_token"},
		"audience":           {audience},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.SetBasicAuth("mcp-server", secret)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&body); err != nil {
		return "", fmt.Errorf("token exchange: %w", err)
	}
	if resp.StatusCode != http.StatusOK || body.AccessToken == "" {
		return "", fmt.Errorf("token exchange: status %d", resp.StatusCode)
	}
	return body.AccessToken, nil
}
