// An OpenID-certified authorization server (the npm package oidc-provider)
// configured as the issuer for mcpguard's end-to-end tests.
//
// Usage: node oidc-provider.mjs CONFIG.json
//
// CONFIG.json:
//   {
//     "port": 0,                      // 0 picks a free loopback port
//     "keysFile": "keys.json",        // private JWKS, created when missing
//     "tenantClaim": "tenant",        // claim name carrying a client's tenant
//     "clients": [{"client_id": "a", "client_secret": "s",
//                  "scope": "tools:read", "tenant": "acme",
//                  "token_endpoint_auth_method": "client_secret_basic",
//                  "dpop_bound_access_tokens": false}],
//     "dpopRequireNonce": false,      // DPoP proofs must carry a server nonce
//     "defaultResource": "",          // resource for requests naming none
//     "resources": [{"prefix": "http://127.0.0.1:", "scope": "tools:read",
//                    "format": "jwt", "ttl": 300}]
//   }
//
// Only the client_credentials grant is enabled. A token request must name a
// resource (RFC 8707), unless "defaultResource" is set: it is then the
// resource of requests that name none. The first entry of "resources" whose prefix matches it
// decides the scopes the resource accepts, the token format ("jwt" gives an
// RFC 9068 access token whose aud is the resource, "opaque" a reference
// token for RFC 7662 introspection) and the lifetime in seconds.
//
// DPoP (RFC 9449) is on, as in oidc-provider's defaults: a token request
// with a valid proof gets a token bound to its key (token_type DPoP,
// cnf.jkt); a client with dpop_bound_access_tokens must send one;
// dpopRequireNonce demands the server's nonce (use_dpop_nonce).
//
// Signals:
//   SIGHUP   rotate: a new RSA signing key is published first; the previous
//            signing key stays in the JWKS so tokens it signed still verify.
//   SIGUSR2  rotate and retire: the new key is the only one published.
//   SIGTERM  stop.
// The key set is written back to keysFile, so a restart with the same config
// keeps the issuer (same port) and the keys.
//
// Each state change prints one JSON line on stdout:
//   {"event":"ready","issuer":"http://127.0.0.1:PORT","port":PORT,"kids":[...]}
//   {"event":"rotated","kids":[...]}
// Everything else (oidc-provider's own warnings) goes to stderr.

import { generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import { readFileSync, writeFileSync, renameSync, existsSync } from 'node:fs';
import { createServer } from 'node:http';
import process from 'node:process';

import Provider, { errors } from 'oidc-provider';

const cfgPath = process.argv[2];
if (!cfgPath) {
  console.error('usage: node oidc-provider.mjs CONFIG.json');
  process.exit(2);
}
const cfg = JSON.parse(readFileSync(cfgPath, 'utf8'));
const tenantClaim = cfg.tenantClaim || 'tenant';
const resources = cfg.resources || [];
if (!cfg.keysFile) {
  console.error('config: keysFile is required');
  process.exit(2);
}
if (!Array.isArray(cfg.clients) || cfg.clients.length === 0) {
  console.error('config: at least one client is required');
  process.exit(2);
}

function newSigningKey() {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), kid: randomUUID(), alg: 'RS256', use: 'sig' };
}

function saveKeys(keys) {
  const tmp = `${cfg.keysFile}.tmp`;
  writeFileSync(tmp, JSON.stringify({ keys }), { mode: 0o600 });
  renameSync(tmp, cfg.keysFile);
}

function loadKeys() {
  if (existsSync(cfg.keysFile)) {
    return JSON.parse(readFileSync(cfg.keysFile, 'utf8')).keys;
  }
  const keys = [newSigningKey()];
  saveKeys(keys);
  return keys;
}

function resourceFor(indicator) {
  return resources.find((r) => typeof indicator === 'string' && indicator.startsWith(r.prefix));
}

// Issued opaque tokens live in one store shared by every Provider instance of
// this process, so a key rotation (which builds a new instance) keeps them.
// A restart loses them, as it would with any in-memory deployment.
const maxStoredTokens = 10000;
const store = new Map();

class SharedMemoryAdapter {
  constructor(model) {
    this.model = model;
  }

  key(id) {
    return `${this.model}:${id}`;
  }

  async upsert(id, payload, expiresIn) {
    if (store.size >= maxStoredTokens) {
      const now = Date.now();
      for (const [k, v] of store) if (v.expiresAt <= now) store.delete(k);
      if (store.size >= maxStoredTokens) store.delete(store.keys().next().value);
    }
    const expiresAt = expiresIn ? Date.now() + expiresIn * 1000 : Infinity;
    store.set(this.key(id), { payload, expiresAt });
  }

