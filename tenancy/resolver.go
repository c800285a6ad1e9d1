package tenancy

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/mcpguard/mcpguard/auth"
)

// Claim presets for Config.Claim.
const (
	// ClaimEntra is Microsoft Entra ID's tenant claim ("tid"), a GUID.
	ClaimEntra = "tid"
	// ClaimAuth0Org is Auth0's organization claim ("org_id"), present when
	// the token was issued in the context of an Auth0 Organization.
	ClaimAuth0Org = "org_id"
	// ClaimTenantID is the generic "tenant_id" claim; it is the default.
	ClaimTenantID = "tenant_id"
)

// maxClaimPath bounds Config.Claim and Narrowing.Claim.
const maxClaimPath = 256

// TenantFunc derives the tenant ID from a verified principal, for schemes a
// claim path cannot express (a tenant embedded in the issuer, a lookup table
// keyed by client ID, ...). It must read only verified data — the principal
// — and must be safe for concurrent use.
//
// Return ("", nil) when the principal has no tenant, and an error when the
// tenant cannot be determined; the error is never shown to the client.
// Whatever it returns is checked by ValidateID and Config.Allowed like a
// claim value.
type TenantFunc func(p *auth.Principal) (string, error)

// Config configures a Resolver. The zero value reads the "tenant_id" claim,
// requires a tenant on every request, accepts every valid tenant ID and
// refuses narrowing.
type Config struct {
	// Claim is the claim holding the tenant ID, either a top-level claim
	// name or a dotted path into nested objects (auth.Claims.Get rules). Use
	// ClaimEntra, ClaimAuth0Org or ClaimTenantID, or your own. The claim
	// must be a JSON string; any other type is rejected. Default
	// ClaimTenantID when Func is nil. Mutually exclusive with Func.
	Claim string
	// Func derives the tenant instead of Claim. Mutually exclusive with
	// Claim.
	Func TenantFunc
	// Allowed, when not empty, is the exhaustive list of tenants this
	// server serves; any other tenant is rejected with ErrTenantNotAllowed.
	// Every entry must pass ValidateID. Default: every valid tenant.
	Allowed []string
	// AllowMissingTenant lets requests whose principal names no tenant
	// through, without a tenant in the context (partition helpers then fail
	// with ErrNoTenant). Default false: no tenant is a 403 with reason
	// "tenant_required". Invalid or disallowed tenants are rejected either
	// way.
	AllowMissingTenant bool
	// Narrowing lets a trusted service principal pick the tenant of a call
	// through a header in dual-token mode. Off by default.
	Narrowing Narrowing
	// OnError, when set, is called with the request and the *Error (whose
	// Err holds the internal cause) each time Handler rejects a request,
	// before the response is written, for audit and logs. It must be safe
	// for concurrent use and must not write to the response.
	OnError func(r *http.Request, err *Error)
}

// Narrowing configures how a trusted service principal may name the tenant
// of a call in a request header. The tenant still comes from verified
// claims: the header can only pick one of the tenants those claims grant
// (the resolved tenant, or a member of Claim), never add one.
//
// Only dual-token principals qualify — those whose auth.Principal.Actor is
// set by the auth layer after verifying the calling service's own token —
// and only when Trusted approves that actor. A header from any other caller
// is refused (403 "narrowing_refused"), not ignored, so a client never
// believes it wrote to one tenant while it wrote to another.
//
// The zero value disables narrowing: no header is read at all.
type Narrowing struct {
	// Header is the request header naming the tenant, for example
	// "Mcp-Tenant". Empty disables narrowing. A request carrying it more
	// than once is rejected. The header stays on the request: tools must
	// take the tenant from FromContext, never from the header.
	Header string
	// Trusted reports whether the verified actor (the calling service) may
	// narrow. It must decide from verified fields only — Issuer, Subject,
	// ClientID — and must be safe for concurrent use. Required with Header.
	Trusted func(actor *auth.Principal) bool
	// Claim optionally names a claim of the principal (string or array of
	// strings) listing further tenants the header may pick, for example the
	// organizations a user belongs to. Empty: the header may only repeat
	// the resolved tenant.
	Claim string
}

