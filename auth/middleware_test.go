package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const testMetaURL = "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"

// fakeValidator accepts "good-<sub>" tokens with scopes from a table and
// fails other tokens with the error named by the token.
func fakeValidator() Validator {
	return ValidatorFunc(func(_ context.Context, tok string) (*Principal, error) {
		switch {
		case strings.HasPrefix(tok, "good-"):
			return &Principal{Subject: strings.TrimPrefix(tok, "good-"), Issuer: "https://idp.example.com", Scopes: []string{"notes:read"}}, nil
		case tok == "down":
			return nil, Unavailable("token validation is temporarily unavailable", fmt.Errorf("%w: jwks fetch failed", ErrUnavailable))
		case tok == "tokq7exp":
			return nil, InvalidToken("the access token expired", ErrExpired)
		case tok == "plainerr":
			return nil, errors.New("something internal " + tok)
		case tok == "nilnil":
			return nil, nil
		}
		return nil, InvalidToken("the access token is invalid", fmt.Errorf("%w: bad signature", ErrInvalidToken))
	})
}

func TestMiddleware(t *testing.T) {
	var seen *Principal
	var seenCred Credential
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen, _ = FromContext(r.Context())
		seenCred, _ = CredentialFromContext(r.Context())
		w.WriteHeader(http.StatusTeapot)
	})
	var hookErrs []*Error
	mw, err := Middleware(fakeValidator(), MiddlewareConfig{
		ResourceMetadataURL: testMetaURL,
		OnError:             func(_ *http.Request, e *Error) { hookErrs = append(hookErrs, e) },
	})
	require.NoError(t, err)
	h := mw(next)

	tests := []struct {
		name       string
		auth       []string
		wantStatus int
		wantChal   string // exact WWW-Authenticate, "" for none
		wantCode   string
	}{
		{name: "valid", auth: []string{"Bearer good-alice"}, wantStatus: http.StatusTeapot},
		{name: "no credential", wantStatus: 401,
			wantChal: `Bearer resource_metadata="` + testMetaURL + `"`, wantCode: "unauthorized"},
		{name: "other scheme", auth: []string{"Basic Zm9vOmJhcg=="}, wantStatus: 401,
			wantChal: `Bearer resource_metadata="` + testMetaURL + `"`, wantCode: "unauthorized"},
		{name: "invalid token", auth: []string{"Bearer forged"}, wantStatus: 401,
			wantChal: `Bearer resource_metadata="` + testMetaURL + `", error="invalid_token", error_description="the access token is invalid"`, wantCode: "invalid_token"},
		{name: "expired token", auth: []string{"Bearer tokq7exp"}, wantStatus: 401,
			wantChal: `Bearer resource_metadata="` + testMetaURL + `", error="invalid_token", error_description="the access token expired"`, wantCode: "invalid_token"},
		{name: "plain error fails closed", auth: []string{"Bearer plainerr"}, wantStatus: 401, wantCode: "invalid_token",
			wantChal: `Bearer resource_metadata="` + testMetaURL + `", error="invalid_token", error_description="the access token is invalid"`},
		{name: "nil principal fails closed", auth: []string{"Bearer nilnil"}, wantStatus: 401, wantCode: "invalid_token",
			wantChal: `Bearer resource_metadata="` + testMetaURL + `", error="invalid_token", error_description="the access token is invalid"`},
		{name: "two headers", auth: []string{"Bearer good-a", "Bearer good-b"}, wantStatus: 400, wantCode: "invalid_request",
			wantChal: `Bearer resource_metadata="` + testMetaURL + `", error="invalid_request", error_description="malformed bearer request"`},
		{name: "dependency down", auth: []string{"Bearer down"}, wantStatus: 503, wantCode: "temporarily_unavailable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			seen, seenCred, hookErrs = nil, Credential{}, nil
			r := httptest.NewRequest(http.MethodPost, "/mcp", strings.NewReader("{}"))
			for _, a := range tt.auth {
				r.Header.Add("Authorization", a)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			assert.Equal(t, tt.wantStatus, rec.Code)
			assert.Equal(t, tt.wantChal, rec.Header().Get("WWW-Authenticate"))
			_, inCtx := FromContext(r.Context())
			assert.False(t, inCtx, "the incoming request must not be modified")
			if tt.wantStatus == http.StatusTeapot {
				require.NotNil(t, seen)
				assert.Equal(t, "alice", seen.Subject)
				assert.Equal(t, "good-alice", seenCred.Reveal())
				assert.Empty(t, hookErrs)
				return
			}
			assert.Nil(t, seen, "next must not run")
			require.Len(t, hookErrs, 1)
			var body map[string]string
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body))
			assert.Equal(t, tt.wantCode, body["error"])
			for _, a := range tt.auth {
				tok := a[strings.IndexByte(a, ' ')+1:]
				assert.NotContains(t, rec.Body.String(), tok)
				assert.NotContains(t, rec.Header().Get("WWW-Authenticate"), tok)
				assert.NotContains(t, hookErrs[0].Description, tok)
			}
			if tt.wantStatus == 503 {
				assert.Equal(t, "5", rec.Header().Get("Retry-After"))
			}
		})
	}
}

