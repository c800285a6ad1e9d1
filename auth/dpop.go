package auth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mcpguard/mcpguard/internal/b64url"
)

// DPoPMode says whether a validator accepts DPoP-bound access tokens
// (RFC 9449, the MCP DPoP proposal SEP-1932).
type DPoPMode int

const (
	// DPoPDisabled, the zero value, accepts bearer tokens only: the DPoP
	// scheme is not recognised and a token bound to a key (one carrying
	// "cnf") is refused, since no proof can be checked for it.
	DPoPDisabled DPoPMode = iota
	// DPoPAllowed accepts unbound tokens with the Bearer scheme and
	// DPoP-bound tokens with the DPoP scheme and a valid proof, each by its
	// own rules. A bound token is never accepted as a bearer token.
	DPoPAllowed
	// DPoPRequired accepts only DPoP-bound tokens with a valid proof.
	DPoPRequired
)

// String returns "disabled", "allowed" or "required".
func (m DPoPMode) String() string {
	switch m {
	case DPoPDisabled:
		return "disabled"
	case DPoPAllowed:
		return "allowed"
	case DPoPRequired:
		return "required"
	}
	return "unknown"
}

// Defaults and bounds of DPoPConfig.
const (
	// DefaultDPoPWindow is how far a proof's iat may lie from the server's
	// clock, either way (SEP-1932: ±5 minutes).
	DefaultDPoPWindow = 5 * time.Minute
	// MaxDPoPWindow bounds DPoPConfig.Window.
	MaxDPoPWindow = time.Hour
	// DefaultReplayCapacity is the capacity of the default in-memory jti
	// store.
	DefaultReplayCapacity = 100_000
	// maxProofBytes caps one DPoP header before any parsing; an RSA-8192
	// key in the header and its signature fit well below it.
	maxProofBytes = 8 << 10
	// maxJTIBytes caps the proof's jti.
	maxJTIBytes = 256
)

// DefaultDPoPAlgorithms returns the proof algorithms accepted when
// DPoPConfig.Algorithms is empty.
func DefaultDPoPAlgorithms() []string { return []string{"ES256", "EdDSA", "RS256", "PS256"} }

// CodeInvalidDPoPProof and CodeUseDPoPNonce are the RFC 9449 §7.1 and §8
// error codes of a DPoP challenge.
const (
	CodeInvalidDPoPProof = "invalid_dpop_proof"
	CodeUseDPoPNonce     = "use_dpop_nonce"
)

// ErrInvalidDPoPProof: the DPoP proof is missing, malformed or does not
// fit the request or the token (RFC 9449 §4.3).
var ErrInvalidDPoPProof = errors.New("auth: invalid DPoP proof")

// Client-safe descriptions of DPoP rejections.
const (
	descProof            = "the DPoP proof is invalid"
	descProofMissing     = "a DPoP proof is required"
	descProofCount       = "exactly one DPoP proof is required"
	descProofReplayed    = "the DPoP proof was already used"
	descProofTime        = "the DPoP proof is outside the accepted time window"
	descProofRequest     = "the DPoP proof does not match this request"
	descProofToken       = "the DPoP proof does not match the access token"
	descProofKey         = "the DPoP proof's key does not match the token's binding"
	descBoundAsBearer    = "a DPoP-bound token must be sent with the DPoP scheme"
	descUnboundAsDPoP    = "the access token is not DPoP-bound"
	descDPoPRequired     = "a DPoP-bound access token is required"
	descReplayUnavail    = "DPoP replay protection is temporarily unavailable"
	descSenderConstrain  = "sender-constrained tokens are not accepted"
	descJobOriginalBound = "a sender-constrained token cannot be the original of a job"
)

