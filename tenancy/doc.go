// Package tenancy determines the tenant of each request from verified
// claims and makes tenant-partitioned storage the easy path.
//
// # Resolving the tenant
//
// A Resolver reads the tenant from the auth.Principal that auth.Middleware
// verified: a claim (ClaimEntra "tid", ClaimAuth0Org "org_id",
// ClaimTenantID "tenant_id", or any claim path) or a TenantFunc. It never
// reads an unverified header. Tenant IDs must pass ValidateID (ASCII
// letters, digits, '-', '_', '.', at most 128 bytes, starting with a letter
// or digit); anything else is rejected, never repaired. An optional
// allow-list limits the tenants served, and a tenant is required unless
// Config.AllowMissingTenant is set.
//
// Resolve is the pure check; Handler is the HTTP middleware. Handler goes
// inside auth.Middleware and before mcp-go's Streamable HTTP server:
//
//	// A multi-tenant Entra ID app: auth accepts any tenant's issuer,
//	// tenancy decides which tenants are served.
//	validator, err := auth.NewJWTValidator(auth.JWTConfig{
//		IssuerTemplates: []string{"https://login.microsoftonline.com/{tid}/v2.0"},
//		JWKSURL:         "https://login.microsoftonline.com/common/discovery/v2.0/keys",
//		Audience:        "api://notes",
//	})
//	if err != nil { ... }
//	authMW, err := auth.Middleware(validator, auth.MiddlewareConfig{
//		ResourceMetadataURL: metadataURL,
//	})
//	if err != nil { ... }
//	resolver, err := tenancy.New(tenancy.Config{
//		Claim:   tenancy.ClaimEntra,
//		Allowed: []string{"72f988bf-86f1-41af-91ab-2d7cd011db47"},
//	})
//	if err != nil { ... }
//	mcpHTTP := server.NewStreamableHTTPServer(mcpServer)
//	http.Handle("/mcp", authMW(resolver.Middleware(mcpHTTP)))
//
// A request without a principal gets 401 (the auth middleware is missing:
// fail closed); a missing, invalid or disallowed tenant gets 403 with a
// JSON-RPC error body naming the reason (see Handler). Resolve has the
// TenantFunc signature, so a stdio server can resolve its one tenant with
// the same rules at start.
//
// In dual-token mode a trusted calling service may narrow the tenant with a
// header, choosing among tenants the verified claims grant; see Narrowing.
// No header is read unless Narrowing.Header is set.
//
// # Partitioned storage
//
// Tools read the tenant from the context (FromContext, or Require, which
// also validates and returns ErrNoTenant when there is none) and build
// every storage name from it. Each helper fails when the context has no
// tenant, so nothing can be stored outside a partition.
//
// Redis and other KV stores — Key builds "tenant:<id>:<part>:<part>" with
// ':' and '%' in parts escaped, so distinct inputs never share a key:
//
//	key, err := tenancy.Key(ctx, "notes", noteID) // tenant:acme:notes:42
//	if err != nil { return err }
//	err = rdb.Set(ctx, key, body, time.Hour).Err()
//
// S3 and other object stores — Prefix gives "tenants/<id>/":
//
//	prefix, err := tenancy.Prefix(ctx) // tenants/acme/
//	if err != nil { return err }
//	out, err := s3c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{
//		Bucket: aws.String(bucket), Prefix: aws.String(prefix),
//	})
//
// SQL — filter by the tenant from the context, and check each row with
// Check so that a query that forgot the filter fails instead of leaking:
//
//	tenant, err := tenancy.Require(ctx)
//	if err != nil { return err }
//	row := db.QueryRowContext(ctx,
//		`SELECT tenant_id, body FROM notes WHERE tenant_id = $1 AND id = $2`,
//		tenant, noteID)
//	var owner, body string
//	if err := row.Scan(&owner, &body); err != nil { return err }
//	if err := tenancy.Check(ctx, owner); err != nil { return err }
//
// Tenant IDs are compared byte for byte. A store that compares
// case-insensitively (some SQL collations) needs tenant IDs that are
// case-free, such as Entra's GUIDs.
//
// # Dependencies
//
// Besides the standard library, through auth: github.com/mark3labs/mcp-go (with its own google/jsonschema-go, google/uuid,
// santhosh-tekuri/jsonschema, spf13/cast and yosida95/uritemplate),
// golang-jwt/jwt/v5, MicahParks/jwkset, golang.org/x/sync, golang.org/x/text
// and golang.org/x/time.
package tenancy
