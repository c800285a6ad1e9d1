package jobtoken

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/internal/oauthsyntax"
)

// IssuerConfig configures an Issuer. Issuer, Audience, Key and Original
// are required.
type IssuerConfig struct {
	// Issuer is the "iss" of job tokens: an absolute URL naming this
	// server's job issuer, which must not be an issuer of user tokens.
	Issuer string
	// Audience is the "aud" of job tokens, such as this server's resource
	// URI with a "#jobs" suffix. The Validator must expect the same.
	Audience string
	// Key signs job tokens with EdDSA (Ed25519, RFC 8037). Keep it on the
	// server; the Validator needs only its public half.
	Key ed25519.PrivateKey
	// KeyID is the "kid" header. Empty means the RFC 7638 thumbprint of
	// the public key.
	KeyID string
	// Original verifies the user's token when a job is created — the
	// normal path: it must be valid now. Its issuers must not include
	// Issuer.
	Original *auth.JWTValidator
	// MaxLifetime caps every job token's lifetime and is the default one.
	// Zero means DefaultLifetime (4 h); at most LifetimeLimit.
	MaxLifetime time.Duration
	// TenantClaim is the claim carrying Request.Tenant. Empty means
	// DefaultTenantClaim. Use the claim package tenancy resolves, so a job
	// principal lands in its user's tenant.
	TenantClaim string
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
}

// Request describes a job token to mint.
type Request struct {
	// JobID identifies the job (for revocation and audit): 1 to 256
	// printable ASCII characters, no spaces. Required.
	JobID string
	// Original is the user's access token exactly as it was presented,
	// normally auth.CredentialFromContext of the request that creates the
	// job. The job token is bound to its SHA-256. Required.
	Original auth.Credential
	// Scopes are the scopes the job may use: a non-empty subset of the
	// user's scopes. Ask for the least the job needs.
	Scopes []string
	// Tenant is the user's tenant (tenancy.FromContext), carried in
	// IssuerConfig.TenantClaim. Empty omits the claim.
	Tenant string
	// Lifetime is how long the job token lives. Zero means
	// IssuerConfig.MaxLifetime; more than that is an error.
	Lifetime time.Duration
}

// Issuer mints signed job tokens: short JWTs (EdDSA, typ job+jwt) that let
// a long-running task act for a user after the user's own token has
// expired, bound to that exact token and narrowed to a subset of its
// scopes. See the package documentation for the threat model.
//
// A job token carries iss and aud (the issuer's own), sub and user_iss
// (the user's subject and issuer), the tenant, job_id, scope, client_id,
// orig_iat and orig_exp (the original token's), ath (the base64url SHA-256
// of the original token), iat, exp and a random jti; and act (RFC 8693
// §4.1: the actor's iss, sub and client_id) when it was minted in a
// dual-token request, where a service acts for the user.
//
// Construct it with NewIssuer. It is safe for concurrent use.
type Issuer struct {
	issuer, audience string
	key              ed25519.PrivateKey
	kid              string
	original         *auth.JWTValidator
	maxLifetime      time.Duration
	tenantClaim      string
	now              func() time.Time
}

// NewIssuer checks cfg and returns an issuer. Mistakes are errors naming
// the field and wrapping auth.ErrConfig.
func NewIssuer(cfg IssuerConfig) (*Issuer, error) {
	cfgErr := func(field, format string, args ...any) error {
		return configError("IssuerConfig", field, fmt.Sprintf(format, args...))
	}
	if _, err := parties("IssuerConfig", cfg.Original, cfg.Issuer, cfg.Audience); err != nil {
		return nil, err
	}
	i := &Issuer{issuer: cfg.Issuer, audience: cfg.Audience, original: cfg.Original,
		kid: cfg.KeyID, tenantClaim: cfg.TenantClaim, now: cfg.Now}
	if len(cfg.Key) != ed25519.PrivateKeySize {
		return nil, cfgErr("Key", "an Ed25519 private key of %d bytes is required", ed25519.PrivateKeySize)
	}
	i.key = slices.Clone(cfg.Key)
	if i.kid == "" {
		i.kid = keyID(i.PublicKey())
	} else if !printable(i.kid) {
		return nil, cfgErr("KeyID", "must be 1 to %d printable ASCII characters", maxField)
	}
	var err error
	if i.maxLifetime, err = lifetime(cfg.MaxLifetime); err != nil {
		return nil, cfgErr("MaxLifetime", "%v", err)
	}
	if i.tenantClaim == "" {
		i.tenantClaim = DefaultTenantClaim
	} else if !printable(i.tenantClaim) || isReservedClaim(i.tenantClaim) {
		return nil, cfgErr("TenantClaim", "%q is not a usable claim name", i.tenantClaim)
	}
	if i.now == nil {
		i.now = time.Now
	}
	return i, nil
}

// PublicKey returns the public key that verifies this issuer's job tokens,
// for ValidatorConfig.Keys.
func (i *Issuer) PublicKey() ed25519.PublicKey {
	return slices.Clone(i.key.Public().(ed25519.PublicKey))
}

// KeyID returns the "kid" of this issuer's job tokens, the key of
// PublicKey in ValidatorConfig.Keys.
func (i *Issuer) KeyID() string { return i.kid }

