package auth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/mcpguard/mcpguard/auth/authtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// assertNoTokenLeak fails when err's text holds tok or any 16-character
// piece of it.
func assertNoTokenLeak(t *testing.T, tok string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	for _, text := range []string{err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err)} {
		const window = 16
		for i := 0; i+window <= len(tok); i++ {
			if strings.Contains(text, tok[i:i+window]) {
				t.Fatalf("error text contains a piece of the token at offset %d: %q", i, text)
			}
		}
	}
}

// rawToken signs exactly these JSON texts with key (alg from the key).
func rawToken(t *testing.T, key *authtest.Key, header, payload string) string {
	t.Helper()
	tok, err := authtest.Sign([]byte(header), []byte(payload), key.Alg(), key.Private())
	require.NoError(t, err)
	return tok
}

func mustKeyFor(t *testing.T, idp *authtest.Server, alg string) *authtest.Key {
	t.Helper()
	k, ok := idp.KeyFor(alg)
	require.True(t, ok, alg)
	return k
}

func TestJWTValidatorAccepts(t *testing.T) {
	clock := newFakeClock()
	idp := newIDP(t, clock)
	now := clock.Now().Unix()

	tests := []struct {
		name  string
		edit  func(*JWTConfig)
		token func(t *testing.T) authtest.Token
		check func(t *testing.T, p *Principal)
	}{
		{name: "RS256", token: func(t *testing.T) authtest.Token { return authtest.Token{Key: mustKeyFor(t, idp, "RS256")} }},
		{name: "PS256", token: func(t *testing.T) authtest.Token { return authtest.Token{Key: mustKeyFor(t, idp, "PS256")} }},
		{name: "ES256", token: func(t *testing.T) authtest.Token { return authtest.Token{Key: mustKeyFor(t, idp, "ES256")} }},
		{name: "EdDSA", token: func(t *testing.T) authtest.Token { return authtest.Token{Key: mustKeyFor(t, idp, "EdDSA")} }},
		{name: "typ absent", token: func(*testing.T) authtest.Token { return authtest.Token{Header: map[string]any{"typ": nil}} }},
		{name: "typ JWT", token: func(*testing.T) authtest.Token { return authtest.Token{Header: map[string]any{"typ": "JWT"}} }},
		{name: "typ application/at+jwt", token: func(*testing.T) authtest.Token {
			return authtest.Token{Header: map[string]any{"typ": "application/AT+JWT"}}
		}},
		{name: "RFC 9068 profile", edit: func(c *JWTConfig) { c.RequireATJWT = true }, token: func(*testing.T) authtest.Token { return authtest.Token{} }},
		{name: "expired within leeway", token: func(*testing.T) authtest.Token {
			return authtest.Token{Claims: map[string]any{"exp": now - 30}}
		}},
		{name: "expired within a custom leeway", edit: func(c *JWTConfig) { c.Leeway = 5 * time.Minute }, token: func(*testing.T) authtest.Token {
			return authtest.Token{Claims: map[string]any{"exp": now - 240}}
		}},
		{name: "nbf within leeway", token: func(*testing.T) authtest.Token {
			return authtest.Token{Claims: map[string]any{"nbf": now + 30}}
		}},
		{name: "iat within leeway", token: func(*testing.T) authtest.Token {
			return authtest.Token{Claims: map[string]any{"iat": now + 30}}
		}},
		{name: "fractional exp", token: func(*testing.T) authtest.Token {
			return authtest.Token{Claims: map[string]any{"exp": float64(now) + 100.5}}
		}, check: func(t *testing.T, p *Principal) {
			assert.Equal(t, time.Unix(now+100, 5e8), p.Expiry)
		}},
		{name: "aud array holding ours", token: func(*testing.T) authtest.Token {
			return authtest.Token{Claims: map[string]any{"aud": []string{"https://other.example", idp.Audience()}}}
		}, check: func(t *testing.T, p *Principal) {
			assert.Equal(t, []string{"https://other.example", idp.Audience()}, p.Audience)
		}},
		{name: "aud alias", edit: func(c *JWTConfig) { c.AudienceAliases = []string{"api://4f1e5c1a"} }, token: func(*testing.T) authtest.Token {
			return authtest.Token{Claims: map[string]any{"aud": "api://4f1e5c1a"}}
		}},
		{name: "second issuer from the list", edit: func(c *JWTConfig) { c.Issuers = []string{"https://idp2.example"} }, token: func(*testing.T) authtest.Token {
			return authtest.Token{Claims: map[string]any{"iss": "https://idp2.example"}}
		}},
		{name: "issuer template", edit: func(c *JWTConfig) {
			c.Issuer = ""
			c.IssuerTemplates = []string{"https://login.example.com/{tid}/v2.0"}
		}, token: func(*testing.T) authtest.Token {
			return authtest.Token{Claims: map[string]any{"iss": "https://login.example.com/t-123/v2.0", "tid": "t-123"}}
		}},
		{name: "issuer function", edit: func(c *JWTConfig) {
			c.Issuer = ""
			c.IssuerFunc = func(iss string, cl Claims) bool { v, _ := cl.String("org"); return iss == "https://org.example/"+v }
		}, token: func(*testing.T) authtest.Token {
			return authtest.Token{Claims: map[string]any{"iss": "https://org.example/acme", "org": "acme"}}
		}},
		{name: "upper-case AUD is just another claim", token: func(*testing.T) authtest.Token {
			return authtest.Token{Claims: map[string]any{"AUD": "https://other.example"}}
		}, check: func(t *testing.T, p *Principal) {
			assert.Equal(t, []string{idp.Audience()}, p.Audience)
		}},
		{name: "key-pointing headers are ignored", token: func(*testing.T) authtest.Token {
			return authtest.Token{Header: map[string]any{"jku": "http://198.51.100.1/jwks", "x5u": "http://198.51.100.1/c"}}
		}},
		{name: "client from azp", edit: func(c *JWTConfig) { c.ClientIDs = []string{"app-1"} }, token: func(*testing.T) authtest.Token {
			return authtest.Token{Claims: map[string]any{"client_id": nil, "azp": "app-1"}}
		}, check: func(t *testing.T, p *Principal) { assert.Equal(t, "app-1", p.ClientID) }},
		{name: "client from appid", token: func(*testing.T) authtest.Token {
			return authtest.Token{Claims: map[string]any{"client_id": nil, "appid": "app-2"}}
		}, check: func(t *testing.T, p *Principal) { assert.Equal(t, "app-2", p.ClientID) }},
		{name: "client from cid", token: func(*testing.T) authtest.Token {
			return authtest.Token{Claims: map[string]any{"client_id": nil, "cid": "app-3"}}
		}, check: func(t *testing.T, p *Principal) { assert.Equal(t, "app-3", p.ClientID) }},
		{name: "agreeing client claims", token: func(*testing.T) authtest.Token {
			return authtest.Token{Claims: map[string]any{"azp": "mcp-client"}}
		}},
		{name: "no client at all", token: func(*testing.T) authtest.Token {
			return authtest.Token{Claims: map[string]any{"client_id": nil}}
		}, check: func(t *testing.T, p *Principal) { assert.Empty(t, p.ClientID) }},
		{name: "any audience when skipped", edit: func(c *JWTConfig) { c.InsecureSkipAudience = true }, token: func(*testing.T) authtest.Token {
			return authtest.Token{Claims: map[string]any{"aud": "https://anything.example"}}
		}},
		{name: "custom scope mapper", edit: func(c *JWTConfig) {
			c.ScopeMapper = ScopeMapperFunc(func(cl Claims) ([]string, error) { r, _ := cl.Strings("roles"); return r, nil })
		}, token: func(*testing.T) authtest.Token {
			return authtest.Token{Claims: map[string]any{"roles": []string{"Notes.ReadWrite.All"}, "scope": "ignored"}}
		}, check: func(t *testing.T, p *Principal) { assert.Equal(t, []string{"Notes.ReadWrite.All"}, p.Scopes) }},
		{name: "scope and scp merged", token: func(*testing.T) authtest.Token {
			return authtest.Token{Claims: map[string]any{"scope": "a b", "scp": []string{"b", "c"}}}
		}, check: func(t *testing.T, p *Principal) { assert.Equal(t, []string{"a", "b", "c"}, p.Scopes) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newValidator(t, idp, clock, tt.edit)
			tok, err := idp.MintToken(tt.token(t))
			require.NoError(t, err)
			p, err := v.Validate(t.Context(), tok)
			require.NoError(t, err)
			require.NotNil(t, p)
			assert.Equal(t, "alice", p.Subject)
			assert.Equal(t, KindUser, p.Kind)
			if tt.check != nil {
				tt.check(t, p)
			}
		})
	}
}

