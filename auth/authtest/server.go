package authtest

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// defaultAlgorithms are the keys a Server generates when
// Config.Algorithms is empty, one key per algorithm; the first signs.
func defaultAlgorithms() []string { return []string{"RS256", "PS256", "ES256", "EdDSA"} }

// DefaultAudience is the "aud" of minted tokens when Config.Audience is empty.
const DefaultAudience = "https://mcp.example.test/mcp"

// Config configures a Server. The zero value is usable: an issuer at the
// server's root URL with an RS256, a PS256, an ES256 and an EdDSA key, the
// RS256 key signing.
type Config struct {
	// Addr is the loopback address to listen on, such as
	// "127.0.0.1:9090". Empty means a random port on 127.0.0.1. Only
	// loopback addresses are accepted: this server mints tokens for anyone.
	Addr string
	// IssuerPath is appended to the server's URL to form the issuer, as in
	// "/realms/acme"; the RFC 8414 metadata is then served at
	// /.well-known/oauth-authorization-server/realms/acme (RFC 8414 §3.1)
	// and the OIDC document at /realms/acme/.well-known/openid-configuration.
	// Empty means the issuer is the server's root URL (no trailing slash).
	IssuerPath string
	// Algorithms names the keys to generate, one per algorithm, with key
	// IDs like "rs256-1"; the first one signs. Empty means RS256, PS256,
	// ES256 and EdDSA.
	Algorithms []string
	// Audience is the default "aud" of minted tokens; empty means
	// DefaultAudience.
	Audience string
	// Subject is the default "sub"; empty means "alice".
	Subject string
	// ClientID is the default "client_id" (RFC 9068 §2.2); empty means
	// "mcp-client".
	ClientID string
	// TokenLifetime is the default lifetime of minted tokens; zero means
	// one hour.
	TokenLifetime time.Duration
	// DisableOIDCDiscovery answers 404 at the OpenID Connect discovery URL,
	// so that clients must fall back to RFC 8414 metadata.
	DisableOIDCDiscovery bool
	// Now is the clock for the default iat and exp; nil means time.Now.
	Now func() time.Time
	// TB, when set, closes the server at the end of the test and makes the
	// Must… methods fail the test instead of panicking.
	TB testing.TB
}

// Fault is a failure the JWKS endpoint can be told to simulate.
type Fault int

const (
	// FaultNone serves the JWKS normally.
	FaultNone Fault = iota
	// FaultDown closes the connection without answering, as a crashed or
	// unreachable server would.
	FaultDown
	// FaultStatus500 answers 500 Internal Server Error.
	FaultStatus500
	// FaultGarbage answers 200 with a body that is not JSON.
	FaultGarbage
	// FaultEmpty answers 200 with an empty key set {"keys":[]}.
	FaultEmpty
	// FaultOversized answers 200 with the real key set padded past 2 MiB.
	FaultOversized
	// FaultRedirect answers 302 to another host (a second loopback
	// listener) that serves a key set holding only RedirectKey: a client
	// that follows the redirect would trust a key the issuer never published.
	FaultRedirect
)

// Server is a real-protocol OAuth 2.0 authorization server / OpenID
// provider on a loopback httptest server, for tests and demos: discovery
// (OpenID Connect Discovery 1.0 §4, RFC 8414), a JWKS with rotation, token
// minting (including deliberately broken tokens) and fault injection.
//
// A Server is safe for concurrent use. Close it when done (Config.TB does
// that automatically). It must never run in production: it signs whatever it
// is asked to.
type Server struct {
	cfg       Config
	ts        *httptest.Server
	redirect  *httptest.Server // the "other host" for FaultRedirect
	redirKey  *Key
	issuer    string
	closing   chan struct{}
	closeOnce sync.Once

	jwksFetches     atomic.Int64
	metadataFetches atomic.Int64
	redirectFetches atomic.Int64

	mu         sync.RWMutex
	keys       []*Key            // published, in order
	rawJWKs    []json.RawMessage // extra published members
	signing    *Key
	kidCounter map[string]int
	fault      Fault
	delay      time.Duration
	editMeta   func(map[string]any)

	token tokenEndpoint         // the token endpoint's clients, faults and counters (token.go)
	intro introspectionEndpoint // the introspection endpoint's opaque tokens, revocations and faults (introspect.go)
}

// NewServer starts a Server with the default Config for a test and closes
// it when the test ends. It fails the test if the server cannot start.
func NewServer(tb testing.TB) *Server {
	tb.Helper()
	s, err := New(Config{TB: tb})
	if err != nil {
		tb.Fatalf("authtest: %v", err)
	}
	return s
}