func TestMiddlewareRequiredScopes(t *testing.T) {
	mw, err := Middleware(fakeValidator(), MiddlewareConfig{ResourceMetadataURL: testMetaURL, RequiredScopes: []string{"notes:read", "notes:write"}})
	require.NoError(t, err)
	called := false
	h := mw(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { called = true }))
	r := httptest.NewRequest(http.MethodPost, "/mcp", nil)
	r.Header.Set("Authorization", "Bearer good-bob")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	assert.False(t, called)
	assert.Equal(t, http.StatusForbidden, rec.Code)
	assert.Equal(t, `Bearer resource_metadata="`+testMetaURL+`", error="insufficient_scope", error_description="the token lacks a required scope", scope="notes:write"`,
		rec.Header().Get("WWW-Authenticate"))
}

func TestMiddlewareConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		v    Validator
		cfg  MiddlewareConfig
		want string
	}{
		{name: "nil validator", cfg: MiddlewareConfig{ResourceMetadataURL: testMetaURL}, want: "validator is nil"},
		{name: "no metadata url", v: fakeValidator(), want: "ResourceMetadataURL"},
		{name: "relative metadata url", v: fakeValidator(), cfg: MiddlewareConfig{ResourceMetadataURL: "/.well-known/x"}, want: "ResourceMetadataURL"},
		{name: "negative max", v: fakeValidator(), cfg: MiddlewareConfig{ResourceMetadataURL: testMetaURL, MaxTokenBytes: -1}, want: "MaxTokenBytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mw, err := Middleware(tt.v, tt.cfg)
			require.Error(t, err)
			assert.Nil(t, mw)
			assert.ErrorIs(t, err, ErrConfig)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestChallengeSanitises(t *testing.T) {
	c := challenge{
		ResourceMetadata: "https://x/\"evil\r\nSet-Cookie: a=b",
		Error:            "invalid_token",
		Description:      "bad \"quote\" and \\ backslash\nnewline",
		Scope:            []string{"a b", "c\"d", ""},
	}
	got := c.String()
	assert.Equal(t, `Bearer resource_metadata="https://x/evilSet-Cookie: a=b", error="invalid_token", error_description="bad quote and  backslashnewline", scope="ab cd"`, got)
	assert.NotContains(t, got, "\n")
	assert.Equal(t, "Bearer", challenge{}.String())
	// No error code: description and scope are not sent (RFC 6750 §3.1).
	assert.Equal(t, `Bearer realm="r"`, challenge{Realm: "r", Description: "d", Scope: []string{"s"}}.String())
}

func FuzzChallenge(f *testing.F) {
	f.Add("https://a/b", "invalid_token", "desc", "s1 s2")
	f.Fuzz(func(t *testing.T, meta, code, desc, scope string) {
		got := challenge{ResourceMetadata: meta, Error: code, Description: desc, Scope: strings.Split(scope, ",")}.String()
		if strings.Count(got, `"`)%2 != 0 {
			t.Fatalf("unbalanced quotes: %q", got)
		}
		for i := 0; i < len(got); i++ {
			if got[i] < 0x20 || got[i] > 0x7e || got[i] == '\\' {
				t.Fatalf("unsafe byte %q in %q", got[i], got)
			}
		}
		if len(got) > 6*maxChallengeParam {
			t.Fatalf("challenge too long: %d", len(got))
		}
	})
}

func TestAsError(t *testing.T) {
	tests := []struct {
		err    error
		status int
		code   string
		is     error
	}{
		{ErrNoCredential, 401, "", ErrNoCredential},
		{fmt.Errorf("%w: x", ErrMalformedRequest), 400, CodeInvalidRequest, ErrMalformedRequest},
		{fmt.Errorf("%w: x", ErrUnavailable), 503, "", ErrUnavailable},
		{fmt.Errorf("%w: x", ErrExpired), 401, CodeInvalidToken, ErrInvalidToken},
		{errors.New("anything"), 401, CodeInvalidToken, ErrInvalidToken},
		{InsufficientScope("a"), 403, CodeInsufficientScope, ErrInsufficientScope},
		{context.DeadlineExceeded, 401, CodeInvalidToken, ErrInvalidToken},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.err), func(t *testing.T) {
			e := AsError(tt.err)
			assert.Equal(t, tt.status, e.Status)
			assert.Equal(t, tt.code, e.Code)
			assert.ErrorIs(t, e, tt.is)
		})
	}
	assert.Nil(t, AsError(nil))
}

