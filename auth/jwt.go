package auth

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"
)

// Defaults and limits of JWTConfig.
const (
	// DefaultLeeway is the clock-skew tolerance when JWTConfig.Leeway is zero.
	DefaultLeeway = 60 * time.Second
	// MaxLeeway is the largest JWTConfig.Leeway accepted.
	MaxLeeway = 5 * time.Minute
	// DefaultRefreshInterval is the period of the scheduled key-set
	// refetch when JWTConfig.RefreshInterval is zero: a key the issuer
	// removes stops validating (cached tokens with it) within about this
	// long.
	DefaultRefreshInterval = 15 * time.Minute
	// DefaultRefetchCooldown is the minimum time between on-demand JWKS
	// fetches when JWTConfig.RefetchCooldown is zero.
	DefaultRefetchCooldown = 5 * time.Second
	// DefaultFetchTimeout bounds one discovery plus JWKS fetch when
	// JWTConfig.FetchTimeout is zero.
	DefaultFetchTimeout = 10 * time.Second
	// MaxTokenBytesLimit is the largest JWTConfig.MaxTokenBytes accepted.
	MaxTokenBytesLimit = 1 << 20
)

// DefaultAlgorithms returns the signature algorithms accepted when
// JWTConfig.Algorithms is empty: RS256, PS256, ES256 and EdDSA.
func DefaultAlgorithms() []string { return []string{"RS256", "PS256", "ES256", "EdDSA"} }

