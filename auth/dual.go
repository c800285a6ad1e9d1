package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/mcpguard/mcpguard/internal/oauthsyntax"
)

// DefaultUserTokenHeader is the request header that carries the user's
// token in dual-token mode when DualConfig.Header is empty. Middleware
// refuses it by default (see MiddlewareConfig.RejectHeaders).
const DefaultUserTokenHeader = "X-User-Token"

// Client-safe descriptions of dual-token rejections.
const (
	descUserHeaderRefused   = "the request carries a header this server refuses (a user token while dual-token mode is off)"
	descUserTokenMalformed  = "the user-token header is malformed"
	descUserTokenTwice      = "the user-token header must appear once"
	descUserNeedsService    = "a user token requires a service token in the Authorization header"
	descUserTokenRequired   = "a user token is required with the service token"
	descSameToken           = "the service token and the user token must differ"
	descServiceNotAllowed   = "the calling service is not allowed to act on behalf of users"
	descUserIssuer          = "the user token's issuer is not accepted for this service"
	descNestedActor         = "the user token already acts for someone else"
	prefixServiceToken      = "service token: "
	prefixUserToken         = "user token: "
	maxDualAllowListEntries = 10_000
)

// DualConfig configures a DualValidator: a trusted backend service calls
// on behalf of its user, presenting its own token in Authorization and the
// user's token in Header.
type DualConfig struct {
	// Service validates the calling service's token (the Authorization
	// bearer token), for instance a *JWTValidator whose audience is this
	// server. Required.
	Service Validator
	// User validates the user's token, with its own issuer and audience
	// rules. Required; it may be the same validator as Service.
	User Validator
	// ServiceClientIDs is the allow-list of services that may act for
	// users: the service principal's ClientID must be one of them.
	// Required.
	ServiceClientIDs []string
	// UserIssuers are the issuers whose user tokens any allowed service
	// may present (Principal.Issuer, compared exactly).
	UserIssuers []string
	// ServiceUserIssuers restricts, per service client ID, the issuers of
	// the user tokens that service may present; an entry replaces
	// UserIssuers for that service. Every allowed service must end up with
	// at least one issuer.
	ServiceUserIssuers map[string][]string
	// Header is the request header carrying the user token, with or
	// without a "Bearer " prefix. Empty means DefaultUserTokenHeader. It
	// must not be a credential or hop-by-hop header.
	Header string
	// Direct, when set, validates requests that carry no user-token
	// header (a user calling directly, or a service acting as itself), as
	// Middleware would. Nil refuses them: every request must then come
	// from an allowed service with a user token. When Direct and Service
	// are different validators that both check DPoP proofs, they must
	// record them in one DPoPConfig.Replay store, or a proof accepted on
	// one path could be replayed on the other.
	Direct Validator
}

// DualValidator validates dual-token requests: the service's token and
// the user's token are each validated by their own validator, the service
// must be allow-listed, and the user token's issuer must be one the service
// may present. The result is the user's principal with Actor set to the
// service's, as RFC 8693 §4.1's "act" claim describes: policies and audit
// see both (Principal.LogValue logs the actor).
//
// ValidatePair is the pure check; DualMiddleware is the HTTP adapter.
// Construct it with NewDualValidator. It is safe for concurrent use when
// its validators are.
type DualValidator struct {
	service, user, direct Validator
	clients               map[string][]string // allowed client ID → user issuers
	header                string
}

