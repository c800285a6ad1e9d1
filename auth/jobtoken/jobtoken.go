package jobtoken

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/internal/jobseam"
)

// Defaults and limits.
const (
	// DefaultLifetime is the lifetime of a job token when neither the
	// request nor the configuration asks for less.
	DefaultLifetime = 4 * time.Hour
	// LifetimeLimit is the largest MaxLifetime accepted: one week.
	LifetimeLimit = 7 * 24 * time.Hour
	// Type is the "typ" header of job tokens (RFC 7515 §4.1.9). An
	// auth.JWTValidator refuses it, so a job token is never mistaken for an
	// access token; a Validator requires it, so an access token is never
	// mistaken for a job token.
	Type = "job+jwt"
	// DefaultTenantClaim is the claim that carries the tenant in job
	// tokens when IssuerConfig.TenantClaim is empty. It matches package
	// tenancy's default claim, so a job principal resolves to its tenant
	// like the user did.
	DefaultTenantClaim = "tenant_id"
)

// Claims of a job token besides iss, sub, aud, iat, exp, jti, scope
// (space-separated, RFC 8693 §4.2), client_id and the tenant claim.
const (
	claimJobID        = "job_id"   // the job's identifier, for revocation
	claimUserIssuer   = "user_iss" // the original token's "iss"
	claimOrigIssuedAt = "orig_iat" // the original token's "iat", when it has one
	claimOrigExpiry   = "orig_exp" // the original token's "exp"
	claimOrigHash     = "ath"      // base64url SHA-256 of the exact original token (as RFC 9449 §4.2 binds a proof to a token)
	claimActor        = "act"      // the service acting for the user (RFC 8693 §4.1), from a dual-token request
	maxField          = 256
)

// Client-safe descriptions of job-token rejections.
const (
	descRevoked      = "the job has been revoked"
	descBinding      = "the original token does not belong to this job token"
	descWindow       = "the job token was not issued while the original token was valid"
	descScopes       = "the job token's scopes exceed the user's"
	descUser         = "the job token and the original token name different users"
	descLifetime     = "the job token's lifetime exceeds the configured maximum"
	descRevokeFailed = "the job's revocation status is temporarily unavailable"
	descIssuer       = "the job token's issuer is not this job issuer"
	descAudience     = "the job token's audience is not this job audience"
	descExpired      = "the job token has expired"
	descFuture       = "the job token was issued in the future"
	descMissingClaim = "the job token lacks a required claim"
	descTooLarge     = "the token is too large"
	prefixOriginal   = "original token: "
)

// errIssuer prefixes the errors of Issuer.Mint.
var errIssuer = errors.New("jobtoken: issuer")

// isReservedClaim reports whether name is a claim the job token sets
// itself, which TenantClaim must not overwrite.
func isReservedClaim(name string) bool {
	switch name {
	case "iss", "sub", "aud", "iat", "exp", "nbf", "jti", "scope", "scp", "client_id", "act", "cnf",
		claimJobID, claimUserIssuer, claimOrigIssuedAt, claimOrigExpiry, claimOrigHash:
		return true
	}
	return false
}

// parties opens the job seam of the users' validator and checks the
// issuer and audience shared by Issuer and Validator; a mistake is an
// error naming the field of the config type typ.
func parties(typ string, original *auth.JWTValidator, issuer, audience string) (jobseam.Original[*auth.Principal], error) {
	var orig jobseam.Original[*auth.Principal]
	field, msg := "", ""
	switch {
	case original == nil:
		field, msg = "Original", "required (the auth.JWTValidator of the users' tokens)"
	case !absoluteURL(issuer):
		field, msg = "Issuer", "an absolute http(s) URL is required"
	case !printable(audience):
		field, msg = "Audience", "required, printable ASCII"
	default:
		orig = original.JobSeam(jobseam.Open())
		if orig.AcceptsIssuer(issuer) {
			field, msg = "Issuer", "must not be an issuer the Original validator accepts for user tokens"
		}
	}
	if field != "" {
		return orig, configError(typ, field, msg)
	}
	return orig, nil
}

// configError formats a field error of the config type named typ.
func configError(typ, field, msg string) error {
	return fmt.Errorf("%w: %s.%s: %s", auth.ErrConfig, typ, field, msg)
}

// absoluteURL reports whether s is an absolute http(s) URL with a host and
// no fragment or user info.
func absoluteURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && u.IsAbs() && u.Host != "" && (u.Scheme == "https" || u.Scheme == "http") &&
		u.Fragment == "" && u.User == nil
}

// lifetime checks a MaxLifetime setting: zero means DefaultLifetime,
// otherwise 1 s to LifetimeLimit.
func lifetime(d time.Duration) (time.Duration, error) {
	switch {
	case d == 0:
		return DefaultLifetime, nil
	case d < time.Second || d > LifetimeLimit:
		return 0, fmt.Errorf("%s is outside [1s, %s]", d, LifetimeLimit)
	}
	return d, nil
}

// printable reports whether s is 1 to maxField bytes of printable ASCII
// without spaces.
func printable(s string) bool {
	if s == "" || len(s) > maxField {
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

// missingScopes returns the scopes of want that p does not hold.
func missingScopes(p *auth.Principal, want []string) []string {
	var missing []string
	for _, s := range want {
		if !p.HasScope(s) {
			missing = append(missing, s)
		}
	}
	return missing
}
