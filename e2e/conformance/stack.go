package conformance

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/mark3labs/mcp-go/server"

	"github.com/mcpguard/mcpguard/audit"
	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/auth/authtest"
	"github.com/mcpguard/mcpguard/tenancy"
	"github.com/mcpguard/mcpguard/transport"
)

// Tenant is the tenant of the token the conformance stack's proxy sends.
const Tenant = "conformance"

// TenantClaim is the claim carrying the tenant in that token.
const TenantClaim = "tenant"

// Scopes are the scopes of that token.
var scopes = []string{"tools:call", "resources:read", "prompts:get"}

// ProdStack builds mcpguard's production stack for a server whose MCP
// endpoint clients reach at resource (an absolute URL; the token-adding
// proxy listens there). It is the one place the wrapped conformance run
// depends on mcpguard's packages.
//
// Until transport offers the one-call composition, the stack is assembled
// here in the order DESIGN.md prescribes, from the outside in:
//
//	transport.Edge (Origin, Content-Type, body limit, request ID)
//	audit Recorder.Middleware (records refusals)
//	auth.Middleware (RS256 JWT via OIDC discovery + JWKS of an authtest
//	    issuer, audience = resource, RFC 9068 profile enforced)
//	tenancy Resolver.Handler (tenant from the verified claim, allow-list)
//	transport SessionBinding (session IDs bound to the principal)
//	audit.Capture
//	mcp-go Streamable HTTP server, with audit's tool, resource and prompt
//	    middleware, writing JSON events to a discarding sink
//
// plus the RFC 9728 protected resource metadata route. The identity
// provider is authtest's, in-process on loopback; Token mints one access
// token for the stack's life.
func ProdStack(ctx context.Context, resource string) (st *Stack, err error) {
	u, err := url.Parse(resource)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("conformance: resource %q is not an absolute URL", resource)
	}
	var closers []func()
	defer func() {
		if err != nil {
			for i := len(closers) - 1; i >= 0; i-- {
				closers[i]()
			}
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
	metaURL, err := auth.ResourceMetadataURL(resource)
	if err != nil {
		return nil, err
	}
	authn, err := auth.Middleware(validator, auth.MiddlewareConfig{ResourceMetadataURL: metaURL})
	if err != nil {
		return nil, err
	}
	tenants, err := tenancy.New(tenancy.Config{Claim: TenantClaim, Allowed: []string{Tenant}})
	if err != nil {
		return nil, err
	}
	binding, err := transport.NewSessionBinding(nil)
	if err != nil {
		return nil, err
	}
	// The server's own origin is allowed: the suite's DNS-rebinding
	// scenario sends it with its valid request.
	edge, err := transport.Edge(transport.EdgeConfig{AllowedOrigins: []string{u.Scheme + "://" + u.Host}})
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

	token, err := idp.Mint(map[string]any{"scope": strings.Join(scopes, " "), TenantClaim: Tenant})
	if err != nil {
		return nil, err
	}
	// Fetch the issuer's metadata and keys now, so that the first request
	// is not the one that waits for them.
	if _, err := validator.Validate(ctx, token); err != nil {
		return nil, fmt.Errorf("conformance: the stack rejects its own token: %w", err)
	}

	return &Stack{
		ServerOptions: []server.ServerOption{
			server.WithToolHandlerMiddleware(rec.ToolMiddleware),
			server.WithResourceHandlerMiddleware(rec.ResourceMiddleware),
			server.WithPromptHandlerMiddleware(rec.PromptMiddleware),
		},
		Wrap: func(h http.Handler) http.Handler {
			h = audit.Capture(h)
			h = binding.Middleware(h)
			h = tenants.Handler(h)
			h = authn(h)
			h = rec.Middleware(h)
			return edge(h)
		},
		Mount: func(mux *http.ServeMux) error {
			_, err := auth.MountMetadata(mux, auth.MetadataConfig{
				Resource:             resource,
				AuthorizationServers: []string{idp.Issuer()},
				ScopesSupported:      scopes,
			})
			return err
		},
		Token: func(context.Context) (string, error) { return token, nil },
		Close: func() {
			for i := len(closers) - 1; i >= 0; i-- {
				closers[i]()
			}
		},
	}, nil
}
