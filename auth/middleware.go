package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
)

// MiddlewareConfig configures Middleware. The zero value is not usable:
// ResourceMetadataURL is required so that every challenge lets a client
// discover the authorization server (RFC 9728 §5.1).
type MiddlewareConfig struct {
	// ResourceMetadataURL is the absolute URL of the protected resource
	// metadata document, sent as resource_metadata in every challenge.
	// ResourceMetadataURL(resource) derives it. Required.
	ResourceMetadataURL string

	// Realm is sent as the challenge's realm when set.
	Realm string

	// RequiredScopes, when set, must all be held by the principal; a
	// principal lacking one gets 403 insufficient_scope naming them.
	RequiredScopes []string

	// ChallengeScope, when set, is sent as the challenge's scope on every
	// 401 that names no scope of its own — including the one for a request
	// with no token — so clients know which scopes to ask for (MCP
	// authorization spec, scope selection). Usually the scopes needed to
	// connect at all, such as a read scope.
	ChallengeScope []string

	// MaxTokenBytes caps the bearer token's length before any parsing.
	// Zero means DefaultMaxTokenBytes.
	MaxTokenBytes int

	// OnError, when set, is called with every rejection before the response
	// is written, for audit and logs. The *Error never contains the token.
	// It must not write to the response.
	OnError func(r *http.Request, err *Error)

	// Logger, when set, receives each rejection's cause at Debug level —
	// status, RFC 6750 code, description and the internal cause, never the
	// token — so "every token is refused" can be diagnosed from the logs.
	// Nothing is written unless the logger is enabled for Debug; when it
	// is, the write happens on the rejected request's path. Nil logs
	// nothing.
	Logger *slog.Logger

	// RejectHeaders names request headers whose mere presence makes
	// Middleware refuse the request with 400 invalid_request, before any
	// validation. Empty means {DefaultUserTokenHeader}: a server that is
	// not in dual-token mode refuses a user token sent on someone's behalf
	// instead of silently serving the caller as itself (a confused deputy;
	// see DualMiddleware). A list replaces the default, so include
	// DefaultUserTokenHeader to keep refusing it. Authorization cannot be
	// listed.
	RejectHeaders []string
}

// Middleware returns HTTP middleware that authenticates every request with v.
//
// A request with exactly one valid bearer token (RFC 6750 §2.1) reaches next
// with the Principal (NewContext) and the Credential (NewCredentialContext)
// in its context; the incoming request is not modified. Otherwise the
// response is written by WriteError: 401 with a challenge carrying
// resource_metadata (and error="invalid_token" only when a token was sent),
// 400 invalid_request for malformed and ambiguous requests (RFC 6750 §2:
// two Authorization headers, or a header credential together with an
// access_token in the query or in a form body — see formBodyToken) and for headers listed in
// RejectHeaders (by default a dual-token user token), 403 insufficient_scope when
// RequiredScopes are missing, and 503 when v reports ErrUnavailable.
//
// The returned middleware is safe for concurrent use.
func Middleware(v Validator, cfg MiddlewareConfig) (func(http.Handler) http.Handler, error) {
	if v == nil {
		return nil, fmt.Errorf("%w: Middleware: validator is nil", ErrConfig)
	}
	reject, err := cfg.check(true)
	if err != nil {
		return nil, err
	}
	mode, algs := DPoPDisabled, []string(nil)
	if dv, ok := v.(DPoPValidator); ok {
		mode, algs = dv.DPoPMode(), dv.DPoPAlgorithms()
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var dreq *dpopRequest
			if mode != DPoPDisabled {
				dreq = &dpopRequest{Method: r.Method, Path: r.URL.EscapedPath(), mode: mode, algs: algs}
			}
			fail := func(e *Error) { cfg.reject(w, r, e, dreq) }
			if e := refusedHeader(r, reject); e != nil {
				fail(e)
				return
			}
			raw, isDPoP, err := accessToken(r, cfg.MaxTokenBytes, mode != DPoPDisabled)
			if err != nil {
				fail(AsError(err))
				return
			}
			var e *Error
			if r, e = refuseFormToken(r); e != nil {
				fail(e)
				return
			}
			// The credential, hashed once, is in the context from here on, so
			// validators' caches (keyFor) and obo reuse its digest.
			rc := newRequestContext(r.Context(), raw)
			var ctx context.Context = rc
			if dreq != nil {
				dreq.DPoP = isDPoP
				dreq.Proofs = r.Header.Values("DPoP")
				ctx = newDPoPRequestContext(ctx, dreq)
			}
			p, err := v.Validate(ctx, raw)
			if err == nil && p == nil {
				err = InvalidToken("the access token is invalid", errors.New("validator returned no principal"))
			}
			if err != nil {
				fail(AsError(err))
				return
			}
			if missing := missingScopes(p, cfg.RequiredScopes); len(missing) > 0 {
				fail(InsufficientScope(missing...))
				return
			}
			if dreq != nil && dreq.nonce != "" {
				w.Header().Set("DPoP-Nonce", dreq.nonce) // RFC 9449 §8.2: the next nonce
			}
			rc.p = p
			next.ServeHTTP(w, r.WithContext(ctx))
		})
	}, nil
}

