package authz

import (
	"errors"
	"fmt"
	"slices"

	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/internal/oauthsyntax"
)

// MaxClaimValues caps how many values one claim may hold (scopes in a scope
// string, entries in a role or group array). A token exceeding it is
// rejected rather than partly read.
const MaxClaimValues = 1024

// MapperConfig configures a Mapper: which claims hold scopes, which hold
// roles or groups, and how both become this server's scopes.
//
// Claim paths follow auth.Claims.Get: a top-level claim whose name is the
// whole path wins ("cognito:groups", "https://example.com/roles"),
// otherwise the path is split at dots ("realm_access.roles").
type MapperConfig struct {
	// ScopeClaims are claims holding scopes: a space-separated string
	// (RFC 9068 §2.2.3 "scope") or an array of strings (Okta's "scp",
	// Auth0's "permissions").
	ScopeClaims []string
	// ScopeMap, when non-nil, translates each scope read from ScopeClaims
	// into zero or more scopes of this server and drops scopes it does not
	// list. nil keeps the scopes as they are.
	ScopeMap map[string][]string

	// RoleClaims are claims holding role or group names: a string or an
	// array of strings. A role never becomes a scope by itself: only
	// through RoleMap, which is required when RoleClaims is set.
	RoleClaims []string
	// RoleMap maps a role or group name to the scopes it grants
	// ({"Notes.Admin": {"notes:read", "notes:write"}}). Names it does not
	// list grant nothing.
	RoleMap map[string][]string

	// Require lists claims that must be present as a string with exactly
	// the given value, or the token is rejected (Cognito's
	// {"token_use": "access"}).
	Require map[string]string
}

// Mapper turns verified claims into scopes as a MapperConfig says. It
// implements auth.ScopeMapper. Build it with NewMapper or an IdP preset; the
// zero Mapper grants no scopes. A Mapper is immutable and safe for
// concurrent use.
type Mapper struct {
	scopeClaims []claimPath
	scopeMap    map[string][]string
	roles       []roleSource
	require     []requirement
	// oneOf, when set, are claims of which the token must carry at least
	// one as a non-empty string (Entra's "azp" or "appid", Okta's "cid",
	// Auth0's "azp": the client claims only access tokens carry).
	oneOf []string
}

// roleSource is a claim holding role or group names and the table that
// turns them into scopes.
type roleSource struct {
	path  claimPath
	table map[string][]string
}

// claimPath is a claim path. segs, when set, are followed literally through
// nested objects, for path elements that may themselves contain dots (a
// Keycloak client ID); otherwise name is looked up with auth.Claims.Get.
type claimPath struct {
	name string
	segs []string
}

type requirement struct{ claim, value string }

// NewMapper validates cfg and builds a Mapper. Mistakes are reported with
// their field, wrapping auth.ErrConfig. cfg is copied.
func NewMapper(cfg MapperConfig) (*Mapper, error) {
	m := &Mapper{}
	if len(cfg.ScopeClaims) == 0 && len(cfg.RoleClaims) == 0 {
		return nil, fmt.Errorf("%w: authz: MapperConfig: neither ScopeClaims nor RoleClaims is set", auth.ErrConfig)
	}
	for i, c := range cfg.ScopeClaims {
		if c == "" {
			return nil, fmt.Errorf("%w: authz: MapperConfig.ScopeClaims[%d] is empty", auth.ErrConfig, i)
		}
		m.scopeClaims = append(m.scopeClaims, claimPath{name: c})
	}
	var err error
	if cfg.ScopeMap != nil {
		if m.scopeMap, err = copyTable("MapperConfig.ScopeMap", cfg.ScopeMap); err != nil {
			return nil, err
		}
	}
	if len(cfg.RoleClaims) > 0 {
		if len(cfg.RoleMap) == 0 {
			return nil, fmt.Errorf("%w: authz: MapperConfig.RoleMap is required with RoleClaims (roles never become scopes verbatim)", auth.ErrConfig)
		}
		table, err := copyTable("MapperConfig.RoleMap", cfg.RoleMap)
		if err != nil {
			return nil, err
		}
		for i, c := range cfg.RoleClaims {
			if c == "" {
				return nil, fmt.Errorf("%w: authz: MapperConfig.RoleClaims[%d] is empty", auth.ErrConfig, i)
			}
			m.roles = append(m.roles, roleSource{path: claimPath{name: c}, table: table})
		}
	}
	for _, k := range sortedKeys(cfg.Require) {
		if k == "" {
			return nil, fmt.Errorf("%w: authz: MapperConfig.Require: empty claim name", auth.ErrConfig)
		}
		m.require = append(m.require, requirement{claim: k, value: cfg.Require[k]})
	}
	return m, nil
}

func copyTable(field string, t map[string][]string) (map[string][]string, error) {
	out := make(map[string][]string, len(t))
	for _, k := range sortedKeys(t) {
		if k == "" {
			return nil, fmt.Errorf("%w: authz: %s: empty key", auth.ErrConfig, field)
		}
		for i, s := range t[k] {
			if !oauthsyntax.IsScopeToken(s) {
				return nil, fmt.Errorf("%w: authz: %s[%q][%d]: %q is not an RFC 6749 scope token", auth.ErrConfig, field, k, i, s)
			}
		}
		out[k] = slices.Clone(t[k])
	}
	return out, nil
}