// JWTConfig configures a JWTValidator. Zero values are the secure choice;
// Issuer (or another issuer form) and Audience are required.
type JWTConfig struct {
	// Issuer is the exact "iss" accepted (RFC 7519 §4.1.1). When JWKSURL
	// and JWKS are empty, the key set is discovered from it: OpenID Connect
	// discovery first, then RFC 8414 metadata, whose "issuer" must equal it.
	Issuer string
	// Issuers are more exact issuers accepted.
	Issuers []string
	// IssuerTemplates accept multi-tenant issuers: each holds exactly one
	// placeholder "{claim}", replaced by that string claim of the token
	// before an exact comparison, as in Entra ID's
	// "https://login.microsoftonline.com/{tid}/v2.0" and
	// "https://sts.windows.net/{tid}/". The claim's value must be
	// non-empty and must not contain '/', '?', '#', '@', '%', '{', '}' or
	// white space. Which tenants are allowed is package tenancy's decision.
	IssuerTemplates []string
	// IssuerFunc, when set, accepts any issuer for which it returns true.
	// It sees claims whose signature has been verified; it must be safe
	// for concurrent use.
	IssuerFunc func(iss string, claims Claims) bool

	// Audience is this resource server's identifier (RFC 8707 §2, RFC 9728
	// "resource"), an absolute URI. A token is accepted only when its "aud"
	// (a string or an array) holds Audience or one of AudienceAliases.
	// Required unless UseClientIDAsAudience or InsecureSkipAudience.
	Audience string
	// AudienceAliases are other identifiers of this resource that an issuer
	// puts in "aud", such as an Entra app ID URI ("api://…") or GUID, or a
	// Keycloak client ID.
	AudienceAliases []string
	// ClientIDs, when set, restricts the clients whose tokens are accepted:
	// the token's client ("client_id", "azp", "appid" or "cid") must be one
	// of them.
	ClientIDs []string
	// UseClientIDAsAudience accepts tokens that carry no "aud" when their
	// client is in ClientIDs and "token_use" is "access" — the shape of
	// AWS Cognito access tokens, whose audience is their client_id. Tokens
	// that do carry "aud" still need a matching one, and "token_use" must
	// be "access" in every case (a Cognito ID token says "id").
	UseClientIDAsAudience bool

	// Algorithms is the allow-list of JWS algorithms (RFC 7518 §3.1).
	// Empty means DefaultAlgorithms. Only asymmetric algorithms can be
	// listed: RS256/384/512, PS256/384/512, ES256/384/512, EdDSA. "none"
	// and HMAC are refused, because a JWKS holds public keys.
	Algorithms []string
	// Leeway tolerates clock skew when checking exp, nbf and iat. Zero
	// means DefaultLeeway (60 s); at most MaxLeeway (5 min).
	Leeway time.Duration
	// RequireATJWT enforces the RFC 9068 profile: header typ "at+jwt"
	// (or "application/at+jwt") and the claims it requires (iss, exp, aud,
	// sub, client_id, iat, jti). Without it, the header typ may be absent,
	// "JWT" or "at+jwt"; any other (a logout token's "logout+jwt"…) is
	// refused.
	//
	// Whatever the header says, a token whose payload says it is not an
	// access token is refused: "typ", "token_use" or "token_type" naming an
	// ID, refresh, offline or logout token (Keycloak's "typ": "ID" or
	// "Refresh", Cognito's "token_use": "id"), as the introspection
	// validator does. Most providers sign ID tokens with header typ "JWT",
	// and an ID token's audience is a client ID, which AudienceAliases may
	// list. An ID token that carries no such marker (Entra's, Okta's,
	// Auth0's) is told apart only by RequireATJWT, where the provider
	// issues RFC 9068 tokens, or by a policy that requires scopes: an ID
	// token carries no scope claim, and the presets that would map an ID token's roles or groups reject
	// a token without the client claim only access tokens carry:
	// authz.Entra "azp" or "appid", authz.Okta "cid" or "client_id",
	// authz.Auth0 "azp" or "client_id".
	RequireATJWT bool

	// JWKSURL is where the JWK Set is fetched. Empty means discovered from
	// Issuer. Must be https, or http to a loopback host (see
	// InsecureAllowHTTP).
	JWKSURL string
	// JWKS is a fixed JWK Set document; when set nothing is fetched.
	JWKS json.RawMessage
	// HTTPClient fetches metadata and keys. Nil means a new client. It is
	// copied, and the copy refuses redirects to another scheme or host;
	// each fetch is bounded by FetchTimeout and reads at most 1 MiB.
	HTTPClient *http.Client
	// FetchTimeout bounds one discovery plus JWKS fetch. Zero means
	// DefaultFetchTimeout (10 s); at most one minute.
	FetchTimeout time.Duration
	// RefreshInterval is the period of the scheduled key-set refetch:
	// once the set is this old (less a random jitter of up to 5%, so that
	// replicas spread their fetches), the next request starts a background
	// refetch, without waiting for it. A key that left the set stops
	// validating once the refetch lands, and so do the cached tokens it
	// verified — only those: the cached tokens of keys still in the set
	// stay cached; a key whose material changed under a known kid counts as
	// removed. Zero means DefaultRefreshInterval (15 min); it must be at
	// least one second and at least RefetchCooldown, so the schedule never
	// fetches more often than the cooldown allows.
	RefreshInterval time.Duration
	// RefetchCooldown is the minimum time between on-demand fetches, those
	// triggered by a token whose kid is unknown (a rotated key) or when no
	// key is held yet: a flood of tokens with random kids causes at most one
	// fetch per cooldown, and a new key is picked up within one cooldown.
	// Zero means DefaultRefetchCooldown (5 s); between 100 ms and 5 min.
	RefetchCooldown time.Duration
	// InsecureAllowHTTP allows plain-http JWKS and discovery URLs to
	// non-loopback hosts. Keys fetched over http can be forged by anyone on
	// the path.
	InsecureAllowHTTP bool

	// MaxTokenBytes is the largest token accepted, checked before any
	// parsing. Zero means DefaultMaxTokenBytes (16 KiB); at most
	// MaxTokenBytesLimit.
	MaxTokenBytes int
	// ScopeMapper computes Principal.Scopes. Nil means standardScopes.
	ScopeMapper ScopeMapper
	// CacheSize is the capacity of the verified-token cache. Zero means
	// DefaultCacheSize (10,000). Memory is bounded by CacheSize entries of
	// at most MaxTokenBytes claims each.
	CacheSize int
	// DisableCache verifies every token from scratch.
	DisableCache bool
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
	// Logger receives key refresh failures. Nil discards them.
	Logger *slog.Logger

	// DPoP configures sender-constrained tokens (RFC 9449). The zero value
	// (DPoPDisabled) accepts bearer tokens only and refuses a token bound
	// with "cnf".
	DPoP DPoPConfig

	// Revoker, when set, is asked about every token that passed the
	// signature and claim checks, and on every verified-cache hit, before
	// the DPoP proof is checked: a revoked token is refused with 401
	// invalid_token ("the access token has been revoked", errors.Is
	// ErrRevoked) even while it is cached; a revoker that cannot answer
	// makes the request fail with 503. Nil revokes nothing. See
	// MemoryRevoker, and package redisstore for replicas.
	Revoker Revoker

	// InsecureSkipAudience accepts tokens issued for any audience —
	// including tokens meant for other services, which can then be
	// replayed here. For local experiments only.
	InsecureSkipAudience bool
}