// check validates the fields Middleware and DualMiddleware share, clones
// the slices the returned middleware keeps, and returns the canonical
// RejectHeaders list (the default list when useDefault and none is set).
func (cfg *MiddlewareConfig) check(useDefault bool) ([]string, error) {
	if err := checkAbsoluteURL(cfg.ResourceMetadataURL); err != nil {
		return nil, fmt.Errorf("%w: MiddlewareConfig.ResourceMetadataURL: %v", ErrConfig, err)
	}
	if cfg.MaxTokenBytes < 0 {
		return nil, fmt.Errorf("%w: MiddlewareConfig.MaxTokenBytes must not be negative", ErrConfig)
	}
	cfg.RequiredScopes = slices.Clone(cfg.RequiredScopes)
	cfg.ChallengeScope = slices.Clone(cfg.ChallengeScope)
	return rejectList(cfg.RejectHeaders, useDefault)
}

// reject is the one rejection path of Middleware and DualMiddleware: it
// logs e's cause (Logger), reports e (OnError), sets the next DPoP nonce
// when dreq carries one, and writes the client-safe answer.
func (cfg *MiddlewareConfig) reject(w http.ResponseWriter, r *http.Request, e *Error, dreq *dpopRequest) {
	logRejection(r, cfg.Logger, e)
	if cfg.OnError != nil {
		cfg.OnError(r, e)
	}
	if dreq != nil && dreq.nonce != "" {
		w.Header().Set("DPoP-Nonce", dreq.nonce)
	}
	writeError(w, cfg.ResourceMetadataURL, cfg.Realm, cfg.ChallengeScope, e, dreq)
}

// refuseFormToken is called once r is known to carry a credential in its
// Authorization header: an access_token in an
// application/x-www-form-urlencoded body too makes the request ambiguous
// (RFC 6750 §2: clients MUST NOT use more than one method), answered 400
// invalid_request. The body is read only for that content type and at
// most 64 KiB (formBodyToken); when it was read, the returned request is
// a copy of r whose body replays it, else r itself.
func refuseFormToken(r *http.Request) (*http.Request, *Error) {
	found, body, err := formBodyToken(r)
	if body != nil {
		r = r.WithContext(r.Context())
		r.Body = body
	}
	switch {
	case err != nil:
		return r, AsError(err)
	case found:
		return r, AsError(fmt.Errorf("%w: access token both in the Authorization header and in the form body", ErrMalformedRequest))
	}
	return r, nil
}

func missingScopes(p *Principal, required []string) []string {
	var missing []string
	for _, s := range required {
		if !p.HasScope(s) {
			missing = append(missing, s)
		}
	}
	return missing
}

// WriteError writes the response for a failed authentication or
// authorization: the status of AsError(err), a WWW-Authenticate challenge
// (RFC 6750 §3) carrying resource_metadata for 400, 401 and 403, and a small
// JSON body {"error":…,"error_description":…} whose text comes from the
// fixed table of *Error descriptions, never from the cause. A 503 carries
// Retry-After instead of a challenge. This is the one function that renders
// challenges; other packages (authz step-up, tenancy) call it too.
//
// WriteError knows nothing of the request: behind a DPoP-aware Middleware
// use WriteErrorFor, which also sends the DPoP challenge.
func WriteError(w http.ResponseWriter, resourceMetadataURL string, err error) {
	writeError(w, resourceMetadataURL, "", nil, AsError(err), nil)
}

