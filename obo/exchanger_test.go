package obo_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/obo"
)

const (
	alice = "alice-inbound-token-0123456789abcdef"
	bob   = "bob-inbound-token-0123456789abcdef"
)

func userCtx(raw string) context.Context {
	return auth.NewCredentialContext(context.Background(), auth.NewCredential(raw))
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newExchanger(t testing.TB, as *fakeAS, mutate func(*obo.Config)) *obo.Exchanger {
	t.Helper()
	cfg := obo.Config{
		TokenEndpoint: as.url(),
		ClientID:      as.clientID,
		AuthMethod:    obo.AuthMethod(as.method),
	}
	if as.method != "private_key_jwt" {
		cfg.ClientSecret = auth.NewCredential(as.secret)
	}
	if mutate != nil {
		mutate(&cfg)
	}
	ex, err := obo.New(cfg)
	require.NoError(t, err)
	return ex
}

var calendar = obo.Target{Flavor: obo.TokenExchange, Audience: "calendar-api", Resource: "https://calendar.example.com/", Scopes: []string{"calendar.read"}}

func TestFlavors(t *testing.T) {
	tests := []struct {
		name   string
		target obo.Target
		ctx    context.Context
		want   url.Values // exact form, without client authentication
		sub    string     // expected subject of the issued token
		issued string
	}{
		{
			name:   "RFC 8693 token exchange with audience, resource and scopes",
			target: obo.Target{Flavor: obo.TokenExchange, Audience: "calendar-api", Resource: "https://calendar.example.com/", Scopes: []string{"calendar.write", "calendar.read", "calendar.read"}},
			ctx:    userCtx(alice),
			want: url.Values{
				"grant_type":         {"urn:ietf:params:oauth:grant-type:token-exchange"},
				"subject_token":      {alice},
				"subject_token_type": {"urn:ietf:params:oauth:token-type:access_token"},
				"audience":           {"calendar-api"},
				"resource":           {"https://calendar.example.com/"},
				"scope":              {"calendar.read calendar.write"},
			},
			sub:    alice,
			issued: obo.TokenTypeAccessToken,
		},
		{
			name:   "RFC 8693 with requested and subject token types",
			target: obo.Target{Flavor: obo.TokenExchange, Audience: "files", SubjectTokenType: obo.TokenTypeJWT, RequestedTokenType: obo.TokenTypeJWT},
			ctx:    userCtx(bob),
			want: url.Values{
				"grant_type":           {"urn:ietf:params:oauth:grant-type:token-exchange"},
				"subject_token":        {bob},
				"subject_token_type":   {obo.TokenTypeJWT},
				"requested_token_type": {obo.TokenTypeJWT},
				"audience":             {"files"},
			},
			sub:    bob,
			issued: obo.TokenTypeJWT,
		},
		{
			name:   "Entra on-behalf-of",
			target: obo.Target{Flavor: obo.EntraOBO, Scopes: []string{"api://calendar/.default"}},
			ctx:    userCtx(alice),
			want: url.Values{
				"grant_type":          {"urn:ietf:params:oauth:grant-type:jwt-bearer"},
				"assertion":           {alice},
				"requested_token_use": {"on_behalf_of"},
				"scope":               {"api://calendar/.default"},
			},
			sub: alice,
		},
		{
			name:   "client credentials needs no user",
			target: obo.Target{Flavor: obo.ClientCredentials, Resource: "https://billing.example.com", Scopes: []string{"billing.read"}},
			ctx:    context.Background(),
			want: url.Values{
				"grant_type": {"client_credentials"},
				"resource":   {"https://billing.example.com"},
				"scope":      {"billing.read"},
			},
			sub: "mcp-server",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			as := newFakeAS(t, "client_secret_post")
			ex := newExchanger(t, as, nil)
			tok, err := ex.Token(tt.ctx, tt.target)
			require.NoError(t, err)
			got := as.last(t).form
			got.Del("client_id")
			got.Del("client_secret")
			assert.Equal(t, tt.want, got)
			it := decodeIssued(t, tok.AccessToken.Reveal())
			assert.Equal(t, tt.sub, it.Sub)
			assert.Equal(t, "Bearer", tok.TokenType)
			assert.Equal(t, tt.issued, tok.IssuedTokenType)
			assert.False(t, tok.Expiry.IsZero())
		})
	}
}