// NewDualValidator checks cfg and returns a validator. Mistakes are errors
// naming the field and wrapping ErrConfig.
func NewDualValidator(cfg DualConfig) (*DualValidator, error) {
	cfgErr := func(field, format string, args ...any) error {
		return fmt.Errorf("%w: DualConfig.%s: %s", ErrConfig, field, fmt.Sprintf(format, args...))
	}
	switch {
	case cfg.Service == nil:
		return nil, cfgErr("Service", "required")
	case cfg.User == nil:
		return nil, cfgErr("User", "required")
	case len(cfg.ServiceClientIDs) == 0:
		return nil, cfgErr("ServiceClientIDs", "at least one allowed service is required")
	case len(cfg.ServiceClientIDs) > maxDualAllowListEntries:
		return nil, cfgErr("ServiceClientIDs", "more than %d entries", maxDualAllowListEntries)
	}
	d := &DualValidator{
		service: cfg.Service, user: cfg.User, direct: cfg.Direct,
		clients: make(map[string][]string, len(cfg.ServiceClientIDs)),
		header:  DefaultUserTokenHeader,
	}
	for _, iss := range cfg.UserIssuers {
		if iss == "" {
			return nil, cfgErr("UserIssuers", "empty issuer")
		}
	}
	for id, list := range cfg.ServiceUserIssuers {
		if !slices.Contains(cfg.ServiceClientIDs, id) {
			return nil, cfgErr("ServiceUserIssuers", "client %q is not in ServiceClientIDs", id)
		}
		if len(list) == 0 || slices.Contains(list, "") {
			return nil, cfgErr("ServiceUserIssuers", "client %q: empty issuer list or issuer", id)
		}
	}
	for _, id := range cfg.ServiceClientIDs {
		if id == "" {
			return nil, cfgErr("ServiceClientIDs", "empty client ID")
		}
		issuers, ok := cfg.ServiceUserIssuers[id]
		if !ok {
			issuers = cfg.UserIssuers
		}
		if len(issuers) == 0 {
			return nil, cfgErr("UserIssuers", "service %q may present no user issuer (set UserIssuers or ServiceUserIssuers)", id)
		}
		d.clients[id] = slices.Clone(issuers)
	}
	if cfg.Direct != nil && !identical(cfg.Direct, cfg.Service) && !sameReplayStores(cfg.Service, cfg.Direct) {
		// The same token and proof can be sent on either path; a proof the
		// service's store remembers must not be news to the direct one.
		return nil, cfgErr("Direct", "its DPoP proofs are recorded in another replay store than Service's, so a proof accepted on one path could be replayed on the other: give both the same DPoPConfig.Replay (or use one validator)")
	}
	if cfg.Header != "" {
		if !isHeaderName(cfg.Header) {
			return nil, cfgErr("Header", "%q is not a valid header name", cfg.Header)
		}
		d.header = http.CanonicalHeaderKey(cfg.Header)
		if isCredentialHeader(d.header) {
			return nil, cfgErr("Header", "%q is a credential or hop-by-hop header", cfg.Header)
		}
	}
	return d, nil
}

// Header returns the canonical name of the user-token header.
func (d *DualValidator) Header() string { return d.header }

// ValidatePair validates a dual-token request: serviceToken (from
// Authorization) first, then its client against the allow-list, then
// userToken, then the user token's issuer against the issuers this service
// may present. It returns a copy of the user principal whose Actor is the
// service principal.
//
// Errors are *Error values. Those of the two validators keep their status
// and code (401 invalid_token, 503 for outages...) with "service token: "
// or "user token: " before the description, so the client learns which
// token failed; an unlisted service or a user token from an issuer the
// service may not present is 401 invalid_token; identical tokens are 400
// invalid_request. No error contains either token.
func (d *DualValidator) ValidatePair(ctx context.Context, serviceToken, userToken string) (*Principal, error) {
	if serviceToken == userToken {
		return nil, badRequest(descSameToken, "the service and user tokens are identical")
	}
	sp, err := d.service.Validate(ctx, serviceToken)
	if err == nil && sp == nil {
		err = InvalidToken(descMalformed, errors.New("the service validator returned no principal"))
	}
	if err != nil {
		return nil, prefixed(prefixServiceToken, err)
	}
	issuers, ok := d.clients[sp.ClientID]
	if !ok || sp.ClientID == "" {
		return nil, InvalidToken(descServiceNotAllowed, fmt.Errorf("%w: service client %s is not in the dual-token allow-list", ErrInvalidToken, quoteShort(sp.ClientID)))
	}
	uctx := ctx
	if _, ok := dpopRequestFromContext(ctx); ok {
		// The request's DPoP proof is the service's: the user token is a
		// bearer token here, so a DPoP-bound one is refused (no downgrade).
		uctx = newDPoPRequestContext(ctx, &dpopRequest{})
	}
	up, err := d.user.Validate(uctx, userToken)
	if err == nil && up == nil {
		err = InvalidToken(descMalformed, errors.New("the user validator returned no principal"))
	}
	if err != nil {
		return nil, prefixed(prefixUserToken, err)
	}
	if !slices.Contains(issuers, up.Issuer) {
		return nil, InvalidToken(descUserIssuer, fmt.Errorf("%w: service %s may not present user tokens of issuer %s", ErrInvalidToken, quoteShort(sp.ClientID), quoteShort(up.Issuer)))
	}
	if up.Actor != nil {
		return nil, InvalidToken(descNestedActor, fmt.Errorf("%w: the user principal already has an actor", ErrInvalidToken))
	}
	p := *up
	actor := *sp
	p.Actor = &actor
	return &p, nil
}