// errMalformed is the internal cause of a rejection for a claim of the
// wrong shape; the claim name comes from configuration, never from the
// token.
var errMalformed = errors.New("authz: malformed claim")

func malformed(claim, why string) error {
	return auth.InvalidToken("the token's scope claims are malformed",
		fmt.Errorf("%w: %w: claim %q %s", auth.ErrInvalidToken, errMalformed, claim, why))
}

// MapScopes implements auth.ScopeMapper. It returns the union of the scopes
// from the scope claims (translated by ScopeMap when set) and the scopes
// granted by the roles and groups in the role claims, without duplicates,
// in order of appearance. A missing claim contributes nothing; a claim of
// the wrong type, an unmet Require, or a claim with more than
// MaxClaimValues values rejects the token with an invalid_token *auth.Error.
func (m *Mapper) MapScopes(c auth.Claims) ([]string, error) {
	for _, r := range m.require {
		v, ok := c.String(r.claim)
		if !ok || v != r.value {
			return nil, auth.InvalidToken("the token is not accepted here",
				fmt.Errorf("%w: claim %q is not %q", auth.ErrInvalidToken, r.claim, r.value))
		}
	}
	if len(m.oneOf) > 0 && !slices.ContainsFunc(m.oneOf, func(claim string) bool {
		v, ok := c.String(claim)
		return ok && v != ""
	}) {
		return nil, auth.InvalidToken("the token is not accepted here",
			fmt.Errorf("%w: the token carries none of the claims %q", auth.ErrInvalidToken, m.oneOf))
	}
	var out scopeSet
	for _, cp := range m.scopeClaims {
		values, err := cp.values(c, true)
		if err != nil {
			return nil, err
		}
		for _, v := range values {
			if m.scopeMap == nil {
				out.add(v)
				continue
			}
			for _, s := range m.scopeMap[v] {
				out.add(s)
			}
		}
	}
	for _, rs := range m.roles {
		values, err := rs.path.values(c, false)
		if err != nil {
			return nil, err
		}
		for _, v := range values {
			for _, s := range rs.table[v] {
				out.add(s)
			}
		}
	}
	return out.list, nil
}

// values reads the claim as a list of strings. A string is split at the
// space character only (auth.SplitScope, RFC 6749 §3.3)
// when split is set (a scope string), and is one value otherwise.
func (cp claimPath) values(c auth.Claims, split bool) ([]string, error) {
	v, ok := cp.get(c)
	if !ok || v == nil {
		return nil, nil
	}
	switch v := v.(type) {
	case string:
		if !split {
			return []string{v}, nil
		}
		fields := auth.SplitScope(v)
		if len(fields) > MaxClaimValues {
			return nil, malformed(cp.name, "holds too many values")
		}
		return fields, nil
	case []string:
		if len(v) > MaxClaimValues {
			return nil, malformed(cp.name, "holds too many values")
		}
		return v, nil
	case []any:
		if len(v) > MaxClaimValues {
			return nil, malformed(cp.name, "holds too many values")
		}
		out := make([]string, 0, len(v))
		for _, e := range v {
			s, ok := e.(string)
			if !ok {
				return nil, malformed(cp.name, "holds a value that is not a string")
			}
			out = append(out, s)
		}
		return out, nil
	}
	return nil, malformed(cp.name, "is neither a string nor an array of strings")
}

func (cp claimPath) get(c auth.Claims) (any, bool) {
	if cp.segs == nil {
		return c.Get(cp.name)
	}
	cur, ok := c.Get(cp.segs[0])
	for _, s := range cp.segs[1:] {
		if !ok {
			return nil, false
		}
		obj, isObj := cur.(map[string]any)
		if !isObj {
			return nil, false
		}
		cur, ok = obj[s]
	}
	return cur, ok
}

// scopeSet collects scopes without duplicates, in order of first appearance.
type scopeSet struct {
	list []string
	seen map[string]struct{}
}

func (s *scopeSet) add(scope string) {
	if scope == "" {
		return
	}
	if s.seen == nil {
		s.seen = make(map[string]struct{})
	}
	if _, dup := s.seen[scope]; dup {
		return
	}
	s.seen[scope] = struct{}{}
	s.list = append(s.list, scope)
}

// Mappers composes several mappers into one auth.ScopeMapper: the result is
// the union of their scopes, without duplicates, in order; the first error
// rejects the token. A nil element rejects every token (fail closed). A
// Mappers value is safe for concurrent use when its elements are.
type Mappers []auth.ScopeMapper

// MapScopes implements auth.ScopeMapper.
func (ms Mappers) MapScopes(c auth.Claims) ([]string, error) {
	if len(ms) == 0 {
		return nil, auth.InvalidToken("the token is not accepted here",
			fmt.Errorf("%w: authz: Mappers is empty", auth.ErrInvalidToken))
	}
	var out scopeSet
	for i, m := range ms {
		if m == nil {
			return nil, auth.InvalidToken("the token is not accepted here",
				fmt.Errorf("%w: authz: Mappers[%d] is nil", auth.ErrInvalidToken, i))
		}
		scopes, err := m.MapScopes(c)
		if err != nil {
			return nil, err
		}
		for _, s := range scopes {
			out.add(s)
		}
	}
	return out.list, nil
}
