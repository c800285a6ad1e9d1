package authtest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	svcID     = "mcp-server"
	svcSecret = "s3cret:with/odd&chars"
)

type tokenCall struct {
	form   url.Values
	basic  bool // send the secret with client_secret_basic
	header map[string]string
	query  string
	ctype  string
}

func postToken(t *testing.T, s *Server, c tokenCall) (int, map[string]any) {
	t.Helper()
	u := s.TokenURL()
	if c.query != "" {
		u += "?" + c.query
	}
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(c.form.Encode()))
	require.NoError(t, err)
	ct := c.ctype
	if ct == "" {
		ct = "application/x-www-form-urlencoded"
	}
	req.Header.Set("Content-Type", ct)
	if c.basic {
		req.SetBasicAuth(url.QueryEscape(svcID), url.QueryEscape(svcSecret))
	}
	for k, v := range c.header {
		req.Header.Set(k, v)
	}
	resp, err := s.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	body := map[string]any{}
	require.NoError(t, json.Unmarshal(b, &body), "body: %s", b)
	if resp.StatusCode == http.StatusOK {
		assert.Equal(t, "no-store", resp.Header.Get("Cache-Control"))
	}
	return resp.StatusCode, body
}

func newTokenServer(t *testing.T) *Server {
	t.Helper()
	s, err := New(Config{TB: t, Algorithms: []string{"ES256", "RS256"}})
	require.NoError(t, err)
	require.NoError(t, s.RegisterClient(Client{ID: svcID, Secret: svcSecret}))
	return s
}

func exchangeForm(subject string, extra url.Values) url.Values {
	f := url.Values{
		"grant_type":         {GrantTokenExchange},
		"subject_token":      {subject},
		"subject_token_type": {TokenTypeAccessToken},
		"audience":           {"calendar-api"},
	}
	for k, v := range extra {
		f[k] = v
	}
	return f
}

func TestTokenExchangeIssuesDelegatedToken(t *testing.T) {
	s := newTokenServer(t)
	subject := s.MustMint(map[string]any{"sub": "alice", "scope": "mcp", "tid": "acme"})

	status, body := postToken(t, s, tokenCall{basic: true, form: exchangeForm(subject, url.Values{
		"resource": {"https://calendar.example.com/"},
		"scope":    {"calendar.read"},
	})})
	require.Equal(t, http.StatusOK, status, body)
	assert.Equal(t, "Bearer", body["token_type"])
	assert.Equal(t, TokenTypeAccessToken, body["issued_token_type"])
	assert.EqualValues(t, 3600, body["expires_in"])
	assert.Equal(t, "calendar.read", body["scope"])

	claims := verifyIssued(t, s, body["access_token"].(string), "calendar-api")
	assert.Equal(t, "alice", claims["sub"], "sub stays the user (RFC 8693 §4.1)")
	assert.ElementsMatch(t, []any{"calendar-api", "https://calendar.example.com/"}, claims["aud"])
	assert.Equal(t, map[string]any{"sub": svcID}, claims["act"], "act names the acting client")
	assert.Equal(t, svcID, claims["client_id"])
	assert.Equal(t, "acme", claims["tid"])
	assert.Equal(t, "calendar.read", claims["scope"])
}

func TestTokenExchangeActorAndNestedAct(t *testing.T) {
	s := newTokenServer(t)
	// The user's token was itself obtained by an earlier delegation.
	subject := s.MustMint(map[string]any{"sub": "alice", "act": map[string]any{"sub": "gateway"}})
	actor := s.MustMint(map[string]any{"sub": "mcp-server-workload", "aud": "sts"})
	status, body := postToken(t, s, tokenCall{basic: true, form: exchangeForm(subject, url.Values{
		"actor_token":          {actor},
		"actor_token_type":     {TokenTypeJWT},
		"requested_token_type": {TokenTypeJWT},
	})})
	require.Equal(t, http.StatusOK, status, body)
	assert.Equal(t, TokenTypeJWT, body["issued_token_type"])
	claims := verifyIssued(t, s, body["access_token"].(string), "calendar-api")
	assert.Equal(t, "alice", claims["sub"])
	assert.Equal(t, map[string]any{
		"sub": "mcp-server-workload", "iss": s.Issuer(),
		"act": map[string]any{"sub": "gateway"},
	}, claims["act"], "the current actor on top, the prior chain nested (RFC 8693 §4.1)")
}

