// Package conformance runs the official MCP conformance suite's server
// scenarios (the npm package @modelcontextprotocol/conformance) against an
// mcp-go server, bare and wrapped by mcpguard's production stack.
//
// NewMCPServer builds the fixture server the scenarios expect. Handler
// serves it over Streamable HTTP at /mcp, bare or inside a Stack: the
// server options and complete HTTP handler mcpguard provides. ProdStack
// builds that stack with transport.New in production mode; since the
// suite's client sends no credential, TokenProxy sits in front and adds a
// bearer token to every request.
//
// The command cmd/conformance-server serves either variant:
//
//	conformance-server -addr 127.0.0.1:3001          # bare
//	conformance-server -addr 127.0.0.1:3002 -guard   # behind mcpguard
//
// and .ci/conformance.sh runs the suite against both and fails when the
// wrapped server passes fewer scenarios than the bare one.
//
// DPoP: the suite's auth/dpop and auth/dpop-nonce scenarios are client
// scenarios (`conformance list` files them under "Client scenarios": the
// suite plays the authorization server and the MCP server and checks the
// client's proofs), so they do not apply to mcpguard, a resource server,
// and are not run here. mcpguard's DPoP checks are driven end to end by
// package interop instead: the official TypeScript client's DPoP support
// against examples/prodmode with MCPGUARD_DPOP=required and oidc-provider
// issuing DPoP-bound tokens.
package conformance
