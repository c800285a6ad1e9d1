package tenancy

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/auth"
)

// Claim shapes with synthetic values, after the IdP token shapes the design
// lists (Entra v2, Auth0 with Organizations, a generic issuer).
func entraClaims() map[string]any {
	return map[string]any{
		"iss": "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0",
		"sub": "qzj3P5b1V9yYbq8y0v1m2n3o4p5q6r7s8t9u0v1w2x3",
		"scp": "Notes.Read Notes.Write",
		"tid": "72f988bf-86f1-41af-91ab-2d7cd011db47",
		"ver": "2.0",
	}
}

func auth0Claims() map[string]any {
	return map[string]any{
		"iss":    "https://example.us.auth0.com/",
		"sub":    "auth0|64b7f0c2e4a1b2c3d4e5f6a7",
		"aud":    []any{"https://notes.example.com/mcp", "https://example.us.auth0.com/userinfo"},
		"org_id": "org_9aB8cD7eF6gH5iJ4",
	}
}

func principal(claims map[string]any) *auth.Principal {
	sub, _ := claims["sub"].(string)
	return &auth.Principal{Subject: sub, Claims: auth.NewClaims(claims)}
}

func TestNewConfigErrors(t *testing.T) {
	fn := func(*auth.Principal) (string, error) { return "acme", nil }
	trusted := func(*auth.Principal) bool { return true }
	tests := []struct {
		name  string
		cfg   Config
		field string
	}{
		{"claim and func", Config{Claim: "tid", Func: fn}, "Config.Claim"},
		{"claim white space", Config{Claim: " tid"}, "Config.Claim"},
		{"claim control char", Config{Claim: "t\nid"}, "Config.Claim"},
		{"claim too long", Config{Claim: strings.Repeat("a", maxClaimPath+1)}, "Config.Claim"},
		{"bad allowed entry", Config{Allowed: []string{"acme", "a:b"}}, "Config.Allowed[1]"},
		{"empty allowed entry", Config{Allowed: []string{""}}, "Config.Allowed[0]"},
		{"narrowing without trusted", Config{Narrowing: Narrowing{Header: "Mcp-Tenant"}}, "Config.Narrowing.Trusted"},
		{"narrowing trusted without header", Config{Narrowing: Narrowing{Trusted: trusted}}, "Config.Narrowing.Header"},
		{"narrowing claim without header", Config{Narrowing: Narrowing{Claim: "orgs"}}, "Config.Narrowing.Header"},
		{"narrowing bad header", Config{Narrowing: Narrowing{Header: "Mcp Tenant", Trusted: trusted}}, "Config.Narrowing.Header"},
		{"narrowing authorization header", Config{Narrowing: Narrowing{Header: "authorization", Trusted: trusted}}, "Config.Narrowing.Header"},
		{"narrowing bad claim", Config{Narrowing: Narrowing{Header: "Mcp-Tenant", Trusted: trusted, Claim: "orgs "}}, "Config.Narrowing.Claim"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := New(tt.cfg)
			require.Error(t, err)
			assert.Nil(t, r)
			assert.ErrorIs(t, err, ErrConfig)
			assert.Contains(t, err.Error(), tt.field)
		})
	}
}

func TestNewDefaults(t *testing.T) {
	r, err := New(Config{})
	require.NoError(t, err)
	got, err := r.Resolve(principal(map[string]any{"tenant_id": "acme"}))
	require.NoError(t, err)
	assert.Equal(t, "acme", got)

	_, err = r.Resolve(principal(map[string]any{"tid": "acme"}))
	assert.ErrorIs(t, err, ErrNoTenant, "the default reads tenant_id only")

	var zero Resolver
	_, err = zero.Resolve(principal(map[string]any{"tid": "acme"}))
	assert.ErrorIs(t, err, ErrNoTenant, "the zero Resolver must fail closed")
}

func TestNewCopiesConfig(t *testing.T) {
	allowed := []string{"acme"}
	r, err := New(Config{Allowed: allowed})
	require.NoError(t, err)
	allowed[0] = "evil"
	_, err = r.Resolve(principal(map[string]any{"tenant_id": "evil"}))
	assert.ErrorIs(t, err, ErrTenantNotAllowed)
	got, err := r.Resolve(principal(map[string]any{"tenant_id": "acme"}))
	require.NoError(t, err)
	assert.Equal(t, "acme", got)
}

