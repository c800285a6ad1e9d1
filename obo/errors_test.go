package obo_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/obo"
)

const aJWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl"

func TestErrorMapping(t *testing.T) {
	tests := []struct {
		name        string
		status      int
		body        any
		sentinel    error
		code        string
		interaction bool
		consent     bool
		claims      string
		temporary   bool
	}{
		{
			name: "invalid_grant", status: 400,
			body:     map[string]any{"error": "invalid_grant", "error_description": "the subject token has expired"},
			sentinel: obo.ErrRejected, code: obo.CodeInvalidGrant,
		},
		{
			name: "invalid_target (RFC 8693)", status: 400,
			body:     map[string]any{"error": "invalid_target"},
			sentinel: obo.ErrRejected, code: obo.CodeInvalidTarget,
		},
		{
			name: "Entra interaction_required with claims challenge", status: 400,
			body: map[string]any{
				"error": "interaction_required", "error_description": "AADSTS50076: MFA required",
				"error_codes": []int{50076}, "suberror": "basic_action",
				"claims": `{"access_token":{"capolids":{"essential":true,"values":["p1"]}}}`,
			},
			sentinel: obo.ErrRejected, code: obo.CodeInteractionRequired, interaction: true,
			claims: `{"access_token":{"capolids":{"essential":true,"values":["p1"]}}}`,
		},
		{
			name: "Entra consent required (AADSTS65001 as invalid_grant)", status: 400,
			body:     map[string]any{"error": "invalid_grant", "suberror": "consent_required", "error_codes": []int{65001}},
			sentinel: obo.ErrRejected, code: obo.CodeInvalidGrant, interaction: true, consent: true,
		},
		{
			name: "consent_required code", status: 400,
			body:     map[string]any{"error": "consent_required"},
			sentinel: obo.ErrRejected, code: obo.CodeConsentRequired, interaction: true, consent: true,
		},
		{
			name: "401 without body", status: 401, body: "",
			sentinel: obo.ErrRejected,
		},
		{
			name: "500", status: 500, body: map[string]any{"error": "server_error"},
			sentinel: obo.ErrUnavailable, code: "server_error", temporary: true,
		},
		{
			name: "503 html", status: 503, body: "<html>down</html>",
			sentinel: obo.ErrUnavailable, temporary: true,
		},
		{
			name: "429", status: 429, body: map[string]any{"error": "slow_down"},
			sentinel: obo.ErrUnavailable, code: "slow_down", temporary: true,
		},
		{
			name: "200 with an error member", status: 200,
			body:     map[string]any{"error": "invalid_grant"},
			sentinel: obo.ErrRejected, code: obo.CodeInvalidGrant,
		},
		{
			name: "server echoes secrets and a JWT in the description", status: 400,
			body:     map[string]any{"error": "invalid_grant", "error_description": "bad token " + alice + " for client secret s3cret:with/odd&chars, see " + aJWT},
			sentinel: obo.ErrRejected, code: obo.CodeInvalidGrant,
		},
		{
			name: "bad error code characters are dropped", status: 400,
			body:     map[string]any{"error": "bad\"code\n"},
			sentinel: obo.ErrRejected,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			as := newFakeAS(t, "client_secret_post")
			as.respond = func(url.Values) (int, any) { return tt.status, tt.body }
			ex := newExchanger(t, as, nil)
			_, err := ex.Token(userCtx(alice), calendar)
			require.Error(t, err)
			assert.ErrorIs(t, err, tt.sentinel)
			var oe *obo.Error
			require.ErrorAs(t, err, &oe)
			assert.Equal(t, tt.status, oe.Status)
			assert.Equal(t, tt.code, oe.Code)
			assert.Equal(t, obo.TokenExchange, oe.Flavor)
			assert.Equal(t, tt.interaction, oe.InteractionRequired(), "InteractionRequired")
			assert.Equal(t, tt.consent, oe.ConsentRequired(), "ConsentRequired")
			claims, ok := oe.ClaimsChallenge()
			assert.Equal(t, tt.claims, claims)
			assert.Equal(t, tt.claims != "", ok)
			assert.Equal(t, tt.temporary, oe.Temporary(), "Temporary")
			for _, s := range []string{err.Error(), oe.Description, oe.URI} {
				assertNoSecrets(t, s, alice, as.secret, aJWT, "c2lnbmF0dXJl")
			}
			// Exactly one request per call: nothing is retried.
			assert.EqualValues(t, 1, as.calls.Load())
		})
	}
}

