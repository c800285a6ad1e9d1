package oidcprovider_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/e2e/oidcprovider"
	"github.com/mcpguard/mcpguard/tenancy"
)

// newValidator builds mcpguard's JWT validator the way a server author
// would for this provider: the issuer only, keys found through OpenID
// discovery and the JWKS it names.
func newValidator(t *testing.T, issuer string) *auth.JWTValidator {
	t.Helper()
	v, err := auth.NewJWTValidator(auth.JWTConfig{
		Issuer:          issuer,
		Audience:        resource,
		RequireATJWT:    true,
		RefetchCooldown: 100 * time.Millisecond,
	})
	require.NoError(t, err)
	return v
}

// TestMCPGuardValidatesProviderTokens checks that mcpguard accepts what a
// certified OpenID provider issues, and derives the caller and tenant from
// it.
func TestMCPGuardValidatesProviderTokens(t *testing.T) {
	p := startProvider(t)
	ctx := context.Background()
	v := newValidator(t, p.Issuer())
	tenants, err := tenancy.New(tenancy.Config{Claim: "tenant"})
	require.NoError(t, err)

	tests := []struct {
		name, id, secret, scope, tenant string
	}{
		{name: "acme", id: acmeID, secret: acmeSecret, scope: "tools:read tools:write", tenant: "acme"},
		{name: "globex", id: globexID, secret: globexSecret, scope: "tools:read", tenant: "globex"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := p.ClientCredentials(ctx, tc.id, tc.secret, resource, tc.scope)
			require.NoError(t, err)
			pr, err := v.Validate(ctx, tok.AccessToken)
			require.NoError(t, err)
			assert.Equal(t, p.Issuer(), pr.Issuer)
			assert.Equal(t, tc.id, pr.Subject)
			assert.Equal(t, tc.id, pr.ClientID)
			assert.Equal(t, []string{resource}, pr.Audience)
			assert.Equal(t, auth.KindUser, pr.Kind)
			assert.True(t, pr.HasScope("tools:read"))
			assert.Equal(t, tc.scope == "tools:read tools:write", pr.HasScope("tools:write"))
			tenant, err := tenants.Resolve(pr)
			require.NoError(t, err)
			assert.Equal(t, tc.tenant, tenant)
		})
	}
}

func TestMCPGuardRejectsOtherTokens(t *testing.T) {
	p := startProvider(t)
	ctx := context.Background()
	v := newValidator(t, p.Issuer())

	otherAudience, err := p.ClientCredentials(ctx, acmeID, acmeSecret, "http://127.0.0.1:9/other-mcp", "tools:read")
	require.NoError(t, err)
	opaque, err := p.ClientCredentials(ctx, acmeID, acmeSecret, opaqueRes, "tools:read")
	require.NoError(t, err)

	tests := []struct{ name, token string }{
		{name: "token for another resource", token: otherAudience.AccessToken},
		{name: "opaque token", token: opaque.AccessToken},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := v.Validate(ctx, tc.token)
			assert.ErrorIs(t, err, auth.ErrInvalidToken)
		})
	}
}

// TestMCPGuardFollowsRotationAndRestart: a token signed by a key the
// validator has never seen makes it refetch the JWKS; a restarted provider
// keeps serving the same issuer and keys.
func TestMCPGuardFollowsRotationAndRestart(t *testing.T) {
	p := startProvider(t)
	ctx := context.Background()
	v := newValidator(t, p.Issuer())
	validate := func(what string) {
		t.Helper()
		tok, err := p.ClientCredentials(ctx, acmeID, acmeSecret, resource, "tools:read")
		require.NoError(t, err)
		// The refetch cooldown may hold back the fetch of a new key for up
		// to 100 ms; a rotation is picked up within one cooldown.
		require.Eventually(t, func() bool {
			_, err := v.Validate(ctx, tok.AccessToken)
			return err == nil
		}, 10*time.Second, 50*time.Millisecond, what)
	}
	validate("before rotation")
	_, err := p.Rotate(ctx, false)
	require.NoError(t, err)
	validate("after rotation")
	require.NoError(t, p.Restart(ctx))
	validate("after restart")
	_, err = p.Rotate(ctx, true)
	require.NoError(t, err)
	validate("after retiring rotation")
}

func newIntrospector(t *testing.T, p *oidcprovider.Provider) *auth.IntrospectionValidator {
	t.Helper()
	v, err := auth.NewIntrospectionValidator(auth.IntrospectionConfig{
		Issuer:       p.Issuer(),
		ClientID:     rsID,
		ClientSecret: auth.NewCredential(rsSecret),
		Audience:     opaqueRes,
	})
	require.NoError(t, err)
	return v
}

// TestMCPGuardIntrospectsOpaqueTokens: mcpguard's RFC 7662 validator,
// finding the endpoint through discovery and authenticating as the resource
// server's own client, accepts the provider's opaque tokens for this
// resource.
func TestMCPGuardIntrospectsOpaqueTokens(t *testing.T) {
	p := startProvider(t)
	ctx := context.Background()
	v := newIntrospector(t, p)
	tenants, err := tenancy.New(tenancy.Config{Claim: "tenant"})
	require.NoError(t, err)

	tok, err := p.ClientCredentials(ctx, acmeID, acmeSecret, opaqueRes, "tools:read")
	require.NoError(t, err)
	pr, err := v.Validate(ctx, tok.AccessToken)
	require.NoError(t, err)
	assert.Equal(t, p.Issuer(), pr.Issuer)
	assert.Equal(t, acmeID, pr.ClientID)
	assert.Equal(t, acmeID, pr.Subject, "a client-credentials token acts for its client")
	assert.True(t, pr.HasScope("tools:read"))
	tenant, err := tenants.Resolve(pr)
	require.NoError(t, err)
	assert.Equal(t, "acme", tenant)

	forOther, err := p.ClientCredentials(ctx, acmeID, acmeSecret, otherOpaque, "tools:read")
	require.NoError(t, err)
	_, err = v.Validate(ctx, forOther.AccessToken)
	assert.ErrorIs(t, err, auth.ErrInvalidToken, "an active token for another resource")
}

// TestMCPGuardIntrospectionRejectsInactive: a token the provider never
// issued is reported inactive and refused, and so is a JWT access token,
// for which oidc-provider answers 400 unsupported_token_type: a verdict on
// the token (401), not an outage (503).
func TestMCPGuardIntrospectionRejectsInactive(t *testing.T) {
	p := startProvider(t)
	v := newIntrospector(t, p)
	_, err := v.Validate(context.Background(), "this-token-was-never-issued-by-the-provider")
	assert.ErrorIs(t, err, auth.ErrInvalidToken)

	jwtTok, err := p.ClientCredentials(context.Background(), acmeID, acmeSecret, resource, "tools:read")
	require.NoError(t, err)
	_, err = v.Validate(context.Background(), jwtTok.AccessToken)
	assert.ErrorIs(t, err, auth.ErrInvalidToken)
	assert.NotErrorIs(t, err, auth.ErrUnavailable)
}