// WriteErrorFor is WriteError for a request that went through Middleware:
// when the validator accepts DPoP, the challenges are those Middleware
// sends (RFC 9449 §7.1): a DPoP challenge with algs, beside the Bearer one
// in DPoPAllowed mode, the error on the challenge of the scheme the
// request used.
func WriteErrorFor(w http.ResponseWriter, r *http.Request, resourceMetadataURL string, err error) {
	var dreq *dpopRequest
	if r != nil {
		dreq, _ = dpopRequestFromContext(r.Context())
	}
	writeError(w, resourceMetadataURL, "", nil, AsError(err), dreq)
}

func writeError(w http.ResponseWriter, resourceMetadataURL, realm string, scopeHint []string, e *Error, dreq *dpopRequest) {
	if e == nil {
		e = InvalidToken("the access token is invalid", ErrInvalidToken)
	}
	status := e.Status
	if status == 0 {
		status = http.StatusUnauthorized
	}
	h := w.Header()
	switch status {
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusBadRequest:
		c := ChallengeFor(resourceMetadataURL, e)
		c.Realm = realm
		if status == http.StatusUnauthorized && len(c.Scope) == 0 && len(scopeHint) > 0 {
			c.Scope, c.ScopeAlways = scopeHint, true
		}
		if dreq == nil || dreq.mode == DPoPDisabled {
			h.Set("WWW-Authenticate", c.String())
			break
		}
		// The error goes on the challenge of the scheme the client used; a
		// proof error, or any error in DPoPRequired mode, on DPoP's.
		onDPoP := dreq.DPoP || dreq.mode == DPoPRequired ||
			e.Code == CodeInvalidDPoPProof || e.Code == CodeUseDPoPNonce
		d := c
		d.DPoP, d.Algs = true, dreq.algs
		h.Del("WWW-Authenticate")
		if dreq.mode == DPoPAllowed {
			b := c
			if onDPoP {
				b.Error, b.Description = "", ""
			}
			h.Add("WWW-Authenticate", b.String())
		}
		if !onDPoP {
			d.Error, d.Description = "", ""
		}
		h.Add("WWW-Authenticate", d.String())
	case http.StatusServiceUnavailable:
		h.Set("Retry-After", "5")
	}
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	code := e.Code
	if code == "" {
		code = "unauthorized"
		if status == http.StatusServiceUnavailable {
			code = "temporarily_unavailable"
		}
	}
	body := `{"error":` + strconv.Quote(sanitizeParam(code, true)) +
		`,"error_description":` + strconv.Quote(sanitizeParam(e.Description, false)) + "}\n"
	_, _ = w.Write([]byte(body))
}

func checkAbsoluteURL(s string) error {
	if s == "" {
		return errors.New("required")
	}
	u, err := url.Parse(s)
	if err != nil {
		return errors.New("not a URL")
	}
	if !u.IsAbs() || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return errors.New("must be an absolute http(s) URL")
	}
	if u.Fragment != "" || u.User != nil {
		return errors.New("must not contain a fragment or user info")
	}
	return nil
}

// logRejection logs e at Debug level on logger (nil: nowhere). The *Error's
// fields never hold the credential.
func logRejection(r *http.Request, logger *slog.Logger, e *Error) {
	if logger == nil || !logger.Enabled(r.Context(), slog.LevelDebug) {
		return
	}
	attrs := []slog.Attr{slog.Int("status", e.Status), slog.String("description", e.Description)}
	if e.Code != "" {
		attrs = append(attrs, slog.String("error", e.Code))
	}
	if e.Err != nil {
		attrs = append(attrs, slog.String("cause", e.Err.Error()))
	}
	logger.LogAttrs(r.Context(), slog.LevelDebug, "auth: request refused", attrs...)
}
