package auth

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/mcpguard/mcpguard/internal/oauthsyntax"
)

// Job token defaults and limits.
const (
	// DefaultJobLifetime is the lifetime of a job token when neither the
	// request nor the configuration asks for less.
	DefaultJobLifetime = 4 * time.Hour
	// MaxJobLifetime is the largest MaxLifetime accepted: one week.
	MaxJobLifetime = 7 * 24 * time.Hour
	// JobTokenType is the "typ" header of job tokens (RFC 7515 §4.1.9). A
	// JWTValidator refuses it, so a job token is never mistaken for an
	// access token; a JobValidator requires it, so an access token is never
	// mistaken for a job token.
	JobTokenType = "job+jwt"
	// DefaultJobTenantClaim is the claim that carries the tenant in job
	// tokens when JobIssuerConfig.TenantClaim is empty. It matches package
	// tenancy's default claim, so a job principal resolves to its tenant
	// like the user did.
	DefaultJobTenantClaim = "tenant_id"
)

// Claims of a job token besides iss, sub, aud, iat, exp, jti, scope
// (space-separated, RFC 8693 §4.2), client_id and the tenant claim.
const (
	claimJobID        = "job_id"   // the job's identifier, for revocation
	claimUserIssuer   = "user_iss" // the original token's "iss"
	claimOrigIssuedAt = "orig_iat" // the original token's "iat", when it has one
	claimOrigExpiry   = "orig_exp" // the original token's "exp"
	claimOrigHash     = "ath"      // base64url SHA-256 of the exact original token (as RFC 9449 §4.2 binds a proof to a token)
	maxJobField       = 256
)

// Client-safe descriptions of job-token rejections.
const (
	descJobRevoked      = "the job has been revoked"
	descJobBinding      = "the original token does not belong to this job token"
	descJobWindow       = "the job token was not issued while the original token was valid"
	descJobScopes       = "the job token's scopes exceed the user's"
	descJobUser         = "the job token and the original token name different users"
	descJobLifetime     = "the job token's lifetime exceeds the configured maximum"
	descJobRevokeFailed = "the job's revocation status is temporarily unavailable"
	prefixOriginal      = "original token: "
)

// errJobIssuer prefixes the errors of JobIssuer.Mint.
var errJobIssuer = errors.New("auth: job issuer")

// isReservedJobClaim reports whether name is a claim the job token sets
// itself, which TenantClaim must not overwrite.
func isReservedJobClaim(name string) bool {
	switch name {
	case "iss", "sub", "aud", "iat", "exp", "nbf", "jti", "scope", "scp", "client_id", "act", "cnf",
		claimJobID, claimUserIssuer, claimOrigIssuedAt, claimOrigExpiry, claimOrigHash:
		return true
	}
	return false
}

// JobIssuerConfig configures a JobIssuer. Issuer, Audience, Key and
// Original are required.
type JobIssuerConfig struct {
	// Issuer is the "iss" of job tokens: an absolute URL naming this
	// server's job issuer, which must not be an issuer of user tokens.
	Issuer string
	// Audience is the "aud" of job tokens, such as this server's resource
	// URI with a "/jobs" suffix. The JobValidator must expect the same.
	Audience string
	// Key signs job tokens with EdDSA (Ed25519, RFC 8037). Keep it on the
	// server; the JobValidator needs only its public half.
	Key ed25519.PrivateKey
	// KeyID is the "kid" header. Empty means the RFC 7638 thumbprint of
	// the public key.
	KeyID string
	// Original verifies the user's token when a job is created — the
	// normal path: it must be valid now. Its issuers must not include
	// Issuer.
	Original *JWTValidator
	// MaxLifetime caps every job token's lifetime and is the default one.
	// Zero means DefaultJobLifetime (4 h); at most MaxJobLifetime.
	MaxLifetime time.Duration
	// TenantClaim is the claim carrying JobRequest.Tenant. Empty means
	// DefaultJobTenantClaim. Use the claim package tenancy resolves, so a
	// job principal lands in its user's tenant.
	TenantClaim string
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
}