func TestActorToken(t *testing.T) {
	as := newFakeAS(t, "client_secret_basic")
	actor := "service-actor-token-0123456789"
	ex := newExchanger(t, as, func(c *obo.Config) {
		c.ActorToken = func(context.Context) (auth.Credential, error) { return auth.NewCredential(actor), nil }
	})
	_, err := ex.Token(userCtx(alice), calendar)
	require.NoError(t, err)
	f := as.last(t).form
	assert.Equal(t, actor, f.Get("actor_token"))
	assert.Equal(t, obo.TokenTypeAccessToken, f.Get("actor_token_type"))

	// An actor source failure stops the exchange before anything is sent.
	as2 := newFakeAS(t, "client_secret_basic")
	ex2 := newExchanger(t, as2, func(c *obo.Config) {
		c.ActorToken = func(context.Context) (auth.Credential, error) { return auth.Credential{}, errors.New("no actor") }
	})
	_, err = ex2.Token(userCtx(alice), calendar)
	require.ErrorIs(t, err, obo.ErrUnavailable)
	assert.Zero(t, as2.calls.Load())
}

func TestClientAuthMethods(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	edPub, edKey, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)

	tests := []struct {
		name    string
		method  string
		signer  crypto.Signer
		pub     crypto.PublicKey
		alg     string
		wantAlg string
	}{
		{name: "client_secret_basic", method: "client_secret_basic"},
		{name: "client_secret_post", method: "client_secret_post"},
		{name: "private_key_jwt RS256", method: "private_key_jwt", signer: rsaKey, pub: &rsaKey.PublicKey, wantAlg: "RS256"},
		{name: "private_key_jwt PS256", method: "private_key_jwt", signer: rsaKey, pub: &rsaKey.PublicKey, alg: "PS256", wantAlg: "PS256"},
		{name: "private_key_jwt ES256", method: "private_key_jwt", signer: ecKey, pub: &ecKey.PublicKey, wantAlg: "ES256"},
		{name: "private_key_jwt EdDSA", method: "private_key_jwt", signer: edKey, pub: edPub, wantAlg: "EdDSA"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			as := newFakeAS(t, tt.method)
			as.pub = tt.pub
			ex := newExchanger(t, as, func(c *obo.Config) {
				if tt.signer != nil {
					c.PrivateKey = &obo.PrivateKey{Signer: tt.signer, Algorithm: tt.alg, KeyID: "key-1", Thumbprint: "thumb-sha1"}
				}
			})
			for _, ctx := range []context.Context{userCtx(alice), userCtx(bob)} {
				_, err := ex.Token(ctx, calendar)
				require.NoError(t, err)
			}
			reqs := as.requests()
			require.Len(t, reqs, 2)
			for _, r := range reqs {
				f, h := r.form, r.header
				switch tt.method {
				case "client_secret_basic":
					assert.True(t, strings.HasPrefix(h.Get("Authorization"), "Basic "))
					assert.False(t, f.Has("client_secret"))
				case "client_secret_post":
					assert.Empty(t, h.Get("Authorization"))
					assert.Equal(t, as.secret, f.Get("client_secret"))
				case "private_key_jwt":
					assert.Empty(t, h.Get("Authorization"))
					tok, _, err := jwt.NewParser().ParseUnverified(f.Get("client_assertion"), jwt.MapClaims{})
					require.NoError(t, err)
					assert.Equal(t, tt.wantAlg, tok.Method.Alg())
					assert.Equal(t, "key-1", tok.Header["kid"])
					assert.Equal(t, "thumb-sha1", tok.Header["x5t"])
					c := tok.Claims.(jwt.MapClaims)
					assert.Equal(t, as.url(), c["aud"])
					assert.Equal(t, as.clientID, c["iss"])
					assert.Equal(t, as.clientID, c["sub"])
				}
			}
			if tt.method == "private_key_jwt" {
				assert.NotEqual(t, reqs[0].form.Get("client_assertion"), reqs[1].form.Get("client_assertion"), "each assertion must be fresh (jti)")
			}
		})
	}

	t.Run("wrong secret is invalid_client", func(t *testing.T) {
		as := newFakeAS(t, "client_secret_basic")
		ex := newExchanger(t, as, func(c *obo.Config) { c.ClientSecret = auth.NewCredential("wrong-secret-value") })
		_, err := ex.Token(userCtx(alice), calendar)
		var oe *obo.Error
		require.ErrorAs(t, err, &oe)
		assert.Equal(t, obo.CodeInvalidClient, oe.Code)
		assert.Equal(t, http.StatusUnauthorized, oe.Status)
		assert.ErrorIs(t, err, obo.ErrRejected)
		assert.NotContains(t, err.Error(), "wrong-secret-value")
	})
}

