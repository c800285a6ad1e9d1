package auth

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/mcpguard/mcpguard/internal/b64url"
)

// maxJWTHeaderSegment bounds the header segment LooksLikeJWT decodes.
// Real JOSE headers are well under 1 KiB.
const maxJWTHeaderSegment = 4096

// LooksLikeJWT reports whether token has the shape of a compact JWS (RFC
// 7515 §7.1): exactly three dot-separated segments, a non-empty payload,
// and a header of base64url characters (unpadded, at most 4 KiB) that
// decodes to what looks like a JSON object: '{' … '}' once surrounding
// white space is trimmed (the JWT validator parses it for real).
//
// It says nothing about validity: it only routes a token to the right
// validator. The payload and signature are not examined, so a broken token
// that claims to be a JWT is refused locally by the JWT validator instead
// of being sent to the authorization server; an unsigned token (empty
// third segment) likewise. A JWE (five segments) is not JWT-shaped.
//
// It does not allocate and is safe for concurrent use.
func LooksLikeJWT(token string) bool {
	d1 := strings.IndexByte(token, '.')
	if d1 <= 0 || d1 > maxJWTHeaderSegment {
		return false
	}
	rest := token[d1+1:]
	d2 := strings.IndexByte(rest, '.')
	if d2 <= 0 || strings.IndexByte(rest[d2+1:], '.') >= 0 {
		return false
	}
	h := token[:d1]
	if !isBase64URL(h) {
		return false
	}
	return headerLooksLikeObject(h)
}

// headerLooksLikeObject decodes h (unpadded base64url) in chunks, without
// allocating, and reports whether its first and last non-white-space bytes
// are '{' and '}'. Each chunk's length is a multiple of four, so each
// decodes on its own.
func headerLooksLikeObject(h string) bool {
	var in [256]byte
	var out [192]byte
	var first, last byte
	seen := false
	for i := 0; i < len(h); i += len(in) {
		n := copy(in[:], h[i:])
		m, err := b64url.Decode(out[:], in[:n])
		if err != nil {
			return false
		}
		for _, c := range out[:m] {
			if c == ' ' || c == '\t' || c == '\r' || c == '\n' {
				continue
			}
			if !seen {
				first, seen = c, true
			}
			last = c
		}
	}
	return seen && first == '{' && last == '}'
}

// isBase64URL reports whether s holds only base64url characters (RFC 4648
// §5), without padding.
func isBase64URL(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9') || c == '-' || c == '_' {
			continue
		}
		return false
	}
	return true
}

// ChainConfig configures a ChainValidator. At least one validator is
// required.
type ChainConfig struct {
	// JWT validates tokens that look like JWTs (LooksLikeJWT), normally a
	// *JWTValidator. Nil sends them to Opaque.
	JWT Validator
	// Opaque validates every other token, normally an
	// *IntrospectionValidator. Nil rejects tokens that do not look like a
	// JWT, without any network call.
	Opaque Validator
	// IntrospectJWTs sends JWT-shaped tokens to Opaque too: each must pass
	// JWT first (so a forged or foreign JWT is refused locally, with no
	// request to the authorization server) and then Opaque, which catches
	// tokens revoked before their expiry. The JWT principal is returned;
	// Opaque must agree on its subject and issuer. Requires both
	// validators. Without it, JWT-shaped tokens are validated locally only.
	// A DPoP proof is checked once, by JWT, and its jti stored once, in
	// JWT's replay store; Opaque then checks that the authorization
	// server's "cnf" names the same key and that the proof meets its own
	// DPoP settings too (algorithms, Resource, Window, and RequireNonce,
	// unless JWT already required and checked a nonce of its own).
	IntrospectJWTs bool
}

// ChainValidator routes each token by its shape: JWTs to a JWT validator,
// everything else (opaque tokens) to an introspection validator, and
// optionally JWTs to both (see ChainConfig).
//
// Routing by shape is safe because each validator decides on its own: a
// token dressed up as a JWT still needs a valid signature, and an opaque
// token is only what the authorization server says it is. Errors are
// those of the validator that decided.
//
// Construct it with NewChainValidator. It is safe for concurrent use when
// its validators are.
type ChainValidator struct {
	jwt, opaque Validator
	both        bool
	mode        DPoPMode
	algs        []string
}