// DPoPConfig configures DPoP on a JWTConfig or IntrospectionConfig. The zero
// value is DPoPDisabled.
type DPoPConfig struct {
	// Mode is DPoPDisabled (the default), DPoPAllowed or DPoPRequired.
	Mode DPoPMode
	// Resource is the absolute URL of this protected resource. Its scheme,
	// host and port are the origin a proof's htu must name: the request's
	// Host header is never trusted (a proxy may rewrite it). Empty means
	// the validator's Audience, which must then be an absolute http(s) URL.
	Resource string
	// Algorithms is the allow-list of proof algorithms: asymmetric only
	// (RFC 9449 §4.3 point 5). Empty means DefaultDPoPAlgorithms.
	Algorithms []string
	// Window is how far a proof's iat may lie before or after the server's
	// clock. Zero means DefaultDPoPWindow; at most MaxDPoPWindow.
	Window time.Duration
	// Replay remembers the jti of every accepted proof for Window, so that
	// no proof is accepted twice. Nil means a new MemoryReplayStore of
	// DefaultReplayCapacity entries, this validator's own: validators that
	// may be shown the same proof need one shared store — a store in Redis
	// behind several replicas, and one store (a comparable value, such as a
	// pointer) for DualConfig's Service and Direct, which NewDualValidator
	// checks.
	Replay ReplayStore

	// RequireNonce makes every proof carry a nonce this server issued
	// (RFC 9449 §8): a proof without one, or with a stale one, is answered
	// 401 use_dpop_nonce with a fresh nonce in the DPoP-Nonce header, and
	// every answer to a DPoP request carries the current nonce. Nonces are
	// stateless (an HMAC of the time slot), so no store is needed.
	RequireNonce bool
	// NonceLifetime is how long one nonce is issued before it rotates; a
	// nonce is accepted during its slot and the next one. Zero means
	// DefaultDPoPNonceLifetime; between one second and MaxDPoPWindow.
	NonceLifetime time.Duration
	// NonceSecret keys the nonce HMAC; replicas behind one load balancer
	// share it. At least 32 bytes; nil means a random secret per process.
	NonceSecret []byte
}

// DefaultDPoPNonceLifetime is the default DPoPConfig.NonceLifetime.
const DefaultDPoPNonceLifetime = time.Minute

// dpopPolicy is a checked DPoPConfig.
type dpopPolicy struct {
	mode    DPoPMode
	origin  string // scheme://host[:port], normalised
	algs    []string
	methods map[string]jwt.SigningMethod
	window  time.Duration
	replay  ReplayStore
	now     func() time.Time
	nonces  *nonceSource // nil without RequireNonce
	jwks    *jwkCache
}

func newDPoPPolicy(cfg DPoPConfig, audience string, now func() time.Time, field string) (*dpopPolicy, error) {
	cfgErr := func(name, format string, args ...any) error {
		return fmt.Errorf("%w: %s.DPoP.%s: %s", ErrConfig, field, name, fmt.Sprintf(format, args...))
	}
	switch cfg.Mode {
	case DPoPDisabled:
		return &dpopPolicy{mode: DPoPDisabled}, nil
	case DPoPAllowed, DPoPRequired:
	default:
		return nil, cfgErr("Mode", "unknown mode %d", int(cfg.Mode))
	}
	p := &dpopPolicy{mode: cfg.Mode, now: now, jwks: &jwkCache{}}
	res := cfg.Resource
	name := "Resource"
	if res == "" {
		res, name = audience, "Resource (defaulted from Audience)"
	}
	origin, err := dpopOrigin(res)
	if err != nil {
		return nil, cfgErr(name, "%v", err)
	}
	p.origin = origin
	p.algs = slices.Clone(cfg.Algorithms)
	if len(p.algs) == 0 {
		p.algs = DefaultDPoPAlgorithms()
	}
	p.methods = make(map[string]jwt.SigningMethod, len(p.algs))
	for _, a := range p.algs {
		if !asymmetricAlg(a) {
			return nil, cfgErr("Algorithms", "%q is not an asymmetric JWS algorithm", a)
		}
		p.methods[a] = jwt.GetSigningMethod(a)
	}
	if p.window, err = durationOr(cfg.Window, DefaultDPoPWindow, time.Second, MaxDPoPWindow); err != nil {
		return nil, cfgErr("Window", "%v", err)
	}
	if cfg.RequireNonce {
		life, err := durationOr(cfg.NonceLifetime, DefaultDPoPNonceLifetime, time.Second, MaxDPoPWindow)
		if err != nil {
			return nil, cfgErr("NonceLifetime", "%v", err)
		}
		secret := slices.Clone(cfg.NonceSecret)
		switch {
		case secret == nil:
			secret = make([]byte, 32)
			if _, err := rand.Read(secret); err != nil {
				return nil, cfgErr("NonceSecret", "cannot draw a random secret: %v", err)
			}
		case len(secret) < 32:
			return nil, cfgErr("NonceSecret", "must be at least 32 bytes")
		}
		p.nonces = &nonceSource{secret: secret, life: life}
	} else if cfg.NonceLifetime != 0 || cfg.NonceSecret != nil {
		return nil, cfgErr("RequireNonce", "NonceLifetime and NonceSecret need RequireNonce")
	}
	p.replay = cfg.Replay
	if p.replay == nil {
		m := NewMemoryReplayStore(DefaultReplayCapacity)
		m.now = now
		p.replay = m
	}
	return p, nil
}

