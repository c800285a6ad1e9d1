package transport

import (
	"fmt"
	"maps"
	"slices"

	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/authz"
	"github.com/mcpguard/mcpguard/tenancy"
)

// buildCommon turns Issuer (with Revoker), ToolScopes and TenantClaim into the components
// they stand for, refusing a field whose component was also given or that
// the mode would ignore.
func (g *Guard) buildCommon(cfg *Config) error {
	if cfg.Revoker != nil && cfg.Issuer == "" {
		return fmt.Errorf("%w: Config.Revoker is set without Config.Issuer, so no validator of the common case would consult it; set it in your validator (auth.JWTConfig.Revoker)", ErrConfig)
	}
	if cfg.ToolScopes != nil {
		if cfg.Policy != nil {
			return fmt.Errorf("%w: Config.ToolScopes and Config.Policy are both set: put the tool rules in the policy, or leave Policy nil", ErrConfig)
		}
		rules := make(map[string]authz.Rule, len(cfg.ToolScopes))
		for _, tool := range slices.Sorted(maps.Keys(cfg.ToolScopes)) {
			scopes := cfg.ToolScopes[tool]
			if len(scopes) == 0 {
				rules[tool] = authz.Rule{Authenticated: true}
			} else {
				rules[tool] = authz.Rule{AllOf: slices.Clone(scopes)}
			}
		}
		p, err := authz.New(authz.Config{ToolRules: rules})
		if err != nil {
			return fmt.Errorf("%w: Config.ToolScopes: %w", ErrConfig, err)
		}
		cfg.Policy = p
	}
	if cfg.Mode == ModeDev {
		switch {
		case cfg.Issuer != "":
			return fmt.Errorf("%w: Config.Issuer is set but ModeDev authenticates nobody and would ignore it; leave it empty in dev mode", ErrConfig)
		case cfg.TenantClaim != "":
			return fmt.Errorf("%w: Config.TenantClaim is set but ModeDev would ignore it (the dev tenant is Config.Dev.Tenant); leave it empty in dev mode", ErrConfig)
		}
		return nil
	}
	if cfg.TenantClaim != "" {
		if cfg.Tenancy != nil {
			return fmt.Errorf("%w: Config.TenantClaim and Config.Tenancy are both set: configure the claim in the resolver, or leave Tenancy nil", ErrConfig)
		}
		r, err := tenancy.New(tenancy.Config{Claim: cfg.TenantClaim})
		if err != nil {
			return fmt.Errorf("%w: Config.TenantClaim: %w", ErrConfig, err)
		}
		cfg.Tenancy = r
	}
	if cfg.Issuer != "" {
		if cfg.Validator != nil {
			return fmt.Errorf("%w: Config.Issuer and Config.Validator are both set: configure the issuer in the validator, or leave Validator nil", ErrConfig)
		}
		if err := auth.CheckResource(cfg.Resource); err != nil {
			return fmt.Errorf("%w: Config.Resource: %w", ErrConfig, err)
		}
		v, err := auth.NewJWTValidator(auth.JWTConfig{Issuer: cfg.Issuer, Audience: cfg.Resource, Logger: cfg.Logger, Revoker: cfg.Revoker})
		if err != nil {
			return fmt.Errorf("%w: Config.Issuer: %w", ErrConfig, err)
		}
		g.owned = append(g.owned, v.Close)
		cfg.Validator = v
		if len(cfg.AuthorizationServers) == 0 {
			cfg.AuthorizationServers = []string{cfg.Issuer}
		}
	}
	return nil
}