func TestResolve(t *testing.T) {
	errBoom := errors.New("directory unavailable")
	tests := []struct {
		name    string
		cfg     Config
		p       *auth.Principal
		want    string
		wantErr error
		reason  string
		status  int
	}{
		{name: "entra tid", cfg: Config{Claim: ClaimEntra}, p: principal(entraClaims()), want: "72f988bf-86f1-41af-91ab-2d7cd011db47"},
		{name: "auth0 org_id", cfg: Config{Claim: ClaimAuth0Org}, p: principal(auth0Claims()), want: "org_9aB8cD7eF6gH5iJ4"},
		{name: "generic", cfg: Config{Claim: ClaimTenantID}, p: principal(map[string]any{"tenant_id": "acme"}), want: "acme"},
		{name: "nested path", cfg: Config{Claim: "ext.tenant.id"}, p: principal(map[string]any{"ext": map[string]any{"tenant": map[string]any{"id": "acme"}}}), want: "acme"},
		{name: "namespaced claim", cfg: Config{Claim: "https://example.com/tenant"}, p: principal(map[string]any{"https://example.com/tenant": "acme"}), want: "acme"},
		{name: "auth0 without organization", cfg: Config{Claim: ClaimAuth0Org}, p: principal(map[string]any{"sub": "auth0|x"}), wantErr: ErrNoTenant, reason: ReasonTenantRequired, status: 403},
		{name: "missing claim", cfg: Config{Claim: ClaimEntra}, p: principal(auth0Claims()), wantErr: ErrNoTenant, reason: ReasonTenantRequired, status: 403},
		{name: "empty claim", cfg: Config{}, p: principal(map[string]any{"tenant_id": ""}), wantErr: ErrNoTenant, reason: ReasonTenantRequired, status: 403},
		{name: "null claim", cfg: Config{}, p: principal(map[string]any{"tenant_id": nil}), wantErr: ErrNoTenant, reason: ReasonTenantRequired, status: 403},
		{name: "no claims at all", cfg: Config{}, p: &auth.Principal{Subject: "x"}, wantErr: ErrNoTenant, reason: ReasonTenantRequired, status: 403},
		{name: "nil principal", cfg: Config{}, p: nil, wantErr: ErrNoPrincipal, reason: ReasonNoPrincipal, status: 401},
		{name: "number claim", cfg: Config{}, p: principal(map[string]any{"tenant_id": float64(42)}), wantErr: ErrInvalidTenant, reason: ReasonInvalidTenant, status: 403},
		{name: "array claim", cfg: Config{}, p: principal(map[string]any{"tenant_id": []any{"a", "b"}}), wantErr: ErrInvalidTenant, reason: ReasonInvalidTenant, status: 403},
		{name: "object claim", cfg: Config{}, p: principal(map[string]any{"tenant_id": map[string]any{"id": "a"}}), wantErr: ErrInvalidTenant, reason: ReasonInvalidTenant, status: 403},
		{name: "bool claim", cfg: Config{}, p: principal(map[string]any{"tenant_id": true}), wantErr: ErrInvalidTenant, reason: ReasonInvalidTenant, status: 403},
		{name: "colon rejected not stripped", cfg: Config{}, p: principal(map[string]any{"tenant_id": "acme:evil"}), wantErr: ErrInvalidTenant, reason: ReasonInvalidTenant, status: 403},
		{name: "traversal rejected", cfg: Config{}, p: principal(map[string]any{"tenant_id": ".."}), wantErr: ErrInvalidTenant, reason: ReasonInvalidTenant, status: 403},
		{name: "white space rejected not trimmed", cfg: Config{}, p: principal(map[string]any{"tenant_id": " acme"}), wantErr: ErrInvalidTenant, reason: ReasonInvalidTenant, status: 403},
		{name: "too long", cfg: Config{}, p: principal(map[string]any{"tenant_id": strings.Repeat("a", 129)}), wantErr: ErrInvalidTenant, reason: ReasonInvalidTenant, status: 403},
		{name: "allowed", cfg: Config{Allowed: []string{"acme", "globex"}}, p: principal(map[string]any{"tenant_id": "globex"}), want: "globex"},
		{name: "not allowed", cfg: Config{Allowed: []string{"acme", "globex"}}, p: principal(map[string]any{"tenant_id": "initech"}), wantErr: ErrTenantNotAllowed, reason: ReasonTenantNotAllowed, status: 403},
		{name: "allow-list is case sensitive", cfg: Config{Allowed: []string{"acme"}}, p: principal(map[string]any{"tenant_id": "ACME"}), wantErr: ErrTenantNotAllowed, reason: ReasonTenantNotAllowed, status: 403},
		{name: "optional and missing", cfg: Config{AllowMissingTenant: true}, p: principal(map[string]any{"sub": "x"}), want: ""},
		{name: "optional still rejects invalid", cfg: Config{AllowMissingTenant: true}, p: principal(map[string]any{"tenant_id": "a/b"}), wantErr: ErrInvalidTenant, reason: ReasonInvalidTenant, status: 403},
		{name: "optional still applies allow-list", cfg: Config{AllowMissingTenant: true, Allowed: []string{"acme"}}, p: principal(map[string]any{"tenant_id": "x"}), wantErr: ErrTenantNotAllowed, reason: ReasonTenantNotAllowed, status: 403},
		{
			name: "func from issuer",
			cfg: Config{Func: func(p *auth.Principal) (string, error) {
				rest, ok := strings.CutPrefix(p.Issuer, "https://login.example.com/")
				if !ok {
					return "", nil
				}
				return strings.TrimSuffix(rest, "/v2.0"), nil
			}},
			p:    &auth.Principal{Issuer: "https://login.example.com/acme/v2.0"},
			want: "acme",
		},
		{name: "func empty", cfg: Config{Func: func(*auth.Principal) (string, error) { return "", nil }}, p: &auth.Principal{}, wantErr: ErrNoTenant, reason: ReasonTenantRequired, status: 403},
		{name: "func empty optional", cfg: Config{AllowMissingTenant: true, Func: func(*auth.Principal) (string, error) { return "", nil }}, p: &auth.Principal{}, want: ""},
		{name: "func error", cfg: Config{Func: func(*auth.Principal) (string, error) { return "", errBoom }}, p: &auth.Principal{}, wantErr: errBoom, reason: ReasonTenantRequired, status: 403},
		{name: "func error is not missing", cfg: Config{AllowMissingTenant: true, Func: func(*auth.Principal) (string, error) { return "", errBoom }}, p: &auth.Principal{}, wantErr: ErrNoTenant, reason: ReasonTenantRequired, status: 403},
		{name: "func classified error", cfg: Config{Func: func(*auth.Principal) (string, error) { return "", ErrTenantNotAllowed }}, p: &auth.Principal{}, wantErr: ErrTenantNotAllowed, reason: ReasonTenantNotAllowed, status: 403},
		{name: "func invalid result", cfg: Config{Func: func(*auth.Principal) (string, error) { return "a b", nil }}, p: &auth.Principal{}, wantErr: ErrInvalidTenant, reason: ReasonInvalidTenant, status: 403},
		{name: "func not allowed", cfg: Config{Allowed: []string{"acme"}, Func: func(*auth.Principal) (string, error) { return "other", nil }}, p: &auth.Principal{}, wantErr: ErrTenantNotAllowed, reason: ReasonTenantNotAllowed, status: 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := New(tt.cfg)
			require.NoError(t, err)
			got, err := r.Resolve(tt.p)
			if tt.wantErr == nil {
				require.NoError(t, err)
				assert.Equal(t, tt.want, got)
				return
			}
			require.Error(t, err)
			assert.Empty(t, got)
			assert.ErrorIs(t, err, tt.wantErr)
			var e *Error
			require.ErrorAs(t, err, &e)
			assert.Equal(t, tt.reason, e.Reason)
			assert.Equal(t, tt.status, e.Status)
			assert.NotEmpty(t, e.Description)
		})
	}
}

