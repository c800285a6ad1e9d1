package authtest

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func get(t *testing.T, s *Server, url string) (*http.Response, []byte) {
	t.Helper()
	resp, err := s.Client().Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, b
}

// verify checks tok independently of mcpguard, with golang-jwt and keyfunc
// reading the server's published JWKS.
func verify(t *testing.T, s *Server, tok string) (jwt.MapClaims, error) {
	t.Helper()
	doc, err := s.JWKS()
	require.NoError(t, err)
	kf, err := keyfunc.NewJWKSetJSON(doc)
	require.NoError(t, err)
	claims := jwt.MapClaims{}
	_, err = jwt.ParseWithClaims(tok, claims, kf.Keyfunc,
		jwt.WithValidMethods([]string{"RS256", "PS256", "ES256", "EdDSA"}),
		jwt.WithIssuer(s.Issuer()), jwt.WithAudience(s.Audience()), jwt.WithExpirationRequired())
	return claims, err
}

func decodeSegment(t *testing.T, tok string, i int) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	require.Len(t, parts, 3)
	b, err := base64.RawURLEncoding.DecodeString(parts[i])
	require.NoError(t, err)
	m := map[string]any{}
	require.NoError(t, json.Unmarshal(b, &m))
	return m
}

func TestDiscovery(t *testing.T) {
	for _, path := range []string{"", "/realms/acme"} {
		t.Run("issuer path "+path, func(t *testing.T) {
			s, err := New(Config{TB: t, IssuerPath: path, Algorithms: []string{"ES256"}})
			require.NoError(t, err)
			assert.Equal(t, s.URL()+path, s.Issuer())
			assert.Equal(t, s.URL()+"/.well-known/oauth-authorization-server"+path, s.MetadataURL())
			for _, u := range []string{s.DiscoveryURL(), s.MetadataURL()} {
				resp, body := get(t, s, u)
				require.Equal(t, http.StatusOK, resp.StatusCode, u)
				var doc map[string]any
				require.NoError(t, json.Unmarshal(body, &doc))
				assert.Equal(t, s.Issuer(), doc["issuer"])
				assert.Equal(t, s.JWKSURL(), doc["jwks_uri"])
				assert.Equal(t, s.TokenURL(), doc["token_endpoint"])
				assert.Equal(t, s.IntrospectionURL(), doc["introspection_endpoint"])
			}
			assert.Equal(t, 2, s.MetadataFetches())
		})
	}
}

func TestDisableOIDCDiscoveryAndEditMetadata(t *testing.T) {
	s, err := New(Config{TB: t, DisableOIDCDiscovery: true, Algorithms: []string{"ES256"}})
	require.NoError(t, err)
	resp, _ := get(t, s, s.DiscoveryURL())
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)

	s.EditMetadata(func(doc map[string]any) { doc["issuer"] = "https://evil.example" })
	_, body := get(t, s, s.MetadataURL())
	assert.Contains(t, string(body), `"issuer":"https://evil.example"`)
	s.EditMetadata(nil)
	_, body = get(t, s, s.MetadataURL())
	assert.Contains(t, string(body), `"issuer":"`+s.Issuer()+`"`)
}

func TestJWKSPublishesEveryDefaultKey(t *testing.T) {
	s := NewServer(t)
	resp, body := get(t, s, s.JWKSURL())
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var doc struct {
		Keys []map[string]any `json:"keys"`
	}
	require.NoError(t, json.Unmarshal(body, &doc))
	require.Len(t, doc.Keys, 4)
	want := map[string]string{"rs256-1": "RSA", "ps256-1": "RSA", "es256-1": "EC", "eddsa-1": "OKP"}
	for _, k := range doc.Keys {
		kid, _ := k["kid"].(string)
		assert.Equal(t, want[kid], k["kty"], kid)
		assert.Equal(t, "sig", k["use"], kid)
		assert.NotContains(t, k, "d", "private part published for %s", kid)
	}
	assert.Equal(t, 1, s.JWKSFetches())
	assert.Equal(t, "rs256-1", s.SigningKey().ID())
}

func TestMintVerifiesIndependently(t *testing.T) {
	s := NewServer(t)
	for _, k := range s.Keys() {
		t.Run(k.Alg(), func(t *testing.T) {
			tok, err := s.MintToken(Token{Key: k, Claims: map[string]any{"scope": "notes:read"}})
			require.NoError(t, err)
			claims, err := verify(t, s, tok)
			require.NoError(t, err)
			assert.Equal(t, "alice", claims["sub"])
			assert.Equal(t, "notes:read", claims["scope"])
			assert.Equal(t, "mcp-client", claims["client_id"])
			assert.NotEmpty(t, claims["jti"])
			h := decodeSegment(t, tok, 0)
			assert.Equal(t, map[string]any{"alg": k.Alg(), "kid": k.ID(), "typ": "at+jwt"}, h)
		})
	}
}