// New starts a Server. Close it when done.
func New(cfg Config) (*Server, error) {
	if cfg.Audience == "" {
		cfg.Audience = DefaultAudience
	}
	if cfg.Subject == "" {
		cfg.Subject = "alice"
	}
	if cfg.ClientID == "" {
		cfg.ClientID = "mcp-client"
	}
	if cfg.TokenLifetime == 0 {
		cfg.TokenLifetime = time.Hour
	}
	if cfg.TokenLifetime < 0 {
		return nil, errors.New("authtest: Config.TokenLifetime must not be negative")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if len(cfg.Algorithms) == 0 {
		cfg.Algorithms = defaultAlgorithms()
	} else {
		cfg.Algorithms = slices.Clone(cfg.Algorithms)
	}
	if !validIssuerPath(cfg.IssuerPath) {
		return nil, fmt.Errorf("authtest: Config.IssuerPath %q must be empty or like \"/realms/acme\": segments of letters, digits, '-', '.', '_' or '~'", cfg.IssuerPath)
	}
	addr := cfg.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("authtest: Config.Addr: %w", err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("authtest: Config.Addr %q is not a loopback address", addr)
	}

	s := &Server{cfg: cfg, closing: make(chan struct{}), kidCounter: map[string]int{}}
	for _, alg := range cfg.Algorithms {
		if _, err := s.NewKey(alg); err != nil {
			return nil, err
		}
	}
	s.signing = s.keys[0]
	if s.redirKey, err = GenerateKey("ES256", "redirected-1"); err != nil {
		return nil, err
	}

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("authtest: listen: %w", err)
	}
	s.issuer = "http://" + ln.Addr().String() + cfg.IssuerPath // what httptest will call its URL
	s.ts = httptest.NewUnstartedServer(s.routes())
	_ = s.ts.Listener.Close()
	s.ts.Listener = ln
	s.ts.Start()
	s.redirect = httptest.NewServer(http.HandlerFunc(s.serveRedirected))

	if cfg.TB != nil {
		cfg.TB.Cleanup(s.Close)
	}
	return s, nil
}

// Close shuts the server down, aborting slow responses in progress. It is
// safe to call more than once.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		close(s.closing)
		s.ts.Close()
		s.redirect.Close()
	})
}

// URL returns the server's base URL, such as "http://127.0.0.1:41234".
func (s *Server) URL() string { return s.ts.URL }

// Issuer returns the issuer identifier: URL plus Config.IssuerPath.
func (s *Server) Issuer() string { return s.issuer }

// JWKSURL returns the URL of the JWK Set (RFC 7517 §5).
func (s *Server) JWKSURL() string { return s.issuer + "/jwks" }

// TokenURL returns the URL of the token endpoint (RFC 6749 §3.2).
func (s *Server) TokenURL() string { return s.issuer + "/token" }

// IntrospectionURL returns the URL of the introspection endpoint (RFC 7662 §2).
func (s *Server) IntrospectionURL() string { return s.issuer + "/introspect" }

// DiscoveryURL returns the OpenID Connect discovery URL:
// the issuer plus "/.well-known/openid-configuration".
func (s *Server) DiscoveryURL() string { return s.issuer + "/.well-known/openid-configuration" }

// MetadataURL returns the RFC 8414 §3.1 metadata URL: the well-known
// segment inserted between the host and the issuer's path.
func (s *Server) MetadataURL() string {
	return s.ts.URL + "/.well-known/oauth-authorization-server" + s.cfg.IssuerPath
}

// Audience returns the default "aud" of minted tokens.
func (s *Server) Audience() string { return s.cfg.Audience }

// Client returns an HTTP client for the server.
func (s *Server) Client() *http.Client { return s.ts.Client() }

// DefaultClaims returns the claims every minted token starts from: iss
// (the issuer), sub, aud, client_id, iat (now), exp (now + TokenLifetime)
// and a random jti. Times are whole seconds.
func (s *Server) DefaultClaims() map[string]any {
	now := s.cfg.Now()
	return map[string]any{
		"iss":       s.issuer,
		"sub":       s.cfg.Subject,
		"aud":       s.cfg.Audience,
		"client_id": s.cfg.ClientID,
		"iat":       now.Unix(),
		"exp":       now.Add(s.cfg.TokenLifetime).Unix(),
		"jti":       randomID(),
	}
}

// NewKey generates a key for alg, publishes it in the JWKS (without making
// it the signing key) and returns it. Its kid is the lower-case algorithm
// and a counter, such as "es256-2".
func (s *Server) NewKey(alg string) (*Key, error) {
	s.mu.Lock()
	s.kidCounter[alg]++
	kid := strings.ToLower(alg) + "-" + strconv.Itoa(s.kidCounter[alg])
	s.mu.Unlock()
	k, err := GenerateKey(alg, kid)
	if err != nil {
		return nil, err
	}
	if err := s.AddKey(k); err != nil {
		return nil, err
	}
	return k, nil
}