// DualMiddleware returns HTTP middleware for dual-token mode.
//
// A request carrying the user-token header (d.Header(), exactly once, its
// value a token with an optional "Bearer " prefix) must also carry the
// service's token in Authorization (RFC 6750 §2.1, parsed by BearerToken —
// or, when the Service validator accepts DPoP, a DPoP-bound token with the
// DPoP scheme and one proof, RFC 9449 §7.1, as Middleware reads it);
// ValidatePair decides. The user token is always a bearer token: the
// request's proof is the service's, so a DPoP-bound user token is refused.
// A direct call's credential is read as Middleware would for Direct. A request without the header goes to
// DualConfig.Direct, or is refused with 400 invalid_request when Direct is
// nil. A user-token header without a service token is 400
// invalid_request, never silently treated as a direct call.
//
// On success next runs with the user principal (Actor = the service) in
// the context (NewContext) and the user's credential (NewCredentialContext):
// package obo exchanges the user's token, so downstream calls are made as
// the user — the service's token is never placed in the context. On a
// direct call the Authorization token is the credential, as with
// Middleware.
//
// cfg is used as by Middleware (ResourceMetadataURL is required;
// RequiredScopes apply to the user principal), except RejectHeaders: only
// the headers it lists are refused, and it must not list the user-token
// header. Rejections are written by WriteError. The returned middleware is
// safe for concurrent use.
func DualMiddleware(d *DualValidator, cfg MiddlewareConfig) (func(http.Handler) http.Handler, error) {
	if d == nil {
		return nil, fmt.Errorf("%w: DualMiddleware: validator is nil", ErrConfig)
	}
	reject, err := cfg.check(false)
	if err != nil {
		return nil, err
	}
	if slices.Contains(reject, d.header) {
		return nil, fmt.Errorf("%w: MiddlewareConfig.RejectHeaders must not list the user-token header %s in dual-token mode", ErrConfig, d.header)
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fail := func(e *Error) { cfg.reject(w, r, e, nil) }
			if e := refusedHeader(r, reject); e != nil {
				fail(e)
				return
			}
			if len(r.Header.Values("Authorization")) > 0 || len(r.Header.Values(d.header)) > 0 {
				var e *Error
				if r, e = refuseFormToken(r); e != nil {
					fail(e)
					return
				}
			}
			p, cred, dreq, e := d.authenticate(r, cfg.MaxTokenBytes)
			if e != nil {
				cfg.reject(w, r, e, dreq)
				return
			}
			if missing := missingScopes(p, cfg.RequiredScopes); len(missing) > 0 {
				cfg.reject(w, r, InsufficientScope(missing...), dreq)
				return
			}
			if dreq != nil && dreq.nonce != "" {
				w.Header().Set("DPoP-Nonce", dreq.nonce) // RFC 9449 §8.2: the next nonce
			}
			ctx := NewCredentialContext(NewContext(r.Context(), p), NewCredential(cred))
			next.ServeHTTP(w, r.WithContext(ctx))
		})
	}, nil
}

