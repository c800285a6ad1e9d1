package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/internal/oauthsyntax"
)

const (
	issuerA = "https://idp-a.example.com"
	issuerB = "https://idp-b.example.com"
)

// fakeServiceValidator accepts "svc-<client>" tokens as that client.
func fakeServiceValidator() Validator {
	return ValidatorFunc(func(_ context.Context, tok string) (*Principal, error) {
		switch {
		case tok == "svc-down":
			return nil, Unavailable("token validation is temporarily unavailable", ErrUnavailable)
		case tok == "svc-nil":
			return nil, nil
		case strings.HasPrefix(tok, "svc-"):
			return &Principal{Subject: "service-account", Issuer: issuerA, ClientID: strings.TrimPrefix(tok, "svc-"), Scopes: []string{"svc:all"}}, nil
		}
		return nil, InvalidToken(descSignature, fmt.Errorf("%w: bad signature", ErrInvalidToken))
	})
}

// fakeUserValidator accepts "user-a-<sub>" and "user-b-<sub>" tokens from
// issuer A or B.
func fakeUserValidator() Validator {
	return ValidatorFunc(func(_ context.Context, tok string) (*Principal, error) {
		switch {
		case tok == "user-expired":
			return nil, InvalidToken(descExpired, fmt.Errorf("%w: %w", ErrInvalidToken, ErrExpired))
		case tok == "user-down":
			return nil, Unavailable("token validation is temporarily unavailable", ErrUnavailable)
		case tok == "user-acting":
			return &Principal{Subject: "carol", Issuer: issuerA, Actor: &Principal{Subject: "x"}}, nil
		case strings.HasPrefix(tok, "user-a-"):
			return &Principal{Subject: strings.TrimPrefix(tok, "user-a-"), Issuer: issuerA, Scopes: []string{"notes:read"}}, nil
		case strings.HasPrefix(tok, "user-b-"):
			return &Principal{Subject: strings.TrimPrefix(tok, "user-b-"), Issuer: issuerB, Scopes: []string{"notes:read"}}, nil
		}
		return nil, InvalidToken(descSignature, fmt.Errorf("%w: bad signature", ErrInvalidToken))
	})
}

func newDual(t *testing.T, edit func(*DualConfig)) *DualValidator {
	t.Helper()
	cfg := DualConfig{
		Service: fakeServiceValidator(), User: fakeUserValidator(),
		ServiceClientIDs:   []string{"backend", "batch"},
		UserIssuers:        []string{issuerA},
		ServiceUserIssuers: map[string][]string{"batch": {issuerA, issuerB}},
	}
	if edit != nil {
		edit(&cfg)
	}
	d, err := NewDualValidator(cfg)
	require.NoError(t, err)
	return d
}

