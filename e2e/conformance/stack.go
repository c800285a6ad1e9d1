package conformance

import (
	"context"
	"errors"
)

// ErrStackUnavailable reports that ProdStack cannot build mcpguard's
// production stack yet because the packages it needs are not there.
var ErrStackUnavailable = errors.New("conformance: mcpguard's prod stack is not available")

// ProdStack builds mcpguard's production stack for a server whose MCP
// endpoint clients reach at resource (an absolute URL ending in /mcp; the
// token-adding proxy listens there). It is the one place the wrapped
// conformance run depends on mcpguard's packages.
func ProdStack(ctx context.Context, resource string) (*Stack, error) {
	_, _ = ctx, resource
	return nil, ErrStackUnavailable
}