func TestMintDefaultsAndOverrides(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	s, err := New(Config{TB: t, Algorithms: []string{"EdDSA"}, Now: func() time.Time { return now },
		Audience: "https://api.example/mcp", Subject: "bob", ClientID: "c1", TokenLifetime: time.Minute})
	require.NoError(t, err)
	tok := s.MustMint(map[string]any{"exp": nil, "aud": []string{"a", "b"}, "extra": true})
	c := decodeSegment(t, tok, 1)
	assert.Equal(t, s.Issuer(), c["iss"])
	assert.Equal(t, "bob", c["sub"])
	assert.Equal(t, "c1", c["client_id"])
	assert.Equal(t, []any{"a", "b"}, c["aud"])
	assert.Equal(t, float64(now.Unix()), c["iat"])
	assert.NotContains(t, c, "exp")
	assert.Equal(t, true, c["extra"])

	tok = s.MustMint(nil)
	c = decodeSegment(t, tok, 1)
	assert.Equal(t, float64(now.Add(time.Minute).Unix()), c["exp"])

	tok, err = s.MintToken(Token{NoDefaults: true, Claims: map[string]any{"sub": "x"}, Header: map[string]any{"kid": nil, "crit": []string{"exp"}}})
	require.NoError(t, err)
	assert.Equal(t, map[string]any{"sub": "x"}, decodeSegment(t, tok, 1))
	h := decodeSegment(t, tok, 0)
	assert.NotContains(t, h, "kid")
	assert.Equal(t, []any{"exp"}, h["crit"])
}

func TestBrokenTokens(t *testing.T) {
	s := NewServer(t)
	signer := s.SigningKey()

	t.Run("unsigned", func(t *testing.T) {
		tok, err := s.MintUnsigned(nil)
		require.NoError(t, err)
		assert.True(t, strings.HasSuffix(tok, "."))
		assert.Equal(t, "none", decodeSegment(t, tok, 0)["alg"])
		_, err = verify(t, s, tok)
		assert.Error(t, err)
	})
	t.Run("hmac with the public key", func(t *testing.T) {
		secret := signer.PublicKeyPEM()
		require.Contains(t, string(secret), "BEGIN PUBLIC KEY")
		tok, err := s.MintHMAC(nil, secret)
		require.NoError(t, err)
		assert.Equal(t, "HS256", decodeSegment(t, tok, 0)["alg"])
		assert.Equal(t, signer.ID(), decodeSegment(t, tok, 0)["kid"])
		// The signature really is an HMAC keyed with the PEM bytes.
		_, err = jwt.Parse(tok, func(*jwt.Token) (any, error) { return secret, nil }, jwt.WithValidMethods([]string{"HS256"}))
		require.NoError(t, err)
		_, err = verify(t, s, tok)
		assert.Error(t, err)
	})
	t.Run("bad signature", func(t *testing.T) {
		tok, err := s.MintBadSignature(nil)
		require.NoError(t, err)
		_, err = verify(t, s, tok)
		assert.ErrorIs(t, err, jwt.ErrTokenSignatureInvalid)
	})
	t.Run("oversized", func(t *testing.T) {
		tok, err := s.MintOversized(nil, 20<<10)
		require.NoError(t, err)
		assert.GreaterOrEqual(t, len(tok), 20<<10)
		assert.Less(t, len(tok), 21<<10)
		_, err = verify(t, s, tok)
		assert.NoError(t, err, "an oversized token is still correctly signed")
	})
	t.Run("forged with an unpublished key", func(t *testing.T) {
		forger, err := GenerateKey("RS256", signer.ID())
		require.NoError(t, err)
		tok, err := s.MintToken(Token{Key: forger})
		require.NoError(t, err)
		_, err = verify(t, s, tok)
		assert.ErrorIs(t, err, jwt.ErrTokenSignatureInvalid)
	})
	t.Run("alg in header differs from signature alg", func(t *testing.T) {
		tok, err := s.MintToken(Token{Alg: "PS256", Key: signer})
		require.NoError(t, err)
		assert.Equal(t, "PS256", decodeSegment(t, tok, 0)["alg"])
	})
	t.Run("raw bytes keep duplicate members", func(t *testing.T) {
		tok, err := Sign([]byte(`{"alg":"ES256","kid":"x"}`), []byte(`{"aud":"a","AUD":"b","aud":"c"}`), "ES256", mustKey(t, s, "ES256").Private())
		require.NoError(t, err)
		b, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[1])
		require.NoError(t, err)
		assert.Equal(t, `{"aud":"a","AUD":"b","aud":"c"}`, string(b))
	})
}

