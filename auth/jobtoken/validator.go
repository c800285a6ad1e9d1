package jobtoken

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"slices"
	"time"
	"unsafe"

	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/internal/jobseam"
)

// DefaultCacheSize is the default capacity of the verified-pair cache.
const DefaultCacheSize = 1_000

// ValidatorConfig configures a Validator. Issuer, Audience, Keys and
// Original are required.
type ValidatorConfig struct {
	// Issuer and Audience must equal those of the Issuer.
	Issuer   string
	Audience string
	// Keys maps key IDs to the Ed25519 public keys that may sign job
	// tokens (Issuer.KeyID and PublicKey). Keep a retired key here until
	// the last token it signed has expired (MaxLifetime).
	Keys map[string]ed25519.PublicKey
	// Original verifies the user's original token: signature, issuer,
	// audience, client and scopes exactly as for a request, except that
	// an expiry in the past is accepted. It must be the validator the
	// Issuer used; its issuers must not include Issuer.
	Original *auth.JWTValidator
	// Revoked, when set, is asked about every job token that passed the
	// signature check; true rejects it, an error fails closed with a
	// 503-class error. It must be safe for concurrent use. Nil means job
	// tokens are revoked only by expiry or by removing their key.
	Revoked func(ctx context.Context, jobID string) (bool, error)
	// Revoker, when set, is asked on every call, cached or not, about two
	// principals: the job principal (the user's issuer and subject, the
	// job token's iat and jti), and the original token's own principal
	// (its jti, sid, iat and claims) with the job token's exp as Expiry,
	// since the original acts through the job until then. So revoking
	// the user's token by its jti or its session (auth.Revocation.TokenID,
	// SessionID) ends the jobs minted from it, revoking the subject before
	// T (auth.Revocation.Subject) ends every job minted for that user
	// from a token issued before T, as it stops the user's own tokens,
	// and a job token's jti can be revoked too. Use the revoker of the
	// user validator (Original), whose MaxTokenLifetime must then cover
	// the original's lifetime plus MaxLifetime: a job whose exp lies
	// further from its original's iat is refused
	// (auth.ErrRevocationHorizon), since the original's revocation could
	// be forgotten before the job ends. Nil revokes nothing.
	Revoker auth.Revoker
	// MaxLifetime refuses job tokens whose exp - iat exceeds it. Zero
	// means DefaultLifetime; at most LifetimeLimit. Use the Issuer's value.
	MaxLifetime time.Duration
	// Leeway tolerates clock skew on the job token's exp and iat and on
	// the lower bound of the original's validity window. Zero means
	// auth.DefaultLeeway; at most auth.MaxLeeway.
	Leeway time.Duration
	// CacheSize is the capacity of the verified-pair cache, in pairs
	// (entries live until the job token's exp; Revoked and Revoker are
	// still asked on every call). Zero means DefaultCacheSize.
	CacheSize int
	// DisableCache verifies every pair from scratch.
	DisableCache bool
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
}

// Validator validates a job token together with the user's original
// token, which may have expired. See Validate and the package
// documentation's threat model.
//
// Construct it with NewValidator. It is safe for concurrent use.
type Validator struct {
	issuer, audience string
	keys             map[string]ed25519.PublicKey
	original         jobseam.Original[*auth.Principal]
	revoked          func(context.Context, string) (bool, error)
	revoker          auth.Revoker
	maxLifetime      time.Duration
	leeway           time.Duration
	cache            jobseam.Cache[*auth.Principal]
	now              func() time.Time
}

// NewValidator checks cfg and returns a validator. Mistakes are errors
// naming the field and wrapping auth.ErrConfig.
func NewValidator(cfg ValidatorConfig) (*Validator, error) {
	cfgErr := func(field, format string, args ...any) error {
		return configError("ValidatorConfig", field, fmt.Sprintf(format, args...))
	}
	orig, err := parties("ValidatorConfig", cfg.Original, cfg.Issuer, cfg.Audience)
	if err != nil {
		return nil, err
	}
	v := &Validator{issuer: cfg.Issuer, audience: cfg.Audience, original: orig,
		revoked: cfg.Revoked, revoker: cfg.Revoker, now: cfg.Now, keys: make(map[string]ed25519.PublicKey, len(cfg.Keys))}
	if len(cfg.Keys) == 0 {
		return nil, cfgErr("Keys", "at least one public key is required")
	}
	for kid, k := range cfg.Keys {
		if !printable(kid) || len(k) != ed25519.PublicKeySize {
			return nil, cfgErr("Keys", "key %q: need a printable key ID and a %d-byte Ed25519 public key", kid, ed25519.PublicKeySize)
		}
		v.keys[kid] = slices.Clone(k)
	}
	if v.maxLifetime, err = lifetime(cfg.MaxLifetime); err != nil {
		return nil, cfgErr("MaxLifetime", "%v", err)
	}
	switch {
	case cfg.Leeway == 0:
		v.leeway = auth.DefaultLeeway
	case cfg.Leeway < 0 || cfg.Leeway > auth.MaxLeeway:
		return nil, cfgErr("Leeway", "%s is outside [0s, %s]", cfg.Leeway, auth.MaxLeeway)
	default:
		v.leeway = cfg.Leeway
	}
	switch {
	case cfg.CacheSize < 0 || cfg.CacheSize > 1_000_000:
		return nil, cfgErr("CacheSize", "must be between 0 and 1,000,000")
	case cfg.DisableCache:
	case cfg.CacheSize == 0:
		v.cache = orig.NewCache(2 * DefaultCacheSize) // two entries a pair: the job's and the original's principal
	default:
		v.cache = orig.NewCache(2 * cfg.CacheSize)
	}
	if v.now == nil {
		v.now = time.Now
	}
	return v, nil
}

