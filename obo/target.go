package obo

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"

	"github.com/mcpguard/mcpguard/internal/oauthsyntax"
)

// Flavor is the kind of exchange. The zero value is not a flavor: a Target
// must name one.
type Flavor uint8

const (
	// TokenExchange is OAuth 2.0 Token Exchange (RFC 8693 §2.1): the user's
	// token is the subject_token and the result is a token for the target's
	// audience and/or resource.
	TokenExchange Flavor = iota + 1
	// EntraOBO is Microsoft Entra ID's on-behalf-of flow: the JWT bearer
	// grant (RFC 7523 §2.1) with the user's token as assertion,
	// requested_token_use=on_behalf_of and the downstream scope, such as
	// "api://calendar/.default".
	EntraOBO
	// ClientCredentials is RFC 6749 §4.4: a token for this service itself,
	// with no user behind it (the service side of dual-token mode).
	ClientCredentials
)

// String returns the flavor's name as used in errors and audit events.
func (f Flavor) String() string {
	switch f {
	case TokenExchange:
		return "token_exchange"
	case EntraOBO:
		return "entra_obo"
	case ClientCredentials:
		return "client_credentials"
	}
	return "unknown"
}

// needsSubject reports whether the flavor exchanges a user's token.
func (f Flavor) needsSubject() bool { return f == TokenExchange || f == EntraOBO }

// Token type identifiers (RFC 8693 §3).
const (
	TokenTypeAccessToken  = "urn:ietf:params:oauth:token-type:access_token"
	TokenTypeRefreshToken = "urn:ietf:params:oauth:token-type:refresh_token"
	TokenTypeIDToken      = "urn:ietf:params:oauth:token-type:id_token"
	TokenTypeJWT          = "urn:ietf:params:oauth:token-type:jwt"
	TokenTypeSAML1        = "urn:ietf:params:oauth:token-type:saml1"
	TokenTypeSAML2        = "urn:ietf:params:oauth:token-type:saml2"
)

// grant types sent to the token endpoint.
const (
	grantTypeTokenExchange     = "urn:ietf:params:oauth:grant-type:token-exchange" // RFC 8693 §2.1
	grantTypeJWTBearer         = "urn:ietf:params:oauth:grant-type:jwt-bearer"     // RFC 7523 §2.1
	grantTypeClientCredentials = "client_credentials"                              // RFC 6749 §4.4.2
)

// Target says what to obtain: the flavor and the downstream the token is
// for. Targets are plain values; the Exchanger copies what it needs.
type Target struct {
	// Flavor selects the exchange. Required.
	Flavor Flavor
	// Audience is RFC 8693's "audience" (§2.1): the logical name of the
	// downstream service. For TokenExchange, Audience or Resource is
	// required: an exchange without a target could return a token for the
	// inbound audience, which is token passthrough in disguise. For
	// ClientCredentials it is sent as "audience" (a common extension, as
	// Auth0 uses). Not allowed with EntraOBO, whose audience is in the scope.
	Audience string
	// Resource is the absolute URI of the downstream API (RFC 8693 §2.1,
	// RFC 8707 §2), without fragment. Not allowed with EntraOBO.
	Resource string
	// Scopes are the downstream scopes (RFC 6749 §3.3). Required for
	// EntraOBO ("api://calendar/.default" or named delegated scopes).
	// Order and duplicates do not matter.
	Scopes []string
	// SubjectTokenType is RFC 8693's subject_token_type; empty means
	// TokenTypeAccessToken. TokenExchange only.
	SubjectTokenType string
	// RequestedTokenType is RFC 8693's requested_token_type; when set, the
	// answer's issued_token_type must equal it; when empty, the answer must
	// be an access token or a JWT. TokenExchange only.
	RequestedTokenType string
}

// target is a validated Target with its scope string and the digest that
// starts every cache key.
type target struct {
	Target
	scope  string   // the sorted, de-duplicated scopes, space-separated
	digest [32]byte // SHA-256 of every field, length-prefixed
}

// keyVersion starts every digest; 2 since cache keys name the exchanger.
const keyVersion = 2