func mustKey(t *testing.T, s *Server, alg string) *Key {
	t.Helper()
	k, ok := s.KeyFor(alg)
	require.True(t, ok, alg)
	return k
}

func TestRotation(t *testing.T) {
	s, err := New(Config{TB: t, Algorithms: []string{"ES256"}})
	require.NoError(t, err)
	old := s.SigningKey()
	next, err := s.Rotate("ES256")
	require.NoError(t, err)
	assert.Equal(t, "es256-2", next.ID())
	assert.Equal(t, next, s.SigningKey())
	assert.Len(t, s.Keys(), 2)

	tok := s.MustMint(nil)
	assert.Equal(t, "es256-2", decodeSegment(t, tok, 0)["kid"])
	_, err = verify(t, s, tok)
	require.NoError(t, err)

	oldTok, err := s.MintToken(Token{Key: old})
	require.NoError(t, err)
	require.NoError(t, s.RetireKey(old.ID()))
	_, ok := s.Key(old.ID())
	assert.False(t, ok)
	_, err = verify(t, s, oldTok)
	assert.Error(t, err, "a token signed by a retired key must not verify")

	assert.Error(t, s.RetireKey("nope"))
	assert.Error(t, s.SetSigningKey("nope"))
	assert.Error(t, s.AddKey(next), "duplicate kid")
	require.NoError(t, s.SetSigningKey(next.ID()))

	require.NoError(t, s.AddRawJWK(json.RawMessage(`{"kty":"oct","k":"c2VjcmV0","kid":"hmac-1"}`)))
	assert.Error(t, s.AddRawJWK(json.RawMessage(`{`)))
	doc, err := s.JWKS()
	require.NoError(t, err)
	assert.Contains(t, string(doc), `"kid":"hmac-1"`)

	enc := next.WithUse("enc").WithID("enc-1")
	require.NoError(t, s.AddKey(enc))
	doc, err = s.JWKS()
	require.NoError(t, err)
	assert.Contains(t, string(doc), `"use":"enc"`)
	assert.Equal(t, "sig", next.Use(), "WithUse must not modify the original")
}

func TestJWKSFaults(t *testing.T) {
	s, err := New(Config{TB: t, Algorithms: []string{"ES256"}})
	require.NoError(t, err)
	client := s.Client()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	tests := []struct {
		name  string
		fault Fault
		check func(t *testing.T, resp *http.Response, body []byte, err error)
	}{
		{"None", FaultNone, func(t *testing.T, resp *http.Response, body []byte, err error) {
			require.NoError(t, err)
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			assert.Contains(t, string(body), `"kid":"es256-1"`)
		}},
		{"Down", FaultDown, func(t *testing.T, _ *http.Response, _ []byte, err error) {
			assert.Error(t, err)
		}},
		{"Status500", FaultStatus500, func(t *testing.T, resp *http.Response, _ []byte, err error) {
			require.NoError(t, err)
			assert.Equal(t, http.StatusInternalServerError, resp.StatusCode)
		}},
		{"Garbage", FaultGarbage, func(t *testing.T, resp *http.Response, body []byte, err error) {
			require.NoError(t, err)
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			assert.False(t, json.Valid(body))
		}},
		{"Empty", FaultEmpty, func(t *testing.T, _ *http.Response, body []byte, err error) {
			require.NoError(t, err)
			assert.JSONEq(t, `{"keys":[]}`, string(body))
		}},
		{"Oversized", FaultOversized, func(t *testing.T, _ *http.Response, body []byte, err error) {
			require.NoError(t, err)
			assert.Greater(t, len(body), 2<<20)
			assert.True(t, json.Valid(body))
			assert.Contains(t, string(body), `"kid":"es256-1"`)
		}},
		{"Redirect", FaultRedirect, func(t *testing.T, resp *http.Response, _ []byte, err error) {
			require.NoError(t, err)
			assert.Equal(t, http.StatusFound, resp.StatusCode)
			loc := resp.Header.Get("Location")
			assert.NotContains(t, loc, s.URL())
			r2, err := http.Get(loc)
			require.NoError(t, err)
			b, _ := io.ReadAll(r2.Body)
			_ = r2.Body.Close()
			assert.Contains(t, string(b), `"kid":"redirected-1"`)
			assert.Equal(t, 1, s.RedirectFetches())
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s.SetJWKSFault(tt.fault)
			before := s.JWKSFetches()
			resp, err := client.Get(s.JWKSURL())
			var body []byte
			if err == nil {
				body, _ = io.ReadAll(resp.Body)
				_ = resp.Body.Close()
			}
			tt.check(t, resp, body, err)
			if tt.fault == FaultDown {
				// net/http retries an idempotent request once when a
				// reused connection is closed without a response.
				assert.GreaterOrEqual(t, s.JWKSFetches(), before+1)
				return
			}
			assert.Equal(t, before+1, s.JWKSFetches())
		})
	}
}

