package authz_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/authz"
	"github.com/mcpguard/mcpguard/tenancy"
)

// benchPrincipal holds a realistic handful of scopes, the one that matters
// last.
func benchPrincipal(last ...string) *auth.Principal {
	return principal(append([]string{"openid", "profile", "email", "offline_access"}, last...)...)
}

func benchPolicy(b testing.TB) *authz.Policy {
	b.Helper()
	readOnly := map[string]bool{}
	rules := map[string]authz.Rule{}
	var tools []string
	for i := range 50 {
		name := fmt.Sprintf("tool_%02d", i)
		readOnly[name] = i%2 == 0
		tools = append(tools, name)
		if i%10 == 0 {
			rules[name] = authz.Rule{AllOf: []string{"notes:read"}, AnyOf: []string{"notes:export", "notes:admin"}}
		}
	}
	pl, err := authz.New(authz.Config{
		ReadScope:   "notes:read",
		WriteScope:  "notes:write",
		ToolRules:   rules,
		Tools:       annotations(readOnly),
		TenantTools: map[string][]string{"acme": tools},
		ResourceRules: []authz.ResourceRule{
			{Prefix: "notes://public/", Rule: authz.Rule{Authenticated: true}},
			{Prefix: "notes://private/", Rule: authz.Rule{AllOf: []string{"notes:admin"}}},
		},
	})
	require.NoError(b, err)
	return pl
}

// BenchmarkCheck is the warm policy decision (budget: ≤ 200 ns, 0 allocs
// when it allows).
func BenchmarkCheck(b *testing.B) {
	pl := benchPolicy(b)
	ctx := tenancy.NewContext(context.Background(), "acme")
	cases := []struct {
		name   string
		p      *auth.Principal
		method string
		target string
		allow  bool
	}{
		{"allow/explicit-rule", benchPrincipal("notes:read", "notes:admin"), authz.MethodToolsCall, "tool_10", true},
		{"allow/annotation-read-lookup", benchPrincipal("notes:read"), authz.MethodToolsCall, "tool_02", true},
		{"allow/annotation-both-scopes", benchPrincipal("notes:read", "notes:write"), authz.MethodToolsCall, "tool_03", true},
		{"allow/resource-prefix", benchPrincipal(), authz.MethodResourcesRead, "notes://public/readme.md", true},
		{"deny/insufficient-scope", benchPrincipal("notes:read"), authz.MethodToolsCall, "tool_03", false},
		{"deny/tenant", benchPrincipal("notes:read", "notes:write"), authz.MethodToolsCall, "other", false},
	}
	for _, bc := range cases {
		b.Run(bc.name, func(b *testing.B) {
			require.Equal(b, bc.allow, pl.Check(ctx, bc.p, bc.method, bc.target).Allowed)
			b.ReportAllocs()
			for b.Loop() {
				if pl.Check(ctx, bc.p, bc.method, bc.target).Allowed != bc.allow {
					b.Fatal("decision changed")
				}
			}
		})
	}
}

func TestCheckAllowPathAllocatesNothing(t *testing.T) {
	pl := benchPolicy(t)
	ctx := tenancy.NewContext(context.Background(), "acme")
	p := benchPrincipal("notes:read")
	allocs := testing.AllocsPerRun(100, func() {
		if !pl.Check(ctx, p, authz.MethodToolsCall, "tool_02").Allowed {
			t.Fatal("denied")
		}
	})
	if allocs != 0 {
		t.Fatalf("allow path allocates %.1f times per check", allocs)
	}
}

func BenchmarkToolMiddleware(b *testing.B) {
	pl := benchPolicy(b)
	ctx := auth.NewContext(tenancy.NewContext(context.Background(), "acme"), benchPrincipal("notes:read"))
	h := pl.ToolMiddleware(func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) { return nil, nil })
	req := mcp.CallToolRequest{}
	req.Params.Name = "tool_02"
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkToolFilter(b *testing.B) {
	pl := benchPolicy(b)
	ctx := auth.NewContext(tenancy.NewContext(context.Background(), "acme"), benchPrincipal("notes:read"))
	var tools []mcp.Tool
	for i := range 50 {
		tools = append(tools, mcp.NewTool(fmt.Sprintf("tool_%02d", i), mcp.WithReadOnlyHintAnnotation(i%2 == 0)))
	}
	f := pl.ToolFilter()
	want := 0
	for _, tl := range tools {
		if pl.Check(ctx, benchPrincipal("notes:read"), authz.MethodToolsCall, tl.Name).Allowed {
			want++
		}
	}
	require.Equal(b, 20, want, "read-only tools minus those with an explicit rule")
	b.Run("list-50", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if len(f(ctx, tools)) != want {
				b.Fatal("wrong count")
			}
		}
	})
	b.Run("call-time-1", func(b *testing.B) {
		one := tools[2:3]
		b.ReportAllocs()
		for b.Loop() {
			if len(f(ctx, one)) != 1 {
				b.Fatal("filtered")
			}
		}
	})
}

func BenchmarkRequestHook(b *testing.B) {
	pl := benchPolicy(b)
	ctx := auth.NewContext(tenancy.NewContext(context.Background(), "acme"), benchPrincipal("notes:read"))
	hook := pl.RequestHook()
	msg := json.RawMessage(`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"tool_02","arguments":{"q":"hello"}}}`)
	b.ReportAllocs()
	for b.Loop() {
		if err := hook(ctx, 7, msg); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMapper(b *testing.B) {
	m, err := authz.Keycloak(authz.KeycloakConfig{
		RealmRoleMap:  map[string][]string{"notes-reader": {"notes:read"}},
		ClientID:      "notes-api",
		ClientRoleMap: map[string][]string{"writer": {"notes:write"}},
	})
	require.NoError(b, err)
	c := claimsOf(b, "keycloak", nil)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.MapScopes(c); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCheckServerTools is the HTTP-edge decision for an annotation
// default, looking the tool up on a real mcp-go server: mcp-go's GetTool
// returns a copy of the tool on the heap, one allocation that is mcp-go's.
func BenchmarkCheckServerTools(b *testing.B) {
	n := newNotesServer(b)
	var tools []mcp.Tool
	for _, st := range n.srv.ListTools() {
		tools = append(tools, st.Tool)
	}
	for _, bc := range []struct {
		name   string
		lookup authz.ToolLookup
	}{
		{"ServerTools", authz.ServerTools(n.srv)},
		{"StaticTools", authz.StaticTools(tools...)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			pl := notesPolicy(b, func(c *authz.Config) { c.Tools = bc.lookup })
			p := benchPrincipal("notes:read")
			ctx := context.Background()
			require.True(b, pl.Check(ctx, p, authz.MethodToolsCall, "list_notes").Allowed)
			require.False(b, pl.Check(ctx, p, authz.MethodToolsCall, "write_note").Allowed)
			b.ReportAllocs()
			for b.Loop() {
				if !pl.Check(ctx, p, authz.MethodToolsCall, "list_notes").Allowed {
					b.Fatal("denied")
				}
			}
		})
	}
}
