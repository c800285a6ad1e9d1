package main

import (
	"io"
	"net"
	"net/http"
	"time"

	"github.com/mcpguard/mcpguard/audit"
	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/authz"
	"github.com/mcpguard/mcpguard/tenancy"
	"github.com/mcpguard/mcpguard/transport"
	"github.com/mcpguard/mcpguard/transport/ratelimit"
)

// mcpguardVariant is the full mcpguard prod stack under test.
type mcpguardVariant struct {
	variant
	refreshWindow time.Duration
	stop          func()
}

// newMCPGuardVariant wires the stack as a production server would: JWT
// validation against the IdP's JWKS, tenancy from tenant_id, a policy
// requiring load:call, rate limits before and after authentication (set far
// above what the load reaches), and audit to a discarding JSON sink.
func newMCPGuardVariant(p *idp) (*mcpguardVariant, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	resource := "http://" + ln.Addr().String() + "/mcp"
	const window = 5 * time.Second
	v, err := auth.NewJWTValidator(auth.JWTConfig{
		Issuer: p.issuer, Audience: resource, JWKSURL: p.issuer + "/jwks", RefetchCooldown: window,
	})
	if err != nil {
		return nil, err
	}
	pl, err := authz.New(authz.Config{ToolRules: map[string]authz.Rule{"noop": {AllOf: []string{"load:call"}}}})
	if err != nil {
		return nil, err
	}
	tn, err := tenancy.New(tenancy.Config{})
	if err != nil {
		return nil, err
	}
	sink, err := audit.NewJSONSink(io.Discard)
	if err != nil {
		return nil, err
	}
	rec, err := audit.New(audit.Config{Sink: sink})
	if err != nil {
		return nil, err
	}
	lim, err := ratelimit.NewMemory(ratelimit.MemoryConfig{})
	if err != nil {
		return nil, err
	}
	high := ratelimit.PerSecond(1_000_000)
	pre, err := ratelimit.NewRequestLimit(ratelimit.RequestLimitConfig{Limiter: lim, Limit: high, KeyBy: ratelimit.Client, Namespace: "preauth"})
	if err != nil {
		return nil, err
	}
	post, err := ratelimit.NewRequestLimit(ratelimit.RequestLimitConfig{Limiter: lim, Limit: high})
	if err != nil {
		return nil, err
	}
	g, err := transport.New(transport.Config{
		Resource:             resource,
		AuthorizationServers: []string{p.issuer},
		Validator:            v,
		Policy:               pl,
		Tenancy:              tn,
		PreAuthRateLimit:     pre,
		RateLimit:            post,
		Audit:                rec,
	})
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: g.Handler(newMCPServer(g.ServerOptions()...)), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return &mcpguardVariant{
		variant:       variant{name: "mcpguard", url: resource, token: p.mint(p.kid, resource)},
		refreshWindow: window,
		stop:          func() { _ = srv.Close(); _ = rec.Close(); _ = v.Close() },
	}, nil
}
