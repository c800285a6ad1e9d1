package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	testAudience = "https://mcp.example.com/mcp"
	testClientID = "mcp resource/1" // a space and a slash: both must be form-encoded in Basic
	testSecret   = "s3cr3t:with%odd&chars"
)

// fakeAS is an RFC 7662 introspection endpoint (and RFC 8414 metadata)
// written for these tests: it authenticates the client, answers from a
// table of tokens, and can be told to misbehave.
type fakeAS struct {
	t      testing.TB
	issuer string           // set once the URL is known
	now    func() time.Time // the clock for add's default exp and iat

	mu       sync.Mutex
	tokens   map[string]map[string]any
	method   string // expected client authentication method
	status   int    // forced status when non-zero
	raw      []byte // forced body when non-nil
	location string // forced redirect target when non-empty
	gate     chan struct{}
	meta     map[string]any
	lastForm url.Values
	lastAuth string

	requests  atomic.Int64
	metaHits  atomic.Int64
	entered   chan struct{} // receives once per introspection request when non-nil
	srv       *httptest.Server
	transport http.RoundTripper
}

func newFakeAS(t testing.TB) *fakeAS {
	return &fakeAS{t: t, tokens: map[string]map[string]any{}, method: ClientSecretBasic, now: time.Now}
}

// serve starts a loopback server for a.
func (a *fakeAS) serve() *fakeAS {
	a.srv = httptest.NewServer(a)
	a.t.Cleanup(a.srv.Close)
	a.issuer = a.srv.URL
	return a
}

// inMemory serves a through an in-process RoundTripper, for synctest
// bubbles where no real network may be used.
func (a *fakeAS) inMemory() *fakeAS {
	a.issuer = "http://127.0.0.1:1"
	a.transport = roundTripFunc(func(r *http.Request) (*http.Response, error) {
		rec := httptest.NewRecorder()
		a.ServeHTTP(rec, r)
		if err := r.Context().Err(); err != nil {
			return nil, err
		}
		return rec.Result(), nil
	})
	return a
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func (a *fakeAS) endpoint() string { return a.issuer + "/introspect" }

func (a *fakeAS) client() *http.Client {
	if a.transport != nil {
		return &http.Client{Transport: a.transport}
	}
	return a.srv.Client()
}

func (a *fakeAS) set(f func(a *fakeAS)) {
	a.mu.Lock()
	defer a.mu.Unlock()
	f(a)
}

// add registers an active token: defaults plus claims (nil removes one).
func (a *fakeAS) add(tok string, claims map[string]any) {
	m := map[string]any{
		"active": true, "iss": a.issuer, "sub": "alice", "aud": testAudience,
		"client_id": "mcp-client", "scope": "notes:read notes:write", "username": "alice@example.com",
		"exp": float64(a.now().Add(time.Hour).Unix()), "iat": float64(a.now().Add(-time.Minute).Unix()),
		"jti": "jti-" + tok, "token_type": "Bearer",
	}
	for k, v := range claims {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	a.set(func(a *fakeAS) { a.tokens[tok] = m })
}

func (a *fakeAS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/.well-known/") {
		a.metaHits.Add(1)
		a.mu.Lock()
		meta := a.meta
		a.mu.Unlock()
		if meta == nil {
			meta = map[string]any{"issuer": a.issuer, "introspection_endpoint": a.endpoint()}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(meta)
		return
	}
	if r.URL.Path != "/introspect" || r.Method != http.MethodPost {
		http.NotFound(w, r)
		return
	}
	a.requests.Add(1)
	if a.entered != nil {
		a.entered <- struct{}{}
	}
	a.mu.Lock()
	gate, status, raw, location, method := a.gate, a.status, a.raw, a.location, a.method
	a.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-r.Context().Done():
			return
		}
	}
	if location != "" {
		http.Redirect(w, r, location, http.StatusTemporaryRedirect)
		return
	}
	if err := r.ParseForm(); err != nil || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	a.mu.Lock()
	a.lastForm, a.lastAuth = r.PostForm, r.Header.Get("Authorization")
	a.mu.Unlock()
	if !a.authenticated(r, method) {
		w.Header().Set("WWW-Authenticate", `Basic realm="introspect"`)
		http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
		return
	}
	if status != 0 {
		body := "forced failure"
		if raw != nil {
			body = string(raw)
		}
		http.Error(w, body, status)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if raw != nil {
		_, _ = w.Write(raw)
		return
	}
	a.mu.Lock()
	resp, ok := a.tokens[r.PostForm.Get("token")]
	a.mu.Unlock()
	if !ok {
		resp = map[string]any{"active": false}
	}
	_ = json.NewEncoder(w).Encode(resp)
}

func (a *fakeAS) authenticated(r *http.Request, method string) bool {
	switch method {
	case ClientSecretBasic:
		id, secret, ok := r.BasicAuth()
		if !ok {
			return false
		}
		id, err1 := url.QueryUnescape(id)
		secret, err2 := url.QueryUnescape(secret)
		return err1 == nil && err2 == nil && id == testClientID && secret == testSecret && !r.PostForm.Has("client_secret")
	case ClientSecretPost:
		return r.Header.Get("Authorization") == "" && r.PostForm.Get("client_id") == testClientID && r.PostForm.Get("client_secret") == testSecret
	}
	return false
}

func newIntrospection(t testing.TB, a *fakeAS, edit func(*IntrospectionConfig)) *IntrospectionValidator {
	t.Helper()
	cfg := IntrospectionConfig{
		Issuer: a.issuer, Endpoint: a.endpoint(), Audience: testAudience,
		ClientID: testClientID, ClientSecret: NewCredential(testSecret),
		HTTPClient: a.client(),
	}
	if edit != nil {
		edit(&cfg)
	}
	v, err := NewIntrospectionValidator(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = v.Close() })
	return v
}

