package authtest

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
)

// DPoP at the token endpoint (RFC 9449 §5). A token request carrying one
// valid DPoP proof gets an access token bound to the proof's key
// ("cnf": {"jkt": …}) with token_type "DPoP"; a request without a proof
// gets a bearer token, unless the client is DPoPBound. The proof is checked
// as RFC 9449 §4.3 asks: typ dpop+jwt, an asymmetric alg, a public jwk and
// its signature, htm POST, htu the token endpoint, iat within ±5 minutes of
// Config.Now, a jti not seen before and, with SetTokenDPoPNonce, the
// server's nonce (§8: otherwise 400 use_dpop_nonce with a DPoP-Nonce
// header).

// dpopProofWindow is how far a token request's proof iat may be from now.
const dpopProofWindow = 5 * time.Minute

// dpopAlgs are the proof algorithms the token endpoint accepts.
var dpopAlgs = []string{"ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "EdDSA"}

// SetTokenDPoPNonce makes the token endpoint require nonce in every DPoP
// proof (RFC 9449 §8); empty turns the requirement off.
func (s *Server) SetTokenDPoPNonce(nonce string) {
	s.token.mu.Lock()
	s.token.dpopNonce = nonce
	s.token.mu.Unlock()
}

// TokenDPoPProofs returns how many valid DPoP proofs the token endpoint
// accepted (each bound one issued token).
func (s *Server) TokenDPoPProofs() int { return int(s.token.dpopProofs.Load()) }

func dpopError(status int, code, desc string) *TokenError {
	return &TokenError{Status: status, Code: code, Description: desc}
}

// tokenProof checks the DPoP header of a token request and returns the
// thumbprint of its key, "" when the request carries no proof.
func (s *Server) tokenProof(r *http.Request, w http.ResponseWriter) (string, *TokenError) {
	values := r.Header.Values("DPoP")
	switch len(values) {
	case 0:
		return "", nil
	case 1:
	default:
		return "", dpopError(http.StatusBadRequest, "invalid_dpop_proof", "exactly one DPoP header is required")
	}
	if len(values[0]) > 8<<10 {
		return "", dpopError(http.StatusBadRequest, "invalid_dpop_proof", "the proof is too long")
	}
	var jkt string
	claims := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(values[0], claims, func(t *jwt.Token) (any, error) {
		if typ, _ := t.Header["typ"].(string); typ != "dpop+jwt" {
			return nil, errors.New(`typ is not "dpop+jwt"`)
		}
		m, ok := t.Header["jwk"].(map[string]any)
		if !ok {
			return nil, errors.New("no jwk header")
		}
		for _, private := range []string{"d", "p", "q", "dp", "dq", "qi", "k"} {
			if _, ok := m[private]; ok {
				return nil, errors.New("the jwk holds private key material")
			}
		}
		raw, err := json.Marshal(m)
		if err != nil {
			return nil, err
		}
		k, err := jwkset.NewJWKFromRawJSON(raw, jwkset.JWKMarshalOptions{}, jwkset.JWKValidateOptions{})
		if err != nil {
			return nil, fmt.Errorf("jwk: %v", err)
		}
		if jkt, err = Thumbprint(m); err != nil {
			return nil, err
		}
		return k.Key(), nil
	}, jwt.WithValidMethods(dpopAlgs), jwt.WithoutClaimsValidation())
	if err != nil {
		return "", dpopError(http.StatusBadRequest, "invalid_dpop_proof", "the DPoP proof is invalid: "+safeReason(err))
	}
	str := func(name string) string { v, _ := claims[name].(string); return v }
	iat, _ := claims["iat"].(float64)
	now := s.cfg.Now()
	switch at := time.Unix(int64(iat), 0); {
	case str("jti") == "" || len(str("jti")) > 256:
		return "", dpopError(http.StatusBadRequest, "invalid_dpop_proof", "the proof has no usable jti")
	case str("htm") != http.MethodPost:
		return "", dpopError(http.StatusBadRequest, "invalid_dpop_proof", "htm is not POST")
	case str("htu") != s.TokenURL():
		return "", dpopError(http.StatusBadRequest, "invalid_dpop_proof", "htu is not the token endpoint")
	case iat == 0 || at.Before(now.Add(-dpopProofWindow)) || at.After(now.Add(dpopProofWindow)):
		return "", dpopError(http.StatusBadRequest, "invalid_dpop_proof", "iat is outside the accepted window")
	}
	t := &s.token
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.dpopNonce != "" && str("nonce") != t.dpopNonce {
		w.Header().Set("DPoP-Nonce", t.dpopNonce)
		return "", dpopError(http.StatusBadRequest, "use_dpop_nonce", "the proof must carry the server's nonce")
	}
	if t.seenJTI == nil {
		t.seenJTI = map[string]time.Time{}
	}
	id := "dpop\x00" + jkt + "\x00" + str("jti")
	if _, seen := t.seenJTI[id]; seen {
		return "", dpopError(http.StatusBadRequest, "invalid_dpop_proof", "the proof was already used (jti replay)")
	}
	if len(t.seenJTI) >= maxSeenAssertions {
		for k, exp := range t.seenJTI {
			if !now.Before(exp) {
				delete(t.seenJTI, k)
			}
		}
		if len(t.seenJTI) >= maxSeenAssertions {
			return "", dpopError(http.StatusServiceUnavailable, "temporarily_unavailable", "too many live proofs")
		}
	}
	t.seenJTI[id] = time.Unix(int64(iat), 0).Add(dpopProofWindow)
	t.dpopProofs.Add(1)
	return jkt, nil
}