func TestDualMiddleware(t *testing.T) {
	tests := []struct {
		name       string
		direct     bool
		auth       []string
		user       []string
		required   []string
		wantStatus int
		wantCode   string
		wantDesc   string
		wantSub    string
		wantActor  string // client ID of the actor, "" for none
		wantCred   string
		wantIs     error
	}{
		{name: "service acts for user", auth: []string{"Bearer svc-backend"}, user: []string{"user-a-alice"},
			wantStatus: 200, wantSub: "alice", wantActor: "backend", wantCred: "user-a-alice"},
		{name: "Bearer prefix in the user header", auth: []string{"Bearer svc-backend"}, user: []string{"bearer   user-a-alice"},
			wantStatus: 200, wantSub: "alice", wantActor: "backend", wantCred: "user-a-alice"},
		{name: "per-service issuer mapping", auth: []string{"Bearer svc-batch"}, user: []string{"user-b-bob"},
			wantStatus: 200, wantSub: "bob", wantActor: "batch", wantCred: "user-b-bob"},
		{name: "user header without a service token", user: []string{"user-a-alice"},
			wantStatus: 400, wantCode: CodeInvalidRequest, wantDesc: descUserNeedsService, wantIs: ErrMalformedRequest},
		{name: "user header with Basic auth", auth: []string{"Basic Zm9vOmJhcg=="}, user: []string{"user-a-alice"},
			wantStatus: 400, wantCode: CodeInvalidRequest, wantDesc: descUserNeedsService},
		{name: "service not allow-listed", auth: []string{"Bearer svc-intruder"}, user: []string{"user-a-alice"},
			wantStatus: 401, wantCode: CodeInvalidToken, wantDesc: descServiceNotAllowed, wantIs: ErrInvalidToken},
		{name: "service token without client", auth: []string{"Bearer svc-"}, user: []string{"user-a-alice"},
			wantStatus: 401, wantCode: CodeInvalidToken, wantDesc: descServiceNotAllowed},
		{name: "forged service token", auth: []string{"Bearer forged"}, user: []string{"user-a-alice"},
			wantStatus: 401, wantCode: CodeInvalidToken, wantDesc: prefixServiceToken + descSignature},
		{name: "service validator returns nothing", auth: []string{"Bearer svc-nil"}, user: []string{"user-a-alice"},
			wantStatus: 401, wantCode: CodeInvalidToken, wantDesc: prefixServiceToken + descMalformed},
		{name: "service validation down", auth: []string{"Bearer svc-down"}, user: []string{"user-a-alice"},
			wantStatus: 503, wantIs: ErrUnavailable},
		{name: "expired user token", auth: []string{"Bearer svc-backend"}, user: []string{"user-expired"},
			wantStatus: 401, wantCode: CodeInvalidToken, wantDesc: prefixUserToken + descExpired, wantIs: ErrExpired},
		{name: "forged user token", auth: []string{"Bearer svc-backend"}, user: []string{"forged-user"},
			wantStatus: 401, wantCode: CodeInvalidToken, wantDesc: prefixUserToken + descSignature},
		{name: "user validation down", auth: []string{"Bearer svc-backend"}, user: []string{"user-down"},
			wantStatus: 503, wantIs: ErrUnavailable},
		{name: "user token from an issuer the service may not present", auth: []string{"Bearer svc-backend"}, user: []string{"user-b-bob"},
			wantStatus: 401, wantCode: CodeInvalidToken, wantDesc: descUserIssuer, wantIs: ErrInvalidToken},
		{name: "user principal already has an actor", auth: []string{"Bearer svc-backend"}, user: []string{"user-acting"},
			wantStatus: 401, wantCode: CodeInvalidToken, wantDesc: descNestedActor},
		{name: "same token twice", auth: []string{"Bearer svc-backend"}, user: []string{"svc-backend"},
			wantStatus: 400, wantCode: CodeInvalidRequest, wantDesc: descSameToken},
		{name: "two user headers", auth: []string{"Bearer svc-backend"}, user: []string{"user-a-alice", "user-a-bob"},
			wantStatus: 400, wantCode: CodeInvalidRequest, wantDesc: descUserTokenTwice},
		{name: "malformed user header", auth: []string{"Bearer svc-backend"}, user: []string{"Basic dXNlcg=="},
			wantStatus: 400, wantCode: CodeInvalidRequest, wantDesc: descUserTokenMalformed, wantIs: ErrMalformedRequest},
		{name: "empty user header", auth: []string{"Bearer svc-backend"}, user: []string{""},
			wantStatus: 400, wantCode: CodeInvalidRequest, wantDesc: descUserTokenMalformed},
		{name: "two Authorization headers", auth: []string{"Bearer svc-backend", "Bearer svc-batch"}, user: []string{"user-a-alice"},
			wantStatus: 400, wantCode: CodeInvalidRequest},
		{name: "user lacks a required scope", auth: []string{"Bearer svc-backend"}, user: []string{"user-a-alice"}, required: []string{"notes:write"},
			wantStatus: 403, wantCode: CodeInsufficientScope},
		{name: "nothing at all", wantStatus: 401, wantIs: ErrNoCredential},
		{name: "service alone, direct calls off", auth: []string{"Bearer svc-backend"},
			wantStatus: 400, wantCode: CodeInvalidRequest, wantDesc: descUserTokenRequired},
		{name: "direct call", direct: true, auth: []string{"Bearer user-a-dave"},
			wantStatus: 200, wantSub: "dave", wantCred: "user-a-dave"},
		{name: "direct call, bad token", direct: true, auth: []string{"Bearer forged"},
			wantStatus: 401, wantCode: CodeInvalidToken, wantDesc: descSignature},
		{name: "direct call, no token", direct: true, wantStatus: 401, wantIs: ErrNoCredential},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDual(t, func(c *DualConfig) {
				if tt.direct {
					c.Direct = fakeUserValidator()
				}
			})
			var hookErr *Error
			mw, err := DualMiddleware(d, MiddlewareConfig{
				ResourceMetadataURL: testMetaURL, RequiredScopes: tt.required,
				OnError: func(_ *http.Request, e *Error) { hookErr = e },
			})
			require.NoError(t, err)
			var seen *Principal
			var cred Credential
			h := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				seen, _ = FromContext(r.Context())
				cred, _ = CredentialFromContext(r.Context())
			}))
			r := httptest.NewRequest(http.MethodPost, "/mcp", nil)
			for _, a := range tt.auth {
				r.Header.Add("Authorization", a)
			}
			for _, u := range tt.user {
				r.Header.Add(DefaultUserTokenHeader, u)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			require.Equal(t, tt.wantStatus, rec.Code, rec.Body.String())
			if tt.wantStatus == 200 {
				require.NotNil(t, seen)
				assert.Nil(t, hookErr)
				assert.Equal(t, tt.wantSub, seen.Subject)
				assert.Equal(t, KindUser, seen.Kind)
				assert.Equal(t, tt.wantCred, cred.Reveal(), "obo must exchange the user's token, never the service's")
				if tt.wantActor == "" {
					assert.Nil(t, seen.Actor)
				} else {
					require.NotNil(t, seen.Actor)
					assert.Equal(t, tt.wantActor, seen.Actor.ClientID)
					assert.Equal(t, "service-account", seen.Actor.Subject)
					assert.Equal(t, []string{"notes:read"}, seen.Scopes, "the user's scopes, not the service's")
				}
				return
			}
			assert.Nil(t, seen)
			require.NotNil(t, hookErr)
			var body map[string]string
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body))
			if tt.wantCode != "" {
				assert.Equal(t, tt.wantCode, body["error"])
				assert.Contains(t, rec.Header().Get("WWW-Authenticate"), `error="`+tt.wantCode+`"`)
			}
			if tt.wantDesc != "" {
				assert.Equal(t, tt.wantDesc, body["error_description"])
			}
			if tt.wantIs != nil {
				assert.ErrorIs(t, hookErr, tt.wantIs)
			}
			for _, v := range append(append([]string{}, tt.auth...), tt.user...) {
				tok := v[strings.LastIndexByte(v, ' ')+1:]
				if len(tok) < 6 {
					continue
				}
				assert.NotContains(t, rec.Body.String(), tok)
				assert.NotContains(t, rec.Header().Get("WWW-Authenticate"), tok)
				assert.NotContains(t, hookErr.Error(), tok)
			}
		})
	}
}

