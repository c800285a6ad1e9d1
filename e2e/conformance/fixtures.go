package conformance

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// notificationGap is the pause the suite asks for between the log and
// progress notifications of one tool call.
const notificationGap = 50 * time.Millisecond

// NewMCPServer returns an mcp-go server exposing the tools, resources and
// prompts the conformance suite's server scenarios call, each behaving as
// the scenario's "Server Implementation Requirements" describe. It declares
// the same capabilities as mcp-go's own conformance fixture (tools,
// subscribable resources, prompts, completions, logging, elicitation and
// sampling), so a run against it is comparable with a run against mcp-go's,
// and task support (list, cancel, tool-call tasks) for the tasks-* fixtures.
//
// opts are appended after those capabilities; that is where mcpguard's
// tool middleware and filters go.
func NewMCPServer(opts ...server.ServerOption) *server.MCPServer {
	all := append([]server.ServerOption{
		server.WithToolCapabilities(true),
		server.WithResourceCapabilities(true, true),
		server.WithPromptCapabilities(true),
		server.WithCompletions(),
		server.WithLogging(),
		server.WithElicitation(),
		server.WithTaskCapabilities(true, true, true),
	}, opts...)
	s := server.NewMCPServer("mcpguard-conformance", "1.0.0", all...)
	s.EnableSampling()
	f := fixtures{s: s, png: onePixelPNG(), wav: silentWAV()}
	f.addTools()
	f.addInputRequiredTools()
	f.addSchemaTool()
	f.addStatelessTools()
	f.addTaskTools()
	f.addResources()
	f.addPrompts()
	return s
}

type fixtures struct {
	s   *server.MCPServer
	png string // base64
	wav string // base64
}

func text(s string) mcp.TextContent { return mcp.NewTextContent(s) }

