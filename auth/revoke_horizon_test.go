package auth

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// revokedUntilInvalid revokes tok (minted with claims, whose jti is
// "leaked") and asks for it every minute until exp plus the leeway: it
// must be refused every time, never served again once its revocation
// entry (MaxTokenLifetime + MaxLeeway) has expired.
func revokedUntilInvalid(t *testing.T, life time.Duration, claims func(now time.Time) map[string]any) {
	t.Helper()
	clock := newFakeClock()
	idp := newIDP(t, clock)
	rev := newMemoryRevoker(t, clock, func(c *RevokerConfig) { c.MaxTokenLifetime = life })
	v := newValidator(t, idp, clock, func(c *JWTConfig) { c.Revoker = rev; c.DisableCache = true })
	m := claims(clock.Now())
	m["jti"] = "leaked"
	tok := idp.MustMint(m)
	exp := time.Unix(m["exp"].(int64), 0)
	require.NoError(t, rev.Revoke(t.Context(), Revocation{Issuer: idp.Issuer(), TokenID: "leaked"}))
	for clock.Now().Before(exp.Add(DefaultLeeway)) {
		_, err := v.Validate(t.Context(), tok)
		if !assert.Error(t, err, "a revoked token is served again at %s (exp %s)", clock.Now().UTC(), exp.UTC()) {
			return
		}
		clock.Advance(time.Minute)
	}
}

// TestRevocationHorizonLeeway: the horizon accepted exp − iat (and exp −
// now) up to MaxTokenLifetime + MaxLeeway, the life of an entry, though a
// validator accepts a token until exp plus its leeway; a token of that
// lifetime revoked when issued was served again in its last minute.
func TestRevocationHorizonLeeway(t *testing.T) {
	const life = 2 * time.Hour
	revokedUntilInvalid(t, life, func(now time.Time) map[string]any {
		return map[string]any{"iat": now.Unix(), "exp": now.Add(life + MaxLeeway).Unix()}
	})
	// A token of exactly MaxTokenLifetime is still accepted.
	clock := newFakeClock()
	idp := newIDP(t, clock)
	rev := newMemoryRevoker(t, clock, func(c *RevokerConfig) { c.MaxTokenLifetime = life })
	v := newValidator(t, idp, clock, func(c *JWTConfig) { c.Revoker = rev })
	now := clock.Now()
	_, err := v.Validate(t.Context(), idp.MustMint(map[string]any{"iat": now.Unix(), "exp": now.Add(life).Unix()}))
	assert.NoError(t, err)
	_, err = v.Validate(t.Context(), idp.MustMint(map[string]any{"iat": now.Unix(), "exp": now.Add(life + time.Second).Unix()}))
	assert.ErrorIs(t, err, ErrRevocationHorizon)
}
