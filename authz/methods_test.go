package authz

import (
	"context"
	"encoding/json"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/auth"
)

// TestMethodTableCoversMCPGo reads the Method… constants of the mcp-go
// module this build uses (its mcp package source) and requires the method
// table to classify each one explicitly: an mcp-go upgrade that adds a
// method fails here until the method is put in the table.
func TestMethodTableCoversMCPGo(t *testing.T) {
	out, err := exec.Command("go", "list", "-m", "-json", "github.com/mark3labs/mcp-go").Output()
	require.NoError(t, err)
	var mod struct{ Dir string }
	require.NoError(t, json.Unmarshal(out, &mod))
	require.NotEmpty(t, mod.Dir, "mcp-go's module source is needed (go mod download)")

	files, err := filepath.Glob(filepath.Join(mod.Dir, "mcp", "*.go"))
	require.NoError(t, err)
	methods := map[string]string{} // value → constant name
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		require.NoError(t, err)
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, id := range vs.Names {
					if !strings.HasPrefix(id.Name, "Method") || i >= len(vs.Values) {
						continue
					}
					lit, ok := vs.Values[i].(*ast.BasicLit)
					if !ok || lit.Kind != token.STRING {
						continue
					}
					v, err := strconv.Unquote(lit.Value)
					require.NoError(t, err)
					methods[v] = id.Name
				}
			}
		}
	}
	require.Greater(t, len(methods), 30, "found too few of mcp-go's methods: has the source moved?")
	for v, name := range methods {
		_, known := classify(v)
		assert.True(t, known, "mcp-go's %s (%q) is not in authz's method table: classify it", name, v)
	}
}

func TestClassifyMethod(t *testing.T) {
	for method, want := range map[string]MethodClass{
		"initialize": MethodOpen, "ping": MethodOpen, "notifications/initialized": MethodOpen,
		"tools/list": MethodFiltered, "resources/templates/list": MethodFiltered,
		"tools/call": MethodMediated, "completion/complete": MethodMediated, "subscriptions/listen": MethodMediated,
		"resources/subscribe": MethodMediated, "resources/unsubscribe": MethodMediated,
		"tasks/result": MethodOwnerBound, "tasks/list": MethodOwnerBound,
		"sampling/createMessage": MethodRefused, "notifications/resources/updated": MethodRefused,
		"": MethodRefused, "tools/CALL": MethodRefused, "future/method": MethodRefused,
	} {
		assert.Equal(t, want, ClassifyMethod(method), method)
	}
	assert.Equal(t, MethodRefused, MethodClass(0), "the zero class refuses")
	for c, s := range map[MethodClass]string{MethodRefused: "refused", MethodOpen: "open", MethodFiltered: "filtered",
		MethodMediated: "mediated", MethodOwnerBound: "owner_bound", MethodClass(99): "unknown"} {
		assert.Equal(t, s, c.String())
	}
}

func TestRequestHookMethodTable(t *testing.T) {
	pl, err := New(Config{
		PromptRules:   map[string]Rule{"open": {AllOf: []string{"p:read"}}},
		ResourceRules: []ResourceRule{{Prefix: "notes://", Rule: Rule{AllOf: []string{"notes:read"}}}},
	})
	require.NoError(t, err)
	hook := pl.RequestHook()
	p := &auth.Principal{Subject: "s", Scopes: []string{"p:read", "notes:read"}}
	ctx := auth.NewContext(context.Background(), p)
	tests := []struct {
		name, body string
		reason     Reason // ReasonAllowed: no error
	}{
		{"unknown method", `{"jsonrpc":"2.0","id":1,"method":"future/x"}`, ReasonMethod},
		{"server-only method", `{"jsonrpc":"2.0","id":1,"method":"sampling/createMessage"}`, ReasonMethod},
		{"ambiguous unknown method", `{"jsonrpc":"2.0","id":1,"method":"ping","METHOD":"future/x"}`, ReasonMethod},
		{"open", `{"jsonrpc":"2.0","id":1,"method":"ping"}`, ReasonAllowed},
		{"owner bound passes on", `{"jsonrpc":"2.0","id":1,"method":"tasks/list"}`, ReasonAllowed},
		{"completion of an allowed prompt", `{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"open"},"argument":{"name":"a","value":""}}}`, ReasonAllowed},
		{"completion of a denied prompt", `{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"other"},"argument":{"name":"a","value":""}}}`, ReasonNoRule},
		{"completion decided on what mcp-go dispatches (last member, any case)", `{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"other","Name":"open"},"argument":{"name":"a","value":""}}}`, ReasonAllowed},
		{"completion of a resource", `{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"ref":{"type":"ref/resource","uri":"notes://{k}"},"argument":{"name":"a","value":""}}}`, ReasonAllowed},
		{"completion of an unknown ref type", `{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"ref":{"type":"ref/other"}}}`, ReasonNoRule},
		{"subscribe allowed", `{"jsonrpc":"2.0","id":1,"method":"resources/subscribe","params":{"uri":"notes://a"}}`, ReasonAllowed},
		{"subscribe denied", `{"jsonrpc":"2.0","id":1,"method":"resources/subscribe","params":{"uri":"file:///a"}}`, ReasonNoRule},
		{"unsubscribe denied", `{"jsonrpc":"2.0","id":1,"method":"resources/unsubscribe","params":{"uri":"file:///a"}}`, ReasonNoRule},
		{"listen denied by one URI", `{"jsonrpc":"2.0","id":1,"method":"subscriptions/listen","params":{"notifications":{"resourceSubscriptions":["notes://a","file:///b"]}}}`, ReasonNoRule},
		{"listen allowed", `{"jsonrpc":"2.0","id":1,"method":"subscriptions/listen","params":{"notifications":{"resourceSubscriptions":["notes://a"],"toolsListChanged":true}}}`, ReasonAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := hook(ctx, 1, json.RawMessage(tt.body))
			if tt.reason == ReasonAllowed {
				assert.NoError(t, err)
				return
			}
			var de *DeniedError
			require.True(t, errors.As(err, &de), "%v", err)
			assert.Equal(t, tt.reason, de.Reason)
		})
	}
	err = hook(context.Background(), 1, json.RawMessage(`{"jsonrpc":"2.0","id":1,"method":"resources/subscribe","params":{"uri":"notes://a"}}`))
	var de *DeniedError
	require.True(t, errors.As(err, &de))
	assert.Equal(t, ReasonUnauthenticated, de.Reason)
}
