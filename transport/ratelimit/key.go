package ratelimit

import (
	"context"
	"net/http"
	"net/netip"
	"strconv"

	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/internal/clientip"
	"github.com/mcpguard/mcpguard/tenancy"
)

// Parts selects what a limiter key is built from. Parts combine with |:
// Tenant|Subject gives every user of every tenant its own budget. The zero
// value means DefaultParts.
type Parts uint8

const (
	// Tenant keys by the tenant of the request (tenancy.FromContext).
	Tenant Parts = 1 << iota
	// Subject keys by the authenticated principal: issuer and subject
	// (auth.FromContext), so equal subjects of different issuers differ.
	Subject
	// Client keys by the OAuth client the token was issued to (issuer and
	// Principal.ClientID).
	Client
	// Address keys by the client's network address (HTTP only): the
	// connection's peer, or the X-Forwarded-For client when the peer is a
	// trusted proxy. IPv6 addresses are keyed by their /64 prefix, since
	// one host commonly owns a whole /64.
	Address
)

// DefaultParts is the key of a config whose KeyBy is zero: one budget per
// user per tenant.
const DefaultParts = Tenant | Subject

const allParts = Tenant | Subject | Client | Address

// String lists the parts, e.g. "tenant|subject".
func (p Parts) String() string {
	if p == 0 {
		return "default"
	}
	var b []byte
	for _, x := range []struct {
		p    Parts
		name string
	}{{Tenant, "tenant"}, {Subject, "subject"}, {Client, "client"}, {Address, "address"}} {
		if p&x.p != 0 {
			if len(b) > 0 {
				b = append(b, '|')
			}
			b = append(b, x.name...)
		}
	}
	if p&^allParts != 0 {
		if len(b) > 0 {
			b = append(b, '|')
		}
		b = append(b, "unknown"...)
	}
	return string(b)
}

// ipv6KeyBits is the prefix length IPv6 client addresses are keyed by.
const ipv6KeyBits = 64

// key builds an unambiguous limiter key: scope, the tool name if any, then every selected part
// that the request carries, each as a tag, its length and its bytes. When
// none of the selected identity parts is present (unauthenticated traffic),
// the client address is used if remote is non-empty, or a shared
// "anonymous" key otherwise. Tool budgets pass remote == "" (no address is
// known at the tool layer).
//
// The result is a string of one allocation.
func key(ctx context.Context, buf []byte, scope, tool string, parts Parts, r *http.Request, trusted []netip.Prefix) string {
	return string(appendKey(ctx, buf, scope, tool, parts, r, trusted))
}

// appendKey is key's bytes, in buf when they fit: no allocation.
func appendKey(ctx context.Context, buf []byte, scope, tool string, parts Parts, r *http.Request, trusted []netip.Prefix) []byte {
	b := append(buf[:0], scope...)
	if tool != "" {
		b = appendField(b, 'n', tool)
	}
	identity := false
	if parts&Tenant != 0 {
		if t, ok := tenancy.FromContext(ctx); ok {
			b = appendField(b, 't', t)
			identity = true
		}
	}
	if parts&(Subject|Client) != 0 {
		if p, ok := auth.FromContext(ctx); ok {
			if parts&Subject != 0 && p.Subject != "" {
				b = appendField(b, 'i', p.Issuer)
				b = appendField(b, 's', p.Subject)
				identity = true
			}
			if parts&Client != 0 && p.ClientID != "" {
				if parts&Subject == 0 || p.Subject == "" {
					b = appendField(b, 'i', p.Issuer)
				}
				b = appendField(b, 'c', p.ClientID)
				identity = true
			}
		}
	}
	if parts&Address != 0 || !identity {
		if r != nil {
			b = appendAddr(b, r, trusted)
		} else if !identity {
			b = append(b, "anonymous"...)
		}
	}
	return b
}

// appendField appends tag, len(v), ':' and v, which makes the key
// injective whatever bytes v holds.
func appendField(b []byte, tag byte, v string) []byte {
	b = append(b, tag)
	b = strconv.AppendInt(b, int64(len(v)), 10)
	b = append(b, ':')
	return append(b, v...)
}

func appendAddr(b []byte, r *http.Request, trusted []netip.Prefix) []byte {
	addr, ok := clientip.From(r.RemoteAddr, r.Header.Values("X-Forwarded-For"), trusted)
	if !ok {
		// Not a TCP peer (a unix socket, a test): one shared bucket.
		return append(b, "a?"...)
	}
	b = append(b, 'a')
	if addr.Is6() {
		p, _ := addr.Prefix(ipv6KeyBits)
		b = p.Addr().AppendTo(b)
		return append(b, "/64"...)
	}
	return addr.AppendTo(b)
}
