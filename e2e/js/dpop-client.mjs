// The official TypeScript MCP client (@modelcontextprotocol/client) as a
// DPoP client (RFC 9449, SEP-1932) for mcpguard's end-to-end tests: it
// starts with no token, finds the authorization server from the MCP
// server's 401 challenge and protected resource metadata, obtains a
// DPoP-bound token with the client_credentials grant (a proof on the token
// request), and presents it with the DPoP scheme and a fresh proof on every
// MCP request — all the SDK's own code; this script only wires it up.
//
// Usage: node dpop-client.mjs CONFIG.json
//
// CONFIG.json:
//   {"url": "http://127.0.0.1:PORT/mcp", "issuer": "http://127.0.0.1:PORT",
//    "clientId": "…", "clientSecret": "…", "scope": "notes:read",
//    "era": "2025-11-25" | "2026-07-28",  // legacy initialize, or pinned stateless
//    "tool": "whoami"}
//
// It prints one JSON line on stdout:
//   {"tools": [...], "text": "<the tool's first text content>",
//    "tokenType": "DPoP", "thumbprint": "…", "protocolVersion": "…",
//    "requests": [{"path": "/mcp", "method": "POST", "scheme": "DPoP",
//                  "proof": true, "status": 200}, ...]}
// and exits non-zero (the error on stderr) when any step fails.

import { readFileSync } from 'node:fs';
import process from 'node:process';

import { Client, ClientCredentialsProvider, DpopSession, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';

const cfg = JSON.parse(readFileSync(process.argv[2], 'utf8'));

class DpopClientCredentials extends ClientCredentialsProvider {
  constructor(options, session) {
    super(options);
    this.session = session;
  }

  dpop() {
    return this.session;
  }
}

const requests = [];
const recordingFetch = async (input, init) => {
  const req = new Request(input, init);
  const res = await fetch(req);
  const authz = req.headers.get('authorization') || '';
  requests.push({
    path: new URL(req.url).pathname,
    method: req.method,
    scheme: authz.split(' ')[0] || '',
    proof: req.headers.has('dpop'),
    status: res.status,
  });
  return res;
};

const session = await DpopSession.create({ alg: 'ES256' });
const provider = new DpopClientCredentials(
  { clientId: cfg.clientId, clientSecret: cfg.clientSecret, scope: cfg.scope, expectedIssuer: cfg.issuer },
  session,
);
const transport = new StreamableHTTPClientTransport(new URL(cfg.url), { authProvider: provider, fetch: recordingFetch });
const client = new Client(
  { name: 'mcpguard-e2e-dpop', version: '1.0.0' },
  { versionNegotiation: { mode: cfg.era === '2026-07-28' ? { pin: cfg.era } : 'legacy' } },
);

try {
  await client.connect(transport);
  const { tools } = await client.listTools();
  const result = await client.callTool({ name: cfg.tool || 'whoami', arguments: {} });
  if (result.isError) throw new Error(`tool error: ${JSON.stringify(result.content)}`);
  const text = (result.content || []).find((c) => c.type === 'text')?.text || '';
  const tokens = provider.tokens();
  process.stdout.write(`${JSON.stringify({
    tools: tools.map((t) => t.name).sort(),
    text,
    tokenType: tokens?.token_type || '',
    protocolVersion: client.getNegotiatedProtocolVersion() || '',
    thumbprint: session.thumbprint,
    requests,
  })}\n`);
  await client.close();
} catch (err) {
  console.error(err?.stack || String(err));
  console.error(`requests: ${JSON.stringify(requests)}`);
  process.exit(1);
}