func TestResolveErrorDoesNotEchoValue(t *testing.T) {
	r, err := New(Config{})
	require.NoError(t, err)
	bad := "evil\r\nX-Injected: yes"
	_, err = r.Resolve(principal(map[string]any{"tenant_id": bad}))
	require.ErrorIs(t, err, ErrInvalidTenant)
	assert.NotContains(t, err.Error(), "evil")
	var e *Error
	require.ErrorAs(t, err, &e)
	assert.NotContains(t, e.Description, "evil")
}

func TestNarrow(t *testing.T) {
	svc := &auth.Principal{Issuer: "https://idp.example.com", Subject: "svc-reports", ClientID: "reports"}
	rogue := &auth.Principal{Issuer: "https://idp.example.com", Subject: "svc-rogue", ClientID: "rogue"}
	trusted := func(a *auth.Principal) bool {
		return a.Issuer == "https://idp.example.com" && a.ClientID == "reports"
	}
	user := func(actor *auth.Principal, claims map[string]any) *auth.Principal {
		p := principal(claims)
		p.Actor = actor
		return p
	}
	base := Config{Narrowing: Narrowing{Header: "Mcp-Tenant", Trusted: trusted, Claim: "orgs"}}
	tests := []struct {
		name      string
		cfg       Config
		p         *auth.Principal
		requested string
		want      string
		wantErr   error
		reason    string
	}{
		{name: "pick a granted org", cfg: base, p: user(svc, map[string]any{"tenant_id": "acme", "orgs": []any{"acme", "globex"}}), requested: "globex", want: "globex"},
		{name: "repeat the resolved tenant", cfg: base, p: user(svc, map[string]any{"tenant_id": "acme"}), requested: "acme", want: "acme"},
		{name: "orgs as one string", cfg: base, p: user(svc, map[string]any{"orgs": "globex"}), requested: "globex", want: "globex"},
		{name: "no resolved tenant but granted", cfg: base, p: user(svc, map[string]any{"orgs": []any{"globex"}}), requested: "globex", want: "globex"},
		{name: "widening refused", cfg: base, p: user(svc, map[string]any{"tenant_id": "acme", "orgs": []any{"acme"}}), requested: "initech", wantErr: ErrNarrowingRefused, reason: ReasonNarrowingRefused},
		{name: "no grant claim", cfg: Config{Narrowing: Narrowing{Header: "Mcp-Tenant", Trusted: trusted}}, p: user(svc, map[string]any{"tenant_id": "acme", "orgs": []any{"globex"}}), requested: "globex", wantErr: ErrNarrowingRefused, reason: ReasonNarrowingRefused},
		{name: "malformed grant claim", cfg: base, p: user(svc, map[string]any{"tenant_id": "acme", "orgs": []any{"globex", 7}}), requested: "globex", wantErr: ErrNarrowingRefused, reason: ReasonNarrowingRefused},
		{name: "untrusted actor", cfg: base, p: user(rogue, map[string]any{"tenant_id": "acme", "orgs": []any{"globex"}}), requested: "globex", wantErr: ErrNarrowingRefused, reason: ReasonNarrowingRefused},
		{name: "untrusted even for own tenant", cfg: base, p: user(rogue, map[string]any{"tenant_id": "acme"}), requested: "acme", wantErr: ErrNarrowingRefused, reason: ReasonNarrowingRefused},
		{name: "no actor", cfg: base, p: principal(map[string]any{"tenant_id": "acme", "orgs": []any{"globex"}}), requested: "globex", wantErr: ErrNarrowingRefused, reason: ReasonNarrowingRefused},
		{name: "narrowing off", cfg: Config{}, p: user(svc, map[string]any{"tenant_id": "acme"}), requested: "acme", wantErr: ErrNarrowingRefused, reason: ReasonNarrowingRefused},
		{name: "invalid requested", cfg: base, p: user(svc, map[string]any{"tenant_id": "acme", "orgs": []any{"a:b"}}), requested: "a:b", wantErr: ErrInvalidTenant, reason: ReasonInvalidTenant},
		{name: "empty requested", cfg: base, p: user(svc, map[string]any{"tenant_id": "acme"}), requested: "", wantErr: ErrInvalidTenant, reason: ReasonInvalidTenant},
		{name: "invalid resolved tenant still fails", cfg: base, p: user(svc, map[string]any{"tenant_id": "a/b", "orgs": []any{"globex"}}), requested: "globex", wantErr: ErrInvalidTenant, reason: ReasonInvalidTenant},
		{name: "allow-list applies", cfg: Config{Allowed: []string{"acme"}, Narrowing: base.Narrowing}, p: user(svc, map[string]any{"orgs": []any{"globex"}}), requested: "globex", wantErr: ErrTenantNotAllowed, reason: ReasonTenantNotAllowed},
		{name: "nil principal", cfg: base, p: nil, requested: "acme", wantErr: ErrNoPrincipal, reason: ReasonNoPrincipal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := New(tt.cfg)
			require.NoError(t, err)
			got, err := r.Narrow(tt.p, tt.requested)
			if tt.wantErr == nil {
				require.NoError(t, err)
				assert.Equal(t, tt.want, got)
				return
			}
			require.Error(t, err)
			assert.Empty(t, got)
			assert.ErrorIs(t, err, tt.wantErr)
			var e *Error
			require.ErrorAs(t, err, &e)
			assert.Equal(t, tt.reason, e.Reason)
		})
	}
}