// AddKey publishes k in the JWKS. It fails if a published key has the same kid.
func (s *Server) AddKey(k *Key) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if slices.ContainsFunc(s.keys, func(p *Key) bool { return p.ID() == k.ID() }) {
		return fmt.Errorf("authtest: a key with kid %q is already published", k.ID())
	}
	s.keys = append(s.keys, k)
	return nil
}

// AddRawJWK publishes an arbitrary JSON member in the JWKS "keys" array,
// such as a symmetric {"kty":"oct",…} key or a malformed entry, to test how
// a client treats keys it must not use.
func (s *Server) AddRawJWK(jwk json.RawMessage) error {
	if !json.Valid(jwk) {
		return errors.New("authtest: AddRawJWK: not valid JSON")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rawJWKs = append(s.rawJWKs, slices.Clone(jwk))
	return nil
}

// SetSigningKey makes the published key kid the default signing key.
func (s *Server) SetSigningKey(kid string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range s.keys {
		if k.ID() == kid {
			s.signing = k
			return nil
		}
	}
	return fmt.Errorf("authtest: no published key with kid %q", kid)
}

// Rotate generates and publishes a new key for alg and makes it the
// signing key. The previous keys stay published until RetireKey.
func (s *Server) Rotate(alg string) (*Key, error) {
	k, err := s.NewKey(alg)
	if err != nil {
		return nil, err
	}
	return k, s.SetSigningKey(k.ID())
}

// RetireKey removes key kid from the JWKS. If it was the signing key it
// keeps signing (so tests can mint tokens with a retired key) until
// SetSigningKey or Rotate.
func (s *Server) RetireKey(kid string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := slices.IndexFunc(s.keys, func(k *Key) bool { return k.ID() == kid })
	if i < 0 {
		return fmt.Errorf("authtest: no published key with kid %q", kid)
	}
	s.keys = slices.Delete(s.keys, i, i+1)
	return nil
}

// Keys returns the published keys, in publication order.
func (s *Server) Keys() []*Key {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return slices.Clone(s.keys)
}

// Key returns the published key with the given kid.
func (s *Server) Key(kid string) (*Key, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, k := range s.keys {
		if k.ID() == kid {
			return k, true
		}
	}
	return nil, false
}

// KeyFor returns the first published key whose algorithm is alg.
func (s *Server) KeyFor(alg string) (*Key, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, k := range s.keys {
		if k.Alg() == alg {
			return k, true
		}
	}
	return nil, false
}

// SigningKey returns the current default signing key.
func (s *Server) SigningKey() *Key {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.signing
}

// RedirectKey returns the key served by the other host that FaultRedirect
// points to. It is never published by this server; tokens minted with it
// (MintToken with Key: RedirectKey()) must be rejected.
func (s *Server) RedirectKey() *Key { return s.redirKey }

// JWKS returns the JWK Set document currently published.
func (s *Server) JWKS() ([]byte, error) {
	s.mu.RLock()
	keys := slices.Clone(s.keys)
	raws := slices.Clone(s.rawJWKs)
	s.mu.RUnlock()
	return encodeJWKS(keys, raws)
}

func encodeJWKS(keys []*Key, raws []json.RawMessage) ([]byte, error) {
	members := make([]json.RawMessage, 0, len(keys)+len(raws))
	for _, k := range keys {
		j, err := k.JWK()
		if err != nil {
			return nil, err
		}
		members = append(members, j)
	}
	members = append(members, raws...)
	return json.Marshal(map[string]any{"keys": members})
}

// SetJWKSFault makes the JWKS endpoint simulate f until changed;
// FaultNone restores normal service.
func (s *Server) SetJWKSFault(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fault = f
}

// SetJWKSDelay delays every JWKS response by d (zero for none), to
// simulate a slow endpoint. A delayed response is abandoned when the client
// goes away or the server closes.
func (s *Server) SetJWKSDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delay = d
}

// EditMetadata installs fn to modify both discovery documents before they
// are served (fn receives a fresh map each time), for instance to announce
// another issuer or drop jwks_uri. nil restores the normal documents.
func (s *Server) EditMetadata(fn func(doc map[string]any)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.editMeta = fn
}

// JWKSFetches returns how many requests reached the JWKS endpoint,
// whatever the fault.
func (s *Server) JWKSFetches() int { return int(s.jwksFetches.Load()) }