func TestConfigErrors(t *testing.T) {
	rsaSmall, err := rsa.GenerateKey(rand.Reader, 1024)
	require.NoError(t, err)
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	good := func() obo.Config {
		return obo.Config{TokenEndpoint: "https://as.example.com/token", ClientID: "c", ClientSecret: auth.NewCredential("s")}
	}
	tests := []struct {
		name   string
		mutate func(*obo.Config)
		field  string
	}{
		{"no endpoint", func(c *obo.Config) { c.TokenEndpoint = "" }, "TokenEndpoint"},
		{"http endpoint", func(c *obo.Config) { c.TokenEndpoint = "http://as.example.com/token" }, "TokenEndpoint"},
		{"relative endpoint", func(c *obo.Config) { c.TokenEndpoint = "/token" }, "TokenEndpoint"},
		{"endpoint with user info", func(c *obo.Config) { c.TokenEndpoint = "https://u:p@as.example.com/token" }, "TokenEndpoint"},
		{"issuer with query", func(c *obo.Config) { c.TokenEndpoint = ""; c.Issuer = "https://as.example.com/?x=1" }, "Issuer"},
		{"no client id", func(c *obo.Config) { c.ClientID = "" }, "ClientID"},
		{"unknown method", func(c *obo.Config) { c.AuthMethod = "tls_client_auth" }, "AuthMethod"},
		{"basic without secret", func(c *obo.Config) { c.ClientSecret = auth.Credential{} }, "ClientSecret"},
		{"post with key", func(c *obo.Config) {
			c.AuthMethod = obo.ClientSecretPost
			c.PrivateKey = &obo.PrivateKey{Signer: ecKey}
		}, "PrivateKey"},
		{"jwt without key", func(c *obo.Config) { c.AuthMethod = obo.PrivateKeyJWT; c.ClientSecret = auth.Credential{} }, "PrivateKey"},
		{"jwt with secret", func(c *obo.Config) {
			c.AuthMethod = obo.PrivateKeyJWT
			c.PrivateKey = &obo.PrivateKey{Signer: ecKey}
		}, "ClientSecret"},
		{"small RSA key", func(c *obo.Config) {
			c.AuthMethod, c.ClientSecret = obo.PrivateKeyJWT, auth.Credential{}
			c.PrivateKey = &obo.PrivateKey{Signer: rsaSmall}
		}, "PrivateKey"},
		{"alg does not fit key", func(c *obo.Config) {
			c.AuthMethod, c.ClientSecret = obo.PrivateKeyJWT, auth.Credential{}
			c.PrivateKey = &obo.PrivateKey{Signer: ecKey, Algorithm: "RS256"}
		}, "PrivateKey"},
		{"negative timeout", func(c *obo.Config) { c.Timeout = -1 }, "Timeout"},
		{"negative skew", func(c *obo.Config) { c.ExpirySkew = -1 }, "ExpirySkew"},
		{"long assertion", func(c *obo.Config) { c.AssertionLifetime = 2 * time.Hour }, "AssertionLifetime"},
		{"actor type without actor", func(c *obo.Config) { c.ActorTokenType = obo.TokenTypeJWT }, "ActorTokenType"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := good()
			tt.mutate(&cfg)
			ex, err := obo.New(cfg)
			require.Error(t, err)
			assert.Nil(t, ex)
			assert.ErrorIs(t, err, obo.ErrConfig)
			assert.Contains(t, err.Error(), "Config."+tt.field)
		})
	}
	t.Run("good config and loopback http", func(t *testing.T) {
		cfg := good()
		cfg.TokenEndpoint = "http://127.0.0.1:9/token"
		_, err := obo.New(cfg)
		require.NoError(t, err)
	})
}

