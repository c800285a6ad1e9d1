package authz

import (
	"context"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpguard/mcpguard/auth"
)

// CheckTool is Check for a tools/call whose tool the caller has already
// found, with its annotations: the HTTP edge, which runs before mcp-go has
// put its server in the context, uses it so annotation-driven defaults
// (Config.ReadScope/WriteScope) see the real readOnlyHint. It does no I/O
// and allocates nothing when it allows.
func (pl *Policy) CheckTool(ctx context.Context, p *auth.Principal, name string, a mcp.ToolAnnotation) Decision {
	if pl == nil {
		return Decision{Reason: ReasonNoRule}
	}
	return pl.checkTool(ctx, p, name, hintOf(a))
}
