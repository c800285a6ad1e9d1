package clientip

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func mustPrefixes(t testing.TB, s ...string) []netip.Prefix {
	t.Helper()
	var in []netip.Prefix
	for _, p := range s {
		in = append(in, netip.MustParsePrefix(p))
	}
	out, i, ok := Prefixes(in)
	require.True(t, ok, "prefix %d", i)
	return out
}

func TestFrom(t *testing.T) {
	trusted := mustPrefixes(t, "10.0.0.0/8", "2001:db8:ffff::/48")
	tests := []struct {
		name   string
		remote string
		xff    []string
		want   string
		ok     bool
	}{
		{name: "untrusted peer ignores header", remote: "203.0.113.9:5555", xff: []string{"198.51.100.1"}, want: "203.0.113.9", ok: true},
		{name: "untrusted peer without header", remote: "203.0.113.9:5555", want: "203.0.113.9", ok: true},
		{name: "trusted peer without header", remote: "10.1.1.1:80", want: "10.1.1.1", ok: true},
		{name: "trusted peer, one hop", remote: "10.1.1.1:80", xff: []string{"198.51.100.1"}, want: "198.51.100.1", ok: true},
		{name: "rightmost untrusted wins over spoofed left", remote: "10.1.1.1:80", xff: []string{"1.1.1.1, 198.51.100.1"}, want: "198.51.100.1", ok: true},
		{name: "trusted hops skipped", remote: "10.1.1.1:80", xff: []string{"198.51.100.1, 10.2.2.2,10.3.3.3"}, want: "198.51.100.1", ok: true},
		{name: "several header lines read as one list", remote: "10.1.1.1:80", xff: []string{"1.1.1.1, 198.51.100.1", "10.2.2.2"}, want: "198.51.100.1", ok: true},
		{name: "empty elements skipped", remote: "10.1.1.1:80", xff: []string{" , 198.51.100.1 ,, "}, want: "198.51.100.1", ok: true},
		{name: "all trusted: leftmost trusted hop", remote: "10.1.1.1:80", xff: []string{"10.9.9.9, 10.2.2.2"}, want: "10.9.9.9", ok: true},
		{name: "garbage stops at last trusted", remote: "10.1.1.1:80", xff: []string{"198.51.100.1, bogus, 10.2.2.2"}, want: "10.2.2.2", ok: true},
		{name: "garbage right after peer", remote: "10.1.1.1:80", xff: []string{"198.51.100.1, unknown"}, want: "10.1.1.1", ok: true},
		{name: "element with port", remote: "10.1.1.1:80", xff: []string{"198.51.100.1:4711"}, want: "198.51.100.1", ok: true},
		{name: "ipv6 element", remote: "10.1.1.1:80", xff: []string{"2001:db8::7"}, want: "2001:db8::7", ok: true},
		{name: "bracketed ipv6 with port", remote: "10.1.1.1:80", xff: []string{"[2001:db8::7]:443"}, want: "2001:db8::7", ok: true},
		{name: "bracketed ipv6 without port", remote: "10.1.1.1:80", xff: []string{"[2001:db8::7]"}, want: "2001:db8::7", ok: true},
		{name: "ipv4-mapped unmapped", remote: "[::ffff:10.1.1.1]:80", xff: []string{"::ffff:198.51.100.1"}, want: "198.51.100.1", ok: true},
		{name: "zone dropped", remote: "[fe80::1%eth0]:80", want: "fe80::1", ok: true},
		{name: "trusted ipv6 proxy", remote: "[2001:db8:ffff::1]:80", xff: []string{"2001:db8:1::5"}, want: "2001:db8:1::5", ok: true},
		{name: "tab whitespace", remote: "10.1.1.1:80", xff: []string{"\t198.51.100.1\t"}, want: "198.51.100.1", ok: true},
		{name: "overlong element invalid", remote: "10.1.1.1:80", xff: []string{"198.51.100.1," + strings.Repeat("1", MaxElementBytes+1)}, want: "10.1.1.1", ok: true},
		{name: "hop limit stops at last trusted", remote: "10.1.1.1:80", xff: []string{"198.51.100.1," + strings.Repeat("10.0.0.2,", MaxHops)}, want: "10.0.0.2", ok: true},
		{name: "hop limit counts empty elements", remote: "10.1.1.1:80", xff: []string{"198.51.100.1" + strings.Repeat(",", MaxHops)}, want: "10.1.1.1", ok: true},
		{name: "bare remote address", remote: "203.0.113.9", want: "203.0.113.9", ok: true},
		{name: "unparseable remote", remote: "pipe", ok: false},
		{name: "empty remote", remote: "", ok: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := From(tc.remote, tc.xff, trusted)
			require.Equal(t, tc.ok, ok)
			if !tc.ok {
				assert.False(t, got.IsValid())
				return
			}
			assert.Equal(t, netip.MustParseAddr(tc.want), got)
		})
	}
}

