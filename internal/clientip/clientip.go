package clientip

import (
	"net/netip"
	"strings"
)

const (
	// MaxHops is the number of X-Forwarded-For elements examined, counted
	// from the right, empty elements included.
	MaxHops = 32
	// MaxElementBytes is the longest element accepted after trimming
	// spaces; longer elements are invalid. The longest textual IPv6
	// address with brackets and a port is 47 bytes.
	MaxElementBytes = 64
)

// From returns the client address for a request whose connection peer is
// remoteAddr (as in http.Request.RemoteAddr: "host:port" or a bare address)
// and whose X-Forwarded-For header lines are xff, in the order received.
//
// When the peer is not inside one of trusted, the peer is the client and
// xff is ignored: anyone can send the header. When the peer is trusted, the
// elements of xff are read right to left, skipping addresses inside trusted;
// the first untrusted address is the client. If an element is malformed, the
// list is exhausted, or MaxHops elements were read, the last trusted address
// seen (at worst the peer itself) is returned: it is the furthest hop whose
// word can be believed.
//
// Addresses are returned without zone and with IPv4-mapped IPv6 unmapped.
// From reports false only when remoteAddr cannot be parsed. It does not
// allocate and is safe for concurrent use.
func From(remoteAddr string, xff []string, trusted []netip.Prefix) (netip.Addr, bool) {
	peer, ok := ParseAddr(remoteAddr)
	if !ok {
		return netip.Addr{}, false
	}
	if !contains(trusted, peer) {
		return peer, true
	}
	last := peer
	hops := 0
	for i := len(xff) - 1; i >= 0; i-- {
		line := xff[i]
		for {
			if hops == MaxHops {
				return last, true
			}
			hops++
			var elem string
			if j := strings.LastIndexByte(line, ','); j >= 0 {
				elem, line = line[j+1:], line[:j]
			} else {
				elem, line = line, ""
			}
			elem = trimOWS(elem)
			if elem != "" {
				addr, ok := ParseAddr(elem)
				if !ok {
					return last, true
				}
				if !contains(trusted, addr) {
					return addr, true
				}
				last = addr
			}
			if line == "" {
				break
			}
		}
	}
	return last, true
}

// ParseAddr parses one address as found in RemoteAddr or an X-Forwarded-For
// element: "192.0.2.1", "192.0.2.1:443", "2001:db8::1" or "[2001:db8::1]:443".
// Zones are dropped and IPv4-mapped IPv6 addresses unmapped. Inputs longer
// than MaxElementBytes are rejected.
func ParseAddr(s string) (netip.Addr, bool) {
	if s == "" || len(s) > MaxElementBytes {
		return netip.Addr{}, false
	}
	var addr netip.Addr
	var err error
	switch {
	case s[0] == '[':
		var ap netip.AddrPort
		if ap, err = netip.ParseAddrPort(s); err != nil {
			// "[2001:db8::1]" without a port.
			if s[len(s)-1] != ']' {
				return netip.Addr{}, false
			}
			addr, err = netip.ParseAddr(s[1 : len(s)-1])
		} else {
			addr = ap.Addr()
		}
	case strings.Count(s, ":") == 1:
		var ap netip.AddrPort
		ap, err = netip.ParseAddrPort(s)
		addr = ap.Addr()
	default:
		addr, err = netip.ParseAddr(s)
	}
	if err != nil || !addr.IsValid() {
		return netip.Addr{}, false
	}
	return addr.WithZone("").Unmap(), true
}

func contains(trusted []netip.Prefix, a netip.Addr) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// trimOWS removes the optional white space (SP / HTAB) of RFC 9110 §5.6.3.
func trimOWS(s string) string {
	for s != "" && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for s != "" && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// Prefixes validates and normalises a trusted-proxy list for From: every
// prefix must be valid; it is masked, and an IPv4-mapped IPv6 prefix of at
// least /96 becomes the IPv4 prefix it denotes (From unmaps addresses). The
// result is a new slice. On error, the index of the offending prefix is
// returned.
func Prefixes(in []netip.Prefix) ([]netip.Prefix, int, bool) {
	out := make([]netip.Prefix, 0, len(in))
	for i, p := range in {
		if !p.IsValid() {
			return nil, i, false
		}
		if a := p.Addr(); a.Is4In6() {
			if p.Bits() < 96 {
				return nil, i, false
			}
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
		}
		out = append(out, p.Masked())
	}
	return out, -1, true
}