func TestOnBehalfOfIssuesEntraShapedToken(t *testing.T) {
	s := newTokenServer(t)
	assertion := s.MustMint(map[string]any{"sub": "alice-pairwise", "oid": "0000-alice", "tid": "tenant-1"})
	status, body := postToken(t, s, tokenCall{form: url.Values{
		"grant_type":          {GrantJWTBearer},
		"assertion":           {assertion},
		"requested_token_use": {"on_behalf_of"},
		"scope":               {"api://calendar/.default offline_access"},
		"client_id":           {svcID},
		"client_secret":       {svcSecret},
	}})
	require.Equal(t, http.StatusOK, status, body)
	assert.NotContains(t, body, "issued_token_type")
	claims := verifyIssued(t, s, body["access_token"].(string), "api://calendar")
	assert.Equal(t, "alice-pairwise", claims["sub"])
	assert.Equal(t, "0000-alice", claims["oid"])
	assert.Equal(t, "tenant-1", claims["tid"])
	assert.Equal(t, "user_impersonation", claims["scp"])
	assert.Equal(t, svcID, claims["azp"])
	assert.Equal(t, svcID, claims["appid"])
}

func TestClientCredentialsWithEveryAuthMethod(t *testing.T) {
	s := newTokenServer(t)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	require.NoError(t, s.RegisterClient(Client{ID: "jwt-client", PublicKey: &key.PublicKey, AuthMethod: PrivateKeyJWT}))
	assertion := func(aud string, jti string) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{
			"iss": "jwt-client", "sub": "jwt-client", "aud": aud, "jti": jti,
			"iat": time.Now().Unix(), "exp": time.Now().Add(time.Minute).Unix(),
		})
		raw, err := tok.SignedString(key)
		require.NoError(t, err)
		return raw
	}
	cc := url.Values{"grant_type": {GrantClientCredentials}, "scope": {"billing.read"}, "resource": {"https://billing.example.com"}}
	with := func(extra url.Values) url.Values {
		f := url.Values{}
		for k, v := range cc {
			f[k] = v
		}
		for k, v := range extra {
			f[k] = v
		}
		return f
	}
	tests := []struct {
		name   string
		call   tokenCall
		status int
		code   string
		sub    string
	}{
		{"basic", tokenCall{basic: true, form: cc}, 200, "", svcID},
		{"post", tokenCall{form: with(url.Values{"client_id": {svcID}, "client_secret": {svcSecret}})}, 200, "", svcID},
		{"private_key_jwt, aud = token endpoint", tokenCall{form: with(url.Values{"client_assertion_type": {clientAssertionType}, "client_assertion": {assertion(s.TokenURL(), "j1")}})}, 200, "", "jwt-client"},
		{"private_key_jwt, aud = issuer", tokenCall{form: with(url.Values{"client_assertion_type": {clientAssertionType}, "client_assertion": {assertion(s.Issuer(), "j2")}})}, 200, "", "jwt-client"},
		{"assertion replayed", tokenCall{form: with(url.Values{"client_assertion_type": {clientAssertionType}, "client_assertion": {assertion(s.TokenURL(), "j1")}})}, 401, "invalid_client", ""},
		{"assertion for another audience", tokenCall{form: with(url.Values{"client_assertion_type": {clientAssertionType}, "client_assertion": {assertion("https://elsewhere", "j3")}})}, 401, "invalid_client", ""},
		{"wrong secret", tokenCall{form: with(url.Values{"client_id": {svcID}, "client_secret": {"nope"}})}, 401, "invalid_client", ""},
		{"unencoded basic secret", tokenCall{form: cc, header: map[string]string{"Authorization": "Basic " + basicRaw(svcID, "%zz")}}, 401, "invalid_client", ""},
		{"two methods", tokenCall{basic: true, form: with(url.Values{"client_id": {svcID}, "client_secret": {svcSecret}})}, 401, "invalid_client", ""},
		{"secret for a private_key_jwt client", tokenCall{form: with(url.Values{"client_id": {"jwt-client"}, "client_secret": {"x"}})}, 401, "invalid_client", ""},
		{"no client authentication", tokenCall{form: cc}, 401, "invalid_client", ""},
		{"query string", tokenCall{basic: true, form: cc, query: "client_secret=x"}, 400, "invalid_request", ""},
		{"repeated parameter", tokenCall{basic: true, form: with(url.Values{"scope": {"a", "b"}})}, 400, "invalid_request", ""},
		{"JSON body", tokenCall{basic: true, form: cc, ctype: "application/json"}, 400, "invalid_request", ""},
		{"unknown grant", tokenCall{basic: true, form: url.Values{"grant_type": {"password"}}}, 400, "unsupported_grant_type", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := postToken(t, s, tt.call)
			require.Equal(t, tt.status, status, body)
			if tt.code != "" {
				assert.Equal(t, tt.code, body["error"])
				assert.NotEmpty(t, body["error_description"])
				return
			}
			claims := verifyIssued(t, s, body["access_token"].(string), "https://billing.example.com")
			assert.Equal(t, tt.sub, claims["sub"])
			assert.Equal(t, tt.sub, claims["client_id"])
			assert.NotContains(t, claims, "act")
		})
	}
}

