package auth

import (
	"net/http"
	"testing"
	"time"

	"github.com/mcpguard/mcpguard/auth/authtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestIntrospectionAgainstAuthtest runs the introspection validator
// against authtest's RFC 7662 endpoint, discovered from its RFC 8414
// metadata, with both client authentication methods.
func TestIntrospectionAgainstAuthtest(t *testing.T) {
	clock := newFakeClock()
	idp := newIDP(t, clock, "ES256")
	require.NoError(t, idp.RegisterClient(authtest.Client{ID: "mcp-rs", Secret: "rs-secret"}))
	for _, method := range []string{ClientSecretBasic, ClientSecretPost} {
		t.Run(method, func(t *testing.T) {
			v, err := NewIntrospectionValidator(IntrospectionConfig{
				Issuer: idp.Issuer(), Audience: idp.Audience(),
				ClientID: "mcp-rs", ClientSecret: NewCredential("rs-secret"), AuthMethod: method,
				Now: clock.Now,
			})
			require.NoError(t, err)
			defer v.Close()

			opaque := idp.MustMintOpaque(map[string]any{"scope": "notes:read"})
			p, err := v.Validate(t.Context(), opaque)
			require.NoError(t, err)
			assert.Equal(t, "alice", p.Subject)
			assert.Equal(t, idp.Issuer(), p.Issuer)
			assert.Equal(t, []string{"notes:read"}, p.Scopes)
			assert.Equal(t, clock.Now().Add(time.Hour), p.Expiry)

			jwtTok := idp.MustMint(map[string]any{"scope": "notes:write"})
			p, err = v.Validate(t.Context(), jwtTok)
			require.NoError(t, err, "authtest introspects its own JWTs too")
			assert.Equal(t, []string{"notes:write"}, p.Scopes)

			other := idp.MustMintOpaque(map[string]any{"aud": "https://other.example/api"})
			_, err = v.Validate(t.Context(), other)
			require.ErrorIs(t, err, ErrInvalidToken)
			assert.Equal(t, descAudience, AsError(err).Description)
		})
	}
}

func TestIntrospectionAuthtestRevocationAndFaults(t *testing.T) {
	clock := newFakeClock()
	idp := newIDP(t, clock, "ES256")
	require.NoError(t, idp.RegisterClient(authtest.Client{ID: "mcp-rs", Secret: "rs-secret"}))
	v, err := NewIntrospectionValidator(IntrospectionConfig{
		Issuer: idp.Issuer(), Endpoint: idp.IntrospectionURL(), Audience: idp.Audience(),
		ClientID: "mcp-rs", ClientSecret: NewCredential("rs-secret"), Now: clock.Now,
		CacheTTL: 30 * time.Second, Timeout: 500 * time.Millisecond,
	})
	require.NoError(t, err)
	defer v.Close()

	tok := idp.MustMintOpaque(nil)
	_, err = v.Validate(t.Context(), tok)
	require.NoError(t, err)
	idp.Revoke(tok)
	_, err = v.Validate(t.Context(), tok)
	require.NoError(t, err, "served from the cache until CacheTTL")
	clock.Advance(30 * time.Second)
	_, err = v.Validate(t.Context(), tok)
	require.ErrorIs(t, err, ErrInvalidToken)
	assert.Equal(t, descInactive, AsError(err).Description)

	for _, f := range []authtest.Fault{authtest.FaultDown, authtest.FaultStatus500, authtest.FaultGarbage,
		authtest.FaultEmpty, authtest.FaultOversized, authtest.FaultRedirect} {
		fresh := idp.MustMintOpaque(nil)
		idp.SetIntrospectionFault(f)
		_, err := v.Validate(t.Context(), fresh)
		require.ErrorIs(t, err, ErrUnavailable, "fault %d", f)
		assert.Equal(t, http.StatusServiceUnavailable, AsError(err).Status)
		assert.NotContains(t, err.Error(), fresh)
		assert.NotContains(t, err.Error(), "rs-secret")
	}
	assert.Zero(t, idp.RedirectFetches(), "the token and secret were never re-sent to the other host")
	idp.SetIntrospectionFault(authtest.FaultNone)

	idp.SetIntrospectionDelay(time.Hour)
	slow := idp.MustMintOpaque(nil)
	_, err = v.Validate(t.Context(), slow)
	require.ErrorIs(t, err, ErrUnavailable, "a slow endpoint times out into a 503")
	idp.SetIntrospectionDelay(0)
	_, err = v.Validate(t.Context(), slow)
	require.NoError(t, err)
}