// JWTValidator validates JWT access tokens (RFC 7519, RFC 9068) signed
// with keys from a JWK Set, as an OAuth 2.0 resource server does.
//
// Validate checks, in order: the size; the compact form and the protected
// header (alg in the allow-list, no crit, an accepted typ); the verified-
// token cache; the key, chosen by kid alone (a kid-less token is accepted
// only when the set holds exactly one key) and required to fit the header's
// alg; the signature (golang-jwt's algorithm implementations); then the
// claims, decoded exactly once, case-sensitively, refusing duplicate
// members: exp (required, even when 0), nbf, iat (not in the future), iss,
// aud, sub (required), the client, and the scopes from the ScopeMapper.
//
// Construct it with NewJWTValidator; the zero value rejects every token
// (503, wrapping ErrConfig). It is safe for concurrent use. Key
// fetches run in goroutines only while a fetch is in progress; Close waits
// for them.
type JWTValidator struct {
	issuers    []string
	templates  []issuerTemplate
	issuerFunc func(string, Claims) bool
	audiences  []string
	clientIDs  []string
	clientAud  bool
	skipAud    bool
	algs       []string
	leeway     time.Duration
	requireAT  bool
	maxSize    int
	scopes     ScopeMapper
	stdScopes  bool
	cache      *tokenCache
	now        func() time.Time
	keys       *keySource
	methods    map[string]jwt.SigningMethod // golang-jwt's implementation of each allowed alg
	dpop       *dpopPolicy
	revoker    Revoker
}

type issuerTemplate struct {
	prefix, claim, suffix string
}

