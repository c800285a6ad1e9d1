package transport

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/auth"
)

// TestStackRevocationHorizonLeeway drives mcp-go clients in both eras
// through the full stack: a token living MaxTokenLifetime + MaxLeeway,
// revoked by jti, must not be served again in the last minute of its
// validity (exp plus the validator's leeway), after its revocation entry
// has expired. The horizon used to accept such a token, so the revocation
// was forgotten while the token still validated.
func TestStackRevocationHorizonLeeway(t *testing.T) {
	const life = 2 * time.Hour
	clock := &fakeClock{now: time.Now()}
	rev, err := auth.NewMemoryRevoker(auth.RevokerConfig{MaxTokenLifetime: life, Now: clock.Now})
	require.NoError(t, err)
	st := newStack(t, func(c *Config) {
		v, err := auth.NewJWTValidator(auth.JWTConfig{Issuer: c.AuthorizationServers[0], Audience: c.Resource, Revoker: rev, Now: clock.Now})
		require.NoError(t, err)
		t.Cleanup(func() { _ = v.Close() })
		c.Validator = v
	})
	for _, era := range eras {
		t.Run(era, func(t *testing.T) {
			start := clock.Now()
			exp := start.Add(life + auth.MaxLeeway)
			tok := st.token(t, map[string]any{"sub": "mallory-" + era, "jti": "leaked-" + era, "scope": "notes:read",
				"iat": start.Unix(), "exp": exp.Unix()})
			require.NoError(t, rev.Revoke(t.Context(), auth.Revocation{Issuer: st.idp.Issuer(), TokenID: "leaked-" + era}))

			clock.Advance(exp.Sub(start) + auth.DefaultLeeway/2) // past the entry's expiry, within exp + leeway
			c, err := eraClient(t, st.url, tok, era)
			if err == nil {
				_, err = callText(t, c, "whoami")
			}
			assert.Error(t, err, "the revoked token is served once its revocation entry expired")
		})
	}
}