  async find(id) {
    const entry = store.get(this.key(id));
    if (!entry) return undefined;
    if (entry.expiresAt <= Date.now()) {
      store.delete(this.key(id));
      return undefined;
    }
    return entry.payload;
  }

  async findByUid() {
    return undefined;
  }

  async findByUserCode() {
    return undefined;
  }

  async consume(id) {
    const entry = store.get(this.key(id));
    if (entry) entry.payload.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id) {
    store.delete(this.key(id));
  }

  async revokeByGrantId(grantId) {
    for (const [k, v] of store) if (v.payload.grantId === grantId) store.delete(k);
  }
}

const dpopNonceSecret = randomBytes(32);

const tenants = new Map(cfg.clients.map((c) => [c.client_id, c.tenant]));

function buildProvider(issuer, keys) {
  const provider = new Provider(issuer, {
    adapter: SharedMemoryAdapter,
    clients: cfg.clients.map((c) => ({
      client_id: c.client_id,
      client_secret: c.client_secret,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: c.token_endpoint_auth_method || 'client_secret_basic',
      ...(c.dpop_bound_access_tokens ? { dpop_bound_access_tokens: true } : {}),
      ...(c.scope ? { scope: c.scope } : {}),
    })),
    jwks: { keys },
    scopes: [...new Set(resources.flatMap((r) => (r.scope || '').split(' ').filter(Boolean)))],
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: {
        enabled: true,
        // Only authenticated confidential clients (such as the resource
        // server's own client) may introspect.
        allowedPolicy: async (ctx) => ctx.oidc.client.clientAuthMethod !== 'none',
      },
      revocation: { enabled: true },
      dPoP: {
        enabled: true,
        // The nonce secret is per process: a restart invalidates nonces,
        // which clients recover from with one use_dpop_nonce round trip.
        nonceSecret: dpopNonceSecret,
        requireNonce: () => cfg.dpopRequireNonce === true,
      },
      resourceIndicators: {
        enabled: true,
        // A client_credentials request without a resource gets no token:
        // every token in these tests is for one resource server.
        defaultResource: async (_ctx, _client, oneOf) => {
          if (oneOf) return oneOf;
          if (cfg.defaultResource) return cfg.defaultResource;
          throw new errors.InvalidTarget('a resource indicator (RFC 8707) is required');
        },
        useGrantedResource: async () => true,
        getResourceServerInfo: async (_ctx, indicator) => {
          const r = resourceFor(indicator);
          if (!r) throw new errors.InvalidTarget();
          return {
            scope: r.scope || '',
            audience: indicator,
            accessTokenTTL: r.ttl || 300,
            accessTokenFormat: r.format === 'opaque' ? 'opaque' : 'jwt',
            jwt: { sign: { alg: 'RS256' } },
          };
        },
      },
    },
    extraTokenClaims: async (_ctx, token) => {
      const tenant = tenants.get(token.clientId);
      return tenant ? { [tenantClaim]: tenant } : undefined;
    },
    ttl: { ClientCredentials: (_ctx, token) => token.resourceServer?.accessTokenTTL || 300 },
  });
  provider.on('server_error', (_ctx, err) => console.error('oidc-provider server_error:', err));
  return provider;
}

let keys = loadKeys();
let handler = null;
let issuer = '';

const server = createServer((req, res) => {
  if (!handler) {
    res.writeHead(503, { 'Retry-After': '1' }).end();
    return;
  }
  handler(req, res);
});

function emit(event) {
  process.stdout.write(`${JSON.stringify(event)}\n`);
}

function kids() {
  return keys.map((k) => k.kid);
}

function rotate(retire) {
  const next = newSigningKey();
  keys = retire ? [next] : [next, keys[0]];
  saveKeys(keys);
  handler = buildProvider(issuer, keys).callback();
  emit({ event: 'rotated', kids: kids() });
}

server.listen(cfg.port || 0, '127.0.0.1', () => {
  const { port } = server.address();
  issuer = `http://127.0.0.1:${port}`;
  handler = buildProvider(issuer, keys).callback();
  emit({ event: 'ready', issuer, port, kids: kids() });
});
server.on('error', (err) => {
  console.error(`listen: ${err.message}`);
  process.exit(1);
});

process.on('SIGHUP', () => rotate(false));
process.on('SIGUSR2', () => rotate(true));
for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => {
    server.closeAllConnections();
    server.close(() => process.exit(0));
  });
}
