// Package jobtoken issues and checks signed job tokens: short EdDSA JWTs
// that let a long-running task act for a user after the user's own access
// token has expired, bound to that exact token and narrowed to a subset of
// its scopes. Package auth validates access tokens as a resource server;
// issuing tokens is this package's role alone.
//
// # Typical wiring
//
//	issuer, err := jobtoken.NewIssuer(jobtoken.IssuerConfig{
//		Issuer:   "https://mcp.example.com/jobs",
//		Audience: "https://mcp.example.com/mcp#jobs",
//		Key:      signingKey, // ed25519.PrivateKey, kept on the server
//		Original: users,      // the *auth.JWTValidator of the users' tokens
//	})
//	if err != nil { ... }
//	jobs, err := jobtoken.NewValidator(jobtoken.ValidatorConfig{
//		Issuer:   "https://mcp.example.com/jobs",
//		Audience: "https://mcp.example.com/mcp#jobs",
//		Keys:     map[string]ed25519.PublicKey{issuer.KeyID(): issuer.PublicKey()},
//		Original: users,
//		Revoked:  jobStore.IsRevoked, // optional
//	})
//
// # How it works
//
// When a tool starts a task that may outlive the user's access token, it
// mints a job token with an Issuer: an EdDSA JWT (typ job+jwt, its own
// iss and aud) carrying the job ID, the user's iss, sub and tenant, a
// subset of the user's scopes, the original token's iat and exp, and
// "ath", the SHA-256 of that exact original token; minted in a
// dual-token request (a service acting for the user), it also names that
// service as "act", and the job acts through it. Minting verifies the
// original token as a normal request would, so it must be valid then.
//
//	jobTok, err := issuer.Mint(ctx, jobtoken.Request{
//		JobID:    jobID,
//		Original: cred, // auth.CredentialFromContext(ctx)
//		Scopes:   []string{"reports:write"},
//		Tenant:   tenant, // tenancy.FromContext(ctx)
//	})
//
// Hours later the task presents both tokens to Validator.Validate. It
// verifies the job token (signature, iss, aud, unexpired, lifetime within
// MaxLifetime), asks the Revoked hook, checks the binding hash, verifies
// the original token's signature, issuer, audience and every other rule
// except its expiry, checks that the job token was issued while the
// original was valid and that its scopes are a subset of the original's.
// The result is an auth.KindJob principal with JobID set, the narrowed Scopes
// and the job token's claims; policies can refuse job principals for tools
// that must be used interactively.
//
// Threat model. The server holds the Ed25519 signing key; job tokens are
// bearer credentials and should be stored like the user's token (encrypted
// with the job, never logged — keep them in an auth.Credential).
//
//   - A stolen job token alone is useless: it works only together with the
//     exact original token it is bound to.
//   - A stolen pair (job token and original token, for instance read from
//     the job queue) lets the thief act as that user, with the job's
//     narrowed scopes only and as an auth.KindJob principal, until the job token's
//     exp: at most MaxLifetime after minting (4 h by default, one week at
//     most), even though the original has expired. It cannot widen the
//     scopes, change the user or tenant, or mint further job tokens
//     (minting needs an original that is valid now, and the key).
//   - A stolen original token alone is the usual bearer-token risk, bounded
//     by its own exp; it gives no access to existing jobs.
//   - A stolen signing key is serious: with it and any token the user ever
//     held, a thief can mint job tokens for that user's scopes. Rotate the
//     key: removing it from ValidatorConfig.Keys revokes every job token
//     it signed.
//
// To revoke: deny the job ID in the Revoked hook (effective on the next
// call, cached or not — wire it to job cancellation and off-boarding); set
// ValidatorConfig.Revoker to the user validator's auth.Revoker, so that
// revoking the user's token (by its jti or its session, as logout does)
// ends the jobs minted from it, and revoking a user (a subject before a
// time) ends the jobs minted from the tokens they held before it. Revoking
// the user's session at the identity provider alone does not reach job
// tokens: it must reach the Revoker or the Revoked hook. Remove the
// signing key to revoke all jobs at once; or let the job token expire. If the identity provider
// retires the key that signed the original token, the job fails closed:
// keep job lifetimes shorter than the provider's key-rotation overlap.
// Opaque (introspected) tokens cannot be originals: once expired, the
// authorization server no longer vouches for them. Nor can DPoP-bound
// tokens (RFC 9449, "cnf"): the worker presents the pair without a proof
// of the client's key, so a job would turn a sender-constrained token into
// a bearer credential; Mint and Validate refuse them, and a validator with
// auth.DPoPRequired mints no jobs.
//
// The Validator checks the original token through a private seam of package
// auth (internal/jobseam): the user-token validator's every rule except its
// expiry, reachable only from this package, never from a path that accepts
// a token on its own.
//
// # Dependencies
//
// Besides the standard library: package auth and what it pulls in
// (github.com/mark3labs/mcp-go with its own dependencies, golang-jwt/jwt/v5,
// MicahParks/jwkset, golang.org/x/sync, golang.org/x/text and
// golang.org/x/time). No Redis, no OpenTelemetry.
package jobtoken