// JobRequest describes a job token to mint.
type JobRequest struct {
	// JobID identifies the job (for revocation and audit): 1 to 256
	// printable ASCII characters, no spaces. Required.
	JobID string
	// Original is the user's access token exactly as it was presented,
	// normally CredentialFromContext of the request that creates the job.
	// The job token is bound to its SHA-256. Required.
	Original Credential
	// Scopes are the scopes the job may use: a non-empty subset of the
	// user's scopes. Ask for the least the job needs.
	Scopes []string
	// Tenant is the user's tenant (tenancy.FromContext), carried in
	// JobIssuerConfig.TenantClaim. Empty omits the claim.
	Tenant string
	// Lifetime is how long the job token lives. Zero means
	// JobIssuerConfig.MaxLifetime; more than that is an error.
	Lifetime time.Duration
}

// JobIssuer mints signed job tokens: short JWTs (EdDSA, typ job+jwt) that
// let a long-running task act for a user after the user's own token has
// expired, bound to that exact token and narrowed to a subset of its
// scopes. See the package documentation for the threat model.
//
// A job token carries iss and aud (the issuer's own), sub and user_iss
// (the user's subject and issuer), the tenant, job_id, scope, client_id,
// orig_iat and orig_exp (the original token's), ath (the base64url SHA-256
// of the original token), iat, exp and a random jti.
//
// Construct it with NewJobIssuer. It is safe for concurrent use.
type JobIssuer struct {
	issuer, audience string
	key              ed25519.PrivateKey
	kid              string
	original         *JWTValidator
	maxLifetime      time.Duration
	tenantClaim      string
	now              func() time.Time
}

// NewJobIssuer checks cfg and returns an issuer. Mistakes are errors
// naming the field and wrapping ErrConfig.
func NewJobIssuer(cfg JobIssuerConfig) (*JobIssuer, error) {
	cfgErr := func(field, format string, args ...any) error {
		return fmt.Errorf("%w: JobIssuerConfig.%s: %s", ErrConfig, field, fmt.Sprintf(format, args...))
	}
	i := &JobIssuer{issuer: cfg.Issuer, audience: cfg.Audience, original: cfg.Original,
		kid: cfg.KeyID, tenantClaim: cfg.TenantClaim, now: cfg.Now}
	if err := checkJobParties(cfg.Issuer, cfg.Audience, cfg.Original); err != nil {
		return nil, cfgErr(err.field, "%s", err.msg)
	}
	if len(cfg.Key) != ed25519.PrivateKeySize {
		return nil, cfgErr("Key", "an Ed25519 private key of %d bytes is required", ed25519.PrivateKeySize)
	}
	i.key = slices.Clone(cfg.Key)
	if i.kid == "" {
		i.kid = JobKeyID(i.PublicKey())
	} else if !printableField(i.kid) {
		return nil, cfgErr("KeyID", "must be 1 to %d printable ASCII characters", maxJobField)
	}
	var err error
	if i.maxLifetime, err = durationOr(cfg.MaxLifetime, DefaultJobLifetime, time.Second, MaxJobLifetime); err != nil {
		return nil, cfgErr("MaxLifetime", "%v", err)
	}
	if i.tenantClaim == "" {
		i.tenantClaim = DefaultJobTenantClaim
	} else if !printableField(i.tenantClaim) || isReservedJobClaim(i.tenantClaim) {
		return nil, cfgErr("TenantClaim", "%q is not a usable claim name", i.tenantClaim)
	}
	if i.now == nil {
		i.now = time.Now
	}
	return i, nil
}

// PublicKey returns the public key that verifies this issuer's job tokens,
// for JobValidatorConfig.Keys.
func (i *JobIssuer) PublicKey() ed25519.PublicKey {
	return slices.Clone(i.key.Public().(ed25519.PublicKey))
}

// KeyID returns the "kid" of this issuer's job tokens.
func (i *JobIssuer) KeyID() string { return i.kid }

