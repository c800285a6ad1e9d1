package conformance

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// The multi round-trip (SEP-2322) diagnostic tools and prompt of the
// suite's input-required-result-* scenarios. Each handler returns an
// input_required result until the client answers every request it made,
// re-requesting what is missing (extra answers are ignored). mcp-go bridges
// the same handlers to server-initiated requests for 2025-11-25 clients.
//
// The requestState the handlers hand out is HMAC-SHA256 signed with a key
// of the fixture (stateSigner): the suite tampers with it and expects an
// error. Behind mcpguard the stack seals it once more on its way out.

// Limits of the fixture's own requestState.
const (
	maxStateBytes = 1 << 10
	stateTTL      = 5 * time.Minute
)

// errBadState is what a handler answers to a requestState it did not sign,
// signed for another tool or round, or that has expired.
var errBadState = errors.New("requestState failed its integrity check")

// stateSigner signs and checks the fixture's requestState:
// base64url(JSON claims) "." base64url(HMAC-SHA256(key, JSON claims)).
type stateSigner struct {
	key []byte
	now func() time.Time
}

type stateClaims struct {
	Tool    string `json:"t"`
	Round   int    `json:"r"`
	Expires int64  `json:"e"`
	Nonce   string `json:"n"`
}

func newStateSigner() stateSigner {
	key := make([]byte, 32)
	_, _ = rand.Read(key) // crypto/rand.Read never fails (Go 1.24+)
	return stateSigner{key: key, now: time.Now}
}

func (s stateSigner) mac(payload []byte) []byte {
	m := hmac.New(sha256.New, s.key)
	m.Write(payload)
	return m.Sum(nil)
}

// sign returns the state for round of tool.
func (s stateSigner) sign(tool string, round int) string {
	nonce := make([]byte, 12)
	_, _ = rand.Read(nonce)
	payload, _ := json.Marshal(stateClaims{
		Tool: tool, Round: round, Expires: s.now().Add(stateTTL).Unix(),
		Nonce: base64.RawURLEncoding.EncodeToString(nonce),
	})
	enc := base64.RawURLEncoding
	return enc.EncodeToString(payload) + "." + enc.EncodeToString(s.mac(payload))
}

// verify returns the round state was signed for, or errBadState.
func (s stateSigner) verify(tool, state string) (int, error) {
	if state == "" || len(state) > maxStateBytes {
		return 0, errBadState
	}
	p, m, ok := strings.Cut(state, ".")
	if !ok {
		return 0, errBadState
	}
	enc := base64.RawURLEncoding
	payload, err1 := enc.DecodeString(p)
	sig, err2 := enc.DecodeString(m)
	if err1 != nil || err2 != nil || !hmac.Equal(sig, s.mac(payload)) {
		return 0, errBadState
	}
	var c stateClaims
	if json.Unmarshal(payload, &c) != nil || c.Tool != tool || c.Round < 1 || s.now().Unix() > c.Expires {
		return 0, errBadState
	}
	return c.Round, nil
}

// Input requests the tools make.
func elicitName(msg string) mcp.ElicitationParams {
	return mcp.ElicitationParams{Message: msg, RequestedSchema: object(map[string]any{"name": map[string]any{"type": "string"}}, "name")}
}

func elicitField(msg, field, typ string) mcp.ElicitationParams {
	return mcp.ElicitationParams{Message: msg, RequestedSchema: object(map[string]any{field: map[string]any{"type": typ}}, field)}
}

func sampleText(prompt string, maxTokens int) mcp.CreateMessageParams {
	return mcp.CreateMessageParams{
		Messages:  []mcp.SamplingMessage{{Role: mcp.RoleUser, Content: mcp.NewTextContent(prompt)}},
		MaxTokens: maxTokens,
	}
}

// accepted returns field of the accepted elicitation answered under id.
func accepted(responses mcp.InputResponses, id, field string) (any, bool) {
	r := server.ElicitationResponse(responses, id)
	if r == nil || r.Action != mcp.ElicitationResponseActionAccept {
		return nil, false
	}
	content, ok := r.Content.(map[string]any)
	if !ok {
		return nil, false
	}
	v, ok := content[field]
	return v, ok
}

