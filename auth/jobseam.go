package auth

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"time"

	"github.com/mcpguard/mcpguard/internal/jobseam"
)

// JobSeam is no API for users: it is the seam through which package
// auth/jobtoken verifies a user's original token by every rule of v except
// its expiry. Its Grant can be made only inside mcpguard; for any other
// (the zero value) it returns the zero value, whose functions are nil.
func (v *JWTValidator) JobSeam(g jobseam.Grant) jobseam.Original[*Principal] {
	if !g.Valid() || v == nil {
		return jobseam.Original[*Principal]{}
	}
	return jobseam.Original[*Principal]{
		VerifyIgnoringExpiry: v.verifyIgnoringExpiry,
		AcceptsIssuer:        func(iss string) bool { return v.issuerAccepted(iss, NewClaims(map[string]any{})) },
		VerifyEdDSA:          v.verifyEdDSA,
		NewCache:             func(size int) jobseam.Cache[*Principal] { return seamCache{newTokenCache(size)} },
		MaxTokenBytes:        v.maxSize,
	}
}

// verifyIgnoringExpiry verifies token exactly as Validate does — size,
// header, key, signature, then every claim rule (issuer, audience, client,
// nbf, iat, sub, scopes) — except that an "exp" in the past is accepted;
// "exp" must still be present and well-formed. There is no request, so no
// DPoP proof: the token must be one Validate serves as a bearer token
// (dpopPolicy.checkUnproven), never a DPoP-bound one. It neither reads nor
// fills the verified-token cache. Only the job validator reaches it
// (through JobSeam), after the job token bound to this exact token has
// been verified: it must never be reachable from a path that accepts a
// token on its own.
func (v *JWTValidator) verifyIgnoringExpiry(ctx context.Context, token string) (*Principal, any, error) {
	p, _, vk, err := v.verify(ctx, token, ignoreExpiry)
	if err != nil {
		return nil, nil, err
	}
	if e := v.dpop.checkUnproven(p); e != nil {
		return nil, nil, e
	}
	return p, vk, nil
}

// verifyEdDSA reads a job token with the same hardened JWS reader as
// access tokens, checks its alg, typ and key, verifies the signature and
// decodes the payload.
func (v *JWTValidator) verifyEdDSA(token, typ string, keys map[string]ed25519.PublicKey) (map[string]any, error) {
	t, err := parseJWS(token, v.maxSize)
	if err != nil {
		return nil, err
	}
	if t.alg != "EdDSA" {
		return nil, InvalidToken(descAlgorithm, fmt.Errorf("%w: job token alg %s is not EdDSA", ErrInvalidToken, quoteShort(t.alg)))
	}
	if t.typ != typ {
		return nil, InvalidToken(descType, fmt.Errorf("%w: typ %s is not %s", ErrInvalidToken, quoteShort(t.typ), typ))
	}
	key, ok := keys[t.kid]
	if !t.hasKID || !ok {
		return nil, InvalidToken(descUnknownKey, fmt.Errorf("%w: job key %s is unknown", ErrInvalidToken, quoteShort(t.kid)))
	}
	if !ed25519.Verify(key, []byte(t.signingInput), t.sig) {
		return nil, InvalidToken(descSignature, fmt.Errorf("%w: job token signature verification failed", ErrInvalidToken))
	}
	claims, err := decodePayload(t.payloadB64)
	if err != nil {
		return nil, err
	}
	return claims, nil
}

// seamCache adapts tokenCache to jobseam.Cache.
type seamCache struct{ c *tokenCache }

func (s seamCache) Get(k [32]byte, now time.Time) (*Principal, bool) {
	p := s.c.get(k, now)
	return p, p != nil
}

// Put stores p; the entry lives as long as the key that verified the
// original token does (verifiedBy is what verifyIgnoringExpiry returned).
func (s seamCache) Put(k [32]byte, p *Principal, expiry time.Time, verifiedBy any) {
	vk, _ := verifiedBy.(*verifyKey)
	s.c.put(k, p, expiry, vk)
}