func TestWriteError(t *testing.T) {
	rec := httptest.NewRecorder()
	WriteError(rec, testMetaURL, InsufficientScope("notes:write"))
	assert.Equal(t, 403, rec.Code)
	assert.Contains(t, rec.Header().Get("WWW-Authenticate"), `scope="notes:write"`)
	b, _ := io.ReadAll(rec.Body)
	assert.JSONEq(t, `{"error":"insufficient_scope","error_description":"the token lacks a required scope"}`, string(b))
}

func TestCredentialRedacts(t *testing.T) {
	const secret = "eyJsecret.token.value"
	c := NewCredential(secret)
	for _, s := range []string{
		c.String(), c.GoString(), fmt.Sprint(c), fmt.Sprintf("%v %+v %#v %s %q %x %d", c, c, c, c, c, c, c),
		fmt.Sprintf("%v", struct{ C Credential }{c}), fmt.Sprintf("%+v", &struct{ C Credential }{c}),
	} {
		assert.NotContains(t, s, "secret")
	}
	j, err := json.Marshal(map[string]any{"c": c})
	require.NoError(t, err)
	assert.NotContains(t, string(j), "secret")
	assert.Equal(t, secret, c.Reveal())
	ctx := NewCredentialContext(context.Background(), c)
	got, ok := CredentialFromContext(ctx)
	require.True(t, ok)
	assert.Equal(t, secret, got.Reveal())
	_, ok = CredentialFromContext(NewCredentialContext(context.Background(), Credential{}))
	assert.False(t, ok)
}

func TestKeyForReusesOnlyTheSameToken(t *testing.T) {
	a, b := "token-a.payload.sig", "token-b.payload.sig"
	ctx := NewCredentialContext(context.Background(), NewCredential(a))
	assert.Equal(t, keyOf(a), keyFor(ctx, a), "the credential's digest is reused for its own token")
	assert.Equal(t, keyOf(b), keyFor(ctx, b), "another token is hashed afresh, never given a's digest")
	assert.Equal(t, keyOf(a), keyFor(context.Background(), a))
	assert.Equal(t, [32]byte(keyOf(a)), NewCredential(a).Digest())
	assert.Equal(t, [32]byte(keyOf("")), Credential{}.Digest())
}

