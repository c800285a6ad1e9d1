package obo_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/auth/authtest"
	"github.com/mcpguard/mcpguard/obo"
)

const idpSecret = "idp-client-secret-0123456789"

// idpSetup starts the test IdP with the MCP server registered as a client
// for each authentication method.
type idpSetup struct {
	idp *authtest.Server
	key *ecdsa.PrivateKey
}

func newIDP(t testing.TB, cfg authtest.Config) *idpSetup {
	t.Helper()
	cfg.TB = t
	if len(cfg.Algorithms) == 0 {
		cfg.Algorithms = []string{"ES256"}
	}
	idp, err := authtest.New(cfg)
	require.NoError(t, err)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	for _, c := range []authtest.Client{
		{ID: "mcp-basic", Secret: idpSecret, AuthMethod: authtest.ClientSecretBasic},
		{ID: "mcp-post", Secret: idpSecret, AuthMethod: authtest.ClientSecretPost},
		{ID: "mcp-jwt", PublicKey: &key.PublicKey, AuthMethod: authtest.PrivateKeyJWT},
	} {
		require.NoError(t, idp.RegisterClient(c))
	}
	return &idpSetup{idp: idp, key: key}
}

func (s *idpSetup) config(method obo.AuthMethod) obo.Config {
	cfg := obo.Config{TokenEndpoint: s.idp.TokenURL(), AuthMethod: method}
	switch method {
	case obo.ClientSecretBasic:
		cfg.ClientID, cfg.ClientSecret = "mcp-basic", auth.NewCredential(idpSecret)
	case obo.ClientSecretPost:
		cfg.ClientID, cfg.ClientSecret = "mcp-post", auth.NewCredential(idpSecret)
	case obo.PrivateKeyJWT:
		cfg.ClientID, cfg.PrivateKey = "mcp-jwt", &obo.PrivateKey{Signer: s.key, KeyID: "mcp-jwt-1"}
	}
	return cfg
}

func (s *idpSetup) exchanger(t testing.TB, method obo.AuthMethod, mutate func(*obo.Config)) *obo.Exchanger {
	t.Helper()
	cfg := s.config(method)
	if mutate != nil {
		mutate(&cfg)
	}
	ex, err := obo.New(cfg)
	require.NoError(t, err)
	return ex
}

// verify checks an issued token with the IdP's public keys, independently
// of obo, for audience aud.
func (s *idpSetup) verify(t testing.TB, tok, aud string) jwt.MapClaims {
	t.Helper()
	claims := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(tok, claims, func(tk *jwt.Token) (any, error) {
		kid, _ := tk.Header["kid"].(string)
		k, ok := s.idp.Key(kid)
		if !ok {
			return nil, jwt.ErrTokenUnverifiable
		}
		return k.Public(), nil
	}, jwt.WithIssuer(s.idp.Issuer()), jwt.WithAudience(aud), jwt.WithExpirationRequired())
	require.NoError(t, err)
	return claims
}

// TestAgainstAuthtest runs every flavor with every client authentication
// method against the test IdP's real token endpoint and checks the issued
// token independently.
func TestAgainstAuthtest(t *testing.T) {
	s := newIDP(t, authtest.Config{})
	user := s.idp.MustMint(map[string]any{"sub": "alice", "scope": "mcp"})
	flavors := []struct {
		name   string
		target obo.Target
		ctx    context.Context
		aud    string
		check  func(t *testing.T, clientID string, c jwt.MapClaims)
	}{
		{
			name:   "token exchange",
			target: obo.Target{Flavor: obo.TokenExchange, Audience: "https://calendar.example.com", Scopes: []string{"calendar.read"}},
			ctx:    userCtx(user),
			aud:    "https://calendar.example.com",
			check: func(t *testing.T, clientID string, c jwt.MapClaims) {
				assert.Equal(t, "alice", c["sub"])
				assert.Equal(t, map[string]any{"sub": clientID}, c["act"])
				assert.Equal(t, "calendar.read", c["scope"])
			},
		},
		{
			name:   "Entra on-behalf-of",
			target: obo.Target{Flavor: obo.EntraOBO, Scopes: []string{"api://calendar/Calendars.Read"}},
			ctx:    userCtx(user),
			aud:    "api://calendar",
			check: func(t *testing.T, clientID string, c jwt.MapClaims) {
				assert.Equal(t, "alice", c["sub"])
				assert.Equal(t, "Calendars.Read", c["scp"])
				assert.Equal(t, clientID, c["azp"])
			},
		},
		{
			name:   "client credentials",
			target: obo.Target{Flavor: obo.ClientCredentials, Resource: "https://billing.example.com", Scopes: []string{"billing.read"}},
			ctx:    context.Background(),
			aud:    "https://billing.example.com",
			check: func(t *testing.T, clientID string, c jwt.MapClaims) {
				assert.Equal(t, clientID, c["sub"])
				assert.NotContains(t, c, "act")
			},
		},
	}
	for _, method := range []obo.AuthMethod{obo.ClientSecretBasic, obo.ClientSecretPost, obo.PrivateKeyJWT} {
		ex := s.exchanger(t, method, nil)
		clientID := s.config(method).ClientID
		for _, f := range flavors {
			t.Run(string(method)+"/"+f.name, func(t *testing.T) {
				tok, err := ex.Token(f.ctx, f.target)
				require.NoError(t, err)
				raw := tok.AccessToken.Reveal()
				assert.NotEqual(t, user, raw)
				f.check(t, clientID, s.verify(t, raw, f.aud))
				assert.WithinDuration(t, time.Now().Add(time.Hour), tok.Expiry, time.Minute)
			})
		}
	}
}