// assertNoSecrets checks that err's text holds neither the token nor the
// client secret.
func assertNoSecrets(t *testing.T, err error, tok string) {
	t.Helper()
	require.Error(t, err)
	assert.NotContains(t, err.Error(), tok)
	assert.NotContains(t, fmt.Sprintf("%+v %#v", err, err), tok)
	assert.NotContains(t, err.Error(), testSecret)
	var e *Error
	if assert.ErrorAs(t, err, &e) {
		assert.NotContains(t, e.Description, tok)
	}
}

func TestIntrospectionAccepts(t *testing.T) {
	for _, method := range []string{ClientSecretBasic, ClientSecretPost} {
		t.Run(method, func(t *testing.T) {
			a := newFakeAS(t).serve()
			a.method = method
			tok := "opaque-token-" + method
			a.add(tok, map[string]any{"aud": []any{"https://other.example", testAudience}})
			v := newIntrospection(t, a, func(c *IntrospectionConfig) { c.AuthMethod = method })
			p, err := v.Validate(t.Context(), tok)
			require.NoError(t, err)
			assert.Equal(t, KindUser, p.Kind)
			assert.Equal(t, "alice", p.Subject)
			assert.Equal(t, a.issuer, p.Issuer)
			assert.Equal(t, "mcp-client", p.ClientID)
			assert.Equal(t, []string{"https://other.example", testAudience}, p.Audience)
			assert.Equal(t, []string{"notes:read", "notes:write"}, p.Scopes)
			assert.False(t, p.Expiry.IsZero())
			assert.False(t, p.IssuedAt.IsZero())
			assert.Equal(t, "jti-"+tok, p.TokenID)
			u, _ := p.Claims.String("username")
			assert.Equal(t, "alice@example.com", u)

			a.mu.Lock()
			form, authz := a.lastForm, a.lastAuth
			a.mu.Unlock()
			assert.Equal(t, tok, form.Get("token"))
			assert.Equal(t, "access_token", form.Get("token_type_hint"))
			if method == ClientSecretBasic {
				assert.True(t, strings.HasPrefix(authz, "Basic "))
				assert.False(t, form.Has("client_secret"))
			} else {
				assert.Empty(t, authz)
			}
		})
	}
}

func TestIntrospectionScopeMapperAndMissingOptionalClaims(t *testing.T) {
	a := newFakeAS(t).serve()
	a.add("tok-min", map[string]any{"iss": nil, "exp": nil, "iat": nil, "jti": nil, "client_id": nil, "scope": nil, "roles": []any{"admin"}})
	v := newIntrospection(t, a, func(c *IntrospectionConfig) {
		c.ScopeMapper = ScopeMapperFunc(func(c Claims) ([]string, error) {
			r, _ := c.Strings("roles")
			return r, nil
		})
	})
	p, err := v.Validate(t.Context(), "tok-min")
	require.NoError(t, err)
	assert.Equal(t, a.issuer, p.Issuer, "a response without iss is vouched for by the configured issuer")
	assert.Equal(t, []string{"admin"}, p.Scopes)
	assert.True(t, p.Expiry.IsZero())
	assert.Empty(t, p.ClientID)
}

