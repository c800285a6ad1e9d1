package auth

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/mcpguard/mcpguard/auth/authtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// loadShapes reads testdata/idp-token-shapes.json: claim sets shaped like
// real providers' access tokens, with times relative to now.
func loadShapes(t *testing.T, now int64) map[string]map[string]any {
	t.Helper()
	b, err := os.ReadFile("testdata/idp-token-shapes.json")
	require.NoError(t, err)
	var all map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(b, &all))
	out := map[string]map[string]any{}
	for name, raw := range all {
		if strings.HasPrefix(name, "_") {
			continue
		}
		var c map[string]any
		require.NoError(t, json.Unmarshal(raw, &c))
		delete(c, "_notes")
		for _, tc := range []string{"iat", "nbf", "exp", "auth_time"} {
			if f, ok := c[tc].(float64); ok {
				c[tc] = now + int64(f)
			}
		}
		out[name] = c
	}
	return out
}

func TestJWTRealProviderShapes(t *testing.T) {
	clock := newFakeClock()
	idp := newIDP(t, clock, "RS256")
	shapes := loadShapes(t, clock.Now().Unix())
	const resource = "https://notes.example.com/mcp"

	tests := []struct {
		shape    string
		cfg      JWTConfig
		claims   map[string]any // laid over the shape (nil value removes)
		client   string
		scopes   []string
		audience []string
		wantDesc string // empty: accepted
	}{
		{shape: "entra_v2_delegated", cfg: JWTConfig{
			IssuerTemplates: []string{"https://login.microsoftonline.com/{tid}/v2.0"},
			Audience:        resource, AudienceAliases: []string{"api://4f1e5c1a-0d7e-4a37-9b1c-2c9c1e3b7a10"},
		}, client: "0c8a3e2b-5f0d-4f9e-8d61-9a7b2c4e1f33", scopes: []string{"Notes.Read", "Notes.Write"}},
		{shape: "entra_v2_delegated", cfg: JWTConfig{
			IssuerTemplates: []string{"https://login.microsoftonline.com/{tid}/v2.0"},
			Audience:        resource, AudienceAliases: []string{"4f1e5c1a-0d7e-4a37-9b1c-2c9c1e3b7a10"},
		}, wantDesc: descAudience}, // the GUID form does not match the app ID URI form
		{shape: "entra_v2_delegated", cfg: JWTConfig{
			IssuerTemplates: []string{"https://login.microsoftonline.com/{tid}/v2.0"},
			Audience:        resource, AudienceAliases: []string{"api://4f1e5c1a-0d7e-4a37-9b1c-2c9c1e3b7a10"},
		}, claims: map[string]any{"tid": "00000000-0000-0000-0000-000000000000"}, wantDesc: descIssuer},
		// The fixture's v1 token has no sub, but Entra documents sub in v1.0
		// access tokens too; the validator requires it (the principal needs
		// a subject), so supply one and check that its absence is refused.
		{shape: "entra_v1_delegated", cfg: JWTConfig{
			IssuerTemplates: []string{"https://sts.windows.net/{tid}/"},
			Audience:        resource, AudienceAliases: []string{"api://notes-api"},
		}, wantDesc: descMissingClaim},
		{shape: "entra_v1_delegated", cfg: JWTConfig{
			IssuerTemplates: []string{"https://sts.windows.net/{tid}/"},
			Audience:        resource, AudienceAliases: []string{"api://notes-api"},
		}, claims: map[string]any{"sub": "l3_roISQU222bULS9yi2k0XpqpOiMz5H3ZACo1GeXA"}, client: "0c8a3e2b-5f0d-4f9e-8d61-9a7b2c4e1f33", scopes: []string{"user_impersonation"}},
		{shape: "entra_v2_app_only", cfg: JWTConfig{
			IssuerTemplates: []string{"https://login.microsoftonline.com/{tid}/v2.0"},
			Audience:        resource, AudienceAliases: []string{"api://4f1e5c1a-0d7e-4a37-9b1c-2c9c1e3b7a10"},
		}, client: "9d2f6c1e-3b4a-4c5d-8e7f-0a1b2c3d4e5f"}, // roles are a preset's business (authz), not scopes
		{shape: "okta_custom_as", cfg: JWTConfig{
			Issuer: "https://example.okta.com/oauth2/default", Audience: resource, AudienceAliases: []string{"api://default"},
		}, client: "0oa1b2c3d4e5f6g7h8i9", scopes: []string{"openid", "notes:read"}},
		{shape: "auth0_user", cfg: JWTConfig{Issuer: "https://example.us.auth0.com/", Audience: resource},
			client: "Xy12AbCdEfGhIjKlMnOpQrStUvWxYz34", scopes: []string{"openid", "profile", "notes:read"},
			audience: []string{resource, "https://example.us.auth0.com/userinfo"}},
		{shape: "auth0_user", cfg: JWTConfig{Issuer: "https://example.us.auth0.com", Audience: resource}, wantDesc: descIssuer},
		{shape: "auth0_machine", cfg: JWTConfig{Issuer: "https://example.us.auth0.com/", Audience: resource},
			client: "Xy12AbCdEfGhIjKlMnOpQrStUvWxYz34", scopes: []string{"notes:read", "notes:write"}},
		{shape: "keycloak", cfg: JWTConfig{Issuer: "https://kc.example.com/realms/acme", Audience: resource, AudienceAliases: []string{"notes-api"}},
			client: "mcp-client", scopes: []string{"openid", "email", "profile"}, audience: []string{"notes-api", "account"}},
		{shape: "keycloak", cfg: JWTConfig{Issuer: "https://kc.example.com/realms/acme", Audience: resource}, // no alias for the client-ID audience
			wantDesc: descAudience},
		{shape: "cognito_access", cfg: JWTConfig{
			Issuer: "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf123", UseClientIDAsAudience: true, ClientIDs: []string{"1example23456789"},
		}, client: "1example23456789", scopes: []string{"https://notes.example.com/notes.read", "https://notes.example.com/notes.write"}},
		{shape: "cognito_access", cfg: JWTConfig{
			Issuer: "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf123", UseClientIDAsAudience: true, ClientIDs: []string{"another-client"},
		}, wantDesc: descClient},
		{shape: "cognito_access", cfg: JWTConfig{ // a Cognito ID token: aud is the client, token_use is "id"
			Issuer: "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf123", UseClientIDAsAudience: true, ClientIDs: []string{"1example23456789"},
		}, claims: map[string]any{"token_use": "id", "aud": "1example23456789", "client_id": nil}, wantDesc: descTokenUse},
		{shape: "cognito_access", cfg: JWTConfig{
			Issuer: "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf123", UseClientIDAsAudience: true, ClientIDs: []string{"1example23456789"},
		}, claims: map[string]any{"token_use": nil}, wantDesc: descTokenUse},
		{shape: "cognito_access", cfg: JWTConfig{ // without the Cognito option, no aud means rejection
			Issuer: "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf123", Audience: resource,
		}, wantDesc: descAudience},
	}
	for _, tt := range tests {
		name := tt.shape
		if tt.wantDesc != "" {
			name += " rejected: " + tt.wantDesc
		} else if tt.claims != nil {
			name += " amended"
		}
		t.Run(name, func(t *testing.T) {
			shape, ok := shapes[tt.shape]
			require.True(t, ok, tt.shape)
			claims := merge(shape, tt.claims)
			tok, err := idp.MintToken(authtest.Token{NoDefaults: true, Claims: claims, Header: map[string]any{"typ": "JWT"}})
			require.NoError(t, err)
			cfg := tt.cfg
			cfg.JWKSURL, cfg.Now = idp.JWKSURL(), clock.Now
			v, err := NewJWTValidator(cfg)
			require.NoError(t, err)
			defer v.Close()
			p, err := v.Validate(t.Context(), tok)
			if tt.wantDesc != "" {
				assertDesc(t, err, tt.wantDesc)
				assertNoTokenLeak(t, tok, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, claims["sub"], p.Subject)
			assert.Equal(t, claims["iss"], p.Issuer)
			assert.Equal(t, tt.client, p.ClientID)
			assert.Equal(t, tt.scopes, p.Scopes)
			if tt.audience != nil {
				assert.Equal(t, tt.audience, p.Audience)
			}
			assert.Equal(t, len(claims), p.Claims.Len())
		})
	}
}

func merge(base, over map[string]any) map[string]any {
	out := make(map[string]any, len(base)+len(over))
	for k, v := range base {
		out[k] = v
	}
	for k, v := range over {
		if v == nil {
			delete(out, k)
		} else {
			out[k] = v
		}
	}
	return out
}
