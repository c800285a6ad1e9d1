// Package loopback says whether a host is the local machine: the one
// place where an http (not https) URL is acceptable for a resource, an
// issuer or a token endpoint.
//
// Dependencies: the standard library only.
package loopback

import "net"

// Host reports whether host (without port) is "localhost" or a loopback IP
// address.
func Host(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