// Resolver determines the tenant of a request from its verified
// auth.Principal.
//
// A Resolver is safe for concurrent use. The zero Resolver reads the
// "tenant_id" claim with no allow-list; use New.
type Resolver struct {
	claim        string
	fn           TenantFunc
	allowed      map[string]struct{}
	allowMissing bool
	narrow       Narrowing
	onError      func(*http.Request, *Error)
}

// New checks cfg and returns a Resolver. Mistakes are errors wrapping
// ErrConfig that name the field.
func New(cfg Config) (*Resolver, error) {
	if cfg.Claim != "" && cfg.Func != nil {
		return nil, fmt.Errorf("%w: Config.Claim and Config.Func are mutually exclusive", ErrConfig)
	}
	r := &Resolver{
		claim:        cfg.Claim,
		fn:           cfg.Func,
		allowMissing: cfg.AllowMissingTenant,
		narrow:       cfg.Narrowing,
		onError:      cfg.OnError,
	}
	if r.fn == nil && r.claim == "" {
		r.claim = ClaimTenantID
	}
	if r.fn == nil {
		if err := checkClaimPath(r.claim); err != nil {
			return nil, fmt.Errorf("%w: Config.Claim %w", ErrConfig, err)
		}
	}
	if len(cfg.Allowed) > 0 {
		r.allowed = make(map[string]struct{}, len(cfg.Allowed))
		for i, id := range cfg.Allowed {
			if err := ValidateID(id); err != nil {
				return nil, fmt.Errorf("%w: Config.Allowed[%d]: %w", ErrConfig, i, err)
			}
			r.allowed[id] = struct{}{}
		}
	}
	n := cfg.Narrowing
	switch {
	case n.Header == "" && (n.Trusted != nil || n.Claim != ""):
		return nil, fmt.Errorf("%w: Config.Narrowing.Header is required when Trusted or Claim is set", ErrConfig)
	case n.Header != "" && n.Trusted == nil:
		return nil, fmt.Errorf("%w: Config.Narrowing.Trusted is required when Header is set", ErrConfig)
	case n.Header != "" && !isToken(n.Header):
		return nil, fmt.Errorf("%w: Config.Narrowing.Header is not a valid header name", ErrConfig)
	case n.Header != "" && isReservedHeader(n.Header):
		return nil, fmt.Errorf("%w: Config.Narrowing.Header must not be a credential or hop-by-hop header", ErrConfig)
	}
	if n.Claim != "" {
		if err := checkClaimPath(n.Claim); err != nil {
			return nil, fmt.Errorf("%w: Config.Narrowing.Claim %w", ErrConfig, err)
		}
	}
	r.narrow.Header = http.CanonicalHeaderKey(n.Header)
	return r, nil
}

func checkClaimPath(p string) error {
	switch {
	case len(p) > maxClaimPath:
		return fmt.Errorf("is longer than %d bytes", maxClaimPath)
	case strings.TrimSpace(p) != p:
		return errors.New("has leading or trailing white space")
	}
	for i := 0; i < len(p); i++ {
		if p[i] < 0x20 || p[i] == 0x7f {
			return errors.New("contains a control character")
		}
	}
	return nil
}

// isToken reports whether s is an RFC 9110 §5.6.2 token (a valid field name).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isAlnum(c) || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0 {
			continue
		}
		return false
	}
	return true
}

func isReservedHeader(name string) bool {
	switch http.CanonicalHeaderKey(name) {
	case "Authorization", "Proxy-Authorization", "Cookie", "Host", "Connection",
		"Content-Length", "Transfer-Encoding", "Mcp-Session-Id":
		return true
	}
	return false
}