func TestJWTValidatorPrincipal(t *testing.T) {
	clock := newFakeClock()
	idp := newIDP(t, clock, "ES256")
	v := newValidator(t, idp, clock, nil)
	tok := idp.MustMint(map[string]any{
		"jti": "tok-1", "scope": "notes:read", "realm_access": map[string]any{"roles": []string{"r1"}},
	})
	p, err := v.Validate(t.Context(), tok)
	require.NoError(t, err)
	assert.Equal(t, &Principal{
		Kind:     KindUser,
		Subject:  "alice",
		Issuer:   idp.Issuer(),
		ClientID: "mcp-client",
		Audience: []string{idp.Audience()},
		Scopes:   []string{"notes:read"},
		Expiry:   clock.Now().Add(time.Hour),
		IssuedAt: clock.Now(),
		TokenID:  "tok-1",
		Claims:   p.Claims,
	}, p)
	roles, ok := p.Claims.Strings("realm_access.roles")
	assert.True(t, ok)
	assert.Equal(t, []string{"r1"}, roles)

	// Each call returns its own Principal value.
	p2, err := v.Validate(t.Context(), tok)
	require.NoError(t, err)
	assert.NotSame(t, p, p2)
	p2.Subject = "mallory"
	p3, err := v.Validate(t.Context(), tok)
	require.NoError(t, err)
	assert.Equal(t, "alice", p3.Subject)
}

