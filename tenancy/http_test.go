package tenancy

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/auth"
)

// withPrincipal stands in for the auth middleware in unit tests.
func withPrincipal(p *auth.Principal, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p != nil {
			r = r.WithContext(auth.NewContext(r.Context(), p))
		}
		next.ServeHTTP(w, r)
	})
}

type rpcBody struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Error   struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Data    struct {
			Reason string `json:"reason"`
		} `json:"data"`
	} `json:"error"`
}

func TestHandler(t *testing.T) {
	svc := &auth.Principal{Issuer: "https://idp.example.com", ClientID: "reports"}
	narrowing := Narrowing{
		Header:  "mcp-tenant",
		Trusted: func(a *auth.Principal) bool { return a.ClientID == "reports" },
		Claim:   "orgs",
	}
	dual := func(claims map[string]any) *auth.Principal {
		p := principal(claims)
		p.Actor = svc
		return p
	}
	tests := []struct {
		name    string
		cfg     Config
		p       *auth.Principal
		headers map[string][]string
		tenant  string // expected in the next handler's context; "" for none
		status  int    // 0: next is called
		reason  string
		message string
	}{
		{name: "entra tenant", cfg: Config{Claim: ClaimEntra}, p: principal(entraClaims()), tenant: "72f988bf-86f1-41af-91ab-2d7cd011db47"},
		{name: "no principal fails closed", cfg: Config{}, p: nil, status: 401, reason: ReasonNoPrincipal, message: descNoPrincipal},
		{name: "tenant required", cfg: Config{Claim: ClaimAuth0Org}, p: principal(map[string]any{"sub": "auth0|x"}), status: 403, reason: ReasonTenantRequired, message: descTenantRequired},
		{name: "optional tenant", cfg: Config{AllowMissingTenant: true}, p: principal(map[string]any{"sub": "x"}), tenant: ""},
		{name: "invalid tenant", cfg: Config{}, p: principal(map[string]any{"tenant_id": "../etc"}), status: 403, reason: ReasonInvalidTenant, message: descInvalidTenant},
		{name: "not allowed", cfg: Config{Allowed: []string{"acme"}}, p: principal(map[string]any{"tenant_id": "globex"}), status: 403, reason: ReasonTenantNotAllowed, message: descTenantNotAllowed},
		{
			name: "unconfigured header is never read", cfg: Config{},
			p:       principal(map[string]any{"tenant_id": "acme"}),
			headers: map[string][]string{"Mcp-Tenant": {"globex"}, "X-Tenant-Id": {"globex"}, "Tenant-Id": {"globex"}},
			tenant:  "acme",
		},
		{name: "narrowed by trusted service", cfg: Config{Narrowing: narrowing}, p: dual(map[string]any{"tenant_id": "acme", "orgs": []any{"acme", "globex"}}), headers: map[string][]string{"Mcp-Tenant": {"globex"}}, tenant: "globex"},
		{name: "no header keeps the claim tenant", cfg: Config{Narrowing: narrowing}, p: dual(map[string]any{"tenant_id": "acme", "orgs": []any{"globex"}}), tenant: "acme"},
		{name: "header from plain user refused", cfg: Config{Narrowing: narrowing}, p: principal(map[string]any{"tenant_id": "acme", "orgs": []any{"globex"}}), headers: map[string][]string{"Mcp-Tenant": {"globex"}}, status: 403, reason: ReasonNarrowingRefused, message: descNarrowingRefused},
		{name: "widening refused", cfg: Config{Narrowing: narrowing}, p: dual(map[string]any{"tenant_id": "acme"}), headers: map[string][]string{"Mcp-Tenant": {"initech"}}, status: 403, reason: ReasonNarrowingRefused, message: descNarrowingRefused},
		{name: "header twice", cfg: Config{Narrowing: narrowing}, p: dual(map[string]any{"tenant_id": "acme", "orgs": []any{"globex"}}), headers: map[string][]string{"Mcp-Tenant": {"globex", "acme"}}, status: 403, reason: ReasonInvalidTenant, message: descInvalidRequested},
		{name: "empty header", cfg: Config{Narrowing: narrowing}, p: dual(map[string]any{"tenant_id": "acme"}), headers: map[string][]string{"Mcp-Tenant": {""}}, status: 403, reason: ReasonInvalidTenant, message: descInvalidRequested},
		{name: "invalid header", cfg: Config{Narrowing: narrowing}, p: dual(map[string]any{"tenant_id": "acme"}), headers: map[string][]string{"Mcp-Tenant": {"acme:x"}}, status: 403, reason: ReasonInvalidTenant, message: descInvalidRequested},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var rejected []*Error
			cfg := tt.cfg
			cfg.OnError = func(_ *http.Request, err *Error) { rejected = append(rejected, err) }
			r, err := New(cfg)
			require.NoError(t, err)

			called := false
			var gotTenant string
			var gotOK bool
			next := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
				called = true
				gotTenant, gotOK = FromContext(req.Context())
				w.WriteHeader(http.StatusNoContent)
			})
			req := httptest.NewRequest(http.MethodPost, "/mcp", nil)
			for k, v := range tt.headers {
				req.Header[k] = v
			}
			origCtx := req.Context()
			rec := httptest.NewRecorder()
			withPrincipal(tt.p, r.Middleware(next)).ServeHTTP(rec, req)
			assert.Equal(t, origCtx, req.Context(), "the incoming request must not be modified")

			if tt.status == 0 {
				require.True(t, called, "next was not called: %d %s", rec.Code, rec.Body)
				assert.Equal(t, http.StatusNoContent, rec.Code)
				assert.Equal(t, tt.tenant, gotTenant)
				assert.Equal(t, tt.tenant != "", gotOK)
				assert.Empty(t, rejected)
				return
			}
			assert.False(t, called, "next must not run on rejection")
			assert.Equal(t, tt.status, rec.Code)
			assert.Equal(t, "application/json", rec.Header().Get("Content-Type"))
			assert.Equal(t, "no-store", rec.Header().Get("Cache-Control"))
			var body rpcBody
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body), "body %s", rec.Body)
			assert.Equal(t, "2.0", body.JSONRPC)
			assert.Equal(t, "null", string(body.ID))
			assert.Equal(t, tt.message, body.Error.Message)
			assert.Equal(t, tt.reason, body.Error.Data.Reason)
			if tt.status == http.StatusUnauthorized {
				assert.Equal(t, CodeUnauthorized, body.Error.Code)
				assert.Equal(t, "Bearer", rec.Header().Get("WWW-Authenticate"))
			} else {
				assert.Equal(t, CodeForbidden, body.Error.Code)
				assert.Empty(t, rec.Header().Get("WWW-Authenticate"))
			}
			for _, h := range tt.headers {
				for _, v := range h {
					if v != "" {
						assert.NotContains(t, rec.Body.String(), v, "the body must not echo request values")
					}
				}
			}
			require.Len(t, rejected, 1)
			assert.Equal(t, tt.reason, rejected[0].Reason)
			assert.Equal(t, tt.status, rejected[0].Status)
			assert.NotNil(t, rejected[0].Err, "OnError gets the internal cause")
		})
	}
}

