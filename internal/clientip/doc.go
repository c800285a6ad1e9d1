// Package clientip finds the address of the client behind an HTTP request:
// the connection's peer, or — only when that peer is a trusted proxy — the
// nearest untrusted hop named in X-Forwarded-For.
//
// Typical use, in middleware that keys something by client address:
//
//	addr, ok := clientip.From(r.RemoteAddr, r.Header.Values("X-Forwarded-For"), trusted)
//	if !ok {
//		// the peer address could not be parsed; treat as one shared, unknown client
//	}
//
// The header is read right to left (each proxy appends the address it
// received the request from), trusted proxies are skipped, and parsing is
// bounded: at most MaxHops list elements are examined and an element longer
// than MaxElementBytes is treated as invalid.
//
// Dependencies: the standard library only.
package clientip
