package auth

import (
	"context"
)

// Validator checks a raw bearer token and returns the verified principal.
//
// Implementations must be safe for concurrent use, must fail closed (any
// doubt is an error) and must never include the token in an error. Errors
// should be *Error values or wrap one of this package's sentinels.
type Validator interface {
	Validate(ctx context.Context, token string) (*Principal, error)
}

// ValidatorFunc adapts a function to Validator.
type ValidatorFunc func(ctx context.Context, token string) (*Principal, error)

// Validate calls f.
func (f ValidatorFunc) Validate(ctx context.Context, token string) (*Principal, error) {
	return f(ctx, token)
}

// ScopeMapper turns verified claims into the principal's effective scopes.
// It is the hook through which authz's IdP presets plug into validators.
// Implementations must be safe for concurrent use. An error rejects the token.
type ScopeMapper interface {
	MapScopes(c Claims) ([]string, error)
}

// ScopeMapperFunc adapts a function to ScopeMapper.
type ScopeMapperFunc func(c Claims) ([]string, error)

// MapScopes calls f.
func (f ScopeMapperFunc) MapScopes(c Claims) ([]string, error) { return f(c) }

// standardScopes is the default ScopeMapper: it reads "scope" (a
// space-separated string, RFC 8693 §4.2 / RFC 9068 §2.2.3) and "scp" (a
// space-separated string or an array of strings, as Entra ID and Okta send
// it), and returns their union without duplicates, in order of appearance.
func standardScopes(c Claims) ([]string, error) {
	var out []string
	seen := map[string]struct{}{}
	add := func(s string) {
		if s == "" {
			return
		}
		if _, dup := seen[s]; dup {
			return
		}
		seen[s] = struct{}{}
		out = append(out, s)
	}
	for _, name := range [...]string{"scope", "scp"} {
		v, ok := c.Get(name)
		if !ok {
			continue
		}
		switch v := v.(type) {
		case string:
			for _, s := range SplitScope(v) {
				add(s)
			}
		default:
			list, ok := c.Strings(name)
			if !ok {
				return nil, InvalidToken("the scope claim is malformed", ErrInvalidToken)
			}
			for _, s := range list {
				add(s)
			}
		}
	}
	return out, nil
}
