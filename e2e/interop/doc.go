// Package interop proves mcpguard against peers it did not write: an
// OpenID-certified authorization server (oidc-provider, see package
// oidcprovider) and MCP clients from other SDKs — the official Go SDK's
// client with its client-credentials OAuth handler, which starts with no
// token and must find the authorization server from mcpguard's 401
// challenge and protected resource metadata, and mcp-go's client with a
// bearer token.
//
// The DPoP tests (RFC 9449, SEP-1932) build examples/prodmode and run it as
// its own process with MCPGUARD_DPOP=required against oidc-provider with
// its DPoP feature (bound tokens, server nonces): the official TypeScript
// client (@modelcontextprotocol/client, js/dpop-client.mjs) discovers the
// provider, obtains a DPoP-bound token and calls tools with a proof per
// request, in both protocol eras; obo's exchanger does the same as a Go
// DPoP client under mcp-go's client; a replayed proof, the bound token sent
// as a bearer token and an unbound token are refused.
//
// The package holds tests only; `bash .ci/e2e.sh` runs them with Node
// installed, and they skip with a clear message when it is not.
package interop
