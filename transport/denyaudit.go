package transport

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/mark3labs/mcp-go/server"

	"github.com/mcpguard/mcpguard/audit"
	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/authz"
	"github.com/mcpguard/mcpguard/internal/era"
	"github.com/mcpguard/mcpguard/internal/jsonrpc"
)

// denialAudit records the policy's decisions that no audit middleware sees:
// its refusals, and the requests its request hook alone allows
// (completion/complete and the subscription methods, Recorder.Allowed).
// mcp-go answers a tools/call or prompts/get whose tool or prompt the
// policy's filter hides with "not found" before any tool or prompt
// middleware runs, and a request the policy's request hook refuses
// (a scope denial when step-up is off, completion/complete, the
// subscription methods, a method the table refuses) before dispatch: none
// of them reached Recorder.ToolMiddleware or PromptMiddleware, so the trail
// held no denial, or for a 2026-07-28 request only an http_request 400.
//
// Its request hook runs before the policy's and decides as it does
// (authz.Policy.Check for tools/call and prompts/get, the policy's own
// hook for the rest), recording each refusal with Recorder.Denial; it
// never refuses anything itself. resources/read is left to
// Recorder.ResourceMiddleware, which sees the authoritative check's
// refusal. A refusal the filter makes is the decision Check makes, so a
// call the hook records as denied never reaches the tool middleware.
type denialAudit struct {
	rec    *audit.Recorder
	policy *authz.Policy
	hook   server.OnRequestInitializationFunc // the policy's RequestHook
}

// option adds the hook to the server's Hooks (created if there are none).
// It must come before the policy's ServerOptions, so that it runs first.
func (a *denialAudit) option() server.ServerOption {
	return func(s *server.MCPServer) {
		h := s.GetHooks()
		if h == nil {
			h = &server.Hooks{}
			server.WithHooks(h)(s)
		}
		h.AddOnRequestInitialization(a.record)
	}
}

func (a *denialAudit) record(ctx context.Context, id any, message any) error {
	var body []byte
	switch m := message.(type) {
	case json.RawMessage:
		body = m
	case []byte:
		body = m
	default:
		return nil
	}
	msg, err := jsonrpc.PeekMemo(ctx, body)
	if err != nil {
		// Read the routing fields as mcp-go decodes them.
		var base struct {
			Method string `json:"method"`
			Params struct {
				Name string `json:"name"`
			} `json:"params"`
		}
		if json.Unmarshal(body, &base) != nil {
			return nil
		}
		msg = jsonrpc.Message{Method: base.Method, Name: base.Params.Name}
	}
	switch msg.Method {
	case authz.MethodResourcesRead:
		return nil // Recorder.ResourceMiddleware records its refusal
	case authz.MethodToolsCall, authz.MethodPromptsGet:
		p, _ := auth.FromContext(ctx)
		if d := a.policy.Check(ctx, p, msg.Method, msg.Name); !d.Allowed {
			a.rec.Denial(ctx, msg.Method, msg.Name, d.Reason.String())
		}
		return nil
	}
	var denied *authz.DeniedError
	switch err := a.hook(ctx, id, message); {
	case errors.As(err, &denied):
		a.rec.Denial(ctx, msg.Method, "", denied.Reason.String())
	case err == nil && decidedByHook(msg.Method, body):
		// Allowed, and no middleware will record it: say so, as for a
		// refusal.
		uri := ""
		if msg.Method == authz.MethodResourcesSubscribe || msg.Method == authz.MethodResourcesUnsubscribe {
			uri = msg.URI
		}
		a.rec.Allowed(ctx, msg.Method, uri)
	}
	return nil
}

// decidedByHook reports whether the policy's request hook is what decides
// method: a mediated method other than tools/call, prompts/get and
// resources/read (whose middlewares decide and record), except
// resources/subscribe and resources/unsubscribe in a 2026-07-28 request,
// which the hook passes on for mcp-go to refuse (that era removed them).
func decidedByHook(method string, body []byte) bool {
	switch method {
	case authz.MethodResourcesSubscribe, authz.MethodResourcesUnsubscribe:
		return !era.BodyModern(body)
	}
	return authz.ClassifyMethod(method) == authz.MethodMediated
}