func TestJWTValidatorRejects(t *testing.T) {
	clock := newFakeClock()
	idp := newIDP(t, clock)
	now := clock.Now().Unix()
	rs := mustKeyFor(t, idp, "RS256")
	es := mustKeyFor(t, idp, "ES256")
	ed := mustKeyFor(t, idp, "EdDSA")
	rs384, err := idp.NewKey("RS384")
	require.NoError(t, err)
	p384, err := authtest.GenerateKey("ES384", "p384-noalg")
	require.NoError(t, err)
	require.NoError(t, idp.AddKey(p384.WithAlg("")))
	forger, err := authtest.GenerateKey("RS256", rs.ID())
	require.NoError(t, err)
	stranger, err := authtest.GenerateKey("ES256", "stranger-1")
	require.NoError(t, err)

	claims := func(extra string) string {
		return fmt.Sprintf(`{"iss":%q,"sub":"alice","aud":%q,"exp":%d,"iat":%d%s}`, idp.Issuer(), idp.Audience(), now+3600, now, extra)
	}
	esHeader := `{"alg":"ES256","kid":"` + es.ID() + `"}`
	mint := func(t *testing.T, tok authtest.Token) string {
		t.Helper()
		s, err := idp.MintToken(tok)
		require.NoError(t, err)
		return s
	}
	withClaims := func(c map[string]any) func(t *testing.T) string {
		return func(t *testing.T) string { return mint(t, authtest.Token{Claims: c}) }
	}
	withHeader := func(h map[string]any) func(t *testing.T) string {
		return func(t *testing.T) string { return mint(t, authtest.Token{Header: h}) }
	}
	const wrongAud = "https://other.example/api"

	tests := []struct {
		name    string
		edit    func(*JWTConfig)
		token   func(t *testing.T) string
		desc    string
		expired bool
	}{
		// Size and form, before any parsing.
		{name: "oversized", desc: descTooLarge, token: func(t *testing.T) string {
			s, err := idp.MintOversized(nil, DefaultMaxTokenBytes+1)
			require.NoError(t, err)
			return s
		}},
		{name: "oversized for a custom limit", edit: func(c *JWTConfig) { c.MaxTokenBytes = 100 }, desc: descTooLarge, token: withClaims(nil)},
		{name: "empty", desc: descMalformed, token: func(*testing.T) string { return "" }},
		{name: "two segments", desc: descMalformed, token: func(*testing.T) string { return "eyJhbGciOiJFUzI1NiJ9.e30" }},
		{name: "four segments", desc: descMalformed, token: func(t *testing.T) string { return withClaims(nil)(t) + ".AAAA" }},
		{name: "empty signature (alg none)", desc: descMalformed, token: func(t *testing.T) string {
			s, err := idp.MintUnsigned(nil)
			require.NoError(t, err)
			return s
		}},
		{name: "header not base64url", desc: descMalformed, token: func(*testing.T) string { return "e+J9.e30.AAAA" }},
		{name: "padded segment", desc: descMalformed, token: func(t *testing.T) string {
			s := withClaims(nil)(t)
			return s[:strings.IndexByte(s, '.')] + "=" + s[strings.IndexByte(s, '.'):]
		}},
		{name: "non-canonical base64 signature", desc: descMalformed, token: func(t *testing.T) string {
			s := mint(t, authtest.Token{Key: es}) // 64-byte signature: the last character carries 2 unused bits
			last := s[len(s)-1]
			alphabet := "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
			i := strings.IndexByte(alphabet, last)
			return s[:len(s)-1] + string(alphabet[i^1])
		}},
		{name: "header is an array", desc: descMalformed, token: func(t *testing.T) string { return rawToken(t, es, `[]`, claims("")) }},
		{name: "header without alg", desc: descMalformed, token: func(t *testing.T) string { return rawToken(t, es, `{"kid":"es256-1"}`, claims("")) }},
		{name: "header with numeric kid", desc: descMalformed, token: withHeader(map[string]any{"kid": 7})},
		{name: "header with empty kid", desc: descMalformed, token: withHeader(map[string]any{"kid": ""})},
		{name: "header with numeric typ", desc: descMalformed, token: withHeader(map[string]any{"typ": 1})},
		{name: "duplicate header member", desc: descMalformed, token: func(t *testing.T) string {
			return rawToken(t, es, `{"alg":"ES256","kid":"es256-1","kid":"es256-1"}`, claims(""))
		}},

		// Algorithms.
		{name: "alg none with a signature", desc: descAlgorithm, token: func(t *testing.T) string {
			return rawToken(t, es, `{"alg":"none","kid":"es256-1"}`, claims(""))
		}},
		{name: "HS256 keyed with the public key (alg confusion)", desc: descAlgorithm, token: func(t *testing.T) string {
			s, err := idp.MintHMAC(nil, rs.PublicKeyPEM())
			require.NoError(t, err)
			return s
		}},
		{name: "alg outside the allow-list", desc: descAlgorithm, token: func(t *testing.T) string { return mint(t, authtest.Token{Key: rs384}) }},
		{name: "alg outside a narrowed allow-list", edit: func(c *JWTConfig) { c.Algorithms = []string{"ES256"} }, desc: descAlgorithm, token: withClaims(nil)},
		{name: "lower-case alg", desc: descAlgorithm, token: func(t *testing.T) string { return rawToken(t, es, `{"alg":"es256","kid":"es256-1"}`, claims("")) }},

		// Keys: chosen by kid only, and required to fit the alg.
		{name: "unknown kid", desc: descUnknownKey, token: func(t *testing.T) string { return mint(t, authtest.Token{Key: stranger}) }},
		{name: "no kid while several keys are published", desc: descKeyIDRequired, token: withHeader(map[string]any{"kid": nil})},
		{name: "PS256 header on an RS256 JWK (same RSA key)", desc: descKeyMismatch, token: func(t *testing.T) string {
			return mint(t, authtest.Token{Key: rs, Alg: "PS256"})
		}},
		{name: "ES256 header on an Ed25519 key", desc: descKeyMismatch, token: func(t *testing.T) string {
			return mint(t, authtest.Token{Key: ed, Header: map[string]any{"alg": "ES256"}})
		}},
		{name: "ES256 header on a P-384 key without JWK alg", desc: descKeyMismatch, token: func(t *testing.T) string {
			return rawToken(t, p384, `{"alg":"ES256","kid":"p384-noalg"}`, claims(""))
		}},
		{name: "RS384 key not usable (alg outside allow-list)", edit: func(c *JWTConfig) { c.Algorithms = []string{"RS256", "RS384"} }, desc: descKeyMismatch,
			token: func(t *testing.T) string { return mint(t, authtest.Token{Key: rs384, Alg: "RS256"}) }},
		{name: "forged with another key under a published kid", desc: descSignature, token: func(t *testing.T) string {
			return mint(t, authtest.Token{Key: forger})
		}},
		{name: "bad signature", desc: descSignature, token: func(t *testing.T) string {
			s, err := idp.MintBadSignature(nil)
			require.NoError(t, err)
			return s
		}},
		{name: "payload swapped after signing", desc: descSignature, token: func(t *testing.T) string {
			a := strings.Split(withClaims(nil)(t), ".")
			b := strings.Split(withClaims(map[string]any{"sub": "admin"})(t), ".")
			return a[0] + "." + b[1] + "." + a[2]
		}},

		// Header rules.
		{name: "crit header", desc: descCritical, token: withHeader(map[string]any{"crit": []string{"exp"}, "exp": now + 10})},
		{name: "empty crit header", desc: descCritical, token: withHeader(map[string]any{"crit": []string{}})},
		{name: "cty header (nested JWT)", desc: descType, token: withHeader(map[string]any{"cty": "JWT"})},
		{name: "zip header", desc: descType, token: withHeader(map[string]any{"zip": "DEF"})},
		{name: "foreign typ", desc: descType, token: withHeader(map[string]any{"typ": "dpop+jwt"})},
		{name: "typ JWT in RFC 9068 mode", edit: func(c *JWTConfig) { c.RequireATJWT = true }, desc: descType, token: withHeader(map[string]any{"typ": "JWT"})},
		{name: "no typ in RFC 9068 mode", edit: func(c *JWTConfig) { c.RequireATJWT = true }, desc: descType, token: withHeader(map[string]any{"typ": nil})},
		{name: "no jti in RFC 9068 mode", edit: func(c *JWTConfig) { c.RequireATJWT = true }, desc: descMissingClaim, token: withClaims(map[string]any{"jti": nil})},
		{name: "no client_id in RFC 9068 mode", edit: func(c *JWTConfig) { c.RequireATJWT = true }, desc: descMissingClaim,
			token: withClaims(map[string]any{"client_id": nil, "azp": "mcp-client"})},
		{name: "no iat in RFC 9068 mode", edit: func(c *JWTConfig) { c.RequireATJWT = true }, desc: descMissingClaim, token: withClaims(map[string]any{"iat": nil})},

		// Payload form.
		{name: "payload is an array", desc: descMalformed, token: func(t *testing.T) string { return rawToken(t, es, esHeader, `[1]`) }},
		{name: "payload is null", desc: descMalformed, token: func(t *testing.T) string { return rawToken(t, es, esHeader, `null`) }},
		{name: "payload is not JSON", desc: descMalformed, token: func(t *testing.T) string { return rawToken(t, es, esHeader, `{"iss":`) }},
		{name: "payload not base64url", desc: descMalformed, token: func(t *testing.T) string {
			in := base64.RawURLEncoding.EncodeToString([]byte(esHeader)) + ".e30*"
			sig, err := jwt.SigningMethodES256.Sign(in, es.Private())
			require.NoError(t, err)
			return in + "." + base64.RawURLEncoding.EncodeToString(sig)
		}},
		{name: "duplicate aud member", desc: descMalformed, token: func(t *testing.T) string {
			return rawToken(t, es, esHeader, claims(`,"aud":"`+wrongAud+`"`))
		}},
		{name: "duplicate nested member", desc: descMalformed, token: func(t *testing.T) string {
			return rawToken(t, es, esHeader, claims(`,"realm_access":{"roles":["a"],"roles":["admin"]}`))
		}},
		{name: "duplicate member in an array of objects", desc: descMalformed, token: func(t *testing.T) string {
			return rawToken(t, es, esHeader, claims(`,"x":[{"a":1,"a":2}]`))
		}},
		{name: "duplicate member spelled with an escape", desc: descMalformed, token: func(t *testing.T) string {
			return rawToken(t, es, esHeader, claims(`,"\u0073ub":"admin"`))
		}},

		// Times.
		{name: "expired", desc: descExpired, expired: true, token: withClaims(map[string]any{"exp": now - 120})},
		{name: "exp 0 is an expiry, not an absence", desc: descExpired, expired: true, token: withClaims(map[string]any{"exp": 0})},
		{name: "no exp", desc: descMissingExp, token: withClaims(map[string]any{"exp": nil})},
		{name: "only an upper-case EXP", desc: descMissingExp, token: withClaims(map[string]any{"exp": nil, "EXP": now + 60})},
		{name: "exp as a string", desc: descMalformed, token: withClaims(map[string]any{"exp": fmt.Sprint(now + 60)})},
		{name: "negative exp", desc: descMalformed, token: withClaims(map[string]any{"exp": -1})},
		{name: "huge exp", desc: descMalformed, token: withClaims(map[string]any{"exp": 1e300})},
		{name: "nbf in the future", desc: descNotYetValid, token: withClaims(map[string]any{"nbf": now + 120})},
		{name: "nbf as a string", desc: descMalformed, token: withClaims(map[string]any{"nbf": "soon"})},
		{name: "iat in the future", desc: descIssuedInFuture, token: withClaims(map[string]any{"iat": now + 120})},
		{name: "iat null", desc: descMalformed, token: withClaims(map[string]any{"iat": json.RawMessage("null")})},

		// Issuer.
		{name: "wrong issuer", desc: descIssuer, token: withClaims(map[string]any{"iss": "https://evil.example"})},
		{name: "issuer with a trailing slash", desc: descIssuer, token: withClaims(map[string]any{"iss": idp.Issuer() + "/"})},
		{name: "no issuer", desc: descIssuer, token: withClaims(map[string]any{"iss": nil})},
		{name: "numeric issuer", desc: descMalformed, token: withClaims(map[string]any{"iss": 5})},
		{name: "issuer template with another tenant's tid", edit: func(c *JWTConfig) {
			c.IssuerTemplates = []string{"https://login.example.com/{tid}/v2.0"}
		}, desc: descIssuer, token: withClaims(map[string]any{"iss": "https://login.example.com/t-1/v2.0", "tid": "t-2"})},
		{name: "issuer template without tid", edit: func(c *JWTConfig) {
			c.IssuerTemplates = []string{"https://login.example.com/{tid}/v2.0"}
		}, desc: descIssuer, token: withClaims(map[string]any{"iss": "https://login.example.com/t-1/v2.0"})},
		{name: "issuer template with a path-injecting tid", edit: func(c *JWTConfig) {
			c.IssuerTemplates = []string{"https://login.example.com/{tid}/v2.0"}
		}, desc: descIssuer, token: withClaims(map[string]any{"iss": "https://login.example.com/a/b/v2.0", "tid": "a/b"})},
		{name: "issuer function says no", edit: func(c *JWTConfig) { c.IssuerFunc = func(string, Claims) bool { return false } },
			desc: descIssuer, token: withClaims(map[string]any{"iss": "https://x.example"})},

		// Audience.
		{name: "wrong audience", desc: descAudience, token: withClaims(map[string]any{"aud": wrongAud})},
		{name: "no audience", desc: descAudience, token: withClaims(map[string]any{"aud": nil})},
		{name: "audience array without ours", desc: descAudience, token: withClaims(map[string]any{"aud": []string{wrongAud, "x"}})},
		{name: "empty audience array", desc: descAudience, token: withClaims(map[string]any{"aud": []string{}})},
		{name: "audience with a non-string", desc: descMalformed, token: withClaims(map[string]any{"aud": []any{idp.Audience(), 1}})},
		{name: "audience null", desc: descMalformed, token: withClaims(map[string]any{"aud": json.RawMessage("null")})},
		{name: "audience object", desc: descMalformed, token: withClaims(map[string]any{"aud": map[string]any{"a": idp.Audience()}})},
		{name: "upper-case AUD does not override aud", desc: descAudience, token: withClaims(map[string]any{"aud": wrongAud, "AUD": idp.Audience()})},
		{name: "audience prefix only", desc: descAudience, token: withClaims(map[string]any{"aud": idp.Audience() + "/extra"})},

		// Subject and client.
		{name: "no sub", desc: descMissingClaim, token: withClaims(map[string]any{"sub": nil})},
		{name: "empty sub", desc: descMissingClaim, token: withClaims(map[string]any{"sub": ""})},
		{name: "numeric sub", desc: descMalformed, token: withClaims(map[string]any{"sub": 42})},
		{name: "numeric jti", desc: descMalformed, token: withClaims(map[string]any{"jti": 42})},
		{name: "client claims disagree", desc: descClient, token: withClaims(map[string]any{"azp": "someone-else"})},
		{name: "client not in ClientIDs", edit: func(c *JWTConfig) { c.ClientIDs = []string{"other-client"} }, desc: descClient, token: withClaims(nil)},
		{name: "no client with ClientIDs", edit: func(c *JWTConfig) { c.ClientIDs = []string{"mcp-client"} }, desc: descClient, token: withClaims(map[string]any{"client_id": nil})},

		// Scopes.
		{name: "scp is a number", desc: descScope, token: withClaims(map[string]any{"scp": 5})},
		{name: "scope mapper fails", edit: func(c *JWTConfig) {
			c.ScopeMapper = ScopeMapperFunc(func(Claims) ([]string, error) { return nil, errors.New("no such preset") })
		}, desc: descScope, token: withClaims(nil)},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		require.False(t, seen[tt.name], "duplicate case name %q", tt.name)
		seen[tt.name] = true
		t.Run(tt.name, func(t *testing.T) {
			v := newValidator(t, idp, clock, tt.edit)
			tok := tt.token(t)
			p, err := v.Validate(t.Context(), tok)
			require.Error(t, err)
			assert.Nil(t, p)
			var e *Error
			require.ErrorAs(t, err, &e)
			assert.Equal(t, tt.desc, e.Description)
			assert.Equal(t, CodeInvalidToken, e.Code)
			assert.Equal(t, 401, e.Status)
			assert.ErrorIs(t, err, ErrInvalidToken)
			assert.Equal(t, tt.expired, errors.Is(err, ErrExpired))
			assertNoTokenLeak(t, tok, err)
		})
	}
}