func TestErrorStatusAndText(t *testing.T) {
	e := errTenantRequired(ErrNoTenant)
	assert.Equal(t, http.StatusForbidden, e.Status)
	assert.Equal(t, ErrNoTenant.Error(), e.Error())
	assert.Equal(t, "tenancy: fixed", (&Error{Description: "fixed"}).Error())
}

// FuzzResolve feeds arbitrary claim values through Resolve: the result is
// either exactly the claim (when it is a valid ID) or an error — never a
// repaired value.
func FuzzResolve(f *testing.F) {
	for _, s := range []string{"acme", "", " acme", "a:b", "ACME", "org_1", strings.Repeat("x", 200)} {
		f.Add(s)
	}
	r, err := New(Config{Claim: ClaimAuth0Org})
	require.NoError(f, err)
	f.Fuzz(func(t *testing.T, v string) {
		got, err := r.Resolve(principal(map[string]any{"org_id": v}))
		if err != nil {
			if got != "" {
				t.Fatalf("error with a tenant %q", got)
			}
			var e *Error
			if !errors.As(err, &e) || e.Status != http.StatusForbidden {
				t.Fatalf("error %v is not a 403 *Error", err)
			}
			return
		}
		if got != v || ValidateID(got) != nil {
			t.Fatalf("Resolve(%q) = %q", v, got)
		}
	})
}
