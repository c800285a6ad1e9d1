package authz_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/authz"
	"github.com/mcpguard/mcpguard/tenancy"
)

func principal(scopes ...string) *auth.Principal {
	return &auth.Principal{Subject: "alice", Scopes: scopes}
}

// annotations is a ToolLookup over a fixed set of tools.
func annotations(readOnly map[string]bool) authz.ToolLookup {
	known := make(map[string]mcp.ToolAnnotation, len(readOnly))
	for name, ro := range readOnly {
		known[name] = mcp.ToolAnnotation{ReadOnlyHint: mcp.ToBoolPtr(ro)}
	}
	return func(name string) (mcp.ToolAnnotation, bool) {
		a, ok := known[name]
		return a, ok
	}
}

type checkCase struct {
	name    string
	p       *auth.Principal
	tenant  string
	method  string
	target  string
	allowed bool
	reason  authz.Reason
	missing []string
	anyOf   []string
}

func runChecks(t *testing.T, pl *authz.Policy, tests []checkCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			if tt.tenant != "" {
				ctx = tenancy.NewContext(ctx, tt.tenant)
			}
			method := tt.method
			if method == "" {
				method = authz.MethodToolsCall
			}
			d := pl.Check(ctx, tt.p, method, tt.target)
			assert.Equal(t, tt.allowed, d.Allowed, "allowed")
			assert.Equal(t, tt.reason, d.Reason, "reason %s", d.Reason)
			assert.Equal(t, tt.missing, d.Missing, "missing")
			assert.Equal(t, tt.anyOf, d.AnyOf, "anyOf")
			if tt.allowed {
				assert.NoError(t, d.Err())
			} else {
				assert.ErrorIs(t, d.Err(), authz.ErrDenied)
			}
		})
	}
}

func TestCheckRules(t *testing.T) {
	pl, err := authz.New(authz.Config{
		ToolRules: map[string]authz.Rule{
			"list":     {AllOf: []string{"notes:read"}},
			"edit":     {AllOf: []string{"notes:read", "notes:write"}},
			"export":   {AnyOf: []string{"notes:export", "notes:admin"}},
			"share":    {AllOf: []string{"notes:write"}, AnyOf: []string{"share:internal", "share:public"}},
			"ping":     {Authenticated: true},
			"disabled": {},
		},
	})
	require.NoError(t, err)
	runChecks(t, pl, []checkCase{
		{name: "all-of met", p: principal("notes:read"), target: "list", allowed: true, reason: authz.ReasonAllowed},
		{name: "all-of one missing", p: principal("notes:read"), target: "edit", reason: authz.ReasonInsufficientScope, missing: []string{"notes:write"}},
		{name: "all-of all missing", p: principal(), target: "edit", reason: authz.ReasonInsufficientScope, missing: []string{"notes:read", "notes:write"}},
		{name: "all-of met with extra scopes", p: principal("x", "notes:write", "notes:read"), target: "edit", allowed: true, reason: authz.ReasonAllowed},
		{name: "any-of first", p: principal("notes:export"), target: "export", allowed: true, reason: authz.ReasonAllowed},
		{name: "any-of second", p: principal("notes:admin"), target: "export", allowed: true, reason: authz.ReasonAllowed},
		{name: "any-of none", p: principal("notes:read"), target: "export", reason: authz.ReasonInsufficientScope, anyOf: []string{"notes:export", "notes:admin"}},
		{name: "all-of and any-of met", p: principal("notes:write", "share:public"), target: "share", allowed: true, reason: authz.ReasonAllowed},
		{name: "all-of met, any-of not", p: principal("notes:write"), target: "share", reason: authz.ReasonInsufficientScope, anyOf: []string{"share:internal", "share:public"}},
		{name: "any-of met, all-of not", p: principal("share:public"), target: "share", reason: authz.ReasonInsufficientScope, missing: []string{"notes:write"}},
		{name: "authenticated rule", p: principal(), target: "ping", allowed: true, reason: authz.ReasonAllowed},
		{name: "zero rule denies", p: principal("notes:read", "notes:write", "notes:admin"), target: "disabled", reason: authz.ReasonNoRule},
		{name: "no rule: default deny", p: principal("notes:read", "notes:write", "notes:admin"), target: "unknown", reason: authz.ReasonNoRule},
		{name: "no principal", p: nil, target: "ping", reason: authz.ReasonUnauthenticated},
		{name: "unknown method", p: principal("notes:read"), method: "tools/list", target: "list", reason: authz.ReasonNoRule},
		{name: "unknown method without principal", method: "completion/complete", target: "x", reason: authz.ReasonUnauthenticated},
		{name: "empty scope is never held", p: principal(""), target: "list", reason: authz.ReasonInsufficientScope, missing: []string{"notes:read"}},
	})
}

