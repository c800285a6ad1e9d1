package transport

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcpguard/mcpguard/audit"
	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/authz"
	"github.com/mcpguard/mcpguard/internal/jsonrpc"
)

// stepUp answers, before mcp-go runs, a tools/call, prompts/get or
// resources/read that the policy denies for lack of scopes, with 403 and an
// RFC 6750 insufficient_scope challenge naming the scopes to request (the
// MCP authorization spec's step-up flow). It also records the JSON-RPC id
// for audit.
//
// It reads the method and name by jsonrpc.Peek over the body Edge already
// read — the same bytes mcp-go decodes, read the way encoding/json reads
// them; a body whose routing members are duplicated or differ only in case
// is refused with 400, so the name checked is the name dispatched. The body
// is always peeked (rather than trusting Mcp-Method/Mcp-Name, which mcp-go
// validates only for 2026-07-28 requests) because the JSON-RPC id is wanted
// for audit in every protocol version.
//
// Only a denial for missing scopes of a tool, prompt or resource that exists
// is answered here; everything else goes on to mcp-go, where the authz tool
// middleware and filters decide authoritatively (this check is only an early,
// friendlier answer).
type stepUp struct {
	policy  *authz.Policy
	srv     *server.MCPServer
	metaURL string
}

func (s *stepUp) handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, ok := bodyFromContext(r.Context())
		if !ok || r.Method != http.MethodPost {
			next.ServeHTTP(w, r)
			return
		}
		msg, err := jsonrpc.Peek(body)
		if errors.Is(err, jsonrpc.ErrAmbiguous) {
			audit.Annotate(r.Context(), audit.KindRequest, "ambiguous_jsonrpc_body")
			writeRPCError(w, http.StatusBadRequest, mcp.INVALID_REQUEST, "invalid request: duplicate or case-variant JSON member names")
			return
		}
		if err != nil {
			next.ServeHTTP(w, r) // mcp-go answers malformed bodies itself
			return
		}
		ctx := r.Context()
		if len(msg.ID) > 0 {
			ctx = audit.NewRPCIDContext(ctx, string(msg.ID))
			r = r.WithContext(ctx)
		}
		if s.policy == nil {
			next.ServeHTTP(w, r)
			return
		}
		p, _ := auth.FromContext(ctx)
		var d authz.Decision
		switch msg.Method {
		case authz.MethodToolsCall:
			t := s.srv.GetTool(msg.Name)
			if t == nil {
				next.ServeHTTP(w, r)
				return
			}
			d = s.policy.CheckTool(ctx, p, msg.Name, t.Tool.Annotations)
		case authz.MethodPromptsGet:
			if _, ok := s.srv.ListPrompts()[msg.Name]; !ok {
				next.ServeHTTP(w, r)
				return
			}
			d = s.policy.Check(ctx, p, msg.Method, msg.Name)
		case authz.MethodResourcesRead:
			d = s.policy.Check(ctx, p, msg.Method, msg.URI)
		default:
			next.ServeHTTP(w, r)
			return
		}
		if d.Allowed || d.Reason != authz.ReasonInsufficientScope {
			next.ServeHTTP(w, r)
			return
		}
		name := msg.Name
		if msg.Method == authz.MethodResourcesRead {
			name = msg.URI
		}
		audit.AnnotateRequest(ctx, audit.KindAccessDenied, "insufficient_scope", msg.Method, name)
		auth.WriteError(w, s.metaURL, d.Err())
	})
}

func writeRPCError(w http.ResponseWriter, status, code int, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(`{"jsonrpc":"2.0","id":null,"error":{"code":` + strconv.Itoa(code) + `,"message":"` + message + `"}}` + "\n"))
}
