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
// wrapped server passes fewer scenarios than the bare one. RESULTS.md, in
// this directory, is the per-scenario table of one full run
// (conformance-run -results).
//
// The fixture carries the diagnostic tools of both revisions' scenarios as
// far as mcp-go v1.2.1 can serve them: the 2025-11-25 tools, the multi
// round-trip (input_required) tools and prompt, the server-stateless tools
// (test_missing_capability, test_streaming_elicitation, test_logging_tool,
// test_trigger_tool_change, test_trigger_prompt_change), an x-mcp-header
// tool (test_header_param), a JSON Schema 2020-12 tool and the tasks-*
// fixtures (greet, slow_compute, failing_job, protocol_error_job,
// confirm_delete, multi_input, test_tool_with_task) on mcp-go's own task
// support. What mcp-go lacks — the SEP-2663 tasks extension wire format,
// -32021 with error.data.requiredCapabilities from a tool handler — the
// fixture does not imitate: those checks fail on bare and wrapped alike.
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