func (d *dpopPolicy) modeOf() DPoPMode {
	if d == nil {
		return DPoPDisabled
	}
	return d.mode
}

// replayStores returns the store the policy records proofs in; none when
// DPoP is disabled.
func (d *dpopPolicy) replayStores() []ReplayStore {
	if d == nil || d.mode == DPoPDisabled {
		return nil
	}
	return []ReplayStore{d.replay}
}

// identical reports whether a and b are the same value (one store, one
// validator) without the panic of == on values that are not comparable,
// such as a func adapter: those are never identical.
func identical(a, b any) bool {
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	return va.IsValid() && vb.IsValid() && va.Type() == vb.Type() && va.Comparable() && va.Equal(vb)
}

func (d *dpopPolicy) algorithms() []string {
	if d == nil || d.mode == DPoPDisabled {
		return nil
	}
	return slices.Clone(d.algs)
}

// dpopOrigin returns the normalised origin of an absolute http(s) URL.
func dpopOrigin(s string) (string, error) {
	if err := checkAbsoluteURL(s); err != nil {
		return "", err
	}
	u, _ := url.Parse(s)
	return normalOrigin(u), nil
}

func normalOrigin(u *url.URL) string {
	scheme := strings.ToLower(u.Scheme)
	host := strings.ToLower(u.Hostname())
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port := u.Port(); port != "" && !(scheme == "https" && port == "443") && !(scheme == "http" && port == "80") {
		host += ":" + port
	}
	return scheme + "://" + host
}

// normalPath returns an escaped path with upper-case percent-encoding
// triplets, "/" for an empty path (RFC 3986 §6.2.2.1, §6.2.3).
func normalPath(escaped string) string {
	if escaped == "" {
		return "/"
	}
	if !strings.Contains(escaped, "%") {
		return escaped
	}
	b := []byte(escaped)
	for i := 0; i+2 < len(b); i++ {
		if b[i] == '%' {
			b[i+1], b[i+2] = upperHex(b[i+1]), upperHex(b[i+2])
			i += 2
		}
	}
	return string(b)
}

func upperHex(c byte) byte {
	if 'a' <= c && c <= 'f' {
		return c - 'a' + 'A'
	}
	return c
}

