package transport

import (
	"context"
	"fmt"
	"os"

	"github.com/mark3labs/mcp-go/server"

	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/tenancy"
)

// StdioConfig configures the identity of a server run as a local
// subprocess over stdio, where there is no HTTP request to carry a token.
type StdioConfig struct {
	// TokenEnv names the environment variable holding a bearer token. When
	// set, the token is validated once, at start, with Validator.
	TokenEnv string
	// Validator validates the token from TokenEnv. Required with TokenEnv.
	Validator auth.Validator
	// Tenant resolves the tenant from the validated principal; optional.
	Tenant func(*auth.Principal) (string, error)
	// Dev, when TokenEnv is empty, is the explicit identity to use. One of
	// TokenEnv or Dev must be set: there is no implicit anonymous identity.
	Dev *DevIdentity
	// LookupEnv reads the environment; nil means os.LookupEnv. This is the
	// one place mcpguard reads the environment, and only when called.
	LookupEnv func(string) (string, bool)
}

// StdioIdentity establishes the identity of a stdio server once, at start,
// and returns a context function for server.WithStdioContextFunc that puts
// the principal (and tenant) in the context of every request, so the same
// policy and audit middleware apply as over HTTP. A missing, empty or invalid
// token is an error: the server must not start.
func StdioIdentity(ctx context.Context, cfg StdioConfig) (server.StdioContextFunc, *auth.Principal, error) {
	var p *auth.Principal
	tenant := ""
	switch {
	case cfg.TokenEnv != "":
		if cfg.Validator == nil {
			return nil, nil, fmt.Errorf("%w: StdioConfig.Validator is required with TokenEnv", ErrConfig)
		}
		lookup := cfg.LookupEnv
		if lookup == nil {
			lookup = os.LookupEnv
		}
		raw, ok := lookup(cfg.TokenEnv)
		if !ok || raw == "" {
			return nil, nil, fmt.Errorf("%w: environment variable %s is not set", auth.ErrNoCredential, cfg.TokenEnv)
		}
		var err error
		if p, err = cfg.Validator.Validate(ctx, raw); err != nil {
			return nil, nil, fmt.Errorf("stdio identity from %s: %w", cfg.TokenEnv, err)
		}
		if p == nil {
			return nil, nil, fmt.Errorf("stdio identity from %s: %w", cfg.TokenEnv, auth.ErrInvalidToken)
		}
		cp := *p
		cp.Kind = auth.KindStdio
		p = &cp
	case cfg.Dev != nil:
		p = cfg.Dev.principal()
		tenant = cfg.Dev.Tenant
	default:
		return nil, nil, fmt.Errorf("%w: StdioConfig needs TokenEnv or Dev", ErrConfig)
	}
	if cfg.Tenant != nil {
		t, err := cfg.Tenant(p)
		if err != nil {
			return nil, nil, fmt.Errorf("stdio identity: tenant: %w", err)
		}
		tenant = t
	}
	return func(ctx context.Context) context.Context {
		ctx = auth.NewContext(ctx, p)
		if tenant != "" {
			ctx = tenancy.NewContext(ctx, tenant)
		}
		return ctx
	}, p, nil
}
