package obo

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/internal/loopback"
)

// AuthMethod is how the Exchanger authenticates itself to the token
// endpoint, named as in the RFC 8414 / OAuth registry.
type AuthMethod string

const (
	// ClientSecretBasic sends the client ID and secret in an HTTP Basic
	// Authorization header, each form-urlencoded first (RFC 6749 §2.3.1).
	ClientSecretBasic AuthMethod = "client_secret_basic"
	// ClientSecretPost sends client_id and client_secret in the form body
	// (RFC 6749 §2.3.1).
	ClientSecretPost AuthMethod = "client_secret_post"
	// PrivateKeyJWT sends a fresh JWT client assertion signed with
	// Config.PrivateKey (RFC 7523 §2.2 and §3, OpenID Connect Core §9);
	// Microsoft Entra certificate credentials use it.
	PrivateKeyJWT AuthMethod = "private_key_jwt"
)

// Defaults for the zero values of Config.
const (
	DefaultTimeout           = 10 * time.Second
	DefaultCacheSize         = 10000
	DefaultExpirySkew        = 30 * time.Second
	DefaultAssertionLifetime = 5 * time.Minute
	// MaxResponseBytes caps every body read from the token and metadata
	// endpoints; a longer answer is an error.
	MaxResponseBytes = 1 << 20
	// MaxTokenBytes caps an issued access token.
	MaxTokenBytes = 64 << 10
	// discoveryCooldown is how long a failed discovery is remembered, so a
	// broken issuer is not hammered by every request.
	discoveryCooldown = 5 * time.Second
)

// PrivateKey is the key that signs private_key_jwt client assertions. Its
// String, GoString, Format and LogValue never show the key.
type PrivateKey struct {
	// Signer is an *rsa.PrivateKey (at least 2048 bits), an
	// *ecdsa.PrivateKey (P-256, P-384 or P-521) or an ed25519.PrivateKey.
	Signer crypto.Signer
	// Algorithm is the JWS alg. Empty means RS256 for RSA, ES256/ES384/ES512
	// by curve for ECDSA, EdDSA for Ed25519; PS256/384/512 may be chosen for
	// RSA.
	Algorithm string
	// KeyID, when set, is sent as the "kid" header.
	KeyID string
	// Thumbprint, when set, is sent as the "x5t" header: the base64url
	// SHA-1 thumbprint of the certificate registered for the client, which
	// is how Microsoft Entra finds a certificate credential.
	Thumbprint string
	// ThumbprintS256, when set, is sent as the "x5t#S256" header (RFC 7515
	// §4.1.8).
	ThumbprintS256 string
}

// String names the algorithm and key ID and redacts the key.
func (k PrivateKey) String() string {
	return fmt.Sprintf("obo.PrivateKey{alg=%s kid=%s %s}", k.Algorithm, k.KeyID, redacted)
}

// GoString returns the same redaction as String.
func (k PrivateKey) GoString() string { return k.String() }

// Format writes String whatever the verb.
func (k PrivateKey) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(k.String())) }

// LogValue returns a redaction for log/slog.
func (k PrivateKey) LogValue() slog.Value { return slog.StringValue(k.String()) }

