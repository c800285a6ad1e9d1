// Package interop proves mcpguard against peers it did not write: an
// OpenID-certified authorization server (oidc-provider, see package
// oidcprovider) and MCP clients from other SDKs — the official Go SDK's
// client with its client-credentials OAuth handler, which starts with no
// token and must find the authorization server from mcpguard's 401
// challenge and protected resource metadata, and mcp-go's client with a
// bearer token.
//
// The package holds tests only; `bash .ci/e2e.sh` runs them with Node
// installed, and they skip with a clear message when it is not.
package interop