func basicRaw(user, pass string) string {
	req, _ := http.NewRequest(http.MethodGet, "http://x", nil)
	req.SetBasicAuth(user, pass)
	return strings.TrimPrefix(req.Header.Get("Authorization"), "Basic ")
}

// TestSubjectTokenIsValidated: the subject token and the on-behalf-of
// assertion must be this server's, unexpired, for the client's audience.
func TestSubjectTokenIsValidated(t *testing.T) {
	s := newTokenServer(t)
	foreign, err := GenerateKey("ES256", "es256-1") // same kid, not published
	require.NoError(t, err)
	retired, err := s.NewKey("ES256")
	require.NoError(t, err)
	retiredTok, err := s.MintToken(Token{Key: retired})
	require.NoError(t, err)
	require.NoError(t, s.RetireKey(retired.ID()))
	forged, err := s.MintToken(Token{Key: foreign})
	require.NoError(t, err)
	unsigned, err := s.MintUnsigned(nil)
	require.NoError(t, err)
	hmac, err := s.MintHMAC(nil, s.SigningKey().PublicKeyPEM())
	require.NoError(t, err)
	badSig, err := s.MintBadSignature(nil)
	require.NoError(t, err)

	tests := map[string]string{
		"expired":            s.MustMint(map[string]any{"exp": time.Now().Add(-time.Minute).Unix()}),
		"no exp":             s.MustMint(map[string]any{"exp": nil}),
		"other audience":     s.MustMint(map[string]any{"aud": "https://other.example"}),
		"other issuer":       s.MustMint(map[string]any{"iss": "https://evil.example"}),
		"no sub":             s.MustMint(map[string]any{"sub": nil}),
		"unpublished key":    forged,
		"retired key":        retiredTok,
		"unsigned":           unsigned,
		"HMAC with a public": hmac,
		"bad signature":      badSig,
		"not a JWT":          "opaque-token-value",
	}
	for name, subject := range tests {
		t.Run(name, func(t *testing.T) {
			status, body := postToken(t, s, tokenCall{basic: true, form: exchangeForm(subject, nil)})
			assert.Equal(t, http.StatusBadRequest, status)
			assert.Equal(t, "invalid_grant", body["error"])
			assert.NotContains(t, body["error_description"], subject)

			status, body = postToken(t, s, tokenCall{basic: true, form: url.Values{
				"grant_type": {GrantJWTBearer}, "assertion": {subject},
				"requested_token_use": {"on_behalf_of"}, "scope": {"api://x/.default"},
			}})
			assert.Equal(t, http.StatusBadRequest, status)
			assert.Equal(t, "invalid_grant", body["error"])
		})
	}
}