// JobKeyID returns the RFC 7638 JWK thumbprint of an Ed25519 public key
// (base64url SHA-256 of {"crv":"Ed25519","kty":"OKP","x":…}), the default
// key ID of job tokens.
func JobKeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256([]byte(`{"crv":"Ed25519","kty":"OKP","x":"` + base64.RawURLEncoding.EncodeToString(pub) + `"}`))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// Mint verifies req.Original with the Original validator (it must be valid
// now), checks that req.Scopes is a subset of its scopes, and returns a
// signed job token. Errors never contain either token; a token that does
// not verify gives the validator's error (errors.Is ErrInvalidToken or
// ErrExpired), scopes the user lacks give one wrapping
// ErrInsufficientScope, and a malformed request one wrapping ErrConfig.
func (i *JobIssuer) Mint(ctx context.Context, req JobRequest) (string, error) {
	badReq := func(format string, args ...any) error {
		return fmt.Errorf("%w: %w: JobRequest.%s", errJobIssuer, ErrConfig, fmt.Sprintf(format, args...))
	}
	switch {
	case !printableField(req.JobID):
		return "", badReq("JobID must be 1 to %d printable ASCII characters without spaces", maxJobField)
	case req.Original.IsZero():
		return "", badReq("Original is required")
	case len(req.Scopes) == 0:
		return "", badReq("Scopes must name at least one scope")
	case req.Tenant != "" && !printableField(req.Tenant):
		return "", badReq("Tenant must be at most %d printable ASCII characters without spaces", maxJobField)
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
		return "", fmt.Errorf("%w: original token: %w", errJobIssuer, err)
	}
	if missing := missingScopes(p, scopes); len(missing) > 0 {
		return "", fmt.Errorf("%w: %w: the user lacks %s", errJobIssuer, ErrInsufficientScope, strings.Join(missing, " "))
	}
	now := i.now()
	if !now.Before(p.Expiry) {
		return "", fmt.Errorf("%w: %w: the original token expires before the job token would be issued", errJobIssuer, ErrExpired)
	}
	claims := map[string]any{
		"iss": i.issuer, "aud": i.audience, "sub": p.Subject,
		"iat": now.Unix(), "exp": now.Add(lifetime).Unix(), "jti": randomJobTokenID(),
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
	return i.sign(claims)
}

// sign builds the compact JWS of claims with the EdDSA key.
func (i *JobIssuer) sign(claims map[string]any) (string, error) {
	h, err := json.Marshal(map[string]string{"alg": "EdDSA", "typ": JobTokenType, "kid": i.kid})
	if err != nil {
		return "", fmt.Errorf("%w: encoding the header: %w", errJobIssuer, err)
	}
	c, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("%w: encoding the claims: %w", errJobIssuer, err)
	}
	input := b64.EncodeToString(h) + "." + b64.EncodeToString(c)
	return input + "." + b64.EncodeToString(ed25519.Sign(i.key, []byte(input))), nil
}

// JobValidatorConfig configures a JobValidator. Issuer, Audience, Keys and
// Original are required.
type JobValidatorConfig struct {
	// Issuer and Audience must equal those of the JobIssuer.
	Issuer   string
	Audience string
	// Keys maps key IDs to the Ed25519 public keys that may sign job
	// tokens (JobIssuer.KeyID and PublicKey). Keep a retired key here until
	// the last token it signed has expired (MaxLifetime).
	Keys map[string]ed25519.PublicKey
	// Original verifies the user's original token: signature, issuer,
	// audience, client and scopes exactly as for a request, except that
	// an expiry in the past is accepted. It must be the validator the
	// JobIssuer used; its issuers must not include Issuer.
	Original *JWTValidator
	// Revoked, when set, is asked about every job token that passed the
	// signature check; true rejects it, an error fails closed with a
	// 503-class error. It must be safe for concurrent use. Nil means job
	// tokens are revoked only by expiry or by removing their key.
	Revoked func(ctx context.Context, jobID string) (bool, error)
	// MaxLifetime refuses job tokens whose exp - iat exceeds it. Zero
	// means DefaultJobLifetime; at most MaxJobLifetime. Use the
	// JobIssuer's value.
	MaxLifetime time.Duration
	// Leeway tolerates clock skew on the job token's exp and iat and on
	// the lower bound of the original's validity window. Zero means
	// DefaultLeeway; at most MaxLeeway.
	Leeway time.Duration
	// CacheSize is the capacity of the verified-pair cache (entries live
	// until the job token's exp; Revoked is still asked on every call).
	// Zero means 1,000.
	CacheSize int
	// DisableCache verifies every pair from scratch.
	DisableCache bool
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
}

