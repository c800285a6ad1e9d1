package authtest

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"

	"github.com/golang-jwt/jwt/v5"
)

// Token describes a token to mint with Server.MintToken. The zero value
// mints a default access token signed by the server's signing key.
type Token struct {
	// Claims are laid over the default claims (see Server.DefaultClaims).
	// A nil value removes that claim, so {"exp": nil} mints a token without
	// an expiry.
	Claims map[string]any
	// NoDefaults mints exactly Claims, without the default claims.
	NoDefaults bool
	// Header members are laid over the default header (alg, kid, typ
	// "at+jwt"). A nil value removes the member: {"kid": nil} mints a token
	// without a key ID. Setting "alg" here changes only what the header
	// says, not how the token is signed (see Alg).
	Header map[string]any
	// Key signs the token; nil means the server's current signing key. It
	// may be any key, published or not.
	Key *Key
	// Alg is the algorithm the signature is made with, and the header's
	// "alg" unless Header overrides it; empty means the key's algorithm.
	Alg string
}

// Mint returns a signed access token: the default claims with claims laid
// over them (a nil value removes a claim), signed by the current signing
// key, with header {"alg", "kid", "typ": "at+jwt"}.
func (s *Server) Mint(claims map[string]any) (string, error) {
	return s.MintToken(Token{Claims: claims})
}

// MustMint is Mint for tests: it fails the test given in Config.TB (or
// panics without one) when minting fails.
func (s *Server) MustMint(claims map[string]any) string {
	tok, err := s.Mint(claims)
	if err != nil {
		s.fatal(err)
	}
	return tok
}

// MintToken mints the token t describes.
func (s *Server) MintToken(t Token) (string, error) {
	key := t.Key
	if key == nil {
		key = s.SigningKey()
	}
	if key == nil {
		return "", errors.New("authtest: no signing key (every key was retired)")
	}
	alg := t.Alg
	if alg == "" {
		alg = key.signingAlg()
	}
	header := map[string]any{"alg": alg, "kid": key.ID(), "typ": "at+jwt"}
	overlay(header, t.Header)
	claims := map[string]any{}
	if !t.NoDefaults {
		claims = s.DefaultClaims()
	}
	overlay(claims, t.Claims)
	h, err := json.Marshal(header)
	if err != nil {
		return "", fmt.Errorf("authtest: encoding header: %w", err)
	}
	p, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("authtest: encoding claims: %w", err)
	}
	return Sign(h, p, alg, key.Private())
}

// MintUnsigned returns an unsecured JWT (RFC 7519 §6: "alg": "none", empty
// signature) with the default claims plus claims. No validator may accept it.
func (s *Server) MintUnsigned(claims map[string]any) (string, error) {
	return s.mintWithSecret(claims, "none", nil)
}

// MintHMAC returns a token signed with HS256 using secret, carrying the
// signing key's kid. Pass Key.PublicKeyPEM() of a published key to build
// the classic algorithm-confusion attack: a verifier that feeds the
// published public key to HMAC would accept it.
func (s *Server) MintHMAC(claims map[string]any, secret []byte) (string, error) {
	return s.mintWithSecret(claims, "HS256", secret)
}

func (s *Server) mintWithSecret(claims map[string]any, alg string, secret []byte) (string, error) {
	kid := ""
	if k := s.SigningKey(); k != nil {
		kid = k.ID()
	}
	all := s.DefaultClaims()
	overlay(all, claims)
	h, err := json.Marshal(map[string]any{"alg": alg, "kid": kid, "typ": "at+jwt"})
	if err != nil {
		return "", err
	}
	p, err := json.Marshal(all)
	if err != nil {
		return "", fmt.Errorf("authtest: encoding claims: %w", err)
	}
	if alg == "none" {
		return Sign(h, p, "none", nil)
	}
	return Sign(h, p, alg, secret)
}

// MintBadSignature returns a token like Mint's whose signature has one bit
// flipped: well-formed, correct kid and alg, wrong signature.
func (s *Server) MintBadSignature(claims map[string]any) (string, error) {
	tok, err := s.Mint(claims)
	if err != nil {
		return "", err
	}
	return CorruptSignature(tok)
}

// MintOversized returns a validly signed token at least size bytes long,
// reached by padding a "pad" claim.
func (s *Server) MintOversized(claims map[string]any, size int) (string, error) {
	c := maps.Clone(claims)
	if c == nil {
		c = map[string]any{}
	}
	pad := 0
	for range 4 {
		c["pad"] = strings.Repeat("x", pad)
		tok, err := s.Mint(c)
		if err != nil {
			return "", err
		}
		if len(tok) >= size {
			return tok, nil
		}
		pad += (size-len(tok))*3/4 + 4
	}
	return "", fmt.Errorf("authtest: could not reach %d bytes", size)
}

// CorruptSignature flips one bit of the signature of a compact JWS.
func CorruptSignature(token string) (string, error) {
	i := strings.LastIndexByte(token, '.')
	if i < 0 {
		return "", errors.New("authtest: not a compact JWS")
	}
	sig, err := base64.RawURLEncoding.DecodeString(token[i+1:])
	if err != nil || len(sig) == 0 {
		return "", errors.New("authtest: token has no decodable signature")
	}
	sig[len(sig)/2] ^= 0x01
	return token[:i+1] + base64.RawURLEncoding.EncodeToString(sig), nil
}

// Sign builds a compact JWS (RFC 7515 §7.1) from exactly these header and
// payload bytes — they are base64url-encoded as given, so duplicate or
// oddly cased members survive — signed with alg and key.
//
// key is a private key (*rsa.PrivateKey, *ecdsa.PrivateKey,
// ed25519.PrivateKey) for asymmetric algorithms, a []byte secret for HS256,
// HS384 and HS512, and ignored for "none" (the signature is then empty).
// The header's own "alg" is not consulted.
func Sign(header, payload []byte, alg string, key any) (string, error) {
	signing := base64.RawURLEncoding.EncodeToString(header) + "." + base64.RawURLEncoding.EncodeToString(payload)
	if alg == "none" {
		return signing + ".", nil
	}
	m := jwt.GetSigningMethod(alg)
	if m == nil {
		return "", fmt.Errorf("authtest: Sign: unknown algorithm %q", alg)
	}
	sig, err := m.Sign(signing, key)
	if err != nil {
		return "", fmt.Errorf("authtest: Sign %s: %w", alg, err)
	}
	return signing + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}

// overlay copies src into dst; nil values delete.
func overlay(dst, src map[string]any) {
	for k, v := range src {
		if v == nil {
			delete(dst, k)
			continue
		}
		dst[k] = v
	}
}

func randomID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