func TestTokenRequestErrors(t *testing.T) {
	s := newTokenServer(t)
	good := s.MustMint(nil)
	tests := []struct {
		name string
		form url.Values
		code string
	}{
		{"exchange without target", url.Values{"grant_type": {GrantTokenExchange}, "subject_token": {good}, "subject_token_type": {TokenTypeAccessToken}}, "invalid_target"},
		{"exchange without subject type", url.Values{"grant_type": {GrantTokenExchange}, "subject_token": {good}, "audience": {"a"}}, "invalid_request"},
		{"unsupported requested type", exchangeForm(good, url.Values{"requested_token_type": {"urn:ietf:params:oauth:token-type:saml2"}}), "invalid_request"},
		{"actor token without type", exchangeForm(good, url.Values{"actor_token": {good}}), "invalid_request"},
		{"may_act forbids the client", exchangeForm(s.MustMint(map[string]any{"may_act": map[string]any{"sub": "someone-else"}}), nil), "invalid_grant"},
		{"obo without requested_token_use", url.Values{"grant_type": {GrantJWTBearer}, "assertion": {good}, "scope": {"api://x/.default"}}, "invalid_request"},
		{"obo mixing resources", url.Values{"grant_type": {GrantJWTBearer}, "assertion": {good}, "requested_token_use": {"on_behalf_of"}, "scope": {"api://x/a api://y/b"}}, "invalid_scope"},
		{"obo without resource", url.Values{"grant_type": {GrantJWTBearer}, "assertion": {good}, "requested_token_use": {"on_behalf_of"}, "scope": {"openid"}}, "invalid_scope"},
		{"no grant type", url.Values{"scope": {"a"}}, "invalid_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := postToken(t, s, tokenCall{basic: true, form: tt.form})
			assert.Equal(t, http.StatusBadRequest, status)
			assert.Equal(t, tt.code, body["error"])
		})
	}
	t.Run("may_act allows the client", func(t *testing.T) {
		subject := s.MustMint(map[string]any{"may_act": map[string]any{"sub": svcID}})
		status, body := postToken(t, s, tokenCall{basic: true, form: exchangeForm(subject, nil)})
		assert.Equal(t, http.StatusOK, status, body)
	})
}

