package auth

import (
	"testing"
	"time"

	"github.com/mcpguard/mcpguard/auth/authtest"
	"github.com/mcpguard/mcpguard/internal/jobseam"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestJobSeamNeedsAGrant(t *testing.T) {
	clock := newFakeClock()
	v := newValidator(t, newIDP(t, clock), clock, nil)
	var zero jobseam.Grant
	s := v.JobSeam(zero)
	assert.Nil(t, s.VerifyIgnoringExpiry, "a zero grant, all code outside mcpguard can make, opens nothing")
	assert.Nil(t, s.VerifyEdDSA)
	assert.Nil(t, s.NewCache)
	open := v.JobSeam(jobseam.Open())
	require.NotNil(t, open.VerifyIgnoringExpiry)
	assert.Equal(t, v.maxSize, open.MaxTokenBytes)
}

func TestVerifyIgnoringExpiryStaysOffTheNormalPath(t *testing.T) {
	clock := newFakeClock()
	idp := newIDP(t, clock)
	users := newValidator(t, idp, clock, nil)
	seam := users.JobSeam(jobseam.Open())
	orig := idp.MustMint(map[string]any{"sub": "alice"})
	clock.Advance(2 * time.Hour)
	before := users.cache.len()
	p, _, err := seam.VerifyIgnoringExpiry(t.Context(), orig)
	require.NoError(t, err)
	assert.Equal(t, "alice", p.Subject)
	assert.Equal(t, before, users.cache.len(), "a principal verified ignoring expiry is never cached")
	_, err = users.Validate(t.Context(), orig)
	require.ErrorIs(t, err, ErrExpired)

	noExp := idp.MustMint(map[string]any{"exp": nil})
	_, _, err = seam.VerifyIgnoringExpiry(t.Context(), noExp)
	require.ErrorIs(t, err, ErrInvalidToken, "exp must still be present")
	forged, err := authtest.CorruptSignature(orig)
	require.NoError(t, err)
	_, _, err = seam.VerifyIgnoringExpiry(t.Context(), forged)
	require.ErrorIs(t, err, ErrInvalidToken, "every other rule still holds")
	assert.Equal(t, descSignature, AsError(err).Description)
}