func TestIntrospectionRejects(t *testing.T) {
	a := newFakeAS(t).serve()
	now := time.Now()
	tests := []struct {
		name    string
		claims  map[string]any // nil: token unknown → active:false
		edit    func(*IntrospectionConfig)
		expired bool
		desc    string
	}{
		{name: "inactive", desc: descInactive},
		{name: "active false explicitly", claims: map[string]any{"active": false}, desc: descInactive},
		{name: "wrong audience", claims: map[string]any{"aud": "https://other.example/api"}, desc: descAudience},
		{name: "wrong audience list", claims: map[string]any{"aud": []any{"a", "b"}}, desc: descAudience},
		{name: "missing audience", claims: map[string]any{"aud": nil}, desc: descAudience},
		{name: "present audience checked with AllowMissingAudience", claims: map[string]any{"aud": "x"},
			edit: func(c *IntrospectionConfig) { c.AllowMissingAudience = true }, desc: descAudience},
		{name: "wrong issuer", claims: map[string]any{"iss": "https://evil.example"}, desc: descIssuer},
		{name: "expired", claims: map[string]any{"exp": float64(now.Add(-2 * time.Minute).Unix())}, expired: true, desc: descExpired},
		{name: "expired at 0", claims: map[string]any{"exp": 0}, expired: true, desc: descExpired},
		{name: "not yet valid", claims: map[string]any{"nbf": float64(now.Add(time.Hour).Unix())}, desc: descNotYetValid},
		{name: "issued in the future", claims: map[string]any{"iat": float64(now.Add(time.Hour).Unix())}, desc: descIssuedInFuture},
		{name: "no sub and no client", claims: map[string]any{"sub": nil, "client_id": nil}, desc: descMissingClaim},
		{name: "empty sub and no client", claims: map[string]any{"sub": "", "client_id": nil}, desc: descMissingClaim},
		{name: "sub not a string", claims: map[string]any{"sub": 42}, desc: descIntroClaims},
		{name: "exp not a number", claims: map[string]any{"exp": "tomorrow"}, desc: descIntroClaims},
		{name: "aud of numbers", claims: map[string]any{"aud": []any{1}}, desc: descIntroClaims},
		{name: "scope malformed", claims: map[string]any{"scope": 7}, desc: descScope},
		{name: "clients disagree", claims: map[string]any{"azp": "other"}, desc: descClient},
		{name: "sender-constrained cnf", claims: map[string]any{"cnf": map[string]any{"jkt": "abc"}}, desc: descSenderConstrained},
		{name: "DPoP token type", claims: map[string]any{"token_type": "DPoP"}, desc: descSenderConstrained},
		{name: "refresh token", claims: map[string]any{"token_type": "refresh_token"}, desc: descTokenUse},
		{name: "keycloak refresh typ", claims: map[string]any{"typ": "Refresh"}, desc: descTokenUse},
		{name: "scope mapper error", edit: func(c *IntrospectionConfig) {
			c.ScopeMapper = ScopeMapperFunc(func(Claims) ([]string, error) { return nil, errors.New("no") })
		}, claims: map[string]any{}, desc: descScope},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := fmt.Sprintf("rejected-token-%02d-%s", i, strings.Repeat("z", 20))
			if tt.claims != nil {
				a.add(tok, tt.claims)
			}
			v := newIntrospection(t, a, tt.edit)
			p, err := v.Validate(t.Context(), tok)
			assert.Nil(t, p)
			require.ErrorIs(t, err, ErrInvalidToken)
			assert.NotErrorIs(t, err, ErrUnavailable)
			assert.Equal(t, tt.expired, errors.Is(err, ErrExpired))
			e := AsError(err)
			assert.Equal(t, http.StatusUnauthorized, e.Status)
			assert.Equal(t, tt.desc, e.Description)
			assertNoSecrets(t, err, tok)
		})
	}
}