func TestMiddlewareChallengeScope(t *testing.T) {
	mw, err := Middleware(fakeValidator(), MiddlewareConfig{ResourceMetadataURL: testMetaURL, ChallengeScope: []string{"notes:read"}})
	require.NoError(t, err)
	h := mw(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	for _, tt := range []struct{ auth, want string }{
		{"", `Bearer resource_metadata="` + testMetaURL + `", scope="notes:read"`},
		{"Bearer forged", `Bearer resource_metadata="` + testMetaURL + `", error="invalid_token", error_description="the access token is invalid", scope="notes:read"`},
	} {
		r := httptest.NewRequest(http.MethodPost, "/mcp", nil)
		if tt.auth != "" {
			r.Header.Set("Authorization", tt.auth)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		assert.Equal(t, http.StatusUnauthorized, rec.Code)
		assert.Equal(t, tt.want, rec.Header().Get("WWW-Authenticate"))
	}
}

// TestMiddlewareFormBodyToken: a credential in the Authorization header
// and an access_token in a form body is ambiguous (RFC 6750 §2): 400
// invalid_request, before the token is validated; a form token alone is
// an unsupported method, ignored like a query token; any other body
// reaches next byte for byte (issue 15.7).
func TestMiddlewareFormBodyToken(t *testing.T) {
	validated := 0
	v := ValidatorFunc(func(ctx context.Context, tok string) (*Principal, error) {
		validated++
		return fakeValidator().Validate(ctx, tok)
	})
	var gotBody string
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		gotBody = string(b)
		w.WriteHeader(http.StatusTeapot)
	})
	const form = "application/x-www-form-urlencoded"
	meta := `Bearer resource_metadata="` + testMetaURL + `"`
	tests := []struct {
		name, auth, user, ct, body string
		wantStatus                 int
		wantChal                   string
		validates                  bool
	}{
		{name: "header and form token", auth: "Bearer good-alice", ct: form, body: "access_token=good-alice",
			wantStatus: 400, wantChal: meta + `, error="invalid_request", error_description="malformed bearer request"`},
		{name: "header and escaped form token", auth: "Bearer good-alice", ct: form + "; charset=utf-8", body: "x=1;access%5Ftoken=good-bob",
			wantStatus: 400, wantChal: meta + `, error="invalid_request", error_description="malformed bearer request"`},
		{name: "header and oversized form", auth: "Bearer good-alice", ct: form, body: strings.Repeat("x", maxFormScan+1),
			wantStatus: 400, wantChal: meta + `, error="invalid_request", error_description="malformed bearer request"`},
		{name: "form token alone is no credential", ct: form, body: "access_token=good-alice",
			wantStatus: 401, wantChal: meta},
		{name: "header and form without token", auth: "Bearer good-alice", ct: form, body: "a=1",
			wantStatus: http.StatusTeapot, validates: true},
		{name: "header and JSON naming access_token", auth: "Bearer good-alice", ct: "application/json", body: `{"access_token":"good-bob"}`,
			wantStatus: http.StatusTeapot, validates: true},
	}
	for _, dual := range []bool{false, true} {
		var mw func(http.Handler) http.Handler
		var err error
		if dual {
			mw, err = DualMiddleware(dualFor(t, v), MiddlewareConfig{ResourceMetadataURL: testMetaURL})
		} else {
			mw, err = Middleware(v, MiddlewareConfig{ResourceMetadataURL: testMetaURL})
		}
		require.NoError(t, err)
		h := mw(next)
		for _, tt := range tests {
			t.Run(fmt.Sprintf("dual=%v/%s", dual, tt.name), func(t *testing.T) {
				validated, gotBody = 0, ""
				r := httptest.NewRequest(http.MethodPost, "/mcp", strings.NewReader(tt.body))
				r.Header.Set("Content-Type", tt.ct)
				if tt.auth != "" {
					r.Header.Set("Authorization", tt.auth)
				}
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				assert.Equal(t, tt.wantStatus, w.Code)
				assert.Equal(t, tt.wantChal, w.Header().Get("WWW-Authenticate"))
				assert.Equal(t, tt.validates, validated > 0, "validated")
				if tt.wantStatus == http.StatusTeapot {
					assert.Equal(t, tt.body, gotBody, "the body reaches next unchanged")
				}
				assert.NotContains(t, w.Body.String(), "good-")
			})
		}
	}
}

// dualFor is a dual-token validator whose direct calls go to v.
func dualFor(t *testing.T, v Validator) *DualValidator {
	t.Helper()
	d, err := NewDualValidator(DualConfig{Service: v, User: v, ServiceClientIDs: []string{"svc"}, UserIssuers: []string{"https://idp.example.com"}, Direct: v})
	require.NoError(t, err)
	return d
}