func TestDualHeaderCustomName(t *testing.T) {
	d := newDual(t, func(c *DualConfig) { c.Header = "x-on-behalf-of" })
	assert.Equal(t, "X-On-Behalf-Of", d.Header())
	mw, err := DualMiddleware(d, MiddlewareConfig{ResourceMetadataURL: testMetaURL, RejectHeaders: []string{DefaultUserTokenHeader}})
	require.NoError(t, err)
	var seen *Principal
	h := mw(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { seen, _ = FromContext(r.Context()) }))

	r := httptest.NewRequest(http.MethodPost, "/mcp", nil)
	r.Header.Set("Authorization", "Bearer svc-backend")
	r.Header.Set("X-On-Behalf-Of", "user-a-alice")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	require.Equal(t, 200, rec.Code)
	assert.Equal(t, "alice", seen.Subject)

	r.Header.Set(DefaultUserTokenHeader, "user-a-bob")
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	assert.Equal(t, 400, rec.Code, "explicit RejectHeaders still apply in dual mode")

	_, err = DualMiddleware(d, MiddlewareConfig{ResourceMetadataURL: testMetaURL, RejectHeaders: []string{"X-On-Behalf-Of"}})
	require.ErrorIs(t, err, ErrConfig)
}

// TestMiddlewareRefusesUserTokenHeader checks that plain Middleware (dual
// mode off) refuses a user token rather than serving the caller as itself.
func TestMiddlewareRefusesUserTokenHeader(t *testing.T) {
	var hookErr *Error
	mw, err := Middleware(fakeServiceValidator(), MiddlewareConfig{
		ResourceMetadataURL: testMetaURL,
		OnError:             func(_ *http.Request, e *Error) { hookErr = e },
	})
	require.NoError(t, err)
	called := false
	srv := httptest.NewServer(mw(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { called = true })))
	defer srv.Close()

	send := func(headers map[string]string) *http.Response {
		req, err := http.NewRequest(http.MethodPost, srv.URL, nil)
		require.NoError(t, err)
		for k, v := range headers {
			req.Header[k] = []string{v} // as given, not canonicalised by the client
		}
		resp, err := srv.Client().Do(req)
		require.NoError(t, err)
		_ = resp.Body.Close()
		return resp
	}
	resp := send(map[string]string{"Authorization": "Bearer svc-backend"})
	assert.Equal(t, 200, resp.StatusCode)
	require.True(t, called)

	for _, name := range []string{"X-User-Token", "x-user-token", "X-USER-TOKEN"} {
		called, hookErr = false, nil
		resp = send(map[string]string{"Authorization": "Bearer svc-backend", name: "user-a-alice"})
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode, name)
		assert.False(t, called)
		require.NotNil(t, hookErr)
		assert.Equal(t, descUserHeaderRefused, hookErr.Description)
		assert.ErrorIs(t, hookErr, ErrMalformedRequest)
		assert.Contains(t, resp.Header.Get("WWW-Authenticate"), `error="invalid_request"`)
	}

	t.Run("custom list replaces the default", func(t *testing.T) {
		mw, err := Middleware(fakeServiceValidator(), MiddlewareConfig{ResourceMetadataURL: testMetaURL, RejectHeaders: []string{"x-acting-for"}})
		require.NoError(t, err)
		h := mw(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
		for header, want := range map[string]int{"X-User-Token": 200, "X-Acting-For": 400} {
			r := httptest.NewRequest(http.MethodPost, "/mcp", nil)
			r.Header.Set("Authorization", "Bearer svc-backend")
			r.Header.Set(header, "x")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			assert.Equal(t, want, rec.Code, header)
		}
	})
	for _, bad := range [][]string{{"Authorization"}, {"bad header"}, {""}} {
		_, err := Middleware(fakeServiceValidator(), MiddlewareConfig{ResourceMetadataURL: testMetaURL, RejectHeaders: bad})
		require.ErrorIs(t, err, ErrConfig, bad)
		assert.Contains(t, err.Error(), "RejectHeaders")
	}
}

