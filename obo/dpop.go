package obo

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
)

// The client side of DPoP (RFC 9449): with Config.DPoPKey every token
// request carries a proof (§5), a token issued with token_type "DPoP" is
// sent downstream with the DPoP scheme and a fresh proof per request (§7.1),
// and a server's use_dpop_nonce answer is retried once with its nonce (§8,
// §9).

// maxDPoPNonces caps the remembered server nonces (one per origin).
const maxDPoPNonces = 64

// maxDPoPNonceBytes caps a nonce taken from a DPoP-Nonce header.
const maxDPoPNonceBytes = 512

// dpopSigner signs proofs with Config.DPoPKey.
type dpopSigner struct {
	method jwt.SigningMethod
	key    *PrivateKey
	jwk    map[string]any // the public key, as the proof's jwk header
	now    func() time.Time

	mu     sync.Mutex
	nonces map[string]string // origin → the latest DPoP-Nonce it sent
}

func newDPoPSigner(k *PrivateKey, now func() time.Time) (*dpopSigner, error) {
	bad := func(why string) error { return fmt.Errorf("%w: Config.DPoPKey: %s", ErrConfig, why) }
	if k.Signer == nil {
		return nil, bad("Signer is required")
	}
	if k.KeyID != "" || k.Thumbprint != "" || k.ThumbprintS256 != "" {
		return nil, bad("KeyID, Thumbprint and ThumbprintS256 must be empty: a proof names its key by the jwk header (RFC 9449 §4.2)")
	}
	m, err := signingMethod(k)
	if err != nil {
		return nil, bad(strings.TrimPrefix(err.Error(), ErrConfig.Error()+": Config.PrivateKey: "))
	}
	j, err := jwkset.NewJWKFromKey(k.Signer.Public(), jwkset.JWKOptions{})
	if err != nil {
		return nil, bad("cannot express the public key as a JWK: " + err.Error())
	}
	raw, err := json.Marshal(j.Marshal())
	if err != nil {
		return nil, bad(err.Error())
	}
	var pub map[string]any
	if err := json.Unmarshal(raw, &pub); err != nil {
		return nil, bad(err.Error())
	}
	for name := range pub {
		switch name {
		case "kty", "crv", "x", "y", "n", "e":
		default:
			delete(pub, name) // the key alone: no alg, kid or use
		}
	}
	return &dpopSigner{method: m, key: k, jwk: pub, now: now}, nil
}

// proof signs a proof for a request to u with method; accessToken, when
// set, gives ath (§4.2), and the origin's remembered nonce is included.
func (d *dpopSigner) proof(method string, u *url.URL, accessToken string) (string, error) {
	htu := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path, RawPath: u.RawPath}
	claims := jwt.MapClaims{
		"jti": rand.Text(),
		"htm": method,
		"htu": htu.String(),
		"iat": d.now().Unix(),
	}
	if accessToken != "" {
		sum := sha256.Sum256([]byte(accessToken))
		claims["ath"] = base64.RawURLEncoding.EncodeToString(sum[:])
	}
	if n := d.nonce(u); n != "" {
		claims["nonce"] = n
	}
	t := jwt.NewWithClaims(d.method, claims)
	t.Header["typ"] = "dpop+jwt"
	t.Header["jwk"] = d.jwk
	return t.SignedString(d.key.Signer)
}

func origin(u *url.URL) string { return strings.ToLower(u.Scheme + "://" + u.Host) }

func (d *dpopSigner) nonce(u *url.URL) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.nonces[origin(u)]
}

// observe remembers the DPoP-Nonce of a response from u (RFC 9449 §8.2: a
// server may send a new one on any response) and reports whether it sent
// one that differs from the nonce the request used.
func (d *dpopSigner) observe(u *url.URL, h http.Header) (changed bool) {
	n := h.Get("DPoP-Nonce")
	if n == "" || len(n) > maxDPoPNonceBytes || !printable(n) {
		return false
	}
	o := origin(u)
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.nonces[o] == n {
		return false
	}
	if d.nonces == nil || len(d.nonces) >= maxDPoPNonces {
		d.nonces = make(map[string]string, 8)
	}
	d.nonces[o] = n
	return true
}

// isNonceChallenge reports whether a resource server's answer asks for a
// nonce (RFC 9449 §9): 401 with a DPoP challenge whose error is
// use_dpop_nonce.
func isNonceChallenge(resp *http.Response) bool {
	if resp.StatusCode != http.StatusUnauthorized {
		return false
	}
	for _, v := range resp.Header.Values("WWW-Authenticate") {
		if strings.Contains(v, "use_dpop_nonce") {
			return true
		}
	}
	return false
}