// Resolve returns the tenant of the verified principal p: the configured
// claim or Func result, checked by ValidateID and the allow-list. It knows
// nothing of HTTP and never reads a header.
//
// With AllowMissingTenant it returns ("", nil) for a principal that names
// no tenant. Errors are *Error values wrapping a sentinel: ErrNoPrincipal
// (p is nil), ErrNoTenant, ErrInvalidTenant or ErrTenantNotAllowed.
func (r *Resolver) Resolve(p *auth.Principal) (string, error) {
	if p == nil {
		return "", errNoPrincipal()
	}
	tenant, err := r.fromPrincipal(p)
	if err != nil {
		return "", err
	}
	if tenant == "" {
		if r.allowMissing {
			return "", nil
		}
		return "", errTenantRequired(ErrNoTenant)
	}
	if err := r.checkAllowed(tenant); err != nil {
		return "", err
	}
	return tenant, nil
}

// fromPrincipal returns the validated tenant, "" when the principal names
// none, or an *Error.
func (r *Resolver) fromPrincipal(p *auth.Principal) (string, error) {
	if r.fn != nil {
		tenant, err := r.fn(p)
		if err != nil {
			if !classified(err) {
				err = fmt.Errorf("%w: TenantFunc: %w", ErrNoTenant, err)
			}
			return "", asError(err)
		}
		if tenant == "" {
			return "", nil
		}
		if err := ValidateID(tenant); err != nil {
			return "", errInvalidTenant(fmt.Errorf("TenantFunc result: %w", err))
		}
		return tenant, nil
	}
	claim := r.claim
	if claim == "" {
		claim = ClaimTenantID
	}
	v, ok := p.Claims.Get(claim)
	if !ok || v == nil {
		return "", nil
	}
	tenant, ok := v.(string)
	if !ok {
		return "", errInvalidTenant(fmt.Errorf("%w: claim %q is not a string", ErrInvalidTenant, claim))
	}
	if tenant == "" {
		return "", nil
	}
	if err := ValidateID(tenant); err != nil {
		return "", errInvalidTenant(fmt.Errorf("claim %q: %w", claim, err))
	}
	return tenant, nil
}

func (r *Resolver) checkAllowed(tenant string) error {
	if r.allowed == nil {
		return nil
	}
	if _, ok := r.allowed[tenant]; !ok {
		return errNotAllowed()
	}
	return nil
}

// Narrow returns requested as the tenant of a call made by the verified
// principal p, when Config.Narrowing permits it: narrowing is configured,
// p.Actor is set and Narrowing.Trusted approves it, requested passes
// ValidateID, the verified claims grant it (it equals the resolved tenant or
// is listed in Narrowing.Claim) and the allow-list admits it.
//
// requested typically comes from Narrowing.Header; Handler calls Narrow only
// when that header is present. Errors are *Error values wrapping
// ErrNoPrincipal, ErrNarrowingRefused, ErrInvalidTenant or
// ErrTenantNotAllowed.
func (r *Resolver) Narrow(p *auth.Principal, requested string) (string, error) {
	if p == nil {
		return "", errNoPrincipal()
	}
	if r.narrow.Header == "" || r.narrow.Trusted == nil {
		return "", errNarrowingRefused(fmt.Errorf("%w: narrowing is not configured", ErrNarrowingRefused))
	}
	if p.Actor == nil {
		return "", errNarrowingRefused(fmt.Errorf("%w: the caller is not acting for another principal", ErrNarrowingRefused))
	}
	if !r.narrow.Trusted(p.Actor) {
		return "", errNarrowingRefused(fmt.Errorf("%w: the acting service is not trusted to narrow", ErrNarrowingRefused))
	}
	if err := ValidateID(requested); err != nil {
		return "", errInvalidRequested(fmt.Errorf("narrowing header: %w", err))
	}
	base, err := r.fromPrincipal(p)
	if err != nil {
		return "", err
	}
	if requested != base && !r.granted(p, requested) {
		return "", errNarrowingRefused(fmt.Errorf("%w: the verified claims do not grant the requested tenant", ErrNarrowingRefused))
	}
	if err := r.checkAllowed(requested); err != nil {
		return "", err
	}
	return requested, nil
}

func (r *Resolver) granted(p *auth.Principal, tenant string) bool {
	if r.narrow.Claim == "" {
		return false
	}
	list, ok := p.Claims.Strings(r.narrow.Claim)
	if !ok {
		return false
	}
	for _, t := range list {
		if t == tenant {
			return true
		}
	}
	return false
}
