package conformance

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// The diagnostic tools of the suite's 2026-07-28 (SEP-2575, SEP-2243)
// server-stateless and http-custom-header-server-validation scenarios.
// They rely only on what mcp-go v1.2.1 does itself: per-request client
// capabilities and log level from _meta, multi round-trip input requests,
// list-changed notifications to subscriptions/listen streams and the
// validation of Mcp-Param-* headers against x-mcp-header annotations.

// headerParamSchema is the input schema of test_header_param: one string
// argument that travels in the Mcp-Param-Region header too (SEP-2243).
const headerParamSchema = `{"type":"object","properties":{"region":{"type":"string","description":"Region, mirrored in the Mcp-Param-Region header","x-mcp-header":"Region"}},"required":["region"]}`

// Names of the entries test_trigger_tool_change and
// test_trigger_prompt_change add and remove.
const (
	dynamicTool   = "test_dynamic_tool"
	dynamicPrompt = "test_dynamic_prompt"
)

func (f fixtures) addStatelessTools() {
	tool := func(name, desc string, h server.ToolHandlerFunc) {
		f.s.AddTool(mcp.NewTool(name, mcp.WithDescription(desc)), h)
	}

	// test_missing_capability needs the client's sampling capability.
	// SEP-2575 wants MissingRequiredClientCapabilityError (-32021, with
	// error.data.requiredCapabilities) when the request does not declare
	// it; mcp-go v1.2.1 answers an error a tool handler returns with
	// -32603 whatever its type (server.handlerError knows only the URL
	// elicitation error), so the handler returns mcp-go's own
	// MissingRequiredClientCapabilityError and the suite sees what mcp-go
	// makes of it.
	tool("test_missing_capability", "Needs the client's sampling capability; refuses a request that does not declare it",
		func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			if _, ok := sampledText(req.Params.InputResponses, "probe"); ok {
				return mcp.NewToolResultText("sampling answered"), nil
			}
			if info := server.RequestProtocolInfoFromContext(ctx); info != nil && info.Modern &&
				(info.ClientCapabilities == nil || info.ClientCapabilities.Sampling == nil) {
				return nil, mcp.MissingRequiredClientCapabilityError{Capability: "sampling"}
			}
			return server.NewInputRequestBuilder("").Sample("probe", sampleText("Say hello", 10)).ToolResult(), nil
		})

	// test_streaming_elicitation asks for input through an input_required
	// result: the response stream carries that result, never an
	// elicitation/create request of the server's own.
	tool("test_streaming_elicitation", "Asks for a name through a multi round-trip elicitation on the response stream",
		func(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			if name, ok := accepted(req.Params.InputResponses, "stream_name", "name"); ok {
				return mcp.NewToolResultText(fmt.Sprintf("Hello, %v!", name)), nil
			}
			return server.NewInputRequestBuilder("").Elicit("stream_name", elicitName("What is your name?")).ToolResult(), nil
		})

	// test_logging_tool logs through mcp-go's SendLogMessageToClient,
	// which drops the messages of a 2026-07-28 request whose _meta sets no
	// log level.
	tool("test_logging_tool", "Logs three messages through the per-request log level",
		func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			for _, msg := range []string{"logging tool started", "logging tool working", "logging tool done"} {
				n := mcp.NewLoggingMessageNotification(mcp.LoggingLevelInfo, "mcpguard-conformance", msg)
				if err := f.s.SendLogMessageToClient(ctx, n); err != nil {
					return nil, err
				}
			}
			return mcp.NewToolResultText("logged"), nil
		})

	// test_trigger_tool_change and test_trigger_prompt_change add their
	// entry when it is absent and remove it otherwise; either way mcp-go
	// sends notifications/*/list_changed to the listen streams that asked.
	var mu sync.Mutex
	toolOn, promptOn := false, false
	tool("test_trigger_tool_change", "Adds or removes "+dynamicTool+", changing the tool list",
		func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			mu.Lock()
			defer mu.Unlock()
			if toolOn {
				f.s.DeleteTools(dynamicTool)
			} else {
				f.s.AddTool(mcp.NewTool(dynamicTool, mcp.WithDescription("Present while toggled on")),
					func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
						return mcp.NewToolResultText("dynamic"), nil
					})
			}
			toolOn = !toolOn
			return mcp.NewToolResultText(fmt.Sprintf("%s present: %v", dynamicTool, toolOn)), nil
		})
	tool("test_trigger_prompt_change", "Adds or removes "+dynamicPrompt+", changing the prompt list",
		func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			mu.Lock()
			defer mu.Unlock()
			if promptOn {
				f.s.DeletePrompts(dynamicPrompt)
			} else {
				f.s.AddPrompt(mcp.NewPrompt(dynamicPrompt, mcp.WithPromptDescription("Present while toggled on")),
					func(context.Context, mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
						return &mcp.GetPromptResult{Messages: []mcp.PromptMessage{{Role: mcp.RoleUser, Content: text("dynamic")}}}, nil
					})
			}
			promptOn = !promptOn
			return mcp.NewToolResultText(fmt.Sprintf("%s present: %v", dynamicPrompt, promptOn)), nil
		})

	// test_header_param mirrors its region argument in Mcp-Param-Region;
	// mcp-go checks the header against the body (plain or
	// =?base64?…?=-encoded) before the handler runs.
	f.s.AddTool(mcp.NewToolWithRawSchema("test_header_param", "Echoes its region, which the client also sends in the Mcp-Param-Region header",
		json.RawMessage(headerParamSchema)),
		func(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return mcp.NewToolResultText("region=" + req.GetString("region", "")), nil
		})
}