func TestCheckDefaultRule(t *testing.T) {
	pl, err := authz.New(authz.Config{
		ToolRules:       map[string]authz.Rule{"admin": {AllOf: []string{"notes:admin"}}, "off": {}},
		DefaultToolRule: authz.Rule{AllOf: []string{"notes:use"}},
	})
	require.NoError(t, err)
	runChecks(t, pl, []checkCase{
		{name: "default allows", p: principal("notes:use"), target: "anything", allowed: true, reason: authz.ReasonAllowed},
		{name: "default denies", p: principal(), target: "anything", reason: authz.ReasonInsufficientScope, missing: []string{"notes:use"}},
		{name: "explicit rule wins over default", p: principal("notes:use"), target: "admin", reason: authz.ReasonInsufficientScope, missing: []string{"notes:admin"}},
		{name: "explicit deny wins over default", p: principal("notes:use"), target: "off", reason: authz.ReasonNoRule},
	})
}

func TestCheckZeroConfigDeniesEverything(t *testing.T) {
	pl, err := authz.New(authz.Config{})
	require.NoError(t, err)
	p := principal("notes:read", "notes:write")
	for _, m := range []string{authz.MethodToolsCall, authz.MethodPromptsGet, authz.MethodResourcesRead} {
		d := pl.Check(context.Background(), p, m, "notes://x")
		assert.False(t, d.Allowed, m)
		assert.Equal(t, authz.ReasonNoRule, d.Reason, m)
	}
	assert.Empty(t, pl.ScopesSupported())
}

func TestZeroPolicyDeniesEverything(t *testing.T) {
	var pl authz.Policy
	for _, m := range []string{authz.MethodToolsCall, authz.MethodPromptsGet, authz.MethodResourcesRead} {
		d := pl.Check(context.Background(), principal("notes:read"), m, "notes://x")
		assert.False(t, d.Allowed, m)
		assert.Equal(t, authz.ReasonNoRule, d.Reason, m)
	}
	var m authz.Mapper
	scopes, err := m.MapScopes(auth.NewClaims(map[string]any{"scope": "a"}))
	assert.NoError(t, err)
	assert.Empty(t, scopes)
}

func TestCheckAnnotationDefaults(t *testing.T) {
	pl, err := authz.New(authz.Config{
		ReadScope:  "notes:read",
		WriteScope: "notes:write",
		ToolRules:  map[string]authz.Rule{"purge": {AllOf: []string{"notes:admin"}}, "status": {Authenticated: true}},
		Tools:      annotations(map[string]bool{"list": true, "write": false, "purge": false}),
		// Never reached while annotation defaults are on.
		DefaultToolRule: authz.Rule{Authenticated: true},
	})
	require.NoError(t, err)
	runChecks(t, pl, []checkCase{
		{name: "reader calls read-only tool", p: principal("notes:read"), target: "list", allowed: true, reason: authz.ReasonAllowed},
		{name: "reader calls write tool", p: principal("notes:read"), target: "write", reason: authz.ReasonInsufficientScope, missing: []string{"notes:write"}},
		{name: "writer calls write tool", p: principal("notes:write"), target: "write", allowed: true, reason: authz.ReasonAllowed},
		{name: "write scope alone does not grant read-only tools", p: principal("notes:write"), target: "list", reason: authz.ReasonInsufficientScope, missing: []string{"notes:read"}},
		{name: "reader+writer calls read tool", p: principal("notes:read", "notes:write"), target: "list", allowed: true, reason: authz.ReasonAllowed},
		{name: "unknown tool is not read-only", p: principal("notes:read"), target: "nowhere", reason: authz.ReasonInsufficientScope, missing: []string{"notes:write"}},
		{name: "explicit rule beats annotations", p: principal("notes:read", "notes:write"), target: "purge", reason: authz.ReasonInsufficientScope, missing: []string{"notes:admin"}},
		{name: "explicit authenticated rule", p: principal(), target: "status", allowed: true, reason: authz.ReasonAllowed},
		{name: "no scopes at all on read tool", p: principal(), target: "list", reason: authz.ReasonInsufficientScope, missing: []string{"notes:read"}},
	})
	assert.Equal(t, []string{"notes:admin", "notes:read", "notes:write"}, pl.ScopesSupported())
}