// Validate checks a job token and the user's original token and returns
// an auth.KindJob principal. In order:
//
//  1. the job token: compact JWS, alg EdDSA, typ job+jwt, a kid from Keys
//     and a valid signature; iss and aud as configured; exp not passed
//     (with Leeway); iat present and not in the future; exp - iat within
//     MaxLifetime; job_id, sub, user_iss, scope, orig_exp and ath present;
//  2. the Revoked hook for job_id;
//  3. the binding: the SHA-256 of originalToken equals ath (constant time);
//  4. the original token, with the Original validator's every rule —
//     signature, issuer, audience, client, nbf, scopes — except expiry;
//     there is no DPoP proof, so it must be a bearer token the Original
//     validator accepts as such (never bound with cnf);
//  5. the same user (sub and iss) and the same original (orig_exp,
//     orig_iat) in both tokens;
//  6. the job token's iat within the original's validity window: not
//     after its exp, not before its iat (minus Leeway);
//  7. the job's scopes a subset of the original's;
//  8. the Revoker, about the job principal and about the original's
//     (ValidatorConfig.Revoker).
//
// A verified pair is cached; a cached pair still goes through 2 and 8.
//
// The principal has Kind auth.KindJob, JobID, the user's Subject, Issuer,
// ClientID and Audience (from the original), the job's Scopes, Expiry
// (the job token's exp), IssuedAt and TokenID, and the job token's claims
// as Claims (the tenant under the issuer's TenantClaim), and, for a job
// minted in a dual-token request, Actor: the service it acts through (its
// Issuer, Subject and ClientID, as recorded when the job was minted; the
// service's token is not checked again). Its Scopes are the narrowed
// ones: never derive scopes from the original's claims.
//
// Errors are *auth.Error values: invalid_token (401) for any defect of
// either token (auth.ErrExpired when the job token expired), 503 when the
// keys, the revocation hook or the Revoker are unavailable. No error contains either
// token.
func (v *Validator) Validate(ctx context.Context, jobToken, originalToken string) (*auth.Principal, error) {
	if max := v.original.MaxTokenBytes; len(jobToken) > max || len(originalToken) > max {
		return nil, auth.InvalidToken(descTooLarge, fmt.Errorf("%w: token longer than %d bytes", auth.ErrInvalidToken, max))
	}
	var ck, ok2 [sha256.Size]byte
	if v.cache != nil {
		ck = pairKey(jobToken, originalToken)
		ok2 = originalKey(ck)
		now := v.now()
		if p, hit := v.cache.Get(ck, now); hit {
			if op, hit := v.cache.Get(ok2, now); hit {
				if err := v.checkRevoked(ctx, p.JobID); err != nil {
					return nil, err
				}
				if err := v.checkRevoker(ctx, p, op); err != nil {
					return nil, err
				}
				cp := *p
				return &cp, nil
			}
		}
	}
	p, op, verifiedBy, err := v.verify(ctx, jobToken, originalToken)
	if err != nil {
		return nil, err
	}
	if v.cache != nil {
		// The entries live as long as the key of the original token does.
		v.cache.Put(ck, p, p.Expiry, verifiedBy)
		v.cache.Put(ok2, op, p.Expiry, verifiedBy)
	}
	if err := v.checkRevoker(ctx, p, op); err != nil {
		return nil, err
	}
	cp := *p
	return &cp, nil
}

// checkRevoker asks the Revoker about the job principal p and about the
// original token's principal op as the job carries it on (see
// originalView): revoking the user's token, by its jti or its session,
// ends the jobs minted from it.
func (v *Validator) checkRevoker(ctx context.Context, p, op *auth.Principal) *auth.Error {
	if v.revoker == nil {
		return nil
	}
	if err := auth.CheckRevoked(ctx, v.revoker, p); err != nil {
		return err
	}
	return auth.CheckRevoked(ctx, v.revoker, op)
}

