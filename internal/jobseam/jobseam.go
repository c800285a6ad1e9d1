// Package jobseam is the private seam between package auth, which
// validates users' access tokens, and package auth/jobtoken, which issues
// and checks job tokens bound to such a token. A job validator must verify
// a user's original token by every rule of the user-token validator except
// its expiry; that capability must never be reachable from a path that
// accepts a token on its own, so auth hands it out only against a Grant,
// which only mcpguard's own packages can make (Go forbids importing an
// internal package from outside the module).
//
// Dependencies: the standard library only; it imports no mcpguard package,
// so that auth can name its types without a cycle (the principal type is a
// type parameter).
package jobseam

import (
	"context"
	"crypto/ed25519"
	"time"
)

// Grant is the capability to open the seam. Its zero value is not valid,
// so code outside mcpguard, which can at most conjure a zero value, gets
// nothing from auth's seam method.
type Grant struct{ ok bool }

// Open returns a valid Grant.
func Open() Grant { return Grant{ok: true} }

// Valid reports whether g came from Open.
func (g Grant) Valid() bool { return g.ok }

// Original is what a job validator needs of the validator of the users'
// tokens. auth fills every field or none (for an invalid Grant).
type Original[P any] struct {
	// VerifyIgnoringExpiry verifies token exactly as the validator's
	// Validate does (size, header, key, signature, issuer, audience,
	// client, nbf, iat, sub, scopes, a present and well-formed exp) except
	// that an exp in the past is accepted, and refuses what no proof can
	// back: a DPoP-bound (cnf) token, and under DPoPRequired an unbound
	// one. It neither reads nor fills the verified-token cache. It also returns the key that verified the
	// token, opaque here, for Cache.Put.
	VerifyIgnoringExpiry func(ctx context.Context, token string) (P, any, error)
	// AcceptsIssuer reports whether the validator accepts iss for users'
	// tokens (a job issuer must not be one).
	AcceptsIssuer func(iss string) bool
	// VerifyEdDSA reads a compact JWS with the validator's hardened reader
	// (size cap, strict base64url, no duplicate members, no crit, cty or
	// JWE members), requires alg EdDSA and the exact typ, verifies the
	// signature with keys[kid], and decodes the payload (no duplicate
	// members at any depth). Errors are the validator's typed 401 errors.
	VerifyEdDSA func(token, typ string, keys map[string]ed25519.PublicKey) (map[string]any, error)
	// NewCache returns a bounded LRU of verdicts holding at most size
	// entries, each served only before its expiry and while the key that
	// verified it is still in the key set.
	NewCache func(size int) Cache[P]
	// MaxTokenBytes is the validator's token size limit.
	MaxTokenBytes int
}

// Cache is a bounded verdict cache keyed by a SHA-256 digest. It is safe
// for concurrent use.
type Cache[P any] interface {
	// Get returns the verdict for key if it is fresh at now and the key
	// that verified it is still in the key set.
	Get(key [32]byte, now time.Time) (P, bool)
	// Put stores p until expiry; verifiedBy is the key
	// VerifyIgnoringExpiry returned.
	Put(key [32]byte, p P, expiry time.Time, verifiedBy any)
}