func TestCheckAnnotationDefaultsWithoutLookup(t *testing.T) {
	// With no Config.Tools and no mcp-go server in the context, no tool is
	// known to be read-only: the write scope is required (fail closed).
	pl, err := authz.New(authz.Config{ReadScope: "r", WriteScope: "w"})
	require.NoError(t, err)
	runChecks(t, pl, []checkCase{
		{name: "reader denied", p: principal("r"), target: "list", reason: authz.ReasonInsufficientScope, missing: []string{"w"}},
		{name: "both scopes allowed", p: principal("r", "w"), target: "list", allowed: true, reason: authz.ReasonAllowed},
	})
}

func TestCheckTenantAllowLists(t *testing.T) {
	pl, err := authz.New(authz.Config{
		ReadScope:  "notes:read",
		WriteScope: "notes:write",
		Tools:      annotations(map[string]bool{"list": true, "write": false, "report": true}),
		TenantTools: map[string][]string{
			"acme":   {"list", "write"},
			"globex": {"list", "report"},
			"empty":  {},
		},
	})
	require.NoError(t, err)
	rw := principal("notes:read", "notes:write")
	runChecks(t, pl, []checkCase{
		{name: "listed tool", p: rw, tenant: "acme", target: "write", allowed: true, reason: authz.ReasonAllowed},
		{name: "tool listed for another tenant", p: rw, tenant: "acme", target: "report", reason: authz.ReasonTenant},
		{name: "other tenant's tool", p: rw, tenant: "globex", target: "report", allowed: true, reason: authz.ReasonAllowed},
		{name: "other tenant lacks write", p: rw, tenant: "globex", target: "write", reason: authz.ReasonTenant},
		{name: "tenant with no tools", p: rw, tenant: "empty", target: "list", reason: authz.ReasonTenant},
		{name: "unknown tenant", p: rw, tenant: "initech", target: "list", reason: authz.ReasonTenant},
		{name: "no tenant", p: rw, target: "list", reason: authz.ReasonTenant},
		{name: "listed but scope missing", p: principal("notes:read"), tenant: "acme", target: "write", reason: authz.ReasonInsufficientScope, missing: []string{"notes:write"}},
		{name: "no principal comes first", tenant: "acme", target: "list", reason: authz.ReasonUnauthenticated},
		{name: "prompts are not tenant-curated", p: rw, method: authz.MethodPromptsGet, target: "x", reason: authz.ReasonNoRule},
	})
}

func TestCheckTenantFunc(t *testing.T) {
	type key struct{}
	pl, err := authz.New(authz.Config{
		ToolRules:   map[string]authz.Rule{"list": {Authenticated: true}},
		TenantTools: map[string][]string{"acme": {"list"}},
		Tenant: func(ctx context.Context) (string, bool) {
			s, ok := ctx.Value(key{}).(string)
			return s, ok
		},
	})
	require.NoError(t, err)
	ctx := context.WithValue(context.Background(), key{}, "acme")
	assert.True(t, pl.Check(ctx, principal(), authz.MethodToolsCall, "list").Allowed)
	// tenancy's context is not consulted when Tenant is set.
	ctx = tenancy.NewContext(context.Background(), "acme")
	assert.Equal(t, authz.ReasonTenant, pl.Check(ctx, principal(), authz.MethodToolsCall, "list").Reason)
}