// dpopRequest is what a validator needs of the HTTP request to check a DPoP
// proof. Middleware puts it in the context of every Validate call when the
// validator accepts DPoP (newDPoPRequestContext); a Validate call whose
// context carries none is treated as a Bearer request without a proof.
type dpopRequest struct {
	// DPoP reports that the Authorization header used the DPoP scheme
	// (RFC 9449 §7.1) rather than Bearer.
	DPoP bool
	// Proofs are the values of the request's DPoP headers; exactly one is
	// accepted.
	Proofs []string
	// Method is the request method (htm).
	Method string
	// Path is the request's escaped path (htu, without query or fragment).
	Path string

	// What Middleware knew of the validator, for the challenges of later
	// writers (WriteErrorFor).
	mode  DPoPMode
	algs  []string
	nonce string // the DPoP-Nonce to send, when nonces are required

	// proven is set once a validator has accepted the proof for a token, so
	// a second validator of the same request (ChainConfig.IntrospectJWTs)
	// checks the binding and its own policy against it instead of checking
	// the proof again, which its jti would fail as a replay.
	proven *provenProof
}

// provenProof is a proof accepted for the token whose digest is token,
// signed by the key whose thumbprint is jkt. proof is what was verified of
// it; nonced reports that the validator that accepted it required, and
// checked, one of its own nonces.
type provenProof struct {
	token  tokenKey
	jkt    string
	proof  dpopProof
	nonced bool
}

type dpopRequestKey struct{}

// newDPoPRequestContext returns a copy of ctx carrying r for DPoP-aware
// validators.
func newDPoPRequestContext(ctx context.Context, r *dpopRequest) context.Context {
	return context.WithValue(ctx, dpopRequestKey{}, r)
}

// dpopRequestFromContext returns the dpopRequest stored by
// newDPoPRequestContext.
func dpopRequestFromContext(ctx context.Context) (*dpopRequest, bool) {
	r, ok := ctx.Value(dpopRequestKey{}).(*dpopRequest)
	return r, ok && r != nil
}

// DPoPValidator is implemented by validators that check DPoP proofs
// (JWTValidator and IntrospectionValidator). Middleware asks it whether to
// recognise the DPoP scheme and which challenge to send.
type DPoPValidator interface {
	Validator
	// DPoPMode returns the configured mode.
	DPoPMode() DPoPMode
	// DPoPAlgorithms returns the accepted proof algorithms.
	DPoPAlgorithms() []string
}

// binding returns the token's "cnf" confirmation: the RFC 7638 thumbprint
// in "jkt", or present=true with jkt empty for another confirmation method
// (mTLS "x5t#S256"...), which this server cannot check.
func binding(c Claims) (jkt string, present bool, e *Error) {
	v, ok := c.Get("cnf")
	if !ok {
		return "", false, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return "", true, InvalidToken(descMalformed, fmt.Errorf(`%w: "cnf" is not an object`, ErrInvalidToken))
	}
	raw, ok := m["jkt"]
	if !ok {
		return "", true, nil
	}
	s, ok := raw.(string)
	if !ok || s == "" || len(s) > 128 {
		return "", true, InvalidToken(descMalformed, fmt.Errorf(`%w: "cnf.jkt" is not a thumbprint`, ErrInvalidToken))
	}
	return s, true, nil
}

