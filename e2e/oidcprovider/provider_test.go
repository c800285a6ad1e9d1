package oidcprovider_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/mcpguard/mcpguard/e2e/internal/e2etest"
	"github.com/mcpguard/mcpguard/e2e/oidcprovider"
)

const (
	resource     = "http://127.0.0.1:8931/mcp"
	opaqueRes    = "http://127.0.0.1:8932/opaque-mcp"
	otherOpaque  = "http://127.0.0.1:8933/other-opaque-mcp"
	acmeID       = "acme-app"
	acmeSecret   = "acme-secret-0123456789abcdef0123456789"
	globexID     = "globex-app"
	globexSecret = "globex-secret-0123456789abcdef01234567"
	rsID         = "mcp-resource-server"
	rsSecret     = "rs-secret-0123456789abcdef0123456789ab"
)

// syncBuffer collects the provider's stderr for failure messages.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.b.Len() > 64<<10 {
		return len(p), nil
	}
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func startProvider(t *testing.T) *oidcprovider.Provider {
	t.Helper()
	jsDir := e2etest.JSDir(t)
	e2etest.SkipUnlessInstalled(t, func() error { return oidcprovider.Installed(jsDir) }, oidcprovider.ErrNotInstalled)
	logs := &syncBuffer{}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := oidcprovider.Start(ctx, oidcprovider.Config{
		JSDir:   jsDir,
		WorkDir: t.TempDir(),
		Log:     logs,
		Clients: []oidcprovider.Client{
			{ID: acmeID, Secret: acmeSecret, Scope: "tools:read tools:write", Tenant: "acme"},
			{ID: globexID, Secret: globexSecret, Scope: "tools:read", Tenant: "globex"},
			{ID: rsID, Secret: rsSecret},
		},
		Resources: []oidcprovider.Resource{
			{Prefix: opaqueRes, Scope: "tools:read tools:write", Opaque: true},
			{Prefix: otherOpaque, Scope: "tools:read", Opaque: true},
			{Prefix: "http://127.0.0.1:", Scope: "tools:read tools:write admin", TTL: 2 * time.Minute},
		},
	})
	require.NoError(t, err, "provider stderr:\n%s", logs.String())
	t.Cleanup(func() {
		assert.NoError(t, p.Stop())
		if t.Failed() {
			t.Logf("provider stderr:\n%s", logs.String())
		}
	})
	return p
}

// discover reads the provider's OpenID discovery document.
func discover(t *testing.T, issuer string) map[string]any {
	t.Helper()
	var doc map[string]any
	getJSON(t, issuer+"/.well-known/openid-configuration", &doc)
	return doc
}

func getJSON(t *testing.T, url string, v any) []byte {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, url)
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(body, v))
	return body
}

// verifier fetches the JWKS named by discovery now and returns a key
// function over exactly that set.
func verifier(t *testing.T, issuer string) jwt.Keyfunc {
	t.Helper()
	jwksURI, ok := discover(t, issuer)["jwks_uri"].(string)
	require.True(t, ok, "discovery has no jwks_uri")
	var set json.RawMessage
	raw := getJSON(t, jwksURI, &set)
	kf, err := keyfunc.NewJWKSetJSON(raw)
	require.NoError(t, err)
	return kf.Keyfunc
}

func parse(t *testing.T, issuer, raw string) (*jwt.Token, jwt.MapClaims, error) {
	t.Helper()
	claims := jwt.MapClaims{}
	tok, err := jwt.ParseWithClaims(raw, claims, verifier(t, issuer),
		jwt.WithValidMethods([]string{"RS256"}),
		jwt.WithIssuer(issuer),
		jwt.WithAudience(resource),
		jwt.WithExpirationRequired(),
	)
	return tok, claims, err
}

func TestDiscovery(t *testing.T) {
	p := startProvider(t)
	doc := discover(t, p.Issuer())
	assert.Equal(t, p.Issuer(), doc["issuer"])
	assert.Equal(t, p.Issuer()+"/token", doc["token_endpoint"])
	assert.Equal(t, p.Issuer()+"/token/introspection", doc["introspection_endpoint"])
	assert.Contains(t, doc["grant_types_supported"], "client_credentials")
}

// TestJWTAccessToken checks the shape RFC 9068 prescribes for a token
// obtained with client_credentials and an RFC 8707 resource indicator.
func TestJWTAccessToken(t *testing.T) {
	p := startProvider(t)
	ctx := context.Background()
	tests := []struct {
		name, id, secret, tenant, scope string
	}{
		{name: "acme", id: acmeID, secret: acmeSecret, tenant: "acme", scope: "tools:read tools:write"},
		{name: "globex", id: globexID, secret: globexSecret, tenant: "globex", scope: "tools:read"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := p.ClientCredentials(ctx, tc.id, tc.secret, resource, tc.scope)
			require.NoError(t, err)
			assert.Equal(t, "Bearer", tok.TokenType)

			parsed, claims, err := parse(t, p.Issuer(), tok.AccessToken)
			require.NoError(t, err)
			assert.Equal(t, "at+jwt", parsed.Header["typ"], "RFC 9068 §2.1 typ")
			assert.Equal(t, p.KeyIDs()[0], parsed.Header["kid"])
			aud, err := claims.GetAudience()
			require.NoError(t, err)
			assert.Equal(t, jwt.ClaimStrings{resource}, aud, "aud must be the resource indicator")
			assert.Equal(t, tc.tenant, claims["tenant"])
			assert.Equal(t, tc.scope, claims["scope"])
			assert.Equal(t, tc.id, claims["client_id"])
			assert.Equal(t, tc.id, claims["sub"], "client_credentials: sub is the client")
			assert.NotEmpty(t, claims["jti"])
			exp, err := claims.GetExpirationTime()
			require.NoError(t, err)
			iat, err := claims.GetIssuedAt()
			require.NoError(t, err)
			assert.Equal(t, 2*time.Minute, exp.Sub(iat.Time), "TTL from the resource config")
		})
	}
}