// authenticate applies the dual-token rules to r and returns the
// principal, the credential to place in the context and, when the
// validator of the Authorization credential accepts DPoP, the DPoP request
// (for its challenges and nonce).
func (d *DualValidator) authenticate(r *http.Request, maxBytes int) (*Principal, string, *dpopRequest, *Error) {
	values := r.Header.Values(d.header)
	if len(values) == 0 {
		if d.direct == nil {
			_, _, dreq, err := authorization(r, maxBytes, d.service)
			if errors.Is(err, ErrNoCredential) {
				return nil, "", dreq, AsError(err)
			}
			return nil, "", dreq, badRequest(descUserTokenRequired, "no user-token header and direct calls are not accepted")
		}
		raw, ctx, dreq, err := authorization(r, maxBytes, d.direct)
		if err != nil {
			return nil, "", dreq, AsError(err)
		}
		p, err := d.direct.Validate(ctx, raw)
		if err == nil && p == nil {
			err = InvalidToken(descMalformed, errors.New("the direct validator returned no principal"))
		}
		if err != nil {
			return nil, "", dreq, AsError(err)
		}
		return p, raw, dreq, nil
	}
	if len(values) > 1 {
		return nil, "", nil, badRequest(descUserTokenTwice, "more than one user-token header")
	}
	user, err := parseUserToken(values[0], maxBytes)
	if err != nil {
		return nil, "", nil, &Error{Code: CodeInvalidRequest, Status: http.StatusBadRequest, Description: descUserTokenMalformed, Err: err}
	}
	service, ctx, dreq, err := authorization(r, maxBytes, d.service)
	switch {
	case errors.Is(err, ErrNoCredential):
		return nil, "", dreq, badRequest(descUserNeedsService, "a user-token header arrived without a service token")
	case err != nil:
		return nil, "", dreq, AsError(err)
	}
	p, err := d.ValidatePair(ctx, service, user)
	if err != nil {
		return nil, "", dreq, AsError(err)
	}
	return p, user, dreq, nil
}

// authorization reads r's Authorization credential for validator v: a
// Bearer token, or also a DPoP-bound one when v accepts DPoP, in which case
// the returned context carries the DPoP request (RFC 9449 §7.1) that v
// checks the proof against.
func authorization(r *http.Request, maxBytes int, v Validator) (string, context.Context, *dpopRequest, error) {
	dv, ok := v.(DPoPValidator)
	if !ok || dv.DPoPMode() == DPoPDisabled {
		raw, err := BearerToken(r, maxBytes)
		return raw, r.Context(), nil, err
	}
	dreq := &dpopRequest{Method: r.Method, Path: r.URL.EscapedPath(), mode: dv.DPoPMode(), algs: dv.DPoPAlgorithms()}
	raw, isDPoP, err := accessToken(r, maxBytes, true)
	if err != nil {
		return "", r.Context(), dreq, err
	}
	dreq.DPoP, dreq.Proofs = isDPoP, r.Header.Values("DPoP")
	return raw, newDPoPRequestContext(r.Context(), dreq), dreq, nil
}

// parseUserToken parses the value of the user-token header of dual-token
// mode: a token, optionally preceded by the "Bearer" scheme (any case) and
// spaces, as in an Authorization header. The token must be an RFC 6750
// §2.1 b64token of at most maxBytes bytes (DefaultMaxTokenBytes when
// maxBytes <= 0). Errors wrap ErrMalformedRequest and never contain the
// value.
func parseUserToken(value string, maxBytes int) (string, error) {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxTokenBytes
	}
	const scheme = "bearer "
	if len(value) >= len(scheme) && asciiEqualFold(value[:len(scheme)], scheme) {
		tok, err := parseAuthorization(value, maxBytes)
		if errors.Is(err, ErrInvalidToken) {
			// Only the Authorization header's over-long token is an
			// invalid_token answer; this header's stays malformed.
			return "", fmt.Errorf("%w: user token longer than %d bytes", ErrMalformedRequest, maxBytes)
		}
		return tok, err
	}
	switch {
	case value == "":
		return "", fmt.Errorf("%w: empty user token", ErrMalformedRequest)
	case len(value) > maxBytes:
		return "", fmt.Errorf("%w: user token longer than %d bytes", ErrMalformedRequest, maxBytes)
	case !oauthsyntax.IsB64Token(value):
		return "", fmt.Errorf("%w: user token has characters outside the RFC 6750 b64token set", ErrMalformedRequest)
	}
	return value, nil
}

