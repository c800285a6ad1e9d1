package authz_test

import (
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/authz"
)

// shapes loads the token claim sets of testdata/idp-token-shapes.json, a
// copy of the shared fixture of documented provider token shapes.
func shapes(t testing.TB) map[string]map[string]any {
	t.Helper()
	raw, err := os.ReadFile("testdata/idp-token-shapes.json")
	require.NoError(t, err)
	var all map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(raw, &all))
	out := map[string]map[string]any{}
	for name, v := range all {
		if strings.HasPrefix(name, "_") {
			continue
		}
		var m map[string]any
		require.NoError(t, json.Unmarshal(v, &m), name)
		delete(m, "_notes")
		out[name] = m
	}
	return out
}

// claimsOf returns a copy of a fixture shape with changes applied (a nil
// value deletes the claim).
func claimsOf(t testing.TB, shape string, changes map[string]any) auth.Claims {
	t.Helper()
	m, ok := shapes(t)[shape]
	require.True(t, ok, "fixture has no shape %q", shape)
	for k, v := range changes {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	return auth.NewClaims(m)
}

// must returns a function that fails t on a constructor error, so that
// must(t)(authz.Okta(cfg)) reads as one expression.
func must(t testing.TB) func(*authz.Mapper, error) *authz.Mapper {
	return func(m *authz.Mapper, err error) *authz.Mapper {
		t.Helper()
		require.NoError(t, err)
		return m
	}
}

func TestFixtureIsComplete(t *testing.T) {
	got := shapes(t)
	for _, name := range []string{
		"entra_v2_delegated", "entra_v1_delegated", "entra_v2_app_only", "okta_custom_as",
		"auth0_user", "auth0_machine", "keycloak", "cognito_access",
	} {
		assert.Contains(t, got, name)
	}
}

func TestPresets(t *testing.T) {
	notes := map[string][]string{
		"notes:read":  {"notes:read"},
		"notes:write": {"notes:write"},
	}
	entraScopes := map[string][]string{"Notes.Read": {"notes:read"}, "Notes.Write": {"notes:write"}}
	entraRoles := map[string][]string{"Notes.ReadWrite.All": {"notes:read", "notes:write"}}

	tests := []struct {
		name    string
		mapper  func(t testing.TB) auth.ScopeMapper
		shape   string
		changes map[string]any
		want    []string
		wantErr bool
	}{
		// Microsoft Entra ID.
		{
			name:   "entra v2 delegated scp verbatim",
			mapper: func(t testing.TB) auth.ScopeMapper { return must(t)(authz.Entra(authz.PresetConfig{})) },
			shape:  "entra_v2_delegated",
			want:   []string{"Notes.Read", "Notes.Write"},
		},
		{
			name: "entra v2 delegated scp translated",
			mapper: func(t testing.TB) auth.ScopeMapper {
				return must(t)(authz.Entra(authz.PresetConfig{ScopeMap: entraScopes, RoleMap: entraRoles}))
			},
			shape: "entra_v2_delegated",
			want:  []string{"notes:read", "notes:write"},
		},
		{
			name: "entra v1 delegated user_impersonation",
			mapper: func(t testing.TB) auth.ScopeMapper {
				return must(t)(authz.Entra(authz.PresetConfig{ScopeMap: map[string][]string{"user_impersonation": {"notes:read"}}}))
			},
			shape: "entra_v1_delegated",
			want:  []string{"notes:read"},
		},
		{
			name: "entra v2 app-only roles through the table",
			mapper: func(t testing.TB) auth.ScopeMapper {
				return must(t)(authz.Entra(authz.PresetConfig{ScopeMap: entraScopes, RoleMap: entraRoles}))
			},
			shape: "entra_v2_app_only",
			want:  []string{"notes:read", "notes:write"},
		},
		{
			name:   "entra app-only roles ignored without a table",
			mapper: func(t testing.TB) auth.ScopeMapper { return must(t)(authz.Entra(authz.PresetConfig{})) },
			shape:  "entra_v2_app_only",
			want:   nil,
		},
		{
			name: "entra unknown app role grants nothing",
			mapper: func(t testing.TB) auth.ScopeMapper {
				return must(t)(authz.Entra(authz.PresetConfig{RoleMap: entraRoles}))
			},
			shape:   "entra_v2_app_only",
			changes: map[string]any{"roles": []any{"Other.Role"}},
			want:    nil,
		},
		{
			name:    "entra scp of the wrong type is rejected",
			mapper:  func(t testing.TB) auth.ScopeMapper { return must(t)(authz.Entra(authz.PresetConfig{})) },
			shape:   "entra_v2_delegated",
			changes: map[string]any{"scp": 42.0},
			wantErr: true,
		},
		{
			name: "entra roles holding a number are rejected",
			mapper: func(t testing.TB) auth.ScopeMapper {
				return must(t)(authz.Entra(authz.PresetConfig{RoleMap: entraRoles}))
			},
			shape:   "entra_v2_app_only",
			changes: map[string]any{"roles": []any{"Notes.ReadWrite.All", 1.0}},
			wantErr: true,
		},

		// Okta.
		{
			name:   "okta scp array verbatim",
			mapper: func(t testing.TB) auth.ScopeMapper { return must(t)(authz.Okta(authz.PresetConfig{})) },
			shape:  "okta_custom_as",
			want:   []string{"openid", "notes:read"},
		},
		{
			name: "okta groups through the table, openid dropped by the scope map",
			mapper: func(t testing.TB) auth.ScopeMapper {
				return must(t)(authz.Okta(authz.PresetConfig{
					ScopeMap: notes,
					RoleMap:  map[string][]string{"notes-writers": {"notes:write"}},
				}))
			},
			shape: "okta_custom_as",
			want:  []string{"notes:read", "notes:write"},
		},
		{
			name: "okta group named like a scope is not a scope",
			mapper: func(t testing.TB) auth.ScopeMapper {
				return must(t)(authz.Okta(authz.PresetConfig{RoleMap: map[string][]string{"notes-writers": {"notes:write"}}}))
			},
			shape:   "okta_custom_as",
			changes: map[string]any{"groups": []any{"notes:admin"}},
			want:    []string{"openid", "notes:read"},
		},

		// Auth0.
		{
			name:   "auth0 user scope and permissions",
			mapper: func(t testing.TB) auth.ScopeMapper { return must(t)(authz.Auth0(authz.PresetConfig{})) },
			shape:  "auth0_user",
			want:   []string{"openid", "profile", "notes:read"},
		},
		{
			name: "auth0 namespaced role claim",
			mapper: func(t testing.TB) auth.ScopeMapper {
				return must(t)(authz.Auth0(authz.PresetConfig{
					ScopeMap:   notes,
					RoleClaims: []string{"https://notes.example.com/roles"},
					RoleMap:    map[string][]string{"reader": {"notes:read", "notes:comment"}},
				}))
			},
			shape: "auth0_user",
			want:  []string{"notes:read", "notes:comment"},
		},
		{
			name:   "auth0 machine token",
			mapper: func(t testing.TB) auth.ScopeMapper { return must(t)(authz.Auth0(authz.PresetConfig{ScopeMap: notes})) },
			shape:  "auth0_machine",
			want:   []string{"notes:read", "notes:write"},
		},
		{
			name:    "auth0 permissions only (scope claim absent)",
			mapper:  func(t testing.TB) auth.ScopeMapper { return must(t)(authz.Auth0(authz.PresetConfig{})) },
			shape:   "auth0_machine",
			changes: map[string]any{"scope": nil, "permissions": []any{"notes:write"}},
			want:    []string{"notes:write"},
		},

		// Keycloak.
		{
			name:   "keycloak scope verbatim, roles ignored",
			mapper: func(t testing.TB) auth.ScopeMapper { return must(t)(authz.Keycloak(authz.KeycloakConfig{})) },
			shape:  "keycloak",
			want:   []string{"openid", "email", "profile"},
		},
		{
			name: "keycloak realm and client roles",
			mapper: func(t testing.TB) auth.ScopeMapper {
				return must(t)(authz.Keycloak(authz.KeycloakConfig{
					ScopeMap:      map[string][]string{},
					RealmRoleMap:  map[string][]string{"notes-reader": {"notes:read"}},
					ClientID:      "notes-api",
					ClientRoleMap: map[string][]string{"writer": {"notes:write"}, "view-profile": {"notes:admin"}},
				}))
			},
			shape: "keycloak",
			// "view-profile" is a role of the "account" client, not of
			// notes-api: it grants nothing.
			want: []string{"notes:read", "notes:write"},
		},
		{
			name: "keycloak client ID containing dots",
			mapper: func(t testing.TB) auth.ScopeMapper {
				return must(t)(authz.Keycloak(authz.KeycloakConfig{
					ScopeMap:      map[string][]string{},
					ClientID:      "notes.example.com",
					ClientRoleMap: map[string][]string{"writer": {"notes:write"}},
				}))
			},
			shape: "keycloak",
			changes: map[string]any{"resource_access": map[string]any{
				"notes.example.com": map[string]any{"roles": []any{"writer"}},
			}},
			want: []string{"notes:write"},
		},
		{
			name: "keycloak realm roles of the wrong type are rejected",
			mapper: func(t testing.TB) auth.ScopeMapper {
				return must(t)(authz.Keycloak(authz.KeycloakConfig{RealmRoleMap: map[string][]string{"a": {"b"}}}))
			},
			shape:   "keycloak",
			changes: map[string]any{"realm_access": map[string]any{"roles": map[string]any{}}},
			wantErr: true,
		},

		// Amazon Cognito.
		{
			name: "cognito access token scopes and groups",
			mapper: func(t testing.TB) auth.ScopeMapper {
				return must(t)(authz.Cognito(authz.PresetConfig{
					ScopeMap: map[string][]string{
						"https://notes.example.com/notes.read":  {"notes:read"},
						"https://notes.example.com/notes.write": {"notes:write"},
					},
					RoleMap: map[string][]string{"writers": {"notes:write", "notes:share"}},
				}))
			},
			shape: "cognito_access",
			want:  []string{"notes:read", "notes:write", "notes:share"},
		},
		{
			name:    "cognito id token is rejected",
			mapper:  func(t testing.TB) auth.ScopeMapper { return must(t)(authz.Cognito(authz.PresetConfig{})) },
			shape:   "cognito_access",
			changes: map[string]any{"token_use": "id", "aud": "1example23456789"},
			wantErr: true,
		},
		{
			name:    "cognito token without token_use is rejected",
			mapper:  func(t testing.TB) auth.ScopeMapper { return must(t)(authz.Cognito(authz.PresetConfig{})) },
			shape:   "cognito_access",
			changes: map[string]any{"token_use": nil},
			wantErr: true,
		},
		{
			name:    "cognito token_use of the wrong type is rejected",
			mapper:  func(t testing.TB) auth.ScopeMapper { return must(t)(authz.Cognito(authz.PresetConfig{})) },
			shape:   "cognito_access",
			changes: map[string]any{"token_use": []any{"access"}},
			wantErr: true,
		},

		// Composition.
		{
			name: "composition is the ordered union",
			mapper: func(t testing.TB) auth.ScopeMapper {
				return authz.Mappers{
					must(t)(authz.Okta(authz.PresetConfig{})),
					auth.ScopeMapperFunc(func(auth.Claims) ([]string, error) { return []string{"notes:read", "extra"}, nil }),
				}
			},
			shape: "okta_custom_as",
			want:  []string{"openid", "notes:read", "extra"},
		},
		{
			name: "composition fails on the first error",
			mapper: func(t testing.TB) auth.ScopeMapper {
				return authz.Mappers{
					must(t)(authz.Okta(authz.PresetConfig{})),
					must(t)(authz.Cognito(authz.PresetConfig{})),
				}
			},
			shape:   "okta_custom_as",
			wantErr: true,
		},
		{
			name:    "composition with a nil mapper fails closed",
			mapper:  func(t testing.TB) auth.ScopeMapper { return authz.Mappers{nil} },
			shape:   "okta_custom_as",
			wantErr: true,
		},
		{
			name:    "empty composition fails closed",
			mapper:  func(t testing.TB) auth.ScopeMapper { return authz.Mappers{} },
			shape:   "okta_custom_as",
			wantErr: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.mapper(t).MapScopes(claimsOf(t, tt.shape, tt.changes))
			if tt.wantErr {
				require.Error(t, err)
				assert.ErrorIs(t, err, auth.ErrInvalidToken)
				var ae *auth.Error
				require.True(t, errors.As(err, &ae))
				assert.Equal(t, auth.CodeInvalidToken, ae.Code)
				assert.Nil(t, got)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestMapperClaimPaths(t *testing.T) {
	m, err := authz.NewMapper(authz.MapperConfig{
		ScopeClaims: []string{"scope", "ext.perms"},
		RoleClaims:  []string{"realm_access.roles", "resource_access.notes-api.roles", "https://example.com/role"},
		RoleMap: map[string][]string{
			"reader": {"notes:read"},
			"writer": {"notes:read", "notes:write"},
			"admin":  {"notes:admin"},
		},
	})
	require.NoError(t, err)
	got, err := m.MapScopes(auth.NewClaims(map[string]any{
		"scope":                    "a  b\tc",
		"ext":                      map[string]any{"perms": []any{"d", "a"}},
		"realm_access":             map[string]any{"roles": []any{"reader"}},
		"resource_access":          map[string]any{"notes-api": map[string]any{"roles": []any{"writer"}}},
		"https://example.com/role": "admin",
	}))
	require.NoError(t, err)
	assert.Equal(t, []string{"a", "b\tc", "d", "notes:read", "notes:write", "notes:admin"}, got, "a tab is not a scope separator (RFC 6749 §3.3)")

	got, err = m.MapScopes(auth.NewClaims(nil))
	require.NoError(t, err)
	assert.Empty(t, got, "a token without the claims grants nothing")
}

func TestMapperRequire(t *testing.T) {
	m, err := authz.NewMapper(authz.MapperConfig{ScopeClaims: []string{"scope"}, Require: map[string]string{"typ": "at+jwt"}})
	require.NoError(t, err)
	_, err = m.MapScopes(auth.NewClaims(map[string]any{"scope": "a", "typ": "at+jwt"}))
	assert.NoError(t, err)
	_, err = m.MapScopes(auth.NewClaims(map[string]any{"scope": "a", "typ": "JWT"}))
	assert.ErrorIs(t, err, auth.ErrInvalidToken)
}

func TestMapperTooManyValues(t *testing.T) {
	m, err := authz.NewMapper(authz.MapperConfig{
		ScopeClaims: []string{"scope", "scp"},
		RoleClaims:  []string{"roles"},
		RoleMap:     map[string][]string{"r": {"x"}},
	})
	require.NoError(t, err)
	many := make([]any, authz.MaxClaimValues+1)
	for i := range many {
		many[i] = "r"
	}
	tests := []struct {
		name   string
		claims map[string]any
	}{
		{"scope string", map[string]any{"scope": strings.Repeat("s ", authz.MaxClaimValues+1)}},
		{"scope array", map[string]any{"scp": many}},
		{"role array", map[string]any{"roles": many}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := m.MapScopes(auth.NewClaims(tt.claims))
			assert.ErrorIs(t, err, auth.ErrInvalidToken)
		})
	}
	// The limit itself is fine.
	_, err = m.MapScopes(auth.NewClaims(map[string]any{"roles": many[:authz.MaxClaimValues]}))
	assert.NoError(t, err)
}

func TestMapperErrorsHoldNoClaimValues(t *testing.T) {
	m := must(t)(authz.Cognito(authz.PresetConfig{}))
	_, err := m.MapScopes(auth.NewClaims(map[string]any{"token_use": "secret-token-value-xyz"}))
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "secret-token-value-xyz")
}

func TestMapperConfigErrors(t *testing.T) {
	tests := []struct {
		name  string
		build func() error
		field string
	}{
		{"mapper with no claims", func() error { _, err := authz.NewMapper(authz.MapperConfig{}); return err }, "ScopeClaims"},
		{"empty scope claim", func() error {
			_, err := authz.NewMapper(authz.MapperConfig{ScopeClaims: []string{""}})
			return err
		}, "ScopeClaims[0]"},
		{"role claims without table", func() error {
			_, err := authz.NewMapper(authz.MapperConfig{RoleClaims: []string{"roles"}})
			return err
		}, "RoleMap"},
		{"empty role claim", func() error {
			_, err := authz.NewMapper(authz.MapperConfig{RoleClaims: []string{""}, RoleMap: map[string][]string{"a": {"b"}}})
			return err
		}, "RoleClaims[0]"},
		{"invalid scope in role table", func() error {
			_, err := authz.NewMapper(authz.MapperConfig{RoleClaims: []string{"roles"}, RoleMap: map[string][]string{"a": {"has space"}}})
			return err
		}, `RoleMap["a"][0]`},
		{"invalid scope in scope table", func() error {
			_, err := authz.NewMapper(authz.MapperConfig{ScopeClaims: []string{"scope"}, ScopeMap: map[string][]string{"a": {""}}})
			return err
		}, `ScopeMap["a"][0]`},
		{"empty require claim", func() error {
			_, err := authz.NewMapper(authz.MapperConfig{ScopeClaims: []string{"scope"}, Require: map[string]string{"": "x"}})
			return err
		}, "Require"},
		{"auth0 roles without role claims", func() error {
			_, err := authz.Auth0(authz.PresetConfig{RoleMap: map[string][]string{"a": {"b"}}})
			return err
		}, "RoleClaims"},
		{"role claims without role map", func() error {
			_, err := authz.Okta(authz.PresetConfig{RoleClaims: []string{"groups"}})
			return err
		}, "RoleClaims"},
		{"keycloak client roles without client", func() error {
			_, err := authz.Keycloak(authz.KeycloakConfig{ClientRoleMap: map[string][]string{"a": {"b"}}})
			return err
		}, "ClientID"},
		{"keycloak client without client roles", func() error {
			_, err := authz.Keycloak(authz.KeycloakConfig{ClientID: "x"})
			return err
		}, "ClientID"},
		{"keycloak bad realm table", func() error {
			_, err := authz.Keycloak(authz.KeycloakConfig{RealmRoleMap: map[string][]string{"": {"b"}}})
			return err
		}, "RealmRoleMap"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.build()
			require.Error(t, err)
			assert.ErrorIs(t, err, auth.ErrConfig)
			assert.Contains(t, err.Error(), tt.field)
		})
	}
}

func TestMapperCopiesConfig(t *testing.T) {
	table := map[string][]string{"g": {"notes:read"}}
	m, err := authz.Okta(authz.PresetConfig{RoleMap: table})
	require.NoError(t, err)
	table["g"][0] = "notes:admin"
	table["h"] = []string{"notes:admin"}
	got, err := m.MapScopes(auth.NewClaims(map[string]any{"cid": "c", "groups": []any{"g", "h"}}))
	require.NoError(t, err)
	assert.Equal(t, []string{"notes:read"}, got)
}

func TestMapperScopeSplitsOnSpaceOnly(t *testing.T) {
	m, err := authz.NewMapper(authz.MapperConfig{ScopeClaims: []string{"scope"}})
	require.NoError(t, err)
	got, err := m.MapScopes(auth.NewClaims(map[string]any{"scope": "notes:read\u00a0notes:write notes:list"}))
	require.NoError(t, err)
	assert.Equal(t, []string{"notes:read\u00a0notes:write", "notes:list"}, got, "an NBSP (RFC 6749 §3.3 allows only SP) must not grant notes:write")
}
