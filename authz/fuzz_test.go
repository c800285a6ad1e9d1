package authz_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"path"
	"strings"
	"sync"
	"testing"

	"github.com/mark3labs/mcp-go/server"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/authz"
	"github.com/mcpguard/mcpguard/internal/oauthsyntax"
)

// FuzzMapScopes feeds arbitrary claim sets to every preset: no panic, and a
// success yields distinct, non-empty scopes, no more than the claims could
// hold.
func FuzzMapScopes(f *testing.F) {
	for _, shape := range shapes(f) {
		raw, err := json.Marshal(shape)
		require.NoError(f, err)
		f.Add(raw)
	}
	f.Add([]byte(`{"scp":42,"roles":[1,"a"],"realm_access":{"roles":"x"}}`))
	f.Add([]byte(`{"resource_access":{"a.b":{"roles":["writer"]}},"token_use":"access","cognito:groups":null}`))

	table := map[string][]string{"writer": {"notes:write"}, "reader": {"notes:read"}, "Notes.ReadWrite.All": {"notes:read", "notes:write"}}
	mappers := []authz.Mappers{}
	add := func(m *authz.Mapper, err error) {
		require.NoError(f, err)
		mappers = append(mappers, authz.Mappers{m})
	}
	add(authz.Entra(authz.PresetConfig{RoleMap: table}))
	add(authz.Okta(authz.PresetConfig{RoleMap: table}))
	add(authz.Auth0(authz.PresetConfig{RoleMap: table, RoleClaims: []string{"https://notes.example.com/roles"}}))
	add(authz.Cognito(authz.PresetConfig{RoleMap: table}))
	add(authz.Keycloak(authz.KeycloakConfig{RealmRoleMap: table, ClientID: "notes-api", ClientRoleMap: table}))
	add(authz.NewMapper(authz.MapperConfig{ScopeClaims: []string{"a.b.c", "scope"}, RoleClaims: []string{"x.y"}, RoleMap: table}))

	f.Fuzz(func(t *testing.T, raw []byte) {
		var m map[string]any
		if json.Unmarshal(raw, &m) != nil {
			return
		}
		for _, mapper := range mappers {
			scopes, err := mapper.MapScopes(auth.NewClaims(m))
			if err != nil {
				if !errors.Is(err, auth.ErrInvalidToken) {
					t.Fatalf("error outside the invalid_token class: %v", err)
				}
				continue
			}
			seen := map[string]bool{}
			for _, s := range scopes {
				if s == "" || seen[s] {
					t.Fatalf("empty or duplicate scope in %q", scopes)
				}
				seen[s] = true
			}
			if len(scopes) > 3*authz.MaxClaimValues {
				t.Fatalf("%d scopes", len(scopes))
			}
		}
	})
}

// FuzzResourceURI checks that a URI allowed only through the public prefix
// stays under it however a handler might resolve it (percent-decoding, then
// cleaning dot segments).
func FuzzResourceURI(f *testing.F) {
	for _, s := range []string{
		"notes://public/readme", "notes://public/../private/x", "notes://public/%2e%2e/private",
		"notes://public/a/./b", `notes://public/..\private`, "notes://public/x?y=..", "notes://public/v1..2",
		"notes://private/x", "notes://public", "notes://public//", "notes://public/%252e%252e/x",
	} {
		f.Add(s)
	}
	pl, err := authz.New(authz.Config{ResourceRules: []authz.ResourceRule{
		{Prefix: "notes://public/", Rule: authz.Rule{Authenticated: true}},
	}})
	require.NoError(f, err)
	p := principal()
	f.Fuzz(func(t *testing.T, uri string) {
		d := pl.Check(context.Background(), p, authz.MethodResourcesRead, uri)
		if !d.Allowed {
			return
		}
		if !strings.HasPrefix(uri, "notes://public/") {
			t.Fatalf("allowed %q outside the prefix", uri)
		}
		rest := strings.TrimPrefix(uri, "notes://")
		for range 3 { // a handler might decode more than once
			if dec, err := url.PathUnescape(rest); err == nil {
				rest = dec
			}
		}
		rest = strings.ReplaceAll(rest, `\`, "/")
		if cleaned := path.Clean("/" + rest); cleaned != "/public" && !strings.HasPrefix(cleaned, "/public/") {
			t.Fatalf("allowed %q resolves to %q", uri, cleaned)
		}
	})
}

// FuzzRequestHook sends arbitrary message bodies through the hook: it never
// panics, and any error it returns is a *DeniedError whose text comes from
// the fixed table, never from the body.
func FuzzRequestHook(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"write_note"}}`,
		`{"jsonrpc":"2.0","id":1,"method":"prompts/get","params":{"name":"audit"}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","name":"write_note"}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"w\u0072ite_note"}}`,
		`[{"jsonrpc":"2.0"}]`, `{"method":"tools/call","params":[]}`, ``,
		`{"jsonrpc":"2.0","id":1,"method":"future/x"}`,
		`{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"audit"},"argument":{"name":"a","value":""}}}`,
		`{"jsonrpc":"2.0","id":1,"method":"resources/subscribe","params":{"uri":"notes://x"}}`,
	} {
		f.Add([]byte(s), true)
	}
	// The hook runs inside HandleMessage, where mcp-go puts the server in
	// the context; capture what it returns there.
	hook := notesPolicy(f, nil).RequestHook()
	var (
		mu   sync.Mutex
		last error
	)
	hooks := &server.Hooks{}
	hooks.AddOnRequestInitialization(func(ctx context.Context, id any, msg any) error {
		err := hook(ctx, id, msg)
		mu.Lock()
		last = err
		mu.Unlock()
		return err
	})
	n := newNotesServer(f, server.WithHooks(hooks))
	allowed := map[string]bool{
		"insufficient scope: this request requires notes:write": true,
		"insufficient scope: this request requires notes:admin": true,
		"access denied: authentication required":                true,
		"method not found":                                      true,
		"access denied":                                         true,
	}
	f.Fuzz(func(t *testing.T, body []byte, withPrincipal bool) {
		ctx := context.Background()
		if withPrincipal {
			ctx = auth.NewContext(ctx, reader)
		}
		mu.Lock()
		last = nil
		mu.Unlock()
		n.srv.HandleMessage(ctx, body)
		mu.Lock()
		err := last
		mu.Unlock()
		if err == nil {
			return
		}
		var de *authz.DeniedError
		if !errors.As(err, &de) {
			t.Fatalf("unexpected error type %T", err)
		}
		if !allowed[err.Error()] {
			t.Fatalf("unexpected text %q", err.Error())
		}
	})
}

// FuzzDeniedErrorText: whatever scopes a denial names, its text stays
// printable ASCII without quotes or backslashes.
func FuzzDeniedErrorText(f *testing.F) {
	f.Add("notes:write", "a\"b\\c\n")
	f.Fuzz(func(t *testing.T, a, b string) {
		msg := (&authz.DeniedError{Reason: authz.ReasonInsufficientScope, Missing: []string{a}, AnyOf: []string{b, a}}).Error()
		for i := 0; i < len(msg); i++ {
			if c := msg[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
				t.Fatalf("byte %#x in %q", c, msg)
			}
		}
		if len(msg) > 200+3*oauthsyntax.MaxScopeTokenBytes {
			t.Fatalf("text of %d bytes", len(msg))
		}
	})
}