func TestCheckPromptsAndResources(t *testing.T) {
	pl, err := authz.New(authz.Config{
		PromptRules: map[string]authz.Rule{
			"summarize": {AllOf: []string{"notes:read"}},
			"off":       {},
		},
		DefaultPromptRule: authz.Rule{AllOf: []string{"prompts:use"}},
		ResourceRules: []authz.ResourceRule{
			{Prefix: "notes://", Rule: authz.Rule{AllOf: []string{"notes:read"}}},
			{Prefix: "notes://private/", Rule: authz.Rule{AllOf: []string{"notes:admin"}}},
			{Prefix: "notes://public/", Rule: authz.Rule{Authenticated: true}},
		},
	})
	require.NoError(t, err)
	const (
		pr = authz.MethodPromptsGet
		rr = authz.MethodResourcesRead
	)
	runChecks(t, pl, []checkCase{
		{name: "prompt rule met", p: principal("notes:read"), method: pr, target: "summarize", allowed: true, reason: authz.ReasonAllowed},
		{name: "prompt rule unmet", p: principal(), method: pr, target: "summarize", reason: authz.ReasonInsufficientScope, missing: []string{"notes:read"}},
		{name: "prompt explicit deny", p: principal("notes:read", "prompts:use"), method: pr, target: "off", reason: authz.ReasonNoRule},
		{name: "prompt default rule", p: principal("prompts:use"), method: pr, target: "other", allowed: true, reason: authz.ReasonAllowed},
		{name: "prompt without principal", method: pr, target: "summarize", reason: authz.ReasonUnauthenticated},
		{name: "resource shortest prefix", p: principal("notes:read"), method: rr, target: "notes://a/1", allowed: true, reason: authz.ReasonAllowed},
		{name: "resource longest prefix wins", p: principal("notes:read"), method: rr, target: "notes://private/1", reason: authz.ReasonInsufficientScope, missing: []string{"notes:admin"}},
		{name: "resource admin", p: principal("notes:admin"), method: rr, target: "notes://private/1", allowed: true, reason: authz.ReasonAllowed},
		{name: "resource public", p: principal(), method: rr, target: "notes://public/readme", allowed: true, reason: authz.ReasonAllowed},
		{name: "resource no prefix: default deny", p: principal("notes:read", "notes:admin"), method: rr, target: "file:///etc/passwd", reason: authz.ReasonNoRule},
		{name: "resource dot-dot escape", p: principal(), method: rr, target: "notes://public/../private/1", reason: authz.ReasonNoRule},
		{name: "resource dot segment", p: principal("notes:admin"), method: rr, target: "notes://public/./x", reason: authz.ReasonNoRule},
		{name: "resource trailing dot-dot", p: principal(), method: rr, target: "notes://public/..", reason: authz.ReasonNoRule},
		{name: "resource encoded dot", p: principal(), method: rr, target: "notes://public/%2e%2E/private/1", reason: authz.ReasonNoRule},
		{name: "resource encoded slash", p: principal(), method: rr, target: "notes://public/..%2Fprivate", reason: authz.ReasonNoRule},
		{name: "resource backslash", p: principal(), method: rr, target: `notes://public/..\private`, reason: authz.ReasonNoRule},
		{name: "resource dot-dot in query", p: principal(), method: rr, target: "notes://public/x?p=..", reason: authz.ReasonNoRule},
		{name: "resource dots inside a name are fine", p: principal(), method: rr, target: "notes://public/v1..2.txt", allowed: true, reason: authz.ReasonAllowed},
		{name: "resource empty URI", p: principal("notes:read"), method: rr, target: "", reason: authz.ReasonNoRule},
		{name: "resource without principal", method: rr, target: "notes://public/x", reason: authz.ReasonUnauthenticated},
	})
}

func TestScopesSupported(t *testing.T) {
	pl, err := authz.New(authz.Config{
		ToolRules:           map[string]authz.Rule{"a": {AllOf: []string{"t:1", "t:2"}}, "b": {AnyOf: []string{"t:3", "t:1"}}},
		DefaultToolRule:     authz.Rule{AllOf: []string{"t:0"}},
		PromptRules:         map[string]authz.Rule{"p": {AllOf: []string{"p:1"}}},
		ResourceRules:       []authz.ResourceRule{{Prefix: "x://", Rule: authz.Rule{AnyOf: []string{"r:1"}}}},
		DefaultResourceRule: authz.Rule{AllOf: []string{"r:0"}},
	})
	require.NoError(t, err)
	got := pl.ScopesSupported()
	assert.Equal(t, []string{"p:1", "r:0", "r:1", "t:0", "t:1", "t:2", "t:3"}, got)
	got[0] = "changed"
	assert.Equal(t, "p:1", pl.ScopesSupported()[0], "the caller gets a copy")
}

