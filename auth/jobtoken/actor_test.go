package jobtoken

import (
	"crypto/ed25519"
	"crypto/rand"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/auth/authtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestJobKeepsTheActor: a job started in a dual-token request (a service
// acting for the user) acts for the user through that service for its
// whole life: the job principal's Actor is the service, as the request's
// was, so policies, ownership checks and audit see the same (issuer,
// subject, tenant, actor) instead of the user acting alone. A job started
// by the user directly has no actor, and one minted from a token that is
// not the request's credential takes no actor from the request.
func TestJobKeepsTheActor(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	idp, err := authtest.New(authtest.Config{TB: t, Algorithms: []string{"ES256"}, Now: clock.Now})
	require.NoError(t, err)
	users, err := auth.NewJWTValidator(auth.JWTConfig{Issuer: idp.Issuer(), Audience: idp.Audience(), JWKSURL: idp.JWKSURL(), Now: clock.Now})
	require.NoError(t, err)
	t.Cleanup(func() { _ = users.Close() })
	_, key, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	issuer, err := NewIssuer(IssuerConfig{Issuer: jobIssuerURL, Audience: jobAudience, Key: key, Original: users, Now: clock.Now})
	require.NoError(t, err)
	jobs, err := NewValidator(ValidatorConfig{Issuer: jobIssuerURL, Audience: jobAudience, Original: users, Now: clock.Now,
		Keys: map[string]ed25519.PublicKey{issuer.KeyID(): issuer.PublicKey()}})
	require.NoError(t, err)
	dual, err := auth.NewDualValidator(auth.DualConfig{Service: users, User: users, Direct: users,
		ServiceClientIDs: []string{"svc"}, UserIssuers: []string{idp.Issuer()}})
	require.NoError(t, err)

	const foreignHeader = "X-Other-Token"
	srv := httptest.NewServer(nil)
	t.Cleanup(srv.Close)
	mw, err := auth.DualMiddleware(dual, auth.MiddlewareConfig{ResourceMetadataURL: srv.URL + "/.well-known/oauth-protected-resource"})
	require.NoError(t, err)
	srv.Config.Handler = mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cred, _ := auth.CredentialFromContext(r.Context())
		if other := r.Header.Get(foreignHeader); other != "" {
			cred = auth.NewCredential(other)
		}
		job, err := issuer.Mint(r.Context(), Request{JobID: "job-42", Original: cred, Scopes: []string{"notes:read"}, Tenant: "acme"})
		if err != nil {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		_, _ = io.WriteString(w, job)
	}))
	start := func(t *testing.T, header http.Header) string {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader(`{}`))
		require.NoError(t, err)
		req.Header = header
		resp, err := srv.Client().Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		return string(b)
	}
	svc := idp.MustMint(map[string]any{"sub": "svc-sub", "azp": "svc", "client_id": "svc"})
	user := idp.MustMint(map[string]any{"sub": "alice", "scope": "notes:read"})
	other := idp.MustMint(map[string]any{"sub": "alice", "scope": "notes:read", "jti": "other"})

	job := start(t, http.Header{"Authorization": {"Bearer " + svc}, auth.DefaultUserTokenHeader: {user}})
	clock.Advance(2 * time.Hour) // both tokens expired
	p, err := jobs.Validate(t.Context(), job, user)
	require.NoError(t, err)
	assert.Equal(t, "alice", p.Subject)
	require.NotNil(t, p.Actor, "the job acts through the service")
	assert.Equal(t, "svc-sub", p.Actor.Subject)
	assert.Equal(t, idp.Issuer(), p.Actor.Issuer)
	assert.Equal(t, "svc", p.Actor.ClientID)

	clock.Advance(-2 * time.Hour)
	direct := start(t, http.Header{"Authorization": {"Bearer " + user}})
	p, err = jobs.Validate(t.Context(), direct, user)
	require.NoError(t, err)
	assert.Nil(t, p.Actor, "a job the user started directly has no actor")

	foreign := start(t, http.Header{"Authorization": {"Bearer " + svc}, auth.DefaultUserTokenHeader: {user}, foreignHeader: {other}})
	p, err = jobs.Validate(t.Context(), foreign, other)
	require.NoError(t, err)
	assert.Nil(t, p.Actor, "the request's actor is not lent to a token the request did not present")

	forged := (&jobFixture{issuer: issuer}).resign(t, job, func(c map[string]any) { c["act"] = "svc-sub" })
	_, err = jobs.Validate(t.Context(), forged, user)
	require.ErrorIs(t, err, auth.ErrInvalidToken, "a malformed act is refused, never read as no actor")
	assert.Equal(t, descMissingClaim, auth.AsError(err).Description)
}