// JobValidator validates a job token together with the user's original
// token, which may have expired. See ValidateJob and the package
// documentation's threat model.
//
// Construct it with NewJobValidator. It is safe for concurrent use.
type JobValidator struct {
	issuer, audience string
	keys             map[string]ed25519.PublicKey
	original         *JWTValidator
	revoked          func(context.Context, string) (bool, error)
	maxLifetime      time.Duration
	leeway           time.Duration
	cache            *tokenCache
	now              func() time.Time
}

// NewJobValidator checks cfg and returns a validator. Mistakes are errors
// naming the field and wrapping ErrConfig.
func NewJobValidator(cfg JobValidatorConfig) (*JobValidator, error) {
	cfgErr := func(field, format string, args ...any) error {
		return fmt.Errorf("%w: JobValidatorConfig.%s: %s", ErrConfig, field, fmt.Sprintf(format, args...))
	}
	if err := checkJobParties(cfg.Issuer, cfg.Audience, cfg.Original); err != nil {
		return nil, cfgErr(err.field, "%s", err.msg)
	}
	v := &JobValidator{issuer: cfg.Issuer, audience: cfg.Audience, original: cfg.Original,
		revoked: cfg.Revoked, now: cfg.Now, keys: make(map[string]ed25519.PublicKey, len(cfg.Keys))}
	if len(cfg.Keys) == 0 {
		return nil, cfgErr("Keys", "at least one public key is required")
	}
	for kid, k := range cfg.Keys {
		if !printableField(kid) || len(k) != ed25519.PublicKeySize {
			return nil, cfgErr("Keys", "key %q: need a printable key ID and a %d-byte Ed25519 public key", kid, ed25519.PublicKeySize)
		}
		v.keys[kid] = slices.Clone(k)
	}
	var err error
	if v.maxLifetime, err = durationOr(cfg.MaxLifetime, DefaultJobLifetime, time.Second, MaxJobLifetime); err != nil {
		return nil, cfgErr("MaxLifetime", "%v", err)
	}
	if v.leeway, err = durationOr(cfg.Leeway, DefaultLeeway, 0, MaxLeeway); err != nil {
		return nil, cfgErr("Leeway", "%v", err)
	}
	switch {
	case cfg.CacheSize < 0 || cfg.CacheSize > 1_000_000:
		return nil, cfgErr("CacheSize", "must be between 0 and 1,000,000")
	case cfg.DisableCache:
	case cfg.CacheSize == 0:
		v.cache = newTokenCache(1_000)
	default:
		v.cache = newTokenCache(cfg.CacheSize)
	}
	if v.now == nil {
		v.now = time.Now
	}
	return v, nil
}