func TestFromNoTrustedProxies(t *testing.T) {
	got, ok := From("10.1.1.1:80", []string{"198.51.100.1"}, nil)
	require.True(t, ok)
	assert.Equal(t, netip.MustParseAddr("10.1.1.1"), got)
}

func TestParseAddr(t *testing.T) {
	tests := []struct {
		in   string
		want string
	}{
		{"192.0.2.1", "192.0.2.1"},
		{"192.0.2.1:0", "192.0.2.1"},
		{"2001:db8::1", "2001:db8::1"},
		{"[2001:db8::1]:1", "2001:db8::1"},
		{"[2001:db8::1]", "2001:db8::1"},
		{"::ffff:192.0.2.1", "192.0.2.1"},
		{"", ""},
		{"[", ""},
		{"[]", ""},
		{"[2001:db8::1", ""},
		{"192.0.2.1:", ""},
		{"192.0.2.1:99999", ""},
		{"192.0.2", ""},
		{"example.com", ""},
		{"example.com:80", ""},
		{"[192.0.2.1]:80", ""},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, ok := ParseAddr(tc.in)
			if tc.want == "" {
				assert.False(t, ok)
				return
			}
			require.True(t, ok)
			assert.Equal(t, netip.MustParseAddr(tc.want), got)
		})
	}
}

func TestPrefixes(t *testing.T) {
	got, _, ok := Prefixes([]netip.Prefix{
		netip.MustParsePrefix("10.1.2.3/8"),
		netip.MustParsePrefix("::ffff:192.0.2.0/120"),
	})
	require.True(t, ok)
	assert.Equal(t, []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.0/24")}, got)

	for name, bad := range map[string]netip.Prefix{
		"zero":             {},
		"mapped too short": netip.MustParsePrefix("::ffff:0:0/95"),
	} {
		t.Run(name, func(t *testing.T) {
			_, i, ok := Prefixes([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), bad})
			assert.False(t, ok)
			assert.Equal(t, 1, i)
		})
	}
}

func FuzzFrom(f *testing.F) {
	f.Add("10.1.1.1:80", "198.51.100.1, 10.2.2.2", "")
	f.Add("10.1.1.1:80", "[2001:db8::7]:443,,", "1.1.1.1")
	f.Add("203.0.113.9:1", "10.0.0.1", "")
	f.Add("[::ffff:10.0.0.1]:1", "::ffff:10.0.0.2, fe80::1%eth0", "x")
	trusted := mustPrefixes(f, "10.0.0.0/8", "2001:db8:ffff::/48")
	f.Fuzz(func(t *testing.T, remote, line1, line2 string) {
		xff := []string{line1, line2}
		got, ok := From(remote, xff, trusted)
		peer, peerOK := ParseAddr(remote)
		require.Equal(t, peerOK, ok)
		if !ok {
			return
		}
		require.True(t, got.IsValid())
		assert.Empty(t, got.Zone())
		assert.False(t, got.Is4In6())
		if !contains(trusted, peer) {
			assert.Equal(t, peer, got, "an untrusted peer is always the client")
			return
		}
		if got == peer {
			return
		}
		// Anything else must be an address the header actually named.
		found := false
		for _, line := range xff {
			for _, e := range strings.Split(line, ",") {
				if a, ok := ParseAddr(trimOWS(e)); ok && a == got {
					found = true
				}
			}
		}
		assert.True(t, found, "client %v not named in %q", got, xff)
	})
}

func BenchmarkFrom(b *testing.B) {
	trusted := mustPrefixes(b, "10.0.0.0/8")
	xff := []string{"198.51.100.1, 10.2.2.2"}
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := From("10.1.1.1:80", xff, trusted); !ok {
			b.Fatal("not ok")
		}
	}
}