func TestJWTValidatorIssuerTemplateEntra(t *testing.T) {
	clock := newFakeClock()
	idp := newIDP(t, clock, "RS256")
	v := newValidator(t, idp, clock, func(c *JWTConfig) {
		c.Issuer = ""
		c.IssuerTemplates = []string{"https://login.microsoftonline.com/{tid}/v2.0", "https://sts.windows.net/{tid}/"}
	})
	const tid = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	for _, tt := range []struct {
		name, iss, tid string
		ok             bool
	}{
		{"v2", "https://login.microsoftonline.com/" + tid + "/v2.0", tid, true},
		{"v1", "https://sts.windows.net/" + tid + "/", tid, true},
		{"v2 other tenant", "https://login.microsoftonline.com/" + tid + "/v2.0", "00000000-0000-0000-0000-000000000000", false},
		{"v2 common", "https://login.microsoftonline.com/common/v2.0", tid, false},
		{"v1 without trailing slash", "https://sts.windows.net/" + tid, tid, false},
		{"empty tid", "https://login.microsoftonline.com//v2.0", "", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tok := idp.MustMint(map[string]any{"iss": tt.iss, "tid": tt.tid})
			_, err := v.Validate(t.Context(), tok)
			if tt.ok {
				assert.NoError(t, err)
			} else {
				assert.ErrorIs(t, err, ErrInvalidToken)
			}
		})
	}
}

