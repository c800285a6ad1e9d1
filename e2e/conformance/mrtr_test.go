package conformance

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// answers is the client side of the multi round-trip tools: it accepts
// every elicitation with the fields the fixture asks for, samples a fixed
// text and lists one root.
type answers struct{}

func (answers) Elicit(_ context.Context, req mcp.ElicitationRequest) (*mcp.ElicitationResult, error) {
	content := map[string]any{}
	if schema, ok := req.Params.RequestedSchema.(map[string]any); ok {
		props, _ := schema["properties"].(map[string]any)
		for k := range props {
			switch k {
			case "ok":
				content[k] = true
			default:
				content[k] = "value-of-" + k
			}
		}
	}
	return &mcp.ElicitationResult{ElicitationResponse: mcp.ElicitationResponse{Action: mcp.ElicitationResponseActionAccept, Content: content}}, nil
}

func (answers) CreateMessage(context.Context, mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
	return &mcp.CreateMessageResult{
		SamplingMessage: mcp.SamplingMessage{Role: mcp.RoleAssistant, Content: mcp.NewTextContent("Paris")},
		Model:           "test-model", StopReason: "endTurn",
	}, nil
}

func (answers) ListRoots(context.Context, mcp.ListRootsRequest) (*mcp.ListRootsResult, error) {
	return &mcp.ListRootsResult{Roots: []mcp.Root{{URI: "file:///test/root", Name: "Test Root"}}}, nil
}

// TestInputRequiredToolsBothEras calls the multi round-trip tools and prompt
// with mcp-go's client over real HTTP, bare and through the full mcpguard
// stack (which seals the fixture's signed requestState once more), in a
// 2025-11-25 session (mcp-go bridges to server-initiated requests) and
// stateless 2026-07-28 (the client answers input_required results).
func TestInputRequiredToolsBothEras(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tools := map[string]string{
		"test_input_required_result_elicitation":     "Hello, value-of-name!",
		"test_input_required_result_sampling":        "Sampling answered: Paris",
		"test_input_required_result_list_roots":      "Client roots: file:///test/root",
		"test_input_required_result_request_state":   "state-ok",
		"test_input_required_result_tampered_state":  "state-ok",
		"test_input_required_result_multiple_inputs": `name=value-of-name greeting="Paris" roots=file:///test/root`,
		"test_input_required_result_multi_round":     "Favorite color: value-of-color",
	}
	for _, guarded := range []bool{false, true} {
		srv, err := Start(ctx, Options{Guarded: guarded})
		require.NoError(t, err)
		t.Cleanup(srv.Close)
		for _, era := range Revisions {
			name := era + "/bare"
			if guarded {
				name = era + "/wrapped"
			}
			t.Run(name, func(t *testing.T) {
				var topts []transport.StreamableHTTPCOption
				if era == "2025-11-25" {
					// Server-initiated requests of the session era arrive
					// on the GET stream.
					topts = append(topts, transport.WithContinuousListening())
				}
				tr, err := transport.NewStreamableHTTP(srv.URL, topts...)
				require.NoError(t, err)
				c := client.NewClient(tr, client.WithProtocolVersion(era),
					client.WithElicitationHandler(answers{}), client.WithSamplingHandler(answers{}), client.WithRootsHandler(answers{}))
				require.NoError(t, c.Start(ctx))
				defer c.Close()
				init := mcp.InitializeRequest{}
				init.Params.ProtocolVersion = era
				init.Params.ClientInfo = mcp.Implementation{Name: "mrtr-test", Version: "1"}
				_, err = c.Initialize(ctx, init)
				require.NoError(t, err)

				for tool, want := range tools {
					req := mcp.CallToolRequest{}
					req.Params.Name = tool
					res, err := c.CallTool(ctx, req)
					if !assert.NoError(t, err, tool) {
						continue
					}
					require.False(t, res.NeedsInput(), tool)
					require.NotEmpty(t, res.Content, tool)
					assert.Contains(t, res.Content[0].(mcp.TextContent).Text, want, tool)
				}
				p, err := c.GetPrompt(ctx, mcp.GetPromptRequest{Params: mcp.GetPromptParams{Name: "test_input_required_result_prompt"}})
				require.NoError(t, err)
				require.Len(t, p.Messages, 1)
				assert.Contains(t, p.Messages[0].Content.(mcp.TextContent).Text, "value-of-context")
			})
		}
	}
}

func TestStateSigner(t *testing.T) {
	s := newStateSigner()
	now := time.Unix(1_800_000_000, 0)
	s.now = func() time.Time { return now }
	st := s.sign("tool_a", 2)
	round, err := s.verify("tool_a", st)
	require.NoError(t, err)
	assert.Equal(t, 2, round)
	assert.NotEqual(t, st, s.sign("tool_a", 2), "every state carries its own nonce")

	payload, mac, _ := strings.Cut(st, ".")
	other := newStateSigner()
	for name, bad := range map[string]string{
		"empty":         "",
		"tampered":      st + "-TAMPERED",
		"no mac":        payload,
		"mac only":      "." + mac,
		"swapped":       mac + "." + payload,
		"another key":   other.sign("tool_a", 2),
		"oversized":     strings.Repeat("a", maxStateBytes+1),
		"not base64url": payload + ".!!!",
	} {
		_, err := s.verify("tool_a", bad)
		assert.ErrorIs(t, err, errBadState, name)
	}
	_, err = s.verify("tool_b", st)
	assert.ErrorIs(t, err, errBadState, "state is bound to its tool")
	now = now.Add(stateTTL + time.Second)
	_, err = s.verify("tool_a", st)
	assert.ErrorIs(t, err, errBadState, "expired")
}

func FuzzStateVerify(f *testing.F) {
	s := newStateSigner()
	f.Add(s.sign("t", 1))
	f.Add("e30.AAAA")
	f.Add("")
	f.Fuzz(func(t *testing.T, state string) {
		round, err := s.verify("t", state)
		if err == nil && round < 1 {
			t.Fatalf("accepted round %d", round)
		}
	})
}