func TestTokenRequestRejected(t *testing.T) {
	p := startProvider(t)
	ctx := context.Background()
	tests := []struct {
		name, id, secret, resource, scope, code string
	}{
		{name: "no resource", id: acmeID, secret: acmeSecret, scope: "tools:read", code: "invalid_target"},
		{name: "unknown resource", id: acmeID, secret: acmeSecret, resource: "https://elsewhere.example/mcp", scope: "tools:read", code: "invalid_target"},
		{name: "scope not granted to client", id: globexID, secret: globexSecret, resource: resource, scope: "tools:write", code: "invalid_scope"},
		{name: "scope unknown to resource", id: acmeID, secret: acmeSecret, resource: opaqueRes, scope: "admin", code: "invalid_scope"},
		{name: "wrong secret", id: acmeID, secret: globexSecret, resource: resource, scope: "tools:read", code: "invalid_client"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := p.ClientCredentials(ctx, tc.id, tc.secret, tc.resource, tc.scope)
			var re *oauth2.RetrieveError
			require.True(t, errors.As(err, &re), "want an OAuth error, got %v", err)
			assert.Equal(t, tc.code, re.ErrorCode)
		})
	}
}

func TestOpaqueTokenIntrospection(t *testing.T) {
	p := startProvider(t)
	ctx := context.Background()
	tok, err := p.ClientCredentials(ctx, acmeID, acmeSecret, opaqueRes, "tools:read")
	require.NoError(t, err)
	_, _, err = jwt.NewParser().ParseUnverified(tok.AccessToken, jwt.MapClaims{})
	require.Error(t, err, "an opaque token is not a JWT")

	got, err := p.Introspect(ctx, rsID, rsSecret, tok.AccessToken)
	require.NoError(t, err)
	assert.Equal(t, true, got["active"])
	assert.Equal(t, "acme", got["tenant"])
	assert.Equal(t, opaqueRes, got["aud"])
	assert.Equal(t, "tools:read", got["scope"])
	assert.Equal(t, acmeID, got["client_id"])

	got, err = p.Introspect(ctx, rsID, rsSecret, "not-a-token-the-provider-issued")
	require.NoError(t, err)
	assert.Equal(t, map[string]any{"active": false}, got)
}

func TestRotateAndRestart(t *testing.T) {
	p := startProvider(t)
	ctx := context.Background()
	get := func() string {
		t.Helper()
		tok, err := p.ClientCredentials(ctx, acmeID, acmeSecret, resource, "tools:read")
		require.NoError(t, err)
		return tok.AccessToken
	}
	kidOf := func(raw string) any {
		t.Helper()
		tok, _, err := jwt.NewParser().ParseUnverified(raw, jwt.MapClaims{})
		require.NoError(t, err)
		return tok.Header["kid"]
	}
	first := p.KeyIDs()
	require.Len(t, first, 1)
	before := get()
	assert.Equal(t, first[0], kidOf(before))

	// Rotation keeping the old key: new tokens use the new key, old ones
	// still verify.
	kids, err := p.Rotate(ctx, false)
	require.NoError(t, err)
	require.Len(t, kids, 2)
	assert.Equal(t, first[0], kids[1])
	afterRotate := get()
	assert.Equal(t, kids[0], kidOf(afterRotate))
	for _, raw := range []string{before, afterRotate} {
		_, _, err := parse(t, p.Issuer(), raw)
		assert.NoError(t, err)
	}

	// A restart keeps the issuer and the keys.
	issuer := p.Issuer()
	require.NoError(t, p.Restart(ctx))
	assert.Equal(t, issuer, p.Issuer())
	assert.Equal(t, kids, p.KeyIDs())
	_, _, err = parse(t, p.Issuer(), afterRotate)
	assert.NoError(t, err, "a JWT issued before the restart still verifies")

	// Retiring rotation: tokens signed by retired keys no longer verify.
	kids, err = p.Rotate(ctx, true)
	require.NoError(t, err)
	require.Len(t, kids, 1)
	fresh := get()
	assert.Equal(t, kids[0], kidOf(fresh))
	_, _, err = parse(t, p.Issuer(), fresh)
	assert.NoError(t, err)
	_, _, err = parse(t, p.Issuer(), afterRotate)
	assert.ErrorIs(t, err, jwt.ErrTokenUnverifiable, "its key is no longer published")
}