// NewJWTValidator checks cfg and returns a validator. It does no I/O: keys
// are fetched on first use, or by Refresh. Every configuration mistake is
// an error naming the field and wrapping ErrConfig.
func NewJWTValidator(cfg JWTConfig) (*JWTValidator, error) {
	v := &JWTValidator{
		issuerFunc: cfg.IssuerFunc,
		clientAud:  cfg.UseClientIDAsAudience,
		skipAud:    cfg.InsecureSkipAudience,
		requireAT:  cfg.RequireATJWT,
		scopes:     cfg.ScopeMapper,
		now:        cfg.Now,
		revoker:    cfg.Revoker,
	}
	cfgErr := func(field, format string, args ...any) error {
		return fmt.Errorf("%w: JWTConfig.%s: %s", ErrConfig, field, fmt.Sprintf(format, args...))
	}

	// Issuers.
	if cfg.Issuer != "" {
		if err := checkAbsoluteURL(cfg.Issuer); err != nil {
			return nil, cfgErr("Issuer", "%v", err)
		}
		v.issuers = append(v.issuers, cfg.Issuer)
	}
	for _, iss := range cfg.Issuers {
		if iss == "" {
			return nil, cfgErr("Issuers", "empty issuer")
		}
		v.issuers = append(v.issuers, iss)
	}
	for _, t := range cfg.IssuerTemplates {
		it, err := parseIssuerTemplate(t)
		if err != nil {
			return nil, cfgErr("IssuerTemplates", "%q: %v", t, err)
		}
		v.templates = append(v.templates, it)
	}
	if len(v.issuers) == 0 && len(v.templates) == 0 && v.issuerFunc == nil {
		return nil, cfgErr("Issuer", "required (or Issuers, IssuerTemplates, IssuerFunc)")
	}

	// Audience.
	if cfg.Audience != "" {
		if err := checkAbsoluteURL(cfg.Audience); err != nil {
			return nil, cfgErr("Audience", "%v (an RFC 8707 resource URI; put other identifiers in AudienceAliases)", err)
		}
		v.audiences = append(v.audiences, cfg.Audience)
	}
	for _, a := range cfg.AudienceAliases {
		if a == "" {
			return nil, cfgErr("AudienceAliases", "empty alias")
		}
		v.audiences = append(v.audiences, a)
	}
	if len(cfg.AudienceAliases) > 0 && cfg.Audience == "" {
		return nil, cfgErr("Audience", "required when AudienceAliases is set")
	}
	for _, c := range cfg.ClientIDs {
		if c == "" {
			return nil, cfgErr("ClientIDs", "empty client ID")
		}
	}
	v.clientIDs = slices.Clone(cfg.ClientIDs)
	if cfg.UseClientIDAsAudience && len(v.clientIDs) == 0 {
		return nil, cfgErr("ClientIDs", "required with UseClientIDAsAudience")
	}
	if cfg.Audience == "" && !cfg.UseClientIDAsAudience && !cfg.InsecureSkipAudience {
		return nil, cfgErr("Audience", "required (the resource URI of this server, RFC 8707)")
	}

	// Algorithms.
	if len(cfg.Algorithms) == 0 {
		v.algs = DefaultAlgorithms()
	} else {
		for _, a := range cfg.Algorithms {
			if !asymmetricAlg(a) {
				return nil, cfgErr("Algorithms", "%q is not an accepted asymmetric JWS algorithm", a)
			}
			if !slices.Contains(v.algs, a) {
				v.algs = append(v.algs, a)
			}
		}
	}

	v.methods = make(map[string]jwt.SigningMethod, len(v.algs))
	for _, a := range v.algs {
		v.methods[a] = jwt.GetSigningMethod(a)
	}

	// Times and sizes.
	var err error
	if v.leeway, err = durationOr(cfg.Leeway, DefaultLeeway, 0, MaxLeeway); err != nil {
		return nil, cfgErr("Leeway", "%v", err)
	}
	fetchTimeout, err := durationOr(cfg.FetchTimeout, DefaultFetchTimeout, time.Millisecond, time.Minute)
	if err != nil {
		return nil, cfgErr("FetchTimeout", "%v", err)
	}
	interval, err := durationOr(cfg.RefreshInterval, DefaultRefreshInterval, time.Second, 1<<62)
	if err != nil {
		return nil, cfgErr("RefreshInterval", "%v", err)
	}
	cooldown, err := durationOr(cfg.RefetchCooldown, DefaultRefetchCooldown, 100*time.Millisecond, 5*time.Minute)
	if err != nil {
		return nil, cfgErr("RefetchCooldown", "%v", err)
	}
	if interval < cooldown {
		return nil, cfgErr("RefreshInterval", "%v is shorter than RefetchCooldown (%v): the scheduled refresh would fetch more often than the cooldown allows", interval, cooldown)
	}
	if v.maxSize, err = maxTokenBytes(cfg.MaxTokenBytes); err != nil {
		return nil, cfgErr("MaxTokenBytes", "%v", err)
	}
	if v.cache, err = tokenCacheFor(cfg.CacheSize, cfg.DisableCache); err != nil {
		return nil, cfgErr("CacheSize", "%v", err)
	}
	if v.now == nil {
		v.now = time.Now
	}
	if v.scopes == nil {
		v.stdScopes = true
	}
	if v.dpop, err = newDPoPPolicy(cfg.DPoP, cfg.Audience, v.now, "JWTConfig"); err != nil {
		return nil, err
	}

	// Keys.
	ks := &keySource{
		algs:     v.algs,
		client:   safeClient(cfg.HTTPClient),
		timeout:  fetchTimeout,
		interval: interval,
		minGap:   cooldown,
		now:      v.now,
		log:      cfg.Logger,
		cooldown: rate.NewLimiter(rate.Every(cooldown), 1),
		source:   cmp.Or(cfg.Issuer, cfg.JWKSURL),
	}
	if ks.log == nil {
		ks.log = slog.New(slog.DiscardHandler)
	}
	switch {
	case len(cfg.JWKS) > 0:
		if cfg.JWKSURL != "" {
			return nil, cfgErr("JWKS", "set either JWKS or JWKSURL, not both")
		}
		keys, err := parseJWKS(cfg.JWKS, v.algs)
		if err != nil {
			return nil, cfgErr("JWKS", "%v", err)
		}
		ks.static = true
		ks.install(keys)
	case cfg.JWKSURL != "":
		if err := checkFetchURL(cfg.JWKSURL, cfg.InsecureAllowHTTP); err != nil {
			return nil, cfgErr("JWKSURL", "%v", err)
		}
		u := cfg.JWKSURL
		ks.locate = func(context.Context) (string, error) { return u, nil }
	case cfg.Issuer != "":
		if err := checkFetchURL(cfg.Issuer, cfg.InsecureAllowHTTP); err != nil {
			return nil, cfgErr("Issuer", "cannot discover keys from it: %v", err)
		}
		urls, err := discoveryURLs(cfg.Issuer)
		if err != nil {
			return nil, cfgErr("Issuer", "%v", err)
		}
		l := &jwksLocator{client: ks.client, issuer: cfg.Issuer, allowHTTP: cfg.InsecureAllowHTTP, discoveryURLs: urls}
		ks.locate, ks.forget = l.locate, l.forget
	default:
		return nil, cfgErr("JWKSURL", "required when Issuer is not set (keys cannot be discovered from a list, template or function)")
	}
	if !ks.static {
		ks.ctx, ks.cancel = context.WithCancel(context.Background())
	}
	v.keys = ks
	return v, nil
}

// Close stops any key fetch in progress and waits for it to end. The
// validator keeps validating with the keys it holds but fetches no more.
// Close is safe to call more than once.
func (v *JWTValidator) Close() error {
	if v != nil && v.keys != nil {
		v.keys.close()
	}
	return nil
}

// Refresh fetches the key set now (discovering it first if needed) and
// waits for the result, ignoring the refetch cooldown — for instance to
// fail fast at startup when the issuer is unreachable. A fixed JWKS needs
// no refresh.
func (v *JWTValidator) Refresh(ctx context.Context) error {
	if v == nil || v.keys == nil {
		return fmt.Errorf("%w: JWTValidator not built by NewJWTValidator", ErrConfig)
	}
	if err := v.keys.refresh(ctx); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return nil
}