func TestNewCopiesConfig(t *testing.T) {
	rules := map[string]authz.Rule{"list": {AllOf: []string{"notes:read"}}}
	tenants := map[string][]string{"acme": {"list"}}
	pl, err := authz.New(authz.Config{ToolRules: rules, TenantTools: tenants})
	require.NoError(t, err)
	rules["list"].AllOf[0] = "notes:nothing"
	rules["other"] = authz.Rule{Authenticated: true}
	tenants["acme"][0] = "other"
	ctx := tenancy.NewContext(context.Background(), "acme")
	assert.True(t, pl.Check(ctx, principal("notes:read"), authz.MethodToolsCall, "list").Allowed)
	assert.False(t, pl.Check(ctx, principal("notes:read"), authz.MethodToolsCall, "other").Allowed)
}

func TestNewConfigErrors(t *testing.T) {
	tests := []struct {
		name  string
		cfg   authz.Config
		field string
	}{
		{"empty scope", authz.Config{ToolRules: map[string]authz.Rule{"a": {AllOf: []string{""}}}}, `ToolRules["a"].AllOf[0]`},
		{"scope with space", authz.Config{ToolRules: map[string]authz.Rule{"a": {AnyOf: []string{"x", "notes read"}}}}, `ToolRules["a"].AnyOf[1]`},
		{"scope with quote", authz.Config{PromptRules: map[string]authz.Rule{"p": {AllOf: []string{`a"b`}}}}, `PromptRules["p"].AllOf[0]`},
		{"authenticated with scopes", authz.Config{ToolRules: map[string]authz.Rule{"a": {Authenticated: true, AllOf: []string{"x"}}}}, `ToolRules["a"]`},
		{"empty tool name", authz.Config{ToolRules: map[string]authz.Rule{"": {Authenticated: true}}}, "ToolRules"},
		{"empty prompt name", authz.Config{PromptRules: map[string]authz.Rule{"": {Authenticated: true}}}, "PromptRules"},
		{"read scope alone", authz.Config{ReadScope: "r"}, "WriteScope"},
		{"write scope alone", authz.Config{WriteScope: "w"}, "ReadScope"},
		{"bad read scope", authz.Config{ReadScope: "r r", WriteScope: "w"}, "ReadScope"},
		{"bad default rule", authz.Config{DefaultToolRule: authz.Rule{AllOf: []string{"\x00"}}}, "DefaultToolRule"},
		{"bad default prompt rule", authz.Config{DefaultPromptRule: authz.Rule{AnyOf: []string{""}}}, "DefaultPromptRule"},
		{"bad default resource rule", authz.Config{DefaultResourceRule: authz.Rule{AnyOf: []string{""}}}, "DefaultResourceRule"},
		{"empty prefix", authz.Config{ResourceRules: []authz.ResourceRule{{Rule: authz.Rule{Authenticated: true}}}}, "ResourceRules[0].Prefix"},
		{"duplicate prefix", authz.Config{ResourceRules: []authz.ResourceRule{
			{Prefix: "a://", Rule: authz.Rule{Authenticated: true}},
			{Prefix: "a://", Rule: authz.Rule{Authenticated: true}},
		}}, "ResourceRules[1].Prefix"},
		{"bad resource rule", authz.Config{ResourceRules: []authz.ResourceRule{{Prefix: "a://", Rule: authz.Rule{AllOf: []string{" "}}}}}, "ResourceRules[0].Rule.AllOf[0]"},
		{"empty tenant", authz.Config{TenantTools: map[string][]string{"": {"a"}}}, "TenantTools"},
		{"empty tenant tool", authz.Config{TenantTools: map[string][]string{"acme": {"a", ""}}}, `TenantTools["acme"][1]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pl, err := authz.New(tt.cfg)
			require.Error(t, err)
			assert.Nil(t, pl)
			assert.ErrorIs(t, err, auth.ErrConfig)
			assert.Contains(t, err.Error(), tt.field)
		})
	}
}

func TestDeniedError(t *testing.T) {
	tests := []struct {
		name       string
		err        *authz.DeniedError
		text       string
		scopeErr   bool
		status     int
		code       string
		challenged []string
	}{
		{
			name: "missing scopes", err: &authz.DeniedError{Reason: authz.ReasonInsufficientScope, Missing: []string{"notes:write", "notes:admin"}},
			text: "insufficient scope: this request requires notes:write notes:admin", scopeErr: true,
			status: http.StatusForbidden, code: auth.CodeInsufficientScope, challenged: []string{"notes:write", "notes:admin"},
		},
		{
			name: "any-of", err: &authz.DeniedError{Reason: authz.ReasonInsufficientScope, AnyOf: []string{"a", "b"}},
			text: "insufficient scope: this request requires one of a, b", scopeErr: true,
			status: http.StatusForbidden, code: auth.CodeInsufficientScope, challenged: []string{"a", "b"},
		},
		{
			name: "both", err: &authz.DeniedError{Reason: authz.ReasonInsufficientScope, Missing: []string{"w"}, AnyOf: []string{"a", "b"}},
			text: "insufficient scope: this request requires w and one of a, b", scopeErr: true,
			status: http.StatusForbidden, code: auth.CodeInsufficientScope, challenged: []string{"w", "a", "b"},
		},
		{
			name: "scope text is sanitised", err: &authz.DeniedError{Reason: authz.ReasonInsufficientScope, Missing: []string{"a\"\n\\b c"}},
			text: "insufficient scope: this request requires abc", scopeErr: true,
			status: http.StatusForbidden, code: auth.CodeInsufficientScope, challenged: []string{"a\"\n\\b c"},
		},
		{name: "unauthenticated", err: &authz.DeniedError{Reason: authz.ReasonUnauthenticated}, text: "access denied: authentication required", status: http.StatusUnauthorized},
		{name: "tenant", err: &authz.DeniedError{Reason: authz.ReasonTenant}, text: "access denied: not available to this tenant", status: http.StatusForbidden},
		{name: "no rule", err: &authz.DeniedError{Reason: authz.ReasonNoRule}, text: "access denied", status: http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.text, tt.err.Error())
			assert.ErrorIs(t, tt.err, authz.ErrDenied)
			assert.Equal(t, tt.scopeErr, errors.Is(tt.err, auth.ErrInsufficientScope))

			var ae *auth.Error
			require.True(t, errors.As(tt.err, &ae))
			assert.Equal(t, tt.status, ae.Status)
			assert.Equal(t, tt.code, ae.Code)
			assert.Equal(t, tt.challenged, ae.Scope)
			assert.ErrorIs(t, ae, authz.ErrDenied, "the *auth.Error wraps the denial")

			// What the HTTP edge writes for it.
			rec := httptest.NewRecorder()
			auth.WriteError(rec, "https://mcp.example.com/.well-known/oauth-protected-resource", tt.err)
			assert.Equal(t, tt.status, rec.Code)
			if tt.code != "" {
				assert.Contains(t, rec.Header().Get("WWW-Authenticate"), `error="insufficient_scope"`)
				assert.Contains(t, rec.Header().Get("WWW-Authenticate"), `scope="`)
			}
		})
	}
}