// ValidateJob checks a job token and the user's original token and returns
// a KindJob principal. In order:
//
//  1. the job token: compact JWS, alg EdDSA, typ job+jwt, a kid from Keys
//     and a valid signature; iss and aud as configured; exp not passed
//     (with Leeway); iat present and not in the future; exp - iat within
//     MaxLifetime; job_id, sub, user_iss, scope, orig_exp and ath present;
//  2. the Revoked hook for job_id;
//  3. the binding: the SHA-256 of originalToken equals ath (constant time);
//  4. the original token, with the Original validator's every rule —
//     signature, issuer, audience, client, nbf, scopes — except expiry;
//  5. the same user (sub and iss) and the same original (orig_exp,
//     orig_iat) in both tokens;
//  6. the job token's iat within the original's validity window: not
//     after its exp, not before its iat (minus Leeway);
//  7. the job's scopes a subset of the original's.
//
// The principal has Kind KindJob, JobID, the user's Subject, Issuer,
// ClientID and Audience (from the original), the job's Scopes, Expiry
// (the job token's exp), IssuedAt and TokenID, and the job token's claims
// as Claims (the tenant under the issuer's TenantClaim). Its Scopes are
// the narrowed ones: never derive scopes from the original's claims.
//
// Errors are *Error values: invalid_token (401) for any defect of either
// token (ErrExpired when the job token expired), 503 when the keys or the
// revocation hook are unavailable. No error contains either token.
func (v *JobValidator) ValidateJob(ctx context.Context, jobToken, originalToken string) (*Principal, error) {
	if len(jobToken) > v.original.maxSize || len(originalToken) > v.original.maxSize {
		return nil, InvalidToken(descTooLarge, fmt.Errorf("%w: token longer than %d bytes", ErrInvalidToken, v.original.maxSize))
	}
	var ck tokenKey
	if v.cache != nil {
		ck = pairKey(jobToken, originalToken)
		if p := v.cache.get(ck, v.now()); p != nil {
			if err := v.checkRevoked(ctx, p.JobID); err != nil {
				return nil, err
			}
			cp := *p
			return &cp, nil
		}
	}
	p, vk, err := v.verify(ctx, jobToken, originalToken)
	if err != nil {
		return nil, err
	}
	if v.cache != nil {
		// The entry lives as long as the key of the original token does.
		v.cache.put(ck, p, p.Expiry, vk)
	}
	cp := *p
	return &cp, nil
}

func (v *JobValidator) verify(ctx context.Context, jobToken, originalToken string) (*Principal, *verifyKey, error) {
	now := v.now()
	m, serr := v.verifyJobSignature(jobToken)
	if serr != nil {
		return nil, nil, serr
	}
	job, cerr := v.jobClaims(m, now)
	if cerr != nil {
		return nil, nil, cerr
	}
	if err := v.checkRevoked(ctx, job.id); err != nil {
		return nil, nil, err
	}
	if subtle.ConstantTimeCompare([]byte(tokenHash(originalToken)), []byte(job.ath)) != 1 {
		return nil, nil, InvalidToken(descJobBinding, fmt.Errorf("%w: the original token's hash differs from the job token's ath", ErrInvalidToken))
	}
	op, vk, err := v.original.verifyIgnoringExpiry(ctx, originalToken)
	if err != nil {
		return nil, nil, prefixed(prefixOriginal, err)
	}
	switch {
	case op.Subject != job.sub || op.Issuer != job.userIss:
		return nil, nil, InvalidToken(descJobUser, fmt.Errorf("%w: sub or iss differ between the job token and the original", ErrInvalidToken))
	case op.Expiry.Unix() != job.origExp || (job.hasOrigIAT && op.IssuedAt.Unix() != job.origIAT):
		return nil, nil, InvalidToken(descJobBinding, fmt.Errorf("%w: orig_exp or orig_iat differ from the original token's", ErrInvalidToken))
	case job.iat.After(op.Expiry):
		return nil, nil, InvalidToken(descJobWindow, fmt.Errorf("%w: job token issued at %s, after the original expired at %s",
			ErrInvalidToken, job.iat.UTC().Format(time.RFC3339), op.Expiry.UTC().Format(time.RFC3339)))
	case !op.IssuedAt.IsZero() && job.iat.Before(op.IssuedAt.Add(-v.leeway)):
		return nil, nil, InvalidToken(descJobWindow, fmt.Errorf("%w: job token issued at %s, before the original was issued at %s",
			ErrInvalidToken, job.iat.UTC().Format(time.RFC3339), op.IssuedAt.UTC().Format(time.RFC3339)))
	}
	if missing := missingScopes(op, job.scopes); len(missing) > 0 {
		return nil, nil, InvalidToken(descJobScopes, fmt.Errorf("%w: the original token lacks %d of the job's scopes", ErrInvalidToken, len(missing)))
	}
	return &Principal{
		Kind:     KindJob,
		Subject:  op.Subject,
		Issuer:   op.Issuer,
		ClientID: op.ClientID,
		Audience: op.Audience,
		Scopes:   job.scopes,
		Expiry:   job.exp,
		IssuedAt: job.iat,
		TokenID:  job.jti,
		JobID:    job.id,
		Claims:   NewClaims(m),
	}, vk, nil
}