// check applies the binding rules to a verified (or cached) principal for
// the request in ctx. It is the one place where a token bound with "cnf"
// is refused as a bearer token, whatever the mode.
func (d *dpopPolicy) check(ctx context.Context, token string, p *Principal) *Error {
	jkt, bound, e := binding(p.Claims)
	if e != nil {
		return e
	}
	req, _ := dpopRequestFromContext(ctx)
	isDPoP := req != nil && req.DPoP
	if d == nil || d.mode == DPoPDisabled {
		switch {
		case bound:
			return InvalidToken(descSenderConstrain, fmt.Errorf(`%w: the token carries "cnf" (sender-constrained) and DPoP is disabled`, ErrInvalidToken))
		case isDPoP:
			return InvalidToken(descUnboundAsDPoP, fmt.Errorf("%w: DPoP scheme while DPoP is disabled", ErrInvalidToken))
		}
		return nil
	}
	switch {
	case bound && jkt == "":
		return InvalidToken(descSenderConstrain, fmt.Errorf(`%w: "cnf" holds no "jkt" (another confirmation method)`, ErrInvalidToken))
	case bound && !isDPoP:
		return InvalidToken(descBoundAsBearer, fmt.Errorf("%w: a DPoP-bound token was sent with the Bearer scheme", ErrInvalidToken))
	case !bound && isDPoP:
		return InvalidToken(descUnboundAsDPoP, fmt.Errorf("%w: an unbound token was sent with the DPoP scheme", ErrInvalidToken))
	case !bound && d.mode == DPoPRequired:
		return InvalidToken(descDPoPRequired, fmt.Errorf("%w: DPoP is required and the token is not bound", ErrInvalidToken))
	case !bound:
		return nil
	}
	sum := keyFor(ctx, token)
	if pp := req.proven; pp != nil && pp.token == sum {
		// Another validator of this request checked the proof already: its
		// signature, and its jti against replay. The proof must still name
		// this token's key and meet this validator's own policy.
		if subtle.ConstantTimeCompare([]byte(pp.jkt), []byte(jkt)) != 1 {
			return proofError(descProofKey, "the proof key's thumbprint differs from cnf.jkt")
		}
		if d.methods[pp.proof.alg] == nil {
			return proofError(descProof, "alg %s is not accepted for proofs", quoteShort(pp.proof.alg))
		}
		// A nonce the first validator required and checked is one this
		// server issued; otherwise this policy's own is required.
		if !pp.nonced {
			d.setNonce(req)
		}
		return d.checkRequest(ctx, req, &pp.proof, token, !pp.nonced)
	}
	pr, e := d.verifyProof(ctx, req, token, jkt)
	if e != nil {
		return e
	}
	req.proven = &provenProof{token: sum, jkt: jkt, proof: pr, nonced: d.nonces != nil}
	return nil
}

// checkUnproven applies the binding rules to a principal verified with no
// request behind it: a job's original token, which the job validator
// re-checks for a worker that holds no proof key (verifyIgnoringExpiry).
// Such a token must be one this validator serves as a bearer token: one
// bound with "cnf" is refused whatever the mode, since nothing can prove
// possession of its key and the job would turn it into a bearer
// credential; an unbound one is refused when DPoP is required, as a
// request would refuse it.
func (d *dpopPolicy) checkUnproven(p *Principal) *Error {
	_, bound, e := binding(p.Claims)
	switch {
	case e != nil:
		return e
	case bound:
		return InvalidToken(descJobOriginalBound, fmt.Errorf(`%w: a job's original token carries "cnf" (sender-constrained)`, ErrInvalidToken))
	case d.modeOf() == DPoPRequired:
		return InvalidToken(descDPoPRequired, fmt.Errorf("%w: DPoP is required and a job's original token is not bound", ErrInvalidToken))
	}
	return nil
}

func proofError(desc string, format string, args ...any) *Error {
	return &Error{
		Code: CodeInvalidDPoPProof, Status: 401, Description: desc,
		Err: fmt.Errorf("%w: %s", ErrInvalidDPoPProof, fmt.Sprintf(format, args...)),
	}
}

// dpopProof is a parsed proof whose signature has been verified.
type dpopProof struct {
	alg    string
	jkt    string
	jti    string
	htm    string
	htu    string
	ath    string
	nonce  string
	iat    time.Time
	hasAth bool
}

