package conformance

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTokenProxy(t *testing.T) {
	type seen struct{ auth, host, origin, xff string }
	got := make(chan seen, 1)
	release := make(chan struct{})
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- seen{r.Header.Get("Authorization"), r.Host, r.Header.Get("Origin"), r.Header.Get("X-Forwarded-For")}
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: first\n\n")
		w.(http.Flusher).Flush()
		<-release // the first event must reach the client before this returns
		fmt.Fprint(w, "data: second\n\n")
	}))
	defer backend.Close()
	target, err := url.Parse(backend.URL)
	require.NoError(t, err)

	var calls atomic.Int32
	proxy, err := TokenProxy(target, func(context.Context) (string, error) {
		calls.Add(1)
		return "tok-123", nil
	})
	require.NoError(t, err)
	front := httptest.NewServer(proxy)
	defer front.Close()

	req, err := http.NewRequest(http.MethodPost, front.URL+"/mcp", strings.NewReader("{}"))
	require.NoError(t, err)
	req.Host = "localhost:9999"
	req.Header.Set("Origin", "http://localhost:9999")
	req.Header.Set("Authorization", "Bearer from-the-client")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()

	s := <-got
	assert.Equal(t, seen{auth: "Bearer tok-123", host: "localhost:9999", origin: "http://localhost:9999"}, s)
	r := bufio.NewReader(resp.Body)
	line, err := r.ReadString('\n')
	require.NoError(t, err)
	assert.Equal(t, "data: first\n", line, "SSE events are streamed, not buffered")
	close(release)
	assert.Equal(t, int32(1), calls.Load())
}

func TestTokenProxyNoToken(t *testing.T) {
	var hit atomic.Bool
	backend := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hit.Store(true) }))
	defer backend.Close()
	target, err := url.Parse(backend.URL)
	require.NoError(t, err)
	proxy, err := TokenProxy(target, func(context.Context) (string, error) { return "", errors.New("idp down") })
	require.NoError(t, err)
	rec := httptest.NewRecorder()
	proxy.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/mcp", nil))
	assert.Equal(t, http.StatusBadGateway, rec.Code)
	assert.NotContains(t, rec.Body.String(), "idp down")
	assert.False(t, hit.Load(), "nothing is forwarded without a token")
}

func TestTokenProxyConfig(t *testing.T) {
	tok := func(context.Context) (string, error) { return "t", nil }
	_, err := TokenProxy(nil, tok)
	assert.Error(t, err)
	_, err = TokenProxy(&url.URL{Path: "/relative"}, tok)
	assert.Error(t, err)
	_, err = TokenProxy(&url.URL{Scheme: "http", Host: "127.0.0.1:1"}, nil)
	assert.Error(t, err)
}

func TestStartRejectsNonLoopback(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", "example.com:80", "localhost:0", "nonsense"} {
		_, err := Start(context.Background(), Options{Addr: addr})
		assert.Error(t, err, addr)
	}
}