// verifyJobSignature parses the job token, checks its header and
// signature, and decodes its claims.
func (v *JobValidator) verifyJobSignature(jobToken string) (map[string]any, *Error) {
	t, err := parseJWS(jobToken, v.original.maxSize)
	if err != nil {
		return nil, err
	}
	if t.alg != "EdDSA" {
		return nil, InvalidToken(descAlgorithm, fmt.Errorf("%w: job token alg %s is not EdDSA", ErrInvalidToken, quoteShort(t.alg)))
	}
	if t.typ != JobTokenType {
		return nil, InvalidToken(descType, fmt.Errorf("%w: typ %s is not %s", ErrInvalidToken, quoteShort(t.typ), JobTokenType))
	}
	key, ok := v.keys[t.kid]
	if !t.hasKID || !ok {
		return nil, InvalidToken(descUnknownKey, fmt.Errorf("%w: job key %s is unknown", ErrInvalidToken, quoteShort(t.kid)))
	}
	if !ed25519.Verify(key, []byte(t.signingInput), t.sig) {
		return nil, InvalidToken(descSignature, fmt.Errorf("%w: job token signature verification failed", ErrInvalidToken))
	}
	return decodePayload(t.payloadB64)
}

// jobClaims holds the checked claims of a job token.
type jobClaims struct {
	id, sub, userIss, ath, jti string
	scopes                     []string
	iat, exp                   time.Time
	origExp, origIAT           int64
	hasOrigIAT                 bool
}

func (v *JobValidator) jobClaims(m map[string]any, now time.Time) (jobClaims, *Error) {
	var j jobClaims
	missing := func(name string) (jobClaims, *Error) {
		return jobClaims{}, InvalidToken(descMissingClaim, fmt.Errorf("%w: job token has no usable %q", ErrInvalidToken, name))
	}
	if iss, _, err := stringClaim(m, "iss"); err != nil {
		return j, err
	} else if iss != v.issuer {
		return j, InvalidToken(descIssuer, fmt.Errorf("%w: job token iss %s is not the job issuer", ErrInvalidToken, quoteShort(iss)))
	}
	aud, err := audienceClaim(m)
	if err != nil {
		return j, err
	}
	if !slices.Contains(aud, v.audience) {
		return j, InvalidToken(descAudience, fmt.Errorf("%w: job token aud does not hold the job audience", ErrInvalidToken))
	}
	exp, present, err := numericDate(m, "exp")
	switch {
	case err != nil:
		return j, err
	case !present:
		return missing("exp")
	case !now.Before(exp.Add(v.leeway)):
		return j, InvalidToken(descExpired, fmt.Errorf("%w: %w: job token exp is %s", ErrInvalidToken, ErrExpired, exp.UTC().Format(time.RFC3339)))
	}
	iat, present, err := numericDate(m, "iat")
	switch {
	case err != nil:
		return j, err
	case !present:
		return missing("iat")
	case iat.After(now.Add(v.leeway)):
		return j, InvalidToken(descIssuedInFuture, fmt.Errorf("%w: job token iat is %s", ErrInvalidToken, iat.UTC().Format(time.RFC3339)))
	case exp.Sub(iat) > v.maxLifetime+time.Second: // +1 s: both are whole seconds
		return j, InvalidToken(descJobLifetime, fmt.Errorf("%w: job token lives %s", ErrInvalidToken, exp.Sub(iat)))
	}
	j.iat, j.exp = iat, exp
	for _, f := range []struct {
		name string
		dst  *string
	}{{claimJobID, &j.id}, {"sub", &j.sub}, {claimUserIssuer, &j.userIss}, {claimOrigHash, &j.ath}} {
		s, _, err := stringClaim(m, f.name)
		if err != nil {
			return j, err
		}
		if s == "" {
			return missing(f.name)
		}
		*f.dst = s
	}
	if j.jti, _, err = stringClaim(m, "jti"); err != nil {
		return j, err
	}
	scope, _, err := stringClaim(m, "scope")
	if err != nil {
		return j, err
	}
	if j.scopes = SplitScope(scope); len(j.scopes) == 0 {
		return missing("scope")
	}
	origExp, present, err := numericDate(m, claimOrigExpiry)
	switch {
	case err != nil:
		return j, err
	case !present:
		return missing(claimOrigExpiry)
	}
	j.origExp = origExp.Unix()
	origIAT, present, err := numericDate(m, claimOrigIssuedAt)
	if err != nil {
		return j, err
	}
	j.origIAT, j.hasOrigIAT = origIAT.Unix(), present
	return j, nil
}