func TestNewJWTValidatorConfigErrors(t *testing.T) {
	ok := JWTConfig{Issuer: "https://idp.example", Audience: "https://mcp.example/mcp"}
	tests := []struct {
		name  string
		edit  func(*JWTConfig)
		field string
	}{
		{"no issuer", func(c *JWTConfig) { c.Issuer = "" }, "Issuer"},
		{"relative issuer", func(c *JWTConfig) { c.Issuer = "idp.example" }, "Issuer"},
		{"http issuer to discover from", func(c *JWTConfig) { c.Issuer = "http://idp.example" }, "Issuer"},
		{"empty issuer in list", func(c *JWTConfig) { c.Issuers = []string{""} }, "Issuers"},
		{"template without placeholder", func(c *JWTConfig) { c.IssuerTemplates = []string{"https://login.example.com/v2.0"} }, "IssuerTemplates"},
		{"template with two placeholders", func(c *JWTConfig) { c.IssuerTemplates = []string{"https://x.example/{a}/{b}"} }, "IssuerTemplates"},
		{"template placeholder in host", func(c *JWTConfig) { c.IssuerTemplates = []string{"https://{tid}.example.com/"} }, "IssuerTemplates"},
		{"template with empty placeholder", func(c *JWTConfig) { c.IssuerTemplates = []string{"https://x.example/{}/"} }, "IssuerTemplates"},
		{"no audience", func(c *JWTConfig) { c.Audience = "" }, "Audience"},
		{"relative audience", func(c *JWTConfig) { c.Audience = "notes-api" }, "Audience"},
		{"audience with fragment", func(c *JWTConfig) { c.Audience = "https://mcp.example/mcp#x" }, "Audience"},
		{"aliases without audience", func(c *JWTConfig) { c.Audience = ""; c.InsecureSkipAudience = true; c.AudienceAliases = []string{"a"} }, "Audience"},
		{"empty alias", func(c *JWTConfig) { c.AudienceAliases = []string{""} }, "AudienceAliases"},
		{"empty client ID", func(c *JWTConfig) { c.ClientIDs = []string{""} }, "ClientIDs"},
		{"client-ID audience without clients", func(c *JWTConfig) { c.UseClientIDAsAudience = true }, "ClientIDs"},
		{"HS256", func(c *JWTConfig) { c.Algorithms = []string{"RS256", "HS256"} }, "Algorithms"},
		{"none", func(c *JWTConfig) { c.Algorithms = []string{"none"} }, "Algorithms"},
		{"unknown alg", func(c *JWTConfig) { c.Algorithms = []string{"ES256K"} }, "Algorithms"},
		{"negative leeway", func(c *JWTConfig) { c.Leeway = -time.Second }, "Leeway"},
		{"leeway too large", func(c *JWTConfig) { c.Leeway = 6 * time.Minute }, "Leeway"},
		{"negative fetch timeout", func(c *JWTConfig) { c.FetchTimeout = -1 }, "FetchTimeout"},
		{"fetch timeout too long", func(c *JWTConfig) { c.FetchTimeout = time.Hour }, "FetchTimeout"},
		{"refresh interval too short", func(c *JWTConfig) { c.RefreshInterval = time.Millisecond }, "RefreshInterval"},
		{"cooldown too short", func(c *JWTConfig) { c.RefetchCooldown = time.Millisecond }, "RefetchCooldown"},
		{"cooldown too long", func(c *JWTConfig) { c.RefetchCooldown = time.Hour }, "RefetchCooldown"},
		{"negative max size", func(c *JWTConfig) { c.MaxTokenBytes = -1 }, "MaxTokenBytes"},
		{"huge max size", func(c *JWTConfig) { c.MaxTokenBytes = 2 << 20 }, "MaxTokenBytes"},
		{"negative cache", func(c *JWTConfig) { c.CacheSize = -1 }, "CacheSize"},
		{"http JWKS URL", func(c *JWTConfig) { c.JWKSURL = "http://idp.example/jwks" }, "JWKSURL"},
		{"JWKS URL with user info", func(c *JWTConfig) { c.JWKSURL = "https://u:p@idp.example/jwks" }, "JWKSURL"},
		{"both JWKS and URL", func(c *JWTConfig) { c.JWKS = json.RawMessage(`{"keys":[]}`); c.JWKSURL = "https://idp.example/jwks" }, "JWKS"},
		{"unusable fixed JWKS", func(c *JWTConfig) { c.JWKS = json.RawMessage(`{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`) }, "JWKS"},
		{"no key source for a list", func(c *JWTConfig) { c.Issuer = ""; c.Issuers = []string{"https://a.example"} }, "JWKSURL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ok
			tt.edit(&cfg)
			v, err := NewJWTValidator(cfg)
			require.Error(t, err)
			assert.Nil(t, v)
			assert.ErrorIs(t, err, ErrConfig)
			assert.Contains(t, err.Error(), "JWTConfig."+tt.field+":")
		})
	}

	t.Run("valid", func(t *testing.T) {
		v, err := NewJWTValidator(ok)
		require.NoError(t, err)
		require.NoError(t, v.Close())
		require.NoError(t, v.Close())
	})
	t.Run("http allowed explicitly", func(t *testing.T) {
		cfg := ok
		cfg.JWKSURL = "http://keycloak:8080/realms/acme/protocol/openid-connect/certs"
		cfg.InsecureAllowHTTP = true
		v, err := NewJWTValidator(cfg)
		require.NoError(t, err)
		require.NoError(t, v.Close())
	})
}