// TestFixturesOverHTTP drives the bare fixture server with mcp-go's own
// client: the suite checks the fixtures in depth, this catches a broken
// fixture without Node.
func TestFixturesOverHTTP(t *testing.T) {
	ctx := context.Background()
	srv, err := Start(ctx, Options{})
	require.NoError(t, err)
	defer srv.Close()

	c, err := client.NewStreamableHttpClient(srv.URL)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.Start(ctx))
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	init.Params.ClientInfo = mcp.Implementation{Name: "fixture-test", Version: "1"}
	_, err = c.Initialize(ctx, init)
	require.NoError(t, err)

	tools, err := c.ListTools(ctx, mcp.ListToolsRequest{})
	require.NoError(t, err)
	var names []string
	for _, tl := range tools.Tools {
		names = append(names, tl.Name)
		assert.NotEmpty(t, tl.Description, tl.Name)
	}
	assert.ElementsMatch(t, []string{
		"test_simple_text", "test_image_content", "test_audio_content", "test_embedded_resource",
		"test_multiple_content_types", "test_error_handling", "test_sampling", "test_elicitation",
		"test_elicitation_sep1034_defaults", "test_elicitation_sep1330_enums",
		"test_tool_with_logging", "test_tool_with_progress",
		"test_input_required_result_elicitation", "test_input_required_result_sampling",
		"test_input_required_result_list_roots", "test_input_required_result_request_state",
		"test_input_required_result_tampered_state", "test_input_required_result_multiple_inputs",
		"test_input_required_result_multi_round", "test_input_required_result_capabilities",
		"json_schema_2020_12_tool",
		"test_missing_capability", "test_streaming_elicitation", "test_logging_tool",
		"test_trigger_tool_change", "test_trigger_prompt_change", "test_header_param",
		"greet", "slow_compute", "failing_job", "protocol_error_job", "confirm_delete", "multi_input", "test_tool_with_task",
	}, names)
	// mcp-go's client decodes inputSchema into its own struct, dropping
	// keywords; the suite's json-schema-2020-12 scenario checks the wire.

	call := func(name string) *mcp.CallToolResult {
		t.Helper()
		req := mcp.CallToolRequest{}
		req.Params.Name = name
		res, err := c.CallTool(ctx, req)
		require.NoError(t, err)
		return res
	}
	res := call("test_simple_text")
	require.Len(t, res.Content, 1)
	assert.Equal(t, "This is a simple text response for testing.", res.Content[0].(mcp.TextContent).Text)
	assert.True(t, call("test_error_handling").IsError)
	img := call("test_image_content").Content[0].(mcp.ImageContent)
	assert.Equal(t, "image/png", img.MIMEType)
	assert.True(t, strings.HasPrefix(img.Data, "iVBORw0KGgo"), "a base64 PNG signature")
	audio := call("test_audio_content").Content[0].(mcp.AudioContent)
	assert.True(t, strings.HasPrefix(audio.Data, "UklGR"), "a base64 RIFF header")

	// The list-changing triggers add their entry, then remove it again.
	assert.Contains(t, call("test_trigger_tool_change").Content[0].(mcp.TextContent).Text, "present: true")
	tools, err = c.ListTools(ctx, mcp.ListToolsRequest{})
	require.NoError(t, err)
	assert.Len(t, tools.Tools, len(names)+1)
	assert.Contains(t, call("test_trigger_tool_change").Content[0].(mcp.TextContent).Text, "present: false")
	tools, err = c.ListTools(ctx, mcp.ListToolsRequest{})
	require.NoError(t, err)
	assert.Len(t, tools.Tools, len(names))
	greet := mcp.CallToolRequest{}
	greet.Params.Name = "greet"
	greet.Params.Arguments = map[string]any{"name": "World"}
	gres, err := c.CallTool(ctx, greet)
	require.NoError(t, err)
	assert.Equal(t, "Hello, World!", gres.Content[0].(mcp.TextContent).Text)
	assert.True(t, call("failing_job").IsError)
	// slow_compute without a task runs synchronously (mcp-go v1.2.1
	// creates a task only when the client asks for one).
	assert.Contains(t, call("slow_compute").Content[0].(mcp.TextContent).Text, "after 0s")

	hp := mcp.CallToolRequest{}
	hp.Params.Name = "test_header_param"
	hp.Params.Arguments = map[string]any{"region": "eu-west"}
	hres, err := c.CallTool(ctx, hp)
	require.NoError(t, err)
	assert.Equal(t, "region=eu-west", hres.Content[0].(mcp.TextContent).Text)

	rr := mcp.ReadResourceRequest{}
	rr.Params.URI = "test://template/42/data"
	read, err := c.ReadResource(ctx, rr)
	require.NoError(t, err)
	require.Len(t, read.Contents, 1)
	assert.JSONEq(t, `{"id":"42","templateTest":true,"data":"Data for ID: 42"}`, read.Contents[0].(mcp.TextResourceContents).Text)

	gp := mcp.GetPromptRequest{}
	gp.Params.Name = "test_prompt_with_arguments"
	gp.Params.Arguments = map[string]string{"arg1": "hello", "arg2": "world"}
	prompt, err := c.GetPrompt(ctx, gp)
	require.NoError(t, err)
	require.Len(t, prompt.Messages, 1)
	assert.Equal(t, "Prompt with arguments: arg1='hello', arg2='world'", prompt.Messages[0].Content.(mcp.TextContent).Text)
}
