// Package loopback says whether a host is the local machine: the one
// place where an http (not https) URL is acceptable for a resource, an
// issuer or a token endpoint, and the test a Host header must pass on a
// loopback listener.
//
// Dependencies: the standard library only.
package loopback

import (
	"net"
	"strings"
)

// Host reports whether host (without port) is "localhost" or a loopback IP
// address.
func Host(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Authority reports whether an HTTP Host value, a host with or without a
// port (IPv6 literals in brackets), names the local machine: localhost in
// any case, or a loopback IP address. It is the test for DNS rebinding of
// a loopback listener, where a Host that is not loopback means a page
// whose DNS name was rebound to 127.0.0.1.
func Authority(hostport string) bool {
	h := hostport
	if host, _, err := net.SplitHostPort(hostport); err == nil {
		h = host
	} else {
		h = strings.Trim(h, "[]")
	}
	return strings.EqualFold(h, "localhost") || Host(h)
}