func TestJWTValidatorZeroValueFailsClosed(t *testing.T) {
	var zero JWTValidator
	p, err := zero.Validate(t.Context(), "a.b.c")
	assert.Nil(t, p)
	assert.ErrorIs(t, err, ErrConfig)
	assert.ErrorIs(t, err, ErrUnavailable)
	assert.ErrorIs(t, zero.Refresh(t.Context()), ErrConfig)
	assert.NoError(t, zero.Close())
	var nilV *JWTValidator
	_, err = nilV.Validate(t.Context(), "a.b.c")
	assert.Error(t, err)
}

func TestJWTValidatorFixedJWKS(t *testing.T) {
	clock := newFakeClock()
	idp := newIDP(t, clock, "EdDSA")
	doc, err := idp.JWKS()
	require.NoError(t, err)
	idp.SetJWKSFault(authtest.FaultDown)
	v, err := NewJWTValidator(JWTConfig{Issuer: idp.Issuer(), Audience: idp.Audience(), JWKS: doc, Now: clock.Now})
	require.NoError(t, err)
	defer v.Close()
	require.NoError(t, v.Refresh(t.Context()))

	p, err := v.Validate(t.Context(), idp.MustMint(nil))
	require.NoError(t, err)
	assert.Equal(t, "alice", p.Subject)

	// A kid-less token is fine with a one-key set: the key is chosen, not tried.
	tok, err := idp.MintToken(authtest.Token{Header: map[string]any{"kid": nil}})
	require.NoError(t, err)
	_, err = v.Validate(t.Context(), tok)
	require.NoError(t, err)

	other, err := authtest.GenerateKey("EdDSA", "other")
	require.NoError(t, err)
	_, err = v.Validate(t.Context(), mustMintWith(t, idp, other))
	assertDesc(t, err, descUnknownKey)
	assert.Equal(t, 0, idp.JWKSFetches(), "a fixed JWKS is never fetched")
}