// parseDPoPProof parses and verifies one proof (RFC 9449 §4.2, §4.3
// points 2-7): compact JWS, typ dpop+jwt, an allowed asymmetric alg, a
// public jwk that fits it, a valid signature by that key, and claims jti,
// htm, htu and iat of the right types. It returns the key's RFC 7638
// thumbprint. The request-dependent checks are the caller's.
func parseDPoPProof(proof string, methods map[string]jwt.SigningMethod, jwks *jwkCache) (dpopProof, *Error) {
	var out dpopProof
	if len(proof) > maxProofBytes {
		return out, proofError(descProof, "proof longer than %d bytes", maxProofBytes)
	}
	parts := strings.Split(proof, ".")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return out, proofError(descProof, "not a compact JWS")
	}
	hb, err := b64url.DecodeString(parts[0])
	if err != nil {
		return out, proofError(descProof, "header is not base64url")
	}
	sig, err := b64url.DecodeString(parts[2])
	if err != nil {
		return out, proofError(descProof, "signature is not base64url")
	}
	var hdr map[string]json.RawMessage
	if err := json.Unmarshal(hb, &hdr); err != nil || hdr == nil {
		return out, proofError(descProof, "header is not a JSON object")
	}
	if countMembers(hb) != countTopMembers(hb, hdr) {
		return out, proofError(descProof, "header has duplicate members")
	}
	var typ, alg string
	if json.Unmarshal(hdr["typ"], &typ) != nil || !strings.EqualFold(typ, "dpop+jwt") {
		return out, proofError(descProof, `header "typ" is not "dpop+jwt"`)
	}
	if json.Unmarshal(hdr["alg"], &alg) != nil || alg == "" {
		return out, proofError(descProof, `header "alg" is missing`)
	}
	method := methods[alg]
	if method == nil {
		return out, proofError(descProof, "alg %s is not accepted for proofs", quoteShort(alg))
	}
	for _, name := range [...]string{"crit", "kid", "jku", "x5u", "x5c"} {
		if _, ok := hdr[name]; ok {
			return out, proofError(descProof, "header member %q is not accepted in a proof", name)
		}
	}
	rawJWK, ok := hdr["jwk"]
	if !ok {
		return out, proofError(descProof, `header has no "jwk"`)
	}
	key, jkt, err := jwks.parse(rawJWK, alg)
	if err != nil {
		return out, proofError(descProof, "header jwk: %v", err)
	}
	out.alg, out.jkt = alg, jkt
	signingInput := proof[:len(parts[0])+1+len(parts[1])]
	if err := method.Verify(signingInput, sig, key.key); err != nil {
		return out, proofError(descProof, "signature verification failed: %v", err)
	}
	claims, derr := decodePayload(parts[1])
	if derr != nil {
		return out, proofError(descProof, "payload: %v", derr.Err)
	}
	str := func(name string, required bool) (string, bool, *Error) {
		v, ok := claims[name]
		if !ok {
			if required {
				return "", false, proofError(descProof, "no %q claim", name)
			}
			return "", false, nil
		}
		s, ok := v.(string)
		if !ok || (required && s == "") {
			return "", false, proofError(descProof, "%q is not a non-empty string", name)
		}
		return s, true, nil
	}
	var perr *Error
	if out.jti, _, perr = str("jti", true); perr != nil {
		return out, perr
	}
	if len(out.jti) > maxJTIBytes {
		return out, proofError(descProof, "jti longer than %d bytes", maxJTIBytes)
	}
	if out.htm, _, perr = str("htm", true); perr != nil {
		return out, perr
	}
	if out.htu, _, perr = str("htu", true); perr != nil {
		return out, perr
	}
	if out.ath, out.hasAth, perr = str("ath", false); perr != nil {
		return out, perr
	}
	if out.nonce, _, perr = str("nonce", false); perr != nil {
		return out, perr
	}
	iat, present, ierr := numericDate(claims, "iat")
	if ierr != nil || !present {
		return out, proofError(descProof, `"iat" is missing or not a number`)
	}
	out.iat = iat
	return out, nil
}

// countTopMembers counts the members of the decoded header including those
// of nested objects, for the duplicate-member check.
func countTopMembers(hb []byte, hdr map[string]json.RawMessage) int {
	n := len(hdr)
	for _, raw := range hdr {
		if len(raw) > 0 && (raw[0] == '{' || raw[0] == '[') {
			var v any
			if json.Unmarshal(raw, &v) == nil {
				n += totalMembers(v)
			}
		}
	}
	return n
}