func TestIntrospectionOutagesFailClosedWith503(t *testing.T) {
	tok := "outage-token-" + strings.Repeat("q", 24)
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("the redirect was followed to %s", r.URL)
	}))
	defer other.Close()
	down := httptest.NewServer(http.NotFoundHandler())
	downURL := down.URL
	down.Close()
	huge := []byte(`{"active":true,"pad":"` + strings.Repeat("x", maxRemoteBody) + `"}`)
	tests := []struct {
		name  string
		setup func(a *fakeAS)
		edit  func(*IntrospectionConfig)
	}{
		{name: "500", setup: func(a *fakeAS) { a.status = 500 }},
		{name: "503", setup: func(a *fakeAS) { a.status = 503 }},
		{name: "400", setup: func(a *fakeAS) { a.status = 400 }},
		{name: "client authentication refused", edit: func(c *IntrospectionConfig) { c.ClientSecret = NewCredential("wrong") }},
		{name: "wrong client auth method", edit: func(c *IntrospectionConfig) { c.AuthMethod = ClientSecretPost }},
		{name: "garbage body", setup: func(a *fakeAS) { a.raw = []byte("<html>oops</html>") }},
		{name: "no active member", setup: func(a *fakeAS) { a.raw = []byte(`{"sub":"alice"}`) }},
		{name: "active is a string", setup: func(a *fakeAS) { a.raw = []byte(`{"active":"true","sub":"alice"}`) }},
		{name: "duplicate active", setup: func(a *fakeAS) { a.raw = []byte(`{"active":false,"active":true,"sub":"alice"}`) }},
		{name: "JSON array", setup: func(a *fakeAS) { a.raw = []byte(`[{"active":true}]`) }},
		{name: "body over 1 MiB", setup: func(a *fakeAS) { a.raw = huge }},
		{name: "redirect is not followed", setup: func(a *fakeAS) { a.location = other.URL + "/introspect" }},
		{name: "endpoint down", edit: func(c *IntrospectionConfig) { c.Endpoint = downURL + "/introspect" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newFakeAS(t).serve()
			a.add(tok, nil)
			if tt.setup != nil {
				a.set(tt.setup)
			}
			v := newIntrospection(t, a, tt.edit)
			for range 2 { // outages are never cached
				p, err := v.Validate(t.Context(), tok)
				assert.Nil(t, p)
				require.ErrorIs(t, err, ErrUnavailable)
				assert.NotErrorIs(t, err, ErrInvalidToken, "an outage must not be a 401")
				e := AsError(err)
				assert.Equal(t, http.StatusServiceUnavailable, e.Status)
				assert.Empty(t, e.Code)
				assertNoSecrets(t, err, tok)
			}
		})
	}
}

func TestIntrospectionMiddlewareAnswers503NotA401(t *testing.T) {
	a := newFakeAS(t).serve()
	a.status = http.StatusBadGateway
	v := newIntrospection(t, a, nil)
	mw, err := Middleware(v, MiddlewareConfig{ResourceMetadataURL: testMetaURL})
	require.NoError(t, err)
	r := httptest.NewRequest(http.MethodPost, "/mcp", nil)
	r.Header.Set("Authorization", "Bearer opaque-abc")
	rec := httptest.NewRecorder()
	mw(http.NotFoundHandler()).ServeHTTP(rec, r)
	assert.Equal(t, http.StatusServiceUnavailable, rec.Code)
	assert.Empty(t, rec.Header().Get("WWW-Authenticate"))
	assert.NotEmpty(t, rec.Header().Get("Retry-After"))
	assert.NotContains(t, rec.Body.String(), "opaque-abc")
}