func TestHandlerReplacesEarlierTenant(t *testing.T) {
	for name, tt := range map[string]struct {
		claims map[string]any
		want   string
	}{
		"replaced": {map[string]any{"tenant_id": "acme"}, "acme"},
		"cleared":  {map[string]any{"sub": "x"}, ""},
	} {
		t.Run(name, func(t *testing.T) {
			r, err := New(Config{AllowMissingTenant: true})
			require.NoError(t, err)
			var got string
			var ok bool
			h := r.Middleware(http.HandlerFunc(func(_ http.ResponseWriter, req *http.Request) {
				got, ok = FromContext(req.Context())
			}))
			req := httptest.NewRequest(http.MethodPost, "/mcp", nil)
			ctx := NewContext(auth.NewContext(req.Context(), principal(tt.claims)), "stale")
			h.ServeHTTP(httptest.NewRecorder(), req.WithContext(ctx))
			assert.Equal(t, tt.want, got)
			assert.Equal(t, tt.want != "", ok)
		})
	}
}

func TestWriteErrorUnknownErrorIs403(t *testing.T) {
	rec := httptest.NewRecorder()
	WriteError(rec, assert.AnError)
	assert.Equal(t, http.StatusForbidden, rec.Code)
	var body rpcBody
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body))
	assert.Equal(t, descTenantRequired, body.Error.Message)
	assert.NotContains(t, rec.Body.String(), assert.AnError.Error(), "internal error text must not reach the client")

	rec = httptest.NewRecorder()
	WriteError(rec, &Error{Status: http.StatusTeapot, Reason: "x", Description: "y"})
	assert.Equal(t, http.StatusForbidden, rec.Code, "statuses other than 401 collapse to 403")
}

func TestHandlerConcurrent(t *testing.T) {
	r, err := New(Config{})
	require.NoError(t, err)
	h := r.Middleware(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		tenant, _ := FromContext(req.Context())
		_, _ = w.Write([]byte(tenant))
	}))
	var wg sync.WaitGroup
	for i := range 64 {
		wg.Go(func() {
			want := []string{"acme", "globex", "initech", "umbrella"}[i%4]
			req := httptest.NewRequest(http.MethodPost, "/mcp", nil)
			req = req.WithContext(auth.NewContext(req.Context(), principal(map[string]any{"tenant_id": want})))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			assert.Equal(t, want, rec.Body.String())
		})
	}
	wg.Wait()
}