// Config configures an Exchanger. The zero value is not usable: ClientID,
// a client credential and either TokenEndpoint or Issuer are required.
// New copies the Config; changing it afterwards has no effect.
type Config struct {
	// TokenEndpoint is the authorization server's token endpoint: an
	// absolute https URL (http only for a loopback host). Set it, or Issuer.
	TokenEndpoint string
	// Issuer, when TokenEndpoint is empty, is the authorization server's
	// issuer identifier; the token endpoint is discovered on first use (or
	// by Exchanger.TokenEndpoint) from its RFC 8414 metadata
	// (/.well-known/oauth-authorization-server, path-inserted), falling back
	// to OpenID Connect Discovery (/.well-known/openid-configuration). The
	// document's issuer must equal Issuer exactly (RFC 8414 §3.3).
	Issuer string

	// ClientID identifies this service to the token endpoint. Required.
	ClientID string
	// AuthMethod is the client authentication method. Empty means
	// ClientSecretBasic, the RFC 8414 §2 default.
	AuthMethod AuthMethod
	// ClientSecret is required for ClientSecretBasic and ClientSecretPost
	// and must be empty for PrivateKeyJWT. It is an auth.Credential so that
	// printing the Config never shows it.
	ClientSecret auth.Credential
	// PrivateKey is required for PrivateKeyJWT and must be nil otherwise.
	PrivateKey *PrivateKey
	// AssertionAudience is the "aud" of client assertions. Empty means the
	// token endpoint URL, which RFC 7523 §3 and Microsoft Entra accept.
	AssertionAudience string
	// AssertionLifetime is how long a client assertion is valid. Zero means
	// DefaultAssertionLifetime; at most one hour.
	AssertionLifetime time.Duration

	// ActorToken, when set, supplies RFC 8693's actor_token (§2.1): a token
	// identifying this service as the party acting for the user. It is
	// called for each TokenExchange that reaches the endpoint (not for cache
	// hits). The actor must be the same for every call: the cache key does
	// not include it.
	ActorToken func(ctx context.Context) (auth.Credential, error)
	// ActorTokenType is the actor_token_type; empty means
	// TokenTypeAccessToken.
	ActorTokenType string

	// DPoPKey, when set, makes the Exchanger a DPoP client (RFC 9449): every
	// token request carries a proof signed with it (§5), so that an
	// endpoint that issues DPoP-bound tokens binds them to this key and
	// answers token_type "DPoP"; Transport then sends such a token with the
	// DPoP scheme and a fresh proof per request (§7.1). A use_dpop_nonce
	// answer, from the token endpoint (400) or downstream (401), is retried
	// once with the server's nonce, and the latest nonce of each origin is
	// remembered (§8, §9). A Bearer answer is still accepted and sent as a
	// bearer token: the authorization server decides. Its Signer and
	// Algorithm follow PrivateKey's rules (asymmetric only, as §4.2
	// requires); KeyID and the thumbprints must be empty. Nil means no
	// proofs, and an answer of token_type DPoP is refused.
	DPoPKey *PrivateKey

	// HTTPClient sends the requests. Nil means a client with
	// http.DefaultTransport. The Exchanger uses a copy whose CheckRedirect
	// refuses every redirect and whose Timeout is Timeout when unset.
	HTTPClient *http.Client
	// Timeout bounds every call to the token and metadata endpoints. Zero
	// means DefaultTimeout.
	Timeout time.Duration

	// CacheSize caps the number of cached tokens (least recently used are
	// evicted). Zero means DefaultCacheSize; negative disables caching.
	CacheSize int
	// SharedCache, when set, is a second cache level shared among replicas
	// (redisstore.TokenCache keeps it in Redis, sealed): on a miss of this
	// process's cache the exchanger asks it before exchanging, and stores
	// every new token in both. So replicas serving the same user and target
	// make one exchange between them; an Exchanger of another client,
	// authorization server or DPoP key never finds their tokens, so one
	// SharedCache may serve them all. Nil: this process's cache only.
	// Ignored when caching is disabled.
	SharedCache SharedCache
	// ExpirySkew is subtracted from expires_in: a token is exchanged again
	// this long before it expires. Zero means DefaultExpirySkew.
	ExpirySkew time.Duration

	// Now returns the current time. Nil means time.Now. Tests inject it.
	Now func() time.Time

	// Audit, when set, records every exchange made and every failure that
	// sent nothing (see Auditor); pass an *audit.Recorder. Nil: no audit.
	Audit Auditor
	// Observer, when set, is told of every Token call (see Observer), cache
	// hits included, and of the start and end of every exchange, in whose
	// context the HTTP requests are made: package telemetry's *Telemetry
	// implements it
	// (obo.Config{Observer: guard.Telemetry()}). Nil: none.
	Observer Observer
}