// jwkThumbprint computes the RFC 7638 SHA-256 thumbprint of a public JWK:
// the required members of its kty, in lexicographic order, without white
// space, base64url-encoded.
func jwkThumbprint(raw json.RawMessage) (string, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return "", errors.New("not a JSON object")
	}
	var kty string
	if err := json.Unmarshal(m["kty"], &kty); err != nil {
		return "", errors.New(`"kty" is not a string`)
	}
	var names []string
	switch kty {
	case "EC":
		names = []string{"crv", "kty", "x", "y"}
	case "RSA":
		names = []string{"e", "kty", "n"}
	case "OKP":
		names = []string{"crv", "kty", "x"}
	default:
		return "", fmt.Errorf("kty %s has no thumbprint", quoteShort(kty))
	}
	var b strings.Builder
	b.WriteByte('{')
	for i, name := range names {
		var s string
		if err := json.Unmarshal(m[name], &s); err != nil {
			return "", fmt.Errorf("%q is not a string", name)
		}
		if i > 0 {
			b.WriteByte(',')
		}
		q, _ := json.Marshal(s)
		b.WriteString(`"` + name + `":`)
		b.Write(q)
	}
	b.WriteByte('}')
	sum := sha256.Sum256([]byte(b.String()))
	return b64.EncodeToString(sum[:]), nil
}

// verifyProof applies RFC 9449 §4.3 to the request's proof for a token
// bound to jkt and returns what it verified of the proof.
func (d *dpopPolicy) verifyProof(ctx context.Context, req *dpopRequest, token, jkt string) (dpopProof, *Error) {
	d.setNonce(req)
	switch n := len(req.Proofs); {
	case n == 0:
		return dpopProof{}, proofError(descProofMissing, "no DPoP header")
	case n > 1:
		return dpopProof{}, proofError(descProofCount, "%d DPoP headers", n)
	}
	pr, e := parseDPoPProof(req.Proofs[0], d.methods, d.jwks)
	if e != nil {
		return pr, e
	}
	if subtle.ConstantTimeCompare([]byte(pr.jkt), []byte(jkt)) != 1 {
		return pr, proofError(descProofKey, "the proof key's thumbprint differs from cnf.jkt")
	}
	if e := d.checkRequest(ctx, req, &pr, token, true); e != nil {
		return pr, e
	}
	seen, err := d.replay.CheckAndStore(ctx, pr.jkt+"\x00"+pr.jti, pr.iat.Add(d.window))
	if err != nil {
		return pr, Unavailable(descReplayUnavail, fmt.Errorf("%w: DPoP replay store: %w", ErrUnavailable, err))
	}
	if seen {
		return pr, proofError(descProofReplayed, "jti already used within the window")
	}
	return pr, nil
}

// setNonce puts the policy's current nonce on the answer, when it requires
// nonces: Middleware sends it whatever the outcome.
func (d *dpopPolicy) setNonce(req *dpopRequest) {
	if d.nonces != nil {
		req.nonce = d.nonces.current(d.now())
	}
}

// checkRequest applies this policy's request-dependent rules of RFC 9449
// §4.3 to a proof whose signature has been verified: htm, htu against the
// configured origin, the nonce (when the policy requires one and nonce is
// set), iat within the window, and ath.
func (d *dpopPolicy) checkRequest(ctx context.Context, req *dpopRequest, pr *dpopProof, token string, nonce bool) *Error {
	if pr.htm != req.Method {
		return proofError(descProofRequest, "htm %s is not the request method", quoteShort(pr.htm))
	}
	if want := d.origin + normalPath(req.Path); !htuMatches(pr.htu, want) {
		return proofError(descProofRequest, "htu %s is not the request URI", quoteShort(pr.htu))
	}
	now := d.now()
	if nonce && d.nonces != nil && !d.nonces.valid(pr.nonce, now) {
		return &Error{
			Code: CodeUseDPoPNonce, Status: http.StatusUnauthorized,
			Description: "the DPoP proof must carry the server's current nonce",
			Err:         fmt.Errorf("%w: nonce missing or stale", ErrInvalidDPoPProof),
		}
	}
	if pr.iat.Before(now.Add(-d.window)) || pr.iat.After(now.Add(d.window)) {
		return proofError(descProofTime, "iat %s is outside ±%s", pr.iat.Format(time.RFC3339), d.window)
	}
	sum := keyFor(ctx, token)
	if !pr.hasAth || subtle.ConstantTimeCompare([]byte(pr.ath), []byte(b64.EncodeToString(sum[:]))) != 1 {
		return proofError(descProofToken, "ath is missing or not the access token's hash")
	}
	return nil
}