func (f fixtures) addTools() {
	static := func(name, desc string, result func() *mcp.CallToolResult) {
		f.s.AddTool(mcp.NewTool(name, mcp.WithDescription(desc)),
			func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) { return result(), nil })
	}
	static("test_simple_text", "Answers with one text block", func() *mcp.CallToolResult {
		return mcp.NewToolResultText("This is a simple text response for testing.")
	})
	static("test_image_content", "Answers with a PNG image", func() *mcp.CallToolResult {
		return &mcp.CallToolResult{Content: []mcp.Content{mcp.NewImageContent(f.png, "image/png")}}
	})
	static("test_audio_content", "Answers with a WAV clip", func() *mcp.CallToolResult {
		return &mcp.CallToolResult{Content: []mcp.Content{mcp.NewAudioContent(f.wav, "audio/wav")}}
	})
	static("test_embedded_resource", "Answers with an embedded text resource", func() *mcp.CallToolResult {
		return &mcp.CallToolResult{Content: []mcp.Content{mcp.NewEmbeddedResource(mcp.TextResourceContents{
			URI: "test://embedded-resource", MIMEType: "text/plain", Text: "This is an embedded resource content.",
		})}}
	})
	static("test_multiple_content_types", "Answers with text, an image and a resource", func() *mcp.CallToolResult {
		return &mcp.CallToolResult{Content: []mcp.Content{
			text("Multiple content types test:"),
			mcp.NewImageContent(f.png, "image/png"),
			mcp.NewEmbeddedResource(mcp.TextResourceContents{
				URI: "test://mixed-content-resource", MIMEType: "application/json", Text: `{"test":"data","value":123}`,
			}),
		}}
	})
	static("test_error_handling", "Always fails with a tool error", func() *mcp.CallToolResult {
		return mcp.NewToolResultError("This tool intentionally returns an error for testing")
	})

	f.s.AddTool(mcp.NewTool("test_sampling",
		mcp.WithDescription("Asks the client's model to answer a prompt"),
		mcp.WithString("prompt", mcp.Required(), mcp.Description("What to ask the model"))),
		func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			res, err := f.s.RequestSampling(ctx, mcp.CreateMessageRequest{
				Request: mcp.Request{Method: string(mcp.MethodSamplingCreateMessage)},
				CreateMessageParams: mcp.CreateMessageParams{
					Messages:  []mcp.SamplingMessage{{Role: mcp.RoleUser, Content: text(req.GetString("prompt", ""))}},
					MaxTokens: 100,
				},
			})
			if err != nil {
				return mcp.NewToolResultError("sampling failed: " + err.Error()), nil
			}
			answer := "(no text)"
			if c, ok := res.Content.(mcp.TextContent); ok {
				answer = c.Text
			}
			return mcp.NewToolResultText("LLM response: " + answer), nil
		})

	elicit := func(name, desc, message string, args []mcp.ToolOption, schema func(mcp.CallToolRequest) map[string]any, prefix string) {
		opts := append([]mcp.ToolOption{mcp.WithDescription(desc)}, args...)
		f.s.AddTool(mcp.NewTool(name, opts...),
			func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
				msg := message
				if msg == "" {
					msg = req.GetString("message", "")
				}
				res, err := f.s.RequestElicitation(ctx, mcp.ElicitationRequest{
					Request: mcp.Request{Method: string(mcp.MethodElicitationCreate)},
					Params:  mcp.ElicitationParams{Message: msg, RequestedSchema: schema(req)},
				})
				if err != nil {
					return mcp.NewToolResultError("elicitation failed: " + err.Error()), nil
				}
				return mcp.NewToolResultText(fmt.Sprintf("%s: action=%s, content=%v", prefix, res.Action, res.Content)), nil
			})
	}
	elicit("test_elicitation", "Asks the user for a name and an email address", "",
		[]mcp.ToolOption{mcp.WithString("message", mcp.Required(), mcp.Description("What to tell the user"))},
		func(mcp.CallToolRequest) map[string]any {
			return object(map[string]any{
				"username": map[string]any{"type": "string", "description": "User's response"},
				"email":    map[string]any{"type": "string", "description": "User's email address"},
			}, "username", "email")
		}, "User response")
	elicit("test_elicitation_sep1034_defaults", "Asks the user with a default for every primitive type (SEP-1034)",
		"Please confirm or change these values", nil,
		func(mcp.CallToolRequest) map[string]any {
			return object(map[string]any{
				"name":     map[string]any{"type": "string", "default": "John Doe"},
				"age":      map[string]any{"type": "integer", "default": 30},
				"score":    map[string]any{"type": "number", "default": 95.5},
				"status":   map[string]any{"type": "string", "enum": []string{"active", "inactive", "pending"}, "default": "active"},
				"verified": map[string]any{"type": "boolean", "default": true},
			})
		}, "Elicitation completed")
	elicit("test_elicitation_sep1330_enums", "Asks the user with every enum form (SEP-1330)",
		"Please pick some options", nil,
		func(mcp.CallToolRequest) map[string]any {
			titled := func(prefix string, titles ...string) []any {
				out := make([]any, len(titles))
				for i, t := range titles {
					out[i] = map[string]any{"const": fmt.Sprintf("%s%d", prefix, i+1), "title": t}
				}
				return out
			}
			plain := []string{"option1", "option2", "option3"}
			return object(map[string]any{
				"untitledSingle": map[string]any{"type": "string", "enum": plain},
				"titledSingle":   map[string]any{"type": "string", "oneOf": titled("value", "First Option", "Second Option", "Third Option")},
				"legacyEnum": map[string]any{"type": "string", "enum": []string{"opt1", "opt2", "opt3"},
					"enumNames": []string{"Option One", "Option Two", "Option Three"}},
				"untitledMulti": map[string]any{"type": "array", "items": map[string]any{"type": "string", "enum": plain}},
				"titledMulti": map[string]any{"type": "array",
					"items": map[string]any{"anyOf": titled("value", "First Choice", "Second Choice", "Third Choice")}},
			})
		}, "Elicitation completed")

	f.s.AddTool(mcp.NewTool("test_tool_with_logging", mcp.WithDescription("Sends three log messages while it runs")),
		func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			steps := []string{"Tool execution started", "Tool processing data", "Tool execution completed"}
			for i, msg := range steps {
				if i > 0 {
					time.Sleep(notificationGap)
				}
				err := f.s.SendNotificationToClient(ctx, string(mcp.MethodNotificationMessage), map[string]any{
					"level": "info", "logger": "mcpguard-conformance", "data": msg,
				})
				if err != nil {
					return nil, err
				}
			}
			return mcp.NewToolResultText("Logging tool finished"), nil
		})
	f.s.AddTool(mcp.NewTool("test_tool_with_progress", mcp.WithDescription("Reports progress 0, 50 and 100 of 100")),
		func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			var token mcp.ProgressToken
			if req.Params.Meta != nil {
				token = req.Params.Meta.ProgressToken
			}
			for i, done := range []int{0, 50, 100} {
				if i > 0 {
					time.Sleep(notificationGap)
				}
				if token == nil {
					continue
				}
				err := f.s.SendNotificationToClient(ctx, string(mcp.MethodNotificationProgress), map[string]any{
					"progressToken": token, "progress": done, "total": 100,
				})
				if err != nil {
					return nil, err
				}
			}
			return mcp.NewToolResultText("Progress tool finished"), nil
		})
}

func object(props map[string]any, required ...string) map[string]any {
	o := map[string]any{"type": "object", "properties": props}
	if len(required) > 0 {
		o["required"] = required
	}
	return o
}