func TestJWKSDelayAbortsOnClose(t *testing.T) {
	s, err := New(Config{Algorithms: []string{"ES256"}})
	require.NoError(t, err)
	s.SetJWKSDelay(time.Hour)
	done := make(chan error, 1)
	go func() {
		resp, err := s.Client().Get(s.JWKSURL())
		if err == nil {
			_ = resp.Body.Close()
		}
		done <- err
	}()
	require.Eventually(t, func() bool { return s.JWKSFetches() == 1 }, 5*time.Second, time.Millisecond)
	s.Close() // must not wait an hour
	<-done
	s.Close() // idempotent
}

func TestJWKSDelayHonoursClientTimeout(t *testing.T) {
	s, err := New(Config{TB: t, Algorithms: []string{"ES256"}})
	require.NoError(t, err)
	s.SetJWKSDelay(time.Hour)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.JWKSURL(), nil)
	require.NoError(t, err)
	_, err = s.Client().Do(req)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	s.SetJWKSDelay(0)
	resp, _ := get(t, s, s.JWKSURL())
	assert.Equal(t, http.StatusOK, resp.StatusCode)
}

func TestTokenAndIntrospectionEndpointsRefuse(t *testing.T) {
	s, err := New(Config{TB: t, Algorithms: []string{"ES256"}})
	require.NoError(t, err)
	tests := []struct {
		name, url, method string
		status            int
		code              string
	}{
		{"token POST without client authentication", s.TokenURL(), http.MethodPost, http.StatusUnauthorized, "invalid_client"},
		{"token GET", s.TokenURL(), http.MethodGet, http.StatusMethodNotAllowed, "invalid_request"},
		{"introspect POST without client authentication", s.IntrospectionURL(), http.MethodPost, http.StatusUnauthorized, "invalid_client"},
		{"introspect GET", s.IntrospectionURL(), http.MethodGet, http.StatusMethodNotAllowed, "invalid_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, tt.url, strings.NewReader("grant_type=client_credentials"))
			require.NoError(t, err)
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			resp, err := s.Client().Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			assert.Equal(t, tt.status, resp.StatusCode)
			var body map[string]string
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
			assert.Equal(t, tt.code, body["error"])
			assert.NotEmpty(t, body["error_description"])
		})
	}
}

func TestConfigErrors(t *testing.T) {
	for name, cfg := range map[string]Config{
		"non-loopback addr":  {Addr: "0.0.0.0:0"},
		"bad addr":           {Addr: "nonsense"},
		"bad issuer path":    {IssuerPath: "realms/acme"},
		"trailing slash":     {IssuerPath: "/realms/"},
		"unknown algorithm":  {Algorithms: []string{"HS256"}},
		"negative lifetime":  {TokenLifetime: -time.Second},
		"public hostname":    {Addr: "example.com:80"},
		"query in issuer":    {IssuerPath: "/a?b"},
		"pattern in issuer":  {IssuerPath: "/{tenant}"},
		"empty segment":      {IssuerPath: "/a//b"},
		"dot segment":        {IssuerPath: "/a/../b"},
		"unsupported as alg": {Algorithms: []string{"none"}},
	} {
		t.Run(name, func(t *testing.T) {
			s, err := New(cfg)
			if s != nil {
				s.Close()
			}
			assert.Error(t, err)
		})
	}
}

func TestNewKeyErrors(t *testing.T) {
	_, err := NewKey("", "RS256", nil)
	assert.Error(t, err)
	k, err := GenerateKey("ES256", "k")
	require.NoError(t, err)
	_, err = NewKey("", "ES256", k.Private())
	assert.Error(t, err)
	raw, err := k.WithAlg("").JWK()
	require.NoError(t, err)
	assert.NotContains(t, string(raw), `"alg"`)
	tok, err := Sign([]byte(`{}`), []byte(`{}`), "XX999", nil)
	assert.Error(t, err)
	assert.Empty(t, tok)
}
