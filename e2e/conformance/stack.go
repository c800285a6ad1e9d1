package conformance

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/mark3labs/mcp-go/server"

	"github.com/mcpguard/mcpguard/audit"
	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/auth/authtest"
	"github.com/mcpguard/mcpguard/authz"
	"github.com/mcpguard/mcpguard/tenancy"
	"github.com/mcpguard/mcpguard/transport"
	"github.com/mcpguard/mcpguard/transport/ratelimit"
)

// Tenant is the tenant of the token the conformance stack's proxy sends.
const Tenant = "conformance"

// TenantClaim is the claim carrying the tenant in that token.
const TenantClaim = "tenant"

// The scopes the stack's policy requires, all held by the proxy's token.
const (
	scopeTools     = "tools:call"
	scopeResources = "resources:read"
	scopePrompts   = "prompts:get"
)

// ProdStack builds mcpguard's production stack (transport.New in ModeProd)
// for a server whose MCP endpoint clients reach at resource (an absolute
// URL; the token-adding proxy listens there). It is the one place the
// wrapped conformance run depends on mcpguard's packages. logger receives
// mcp-go's Streamable HTTP server logs; nil discards them.
//
// Every layer is on: Origin/Content-Type/body checks, request IDs, audit (to
// a discarding JSON sink), RS256 JWT authentication with keys found through
// OpenID discovery of an in-process authtest issuer (audience = resource,
// RFC 9068 profile), tenancy from a verified claim with an allow-list,
// session binding, rate limits far above what the suite sends, HTTP-level
// step-up, the authz policy (every tool, prompt and resource needs a scope,
// which the proxy's token holds) and tool budgets. The suite's requests
// carry the server's own origin in its DNS-rebinding scenario, so that
// origin is allowed.
func ProdStack(ctx context.Context, resource string, logger *slog.Logger) (st *Stack, err error) {
	u, err := url.Parse(resource)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("conformance: resource %q is not an absolute URL", resource)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	var closers []func()
	release := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	defer func() {
		if err != nil {
			release()
		}
	}()

	idp, err := authtest.New(authtest.Config{Audience: resource})
	if err != nil {
		return nil, err
	}
	closers = append(closers, idp.Close)
	validator, err := auth.NewJWTValidator(auth.JWTConfig{
		Issuer:       idp.Issuer(),
		Audience:     resource,
		Algorithms:   []string{"RS256"},
		RequireATJWT: true,
	})
	if err != nil {
		return nil, err
	}
	closers = append(closers, func() { _ = validator.Close() })
	tenants, err := tenancy.New(tenancy.Config{Claim: TenantClaim, Allowed: []string{Tenant}})
	if err != nil {
		return nil, err
	}
	policy, err := authz.New(authz.Config{
		DefaultToolRule:     authz.Rule{AllOf: []string{scopeTools}},
		DefaultPromptRule:   authz.Rule{AllOf: []string{scopePrompts}},
		DefaultResourceRule: authz.Rule{AllOf: []string{scopeResources}},
	})
	if err != nil {
		return nil, err
	}
	sink, err := audit.NewJSONSink(io.Discard)
	if err != nil {
		return nil, err
	}
	rec, err := audit.New(audit.Config{Sink: sink, Mode: audit.Async})
	if err != nil {
		return nil, err
	}
	closers = append(closers, func() { _ = rec.Close() })
	limiter, err := ratelimit.NewMemory(ratelimit.MemoryConfig{})
	if err != nil {
		return nil, err
	}
	requests, err := ratelimit.NewRequestLimit(ratelimit.RequestLimitConfig{Limiter: limiter, Limit: ratelimit.PerSecond(10_000)})
	if err != nil {
		return nil, err
	}
	unauthenticated, err := ratelimit.NewRequestLimit(ratelimit.RequestLimitConfig{Limiter: limiter, Limit: ratelimit.PerSecond(1_000), Namespace: "unauth"})
	if err != nil {
		return nil, err
	}
	budgets, err := ratelimit.NewToolBudgets(ratelimit.ToolBudgetsConfig{
		Limiter: limiter,
		Default: ratelimit.Budget{Rate: ratelimit.PerSecond(1_000), MaxConcurrent: 100},
	})
	if err != nil {
		return nil, err
	}

	guard, err := transport.New(transport.Config{
		Mode:                     transport.ModeProd,
		Resource:                 resource,
		AuthorizationServers:     []string{idp.Issuer()},
		Validator:                validator,
		Policy:                   policy,
		Tenancy:                  tenants,
		Audit:                    rec,
		RateLimit:                requests,
		UnauthenticatedRateLimit: unauthenticated,
		ToolBudgets:              budgets,
		Edge:                     transport.EdgeConfig{AllowedOrigins: []string{u.Scheme + "://" + u.Host}},
		HTTPOptions:              []server.StreamableHTTPOption{server.WithStreamableHTTPLogger(logger)},
		Logger:                   logger,
	})
	if err != nil {
		return nil, err
	}

	token, err := idp.Mint(map[string]any{
		"scope":     strings.Join([]string{scopeTools, scopeResources, scopePrompts}, " "),
		TenantClaim: Tenant,
	})
	if err != nil {
		return nil, err
	}
	// Fetch the issuer's metadata and keys now, so that the first request
	// is not the one that waits for them.
	if _, err := validator.Validate(ctx, token); err != nil {
		return nil, fmt.Errorf("conformance: the stack rejects its own token: %w", err)
	}

	return &Stack{
		ServerOptions: guard.ServerOptions(),
		Handler:       func(srv *server.MCPServer) http.Handler { return guard.Handler(srv) },
		Token:         func(context.Context) (string, error) { return token, nil },
		Close:         release,
	}, nil
}