func mustMintWith(t *testing.T, idp *authtest.Server, k *authtest.Key) string {
	t.Helper()
	tok, err := idp.MintToken(authtest.Token{Key: k})
	require.NoError(t, err)
	return tok
}

func assertDesc(t *testing.T, err error, desc string) {
	t.Helper()
	var e *Error
	if assert.ErrorAs(t, err, &e) {
		assert.Equal(t, desc, e.Description)
	}
}

func TestJWTValidatorConcurrent(t *testing.T) {
	clock := newFakeClock()
	idp := newIDP(t, clock, "ES256", "EdDSA")
	v := newValidator(t, idp, clock, func(c *JWTConfig) { c.CacheSize = 8 })
	toks := make([]string, 32)
	for i := range toks {
		k := idp.Keys()[i%2]
		toks[i] = mustMintWith(t, idp, k)
	}
	bad, err := idp.MintBadSignature(nil)
	require.NoError(t, err)
	errs := make(chan error, 8)
	for g := range 8 {
		go func() {
			for i := range 200 {
				tok := toks[(g*7+i)%len(toks)]
				if _, err := v.Validate(context.Background(), tok); err != nil {
					errs <- err
					return
				}
				if _, err := v.Validate(context.Background(), bad); err == nil {
					errs <- errors.New("bad token accepted")
					return
				}
			}
			errs <- nil
		}()
	}
	for range 8 {
		require.NoError(t, <-errs)
	}
	assert.LessOrEqual(t, v.cache.len(), 8)
}

