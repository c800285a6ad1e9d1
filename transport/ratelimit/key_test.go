package ratelimit

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/tenancy"
)

func withIdentity(ctx context.Context, tenant string, p *auth.Principal) context.Context {
	if tenant != "" {
		ctx = tenancy.NewContext(ctx, tenant)
	}
	if p != nil {
		ctx = auth.NewContext(ctx, p)
	}
	return ctx
}

func TestKey(t *testing.T) {
	alice := &auth.Principal{Issuer: "https://idp", Subject: "alice", ClientID: "app"}
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	tests := []struct {
		name   string
		parts  Parts
		tenant string
		p      *auth.Principal
		remote string
		xff    string
		tool   string
		http   bool
		want   string
	}{
		{name: "tenant and subject", parts: Tenant | Subject, tenant: "acme", p: alice, http: true, want: "http|t4:acmei11:https://idps5:alice"},
		{name: "tenant only", parts: Tenant, tenant: "acme", p: alice, http: true, want: "http|t4:acme"},
		{name: "subject only", parts: Subject, tenant: "acme", p: alice, http: true, want: "http|i11:https://idps5:alice"},
		{name: "client only", parts: Client, p: alice, http: true, want: "http|i11:https://idpc3:app"},
		{name: "subject and client share the issuer", parts: Subject | Client, p: alice, http: true, want: "http|i11:https://idps5:alicec3:app"},
		{name: "tenant and address", parts: Tenant | Address, tenant: "acme", remote: "192.0.2.7:1", http: true, want: "http|t4:acmea192.0.2.7"},
		{name: "address only", parts: Address, tenant: "acme", p: alice, remote: "192.0.2.7:1", http: true, want: "http|a192.0.2.7"},
		{name: "unauthenticated falls back to address", parts: Tenant | Subject, remote: "192.0.2.7:1", http: true, want: "http|a192.0.2.7"},
		{name: "missing tenant keeps subject", parts: Tenant | Subject, p: alice, http: true, want: "http|i11:https://idps5:alice"},
		{name: "ipv6 keyed by /64", parts: Address, remote: "[2001:db8:1:2:3:4:5:6]:1", http: true, want: "http|a2001:db8:1:2::/64"},
		{name: "xff ignored from untrusted peer", parts: Address, remote: "192.0.2.7:1", xff: "198.51.100.1", http: true, want: "http|a192.0.2.7"},
		{name: "xff used from trusted peer", parts: Address, remote: "10.0.0.1:1", xff: "198.51.100.1", http: true, want: "http|a198.51.100.1"},
		{name: "unparseable remote", parts: Address, remote: "@", http: true, want: "http|a?"},
		{name: "tool with tenant", parts: Tenant, tenant: "acme", tool: "search", want: "tool|n6:searcht4:acme"},
		{name: "tool anonymous", parts: Tenant | Subject, tool: "search", want: "tool|n6:searchanonymous"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := withIdentity(context.Background(), tc.tenant, tc.p)
			var buf [16]byte
			if !tc.http {
				assert.Equal(t, tc.want, key(ctx, buf[:], "tool|", tc.tool, tc.parts, nil, nil))
				return
			}
			r := httptest.NewRequestWithContext(ctx, http.MethodPost, "/mcp", nil)
			r.RemoteAddr = tc.remote
			if tc.xff != "" {
				r.Header.Set("X-Forwarded-For", tc.xff)
			}
			assert.Equal(t, tc.want, key(ctx, buf[:], "http|", "", tc.parts, r, trusted))
		})
	}
}

func TestKeyInjective(t *testing.T) {
	// Values that would collide under naive concatenation.
	pairs := [][2]*auth.Principal{
		{{Issuer: "a", Subject: "bc"}, {Issuer: "ab", Subject: "c"}},
		{{Issuer: "i", Subject: "s5:x"}, {Issuer: "i", Subject: "s"}},
	}
	for _, pair := range pairs {
		var b1, b2 [64]byte
		k1 := key(withIdentity(context.Background(), "", pair[0]), b1[:], "tool|", "t", Subject, nil, nil)
		k2 := key(withIdentity(context.Background(), "", pair[1]), b2[:], "tool|", "t", Subject, nil, nil)
		assert.NotEqual(t, k1, k2)
	}
	var b1, b2 [64]byte
	assert.NotEqual(t,
		key(withIdentity(context.Background(), "ab", nil), b1[:], "tool|", "x", Tenant, nil, nil),
		key(withIdentity(context.Background(), "b", nil), b2[:], "tool|", "xt2:a", Tenant, nil, nil))
}

func TestPartsString(t *testing.T) {
	assert.Equal(t, "default", Parts(0).String())
	assert.Equal(t, "tenant|subject", DefaultParts.String())
	assert.Equal(t, "client|address", (Client | Address).String())
	assert.Equal(t, "tenant|unknown", (Tenant | 0x80).String())
}

func BenchmarkKey(b *testing.B) {
	ctx := withIdentity(context.Background(), "acme", &auth.Principal{Issuer: "https://idp.example.com", Subject: "alice"})
	r := httptest.NewRequestWithContext(ctx, http.MethodPost, "/mcp", nil)
	b.ReportAllocs()
	for b.Loop() {
		var buf [128]byte
		_ = key(ctx, buf[:], "http|", "", DefaultParts, r, nil)
	}
}