// Validate checks token and returns the principal it proves. Errors are
// *Error values with a fixed client-safe description: invalid_token (401)
// for any defect of the token (errors.Is ErrInvalidToken; also ErrExpired
// when expired), 503 (ErrUnavailable) when keys could not be fetched. No
// error contains the token.
//
// The returned principal is a fresh copy; its slices and Claims are shared
// with the cache and must not be modified.
func (v *JWTValidator) Validate(ctx context.Context, token string) (*Principal, error) {
	if v == nil || v.keys == nil {
		return nil, Unavailable("token validation is not configured", fmt.Errorf("%w: JWTValidator not built by NewJWTValidator", ErrConfig))
	}
	if len(token) > v.maxSize {
		return nil, InvalidToken(descTooLarge, fmt.Errorf("%w: token longer than %d bytes", ErrInvalidToken, v.maxSize))
	}
	var ck tokenKey
	if v.cache != nil {
		ck = keyFor(ctx, token)
		now := v.now()
		p := v.cache.get(ck, now)
		v.keys.obs.lookup(ctx, CacheToken, p != nil)
		if p != nil {
			// Cached traffic still drives the periodic refresh, so that a
			// key the issuer retires stops serving its cached tokens.
			v.keys.maybeRefresh(now)
			// A revocation applies to cached tokens too.
			if e := checkRevoked(ctx, v.revoker, p); e != nil {
				return nil, e
			}
			// A cached token still needs this request's own proof.
			if e := v.dpop.check(ctx, token, p); e != nil {
				return nil, e
			}
			cp := *p
			return &cp, nil
		}
	}
	vctx, end := v.keys.obs.start(ctx, Operation{Kind: OpValidate, Source: v.keys.source})
	p, expiry, vk, err := v.verify(vctx, token, enforceExpiry)
	if end != nil {
		end(Outcome{Err: err})
	}
	if err != nil {
		return nil, err
	}
	if v.cache != nil {
		v.cache.put(ck, p, expiry, vk)
	}
	if e := checkRevoked(ctx, v.revoker, p); e != nil {
		return nil, e
	}
	if e := v.dpop.check(ctx, token, p); e != nil {
		return nil, e
	}
	cp := *p
	return &cp, nil
}

// SetObserver makes o the validator's Observer: it is told of every
// verified-token cache lookup, every cold validation (OpValidate) and every
// JWK Set fetch (OpFetchKeys). It may be called once, before or while the
// validator serves; a second call, or a nil o, is an error wrapping
// ErrConfig.
func (v *JWTValidator) SetObserver(o Observer) error {
	if v == nil || v.keys == nil {
		return fmt.Errorf("%w: JWTValidator not built by NewJWTValidator", ErrConfig)
	}
	return v.keys.obs.set(o, "JWTValidator")
}

// KeySet describes the key set held now: how many usable keys and when
// it was fetched. It is cheap (two atomic loads) and safe for concurrent
// use; a zero JWTValidator holds none.
func (v *JWTValidator) KeySet() KeySetInfo {
	if v == nil || v.keys == nil {
		return KeySetInfo{}
	}
	info := KeySetInfo{Source: v.keys.source}
	if s := v.keys.snap.Load(); s != nil {
		info.Keys = s.n
	}
	if ns := v.keys.fetchedAt.Load(); ns != 0 {
		info.Fetched = time.Unix(0, ns)
	}
	return info
}

// DPoPMode returns the configured DPoP mode (DPoPDisabled for a zero
// JWTValidator).
func (v *JWTValidator) DPoPMode() DPoPMode { return v.dpop.modeOf() }

// DPoPAlgorithms returns the accepted DPoP proof algorithms, nil when DPoP
// is disabled.
func (v *JWTValidator) DPoPAlgorithms() []string { return v.dpop.algorithms() }

// expiryRule says whether checkClaims enforces "exp". Validate always
// passes enforceExpiry; ignoreExpiry exists only for the job validator's
// check of a user's original token (verifyIgnoringExpiry, reached only through JobSeam), whose
// result is never cached.
type expiryRule bool

const (
	enforceExpiry expiryRule = false
	ignoreExpiry  expiryRule = true
)

