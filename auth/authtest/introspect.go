package authtest

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"maps"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The token introspection endpoint (RFC 7662). It authenticates a client
// registered with RegisterClient (client_secret_basic, client_secret_post
// or private_key_jwt, RFC 7662 §2.1 requires one) and answers for two kinds
// of token:
//
//   - opaque tokens minted by MintOpaque: active with their claims until
//     their exp (by Config.Now) or until Revoke;
//   - JWTs this server signed: active with their claims while the
//     signature verifies with a published key, the issuer is this server
//     and they are unexpired, until Revoke.
//
// Anything else is {"active": false} (RFC 7662 §2.2). Faults
// (SetIntrospectionFault, SetIntrospectionDelay) make it fail on demand.

// maxOpaqueTokens caps the opaque tokens a Server remembers.
const maxOpaqueTokens = 100_000

// introspectionEndpoint is the introspection endpoint's state, a field of
// Server.
type introspectionEndpoint struct {
	requests atomic.Int64

	mu      sync.Mutex
	opaque  map[string]map[string]any // opaque token → its claims
	revoked map[[sha256.Size]byte]struct{}
	fault   Fault
	delay   time.Duration
}

// MintOpaque returns a new opaque access token: 43 random base64url
// characters, not a JWT, meaningful only to this server's introspection
// endpoint. Introspecting it answers the default claims (DefaultClaims)
// with claims laid over them (a nil value removes a claim), plus "active"
// and "token_type": "Bearer". It fails once 100,000 opaque tokens exist.
func (s *Server) MintOpaque(claims map[string]any) (string, error) {
	c := s.DefaultClaims()
	overlay(c, claims)
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	tok := base64.RawURLEncoding.EncodeToString(b[:])
	e := &s.intro
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.opaque == nil {
		e.opaque = map[string]map[string]any{}
	}
	if len(e.opaque) >= maxOpaqueTokens {
		return "", errors.New("authtest: MintOpaque: too many opaque tokens")
	}
	e.opaque[tok] = c
	return tok, nil
}

// MustMintOpaque is MintOpaque for tests: it fails the test given in
// Config.TB (or panics without one) when minting fails.
func (s *Server) MustMintOpaque(claims map[string]any) string {
	tok, err := s.MintOpaque(claims)
	if err != nil {
		s.fatal(err)
	}
	return tok
}

// Revoke makes the introspection endpoint answer {"active": false} for
// token — opaque or JWT — from now on. Validators that cached the token
// notice only when their cache entry ends.
func (s *Server) Revoke(token string) {
	e := &s.intro
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.revoked == nil {
		e.revoked = map[[sha256.Size]byte]struct{}{}
	}
	e.revoked[sha256.Sum256([]byte(token))] = struct{}{}
}

// SetIntrospectionFault makes the introspection endpoint simulate f until
// changed: FaultDown, FaultStatus500, FaultGarbage, FaultEmpty ("{}", no
// "active" member), FaultOversized (a 2 MiB answer) or FaultRedirect (307
// to the other host, whose hits RedirectFetches counts). FaultNone
// restores normal service.
func (s *Server) SetIntrospectionFault(f Fault) {
	s.intro.mu.Lock()
	defer s.intro.mu.Unlock()
	s.intro.fault = f
}

// SetIntrospectionDelay delays every introspection answer by d (zero for
// none). A delayed answer is abandoned when the client goes away or the
// server closes.
func (s *Server) SetIntrospectionDelay(d time.Duration) {
	s.intro.mu.Lock()
	defer s.intro.mu.Unlock()
	s.intro.delay = d
}

// IntrospectionRequests returns how many requests reached the
// introspection endpoint, whatever their outcome.
func (s *Server) IntrospectionRequests() int { return int(s.intro.requests.Load()) }

// introspectionMetadata adds the introspection endpoint's members to the
// discovery document (RFC 8414 §2).
func (s *Server) introspectionMetadata(doc map[string]any) {
	doc["introspection_endpoint_auth_methods_supported"] = []string{ClientSecretBasic, ClientSecretPost, PrivateKeyJWT}
}

// serveIntrospection is the introspection endpoint (RFC 7662 §2).
func (s *Server) serveIntrospection(w http.ResponseWriter, r *http.Request) {
	e := &s.intro
	e.requests.Add(1)
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeOAuthError(w, http.StatusMethodNotAllowed, "invalid_request", "the introspection endpoint accepts POST only")
		return
	}
	e.mu.Lock()
	fault, delay := e.fault, e.delay
	e.mu.Unlock()
	if delay > 0 {
		timer := time.NewTimer(delay)
		defer timer.Stop()
		select {
		case <-timer.C:
		case <-r.Context().Done():
			return
		case <-s.closing:
			return
		}
	}
	if fault == FaultRedirect {
		http.Redirect(w, r, s.redirect.URL+"/introspect", http.StatusTemporaryRedirect)
		return
	}
	if fault == FaultEmpty {
		writeJSON(w, http.StatusOK, map[string]any{})
		return
	}
	if s.serveTokenFault(w, r, fault) {
		return
	}
	form, err := readTokenForm(w, r)
	if err != nil {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	if _, err := s.authenticateClient(r, form); err != nil {
		if _, _, basic := r.BasicAuth(); basic {
			w.Header().Set("WWW-Authenticate", `Basic realm="authtest"`)
		}
		writeOAuthError(w, http.StatusUnauthorized, "invalid_client", err.Error())
		return
	}
	if !form.Has("token") {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "token is required")
		return
	}
	writeJSON(w, http.StatusOK, s.introspect(form.Get("token")))
}

// introspect returns the RFC 7662 §2.2 answer for tok.
func (s *Server) introspect(tok string) map[string]any {
	inactive := map[string]any{"active": false}
	e := &s.intro
	e.mu.Lock()
	_, revoked := e.revoked[sha256.Sum256([]byte(tok))]
	claims, opaque := e.opaque[tok]
	e.mu.Unlock()
	if revoked || tok == "" {
		return inactive
	}
	if opaque {
		claims = maps.Clone(claims)
		now := float64(s.cfg.Now().Unix())
		if exp, ok := numeric(claims["exp"]); ok && now >= exp {
			return inactive
		}
		if nbf, ok := numeric(claims["nbf"]); ok && now < nbf {
			return inactive
		}
	} else {
		if strings.Count(tok, ".") != 2 {
			return inactive
		}
		c, err := s.validateGrantToken(tok, "")
		if err != nil {
			return inactive
		}
		claims = map[string]any(c)
	}
	claims["active"] = true
	if _, ok := claims["token_type"]; !ok {
		claims["token_type"] = "Bearer"
	}
	return claims
}

// numeric reads a NumericDate as minted: an int64 from DefaultClaims or
// the caller, or a float64.
func numeric(v any) (float64, bool) {
	switch n := v.(type) {
	case int64:
		return float64(n), true
	case int:
		return float64(n), true
	case float64:
		return n, true
	}
	return 0, false
}