// NewChainValidator checks cfg and returns a validator. Mistakes are
// errors naming the field and wrapping ErrConfig.
func NewChainValidator(cfg ChainConfig) (*ChainValidator, error) {
	switch {
	case cfg.JWT == nil && cfg.Opaque == nil:
		return nil, fmt.Errorf("%w: ChainConfig.JWT or ChainConfig.Opaque is required", ErrConfig)
	case cfg.IntrospectJWTs && (cfg.JWT == nil || cfg.Opaque == nil):
		return nil, fmt.Errorf("%w: ChainConfig.IntrospectJWTs needs both JWT and Opaque (with JWT nil, JWT-shaped tokens already go to Opaque)", ErrConfig)
	}
	c := &ChainValidator{jwt: cfg.JWT, opaque: cfg.Opaque, both: cfg.IntrospectJWTs}
	modes := map[string]DPoPMode{}
	var algs [][]string
	for name, v := range map[string]Validator{"JWT": cfg.JWT, "Opaque": cfg.Opaque} {
		if v == nil {
			continue
		}
		modes[name] = DPoPDisabled
		if dv, ok := v.(DPoPValidator); ok {
			modes[name] = dv.DPoPMode()
			if dv.DPoPMode() != DPoPDisabled {
				algs = append(algs, dv.DPoPAlgorithms())
			}
		}
		c.mode = modes[name]
	}
	if len(modes) == 2 && modes["JWT"] != modes["Opaque"] {
		// Otherwise a token's shape would decide whether DPoP applies.
		return nil, fmt.Errorf("%w: ChainConfig: JWT and Opaque must have the same DPoP mode (JWT %s, Opaque %s)", ErrConfig, modes["JWT"], modes["Opaque"])
	}
	if len(algs) > 0 {
		c.algs = algs[0]
		if len(algs) == 2 {
			c.algs = slices.DeleteFunc(slices.Clone(algs[0]), func(a string) bool { return !slices.Contains(algs[1], a) })
		}
		if len(c.algs) == 0 {
			return nil, fmt.Errorf("%w: ChainConfig: JWT and Opaque accept no DPoP proof algorithm in common", ErrConfig)
		}
	}
	return c, nil
}

// DPoPMode implements DPoPValidator: the mode both validators share
// (NewChainValidator refuses validators whose modes differ), so that
// Middleware recognises the DPoP scheme for a chain as for its members.
func (c *ChainValidator) DPoPMode() DPoPMode { return c.mode }

// DPoPAlgorithms implements DPoPValidator: the proof algorithms both
// validators accept, advertised in challenges.
func (c *ChainValidator) DPoPAlgorithms() []string { return slices.Clone(c.algs) }

// Validate routes token by its shape and returns the deciding validator's
// verdict.
func (c *ChainValidator) Validate(ctx context.Context, token string) (*Principal, error) {
	if !LooksLikeJWT(token) {
		if c.opaque == nil {
			return nil, InvalidToken(descMalformed, fmt.Errorf("%w: %w: not a JWT, and opaque tokens are not accepted", ErrInvalidToken, errMalformed))
		}
		return c.opaque.Validate(ctx, token)
	}
	if c.jwt == nil {
		return c.opaque.Validate(ctx, token)
	}
	p, err := c.jwt.Validate(ctx, token)
	if err != nil || !c.both {
		return p, err
	}
	if p == nil {
		return nil, InvalidToken(descMalformed, fmt.Errorf("%w: the JWT validator returned no principal", ErrInvalidToken))
	}
	ip, err := c.opaque.Validate(ctx, token)
	if err != nil {
		return nil, err
	}
	if ip == nil || ip.Subject != p.Subject || ip.Issuer != p.Issuer {
		return nil, InvalidToken(descInactive, fmt.Errorf("%w: introspection and the token's signed claims disagree on subject or issuer", ErrInvalidToken))
	}
	return p, nil
}

// SetObserver passes o to each of the chain's validators that reports to
// an Observer (has a SetObserver method, as JWTValidator and
// IntrospectionValidator do), and returns their errors joined. A nil o is
// an error wrapping ErrConfig.
func (c *ChainValidator) SetObserver(o Observer) error {
	if o == nil {
		return fmt.Errorf("%w: ChainValidator.SetObserver: nil observer", ErrConfig)
	}
	var errs []error
	for _, v := range [...]Validator{c.jwt, c.opaque} {
		if s, ok := v.(interface{ SetObserver(Observer) error }); ok {
			errs = append(errs, s.SetObserver(o))
		}
	}
	return errors.Join(errs...)
}

// KeySet is the KeySet of the chain's JWT validator when it has one (a
// *JWTValidator, or anything with a KeySet method), the zero KeySetInfo
// otherwise.
func (c *ChainValidator) KeySet() KeySetInfo {
	if k, ok := c.jwt.(interface{ KeySet() KeySetInfo }); ok {
		return k.KeySet()
	}
	return KeySetInfo{}
}