func TestDualValidatePairErrors(t *testing.T) {
	d := newDual(t, nil)
	p, err := d.ValidatePair(t.Context(), "svc-backend", "user-a-alice")
	require.NoError(t, err)
	assert.Equal(t, "alice", p.Subject)
	assert.Equal(t, "backend", p.Actor.ClientID)

	_, err = d.ValidatePair(t.Context(), "svc-backend", "user-expired")
	require.ErrorIs(t, err, ErrExpired)
	require.ErrorIs(t, err, ErrInvalidToken)
	assert.Equal(t, "auth: user token: the access token has expired: user token: auth: the access token has expired: auth: invalid token: auth: token expired", err.Error())

	_, err = d.ValidatePair(t.Context(), "svc-down", "user-a-alice")
	require.ErrorIs(t, err, ErrUnavailable)
	assert.Equal(t, http.StatusServiceUnavailable, AsError(err).Status)
}

func TestDualConfigErrors(t *testing.T) {
	tests := []struct {
		field string
		edit  func(*DualConfig)
	}{
		{"Service", func(c *DualConfig) { c.Service = nil }},
		{"User", func(c *DualConfig) { c.User = nil }},
		{"ServiceClientIDs", func(c *DualConfig) { c.ServiceClientIDs = nil }},
		{"ServiceClientIDs", func(c *DualConfig) { c.ServiceClientIDs = []string{""} }},
		{"UserIssuers", func(c *DualConfig) { c.UserIssuers = nil }},
		{"UserIssuers", func(c *DualConfig) { c.UserIssuers = []string{""} }},
		{"ServiceUserIssuers", func(c *DualConfig) { c.ServiceUserIssuers = map[string][]string{"stranger": {issuerA}} }},
		{"ServiceUserIssuers", func(c *DualConfig) { c.ServiceUserIssuers = map[string][]string{"backend": {}} }},
		{"Header", func(c *DualConfig) { c.Header = "Authorization" }},
		{"Header", func(c *DualConfig) { c.Header = "cookie" }},
		{"Header", func(c *DualConfig) { c.Header = "X User" }},
	}
	for _, tt := range tests {
		t.Run(tt.field, func(t *testing.T) {
			cfg := DualConfig{Service: fakeServiceValidator(), User: fakeUserValidator(),
				ServiceClientIDs: []string{"backend"}, UserIssuers: []string{issuerA}}
			tt.edit(&cfg)
			d, err := NewDualValidator(cfg)
			assert.Nil(t, d)
			require.ErrorIs(t, err, ErrConfig)
			assert.Contains(t, err.Error(), "DualConfig."+tt.field)
		})
	}
	_, err := DualMiddleware(nil, MiddlewareConfig{ResourceMetadataURL: testMetaURL})
	require.ErrorIs(t, err, ErrConfig)
	_, err = DualMiddleware(newDual(t, nil), MiddlewareConfig{})
	require.ErrorIs(t, err, ErrConfig)
}

