package conformance

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// The fixtures the suite's tasks-* scenarios (SEP-2663, the tasks
// extension) call, built on the task support mcp-go v1.2.1 has: tools with
// optional task support run as tasks when the client asks for one with the
// tools/call "task" parameter, and tasks/get, tasks/list, tasks/result and
// tasks/cancel serve them (the 2025-11-25 design, which NewMCPServer
// declares with server.WithTaskCapabilities).
//
// mcp-go v1.2.1 does not implement SEP-2663's wire format: it advertises
// no io.modelcontextprotocol/tasks extension (and the fixture does not
// claim one it cannot serve), never creates a task on its own initiative,
// answers a created task with a nested {"task": …} instead of the flat
// resultType "task" CreateTaskResult, has no tasks/update, inlines no
// result in tasks/get, and gates nothing with -32021. The scenarios'
// checks therefore run against mcp-go's actual behaviour, and through the
// stack they exercise its task-owner binding.

// maxComputeSeconds caps slow_compute's sleep. The suite asks for 60 s
// where it expects a task to be created at once; mcp-go runs the call
// synchronously instead (no task without the client's "task" parameter),
// so the cap bounds what each such call adds to a conformance run.
const maxComputeSeconds = 2

func (f fixtures) addTaskTools() {
	optional := mcp.WithTaskSupport(mcp.TaskSupportOptional)

	f.s.AddTool(mcp.NewTool("greet", mcp.WithDescription("Greets synchronously; never a task"),
		mcp.WithString("name", mcp.Description("Who to greet"))),
		func(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return mcp.NewToolResultText(fmt.Sprintf("Hello, %s!", req.GetString("name", "World"))), nil
		})

	f.s.AddTool(mcp.NewTool("slow_compute", mcp.WithDescription("Sleeps the given seconds (at most 2), then answers; stops when cancelled"),
		mcp.WithNumber("seconds", mcp.Description("How long to work")), mcp.WithString("label", mcp.Description("Echoed in the answer")), optional),
		func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			secs := min(max(req.GetFloat("seconds", 0), 0), maxComputeSeconds)
			t := time.NewTimer(time.Duration(secs * float64(time.Second)))
			defer t.Stop()
			select {
			case <-t.C:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			return mcp.NewToolResultText(fmt.Sprintf("computed %q after %gs", req.GetString("label", ""), secs)), nil
		})

	f.s.AddTool(mcp.NewTool("failing_job", mcp.WithDescription("Reports a tool execution error after about a second"), optional),
		func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			select {
			case <-time.After(time.Second):
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			return mcp.NewToolResultError("failing_job failed, as it always does"), nil
		})

	f.s.AddTool(mcp.NewTool("protocol_error_job", mcp.WithDescription("Fails with a protocol-level error"), optional),
		func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return nil, errors.New("protocol_error_job: internal failure")
		})

	f.s.AddTool(mcp.NewTool("confirm_delete", mcp.WithDescription("Asks for a confirmation before it deletes"),
		mcp.WithString("target", mcp.Description("What to delete")), optional),
		func(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			if ok, answered := accepted(req.Params.InputResponses, "confirm", "confirm"); answered {
				if ok == true {
					return mcp.NewToolResultText("deleted " + req.GetString("target", "")), nil
				}
				return mcp.NewToolResultText("kept " + req.GetString("target", "")), nil
			}
			return server.NewInputRequestBuilder("").
				Elicit("confirm", elicitField("Delete "+req.GetString("target", "it")+"?", "confirm", "boolean")).ToolResult(), nil
		})

	f.s.AddTool(mcp.NewTool("multi_input", mcp.WithDescription("Asks for a name and a color; re-asks for what is missing"), optional),
		func(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			name, okName := accepted(req.Params.InputResponses, "name", "name")
			color, okColor := accepted(req.Params.InputResponses, "color", "color")
			if okName && okColor {
				return mcp.NewToolResultText(fmt.Sprintf("name=%v color=%v", name, color)), nil
			}
			b := server.NewInputRequestBuilder("")
			if !okName {
				b.Elicit("name", elicitName("What is your name?"))
			}
			if !okColor {
				b.Elicit("color", elicitField("What is your favorite color?", "color", "string"))
			}
			return b.ToolResult(), nil
		})

	f.s.AddTool(mcp.NewTool("test_tool_with_task", mcp.WithDescription("Asks for input synchronously, then finishes"), optional),
		func(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			if name, ok := accepted(req.Params.InputResponses, "user_name", "name"); ok {
				return mcp.NewToolResultText(fmt.Sprintf("Hello, %v!", name)), nil
			}
			return server.NewInputRequestBuilder("").Elicit("user_name", elicitName("What is your name?")).ToolResult(), nil
		})
}