// TestAuthtestRejectsBadSubjects: the IdP's own validation of the subject
// token surfaces as invalid_grant, which is not retried.
func TestAuthtestRejectsBadSubjects(t *testing.T) {
	s := newIDP(t, authtest.Config{})
	ex := s.exchanger(t, obo.ClientSecretBasic, nil)
	for name, subject := range map[string]string{
		"expired":        s.idp.MustMint(map[string]any{"exp": time.Now().Add(-time.Hour).Unix()}),
		"other audience": s.idp.MustMint(map[string]any{"aud": "https://not-this-server.example"}),
	} {
		t.Run(name, func(t *testing.T) {
			before := s.idp.TokenRequests()
			_, err := ex.Token(userCtx(subject), calendar)
			require.ErrorIs(t, err, obo.ErrRejected)
			var oe *obo.Error
			require.ErrorAs(t, err, &oe)
			assert.Equal(t, obo.CodeInvalidGrant, oe.Code)
			assert.False(t, oe.Temporary())
			assert.Equal(t, 1, s.idp.TokenRequests()-before, "invalid_grant is not retried")
			assertNoSecrets(t, err.Error(), subject, idpSecret)
		})
	}
}

// TestAuthtestFaults maps each injected fault to its error class.
func TestAuthtestFaults(t *testing.T) {
	s := newIDP(t, authtest.Config{})
	user := s.idp.MustMint(nil)
	const claims = `{"access_token":{"acrs":{"essential":true,"value":"c1"}}}`
	tests := []struct {
		name     string
		set      func()
		sentinel error
		check    func(t *testing.T, oe *obo.Error)
	}{
		{"down", func() { s.idp.SetTokenFault(authtest.FaultDown) }, obo.ErrUnavailable, nil},
		{"500", func() { s.idp.SetTokenFault(authtest.FaultStatus500) }, obo.ErrUnavailable, func(t *testing.T, oe *obo.Error) {
			assert.Equal(t, http.StatusInternalServerError, oe.Status)
		}},
		{"garbage", func() { s.idp.SetTokenFault(authtest.FaultGarbage) }, obo.ErrInvalidResponse, nil},
		{"empty answer", func() { s.idp.SetTokenFault(authtest.FaultEmpty) }, obo.ErrInvalidResponse, nil},
		{"oversized", func() { s.idp.SetTokenFault(authtest.FaultOversized) }, obo.ErrInvalidResponse, nil},
		{"redirect", func() { s.idp.SetTokenFault(authtest.FaultRedirect) }, obo.ErrInvalidResponse, func(t *testing.T, oe *obo.Error) {
			assert.Equal(t, http.StatusTemporaryRedirect, oe.Status)
			assert.Zero(t, s.idp.RedirectFetches(), "the redirect target must receive nothing")
		}},
		{"slow beyond the timeout", func() { s.idp.SetTokenDelay(time.Hour) }, obo.ErrUnavailable, nil},
		{"invalid_grant", func() { s.idp.SetTokenError(authtest.InvalidGrant("revoked")) }, obo.ErrRejected, func(t *testing.T, oe *obo.Error) {
			assert.Equal(t, obo.CodeInvalidGrant, oe.Code)
			assert.False(t, oe.InteractionRequired())
		}},
		{"interaction_required with claims", func() { s.idp.SetTokenError(authtest.InteractionRequired(claims)) }, obo.ErrRejected, func(t *testing.T, oe *obo.Error) {
			assert.True(t, oe.InteractionRequired())
			got, ok := oe.ClaimsChallenge()
			assert.True(t, ok)
			assert.Equal(t, claims, got)
			assert.Equal(t, "basic_action", oe.SubError)
			assert.Equal(t, []int{50076}, oe.ErrorCodes)
		}},
		{"consent required", func() { s.idp.SetTokenError(authtest.ConsentRequired()) }, obo.ErrRejected, func(t *testing.T, oe *obo.Error) {
			assert.True(t, oe.ConsentRequired())
			assert.True(t, oe.InteractionRequired())
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Only the slow case needs a short timeout; the others must not
			// race it on a loaded machine (an oversized answer takes a
			// while to read).
			timeout := 10 * time.Second
			if tt.name == "slow beyond the timeout" {
				timeout = 100 * time.Millisecond
			}
			ex := s.exchanger(t, obo.ClientSecretPost, func(c *obo.Config) { c.Timeout = timeout })
			tt.set()
			defer func() {
				s.idp.SetTokenFault(authtest.FaultNone)
				s.idp.SetTokenDelay(0)
				s.idp.SetTokenError(nil)
			}()
			_, err := ex.Token(userCtx(user), calendar)
			require.ErrorIs(t, err, tt.sentinel)
			var oe *obo.Error
			require.ErrorAs(t, err, &oe)
			assertNoSecrets(t, err.Error(), user, idpSecret)
			if tt.check != nil {
				tt.check(t, oe)
			}
		})
	}
}