// MetadataFetches returns how many requests reached either discovery
// document (including 404s when discovery is disabled).
func (s *Server) MetadataFetches() int { return int(s.metadataFetches.Load()) }

// RedirectFetches returns how many requests reached the other host that
// FaultRedirect points to. A client that refuses cross-host redirects
// leaves it at zero.
func (s *Server) RedirectFetches() int { return int(s.redirectFetches.Load()) }

func validIssuerPath(p string) bool {
	if p == "" {
		return true
	}
	if !strings.HasPrefix(p, "/") {
		return false
	}
	for seg := range strings.SplitSeq(p[1:], "/") {
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
		for _, c := range seg {
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.ContainsRune("-._~", c)) {
				return false
			}
		}
	}
	return true
}

func (s *Server) fatal(err error) {
	if s.cfg.TB != nil {
		s.cfg.TB.Helper()
		s.cfg.TB.Fatalf("authtest: %v", err)
		return
	}
	panic(err)
}

func (s *Server) routes() http.Handler {
	p := s.cfg.IssuerPath
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+p+"/.well-known/openid-configuration", s.serveOIDC)
	mux.HandleFunc("GET /.well-known/oauth-authorization-server"+p, s.serveRFC8414)
	mux.HandleFunc("GET "+p+"/jwks", s.serveJWKS)
	mux.HandleFunc(p+"/token", s.serveToken)
	mux.HandleFunc(p+"/introspect", s.serveIntrospection)
	return mux
}

// metadata builds the discovery document shared by RFC 8414 and OIDC
// discovery. The endpoint-specific members come from token.go and
// introspect.go.
func (s *Server) metadata() map[string]any {
	s.mu.RLock()
	algs := make([]string, 0, len(s.keys))
	for _, k := range s.keys {
		if k.Alg() != "" && !slices.Contains(algs, k.Alg()) {
			algs = append(algs, k.Alg())
		}
	}
	edit := s.editMeta
	s.mu.RUnlock()
	doc := map[string]any{
		"issuer":                                s.issuer,
		"jwks_uri":                              s.JWKSURL(),
		"token_endpoint":                        s.TokenURL(),
		"introspection_endpoint":                s.IntrospectionURL(),
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": algs,
	}
	s.tokenMetadata(doc)
	s.introspectionMetadata(doc)
	if edit != nil {
		edit(doc)
	}
	return doc
}

func (s *Server) serveOIDC(w http.ResponseWriter, r *http.Request) {
	s.metadataFetches.Add(1)
	if s.cfg.DisableOIDCDiscovery {
		http.NotFound(w, r)
		return
	}
	writeJSON(w, http.StatusOK, s.metadata())
}

func (s *Server) serveRFC8414(w http.ResponseWriter, _ *http.Request) {
	s.metadataFetches.Add(1)
	writeJSON(w, http.StatusOK, s.metadata())
}

func (s *Server) serveJWKS(w http.ResponseWriter, r *http.Request) {
	s.jwksFetches.Add(1)
	s.mu.RLock()
	fault, delay := s.fault, s.delay
	s.mu.RUnlock()
	if delay > 0 {
		t := time.NewTimer(delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return
		case <-s.closing:
			return
		}
	}
	switch fault {
	case FaultDown:
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				_ = conn.Close()
				return
			}
		}
		panic(http.ErrAbortHandler)
	case FaultStatus500:
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	case FaultGarbage:
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte("<html>\x00\xff this is not a key set"))
		return
	case FaultEmpty:
		writeJSON(w, http.StatusOK, map[string]any{"keys": []any{}})
		return
	case FaultRedirect:
		http.Redirect(w, r, s.redirect.URL+"/jwks", http.StatusFound)
		return
	case FaultOversized:
		doc, err := s.JWKS()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(doc[:len(doc)-1])
		_, _ = w.Write([]byte(`,"padding":"`))
		chunk := []byte(strings.Repeat("x", 64<<10))
		for range 32 {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
		_, _ = w.Write([]byte(`"}`))
		return
	}
	doc, err := s.JWKS()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/jwk-set+json")
	w.Header().Set("Cache-Control", "max-age=300")
	_, _ = w.Write(doc)
}

func (s *Server) serveRedirected(w http.ResponseWriter, _ *http.Request) {
	s.redirectFetches.Add(1)
	doc, err := encodeJWKS([]*Key{s.redirKey}, nil)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/jwk-set+json")
	_, _ = w.Write(doc)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "encoding failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// writeOAuthError answers with an RFC 6749 §5.2 error response.
func writeOAuthError(w http.ResponseWriter, status int, code, description string) {
	writeJSON(w, status, map[string]string{"error": code, "error_description": description})
}
