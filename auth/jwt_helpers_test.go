package auth

import (
	"sync"
	"testing"
	"time"

	"github.com/mcpguard/mcpguard/auth/authtest"
	"github.com/stretchr/testify/require"
)

// fakeClock is a settable clock for Now hooks.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Unix(1_800_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// newIDP starts an authtest server on the given clock.
func newIDP(t testing.TB, clock *fakeClock, algs ...string) *authtest.Server {
	t.Helper()
	cfg := authtest.Config{TB: t, Algorithms: algs}
	if clock != nil {
		cfg.Now = clock.Now
	}
	idp, err := authtest.New(cfg)
	require.NoError(t, err)
	return idp
}

// newValidator returns a validator trusting idp (by JWKS URL unless edit
// changes it), closed at the end of the test.
func newValidator(t testing.TB, idp *authtest.Server, clock *fakeClock, edit func(*JWTConfig)) *JWTValidator {
	t.Helper()
	cfg := JWTConfig{Issuer: idp.Issuer(), Audience: idp.Audience(), JWKSURL: idp.JWKSURL()}
	if clock != nil {
		cfg.Now = clock.Now
	}
	if edit != nil {
		edit(&cfg)
	}
	v, err := NewJWTValidator(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = v.Close() })
	return v
}

func authtestToken(k *authtest.Key, claims map[string]any) authtest.Token {
	return authtest.Token{Key: k, Claims: claims}
}