// TestAuthtestExpiryRefresh: with a shared clock, the token is exchanged
// again once the IdP's lifetime minus the skew has passed.
func TestAuthtestExpiryRefresh(t *testing.T) {
	clk := &clock{t: time.Now()}
	s := newIDP(t, authtest.Config{Now: clk.Now, TokenLifetime: 10 * time.Minute})
	ex := s.exchanger(t, obo.ClientSecretBasic, func(c *obo.Config) { c.Now = clk.Now })
	user := s.idp.MustMint(map[string]any{"exp": clk.Now().Add(24 * time.Hour).Unix()})
	get := func() string {
		tok, err := ex.Token(userCtx(user), calendar)
		require.NoError(t, err)
		return tok.AccessToken.Reveal()
	}
	first := get()
	n := s.idp.TokenRequests()
	clk.Add(9 * time.Minute)
	assert.Equal(t, first, get())
	assert.Equal(t, n, s.idp.TokenRequests(), "cached")
	clk.Add(time.Minute - obo.DefaultExpirySkew)
	assert.NotEqual(t, first, get())
	assert.Equal(t, n+1, s.idp.TokenRequests(), "refreshed at expiry minus skew")
}

func TestDiscoveryAgainstAuthtest(t *testing.T) {
	for _, cfg := range []authtest.Config{
		{IssuerPath: "/realms/acme"},                        // RFC 8414 path insertion
		{IssuerPath: "/tenant", DisableOIDCDiscovery: true}, // RFC 8414 only
		{}, // root issuer
	} {
		t.Run("issuer path "+cfg.IssuerPath, func(t *testing.T) {
			s := newIDP(t, cfg)
			ex, err := obo.New(obo.Config{Issuer: s.idp.Issuer(), ClientID: "mcp-jwt", AuthMethod: obo.PrivateKeyJWT, PrivateKey: &obo.PrivateKey{Signer: s.key}})
			require.NoError(t, err)
			ep, err := ex.TokenEndpoint(t.Context())
			require.NoError(t, err)
			assert.Equal(t, s.idp.TokenURL(), ep)
			tok, err := ex.Token(userCtx(s.idp.MustMint(nil)), calendar)
			require.NoError(t, err)
			s.verify(t, tok.AccessToken.Reveal(), "calendar-api")
			fetches := s.idp.MetadataFetches()
			_, err = ex.TokenEndpoint(t.Context())
			require.NoError(t, err)
			assert.Equal(t, fetches, s.idp.MetadataFetches(), "discovered once")
		})
	}

	t.Run("issuer mismatch", func(t *testing.T) {
		s := newIDP(t, authtest.Config{})
		s.idp.EditMetadata(func(doc map[string]any) { doc["issuer"] = "https://evil.example" })
		ex := mustNew(t, obo.Config{Issuer: s.idp.Issuer(), ClientID: "mcp-basic", ClientSecret: auth.NewCredential(idpSecret)})
		_, err := ex.TokenEndpoint(t.Context())
		require.ErrorIs(t, err, obo.ErrConfig)
		assert.Contains(t, err.Error(), "RFC 8414 §3.3")
		_, err = ex.Token(userCtx(s.idp.MustMint(nil)), calendar)
		require.ErrorIs(t, err, obo.ErrConfig)
		assert.Zero(t, s.idp.TokenRequests())
	})
	t.Run("auth method not supported", func(t *testing.T) {
		s := newIDP(t, authtest.Config{})
		s.idp.EditMetadata(func(doc map[string]any) { doc["token_endpoint_auth_methods_supported"] = []string{"private_key_jwt"} })
		ex := mustNew(t, obo.Config{Issuer: s.idp.Issuer(), ClientID: "mcp-basic", ClientSecret: auth.NewCredential(idpSecret)})
		_, err := ex.TokenEndpoint(t.Context())
		require.ErrorIs(t, err, obo.ErrConfig)
		assert.Contains(t, err.Error(), "AuthMethod")
	})
	t.Run("non-https token endpoint on a public host", func(t *testing.T) {
		s := newIDP(t, authtest.Config{})
		s.idp.EditMetadata(func(doc map[string]any) { doc["token_endpoint"] = "http://as.example.com/token" })
		ex := mustNew(t, obo.Config{Issuer: s.idp.Issuer(), ClientID: "mcp-basic", ClientSecret: auth.NewCredential(idpSecret)})
		_, err := ex.TokenEndpoint(t.Context())
		require.ErrorIs(t, err, obo.ErrConfig)
	})
}

