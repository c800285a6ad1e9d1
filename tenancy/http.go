package tenancy

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/mcpguard/mcpguard/auth"
)

// JSON-RPC error codes of rejection bodies, from the implementation-defined
// server error range (JSON-RPC 2.0 §5.1; MCP keeps -32000 to -32019 for
// implementations).
const (
	// CodeUnauthorized is the JSON-RPC error code sent with a 401.
	CodeUnauthorized = -32001
	// CodeForbidden is the JSON-RPC error code sent with a 403.
	CodeForbidden = -32003
)

// Middleware is the HTTP middleware that resolves the tenant of each request
// from the auth.Principal the auth middleware stored in its context and
// serves next with the tenant in the context (see FromContext). It must be
// installed inside (after) the auth middleware.
//
// Requests are rejected, before next sees them, with:
//   - 401 when the context holds no principal at all: the auth middleware is
//     missing or was bypassed, and failing closed is the only safe answer;
//   - 403 when the tenant is missing (unless AllowMissingTenant), invalid,
//     not allowed, or a narrowing header is refused.
//
// The rejection body is a JSON-RPC 2.0 error response with a null id
// (JSON-RPC 2.0 §5: the id could not be determined without parsing the
// body), Content-Type application/json:
//
//	{"jsonrpc":"2.0","id":null,"error":{"code":-32003,
//	  "message":"tenant required: the access token does not name a tenant",
//	  "data":{"reason":"tenant_required"}}}
//
// What a client shows depends on the status and the request: mcp-go's
// client decodes the JSON-RPC body of a 403 (or any other non-2xx answer
// except 401) to a request other than initialize and returns error.message
// as the call's error; for a 401 it returns an AuthorizationRequiredError
// carrying only the resource metadata URL, and for a 4xx to initialize
// ErrLegacySSEServer, so in those two cases the body is not shown. Other
// clients may show the body text with the status. The message
// and reason come from a fixed table; the internal cause goes only to
// Config.OnError. A 401 also carries "WWW-Authenticate: Bearer" (RFC 9110
// §15.5.2).
//
// The tenant next sees is always the one resolved here: a tenant stored in
// the context earlier in the chain is replaced (or cleared, when
// AllowMissingTenant lets a tenantless principal through). No header is
// read unless Config.Narrowing.Header is set, and then only as described by
// Narrow. The request is never modified; next receives a
// shallow copy with the new context. The handler is safe for concurrent
// use.
func (r *Resolver) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		ctx := req.Context()
		p, ok := auth.FromContext(ctx)
		if !ok {
			r.reject(w, req, errNoPrincipal())
			return
		}
		var (
			tenant string
			err    error
		)
		if vals := r.narrowValues(req); vals != nil {
			if len(vals) != 1 {
				err = errInvalidRequested(fmt.Errorf("%w: the narrowing header must appear exactly once", ErrInvalidTenant))
			} else {
				tenant, err = r.Narrow(p, vals[0])
			}
		} else {
			tenant, err = r.Resolve(p)
		}
		if err != nil {
			r.reject(w, req, err)
			return
		}
		if tenant == "" {
			// AllowMissingTenant: make sure no tenant set earlier in the
			// chain survives a decision of "none".
			if _, set := FromContext(ctx); set {
				req = req.WithContext(NewContext(ctx, ""))
			}
			next.ServeHTTP(w, req)
			return
		}
		next.ServeHTTP(w, req.WithContext(NewContext(ctx, tenant)))
	})
}

func (r *Resolver) narrowValues(req *http.Request) []string {
	if r.narrow.Header == "" {
		return nil
	}
	vals, ok := req.Header[r.narrow.Header]
	if !ok {
		return nil
	}
	if vals == nil {
		vals = []string{}
	}
	return vals
}

func (r *Resolver) reject(w http.ResponseWriter, req *http.Request, err error) {
	e := asError(err)
	if r.onError != nil {
		r.onError(req, e)
	}
	WriteError(w, e)
}

type rpcError struct {
	JSONRPC string   `json:"jsonrpc"`
	ID      any      `json:"id"`
	Error   rpcInner `json:"error"`
}

type rpcInner struct {
	Code    int     `json:"code"`
	Message string  `json:"message"`
	Data    rpcData `json:"data"`
}

type rpcData struct {
	Reason string `json:"reason"`
}

// WriteError writes the response Middleware sends for err: the status of
// err's *Error (403 when err is not one; 401 for ErrNoPrincipal), and a
// JSON-RPC error body carrying only its fixed Description and Reason. Use
// it from other middleware that rejects a request for a tenancy reason.
func WriteError(w http.ResponseWriter, err error) {
	e := asError(err)
	status, code := http.StatusForbidden, CodeForbidden
	if e.Status == http.StatusUnauthorized {
		status, code = http.StatusUnauthorized, CodeUnauthorized
	}
	body, merr := json.Marshal(rpcError{
		JSONRPC: "2.0",
		Error:   rpcInner{Code: code, Message: e.Description, Data: rpcData{Reason: e.Reason}},
	})
	if merr != nil {
		body = []byte(`{"jsonrpc":"2.0","id":null,"error":{"code":-32003,"message":"forbidden"}}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	if status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", "Bearer") // RFC 6750 §3: no credential, so no error code
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
