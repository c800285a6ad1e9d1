package transport

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcpguard/mcpguard/audit"
	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/authz"
	"github.com/mcpguard/mcpguard/internal/era"
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
// Before any policy check it enforces the method table
// (authz.ClassifyMethod): a JSON-RPC batch is refused with 400, and a method
// no client may send — unknown, or sent by servers only — is answered with
// JSON-RPC -32601 (HTTP 404 for a 2026-07-28 request, as that version maps
// the code; 400 for a notification) and audited as access_denied
// "method_not_found", with or without a policy.
//
// A notifications/cancelled without a session is refused too (see the
// handler).
//
// Only a denial for missing scopes of a tool, prompt or resource that exists
// (resources/subscribe and unsubscribe are decided like resources/read)
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
		if isBatch(body) {
			audit.Annotate(r.Context(), audit.KindRequest, "jsonrpc_batch")
			writeRPCError(w, http.StatusBadRequest, mcp.INVALID_REQUEST, "invalid request: JSON-RPC batches are not supported")
			return
		}
		msg, err := jsonrpc.PeekMemo(r.Context(), body)
		if errors.Is(err, jsonrpc.ErrAmbiguous) {
			audit.Annotate(r.Context(), audit.KindRequest, "ambiguous_jsonrpc_body")
			writeRPCError(w, http.StatusBadRequest, mcp.INVALID_REQUEST, "invalid request: duplicate or case-variant JSON member names")
			return
		}
		if err != nil {
			// Peek refuses what it cannot read exactly — a body over
			// jsonrpc.MaxPeekBytes (EdgeConfig.MaxBodyBytes may be larger)
			// among others — yet mcp-go may still dispatch it. Read the
			// routing fields as mcp-go does, so that the method table and
			// the sessionless-cancel check below hold for every body mcp-go
			// dispatches: mcp-go runs no request hook for notifications, so
			// the edge is their only gate.
			var ok bool
			if msg, ok = decodeRouting(body); !ok {
				next.ServeHTTP(w, r) // mcp-go answers bodies it cannot decode itself
				return
			}
		}
		ctx := r.Context()
		if len(msg.ID) > 0 {
			id := string(msg.ID)
			audit.AnnotateRPCID(ctx, id)
			if c, derived := setRPCID(ctx, id); derived {
				ctx = c
				r = r.WithContext(ctx)
			}
		}
		// Default deny by method (authz.ClassifyMethod): a method no client
		// may send never reaches mcp-go. A message without a method is a
		// client's response to a server request, which mcp-go routes.
		if msg.Method != "" && authz.ClassifyMethod(msg.Method) == authz.MethodRefused {
			audit.AnnotateRequest(ctx, audit.KindAccessDenied, "method_not_found", msg.Method, "")
			status := http.StatusOK
			switch {
			case len(msg.ID) == 0:
				status = http.StatusBadRequest // a notification gets no JSON-RPC answer
			case mcp.IsModernProtocol(r.Header.Get(mcp.HeaderProtocolVersion)):
				status = http.StatusNotFound // as 2026-07-28 maps -32601
			}
			writeRPCErrorID(w, status, msg.ID, mcp.METHOD_NOT_FOUND, "method not found")
			return
		}
		// mcp-go keys in-flight requests by session ID and JSON-RPC id, and
		// a request without a session (every 2026-07-28 request) by its id
		// alone: a sessionless notifications/cancelled would cancel another
		// caller's request that happens to share the id. A 2026-07-28
		// message is served without a session even when it names one (the
		// caller's own, which session binding lets through), so the cancel
		// is refused unless mcp-go will serve it in the session it names.
		// Over HTTP without a session, ending the request's stream is the
		// cancellation (mcp-go's client sends nothing else).
		if msg.Method == methodCancelled && (r.Header.Get("Mcp-Session-Id") == "" || era.Modern(r.Header.Get(mcp.HeaderProtocolVersion), body)) {
			audit.AnnotateRequest(ctx, audit.KindAccessDenied, "cancel_without_session", msg.Method, "")
			writeRPCError(w, http.StatusBadRequest, mcp.INVALID_REQUEST, "invalid request: notifications/cancelled needs a session; without one, close the request's stream")
			return
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
		case authz.MethodResourcesRead, authz.MethodResourcesSubscribe, authz.MethodResourcesUnsubscribe:
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
		if msg.Method != authz.MethodToolsCall && msg.Method != authz.MethodPromptsGet {
			name = msg.URI
		}
		audit.AnnotateRequest(ctx, audit.KindAccessDenied, "insufficient_scope", msg.Method, name)
		auth.WriteErrorFor(w, r, s.metaURL, d.Err())
	})
}

// writeRPCError writes a JSON-RPC error with a null id. message is a
// constant of this package, never client input.
const methodCancelled = "notifications/cancelled"

func writeRPCError(w http.ResponseWriter, status, code int, message string) {
	writeRPCErrorID(w, status, nil, code, message)
}

// writeRPCErrorID writes a JSON-RPC error answering the request whose raw
// id (as jsonrpc.Peek returned it) is id; nil means null. Peek does not
// validate what it skips, so in a body mcp-go would refuse the id may be
// no JSON value at all ({"id":1"x":"y",…}: members of the client's choosing
// in the answer); such an id, like one that is neither a string nor a
// number, is answered as null.
func writeRPCErrorID(w http.ResponseWriter, status int, id json.RawMessage, code int, message string) {
	if len(id) == 0 || !(id[0] == '"' || id[0] == '-' || '0' <= id[0] && id[0] <= '9') || !json.Valid(id) {
		id = json.RawMessage("null") // JSON-RPC ids are strings or numbers
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(`{"jsonrpc":"2.0","id":` + string(id) + `,"error":{"code":` + strconv.Itoa(code) + `,"message":"` + message + `"}}` + "\n"))
}

// decodeRouting reads the id and method of body with encoding/json, as
// mcp-go reads them (case-insensitive member names, the last duplicate
// wins), for bodies jsonrpc.Peek refuses. ok is false when mcp-go could not
// decode them either. Name and URI are left empty: the step-up answer is an
// optimisation that such a body does without.
func decodeRouting(body []byte) (jsonrpc.Message, bool) {
	var base struct {
		ID     json.RawMessage `json:"id"`
		Method string          `json:"method"`
	}
	if json.Unmarshal(body, &base) != nil {
		return jsonrpc.Message{}, false
	}
	msg := jsonrpc.Message{Method: base.Method}
	if len(base.ID) > 0 && string(base.ID) != "null" {
		msg.ID = base.ID
	}
	return msg, true
}

// isBatch reports whether body is a JSON array: a JSON-RPC batch, which MCP
// no longer allows. The edge refuses it rather than let one element go
// unchecked.
func isBatch(body []byte) bool {
	for _, c := range body {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		}
		return c == '['
	}
	return false
}