func mustNew(t testing.TB, cfg obo.Config) *obo.Exchanger {
	t.Helper()
	ex, err := obo.New(cfg)
	require.NoError(t, err)
	return ex
}

// TestDiscoveryFallbackAndCooldown: RFC 8414 404 → OpenID Connect; a
// failure is remembered for the cooldown, then retried; redirects are not
// followed.
func TestDiscoveryFallbackAndCooldown(t *testing.T) {
	var srv *httptest.Server
	var broken, redirected bool
	var hits, stolen int
	evil := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { stolen++ }))
	defer evil.Close()
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits++
		switch {
		case redirected:
			http.Redirect(w, r, evil.URL+r.URL.Path, http.StatusFound)
		case broken:
			http.Error(w, "down", http.StatusServiceUnavailable)
		case r.URL.Path == "/tenant/.well-known/openid-configuration":
			writeJSONBody(w, map[string]any{"issuer": srv.URL + "/tenant", "token_endpoint": srv.URL + "/tenant/token"})
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	clk := newClock()
	newEx := func() *obo.Exchanger {
		return mustNew(t, obo.Config{Issuer: srv.URL + "/tenant", ClientID: "c", ClientSecret: auth.NewCredential("s"), Now: clk.Now})
	}

	ep, err := newEx().TokenEndpoint(t.Context())
	require.NoError(t, err)
	assert.Equal(t, srv.URL+"/tenant/token", ep)
	assert.Equal(t, 2, hits, "RFC 8414 URL, then the OIDC URL")

	broken = true
	ex := newEx()
	hits = 0
	_, err = ex.TokenEndpoint(t.Context())
	require.ErrorIs(t, err, obo.ErrUnavailable)
	_, err = ex.TokenEndpoint(t.Context())
	require.ErrorIs(t, err, obo.ErrUnavailable)
	assert.Equal(t, 1, hits, "a failure is remembered for the cooldown")
	broken = false
	clk.Add(10 * time.Second)
	_, err = ex.TokenEndpoint(t.Context())
	require.NoError(t, err, "retried after the cooldown")

	redirected = true
	_, err = newEx().TokenEndpoint(t.Context())
	require.Error(t, err)
	assert.Zero(t, stolen, "discovery never follows a redirect")
}
