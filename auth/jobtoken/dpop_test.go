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

// authOriginalBound is package auth's description of a DPoP-bound token
// presented as a job's original.
const authOriginalBound = "a sender-constrained token cannot be the original of a job"

// dpopJobFixture is a job fixture whose users' validator accepts DPoP
// (mode), behind auth.Middleware on a loopback server whose handler mints
// a job token from the request's credential, as a tool starting a job
// does. It answers 200 with the job token, or 403 when Mint refuses.
type dpopJobFixture struct {
	*jobFixture
	key *authtest.DPoPKey
	url string
}

func newDPoPJobFixture(t *testing.T, mode auth.DPoPMode) *dpopJobFixture {
	t.Helper()
	f := &dpopJobFixture{jobFixture: &jobFixture{clock: &fakeClock{t: time.Unix(1_800_000_000, 0)}, revoked: map[string]bool{}}}
	var err error
	f.idp, err = authtest.New(authtest.Config{TB: t, Algorithms: []string{"ES256"}, Now: f.clock.Now})
	require.NoError(t, err)
	f.key, err = authtest.NewDPoPKey("ES256")
	require.NoError(t, err)
	f.key = f.key.WithClock(f.clock.Now)

	var h http.Handler = http.NotFoundHandler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	t.Cleanup(srv.Close)
	f.url = srv.URL + "/mcp"

	f.users, err = auth.NewJWTValidator(auth.JWTConfig{Issuer: f.idp.Issuer(), Audience: f.idp.Audience(),
		JWKSURL: f.idp.JWKSURL(), Now: f.clock.Now, DPoP: auth.DPoPConfig{Mode: mode, Resource: f.url}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = f.users.Close() })
	_, key, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	f.issuer, err = NewIssuer(IssuerConfig{Issuer: jobIssuerURL, Audience: jobAudience, Key: key, Original: f.users, Now: f.clock.Now})
	require.NoError(t, err)
	f.validator, err = NewValidator(ValidatorConfig{Issuer: jobIssuerURL, Audience: jobAudience, Original: f.users,
		Now: f.clock.Now, Keys: map[string]ed25519.PublicKey{f.issuer.KeyID(): f.issuer.PublicKey()}})
	require.NoError(t, err)

	mw, err := auth.Middleware(f.users, auth.MiddlewareConfig{ResourceMetadataURL: srv.URL + "/.well-known/oauth-protected-resource/mcp"})
	require.NoError(t, err)
	h = mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cred, _ := auth.CredentialFromContext(r.Context())
		job, err := f.issuer.Mint(r.Context(), Request{JobID: "job-42", Original: cred, Scopes: []string{"notes:read"}, Tenant: "acme"})
		if err != nil {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		_, _ = io.WriteString(w, job)
	}))
	return f
}

// startJob asks the server to mint a job token from tok, sent with a DPoP
// proof of f.key when bound, and returns the status and the body.
func (f *dpopJobFixture) startJob(t *testing.T, tok string, bound bool) (int, string) {
	t.Helper()
	var rt http.RoundTripper = http.DefaultTransport
	if bound {
		rt = &authtest.DPoPTransport{Key: f.key, Token: tok}
	}
	req, err := http.NewRequest(http.MethodPost, f.url, strings.NewReader(`{}`))
	require.NoError(t, err)
	if !bound {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := (&http.Client{Transport: rt}).Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// TestJobFromDPoPBoundOriginal: a DPoP-bound (cnf.jkt) access token is
// worthless without its proof key, and a job token must not turn it into
// a bearer credential. The job worker re-checks the original with no
// request, hence no proof, so a bound original is refused: by Mint, over
// HTTP with a valid proof, and by Validate for a job token that binds one
// anyway (minted by an older version, under another DPoP mode, or with the
// signing key), in every mode: with DPoP disabled, a request refuses a
// bound token as well. A bearer original of the same validator still
// starts and runs a job, except under DPoPRequired, where a request would
// refuse it.
func TestJobFromDPoPBoundOriginal(t *testing.T) {
	for _, mode := range []auth.DPoPMode{auth.DPoPDisabled, auth.DPoPAllowed, auth.DPoPRequired} {
		t.Run(mode.String(), func(t *testing.T) {
			f := newDPoPJobFixture(t, mode)
			claims := map[string]any{"sub": "alice", "scope": "notes:read notes:write"}
			bound := f.idp.MustMintBound(claims, f.key)

			status, _ := f.startJob(t, bound, true)
			if mode == auth.DPoPDisabled {
				assert.Equal(t, http.StatusUnauthorized, status, "the request itself is refused")
			} else {
				assert.Equal(t, http.StatusForbidden, status, "Mint refuses a DPoP-bound original")
			}
			_, err := f.issuer.Mint(t.Context(), Request{JobID: "j", Original: auth.NewCredential(bound), Scopes: []string{"notes:read"}})
			require.ErrorIs(t, err, auth.ErrInvalidToken, "and without a request too")

			// A job token bound to the bound original, signed with the
			// real key: what an older Issuer minted.
			bearer := f.idp.MustMint(claims)
			var job string
			if mode != auth.DPoPRequired {
				status, job = f.startJob(t, bearer, false)
				require.Equal(t, http.StatusOK, status, "a bearer original starts a job")
				_, err = f.validator.Validate(t.Context(), job, bearer)
				require.NoError(t, err)
			} else {
				// No bearer token is accepted: sign the job token by hand.
				job, err = f.issuer.sign(map[string]any{
					"iss": jobIssuerURL, "aud": jobAudience, "sub": "alice", "iat": f.clock.Now().Unix(),
					"exp": f.clock.Now().Add(DefaultLifetime).Unix(), "jti": "x", "scope": "notes:read", claimJobID: "job-42",
					claimUserIssuer: f.idp.Issuer(), claimOrigExpiry: f.clock.Now().Add(time.Hour).Unix(),
					claimOrigIssuedAt: f.clock.Now().Unix(), claimOrigHash: tokenHash(bearer),
				})
				require.NoError(t, err)
				_, err = f.validator.Validate(t.Context(), job, bearer)
				require.ErrorIs(t, err, auth.ErrInvalidToken, "DPoPRequired: the users' validator refuses a bearer original")
			}
			forged := f.resign(t, job, func(c map[string]any) { c[claimOrigHash] = tokenHash(bound) })
			f.clock.Advance(2 * time.Hour) // the original expired; the worker carries on alone
			p, err := f.validator.Validate(t.Context(), forged, bound)
			require.ErrorIs(t, err, auth.ErrInvalidToken, "a job token bound to a DPoP-bound original is refused")
			assert.Nil(t, p)
			assert.Equal(t, prefixOriginal+authOriginalBound, auth.AsError(err).Description)
		})
	}
}