func TestIntrospectionDiscovery(t *testing.T) {
	t.Run("from RFC 8414 metadata", func(t *testing.T) {
		a := newFakeAS(t).serve()
		a.add("disc-token", nil)
		v := newIntrospection(t, a, func(c *IntrospectionConfig) { c.Endpoint = "" })
		for range 3 {
			_, err := v.Validate(t.Context(), "disc-token")
			require.NoError(t, err)
		}
		assert.EqualValues(t, 1, a.metaHits.Load())
		assert.EqualValues(t, 1, a.requests.Load())
	})
	tests := []struct {
		name string
		meta map[string]any
	}{
		{"issuer mismatch", map[string]any{"issuer": "https://evil.example", "introspection_endpoint": "http://127.0.0.1:1/x"}},
		{"no endpoint", map[string]any{"issuer": "ISSUER"}},
		{"plain http to a public host", map[string]any{"issuer": "ISSUER", "introspection_endpoint": "http://evil.example/introspect"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newFakeAS(t).serve()
			if tt.meta["issuer"] == "ISSUER" {
				tt.meta["issuer"] = a.issuer
			}
			a.meta = tt.meta
			clock := newFakeClock()
			a.now = clock.Now
			a.add("disc-token", nil)
			v := newIntrospection(t, a, func(c *IntrospectionConfig) { c.Endpoint = ""; c.Now = clock.Now })
			_, err := v.Validate(t.Context(), "disc-token")
			require.ErrorIs(t, err, ErrUnavailable)
			hits := a.metaHits.Load()
			assert.EqualValues(t, 2, hits, "RFC 8414 then OpenID discovery")
			_, err = v.Validate(t.Context(), "disc-token")
			require.ErrorIs(t, err, ErrUnavailable)
			assert.Equal(t, hits, a.metaHits.Load(), "no new discovery inside the cooldown")
			clock.Advance(DefaultRefetchCooldown)
			a.set(func(a *fakeAS) { a.meta = nil })
			p, err := v.Validate(t.Context(), "disc-token")
			require.NoError(t, err, "discovery is retried after the cooldown")
			assert.Equal(t, "alice", p.Subject)
			assert.EqualValues(t, 0+1, a.requests.Load())
		})
	}
}

func TestIntrospectionCache(t *testing.T) {
	a := newFakeAS(t).serve()
	clock := newFakeClock()
	now := clock.Now()
	a.add("long-lived", map[string]any{"exp": float64(now.Add(time.Hour).Unix()), "iat": float64(now.Unix())})
	a.add("short-lived", map[string]any{"exp": float64(now.Add(10 * time.Second).Unix()), "iat": float64(now.Unix())})
	v := newIntrospection(t, a, func(c *IntrospectionConfig) { c.Now = clock.Now })

	requests := func() int64 { return a.requests.Load() }
	_, err := v.Validate(t.Context(), "long-lived")
	require.NoError(t, err)
	_, err = v.Validate(t.Context(), "long-lived")
	require.NoError(t, err)
	assert.EqualValues(t, 1, requests(), "warm cache")

	_, err = v.Validate(t.Context(), "short-lived")
	require.NoError(t, err)
	assert.EqualValues(t, 2, requests())

	clock.Advance(11 * time.Second) // past short-lived's exp, inside CacheTTL
	_, err = v.Validate(t.Context(), "long-lived")
	require.NoError(t, err)
	assert.EqualValues(t, 2, requests())
	_, err = v.Validate(t.Context(), "short-lived")
	require.NoError(t, err, "still inside the leeway")
	assert.EqualValues(t, 3, requests(), "a cache entry never outlives exp: the server is asked again")

	clock.Advance(DefaultIntrospectionCacheTTL) // past CacheTTL
	_, err = v.Validate(t.Context(), "long-lived")
	require.NoError(t, err)
	assert.EqualValues(t, 4, requests(), "CacheTTL bounds the entry")

	// Revocation at the authorization server shows after CacheTTL.
	a.set(func(a *fakeAS) { delete(a.tokens, "long-lived") })
	_, err = v.Validate(t.Context(), "long-lived")
	require.NoError(t, err, "still cached")
	clock.Advance(DefaultIntrospectionCacheTTL)
	_, err = v.Validate(t.Context(), "long-lived")
	require.ErrorIs(t, err, ErrInvalidToken)
}

func TestIntrospectionCacheBounded(t *testing.T) {
	a := newFakeAS(t).serve()
	v := newIntrospection(t, a, func(c *IntrospectionConfig) { c.CacheSize = 8; c.NegativeCacheSize = 4 })
	for i := range 40 {
		tok := fmt.Sprintf("bounded-%03d", i)
		a.add(tok, nil)
		_, err := v.Validate(t.Context(), tok)
		require.NoError(t, err)
		_, err = v.Validate(t.Context(), "junk-"+tok)
		require.ErrorIs(t, err, ErrInvalidToken)
	}
	assert.LessOrEqual(t, v.cache.len(), 8)
	assert.LessOrEqual(t, v.neg.len(), 4)
	// The most recent entries are still served.
	before := a.requests.Load()
	_, err := v.Validate(t.Context(), "bounded-039")
	require.NoError(t, err)
	assert.Equal(t, before, a.requests.Load())
}