func compileTarget(t Target) (*target, error) {
	bad := func(field, why string) error {
		return fmt.Errorf("%w: Target.%s: %s", ErrConfig, field, why)
	}
	switch t.Flavor {
	case TokenExchange, EntraOBO, ClientCredentials:
	default:
		return nil, bad("Flavor", "must be TokenExchange, EntraOBO or ClientCredentials")
	}
	if t.Resource != "" {
		u, err := url.Parse(t.Resource)
		if err != nil || !u.IsAbs() || u.Host == "" || u.Fragment != "" || strings.Contains(t.Resource, "#") {
			return nil, bad("Resource", "must be an absolute URI without fragment (RFC 8707 §2)")
		}
	}
	if !printable(t.Audience) {
		return nil, bad("Audience", "must be printable ASCII")
	}
	scopes := slices.Clone(t.Scopes)
	slices.Sort(scopes)
	scopes = slices.Compact(scopes)
	for _, s := range scopes {
		if !oauthsyntax.IsScopeToken(s) {
			return nil, bad("Scopes", fmt.Sprintf("%q is not an RFC 6749 §3.3 scope token", s))
		}
	}
	switch t.Flavor {
	case TokenExchange:
		if t.Audience == "" && t.Resource == "" {
			return nil, bad("Audience", "Audience or Resource is required for TokenExchange, so the token is issued for the downstream")
		}
		if t.SubjectTokenType != "" && !isAbsoluteURI(t.SubjectTokenType) {
			return nil, bad("SubjectTokenType", "must be an absolute URI such as "+TokenTypeAccessToken)
		}
		if t.RequestedTokenType != "" && !isAbsoluteURI(t.RequestedTokenType) {
			return nil, bad("RequestedTokenType", "must be an absolute URI such as "+TokenTypeAccessToken)
		}
		if t.SubjectTokenType == "" {
			t.SubjectTokenType = TokenTypeAccessToken
		}
	case EntraOBO:
		if len(scopes) == 0 {
			return nil, bad("Scopes", "EntraOBO requires the downstream scope, such as api://downstream/.default")
		}
		if t.Audience != "" || t.Resource != "" {
			return nil, bad("Audience", "EntraOBO takes the audience from Scopes; leave Audience and Resource empty")
		}
	}
	if t.Flavor != TokenExchange && (t.SubjectTokenType != "" || t.RequestedTokenType != "") {
		return nil, bad("SubjectTokenType", "token types apply to TokenExchange only")
	}
	t.Scopes = scopes
	ct := &target{Target: t, scope: strings.Join(scopes, " ")}

	h := sha256.New()
	var n [8]byte
	field := func(s string) {
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	h.Write([]byte{keyVersion, byte(t.Flavor)})
	field(t.SubjectTokenType)
	field(t.RequestedTokenType)
	field(t.Audience)
	field(t.Resource)
	binary.BigEndian.PutUint64(n[:], uint64(len(scopes)))
	h.Write(n[:])
	for _, s := range scopes {
		field(s)
	}
	h.Sum(ct.digest[:0])
	return ct, nil
}

// key is the cache key for a subject token given by its SHA-256 digest
// (all zero for ClientCredentials, which has no subject), obtained by the
// exchanger whose identity digest is exchanger (Exchanger.id): SHA-256 over
// the three digests, each of fixed length, so no two (exchanger, target,
// subject) triples share a key. The subject digest comes from
// auth.Credential.Digest, computed once per request by auth.Middleware.
func (t *target) key(exchanger, subject [32]byte) [32]byte {
	var buf [1 + 32 + 32 + 32]byte
	buf[0] = keyVersion
	copy(buf[1:], exchanger[:])
	copy(buf[33:], t.digest[:])
	copy(buf[65:], subject[:])
	return sha256.Sum256(buf[:])
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return len(s) <= 2048
}

func isAbsoluteURI(s string) bool {
	u, err := url.Parse(s)
	return err == nil && u.Scheme != "" && printable(s)
}

// maxMemoTargets caps the compiled targets remembered by Token; when full
// the memo is emptied (targets are few in practice: one per downstream).
const maxMemoTargets = 256

// targetMemo remembers compiled Targets so that Token does not validate,
// sort and hash the same Target on every call. It is safe for concurrent
// use.
type targetMemo struct {
	mu sync.RWMutex
	m  map[string]*target // fingerprint → compiled target
}

// compile returns the compiled t, from the memo when possible. Only valid
// targets are remembered, under an unambiguous (length-prefixed)
// fingerprint of every field.
func (tm *targetMemo) compile(t Target) (*target, error) {
	var buf [512]byte
	fp := fingerprint(buf[:0], &t)
	tm.mu.RLock()
	ct, ok := tm.m[string(fp)] // no allocation for the conversion
	tm.mu.RUnlock()
	if ok {
		return ct, nil
	}
	ct, err := compileTarget(t)
	if err != nil {
		return nil, err
	}
	tm.mu.Lock()
	defer tm.mu.Unlock()
	if tm.m == nil || len(tm.m) >= maxMemoTargets {
		tm.m = make(map[string]*target)
	}
	tm.m[string(fp)] = ct
	return ct, nil
}

func fingerprint(b []byte, t *Target) []byte {
	field := func(s string) {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	b = append(b, byte(t.Flavor))
	field(t.Audience)
	field(t.Resource)
	field(t.SubjectTokenType)
	field(t.RequestedTokenType)
	b = binary.AppendUvarint(b, uint64(len(t.Scopes)))
	for _, s := range t.Scopes {
		field(s)
	}
	return b
}