func sampledText(responses mcp.InputResponses, id string) (string, bool) {
	r := server.SamplingResponse(responses, id)
	if r == nil {
		return "", false
	}
	switch c := r.Content.(type) {
	case mcp.TextContent:
		return c.Text, true
	case *mcp.TextContent:
		return c.Text, c != nil
	case map[string]any:
		t, ok := c["text"].(string)
		return t, ok && c["type"] == "text"
	}
	return "", false
}

func rootURIs(responses mcp.InputResponses, id string) ([]string, bool) {
	r := server.RootsResponse(responses, id)
	if r == nil {
		return nil, false
	}
	uris := make([]string, 0, len(r.Roots))
	for _, root := range r.Roots {
		uris = append(uris, root.URI)
	}
	return uris, true
}

func (f fixtures) addInputRequiredTools() {
	signer := newStateSigner()
	tool := func(name, desc string, h server.ToolHandlerFunc) {
		f.s.AddTool(mcp.NewTool(name, mcp.WithDescription(desc)), h)
	}
	done := func(s string) *mcp.CallToolResult { return mcp.NewToolResultText(s) }

	tool("test_input_required_result_elicitation", "Asks for the user's name through a multi round-trip elicitation",
		func(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			if name, ok := accepted(req.Params.InputResponses, "user_name", "name"); ok {
				return done(fmt.Sprintf("Hello, %v!", name)), nil
			}
			return server.NewInputRequestBuilder("").Elicit("user_name", elicitName("What is your name?")).ToolResult(), nil
		})
	tool("test_input_required_result_sampling", "Asks the client's model for the capital of France",
		func(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			if answer, ok := sampledText(req.Params.InputResponses, "capital_question"); ok {
				return done("Sampling answered: " + answer), nil
			}
			return server.NewInputRequestBuilder("").
				Sample("capital_question", sampleText("What is the capital of France?", 100)).ToolResult(), nil
		})
	tool("test_input_required_result_list_roots", "Asks for the client's roots",
		func(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			if uris, ok := rootURIs(req.Params.InputResponses, "client_roots"); ok {
				return done("Client roots: " + strings.Join(uris, ", ")), nil
			}
			return server.NewInputRequestBuilder("").Roots("client_roots").ToolResult(), nil
		})

	// confirmTool asks for a confirmation with signed state and completes
	// only when the state it gets back verifies.
	confirmTool := func(name, desc string) {
		tool(name, desc, func(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			p := req.Params
			if _, answered := p.InputResponses["confirm"]; answered || p.RequestState != "" {
				if _, err := signer.verify(name, p.RequestState); err != nil {
					return nil, err
				}
				if _, ok := accepted(p.InputResponses, "confirm", "ok"); ok {
					return done("state-ok: confirmed"), nil
				}
			}
			return server.NewInputRequestBuilder(signer.sign(name, 1)).
				Elicit("confirm", elicitField("Please confirm", "ok", "boolean")).ToolResult(), nil
		})
	}
	confirmTool("test_input_required_result_request_state", "Asks for a confirmation, carrying signed requestState")
	confirmTool("test_input_required_result_tampered_state", "Asks for a confirmation; refuses requestState that fails its HMAC check")

	tool("test_input_required_result_multiple_inputs", "Asks for an elicitation, a sampling and the roots at once",
		func(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			const name = "test_input_required_result_multiple_inputs"
			p := req.Params
			if p.RequestState != "" {
				if _, err := signer.verify(name, p.RequestState); err != nil {
					return nil, err
				}
				user, ok1 := accepted(p.InputResponses, "user_name", "name")
				greeting, ok2 := sampledText(p.InputResponses, "greeting")
				uris, ok3 := rootURIs(p.InputResponses, "client_roots")
				if ok1 && ok2 && ok3 {
					return done(fmt.Sprintf("name=%v greeting=%q roots=%s", user, greeting, strings.Join(uris, ","))), nil
				}
			}
			return server.NewInputRequestBuilder(signer.sign(name, 1)).
				Elicit("user_name", elicitName("What is your name?")).
				Sample("greeting", sampleText("Generate a greeting", 50)).
				Roots("client_roots").ToolResult(), nil
		})

	tool("test_input_required_result_multi_round", "Asks two questions in two rounds, with signed state per round",
		func(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			const name = "test_input_required_result_multi_round"
			p := req.Params
			round := 0
			if p.RequestState != "" {
				r, err := signer.verify(name, p.RequestState)
				if err != nil {
					return nil, err
				}
				round = r
			}
			switch {
			case round == 2:
				if color, ok := accepted(p.InputResponses, "step2", "color"); ok {
					return done(fmt.Sprintf("Favorite color: %v", color)), nil
				}
			case round == 1:
				if _, ok := accepted(p.InputResponses, "step1", "name"); ok {
					return server.NewInputRequestBuilder(signer.sign(name, 2)).
						Elicit("step2", elicitField("Step 2: What is your favorite color?", "color", "string")).ToolResult(), nil
				}
			}
			if round == 2 {
				return server.NewInputRequestBuilder(signer.sign(name, 2)).
					Elicit("step2", elicitField("Step 2: What is your favorite color?", "color", "string")).ToolResult(), nil
			}
			return server.NewInputRequestBuilder(signer.sign(name, 1)).
				Elicit("step1", elicitName("Step 1: What is your name?")).ToolResult(), nil
		})

	tool("test_input_required_result_capabilities", "Asks only for input the client's declared capabilities allow",
		func(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			p := req.Params
			if len(p.InputResponses) > 0 {
				return done("capabilities respected"), nil
			}
			caps := p.Meta.ClientCapabilities()
			b := server.NewInputRequestBuilder("")
			asked := false
			if caps != nil && caps.Elicitation != nil {
				b.Elicit("user_name", elicitName("What is your name?"))
				asked = true
			}
			if caps != nil && caps.Sampling != nil {
				b.Sample("capital_question", sampleText("What is the capital of France?", 100))
				asked = true
			}
			if caps != nil && caps.Roots != nil {
				b.Roots("client_roots")
				asked = true
			}
			if !asked {
				return done("the client declared no capability to ask through"), nil
			}
			return b.ToolResult(), nil
		})

	f.s.AddPrompt(mcp.NewPrompt("test_input_required_result_prompt",
		mcp.WithPromptDescription("A prompt that asks for its context through a multi round-trip elicitation")),
		func(_ context.Context, req mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
			if c, ok := accepted(req.Params.InputResponses, "user_context", "context"); ok {
				return &mcp.GetPromptResult{Messages: []mcp.PromptMessage{{
					Role: mcp.RoleUser, Content: text(fmt.Sprintf("Answer with this context: %v", c)),
				}}}, nil
			}
			return server.NewInputRequestBuilder("").
				Elicit("user_context", elicitField("What context should the prompt use?", "context", "string")).PromptResult(), nil
		})
}

// schema202012 is the input schema of the json-schema-2020-12 scenario:
// $schema, $defs with an $anchor, $ref, allOf/anyOf, if/then/else and
// additionalProperties, which a server must list unchanged.
const schema202012 = `{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object",
"$defs":{"address":{"$anchor":"addressDef","type":"object","properties":{"street":{"type":"string"},"city":{"type":"string"}}}},
"properties":{"name":{"type":"string"},"address":{"$ref":"#/$defs/address"},"contactMethod":{"type":"string","enum":["phone","email"]},"phone":{"type":"string"},"email":{"type":"string"}},
"allOf":[{"anyOf":[{"required":["phone"]},{"required":["email"]}]}],
"if":{"properties":{"contactMethod":{"const":"phone"}},"required":["contactMethod"]},"then":{"required":["phone"]},"else":{"required":["email"]},
"additionalProperties":false}`

func (f fixtures) addSchemaTool() {
	f.s.AddTool(mcp.NewToolWithRawSchema("json_schema_2020_12_tool", "Tool with JSON Schema 2020-12 features", json.RawMessage(schema202012)),
		func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return mcp.NewToolResultText("JSON Schema 2020-12 tool called"), nil
		})
}