func TestTokenFaults(t *testing.T) {
	s := newTokenServer(t)
	cc := url.Values{"grant_type": {GrantClientCredentials}}
	send := func() (*http.Response, []byte, error) {
		req, _ := http.NewRequest(http.MethodPost, s.TokenURL(), strings.NewReader(cc.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(url.QueryEscape(svcID), url.QueryEscape(svcSecret))
		noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := noFollow.Do(req)
		if err != nil {
			return nil, nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp, b, err
	}
	t.Run("down", func(t *testing.T) {
		s.SetTokenFault(FaultDown)
		defer s.SetTokenFault(FaultNone)
		_, _, err := send()
		assert.Error(t, err)
	})
	t.Run("500", func(t *testing.T) {
		s.SetTokenFault(FaultStatus500)
		defer s.SetTokenFault(FaultNone)
		resp, _, err := send()
		require.NoError(t, err)
		assert.Equal(t, http.StatusInternalServerError, resp.StatusCode)
	})
	t.Run("garbage", func(t *testing.T) {
		s.SetTokenFault(FaultGarbage)
		defer s.SetTokenFault(FaultNone)
		resp, b, err := send()
		require.NoError(t, err)
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		assert.False(t, json.Valid(b))
	})
	t.Run("oversized", func(t *testing.T) {
		s.SetTokenFault(FaultOversized)
		defer s.SetTokenFault(FaultNone)
		_, b, err := send()
		require.NoError(t, err)
		assert.Greater(t, len(b), 2<<20)
	})
	t.Run("redirect to the other host", func(t *testing.T) {
		s.SetTokenFault(FaultRedirect)
		defer s.SetTokenFault(FaultNone)
		resp, _, err := send()
		require.NoError(t, err)
		assert.Equal(t, http.StatusTemporaryRedirect, resp.StatusCode)
		assert.NotContains(t, resp.Header.Get("Location"), s.URL())
		assert.Zero(t, s.RedirectFetches())
	})
	t.Run("interaction required with claims", func(t *testing.T) {
		s.SetTokenError(InteractionRequired(`{"access_token":{"acrs":{"essential":true,"value":"c1"}}}`))
		defer s.SetTokenError(nil)
		resp, b, err := send()
		require.NoError(t, err)
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
		var body map[string]any
		require.NoError(t, json.Unmarshal(b, &body))
		assert.Equal(t, "interaction_required", body["error"])
		assert.Equal(t, `{"access_token":{"acrs":{"essential":true,"value":"c1"}}}`, body["claims"])
		assert.Equal(t, []any{50076.0}, body["error_codes"])
	})
	t.Run("invalid_grant and consent", func(t *testing.T) {
		for _, e := range []*TokenError{InvalidGrant("revoked"), ConsentRequired()} {
			s.SetTokenError(e)
			resp, b, err := send()
			require.NoError(t, err)
			assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
			assert.Contains(t, string(b), `"error":"invalid_grant"`)
		}
		s.SetTokenError(nil)
	})
	t.Run("slow honours the client's deadline", func(t *testing.T) {
		s.SetTokenDelay(time.Hour)
		defer s.SetTokenDelay(0)
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.TokenURL(), strings.NewReader(cc.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		_, err := s.Client().Do(req)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
	})
	resp, _, err := send()
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, resp.StatusCode, "normal service after the faults")
	assert.Positive(t, s.TokenRequests())
}

func TestTokenMetadataAndRegistration(t *testing.T) {
	s := newTokenServer(t)
	_, b := get(t, s, s.MetadataURL())
	var doc map[string]any
	require.NoError(t, json.Unmarshal(b, &doc))
	assert.Equal(t, s.TokenURL(), doc["token_endpoint"])
	assert.ElementsMatch(t, []any{GrantClientCredentials, GrantTokenExchange, GrantJWTBearer}, doc["grant_types_supported"])
	assert.ElementsMatch(t, []any{ClientSecretBasic, ClientSecretPost, PrivateKeyJWT}, doc["token_endpoint_auth_methods_supported"])

	for name, c := range map[string]Client{
		"no id":                {Secret: "x"},
		"no credential":        {ID: "a"},
		"jwt without key":      {ID: "a", AuthMethod: PrivateKeyJWT},
		"basic without secret": {ID: "a", AuthMethod: ClientSecretBasic, PublicKey: s.SigningKey().Public()},
		"unknown method":       {ID: "a", Secret: "x", AuthMethod: "tls_client_auth"},
		"unsupported key":      {ID: "a", PublicKey: "not a key"},
	} {
		assert.Error(t, s.RegisterClient(c), name)
	}
}

// verifyIssued checks an issued token independently, with golang-jwt and
// the server's public keys, for audience aud.
func verifyIssued(t *testing.T, s *Server, tok, aud string) jwt.MapClaims {
	t.Helper()
	claims, err := verifyFor(t, s, tok, aud)
	require.NoError(t, err)
	return claims
}

func verifyFor(t *testing.T, s *Server, tok, aud string) (jwt.MapClaims, error) {
	t.Helper()
	claims := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(tok, claims, func(tk *jwt.Token) (any, error) {
		k, ok := s.Key(tk.Header["kid"].(string))
		if !ok {
			return nil, jwt.ErrTokenUnverifiable
		}
		return k.Public(), nil
	}, jwt.WithIssuer(s.Issuer()), jwt.WithAudience(aud), jwt.WithExpirationRequired())
	return claims, err
}

// FuzzEntraScope: a scope string either names exactly one resource, which
// prefixes every non-OpenID scope, or is refused.
func FuzzEntraScope(f *testing.F) {
	for _, s := range []string{"api://calendar/.default", "api://a/x api://b/y", "openid offline_access", "/x", "api://a/", "https://graph.microsoft.com/User.Read openid", "\r/0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, scope string) {
		res, names, ok := entraScope(scope)
		if !ok {
			return
		}
		assert.NotEmpty(t, res)
		assert.NotEmpty(t, names)
		for _, s := range strings.Fields(scope) {
			switch s {
			case "openid", "profile", "email", "offline_access":
				continue
			}
			assert.True(t, strings.HasPrefix(s, res+"/"), "%q outside %q", s, res)
		}
	})
}