// rejectList canonicalises the names of MiddlewareConfig.RejectHeaders.
// With useDefault, an empty list means {DefaultUserTokenHeader}.
func rejectList(names []string, useDefault bool) ([]string, error) {
	if len(names) == 0 {
		if useDefault {
			return []string{DefaultUserTokenHeader}, nil
		}
		return nil, nil
	}
	out := make([]string, 0, len(names))
	for _, n := range names {
		if !isHeaderName(n) {
			return nil, fmt.Errorf("%w: MiddlewareConfig.RejectHeaders: %q is not a valid header name", ErrConfig, n)
		}
		c := http.CanonicalHeaderKey(n)
		if c == "Authorization" {
			return nil, fmt.Errorf("%w: MiddlewareConfig.RejectHeaders must not list Authorization", ErrConfig)
		}
		out = append(out, c)
	}
	return out, nil
}

// refusedHeader returns a 400 invalid_request *Error when r carries one of
// the canonical header names in reject.
func refusedHeader(r *http.Request, reject []string) *Error {
	for _, name := range reject {
		if _, ok := r.Header[name]; ok {
			return badRequest(descUserHeaderRefused, "header "+name+" is refused here")
		}
	}
	return nil
}

func badRequest(description, cause string) *Error {
	return &Error{Code: CodeInvalidRequest, Status: http.StatusBadRequest, Description: description,
		Err: fmt.Errorf("%w: %s", ErrMalformedRequest, cause)}
}

// prefixed keeps the class of err (status, code, scope) and says which
// token of the pair failed. Both parts of the description come from fixed
// tables.
func prefixed(which string, err error) *Error {
	e := AsError(err)
	return &Error{
		Code: e.Code, Status: e.Status, Description: which + e.Description, Scope: e.Scope,
		Err: fmt.Errorf("%s%w", which, e),
	}
}

// isHeaderName reports whether s is an RFC 9110 §5.1 field name (a token).
func isHeaderName(s string) bool {
	if s == "" || len(s) > 256 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9') || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0 {
			continue
		}
		return false
	}
	return true
}

func isCredentialHeader(canonical string) bool {
	switch canonical {
	case "Authorization", "Proxy-Authorization", "Cookie", "Host", "Connection",
		"Content-Length", "Transfer-Encoding", "Te", "Upgrade", "Mcp-Session-Id":
		return true
	}
	return false
}

// replayHolder is implemented by the validators of this package that check
// DPoP proofs: the replay stores their proofs are recorded in (none when
// DPoP is disabled).
type replayHolder interface {
	replayStores() []ReplayStore
}

func (v *JWTValidator) replayStores() []ReplayStore           { return v.dpop.replayStores() }
func (v *IntrospectionValidator) replayStores() []ReplayStore { return v.dpop.replayStores() }

// replayStores are those of the chain's validators.
func (c *ChainValidator) replayStores() []ReplayStore {
	var out []ReplayStore
	for _, v := range [...]Validator{c.jwt, c.opaque} {
		if h, ok := v.(replayHolder); ok {
			out = append(out, h.replayStores()...)
		}
	}
	return out
}

// sameReplayStores reports whether a and b, the two validators of one
// request's Authorization credential, cannot disagree on whether a proof
// was seen: at most one of them checks proofs, or every store of each is a
// store of the other. A validator of another package that accepts DPoP
// cannot show its store and so never passes.
func sameReplayStores(a, b Validator) bool {
	stores := func(v Validator) (s []ReplayStore, known bool) {
		dv, ok := v.(DPoPValidator)
		if !ok || dv.DPoPMode() == DPoPDisabled {
			return nil, true
		}
		h, ok := v.(replayHolder)
		if !ok {
			return nil, false
		}
		return h.replayStores(), true
	}
	sa, ka := stores(a)
	sb, kb := stores(b)
	switch {
	case len(sa) == 0 && ka || len(sb) == 0 && kb:
		return true
	case !ka || !kb:
		return false
	}
	covers := func(x, y []ReplayStore) bool {
		for _, s := range x {
			if !slices.ContainsFunc(y, func(t ReplayStore) bool { return identical(s, t) }) {
				return false
			}
		}
		return true
	}
	return covers(sa, sb) && covers(sb, sa)
}