// verify checks token and returns its principal, its expiry and the key
// that verified its signature (recorded by the cache).
func (v *JWTValidator) verify(ctx context.Context, token string, rule expiryRule) (*Principal, time.Time, *verifyKey, error) {
	t, perr := parseJWS(token, v.maxSize)
	if perr != nil {
		return nil, time.Time{}, nil, perr
	}
	method := v.methods[t.alg]
	if method == nil {
		return nil, time.Time{}, nil, InvalidToken(descAlgorithm, fmt.Errorf("%w: alg %s is not in the allow-list", ErrInvalidToken, quoteShort(t.alg)))
	}
	if err := v.checkType(t.typ); err != nil {
		return nil, time.Time{}, nil, err
	}
	cands, kerr := v.keys.keysFor(ctx, t.kid, t.hasKID)
	if kerr != nil {
		return nil, time.Time{}, nil, kerr
	}
	key, kerr := pickKey(cands, t.kid, t.alg)
	if kerr != nil {
		return nil, time.Time{}, nil, kerr
	}
	if err := method.Verify(t.signingInput, t.sig, key.key); err != nil {
		// A known kid whose key does not verify: the issuer may have put
		// new material under it. Treat it as a new key — refetch as for an
		// unknown kid (same cooldown) and verify once more if it changed.
		next := []*verifyKey(nil)
		if t.hasKID {
			next = v.keys.changedKey(ctx, t.kid, key)
		}
		if next == nil {
			return nil, time.Time{}, nil, InvalidToken(descSignature, fmt.Errorf("%w: signature verification failed: %w", ErrInvalidToken, err))
		}
		if key, kerr = pickKey(next, t.kid, t.alg); kerr != nil {
			return nil, time.Time{}, nil, kerr
		}
		if err := method.Verify(t.signingInput, t.sig, key.key); err != nil {
			return nil, time.Time{}, nil, InvalidToken(descSignature, fmt.Errorf("%w: signature verification failed (also with the refetched key): %w", ErrInvalidToken, err))
		}
	}
	claims, derr := decodePayload(t.payloadB64)
	if derr != nil {
		return nil, time.Time{}, nil, derr
	}
	p, expiry, err := v.checkClaims(claims, rule)
	if err != nil {
		return nil, time.Time{}, nil, err
	}
	return p, expiry, key, nil
}

// pickKey chooses the one candidate that fits alg.
func pickKey(cands []*verifyKey, kid, alg string) (*verifyKey, *Error) {
	var key *verifyKey
	for _, c := range cands {
		if c.fitsAlg(alg) {
			if key != nil {
				return nil, InvalidToken(descKeyMismatch, fmt.Errorf("%w: several keys with kid %s fit alg %s", ErrInvalidToken, quoteShort(kid), alg))
			}
			key = c
		}
	}
	if key == nil {
		return nil, InvalidToken(descKeyMismatch, fmt.Errorf("%w: key %s does not fit alg %s (JWK alg, kty or curve differ)", ErrInvalidToken, quoteShort(kid), alg))
	}
	return key, nil
}

// checkType applies the typ rules (RFC 7515 §4.1.9: compared
// case-insensitively, "application/" prefix optional; RFC 9068 §2.1).
func (v *JWTValidator) checkType(typ string) *Error {
	t := typ
	if prefix := "application/"; len(t) > len(prefix) && strings.EqualFold(t[:len(prefix)], prefix) {
		t = t[len(prefix):]
	}
	ok := strings.EqualFold(t, "at+jwt") || (!v.requireAT && (typ == "" || strings.EqualFold(t, "jwt")))
	if !ok {
		return InvalidToken(descType, fmt.Errorf("%w: typ %s is not accepted for an access token", ErrInvalidToken, quoteShort(typ)))
	}
	return nil
}