func TestReasonString(t *testing.T) {
	for r, want := range map[authz.Reason]string{
		authz.ReasonNoRule: "no_rule", authz.ReasonAllowed: "allowed", authz.ReasonUnauthenticated: "unauthenticated",
		authz.ReasonTenant: "tenant", authz.ReasonInsufficientScope: "insufficient_scope", authz.Reason(99): "unknown",
	} {
		assert.Equal(t, want, r.String())
	}
}

func TestStepUpChallengeAtTheEdge(t *testing.T) {
	pl, err := authz.New(authz.Config{ReadScope: "notes:read", WriteScope: "notes:write",
		Tools: annotations(map[string]bool{"list": true, "write": false})})
	require.NoError(t, err)
	d := pl.Check(context.Background(), principal("notes:read"), authz.MethodToolsCall, "write")
	require.False(t, d.Allowed)
	rec := httptest.NewRecorder()
	auth.WriteError(rec, "https://mcp.example.com/.well-known/oauth-protected-resource/mcp", d.Err())
	assert.Equal(t, http.StatusForbidden, rec.Code)
	assert.Equal(t,
		`Bearer resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp", error="insufficient_scope", error_description="insufficient scope: this request requires notes:write", scope="notes:write"`,
		rec.Header().Get("WWW-Authenticate"))
}