func TestTargetErrors(t *testing.T) {
	as := newFakeAS(t, "client_secret_basic")
	ex := newExchanger(t, as, nil)
	tests := []struct {
		name   string
		target obo.Target
		field  string
	}{
		{"no flavor", obo.Target{Audience: "x"}, "Flavor"},
		{"exchange without audience or resource", obo.Target{Flavor: obo.TokenExchange, Scopes: []string{"a"}}, "Audience"},
		{"relative resource", obo.Target{Flavor: obo.TokenExchange, Resource: "/api"}, "Resource"},
		{"resource with fragment", obo.Target{Flavor: obo.TokenExchange, Resource: "https://api.example.com/#x"}, "Resource"},
		{"bad scope", obo.Target{Flavor: obo.TokenExchange, Audience: "a", Scopes: []string{"two words"}}, "Scopes"},
		{"quote in scope", obo.Target{Flavor: obo.TokenExchange, Audience: "a", Scopes: []string{`a"b`}}, "Scopes"},
		{"bad token type", obo.Target{Flavor: obo.TokenExchange, Audience: "a", RequestedTokenType: "jwt"}, "RequestedTokenType"},
		{"obo without scope", obo.Target{Flavor: obo.EntraOBO}, "Scopes"},
		{"obo with audience", obo.Target{Flavor: obo.EntraOBO, Audience: "a", Scopes: []string{"api://x/.default"}}, "Audience"},
		{"client credentials with token type", obo.Target{Flavor: obo.ClientCredentials, SubjectTokenType: obo.TokenTypeJWT}, "SubjectTokenType"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ex.Token(userCtx(alice), tt.target)
			require.ErrorIs(t, err, obo.ErrConfig)
			assert.Contains(t, err.Error(), "Target."+tt.field)
			_, err = ex.Transport(tt.target, nil)
			require.ErrorIs(t, err, obo.ErrConfig)
			_, err = ex.TokenSource(userCtx(alice), tt.target)
			require.ErrorIs(t, err, obo.ErrConfig)
		})
	}
	assert.Zero(t, as.calls.Load())
}