// originalView is the principal the Revoker is asked about for the
// original token: the original's own (its jti, sid, sub, iat and claims),
// with the job token's Expiry, since the original acts through the job
// until then. A revocation entry must outlive that, which the revoker's
// horizon checks (exp of the job − iat of the original within its
// MaxTokenLifetime).
func originalView(op *auth.Principal, jobExp time.Time) *auth.Principal {
	cp := *op
	cp.Expiry = jobExp
	return &cp
}

func (v *Validator) verify(ctx context.Context, jobToken, originalToken string) (p, op *auth.Principal, verifiedBy any, err error) {
	p, op, verifiedBy, err = v.verifyPair(ctx, jobToken, originalToken)
	if err != nil {
		return nil, nil, nil, err
	}
	return p, originalView(op, p.Expiry), verifiedBy, nil
}

func (v *Validator) verifyPair(ctx context.Context, jobToken, originalToken string) (*auth.Principal, *auth.Principal, any, error) {
	now := v.now()
	m, err := v.original.VerifyEdDSA(jobToken, Type, v.keys)
	if err != nil {
		return nil, nil, nil, err
	}
	job, cerr := v.jobClaims(auth.NewClaims(m), now)
	if cerr != nil {
		return nil, nil, nil, cerr
	}
	if err := v.checkRevoked(ctx, job.id); err != nil {
		return nil, nil, nil, err
	}
	if subtle.ConstantTimeCompare([]byte(tokenHash(originalToken)), []byte(job.ath)) != 1 {
		return nil, nil, nil, invalid(descBinding, "the original token's hash differs from the job token's ath")
	}
	op, verifiedBy, err := v.original.VerifyIgnoringExpiry(ctx, originalToken)
	if err != nil {
		return nil, nil, nil, prefixed(prefixOriginal, err)
	}
	switch {
	case op.Subject != job.sub || op.Issuer != job.userIss:
		return nil, nil, nil, invalid(descUser, "sub or iss differ between the job token and the original")
	case op.Expiry.Unix() != job.origExp || (job.hasOrigIAT && op.IssuedAt.Unix() != job.origIAT):
		return nil, nil, nil, invalid(descBinding, "orig_exp or orig_iat differ from the original token's")
	case job.iat.After(op.Expiry):
		return nil, nil, nil, invalid(descWindow, fmt.Sprintf("job token issued at %s, after the original expired at %s",
			job.iat.UTC().Format(time.RFC3339), op.Expiry.UTC().Format(time.RFC3339)))
	case !op.IssuedAt.IsZero() && job.iat.Before(op.IssuedAt.Add(-v.leeway)):
		return nil, nil, nil, invalid(descWindow, fmt.Sprintf("job token issued at %s, before the original was issued at %s",
			job.iat.UTC().Format(time.RFC3339), op.IssuedAt.UTC().Format(time.RFC3339)))
	}
	if missing := missingScopes(op, job.scopes); len(missing) > 0 {
		return nil, nil, nil, invalid(descScopes, fmt.Sprintf("the original token lacks %d of the job's scopes", len(missing)))
	}
	return &auth.Principal{
		Kind:     auth.KindJob,
		Subject:  op.Subject,
		Issuer:   op.Issuer,
		ClientID: op.ClientID,
		Audience: op.Audience,
		Scopes:   job.scopes,
		Expiry:   job.exp,
		IssuedAt: job.iat,
		TokenID:  job.jti,
		JobID:    job.id,
		Actor:    job.actor,
		Claims:   auth.NewClaims(m),
	}, op, verifiedBy, nil
}

// claims holds the checked claims of a job token.
type claims struct {
	id, sub, userIss, ath, jti string
	scopes                     []string
	iat, exp                   time.Time
	origExp, origIAT           int64
	hasOrigIAT                 bool
	actor                      *auth.Principal // from act, nil without
}