// TestInvalidGrantNotRetriedNorCached: each call makes exactly one request,
// and a failure is not cached: the next call asks again.
func TestInvalidGrantNotRetriedNorCached(t *testing.T) {
	as := newFakeAS(t, "client_secret_basic")
	var fail atomic.Bool
	fail.Store(true)
	as.respond = func(f url.Values) (int, any) {
		if fail.Load() {
			return 400, map[string]string{"error": "invalid_grant"}
		}
		return 200, map[string]any{"access_token": "fresh-token-123", "token_type": "Bearer", "issued_token_type": obo.TokenTypeAccessToken, "expires_in": 600}
	}
	ex := newExchanger(t, as, nil)
	_, err := ex.Token(userCtx(alice), calendar)
	require.ErrorIs(t, err, obo.ErrRejected)
	assert.EqualValues(t, 1, as.calls.Load())
	_, err = ex.Token(userCtx(alice), calendar)
	require.ErrorIs(t, err, obo.ErrRejected)
	assert.EqualValues(t, 2, as.calls.Load())
	fail.Store(false)
	tok, err := ex.Token(userCtx(alice), calendar)
	require.NoError(t, err)
	assert.Equal(t, "fresh-token-123", tok.AccessToken.Reveal())
}

// TestRedirectNeverFollowed: a 307 from the token endpoint to another
// server sends that server nothing — not the client secret, not the user's
// token.
func TestRedirectNeverFollowed(t *testing.T) {
	var thief atomic.Int64
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		thief.Add(1)
	}))
	defer evil.Close()
	for _, status := range []int{http.StatusTemporaryRedirect, http.StatusPermanentRedirect, http.StatusFound} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			as := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, evil.URL+"/steal", status)
			}))
			defer as.Close()
			for _, method := range []obo.AuthMethod{obo.ClientSecretBasic, obo.ClientSecretPost} {
				ex, err := obo.New(obo.Config{TokenEndpoint: as.URL, ClientID: "c", AuthMethod: method, ClientSecret: auth.NewCredential("client-secret-value")})
				require.NoError(t, err)
				_, err = ex.Token(userCtx(alice), calendar)
				require.ErrorIs(t, err, obo.ErrInvalidResponse)
				assert.Contains(t, err.Error(), "redirect")
				var oe *obo.Error
				require.ErrorAs(t, err, &oe)
				assert.Equal(t, status, oe.Status)
			}
			assert.Zero(t, thief.Load(), "the redirect target received a request")
		})
	}

	t.Run("a caller's HTTPClient that follows redirects is overridden", func(t *testing.T) {
		as := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, evil.URL+"/steal", http.StatusTemporaryRedirect)
		}))
		defer as.Close()
		follow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return nil }}
		ex, err := obo.New(obo.Config{TokenEndpoint: as.URL, ClientID: "c", ClientSecret: auth.NewCredential("client-secret-value"), HTTPClient: follow})
		require.NoError(t, err)
		_, err = ex.Token(userCtx(alice), calendar)
		require.ErrorIs(t, err, obo.ErrInvalidResponse)
		assert.Zero(t, thief.Load())
	})
}

// TestTimeout: a token endpoint that never answers fails the call after
// Config.Timeout with ErrUnavailable. (No timing is asserted.)
func TestTimeout(t *testing.T) {
	release := make(chan struct{})
	as := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer as.Close()
	defer close(release)
	ex, err := obo.New(obo.Config{TokenEndpoint: as.URL, ClientID: "c", ClientSecret: auth.NewCredential("client-secret-value"), Timeout: 50 * time.Millisecond})
	require.NoError(t, err)
	_, err = ex.Token(userCtx(alice), calendar)
	require.ErrorIs(t, err, obo.ErrUnavailable)
	var oe *obo.Error
	require.ErrorAs(t, err, &oe)
	assert.True(t, oe.Temporary())
	assertNoSecrets(t, err.Error(), alice, "client-secret-value")
}

func TestNoCredential(t *testing.T) {
	as := newFakeAS(t, "client_secret_basic")
	var events []obo.ExchangeEvent
	ex := newExchanger(t, as, func(c *obo.Config) {
		c.Observer = observerFunc(func(_ context.Context, ev obo.ExchangeEvent) { events = append(events, ev) })
	})
	for _, target := range []obo.Target{calendar, {Flavor: obo.EntraOBO, Scopes: []string{"api://x/.default"}}} {
		for _, ctx := range []context.Context{
			context.Background(),
			auth.NewCredentialContext(context.Background(), auth.Credential{}), // an empty credential is none
		} {
			_, err := ex.Token(ctx, target)
			require.ErrorIs(t, err, obo.ErrNoCredential)
			var oe *obo.Error
			require.ErrorAs(t, err, &oe)
			assert.Equal(t, target.Flavor, oe.Flavor)
		}
	}
	assert.Zero(t, as.calls.Load(), "nothing may be sent without a credential")
	require.Len(t, events, 4)
	for _, ev := range events {
		assert.ErrorIs(t, ev.Err, obo.ErrNoCredential)
		assert.Equal(t, "error", ev.Outcome())
	}
	// A principal without a credential is still no credential.
	ctx := auth.NewContext(context.Background(), &auth.Principal{Subject: "alice"})
	_, err := ex.Token(ctx, calendar)
	assert.True(t, errors.Is(err, obo.ErrNoCredential))
}