// TestDualWithRealTokens runs the pair check with JWTs from two authtest
// identity providers: the service's token and the user's are each
// verified by their own validator.
func TestDualWithRealTokens(t *testing.T) {
	idpA := newIDP(t, nil, "ES256")
	idpB := newIDP(t, nil, "EdDSA")
	svcV := newValidator(t, idpA, nil, func(c *JWTConfig) { c.ClientIDs = []string{"backend-svc", "rogue-svc"} })
	userA := newValidator(t, idpA, nil, nil)
	userB := newValidator(t, idpB, nil, nil)
	users := ValidatorFunc(func(ctx context.Context, tok string) (*Principal, error) {
		p, errA := userA.Validate(ctx, tok)
		if errA == nil {
			return p, nil
		}
		if p, err := userB.Validate(ctx, tok); err == nil {
			return p, nil
		}
		return nil, errA
	})
	d, err := NewDualValidator(DualConfig{
		Service: svcV, User: users,
		ServiceClientIDs: []string{"backend-svc"},
		UserIssuers:      []string{idpA.Issuer()},
	})
	require.NoError(t, err)

	svcTok := idpA.MustMint(map[string]any{"sub": "backend-svc", "client_id": "backend-svc"})
	aliceTok := idpA.MustMint(map[string]any{"sub": "alice", "scope": "notes:read"})
	p, err := d.ValidatePair(t.Context(), svcTok, aliceTok)
	require.NoError(t, err)
	assert.Equal(t, "alice", p.Subject)
	assert.Equal(t, "backend-svc", p.Actor.Subject)

	bobTok := idpB.MustMint(map[string]any{"sub": "bob"})
	_, err = d.ValidatePair(t.Context(), svcTok, bobTok)
	require.ErrorIs(t, err, ErrInvalidToken)
	assert.Equal(t, descUserIssuer, AsError(err).Description)

	rogue := idpA.MustMint(map[string]any{"sub": "rogue", "client_id": "rogue-svc"})
	_, err = d.ValidatePair(t.Context(), rogue, aliceTok)
	assert.Equal(t, descServiceNotAllowed, AsError(err).Description)

	expired := idpA.MustMint(map[string]any{"sub": "alice", "exp": 1000})
	_, err = d.ValidatePair(t.Context(), svcTok, expired)
	require.ErrorIs(t, err, ErrExpired)
	for _, tok := range []string{svcTok, expired} {
		assert.NotContains(t, err.Error(), tok)
	}
}

func TestParseUserToken(t *testing.T) {
	tests := []struct {
		in, want string
		max      int
	}{
		{in: "abc.def-ghi_~+/==", want: "abc.def-ghi_~+/=="},
		{in: "Bearer abc", want: "abc"},
		{in: "BEARER    abc", want: "abc"},
		{in: "Bearerabc", want: "Bearerabc"},
		{in: ""},
		{in: "Bearer "},
		{in: "Bearer a b"},
		{in: "Basic abc"},
		{in: "a=b"},
		{in: "abc\x00"},
		{in: "abcdef", max: 5},
		{in: "Bearer abcdef", max: 5},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", tt.in), func(t *testing.T) {
			got, err := parseUserToken(tt.in, tt.max)
			if tt.want == "" {
				require.ErrorIs(t, err, ErrMalformedRequest)
				assert.Empty(t, got)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func FuzzParseUserToken(f *testing.F) {
	for _, s := range []string{"abc", "Bearer abc", "bearer  a.b.c", "Bearer", "Bearer=", "x y", "a==", "=a", "Bearer \t"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		tok, err := parseUserToken(v, 64)
		if err != nil {
			if !errors.Is(err, ErrMalformedRequest) && !errors.Is(err, ErrNoCredential) {
				t.Fatalf("unexpected error class: %v", err)
			}
			if len(v) >= 16 && strings.Contains(err.Error(), v) {
				t.Fatal("the error repeats the header value")
			}
			return
		}
		if tok == "" || len(tok) > 64 || !strings.HasSuffix(v, tok) || !oauthsyntax.IsB64Token(tok) {
			t.Fatalf("accepted %q from %q", tok, v)
		}
	})
}

func BenchmarkDualValidatePair(b *testing.B) {
	d, err := NewDualValidator(DualConfig{
		Service: fakeServiceValidator(), User: fakeUserValidator(),
		ServiceClientIDs: []string{"backend"}, UserIssuers: []string{issuerA},
	})
	require.NoError(b, err)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := d.ValidatePair(ctx, "svc-backend", "user-a-alice"); err != nil {
			b.Fatal(err)
		}
	}
}
