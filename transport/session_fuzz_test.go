package transport

import (
	"strings"
	"testing"

	"github.com/mcpguard/mcpguard/auth"
)

// FuzzSessionOpen: a client-supplied Mcp-Session-Id never panics the
// binding, and opens only for the principal and tenant it was tagged for.
func FuzzSessionOpen(f *testing.F) {
	b, err := NewSessionBinding([]byte(strings.Repeat("k", 32)))
	if err != nil {
		f.Fatal(err)
	}
	alice := &auth.Principal{Issuer: "i", Subject: "alice"}
	good := "mcp-session-1." + b.tag("mcp-session-1", alice, "acme")
	for _, s := range []string{good, "", ".", "a.", ".b", "a.b.c", good + "x", strings.Repeat(".", 64)} {
		f.Add(s, "acme")
	}
	f.Fuzz(func(t *testing.T, bound, tenant string) {
		id, ok := b.open(bound, alice, tenant)
		if !ok {
			return
		}
		if bound != id+"."+b.tag(id, alice, tenant) {
			t.Fatalf("opened %q without its tag", bound)
		}
		if _, ok := b.open(bound, &auth.Principal{Issuer: "i", Subject: "alice", Kind: auth.KindJob}, tenant); ok {
			t.Fatalf("%q opened for another kind", bound)
		}
		if _, ok := b.open(bound, alice, tenant+"x"); ok {
			t.Fatalf("%q opened for another tenant", bound)
		}
	})
}