func (f fixtures) addResources() {
	f.s.AddResource(mcp.NewResource("test://static-text", "static-text",
		mcp.WithResourceDescription("A fixed text document"), mcp.WithMIMEType("text/plain")),
		func(context.Context, mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
			return []mcp.ResourceContents{mcp.TextResourceContents{
				URI: "test://static-text", MIMEType: "text/plain", Text: "This is the content of the static text resource.",
			}}, nil
		})
	f.s.AddResource(mcp.NewResource("test://static-binary", "static-binary",
		mcp.WithResourceDescription("A fixed PNG image"), mcp.WithMIMEType("image/png")),
		func(context.Context, mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
			return []mcp.ResourceContents{mcp.BlobResourceContents{URI: "test://static-binary", MIMEType: "image/png", Blob: f.png}}, nil
		})
	f.s.AddResourceTemplate(mcp.NewResourceTemplate("test://template/{id}/data", "template-data",
		mcp.WithTemplateDescription("JSON data for any id"), mcp.WithTemplateMIMEType("application/json")),
		func(_ context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
			id := fmt.Sprint(firstOf(req.Params.Arguments["id"]))
			body := fmt.Sprintf(`{"id":%q,"templateTest":true,"data":%q}`, id, "Data for ID: "+id)
			return []mcp.ResourceContents{mcp.TextResourceContents{URI: req.Params.URI, MIMEType: "application/json", Text: body}}, nil
		})
}

// firstOf unwraps the single value of a template variable, which mcp-go
// passes as a one-element list.
func firstOf(v any) any {
	if list, ok := v.([]string); ok && len(list) > 0 {
		return list[0]
	}
	if v == nil {
		return ""
	}
	return v
}

func (f fixtures) addPrompts() {
	one := func(name, desc string, args []mcp.PromptOption, messages func(mcp.GetPromptRequest) []mcp.PromptMessage) {
		opts := append([]mcp.PromptOption{mcp.WithPromptDescription(desc)}, args...)
		f.s.AddPrompt(mcp.NewPrompt(name, opts...),
			func(_ context.Context, req mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
				return &mcp.GetPromptResult{Messages: messages(req)}, nil
			})
	}
	user := func(c mcp.Content) mcp.PromptMessage { return mcp.PromptMessage{Role: mcp.RoleUser, Content: c} }
	one("test_simple_prompt", "A prompt without arguments", nil, func(mcp.GetPromptRequest) []mcp.PromptMessage {
		return []mcp.PromptMessage{user(text("This is a simple prompt for testing."))}
	})
	one("test_prompt_with_arguments", "A prompt with two required arguments", []mcp.PromptOption{
		mcp.WithArgument("arg1", mcp.RequiredArgument(), mcp.ArgumentDescription("First argument")),
		mcp.WithArgument("arg2", mcp.RequiredArgument(), mcp.ArgumentDescription("Second argument")),
	}, func(req mcp.GetPromptRequest) []mcp.PromptMessage {
		a := req.Params.Arguments
		return []mcp.PromptMessage{user(text(fmt.Sprintf("Prompt with arguments: arg1='%s', arg2='%s'", a["arg1"], a["arg2"])))}
	})
	one("test_prompt_with_embedded_resource", "A prompt embedding the resource it is given", []mcp.PromptOption{
		mcp.WithArgument("resourceUri", mcp.RequiredArgument(), mcp.ArgumentDescription("URI to embed")),
	}, func(req mcp.GetPromptRequest) []mcp.PromptMessage {
		return []mcp.PromptMessage{
			user(mcp.NewEmbeddedResource(mcp.TextResourceContents{
				URI: req.Params.Arguments["resourceUri"], MIMEType: "text/plain", Text: "Embedded resource content for testing.",
			})),
			user(text("Please process the embedded resource above.")),
		}
	})
	one("test_prompt_with_image", "A prompt carrying an image", nil, func(mcp.GetPromptRequest) []mcp.PromptMessage {
		return []mcp.PromptMessage{
			user(mcp.NewImageContent(f.png, "image/png")),
			user(text("Please analyze the image above.")),
		}
	})
}

// onePixelPNG encodes a 1×1 red PNG, base64.
func onePixelPNG() string {
	img := image.NewRGBA(image.Rect(0, 0, 1, 1))
	img.Set(0, 0, color.RGBA{R: 0xff, A: 0xff})
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		return ""
	}
	return base64.StdEncoding.EncodeToString(b.Bytes())
}

// silentWAV builds a RIFF/WAVE file of one silent 16-bit mono sample at
// 8 kHz, base64.
func silentWAV() string {
	const rate, bits, channels = 8000, 16, 1
	data := []byte{0, 0}
	var b bytes.Buffer
	le := func(v any) { _ = binary.Write(&b, binary.LittleEndian, v) }
	b.WriteString("RIFF")
	le(uint32(36 + len(data)))
	b.WriteString("WAVEfmt ")
	le(uint32(16))
	le(uint16(1)) // PCM
	le(uint16(channels))
	le(uint32(rate))
	le(uint32(rate * channels * bits / 8))
	le(uint16(channels * bits / 8))
	le(uint16(bits))
	b.WriteString("data")
	le(uint32(len(data)))
	b.Write(data)
	return base64.StdEncoding.EncodeToString(b.Bytes())
}