func (c *Config) check() error {
	bad := func(field, why string) error { return fmt.Errorf("%w: Config.%s: %s", ErrConfig, field, why) }
	switch {
	case c.TokenEndpoint != "":
		if err := checkEndpoint(c.TokenEndpoint); err != nil {
			return bad("TokenEndpoint", err.Error())
		}
	case c.Issuer != "":
		if err := checkEndpoint(c.Issuer); err != nil {
			return bad("Issuer", err.Error())
		}
		if u, _ := url.Parse(c.Issuer); u.RawQuery != "" {
			return bad("Issuer", "must not contain a query (RFC 8414 §2)")
		}
	default:
		return bad("TokenEndpoint", "TokenEndpoint or Issuer is required")
	}
	if c.ClientID == "" || !printable(c.ClientID) {
		return bad("ClientID", "required, printable ASCII")
	}
	if c.AuthMethod == "" {
		c.AuthMethod = ClientSecretBasic
	}
	switch c.AuthMethod {
	case ClientSecretBasic, ClientSecretPost:
		if c.ClientSecret.IsZero() {
			return bad("ClientSecret", "required for "+string(c.AuthMethod))
		}
		if c.PrivateKey != nil {
			return bad("PrivateKey", "must be nil for "+string(c.AuthMethod)+"; set AuthMethod to PrivateKeyJWT to use it")
		}
	case PrivateKeyJWT:
		if !c.ClientSecret.IsZero() {
			return bad("ClientSecret", "must be empty for private_key_jwt")
		}
		if c.PrivateKey == nil || c.PrivateKey.Signer == nil {
			return bad("PrivateKey", "required for private_key_jwt")
		}
		if c.AssertionAudience != "" && !printable(c.AssertionAudience) {
			return bad("AssertionAudience", "must be printable ASCII")
		}
	default:
		return bad("AuthMethod", fmt.Sprintf("unknown method %q", string(c.AuthMethod)))
	}
	switch {
	case c.AssertionLifetime < 0 || c.AssertionLifetime > time.Hour:
		return bad("AssertionLifetime", "must be between 0 and one hour")
	case c.AssertionLifetime == 0:
		c.AssertionLifetime = DefaultAssertionLifetime
	}
	if c.ActorToken == nil && c.ActorTokenType != "" {
		return bad("ActorTokenType", "set without ActorToken")
	}
	if c.ActorTokenType != "" && !isAbsoluteURI(c.ActorTokenType) {
		return bad("ActorTokenType", "must be an absolute URI")
	}
	if c.ActorToken != nil && c.ActorTokenType == "" {
		c.ActorTokenType = TokenTypeAccessToken
	}
	switch {
	case c.Timeout < 0:
		return bad("Timeout", "must not be negative")
	case c.Timeout == 0:
		c.Timeout = DefaultTimeout
	}
	if c.CacheSize == 0 {
		c.CacheSize = DefaultCacheSize
	}
	switch {
	case c.ExpirySkew < 0:
		return bad("ExpirySkew", "must not be negative")
	case c.ExpirySkew == 0:
		c.ExpirySkew = DefaultExpirySkew
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

// checkEndpoint accepts an absolute https URL, or http for a loopback host,
// without user info or fragment.
func checkEndpoint(s string) error {
	u, err := url.Parse(s)
	if err != nil || !u.IsAbs() || u.Host == "" {
		return fmt.Errorf("%q is not an absolute URL", s)
	}
	if u.User != nil || u.Fragment != "" || u.RawFragment != "" {
		return fmt.Errorf("%q must not contain user info or a fragment", s)
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && loopback.Host(u.Hostname()):
	default:
		return fmt.Errorf("%q: use https (plain http only for a loopback host)", s)
	}
	return nil
}

// signingMethod picks and checks the JWS algorithm for k.
func signingMethod(k *PrivateKey) (jwt.SigningMethod, error) {
	bad := func(why string) error { return fmt.Errorf("%w: Config.PrivateKey: %s", ErrConfig, why) }
	alg := k.Algorithm
	switch key := k.Signer.(type) {
	case *rsa.PrivateKey:
		if key.N.BitLen() < 2048 {
			return nil, bad("RSA keys must have at least 2048 bits")
		}
		if alg == "" {
			alg = "RS256"
		}
		switch alg {
		case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
		default:
			return nil, bad("algorithm " + alg + " does not fit an RSA key")
		}
	case *ecdsa.PrivateKey:
		want := map[elliptic.Curve]string{elliptic.P256(): "ES256", elliptic.P384(): "ES384", elliptic.P521(): "ES512"}[key.Curve]
		if want == "" {
			return nil, bad("ECDSA keys must use P-256, P-384 or P-521")
		}
		if alg == "" {
			alg = want
		}
		if alg != want {
			return nil, bad("algorithm " + alg + " does not fit the key's curve (want " + want + ")")
		}
	case ed25519.PrivateKey, *ed25519.PrivateKey:
		if alg == "" {
			alg = "EdDSA"
		}
		if alg != "EdDSA" {
			return nil, bad("algorithm " + alg + " does not fit an Ed25519 key")
		}
	default:
		return nil, bad(fmt.Sprintf("unsupported key type %T", k.Signer))
	}
	for name, v := range map[string]string{"KeyID": k.KeyID, "Thumbprint": k.Thumbprint, "ThumbprintS256": k.ThumbprintS256} {
		if !printable(v) {
			return nil, bad(name + " must be printable ASCII")
		}
	}
	return jwt.GetSigningMethod(alg), nil
}