// A line break anywhere in a token's base64url is refused. encoding/base64
// skips CR and LF even in strict mode, so before this check a valid token
// with a line break in its signature segment verified as well as the
// token itself, while being another string: another cache key, another
// digest for revocation (FuzzParseJWS found it).
func TestJWTValidatorRefusesLineBreaks(t *testing.T) {
	clock := newFakeClock()
	idp := newIDP(t, clock, "EdDSA")
	doc, err := idp.JWKS()
	require.NoError(t, err)
	v, err := NewJWTValidator(JWTConfig{Issuer: idp.Issuer(), Audience: idp.Audience(), JWKS: doc, Now: clock.Now})
	require.NoError(t, err)
	defer v.Close()
	tok := idp.MustMint(nil)
	_, err = v.Validate(t.Context(), tok)
	require.NoError(t, err)

	d1 := strings.IndexByte(tok, '.')
	d2 := strings.LastIndexByte(tok, '.')
	for name, at := range map[string]int{"header": d1 / 2, "payload": (d1 + d2) / 2, "signature": (d2 + len(tok)) / 2, "signature end": len(tok)} {
		for _, brk := range []string{"\n", "\r", "\r\n"} {
			bad := tok[:at] + brk + tok[at:]
			_, err := v.Validate(t.Context(), bad)
			assert.ErrorIs(t, err, ErrInvalidToken, "%s %q", name, brk)
			_, perr := parseJWS(bad, 1<<16)
			if name != "payload" { // the payload is decoded after the signature check
				assert.NotNil(t, perr, "%s %q", name, brk)
			}
		}
	}
}

// A token whose payload says it is not an access token is refused, whatever
// its header typ: before, an ID token signed with typ "JWT" (most providers
// sign them so) whose aud was an AudienceAliases client ID was accepted as
// an access token (found in review). The introspection validator refuses
// the same claims; both share checkTokenUse.
func TestJWTValidatorRefusesOtherTokenUses(t *testing.T) {
	clock := newFakeClock()
	idp := newIDP(t, clock)
	const client = "notes-api" // a Keycloak client ID, a Cognito app client ID
	v := newValidator(t, idp, clock, func(c *JWTConfig) { c.AudienceAliases = []string{client} })
	for name, tc := range map[string]struct {
		claims map[string]any
		desc   string
	}{
		"keycloak ID token":        {map[string]any{"aud": client, "azp": client, "typ": "ID", "nonce": "n-1"}, descTokenUse},
		"keycloak refresh token":   {map[string]any{"aud": client, "typ": "Refresh"}, descTokenUse},
		"keycloak offline token":   {map[string]any{"aud": client, "typ": "Offline"}, descTokenUse},
		"logout token":             {map[string]any{"aud": client, "typ": "logout"}, descTokenUse},
		"cognito ID token":         {map[string]any{"aud": client, "token_use": "id"}, descTokenUse},
		"id_token token_use":       {map[string]any{"token_use": "id_token"}, descTokenUse},
		"refresh token_type":       {map[string]any{"token_type": "refresh_token"}, descTokenUse},
		"DPoP token_type, unbound": {map[string]any{"token_type": "DPoP"}, descSenderConstrained},
		"typ not a string":         {map[string]any{"typ": 7}, descMalformed},
	} {
		t.Run(name, func(t *testing.T) {
			tok, err := idp.MintToken(authtest.Token{Claims: tc.claims, Header: map[string]any{"typ": "JWT"}})
			require.NoError(t, err)
			p, err := v.Validate(t.Context(), tok)
			require.Error(t, err, "accepted as %+v", p)
			var ae *Error
			require.ErrorAs(t, err, &ae)
			assert.Equal(t, tc.desc, ae.Description)
			assert.ErrorIs(t, err, ErrInvalidToken)
		})
	}
	for name, claims := range map[string]map[string]any{
		"keycloak access token": {"aud": client, "typ": "Bearer"},
		"cognito access token":  {"aud": client, "token_use": "access"},
		"no marker":             nil,
	} {
		t.Run(name, func(t *testing.T) {
			tok, err := idp.MintToken(authtest.Token{Claims: claims, Header: map[string]any{"typ": "JWT"}})
			require.NoError(t, err)
			_, err = v.Validate(t.Context(), tok)
			assert.NoError(t, err)
		})
	}
}
