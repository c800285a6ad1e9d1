// Package oidcprovider runs a real, OpenID-certified authorization server
// (the npm package oidc-provider, driven by js/oidc-provider.mjs) as a child
// process on loopback, for mcpguard's end-to-end tests.
//
// The provider issues access tokens with the client_credentials grant only,
// for a resource named with an RFC 8707 resource indicator: RFC 9068 JWT
// access tokens (typ "at+jwt", aud = the resource) or opaque tokens for RFC
// 7662 introspection, each carrying the client's tenant in a claim. It can
// rotate its signing keys and be restarted on the same issuer.
//
// Typical use in a test:
//
//	p, err := oidcprovider.Start(ctx, oidcprovider.Config{
//		JSDir:   "../js",
//		WorkDir: t.TempDir(),
//		Clients: []oidcprovider.Client{{ID: "acme-app", Secret: "…", Scope: "tools:read", Tenant: "acme"}},
//		Resources: []oidcprovider.Resource{{Prefix: "http://127.0.0.1:", Scope: "tools:read"}},
//	})
//	defer p.Stop()
//	tok, err := p.ClientCredentials(ctx, "acme-app", "…", resource, "tools:read")
//
// Start returns ErrNotInstalled when Node or the npm modules are missing
// (run `npm ci` in JSDir); tests skip on it, CI installs them first.
package oidcprovider
