package authz

import (
	"fmt"

	"github.com/mcpguard/mcpguard/auth"
)

// PresetConfig configures an IdP preset (Entra, Okta, Auth0, Cognito).
// The zero value keeps the provider's scopes as they are and ignores roles
// and groups.
type PresetConfig struct {
	// ScopeMap, when non-nil, translates the provider's scope values into
	// this server's scopes and drops values it does not list (see
	// MapperConfig.ScopeMap). nil keeps them verbatim.
	ScopeMap map[string][]string
	// RoleMap maps role or group names to scopes. nil ignores roles and
	// groups: they never become scopes verbatim.
	RoleMap map[string][]string
	// RoleClaims overrides the claims the preset reads roles or groups
	// from (each preset documents its default). Auth0 has no default.
	RoleClaims []string
}

func preset(name string, scopeClaims, defaultRoles []string, cfg PresetConfig, require map[string]string) (*Mapper, error) {
	mc := MapperConfig{ScopeClaims: scopeClaims, ScopeMap: cfg.ScopeMap, Require: require}
	if cfg.RoleMap != nil {
		mc.RoleMap = cfg.RoleMap
		mc.RoleClaims = defaultRoles
		if cfg.RoleClaims != nil {
			mc.RoleClaims = cfg.RoleClaims
		}
		if len(mc.RoleClaims) == 0 {
			return nil, fmt.Errorf("%w: authz: %s: PresetConfig.RoleClaims is required with RoleMap", auth.ErrConfig, name)
		}
	} else if cfg.RoleClaims != nil {
		return nil, fmt.Errorf("%w: authz: %s: PresetConfig.RoleClaims is set without RoleMap", auth.ErrConfig, name)
	}
	m, err := NewMapper(mc)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return m, nil
}

// Entra returns the mapper for Microsoft Entra ID access tokens, v1
// (issuer https://sts.windows.net/{tid}/) and v2 (issuer
// https://login.microsoftonline.com/{tid}/v2.0) alike. It reads:
//
//   - "scp": the delegated scopes, a space-separated string
//     ("Notes.Read Notes.Write"), through ScopeMap;
//   - "roles" (default RoleClaims): an array of app roles, which carries
//     the application permissions of an app-only (client credentials)
//     token and the app roles assigned to a user, through RoleMap.
//
// It rejects a token that carries neither "azp" (v2) nor "appid" (v1) as
// a non-empty string: only access tokens carry the client that way. An
// Entra ID token carries the user's app roles in "roles" too, has no
// marker auth's validator could refuse it by (its header typ is "JWT"),
// and its audience is the client's application ID, which is the API's
// own when one app registration serves both; without this check its
// roles became scopes, and an ID token, which a client may show to anyone
// as proof of sign-in, worked as an access token.
//
// The tenant ("tid") and the client are otherwise the validator's and
// tenancy's business, not the mapper's.
func Entra(cfg PresetConfig) (*Mapper, error) {
	m, err := preset("Entra", []string{"scp"}, []string{"roles"}, cfg, nil)
	if err != nil {
		return nil, err
	}
	m.oneOf = []string{"azp", "appid"}
	return m, nil
}

// Okta returns the mapper for access tokens of an Okta custom authorization
// server. It reads:
//
//   - "scp": the granted scopes, an array of strings, through ScopeMap;
//   - "groups" (default RoleClaims): the group names, an array, present
//     when a groups claim is configured on the authorization server,
//     through RoleMap.
//
// It rejects a token that carries neither "cid" (the client of every Okta
// access token) nor "client_id" (RFC 9068 §2.2) as a non-empty string. An
// Okta ID token carries the user's groups in "groups" too when the app's
// groups claim is set for ID tokens, and neither client claim, its header
// typ is "JWT" and no payload claim marks it as an ID token, and its
// audience is the client ID, which AudienceAliases may list; without this
// check its groups became scopes and an ID token worked as an access token.
//
// The user ID is "uid"; the mapper does not need it.
func Okta(cfg PresetConfig) (*Mapper, error) {
	m, err := preset("Okta", []string{"scp"}, []string{"groups"}, cfg, nil)
	if err != nil {
		return nil, err
	}
	m.oneOf = []string{"cid", "client_id"}
	return m, nil
}

