package authtest

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// DPoPKey is a client's DPoP proof key (RFC 9449 §4): it signs proofs and
// names itself by its RFC 7638 thumbprint, the "cnf.jkt" of the tokens
// bound to it.
//
// A DPoPKey is immutable and safe for concurrent use.
type DPoPKey struct {
	key *Key
	jwk map[string]any // public members only
	jkt string
	now func() time.Time
}

// NewDPoPKey generates a proof key for alg (see GenerateKey).
func NewDPoPKey(alg string) (*DPoPKey, error) {
	k, err := GenerateKey(alg, "dpop")
	if err != nil {
		return nil, err
	}
	return DPoPKeyFrom(k)
}

// DPoPKeyFrom makes a proof key of an existing key.
func DPoPKeyFrom(k *Key) (*DPoPKey, error) {
	m, err := k.jwkMarshal()
	if err != nil {
		return nil, err
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	var jwk map[string]any
	if err := json.Unmarshal(raw, &jwk); err != nil {
		return nil, err
	}
	// A proof's jwk carries the key alone.
	delete(jwk, "kid")
	delete(jwk, "use")
	delete(jwk, "alg")
	jkt, err := Thumbprint(jwk)
	if err != nil {
		return nil, err
	}
	return &DPoPKey{key: k, jwk: jwk, jkt: jkt, now: time.Now}, nil
}

// WithClock returns a copy of k whose proofs take their iat from now.
func (k *DPoPKey) WithClock(now func() time.Time) *DPoPKey {
	c := *k
	c.now = now
	return &c
}

// Thumbprint returns the key's RFC 7638 SHA-256 thumbprint, base64url.
func (k *DPoPKey) Thumbprint() string { return k.jkt }

// Key returns the underlying key.
func (k *DPoPKey) Key() *Key { return k.key }

// PublicJWK returns a copy of the public JWK put in proofs.
func (k *DPoPKey) PublicJWK() map[string]any { return maps.Clone(k.jwk) }

// Thumbprint computes the RFC 7638 SHA-256 thumbprint of a public JWK given
// as its members: the required members of its kty in lexicographic order.
func Thumbprint(jwk map[string]any) (string, error) {
	kty, _ := jwk["kty"].(string)
	var names []string
	switch kty {
	case "EC":
		names = []string{"crv", "kty", "x", "y"}
	case "RSA":
		names = []string{"e", "kty", "n"}
	case "OKP":
		names = []string{"crv", "kty", "x"}
	default:
		return "", fmt.Errorf("authtest: Thumbprint: kty %q", kty)
	}
	parts := make([]string, len(names))
	for i, n := range names {
		v, ok := jwk[n].(string)
		if !ok {
			return "", fmt.Errorf("authtest: Thumbprint: member %q missing", n)
		}
		q, _ := json.Marshal(v)
		parts[i] = `"` + n + `":` + string(q)
	}
	sum := sha256.Sum256([]byte("{" + strings.Join(parts, ",") + "}"))
	return base64.RawURLEncoding.EncodeToString(sum[:]), nil
}

// Proof describes a DPoP proof to sign with DPoPKey.Sign.
type Proof struct {
	// Method is htm; URL is htu (used as given: pass it without query and
	// fragment, as RFC 9449 §4.2 asks).
	Method, URL string
	// AccessToken, when set, gives ath, the base64url SHA-256 of it.
	AccessToken string
	// Nonce, when set, is the server-provided nonce (RFC 9449 §8).
	Nonce string
	// JTI is the proof's ID; empty means a random one.
	JTI string
	// IssuedAt is iat; zero means the key's clock.
	IssuedAt time.Time
	// Header and Claims are laid over the defaults (a nil value removes a
	// member), to build broken proofs on purpose.
	Header, Claims map[string]any
	// Alg is the signing algorithm; empty means the key's.
	Alg string
}

// Sign returns the compact proof p describes: header {typ "dpop+jwt", alg,
// jwk}, claims {jti, htm, htu, iat, ath, nonce}.
func (k *DPoPKey) Sign(p Proof) (string, error) {
	alg := p.Alg
	if alg == "" {
		alg = k.key.signingAlg()
	}
	hdr := map[string]any{"typ": "dpop+jwt", "alg": alg, "jwk": k.jwk}
	overlay(hdr, p.Header)
	iat := p.IssuedAt
	if iat.IsZero() {
		iat = k.now()
	}
	jti := p.JTI
	if jti == "" {
		jti = randomID()
	}
	claims := map[string]any{"jti": jti, "htm": p.Method, "htu": p.URL, "iat": iat.Unix()}
	if p.AccessToken != "" {
		claims["ath"] = AccessTokenHash(p.AccessToken)
	}
	if p.Nonce != "" {
		claims["nonce"] = p.Nonce
	}
	overlay(claims, p.Claims)
	hb, err := json.Marshal(hdr)
	if err != nil {
		return "", err
	}
	pb, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	return Sign(hb, pb, alg, k.key.Private())
}

// MustSign is Sign that panics on error, for tests.
func (k *DPoPKey) MustSign(p Proof) string {
	s, err := k.Sign(p)
	if err != nil {
		panic(err)
	}
	return s
}

// AccessTokenHash returns a proof's ath for token: base64url(SHA-256).
func AccessTokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// MintBound mints an access token bound to k: the default claims, claims
// laid over them, and "cnf": {"jkt": k.Thumbprint()} (RFC 9449 §6.1).
func (s *Server) MintBound(claims map[string]any, k *DPoPKey) (string, error) {
	c := maps.Clone(claims)
	if c == nil {
		c = map[string]any{}
	}
	c["cnf"] = map[string]any{"jkt": k.Thumbprint()}
	return s.MintToken(Token{Claims: c})
}

// MustMintBound is MintBound failing the test (or panicking) on error.
func (s *Server) MustMintBound(claims map[string]any, k *DPoPKey) string {
	tok, err := s.MintBound(claims, k)
	if err != nil {
		s.fatal(err)
	}
	return tok
}

// DPoPTransport is an http.RoundTripper that sends Token with the DPoP
// scheme and a fresh proof signed by Key on every request (RFC 9449 §7.1).
// When a server answers 401 with a DPoP-Nonce header and error
// "use_dpop_nonce" (RFC 9449 §9), it retries once with that nonce, and
// remembers the latest nonce each response sends.
//
// With Token empty it is a token-request client instead (RFC 9449 §5): each
// request carries a proof without ath and no Authorization header of its
// own (one the caller set, such as client_secret_basic, is kept). An
// authorization server's nonce challenge, a 400 answer with a DPoP-Nonce
// header and the JSON error "use_dpop_nonce" (RFC 9449 §8), is retried once
// with that nonce too, in either mode. Only the first 16 KiB of a 400 answer
// are read to find its error; one that is not a nonce challenge is handed
// back whole.
//
// Requests with a body are retried only when GetBody is set (as
// http.NewRequest sets it for common bodies). It is safe for concurrent use;
// one DPoPTransport remembers one nonce, so use one per server.
type DPoPTransport struct {
	// Base is the underlying transport; nil means http.DefaultTransport.
	Base http.RoundTripper
	// Key signs the proofs. Required.
	Key *DPoPKey
	// Token is the DPoP-bound access token; empty makes the transport a
	// token-request client (no Authorization header, no ath).
	Token string

	mu    sync.Mutex
	nonce string
}

// RoundTrip implements http.RoundTripper.
func (t *DPoPTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if t.Key == nil {
		return nil, errors.New("authtest: DPoPTransport: Key is nil")
	}
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	t.mu.Lock()
	nonce := t.nonce
	t.mu.Unlock()
	resp, err := t.send(base, r, nonce, false)
	if err != nil {
		return nil, err
	}
	if n := resp.Header.Get("DPoP-Nonce"); n != "" {
		t.mu.Lock()
		t.nonce = n
		t.mu.Unlock()
		if n != nonce && (r.Body == nil || r.GetBody != nil) {
			challenged, err := nonceChallenge(resp)
			if err != nil {
				return nil, err
			}
			if challenged {
				_ = resp.Body.Close()
				return t.send(base, r, n, true)
			}
		}
	}
	return resp, nil
}

// maxChallengeBody caps what nonceChallenge reads of a 400 answer.
const maxChallengeBody = 16 << 10

// nonceChallenge reports whether resp asks for a retry with its DPoP-Nonce:
// a resource server's 401 whose WWW-Authenticate carries use_dpop_nonce
// (RFC 9449 §9), or an authorization server's 400 whose JSON error is
// use_dpop_nonce (§8). A 400 body it reads is put back in front of the rest.
func nonceChallenge(resp *http.Response) (bool, error) {
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		return strings.Contains(strings.Join(resp.Header.Values("WWW-Authenticate"), ","), "use_dpop_nonce"), nil
	case http.StatusBadRequest:
		head, err := io.ReadAll(io.LimitReader(resp.Body, maxChallengeBody))
		if err != nil {
			_ = resp.Body.Close()
			return false, fmt.Errorf("authtest: DPoPTransport: reading a 400 answer: %w", err)
		}
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(head, &e) == nil && e.Error == "use_dpop_nonce" {
			return true, nil
		}
		resp.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(head), resp.Body), resp.Body}
	}
	return false, nil
}

func (t *DPoPTransport) send(base http.RoundTripper, r *http.Request, nonce string, retry bool) (*http.Response, error) {
	u := *r.URL
	u.RawQuery, u.Fragment, u.ForceQuery = "", "", false
	// AccessToken empty (a token request) leaves ath out.
	proof, err := t.Key.Sign(Proof{Method: r.Method, URL: (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path, RawPath: u.RawPath}).String(), AccessToken: t.Token, Nonce: nonce})
	if err != nil {
		return nil, err
	}
	c := r.Clone(r.Context())
	if retry && r.Body != nil {
		if c.Body, err = r.GetBody(); err != nil {
			return nil, err
		}
	}
	if t.Token != "" {
		c.Header.Set("Authorization", "DPoP "+t.Token)
	}
	c.Header.Set("DPoP", proof)
	return base.RoundTrip(c)
}
