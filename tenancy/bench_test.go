package tenancy

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/mcpguard/mcpguard/auth"
)

func benchPrincipal() *auth.Principal {
	return principal(entraClaims())
}

func BenchmarkResolve(b *testing.B) {
	r, err := New(Config{Claim: ClaimEntra})
	if err != nil {
		b.Fatal(err)
	}
	p := benchPrincipal()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Resolve(p); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkKeyFor(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := KeyFor("72f988bf-86f1-41af-91ab-2d7cd011db47", "notes", "note-42"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkKeyForEscaped(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := KeyFor("72f988bf-86f1-41af-91ab-2d7cd011db47", "notes", "urn:x:note%42"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkResolveAndKey is the budgeted path: resolve the tenant of a
// verified principal (with an allow-list), put it in the context and build
// a key from the context, as a tool does. Budget: 300 ns.
func BenchmarkResolveAndKey(b *testing.B) {
	r, err := New(Config{Claim: ClaimEntra, Allowed: []string{"72f988bf-86f1-41af-91ab-2d7cd011db47", "acme"}})
	if err != nil {
		b.Fatal(err)
	}
	p := benchPrincipal()
	base := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		tenant, err := r.Resolve(p)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := Key(NewContext(base, tenant), "notes", "note-42"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseKey(b *testing.B) {
	k, _ := KeyFor("acme", "notes", "a:b%c")
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := ParseKey(k); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCheck(b *testing.B) {
	ctx := NewContext(context.Background(), "72f988bf-86f1-41af-91ab-2d7cd011db47")
	b.ReportAllocs()
	for b.Loop() {
		if err := Check(ctx, "72f988bf-86f1-41af-91ab-2d7cd011db47"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkHandler(b *testing.B) {
	r, err := New(Config{Claim: ClaimEntra})
	if err != nil {
		b.Fatal(err)
	}
	h := r.Middleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	req := httptest.NewRequest(http.MethodPost, "/mcp", nil)
	req = req.WithContext(auth.NewContext(req.Context(), benchPrincipal()))
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, req)
	}
}