func TestIntrospectionNegativeCache(t *testing.T) {
	a := newFakeAS(t).serve()
	clock := newFakeClock()
	a.add("good", map[string]any{"exp": float64(clock.Now().Add(time.Hour).Unix()), "iat": float64(clock.Now().Unix())})
	v := newIntrospection(t, a, func(c *IntrospectionConfig) { c.Now = clock.Now; c.NegativeCacheSize = 2 })

	_, err := v.Validate(t.Context(), "good")
	require.NoError(t, err)
	for range 3 {
		_, err = v.Validate(t.Context(), "dead-token")
		require.ErrorIs(t, err, ErrInvalidToken)
	}
	assert.EqualValues(t, 2, a.requests.Load(), "the rejection is remembered")
	clock.Advance(DefaultNegativeCacheTTL)
	_, err = v.Validate(t.Context(), "dead-token")
	require.ErrorIs(t, err, ErrInvalidToken)
	assert.EqualValues(t, 3, a.requests.Load(), "only briefly")

	// A flood of junk cannot evict the active entry: rejections live apart.
	for i := range 50 {
		_, _ = v.Validate(t.Context(), fmt.Sprintf("junk-%d", i))
	}
	n := a.requests.Load()
	_, err = v.Validate(t.Context(), "good")
	require.NoError(t, err)
	assert.Equal(t, n, a.requests.Load())

	t.Run("disabled", func(t *testing.T) {
		v := newIntrospection(t, a, func(c *IntrospectionConfig) {
			c.Now = clock.Now
			c.DisableNegativeCache = true
			c.DisableCache = true
		})
		n := a.requests.Load()
		for range 3 {
			_, err := v.Validate(t.Context(), "dead-token")
			require.ErrorIs(t, err, ErrInvalidToken)
			_, err = v.Validate(t.Context(), "good")
			require.NoError(t, err)
		}
		assert.Equal(t, n+6, a.requests.Load())
	})
}

func TestIntrospectionSingleflight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := newFakeAS(t).inMemory()
		a.add("shared-token", nil)
		a.gate = make(chan struct{})
		v := newIntrospection(t, a, nil)

		const n = 8
		results := make([]error, n)
		cancelled, cancel := context.WithCancel(t.Context())
		var wg sync.WaitGroup
		for i := range n {
			ctx := t.Context()
			if i == 0 {
				ctx = cancelled
			}
			wg.Go(func() {
				p, err := v.Validate(ctx, "shared-token")
				if err == nil && p.Subject != "alice" {
					err = errors.New("wrong principal")
				}
				results[i] = err
			})
		}
		synctest.Wait() // every caller is waiting on the one request
		assert.EqualValues(t, 1, a.requests.Load())

		cancel() // the first caller gives up...
		synctest.Wait()
		require.ErrorIs(t, results[0], ErrUnavailable)
		require.ErrorIs(t, results[0], context.Canceled)

		close(a.gate) // ...the others still get the answer
		wg.Wait()
		for i := 1; i < n; i++ {
			assert.NoError(t, results[i], i)
		}
		assert.EqualValues(t, 1, a.requests.Load())
	})
}

func TestIntrospectionInFlightCapAndTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := newFakeAS(t).inMemory()
		for _, tok := range []string{"tok-a", "tok-b", "tok-c"} {
			a.add(tok, nil)
		}
		a.gate = make(chan struct{})
		v := newIntrospection(t, a, func(c *IntrospectionConfig) { c.MaxInFlight = 1; c.Timeout = 2 * time.Second })

		var errA, errB error
		var wg sync.WaitGroup
		wg.Go(func() { _, errA = v.Validate(t.Context(), "tok-a") })
		synctest.Wait()
		wg.Go(func() { _, errB = v.Validate(t.Context(), "tok-b") })
		synctest.Wait()
		assert.EqualValues(t, 1, a.requests.Load(), "the second token waits for the one slot")
		close(a.gate)
		wg.Wait()
		require.NoError(t, errA)
		require.NoError(t, errB)
		assert.EqualValues(t, 2, a.requests.Load())

		// An endpoint that never answers: the request times out (fake
		// time advances in the bubble) and the caller gets a 503.
		a.set(func(a *fakeAS) { a.gate = make(chan struct{}) })
		_, err := v.Validate(t.Context(), "tok-c")
		require.ErrorIs(t, err, ErrUnavailable)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		a.set(func(a *fakeAS) { close(a.gate); a.gate = nil })
		_, err = v.Validate(t.Context(), "tok-c")
		require.NoError(t, err, "a timeout is not cached")
	})
}

func TestIntrospectionClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := newFakeAS(t).inMemory()
		a.add("tok", nil)
		a.gate = make(chan struct{})
		v := newIntrospection(t, a, nil)
		var err error
		done := make(chan struct{})
		go func() { _, err = v.Validate(t.Context(), "tok"); close(done) }()
		synctest.Wait()
		require.NoError(t, v.Close())
		<-done
		require.ErrorIs(t, err, ErrUnavailable)
		require.NoError(t, v.Close())
	})
}

func TestIntrospectionConfigErrors(t *testing.T) {
	base := IntrospectionConfig{
		Issuer: "https://as.example.com", Endpoint: "https://as.example.com/introspect",
		Audience: testAudience, ClientID: "rs", ClientSecret: NewCredential(testSecret),
	}
	tests := []struct {
		field string
		edit  func(*IntrospectionConfig)
	}{
		{"Issuer", func(c *IntrospectionConfig) { c.Issuer = "" }},
		{"Issuer", func(c *IntrospectionConfig) { c.Issuer = "http://as.example.com" }},
		{"Endpoint", func(c *IntrospectionConfig) { c.Endpoint = "http://as.example.com/introspect" }},
		{"Endpoint", func(c *IntrospectionConfig) { c.Endpoint = "https://user:pw@as.example.com/introspect" }},
		{"ClientID", func(c *IntrospectionConfig) { c.ClientID = "" }},
		{"ClientSecret", func(c *IntrospectionConfig) { c.ClientSecret = Credential{} }},
		{"AuthMethod", func(c *IntrospectionConfig) { c.AuthMethod = "private_key_jwt" }},
		{"Audience", func(c *IntrospectionConfig) { c.Audience = "" }},
		{"Audience", func(c *IntrospectionConfig) { c.Audience = "api://x" }},
		{"AudienceAliases", func(c *IntrospectionConfig) { c.AudienceAliases = []string{""} }},
		{"Timeout", func(c *IntrospectionConfig) { c.Timeout = time.Hour }},
		{"Leeway", func(c *IntrospectionConfig) { c.Leeway = time.Hour }},
		{"CacheTTL", func(c *IntrospectionConfig) { c.CacheTTL = time.Hour }},
		{"NegativeCacheTTL", func(c *IntrospectionConfig) { c.NegativeCacheTTL = time.Hour }},
		{"MaxTokenBytes", func(c *IntrospectionConfig) { c.MaxTokenBytes = -1 }},
		{"CacheSize", func(c *IntrospectionConfig) { c.CacheSize = -1 }},
		{"NegativeCacheSize", func(c *IntrospectionConfig) { c.NegativeCacheSize = -1 }},
		{"MaxInFlight", func(c *IntrospectionConfig) { c.MaxInFlight = -1 }},
	}
	for _, tt := range tests {
		t.Run(tt.field, func(t *testing.T) {
			cfg := base
			tt.edit(&cfg)
			v, err := NewIntrospectionValidator(cfg)
			assert.Nil(t, v)
			require.ErrorIs(t, err, ErrConfig)
			assert.Contains(t, err.Error(), "IntrospectionConfig."+tt.field)
			assert.NotContains(t, err.Error(), testSecret)
		})
	}
	v, err := NewIntrospectionValidator(base)
	require.NoError(t, err)
	require.NoError(t, v.Close())
	assert.NotContains(t, fmt.Sprintf("%v %+v %#v", base, base, base), testSecret, "printing the config never shows the secret")

	noAud := base
	noAud.Audience = ""
	noAud.AllowMissingAudience = true
	_, err = NewIntrospectionValidator(noAud)
	require.NoError(t, err)
}

func TestIntrospectionTokenSize(t *testing.T) {
	a := newFakeAS(t).serve()
	v := newIntrospection(t, a, func(c *IntrospectionConfig) { c.MaxTokenBytes = 64 })
	for _, tok := range []string{"", strings.Repeat("a", 65)} {
		_, err := v.Validate(t.Context(), tok)
		require.ErrorIs(t, err, ErrInvalidToken)
	}
	assert.EqualValues(t, 0, a.requests.Load())
}

