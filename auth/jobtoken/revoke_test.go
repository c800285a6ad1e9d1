package jobtoken

import (
	"net/http"
	"testing"
	"time"

	"github.com/mcpguard/mcpguard/auth"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestJobRevokedWithItsOriginal: revoking the user's token — by its jti,
// by its session (sid), or the subject's tokens issued before a time —
// ends the jobs minted from it, cached or not, cache on or off, and
// whether the original has expired or not; jobs minted from another token
// of the same user run on.
func TestJobRevokedWithItsOriginal(t *testing.T) {
	for _, cache := range []bool{true, false} {
		for _, tc := range []struct {
			name   string
			revoke func(f *jobFixture, successor time.Time) auth.Revocation
		}{
			{"original's jti", func(f *jobFixture, _ time.Time) auth.Revocation {
				return auth.Revocation{Issuer: f.idp.Issuer(), TokenID: "orig-1"}
			}},
			{"original's sid", func(f *jobFixture, _ time.Time) auth.Revocation {
				return auth.Revocation{Issuer: f.idp.Issuer(), SessionID: "sess-1"}
			}},
			{"subject before the original's successor", func(f *jobFixture, successor time.Time) auth.Revocation {
				return auth.Revocation{Issuer: f.idp.Issuer(), Subject: "alice", IssuedBefore: successor}
			}},
		} {
			t.Run(tc.name+map[bool]string{true: " cached", false: " uncached"}[cache], func(t *testing.T) {
				var rev *auth.MemoryRevoker
				f := newJobFixture(t, func(c *ValidatorConfig) {
					var err error
					rev, err = auth.NewMemoryRevoker(auth.RevokerConfig{Now: c.Now})
					require.NoError(t, err)
					c.Revoker = rev
					c.DisableCache = !cache
				})
				orig := f.userToken(t, map[string]any{"jti": "orig-1", "sid": "sess-1"})
				job := f.mint(t, orig)
				_, err := f.validator.Validate(t.Context(), job, orig)
				require.NoError(t, err)
				f.clock.Advance(time.Second)
				successor := f.clock.Now()
				other := f.userToken(t, map[string]any{"jti": "orig-2", "sid": "sess-2"})
				otherJob := f.mint(t, other)

				f.clock.Advance(2 * time.Hour) // both originals expired; the jobs run on
				require.NoError(t, rev.Revoke(t.Context(), tc.revoke(f, successor)))
				_, err = f.validator.Validate(t.Context(), job, orig)
				require.ErrorIs(t, err, auth.ErrRevoked, "the job dies with its original")
				assert.Equal(t, http.StatusUnauthorized, auth.AsError(err).Status)
				_, err = f.validator.Validate(t.Context(), otherJob, other)
				assert.NoError(t, err, "a job of another token of the user runs on")
			})
		}
	}
}

// TestJobRevocationHorizonCoversTheOriginal: a revocation of the original
// token is kept MaxTokenLifetime (plus leeway) from when it is made, which
// may be as early as the original's iat, and the job runs on until its own
// exp, so a job whose exp lies further than MaxTokenLifetime from its
// original's iat is refused, as the revoker refuses a token it could
// forget; one within it runs.
func TestJobRevocationHorizonCoversTheOriginal(t *testing.T) {
	var rev *auth.MemoryRevoker
	f := newJobFixture(t, func(c *ValidatorConfig) {
		var err error
		rev, err = auth.NewMemoryRevoker(auth.RevokerConfig{Now: c.Now, MaxTokenLifetime: DefaultLifetime})
		require.NoError(t, err)
		c.Revoker = rev
	})
	orig := f.userToken(t, nil)
	job := f.mint(t, orig) // exp - iat of the job token and of the original: DefaultLifetime
	_, err := f.validator.Validate(t.Context(), job, orig)
	require.NoError(t, err)

	f.clock.Advance(30 * time.Minute)
	late := f.mint(t, orig) // exp 4 h 30 min after the original's iat
	_, err = f.validator.Validate(t.Context(), late, orig)
	require.ErrorIs(t, err, auth.ErrRevocationHorizon)
	assert.Equal(t, http.StatusUnauthorized, auth.AsError(err).Status)
}
