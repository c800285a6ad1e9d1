package obo_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
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

// TestEchoedCredentialsScrubbed: a token endpoint that echoes what it
// received — the form body and the Authorization header in
// error_description, the decoded values in error_uri — gets none of the
// credentials back into the *obo.Error, its Error text or the logged
// exchange event, in any form they were sent in: raw, form-urlencoded (the
// client secret and opaque tokens with / + =), or as the Basic credential's
// base64, long or short. A short secret that a redaction would point at
// drops the whole text; a harmless description is passed through.
func TestEchoedCredentialsScrubbed(t *testing.T) {
	const (
		longSecret  = "s3cr3t+v/alue=xyz"
		shortSecret = "pw12345"
		shortOdd    = "p+w/="
		opaque      = "opaque/user+token=with/slashes+and+plus=="
		actorOpaque = "actor/tok+en=value/="
	)
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	tests := []struct {
		name        string
		method      obo.AuthMethod
		secret      string
		subject     string
		actor       string
		target      obo.Target
		harmless    bool   // the endpoint echoes nothing
		description string // the Description wanted, when harmless or dropped
		dropped     bool   // the description holds a short secret and is dropped
		uriDropped  bool   // the error_uri holds a short secret and is dropped
	}{
		{name: "post, long secret with + / =", method: obo.ClientSecretPost, secret: longSecret, subject: alice},
		{name: "post, short secret", method: obo.ClientSecretPost, secret: shortSecret, subject: alice, dropped: true, uriDropped: true},
		{name: "post, short secret with + / =", method: obo.ClientSecretPost, secret: shortOdd, subject: alice, uriDropped: true},
		{name: "basic, long secret with + / =", method: obo.ClientSecretBasic, secret: longSecret, subject: alice},
		{name: "basic, short secret", method: obo.ClientSecretBasic, secret: shortSecret, subject: alice, uriDropped: true},
		{name: "basic, short secret with + / =", method: obo.ClientSecretBasic, secret: shortOdd, subject: alice, uriDropped: true},
		{name: "post, opaque subject token with / + =", method: obo.ClientSecretPost, secret: longSecret, subject: opaque},
		{name: "basic, opaque subject and actor tokens with / + =", method: obo.ClientSecretBasic, secret: shortOdd, subject: opaque, actor: actorOpaque, uriDropped: true},
		{name: "Entra OBO, opaque assertion", method: obo.ClientSecretPost, secret: longSecret, subject: opaque,
			target: obo.Target{Flavor: obo.EntraOBO, Scopes: []string{"api://calendar/.default"}}},
		{name: "private_key_jwt, opaque subject token", method: obo.PrivateKeyJWT, subject: opaque},
		{name: "harmless description", method: obo.ClientSecretBasic, secret: shortOdd, subject: opaque, harmless: true,
			description: "the subject token has expired"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var (
				mu      sync.Mutex
				rawBody string
				authz   string
			)
			as := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, err := io.ReadAll(r.Body)
				if err != nil {
					w.WriteHeader(http.StatusInternalServerError)
					return
				}
				mu.Lock()
				rawBody, authz = string(b), r.Header.Get("Authorization")
				mu.Unlock()
				resp := map[string]string{"error": "invalid_request", "error_description": tt.description}
				if !tt.harmless {
					form, _ := url.ParseQuery(string(b))
					user, pass, _ := r.BasicAuth()
					user, _ = url.QueryUnescape(user)
					pass, _ = url.QueryUnescape(pass)
					resp["error_description"] = "rejected: " + string(b) + " auth=" + authz
					resp["error_uri"] = "https://as.example.com/err?got=" + strings.Join([]string{
						form.Get("client_secret"), form.Get("subject_token"), form.Get("assertion"),
						form.Get("actor_token"), form.Get("client_assertion"), user + ":" + pass}, ",")
				}
				writeJSON(w, http.StatusBadRequest, resp)
			}))
			defer as.Close()

			var events []obo.ExchangeEvent
			cfg := obo.Config{TokenEndpoint: as.URL, ClientID: "mcp-server", AuthMethod: tt.method,
				Observer: observerFunc(func(_ context.Context, ev obo.ExchangeEvent) { events = append(events, ev) })}
			if tt.method == obo.PrivateKeyJWT {
				cfg.PrivateKey = &obo.PrivateKey{Signer: edKey}
			} else {
				cfg.ClientSecret = auth.NewCredential(tt.secret)
			}
			if tt.actor != "" {
				cfg.ActorToken = func(context.Context) (auth.Credential, error) { return auth.NewCredential(tt.actor), nil }
			}
			ex, err := obo.New(cfg)
			require.NoError(t, err)
			target := tt.target
			if target.Flavor == 0 {
				target = calendar
			}
			_, err = ex.Token(userCtx(tt.subject), target)
			require.ErrorIs(t, err, obo.ErrRejected)
			var oe *obo.Error
			require.ErrorAs(t, err, &oe)
			assert.Equal(t, obo.CodeInvalidRequest, oe.Code)

			// Every form in which a credential went out.
			mu.Lock()
			body, header := rawBody, authz
			mu.Unlock()
			require.NotEmpty(t, body)
			var forms []string
			for _, v := range []string{tt.secret, tt.subject, tt.actor} {
				if v != "" {
					forms = append(forms, v, url.QueryEscape(v))
				}
			}
			for _, kv := range strings.Split(body, "&") {
				k, v, _ := strings.Cut(kv, "=")
				switch k {
				case "client_secret", "subject_token", "assertion", "actor_token", "client_assertion":
					forms = append(forms, v) // as url.Values.Encode wrote it
					raw, err := url.QueryUnescape(v)
					require.NoError(t, err)
					forms = append(forms, raw)
				}
			}
			if tt.method == obo.ClientSecretBasic {
				cred, ok := strings.CutPrefix(header, "Basic ")
				require.True(t, ok, "no Basic credential sent")
				dec, err := base64.StdEncoding.DecodeString(cred)
				require.NoError(t, err)
				require.Equal(t, "mcp-server:"+url.QueryEscape(tt.secret), string(dec), "RFC 6749 §2.3.1")
				forms = append(forms, cred, url.QueryEscape(cred), string(dec))
			} else {
				require.Empty(t, header)
			}
			sent := body + " " + header
			if tt.method == obo.ClientSecretBasic {
				sent += " " + forms[len(forms)-1] // the decoded Basic credential
			}
			for _, v := range []string{tt.secret, tt.subject, tt.actor} {
				if strings.ContainsAny(v, "+/=") {
					require.Contains(t, sent, url.QueryEscape(v), "the request carries the encoded form, which differs from the raw value")
				}
			}

			require.Len(t, events, 1)
			var text, js bytes.Buffer
			slog.New(slog.NewTextHandler(&text, nil)).Info("exchange", "event", events[0])
			slog.New(slog.NewJSONHandler(&js, nil)).Info("exchange", "event", events[0])
			require.Contains(t, text.String(), "error_code=invalid_request")
			for _, s := range []string{err.Error(), oe.Description, oe.URI, oe.Code, oe.SubError, oe.Claims, text.String(), js.String()} {
				assertNoSecrets(t, s, forms...)
			}

			switch {
			case tt.harmless:
				assert.Equal(t, tt.description, oe.Description)
				assert.Contains(t, err.Error(), tt.description)
				assert.Contains(t, text.String(), tt.description)
			case tt.dropped:
				assert.Empty(t, oe.Description, "a short secret drops the whole description")
			default:
				assert.True(t, strings.HasPrefix(oe.Description, "rejected: "), "the rest of the description is kept: %q", oe.Description)
				assert.Contains(t, oe.Description, "[REDACTED]")
			}
			if tt.uriDropped {
				assert.Empty(t, oe.URI)
			} else if !tt.harmless {
				assert.True(t, strings.HasPrefix(oe.URI, "https://as.example.com/err?got="), "URI %q", oe.URI)
			}
		})
	}
}
