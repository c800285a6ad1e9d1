#!/usr/bin/env bash
# Runs the end-to-end suite (module e2e/): Go tests against real peers
# (oidc-provider, other SDKs' clients) on loopback. The npm packages are
# installed first, and MCPGUARD_E2E_REQUIRE=1 makes a missing Node
# installation a failure instead of a skip.
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/node-deps.sh
cd e2e
if ! go mod tidy -diff >/dev/null 2>&1; then
  echo "e2e/go.mod or e2e/go.sum is stale (a library package it imports gained a dependency?)."
  echo "Fix: (cd e2e && go mod tidy), then commit e2e/go.mod and e2e/go.sum."
  go mod tidy -diff || true
  exit 1
fi
echo "== e2e: go vet"
go vet ./...
echo "== e2e: go test"
MCPGUARD_E2E_REQUIRE=1 go test -race -count=1 ./...