// TestResponseValidation: a 200 answer that is not a usable bearer token
// for the target is rejected, and the rejection names no token.
func TestResponseValidation(t *testing.T) {
	tok := "downstream-token-0123456789"
	tests := []struct {
		name   string
		target obo.Target
		body   any
		ctype  string
		want   string
	}{
		{name: "no access_token", body: map[string]any{"token_type": "Bearer", "issued_token_type": obo.TokenTypeAccessToken, "expires_in": 60}, want: "no access_token"},
		{name: "N_A token type", body: map[string]any{"access_token": tok, "token_type": "N_A", "issued_token_type": obo.TokenTypeAccessToken, "expires_in": 60}, want: "not Bearer"},
		{name: "DPoP token type without a DPoP key", body: map[string]any{"access_token": tok, "token_type": "DPoP", "issued_token_type": obo.TokenTypeAccessToken, "expires_in": 60}, want: "no Config.DPoPKey"},
		{name: "missing issued_token_type", body: map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": 60}, want: "issued_token_type"},
		{name: "id token issued", body: map[string]any{"access_token": tok, "token_type": "Bearer", "issued_token_type": obo.TokenTypeIDToken, "expires_in": 60}, want: "neither an access token"},
		{name: "issued type differs from requested",
			target: obo.Target{Flavor: obo.TokenExchange, Audience: "a", RequestedTokenType: obo.TokenTypeJWT},
			body:   map[string]any{"access_token": tok, "token_type": "Bearer", "issued_token_type": obo.TokenTypeAccessToken, "expires_in": 60}, want: "not the requested"},
		{name: "zero expires_in", body: map[string]any{"access_token": tok, "token_type": "Bearer", "issued_token_type": obo.TokenTypeAccessToken, "expires_in": 0}, want: "expires_in"},
		{name: "negative expires_in", body: map[string]any{"access_token": tok, "token_type": "Bearer", "issued_token_type": obo.TokenTypeAccessToken, "expires_in": -5}, want: "expires_in"},
		{name: "fractional expires_in", body: map[string]any{"access_token": tok, "token_type": "Bearer", "issued_token_type": obo.TokenTypeAccessToken, "expires_in": 1.5}, want: "expires_in"},
		{name: "huge expires_in", body: map[string]any{"access_token": tok, "token_type": "Bearer", "issued_token_type": obo.TokenTypeAccessToken, "expires_in": 1e12}, want: "expires_in"},
		{name: "non-numeric expires_in", body: map[string]any{"access_token": tok, "token_type": "Bearer", "issued_token_type": obo.TokenTypeAccessToken, "expires_in": "soon"}, want: "expires_in"},
		{name: "token with a space", body: map[string]any{"access_token": "a b", "token_type": "Bearer", "issued_token_type": obo.TokenTypeAccessToken, "expires_in": 60}, want: "b64token"},
		{name: "subject token echoed", body: map[string]any{"access_token": alice, "token_type": "Bearer", "issued_token_type": obo.TokenTypeAccessToken, "expires_in": 60}, want: "passthrough"},
		{name: "not JSON", body: "<html>hello</html>", want: "not a JSON"},
		{name: "wrong content type", body: map[string]any{"access_token": tok, "token_type": "Bearer", "issued_token_type": obo.TokenTypeAccessToken}, ctype: "text/plain", want: "Content-Type"},
		{name: "oversized body", body: `{"access_token":"` + strings.Repeat("a", obo.MaxResponseBytes) + `"}`, want: "larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				ct := tt.ctype
				if ct == "" {
					ct = "application/json; charset=utf-8"
				}
				w.Header().Set("Content-Type", ct)
				if s, ok := tt.body.(string); ok {
					_, _ = w.Write([]byte(s))
					return
				}
				writeJSONBody(w, tt.body)
			}))
			defer srv.Close()
			ex, err := obo.New(obo.Config{TokenEndpoint: srv.URL, ClientID: "c", ClientSecret: auth.NewCredential("client-secret-value")})
			require.NoError(t, err)
			target := calendar
			if tt.target.Flavor != 0 {
				target = tt.target
			}
			_, err = ex.Token(userCtx(alice), target)
			require.Error(t, err)
			assert.ErrorIs(t, err, obo.ErrInvalidResponse)
			assert.Contains(t, err.Error(), tt.want)
			assertNoSecrets(t, err.Error(), alice, tok, "client-secret-value")
		})
	}
}

func assertNoSecrets(t *testing.T, s string, secrets ...string) {
	t.Helper()
	for _, sec := range secrets {
		assert.NotContains(t, s, sec)
	}
}

func TestExpiresInForms(t *testing.T) {
	clk := newClock()
	for _, tt := range []struct {
		name      string
		expiresIn any
		want      time.Duration
		cached    bool
	}{
		{"number", 3600, time.Hour, true},
		{"digit string (Entra v1)", "3599", 3599 * time.Second, true},
		{"absent: used once, not cached", nil, 0, false},
		{"shorter than the skew: not cached", 20, 20 * time.Second, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			as := newFakeAS(t, "client_secret_basic")
			as.respond = func(url.Values) (int, any) {
				body := map[string]any{"access_token": "tok-" + fmt.Sprint(as.calls.Load()), "token_type": "bearer", "issued_token_type": obo.TokenTypeAccessToken}
				if tt.expiresIn != nil {
					body["expires_in"] = tt.expiresIn
				}
				return http.StatusOK, body
			}
			ex := newExchanger(t, as, func(c *obo.Config) { c.Now = clk.Now })
			tok, err := ex.Token(userCtx(alice), calendar)
			require.NoError(t, err)
			if tt.want == 0 {
				assert.True(t, tok.Expiry.IsZero())
			} else {
				assert.Equal(t, clk.Now().Add(tt.want), tok.Expiry)
			}
			_, err = ex.Token(userCtx(alice), calendar)
			require.NoError(t, err)
			if tt.cached {
				assert.EqualValues(t, 1, as.calls.Load())
			} else {
				assert.EqualValues(t, 2, as.calls.Load())
			}
		})
	}
}

func writeJSONBody(w http.ResponseWriter, v any) {
	b, _ := json.Marshal(v)
	_, _ = w.Write(b)
}