// FuzzIntrospectionResponse feeds arbitrary response bodies through the
// parser and the claim checks: nothing may panic, and whatever is accepted
// must name a subject and the configured issuer.
func FuzzIntrospectionResponse(f *testing.F) {
	for _, s := range []string{
		`{"active":true,"sub":"a","aud":"` + testAudience + `"}`,
		`{"active":true,"sub":"a","aud":["x","` + testAudience + `"],"exp":1e10,"scope":"a b"}`,
		`{"active":false}`, `{"active":true,"active":false}`, `{"active":"true"}`, `[]`, `null`,
		`{"active":true,"sub":"a","aud":"` + testAudience + `","cnf":{}}`,
		`{"active":true,"sub":"a","aud":"` + testAudience + `","exp":-1,"nbf":"x"}`,
		`{"active":true,"sub":"a","aud":"` + testAudience + `","nested":{"k":{"k":1},"k2":[{"a":1,"a":2}]}}`,
	} {
		f.Add([]byte(s))
	}
	v, err := NewIntrospectionValidator(IntrospectionConfig{
		Issuer: "https://as.example.com", Endpoint: "https://as.example.com/introspect",
		Audience: testAudience, ClientID: "rs", ClientSecret: NewCredential("x"),
		Now: func() time.Time { return time.Unix(1_800_000_000, 0) },
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := decodeIntrospection(body)
		if err != nil {
			return
		}
		if m["active"] != true {
			return
		}
		p, until, e := v.checkResponse(m)
		if e != nil {
			if e.Status != http.StatusUnauthorized || e.Code != CodeInvalidToken {
				t.Fatalf("a claim defect must be invalid_token 401, got %d %q", e.Status, e.Code)
			}
			return
		}
		if p.Subject == "" || p.Issuer != "https://as.example.com" || until.IsZero() {
			t.Fatalf("accepted a principal without subject or with issuer %q", p.Issuer)
		}
		if !p.Expiry.IsZero() && until.After(p.Expiry) {
			t.Fatal("cache lifetime outlives exp")
		}
	})
}

func BenchmarkIntrospectionWarmCache(b *testing.B) {
	a := newFakeAS(b).serve()
	tok := "warm-" + strings.Repeat("t", 40)
	a.add(tok, nil)
	v := newIntrospection(b, a, nil)
	ctx := context.Background()
	if _, err := v.Validate(ctx, tok); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Validate(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
	if n := a.requests.Load(); n != 1 {
		b.Fatalf("%d introspection requests, want 1", n)
	}
}

// A client-credentials token has no resource owner: without "sub" it acts
// for its client (RFC 7662 makes sub optional; oidc-provider omits it).
func TestIntrospectionNoSubActsForClient(t *testing.T) {
	a := newFakeAS(t).serve()
	tok := "client-credentials-token-" + strings.Repeat("c", 20)
	a.add(tok, map[string]any{"sub": nil})
	p, err := newIntrospection(t, a, nil).Validate(t.Context(), tok)
	require.NoError(t, err)
	assert.Equal(t, "mcp-client", p.Subject)
	assert.Equal(t, "mcp-client", p.ClientID)
}

// A 400 whose OAuth error is about the token is a verdict on the token
// (401), not an outage; other 400s stay outages (503).
func TestIntrospection400(t *testing.T) {
	for _, tt := range []struct {
		body        string
		unavailable bool
	}{
		{body: `{"error":"unsupported_token_type"}`},
		{body: `{"error":"invalid_token"}`},
		{body: `{"error":"invalid_request"}`, unavailable: true},
		{body: `not json`, unavailable: true},
	} {
		t.Run(tt.body, func(t *testing.T) {
			a := newFakeAS(t).serve()
			a.set(func(a *fakeAS) { a.status, a.raw = http.StatusBadRequest, []byte(tt.body) })
			tok := "refused-token-" + strings.Repeat("r", 20)
			_, err := newIntrospection(t, a, nil).Validate(t.Context(), tok)
			require.Error(t, err)
			assert.Equal(t, tt.unavailable, errors.Is(err, ErrUnavailable))
			assert.Equal(t, !tt.unavailable, errors.Is(err, ErrInvalidToken))
			assertNoSecrets(t, err, tok)
		})
	}
}