// jobClaims checks the claims of a job token whose signature verified.
// The token is one this server minted, so a member of the wrong type is
// treated as missing.
func (v *Validator) jobClaims(c auth.Claims, now time.Time) (claims, *auth.Error) {
	var j claims
	missing := func(name string) (claims, *auth.Error) {
		return claims{}, invalid(descMissingClaim, fmt.Sprintf("job token has no usable %q", name))
	}
	if iss, _ := c.String("iss"); iss != v.issuer {
		return j, invalid(descIssuer, "job token iss is not the job issuer")
	}
	if aud, _ := c.Strings("aud"); !slices.Contains(aud, v.audience) {
		return j, invalid(descAudience, "job token aud does not hold the job audience")
	}
	exp, ok := c.Time("exp")
	switch {
	case !ok:
		return missing("exp")
	case !now.Before(exp.Add(v.leeway)):
		return j, auth.InvalidToken(descExpired, fmt.Errorf("%w: %w: job token exp is %s", auth.ErrInvalidToken, auth.ErrExpired, exp.Format(time.RFC3339)))
	}
	iat, ok := c.Time("iat")
	switch {
	case !ok:
		return missing("iat")
	case iat.After(now.Add(v.leeway)):
		return j, invalid(descFuture, "job token iat is "+iat.Format(time.RFC3339))
	case exp.Sub(iat) > v.maxLifetime+time.Second: // +1 s: both are whole seconds
		return j, invalid(descLifetime, "job token lives "+exp.Sub(iat).String())
	}
	j.iat, j.exp = iat.Local(), exp.Local() // as auth's principals: time.Unix
	for _, f := range []struct {
		name string
		dst  *string
	}{{claimJobID, &j.id}, {"sub", &j.sub}, {claimUserIssuer, &j.userIss}, {claimOrigHash, &j.ath}} {
		if *f.dst, _ = c.String(f.name); *f.dst == "" {
			return missing(f.name)
		}
	}
	j.jti, _ = c.String("jti")
	scope, _ := c.String("scope")
	if j.scopes = auth.SplitScope(scope); len(j.scopes) == 0 {
		return missing("scope")
	}
	origExp, ok := c.Time(claimOrigExpiry)
	if !ok {
		return missing(claimOrigExpiry)
	}
	j.origExp = origExp.Unix()
	if origIAT, ok := c.Time(claimOrigIssuedAt); ok {
		j.origIAT, j.hasOrigIAT = origIAT.Unix(), true
	}
	if raw, present := c.Get(claimActor); present {
		// A malformed act is refused: read as absent, it would drop the
		// actor the job was bound to.
		act, _ := raw.(map[string]any)
		member := func(name string) (string, bool) { // absent, or a string
			v, present := act[name]
			s, ok := v.(string)
			return s, ok || !present
		}
		sub, subOK := member("sub")
		iss, issOK := member("iss")
		cid, cidOK := member("client_id")
		if sub == "" || !subOK || !issOK || !cidOK {
			return missing(claimActor)
		}
		j.actor = &auth.Principal{Kind: auth.KindUser, Subject: sub, Issuer: iss, ClientID: cid}
	}
	return j, nil
}

func (v *Validator) checkRevoked(ctx context.Context, jobID string) *auth.Error {
	if v.revoked == nil {
		return nil
	}
	revoked, err := v.revoked(ctx, jobID)
	switch {
	case err != nil:
		return auth.Unavailable(descRevokeFailed, fmt.Errorf("%w: revocation check: %w", auth.ErrUnavailable, err))
	case revoked:
		return invalid(descRevoked, "the job is revoked")
	}
	return nil
}

// invalid is an invalid_token error with a client-safe description and an
// internal detail that names no token.
func invalid(desc, detail string) *auth.Error {
	return auth.InvalidToken(desc, fmt.Errorf("%w: %s", auth.ErrInvalidToken, detail))
}

// prefixed marks an error about the original token as such, in its
// description and its message.
func prefixed(which string, err error) *auth.Error {
	e := auth.AsError(err)
	return &auth.Error{Code: e.Code, Status: e.Status, Description: which + e.Description, Scope: e.Scope,
		Err: fmt.Errorf("%s%w", which, e)}
}

// originalKey is the cache key of the original token's principal of the
// pair whose key is pair: a second entry, so both are needed for a hit.
func originalKey(pair [sha256.Size]byte) [sha256.Size]byte {
	var b [sha256.Size + 1]byte
	copy(b[:], pair[:])
	b[sha256.Size] = 'o'
	return sha256.Sum256(b[:])
}

// pairKey identifies a (job token, original token) pair in the cache: the
// SHA-256 of the two tokens' fixed-length SHA-256 digests, so no two
// different pairs share a key.
func pairKey(job, original string) [sha256.Size]byte {
	var b [2 * sha256.Size]byte
	j, o := digest(job), digest(original)
	copy(b[:sha256.Size], j[:])
	copy(b[sha256.Size:], o[:])
	return sha256.Sum256(b[:])
}

// digest is the SHA-256 of s. Sum256 only reads its argument, so hashing
// the string's bytes in place is safe and spares a copy of the token on
// every call.
func digest(s string) [sha256.Size]byte {
	return sha256.Sum256(unsafe.Slice(unsafe.StringData(s), len(s)))
}
