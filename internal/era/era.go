// Package era tells which protocol era mcp-go serves a JSON-RPC message in,
// by mcp-go's own rule, so that mcpguard's checks and mcp-go's dispatcher
// cannot disagree about it.
package era

import (
	"encoding/json"

	"github.com/mark3labs/mcp-go/mcp"
)

// BodyModern reports whether body's params._meta names a 2026-07-28 (or
// later, stateless) protocol version. It decodes the same member with the
// same mcp.Meta type as mcp-go's dispatcher does, and applies
// mcp.IsModernProtocol to it.
func BodyModern(body []byte) bool {
	var w struct {
		Params struct {
			Meta *mcp.Meta `json:"_meta"`
		} `json:"params"`
	}
	if json.Unmarshal(body, &w) != nil {
		return false
	}
	return mcp.IsModernProtocol(w.Params.Meta.ProtocolVersion())
}

// Modern reports whether mcp-go's Streamable HTTP transport serves a POST
// with the Mcp-Protocol-Version header value headerVersion and body body as
// a 2026-07-28 request: when either the header or params._meta names a
// modern version. Such a request is served without the session its
// Mcp-Session-Id header may name.
func Modern(headerVersion string, body []byte) bool {
	return mcp.IsModernProtocol(headerVersion) || BodyModern(body)
}