func (v *JobValidator) checkRevoked(ctx context.Context, jobID string) *Error {
	if v.revoked == nil {
		return nil
	}
	revoked, err := v.revoked(ctx, jobID)
	switch {
	case err != nil:
		return Unavailable(descJobRevokeFailed, fmt.Errorf("%w: revocation check: %w", ErrUnavailable, err))
	case revoked:
		return InvalidToken(descJobRevoked, fmt.Errorf("%w: job %s is revoked", ErrInvalidToken, quoteShort(jobID)))
	}
	return nil
}

// verifyIgnoringExpiry verifies token exactly as Validate does — size,
// header, key, signature, then every claim rule (issuer, audience, client,
// nbf, iat, sub, scopes) — except that an "exp" in the past is accepted;
// "exp" must still be present and well-formed. It neither reads nor fills
// the verified-token cache. Only JobValidator calls it, after the job
// token bound to this exact token has been verified: it must never be
// reachable from a path that accepts a token on its own.
func (v *JWTValidator) verifyIgnoringExpiry(ctx context.Context, token string) (*Principal, *verifyKey, error) {
	p, _, vk, err := v.verify(ctx, token, ignoreExpiry)
	return p, vk, err
}

// checkJobParties checks the issuer and audience shared by JobIssuer and
// JobValidator.
func checkJobParties(issuer, audience string, original *JWTValidator) *fieldError {
	switch {
	case original == nil:
		return &fieldError{"Original", "required (the JWTValidator of the users' tokens)"}
	case checkAbsoluteURL(issuer) != nil:
		return &fieldError{"Issuer", "an absolute http(s) URL is required"}
	case original.issuerAccepted(issuer, NewClaims(map[string]any{})):
		return &fieldError{"Issuer", "must not be an issuer the Original validator accepts for user tokens"}
	case audience == "" || !printableField(audience):
		return &fieldError{"Audience", "required, printable ASCII"}
	}
	return nil
}

type fieldError struct{ field, msg string }

// printableField reports whether s is 1 to maxJobField bytes of printable
// ASCII without spaces.
func printableField(s string) bool {
	if s == "" || len(s) > maxJobField {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= 0x20 || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// tokenHash is the base64url SHA-256 of the exact token.
func tokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// pairKey identifies a (job token, original token) pair in the cache: the
// SHA-256 of the two tokens' fixed-length SHA-256 digests, so no two
// different pairs share a key.
func pairKey(job, original string) tokenKey {
	var b [2 * sha256.Size]byte
	j, o := keyOf(job), keyOf(original)
	copy(b[:sha256.Size], j[:])
	copy(b[sha256.Size:], o[:])
	return sha256.Sum256(b[:])
}

func randomJobTokenID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
