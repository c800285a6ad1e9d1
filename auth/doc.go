// Package auth reads and validates bearer credentials for an MCP server
// acting as an OAuth 2.0 resource server.
//
// It owns the Principal (the verified caller), the raw Credential (which
// redacts itself everywhere it could be printed), validators (JWT via JWKS,
// RFC 7662 introspection, dual service+user tokens, signed job tokens), the
// RFC 6750 WWW-Authenticate challenge and RFC 9728 protected resource
// metadata. It decides who is calling, never what they may do: that is
// package authz.
package auth