// Auth0 returns the mapper for Auth0 access tokens. It reads:
//
//   - "scope": a space-separated string, through ScopeMap;
//   - "permissions": an array, present when RBAC and "Add Permissions in
//     the Access Token" are enabled for the API; Auth0 permissions are the
//     API's scopes, so they go through ScopeMap too;
//   - RoleClaims, through RoleMap: Auth0 has no standard role claim, so
//     name the namespaced custom claims a login Action adds
//     ("https://notes.example.com/roles"). There is no default.
//
// It rejects a token that carries neither "azp" (Auth0 token profile) nor
// "client_id" (RFC 9068 profile) as a non-empty string: every Auth0 access
// token names its client one of those ways, and an Auth0 ID token names it
// only in "aud". A login Action commonly adds the same namespaced roles
// claim to the ID token as to the access token, nothing in an ID token's
// header (typ "JWT") or payload marks it as one, and its audience is the
// client ID, which AudienceAliases may list; without this check its roles
// became scopes and an ID token worked as an access token.
func Auth0(cfg PresetConfig) (*Mapper, error) {
	m, err := preset("Auth0", []string{"scope", "permissions"}, nil, cfg, nil)
	if err != nil {
		return nil, err
	}
	m.oneOf = []string{"azp", "client_id"}
	return m, nil
}

// Cognito returns the mapper for Amazon Cognito user pool access tokens.
// It rejects any token whose "token_use" is not "access" (an ID token
// carries "token_use": "id"), and reads:
//
//   - "scope": a space-separated string; custom scopes look like
//     "<resource server identifier>/<scope>"
//     ("https://notes.example.com/notes.read"), which ScopeMap can
//     translate;
//   - "cognito:groups" (default RoleClaims): the user's groups, an array,
//     through RoleMap.
//
// Classic Cognito access tokens have no "aud": the validator must check
// "client_id" instead.
func Cognito(cfg PresetConfig) (*Mapper, error) {
	return preset("Cognito", []string{"scope"}, []string{"cognito:groups"}, cfg, map[string]string{"token_use": "access"})
}

// KeycloakConfig configures the Keycloak preset. The zero value keeps the
// "scope" values verbatim and ignores roles.
type KeycloakConfig struct {
	// ScopeMap translates "scope" values (see PresetConfig.ScopeMap).
	ScopeMap map[string][]string
	// RealmRoleMap maps realm roles ("realm_access.roles") to scopes. nil
	// ignores realm roles.
	RealmRoleMap map[string][]string
	// ClientID is the client whose roles are read
	// ("resource_access.<ClientID>.roles"), usually this resource server's
	// client. Required with ClientRoleMap; it may contain dots.
	ClientID string
	// ClientRoleMap maps ClientID's client roles to scopes. nil ignores
	// client roles.
	ClientRoleMap map[string][]string
}

// Keycloak returns the mapper for Keycloak access tokens. It reads:
//
//   - "scope": a space-separated string, through ScopeMap;
//   - "realm_access.roles": the realm roles, through RealmRoleMap;
//   - "resource_access.<ClientID>.roles": the client roles of ClientID,
//     through ClientRoleMap. Other clients' roles are ignored.
//
// The requesting client is "azp"; the mapper does not need it.
func Keycloak(cfg KeycloakConfig) (*Mapper, error) {
	m := &Mapper{scopeClaims: []claimPath{{name: "scope"}}}
	var err error
	if cfg.ScopeMap != nil {
		if m.scopeMap, err = copyTable("KeycloakConfig.ScopeMap", cfg.ScopeMap); err != nil {
			return nil, fmt.Errorf("Keycloak: %w", err)
		}
	}
	if cfg.RealmRoleMap != nil {
		table, err := copyTable("KeycloakConfig.RealmRoleMap", cfg.RealmRoleMap)
		if err != nil {
			return nil, fmt.Errorf("Keycloak: %w", err)
		}
		m.roles = append(m.roles, roleSource{
			path:  claimPath{name: "realm_access.roles", segs: []string{"realm_access", "roles"}},
			table: table,
		})
	}
	switch {
	case cfg.ClientRoleMap != nil && cfg.ClientID == "":
		return nil, fmt.Errorf("%w: authz: Keycloak: KeycloakConfig.ClientID is required with ClientRoleMap", auth.ErrConfig)
	case cfg.ClientRoleMap == nil && cfg.ClientID != "":
		return nil, fmt.Errorf("%w: authz: Keycloak: KeycloakConfig.ClientID is set without ClientRoleMap", auth.ErrConfig)
	case cfg.ClientRoleMap != nil:
		table, err := copyTable("KeycloakConfig.ClientRoleMap", cfg.ClientRoleMap)
		if err != nil {
			return nil, fmt.Errorf("Keycloak: %w", err)
		}
		m.roles = append(m.roles, roleSource{
			path:  claimPath{name: "resource_access." + cfg.ClientID + ".roles", segs: []string{"resource_access", cfg.ClientID, "roles"}},
			table: table,
		})
	}
	return m, nil
}