// htuMatches compares a proof's htu with the expected URI (this resource's
// configured origin and the request's path; the request has no say in the
// origin) after syntax-based normalisation (RFC 9449 §4.3 point 9).
func htuMatches(htu, want string) bool {
	u, err := url.Parse(htu)
	// A client sends htu without query and fragment (§4.2); one that
	// carries them is refused rather than trimmed.
	if err != nil || !u.IsAbs() || u.Host == "" || u.User != nil || u.Opaque != "" ||
		u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.ContainsAny(htu, "?#") {
		return false
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "https":
	default:
		return false
	}
	return normalOrigin(u)+normalPath(u.EscapedPath()) == want
}

// nonceSource issues and checks stateless server nonces (RFC 9449 §8):
// base64url(slot || HMAC-SHA256(secret, slot)[:16]), slot being the time
// divided by the lifetime. The current and the previous slot are accepted.
type nonceSource struct {
	secret []byte
	life   time.Duration
}

func (n *nonceSource) slot(now time.Time) uint64 { return uint64(now.UnixNano() / int64(n.life)) }

func (n *nonceSource) mint(slot uint64) string {
	var b [8 + 16]byte
	binary.BigEndian.PutUint64(b[:8], slot)
	m := hmac.New(sha256.New, n.secret)
	m.Write(b[:8])
	copy(b[8:], m.Sum(nil))
	return b64.EncodeToString(b[:])
}

func (n *nonceSource) current(now time.Time) string { return n.mint(n.slot(now)) }

func (n *nonceSource) valid(nonce string, now time.Time) bool {
	if len(nonce) != 32 { // base64url of 24 bytes
		return false
	}
	cur := n.slot(now)
	for _, s := range [...]uint64{cur, cur - 1} {
		if hmac.Equal([]byte(nonce), []byte(n.mint(s))) {
			return true
		}
	}
	return false
}

// jwkCache remembers the public keys parsed from proof headers, keyed by
// the JWK's exact bytes: a client signs every proof with one key, so the
// warm path skips the JWK parse and the thumbprint. A nil cache parses every
// time. Bounded: it is emptied when it reaches maxCachedJWKs.
type jwkCache struct {
	mu sync.Mutex
	m  map[string]cachedJWK
}

type cachedJWK struct {
	key *verifyKey
	jkt string
}

const maxCachedJWKs = 256

func (c *jwkCache) parse(raw json.RawMessage, alg string) (*verifyKey, string, error) {
	if c != nil {
		c.mu.Lock()
		e, ok := c.m[string(raw)]
		c.mu.Unlock()
		if ok && e.key.fitsAlg(alg) && (e.key.alg == "" || e.key.alg == alg) {
			return e.key, e.jkt, nil
		}
	}
	key, err := parseJWK(raw, []string{alg})
	if err != nil {
		return nil, "", err
	}
	if !key.fitsAlg(alg) {
		return nil, "", fmt.Errorf("does not fit alg %s", alg)
	}
	jkt, err := jwkThumbprint(raw)
	if err != nil {
		return nil, "", err
	}
	if c != nil {
		c.mu.Lock()
		if c.m == nil || len(c.m) >= maxCachedJWKs {
			c.m = make(map[string]cachedJWK, 16)
		}
		c.m[string(raw)] = cachedJWK{key: key, jkt: jkt}
		c.mu.Unlock()
	}
	return key, jkt, nil
}
