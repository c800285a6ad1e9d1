package authtest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/MicahParks/jwkset"
)

// Key is an asymmetric signing key pair with its JWK metadata: the key ID
// ("kid"), the algorithm it signs with ("alg") and its published use
// ("use", RFC 7517 §4.2).
//
// A Key is immutable and safe for concurrent use. Its private half never
// leaves the process: only the public half is published in the JWKS.
type Key struct {
	id     string
	alg    string
	use    string
	signer crypto.Signer
}

// GenerateKey returns a new key for alg with key ID kid and use "sig".
// Supported algorithms: RS256, RS384, RS512, PS256, PS384, PS512 (RSA
// 2048 bits), ES256 (P-256), ES384 (P-384), ES512 (P-521) and EdDSA
// (Ed25519).
func GenerateKey(alg, kid string) (*Key, error) {
	var (
		signer crypto.Signer
		err    error
	)
	switch alg {
	case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
		signer, err = rsa.GenerateKey(rand.Reader, 2048)
	case "ES256":
		signer, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "ES384":
		signer, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case "ES512":
		signer, err = ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	case "EdDSA":
		_, signer, err = ed25519.GenerateKey(rand.Reader)
	default:
		return nil, fmt.Errorf("authtest: GenerateKey: unsupported algorithm %q", alg)
	}
	if err != nil {
		return nil, fmt.Errorf("authtest: GenerateKey %s: %w", alg, err)
	}
	return NewKey(kid, alg, signer)
}

// NewKey wraps an existing private key (*rsa.PrivateKey,
// *ecdsa.PrivateKey or ed25519.PrivateKey) so that tokens can be minted
// with it — for instance to forge a token with a key the server does not
// publish. The key's use is "sig". alg is the algorithm the key signs with;
// it is not checked against the key type, so mismatches can be built on
// purpose (signing still fails if the key cannot make that signature).
func NewKey(kid, alg string, private crypto.Signer) (*Key, error) {
	switch k := private.(type) {
	case *rsa.PrivateKey, *ecdsa.PrivateKey, ed25519.PrivateKey:
	case nil:
		return nil, errors.New("authtest: NewKey: private key is nil")
	default:
		return nil, fmt.Errorf("authtest: NewKey: unsupported private key type %T", k)
	}
	if kid == "" {
		return nil, errors.New("authtest: NewKey: kid is empty")
	}
	return &Key{id: kid, alg: alg, use: "sig", signer: private}, nil
}

// ID returns the key ID ("kid").
func (k *Key) ID() string { return k.id }

// Alg returns the JWS algorithm the key signs with and publishes ("alg").
func (k *Key) Alg() string { return k.alg }

// Use returns the published key use ("sig" unless changed by WithUse).
func (k *Key) Use() string { return k.use }

// Public returns the public key (*rsa.PublicKey, *ecdsa.PublicKey or
// ed25519.PublicKey).
func (k *Key) Public() crypto.PublicKey { return k.signer.Public() }

// Private returns the private key, for tests that forge tokens by hand.
func (k *Key) Private() crypto.Signer { return k.signer }

// WithUse returns a copy of k published with another "use" value, such as
// "enc" (a key that must never verify a signature) or "" (no use member).
func (k *Key) WithUse(use string) *Key {
	c := *k
	c.use = use
	return &c
}

// WithAlg returns a copy of k published (and, by default, signing) with
// another "alg" value, or with no "alg" member when alg is empty (the key
// then signs with the algorithm it was created with).
func (k *Key) WithAlg(alg string) *Key {
	c := *k
	c.alg = alg
	return &c
}

// WithID returns a copy of k with another key ID.
func (k *Key) WithID(kid string) *Key {
	c := *k
	c.id = kid
	return &c
}

// PublicKeyPEM returns the public key as a PEM "PUBLIC KEY" block (PKIX).
// Its bytes are what an attacker would use as an HMAC secret in an
// algorithm-confusion attack (see Server.MintHMAC).
func (k *Key) PublicKeyPEM() []byte {
	der, err := x509.MarshalPKIXPublicKey(k.Public())
	if err != nil {
		return nil
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// JWK returns the public JWK (RFC 7517 §4) of k as a JSON object, with
// kid, use and alg members (each omitted when empty).
func (k *Key) JWK() (json.RawMessage, error) {
	m, err := k.jwkMarshal()
	if err != nil {
		return nil, err
	}
	return json.Marshal(m)
}

func (k *Key) jwkMarshal() (jwkset.JWKMarshal, error) {
	alg := k.alg
	if _, ok := k.signer.(ed25519.PrivateKey); ok && alg != "EdDSA" {
		// jwkset insists on alg EdDSA for Ed25519 keys; publish the
		// requested alg by patching the marshalled form below.
		alg = "EdDSA"
	}
	j, err := jwkset.NewJWKFromKey(k.Public(), jwkset.JWKOptions{
		Metadata: jwkset.JWKMetadataOptions{
			ALG: jwkset.ALG(alg),
			KID: k.id,
			USE: jwkset.USE(k.use),
		},
	})
	if err != nil {
		return jwkset.JWKMarshal{}, fmt.Errorf("authtest: JWK for key %q: %w", k.id, err)
	}
	m := j.Marshal()
	m.ALG = jwkset.ALG(k.alg)
	return m, nil
}

// signingAlg is the algorithm used when minting with k and no explicit Alg.
func (k *Key) signingAlg() string {
	if k.alg != "" {
		return k.alg
	}
	switch p := k.signer.(type) {
	case *rsa.PrivateKey:
		return "RS256"
	case ed25519.PrivateKey:
		return "EdDSA"
	case *ecdsa.PrivateKey:
		switch p.Curve {
		case elliptic.P384():
			return "ES384"
		case elliptic.P521():
			return "ES512"
		}
		return "ES256"
	}
	return ""
}