func (v *JWTValidator) checkClaims(m map[string]any, rule expiryRule) (*Principal, time.Time, error) {
	now := v.now()
	p := &Principal{Kind: KindUser, Claims: NewClaims(m)}

	exp, present, err := numericDate(m, "exp")
	switch {
	case err != nil:
		return nil, time.Time{}, err
	case !present:
		return nil, time.Time{}, InvalidToken(descMissingExp, fmt.Errorf("%w: no exp claim", ErrInvalidToken))
	case rule == enforceExpiry && !now.Before(exp.Add(v.leeway)):
		return nil, time.Time{}, InvalidToken(descExpired, fmt.Errorf("%w: %w: exp is %s", ErrInvalidToken, ErrExpired, exp.Format(time.RFC3339)))
	}
	p.Expiry = exp
	_, bound := m["cnf"]
	if err := checkTokenUse(m, bound && v.dpop.modeOf() != DPoPDisabled); err != nil {
		return nil, time.Time{}, err
	}
	nbf, present, err := numericDate(m, "nbf")
	switch {
	case err != nil:
		return nil, time.Time{}, err
	case present && now.Add(v.leeway).Before(nbf):
		return nil, time.Time{}, InvalidToken(descNotYetValid, fmt.Errorf("%w: nbf is %s", ErrInvalidToken, nbf.Format(time.RFC3339)))
	}
	iat, present, err := numericDate(m, "iat")
	switch {
	case err != nil:
		return nil, time.Time{}, err
	case present && iat.After(now.Add(v.leeway)):
		return nil, time.Time{}, InvalidToken(descIssuedInFuture, fmt.Errorf("%w: iat is %s", ErrInvalidToken, iat.Format(time.RFC3339)))
	case present:
		p.IssuedAt = iat
	}

	var ok bool
	if p.Issuer, ok, err = stringClaim(m, "iss"); err != nil {
		return nil, time.Time{}, err
	} else if !ok || !v.issuerAccepted(p.Issuer, p.Claims) {
		return nil, time.Time{}, InvalidToken(descIssuer, fmt.Errorf("%w: iss %s is not accepted", ErrInvalidToken, quoteShort(p.Issuer)))
	}
	if p.Subject, ok, err = stringClaim(m, "sub"); err != nil {
		return nil, time.Time{}, err
	} else if !ok || p.Subject == "" {
		return nil, time.Time{}, InvalidToken(descMissingClaim, fmt.Errorf("%w: no sub claim", ErrInvalidToken))
	}
	if p.TokenID, _, err = stringClaim(m, "jti"); err != nil {
		return nil, time.Time{}, err
	}
	if p.ClientID, err = clientID(m); err != nil {
		return nil, time.Time{}, err
	}
	if p.Audience, err = audienceClaim(m); err != nil {
		return nil, time.Time{}, err
	}
	if err := v.checkAudience(p, m); err != nil {
		return nil, time.Time{}, err
	}
	if len(v.clientIDs) > 0 && !slices.Contains(v.clientIDs, p.ClientID) {
		return nil, time.Time{}, InvalidToken(descClient, fmt.Errorf("%w: client %s is not accepted", ErrInvalidToken, quoteShort(p.ClientID)))
	}
	if v.requireAT {
		for _, c := range [...]string{"client_id", "iat", "jti", "aud"} {
			if _, ok := m[c]; !ok {
				return nil, time.Time{}, InvalidToken(descMissingClaim, fmt.Errorf("%w: RFC 9068 requires %q", ErrInvalidToken, c))
			}
		}
	}

	var serr error
	if v.stdScopes {
		p.Scopes, serr = standardScopes(p.Claims)
	} else {
		p.Scopes, serr = v.scopes.MapScopes(p.Claims)
	}
	if serr != nil {
		var e *Error
		if errors.As(serr, &e) {
			return nil, time.Time{}, e
		}
		return nil, time.Time{}, InvalidToken(descScope, fmt.Errorf("%w: scope mapping: %w", ErrInvalidToken, serr))
	}
	return p, exp, nil
}

func (v *JWTValidator) issuerAccepted(iss string, c Claims) bool {
	if iss == "" {
		return false
	}
	if slices.Contains(v.issuers, iss) {
		return true
	}
	for _, t := range v.templates {
		if t.match(iss, c) {
			return true
		}
	}
	return v.issuerFunc != nil && v.issuerFunc(iss, c)
}

func (v *JWTValidator) checkAudience(p *Principal, m map[string]any) *Error {
	if v.clientAud {
		if use, _ := m["token_use"].(string); use != "access" {
			return InvalidToken(descTokenUse, fmt.Errorf(`%w: token_use is not "access"`, ErrInvalidToken))
		}
		if _, present := m["aud"]; !present {
			if slices.Contains(v.clientIDs, p.ClientID) {
				return nil
			}
			return InvalidToken(descClient, fmt.Errorf("%w: client %s is not accepted", ErrInvalidToken, quoteShort(p.ClientID)))
		}
	}
	if v.skipAud {
		return nil
	}
	for _, a := range p.Audience {
		if slices.Contains(v.audiences, a) {
			return nil
		}
	}
	shown := p.Audience
	if len(shown) > 3 {
		shown = shown[:3]
	}
	q := make([]string, len(shown))
	for i, a := range shown {
		q[i] = quoteShort(a)
	}
	return InvalidToken(descAudience, fmt.Errorf("%w: aud [%s] holds none of the accepted audiences", ErrInvalidToken, strings.Join(q, " ")))
}

func parseIssuerTemplate(t string) (issuerTemplate, error) {
	open := strings.IndexByte(t, '{')
	end := strings.IndexByte(t, '}')
	if open < 0 || end < open+2 || strings.ContainsAny(t[end+1:], "{}") || strings.ContainsAny(t[:open], "}") {
		return issuerTemplate{}, errors.New("must hold exactly one {claim} placeholder")
	}
	it := issuerTemplate{prefix: t[:open], claim: t[open+1 : end], suffix: t[end+1:]}
	if err := checkAbsoluteURL(it.prefix + "x" + it.suffix); err != nil {
		return issuerTemplate{}, err
	}
	if !strings.Contains(it.prefix, "://") || strings.Index(it.prefix[strings.Index(it.prefix, "://")+3:], "/") < 0 {
		return issuerTemplate{}, errors.New("the placeholder must be in the path, not the host")
	}
	return it, nil
}