// keyID returns the RFC 7638 JWK thumbprint of an Ed25519 public key
// (base64url SHA-256 of {"crv":"Ed25519","kty":"OKP","x":…}), the default
// key ID of job tokens.
func keyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256([]byte(`{"crv":"Ed25519","kty":"OKP","x":"` + base64.RawURLEncoding.EncodeToString(pub) + `"}`))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// Mint verifies req.Original with the Original validator (it must be valid
// now), checks that req.Scopes is a subset of its scopes, and returns a
// signed job token. When req.Original is the credential of ctx's request
// (auth.CredentialFromContext) and that request's principal acts through
// a service (auth.FromContext, Actor set: a dual-token request), the job
// records the actor, and its principal acts through that service too. The original must be a bearer token: a DPoP-bound one
// (carrying "cnf") is refused, since the job's worker holds no proof key
// and the pair would let anyone holding it act without that key; with
// DPoPRequired on the Original validator, no job can be minted. Errors
// never contain either token; a token that does not verify, or is bound,
// gives an error wrapping auth.ErrInvalidToken (or auth.ErrExpired), scopes the user lacks give one wrapping
// auth.ErrInsufficientScope, and a malformed request one wrapping
// auth.ErrConfig.
func (i *Issuer) Mint(ctx context.Context, req Request) (string, error) {
	badReq := func(format string, args ...any) error {
		return fmt.Errorf("%w: %w: Request.%s", errIssuer, auth.ErrConfig, fmt.Sprintf(format, args...))
	}
	switch {
	case !printable(req.JobID):
		return "", badReq("JobID must be 1 to %d printable ASCII characters without spaces", maxField)
	case req.Original.IsZero():
		return "", badReq("Original is required")
	case len(req.Scopes) == 0:
		return "", badReq("Scopes must name at least one scope")
	case req.Tenant != "" && !printable(req.Tenant):
		return "", badReq("Tenant must be at most %d printable ASCII characters without spaces", maxField)
	case req.Lifetime < 0 || req.Lifetime > i.maxLifetime:
		return "", badReq("Lifetime %s is outside (0, %s]", req.Lifetime, i.maxLifetime)
	}
	var scopes []string
	for _, s := range req.Scopes {
		if !oauthsyntax.IsScopeToken(s) {
			return "", badReq("Scopes holds an empty or malformed scope")
		}
		if !slices.Contains(scopes, s) {
			scopes = append(scopes, s)
		}
	}
	lifetime := req.Lifetime
	if lifetime == 0 {
		lifetime = i.maxLifetime
	}

	original := req.Original.Reveal()
	p, err := i.original.Validate(ctx, original)
	if err != nil {
		return "", fmt.Errorf("%w: original token: %w", errIssuer, err)
	}
	if _, bound := p.Claims.Get("cnf"); bound {
		// The worker re-checks the original without a request, hence
		// without a DPoP proof: the job would be a bearer credential.
		return "", fmt.Errorf("%w: original token: %w: it is sender-constrained (cnf); a job needs a bearer token", errIssuer, auth.ErrInvalidToken)
	}
	if missing := missingScopes(p, scopes); len(missing) > 0 {
		return "", fmt.Errorf("%w: %w: the user lacks %s", errIssuer, auth.ErrInsufficientScope, strings.Join(missing, " "))
	}
	now := i.now()
	if !now.Before(p.Expiry) {
		return "", fmt.Errorf("%w: %w: the original token expires before the job token would be issued", errIssuer, auth.ErrExpired)
	}
	claims := map[string]any{
		"iss": i.issuer, "aud": i.audience, "sub": p.Subject,
		"iat": now.Unix(), "exp": now.Add(lifetime).Unix(), "jti": randomTokenID(),
		"scope": strings.Join(scopes, " "), claimJobID: req.JobID,
		claimUserIssuer: p.Issuer, claimOrigExpiry: p.Expiry.Unix(), claimOrigHash: tokenHash(original),
	}
	if !p.IssuedAt.IsZero() {
		claims[claimOrigIssuedAt] = p.IssuedAt.Unix()
	}
	if p.ClientID != "" {
		claims["client_id"] = p.ClientID
	}
	if req.Tenant != "" {
		claims[i.tenantClaim] = req.Tenant
	}
	if a := requestActor(ctx, req.Original); a != nil {
		act := map[string]any{"sub": a.Subject}
		if a.Issuer != "" {
			act["iss"] = a.Issuer
		}
		if a.ClientID != "" {
			act["client_id"] = a.ClientID
		}
		claims[claimActor] = act
	}
	return i.sign(claims)
}

// requestActor returns the actor of ctx's request when original is that
// request's own credential: the service a dual-token request acts through
// (auth.Principal.Actor). A token the request did not present takes no
// actor from it.
func requestActor(ctx context.Context, original auth.Credential) *auth.Principal {
	cred, ok := auth.CredentialFromContext(ctx)
	if !ok || cred.Digest() != original.Digest() {
		return nil
	}
	if p, ok := auth.FromContext(ctx); ok && p.Actor != nil && p.Actor.Subject != "" {
		return p.Actor
	}
	return nil
}

// sign builds the compact JWS of claims with the EdDSA key.
func (i *Issuer) sign(claims map[string]any) (string, error) {
	h, err := json.Marshal(map[string]string{"alg": "EdDSA", "typ": Type, "kid": i.kid})
	if err != nil {
		return "", fmt.Errorf("%w: encoding the header: %w", errIssuer, err)
	}
	c, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("%w: encoding the claims: %w", errIssuer, err)
	}
	b64 := base64.RawURLEncoding
	input := b64.EncodeToString(h) + "." + b64.EncodeToString(c)
	return input + "." + b64.EncodeToString(ed25519.Sign(i.key, []byte(input))), nil
}

func randomTokenID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