func (t issuerTemplate) match(iss string, c Claims) bool {
	if len(iss) <= len(t.prefix)+len(t.suffix) || !strings.HasPrefix(iss, t.prefix) || !strings.HasSuffix(iss, t.suffix) {
		return false
	}
	val, ok := c.m[t.claim].(string)
	if !ok || val == "" || strings.ContainsAny(val, "/?#@%{} \t\r\n") {
		return false
	}
	return iss[len(t.prefix):len(iss)-len(t.suffix)] == val
}

// numericDate reads a NumericDate claim (RFC 7519 §2). present is true
// whenever the member exists — including "exp": 0, which is an expiry in
// 1970, not an absent one. A value that is not a finite number between 0
// and year 5138 is malformed.
func numericDate(m map[string]any, name string) (t time.Time, present bool, err *Error) {
	v, present := m[name]
	if !present {
		return time.Time{}, false, nil
	}
	f, ok := v.(float64)
	if !ok || math.IsNaN(f) || f < 0 || f > 1e11 {
		return time.Time{}, true, malformed(fmt.Sprintf("%q is not a NumericDate", name))
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), true, nil
}

// checkTokenUse refuses a token whose own claims say it is not an access
// token: "token_type", "token_use" or "typ" (case-insensitive) naming an ID
// token ("id", "id_token"), a refresh token ("refresh", "refresh_token",
// Keycloak's "offline") or a logout token ("logout"). "DPoP" (RFC 9449's
// token_type, as introspection reports it) is accepted only when dpopBound:
// DPoP is enabled and the token carries "cnf", so the request's proof is
// checked against it. A non-string value is malformed. Access tokens' own
// markers ("Bearer", "access", "at+jwt") and absent claims pass.
func checkTokenUse(m map[string]any, dpopBound bool) *Error {
	for _, name := range [...]string{"token_type", "token_use", "typ"} {
		s, _, err := stringClaim(m, name)
		if err != nil {
			return err
		}
		switch strings.ToLower(s) {
		case "dpop":
			if dpopBound {
				continue // checked against the request's proof (dpopPolicy.check)
			}
			return InvalidToken(descSenderConstrained, fmt.Errorf("%w: %s is DPoP (a sender-constrained token)", ErrInvalidToken, name))
		case "id", "id_token", "refresh", "refresh_token", "offline", "logout":
			return InvalidToken(descTokenUse, fmt.Errorf("%w: %s %s is not an access token", ErrInvalidToken, name, quoteShort(s)))
		}
	}
	return nil
}

// stringClaim reads a claim that must be a string when present.
func stringClaim(m map[string]any, name string) (string, bool, *Error) {
	v, present := m[name]
	if !present {
		return "", false, nil
	}
	s, ok := v.(string)
	if !ok {
		return "", true, malformed(fmt.Sprintf("%q is not a string", name))
	}
	return s, true, nil
}

// clientID returns the OAuth client the token was issued to, from
// "client_id" (RFC 9068 §2.2), "azp" (OIDC), "appid" (Entra v1) or "cid"
// (Okta). Present members must be strings and agree with each other.
func clientID(m map[string]any) (string, *Error) {
	var id string
	for _, name := range [...]string{"client_id", "azp", "appid", "cid"} {
		s, ok, err := stringClaim(m, name)
		if err != nil {
			return "", err
		}
		if !ok {
			continue
		}
		if id != "" && s != id {
			return "", InvalidToken(descClient, fmt.Errorf("%w: the client claims disagree", ErrInvalidToken))
		}
		id = s
	}
	return id, nil
}

// audienceClaim reads "aud": a string or an array of strings (RFC 7519 §4.1.3).
func audienceClaim(m map[string]any) ([]string, *Error) {
	switch v := m["aud"].(type) {
	case nil:
		if _, present := m["aud"]; present {
			return nil, malformed(`"aud" is null`)
		}
		return nil, nil
	case string:
		return []string{v}, nil
	case []any:
		out := make([]string, len(v))
		for i, e := range v {
			s, ok := e.(string)
			if !ok {
				return nil, malformed(`"aud" holds a non-string`)
			}
			out[i] = s
		}
		return out, nil
	}
	return nil, malformed(`"aud" is neither a string nor an array`)
}

func asymmetricAlg(a string) bool {
	switch a {
	case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA":
		return true
	}
	return false
}

func durationOr(d, def, lo, hi time.Duration) (time.Duration, error) {
	if d == 0 {
		return def, nil
	}
	if d < lo || d > hi {
		return 0, fmt.Errorf("%s is outside [%s, %s]", d, lo, hi)
	}
	return d, nil
}
