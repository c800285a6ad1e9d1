package obo

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/internal/pct"
)

// Transport is an http.RoundTripper that calls a downstream API as the
// current user: for each request it takes the user's credential from the
// request's context, obtains a token for its Target from the Exchanger
// (cached, shared among concurrent callers), and sends a clone of the
// request with "Authorization: Bearer <exchanged token>" — or, for a
// DPoP-bound token (Config.DPoPKey), "Authorization: DPoP <token>" and a
// fresh DPoP proof for the request's method and URL, retried once with the
// server's nonce when it answers use_dpop_nonce and the body can be sent
// again (GetBody). The original request is never modified.
//
// A request whose context has no user credential fails with ErrNoCredential
// and nothing is sent (for a ClientCredentials target none is needed). A
// request that carries the inbound token (the context's credential, for
// any target) anywhere in its headers or URL fails with ErrPassthrough;
// any Authorization header it had is replaced.
//
// Build it with Exchanger.Transport; the zero value is not usable. A
// Transport is safe for concurrent use.
type Transport struct {
	ex   *Exchanger
	t    *target
	base http.RoundTripper
}

// Transport returns a Transport for t that sends through base (nil means
// http.DefaultTransport). Use it in an http.Client; Exchanger.Client also
// refuses cross-origin redirects, which Transport alone cannot do.
func (e *Exchanger) Transport(t Target, base http.RoundTripper) (*Transport, error) {
	ct, err := compileTarget(t)
	if err != nil {
		return nil, err
	}
	if base == nil {
		base = http.DefaultTransport
	}
	return &Transport{ex: e, t: ct, base: base}, nil
}

// RoundTrip implements http.RoundTripper.
func (tr *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if tr == nil || tr.ex == nil {
		closeBody(req)
		return nil, fmt.Errorf("%w: obo.Transport: use Exchanger.Transport", ErrConfig)
	}
	ctx := req.Context()
	// Whatever the flavor: a ClientCredentials request made while serving a
	// user must not carry that user's token either.
	if cred, ok := auth.CredentialFromContext(ctx); ok && len(cred.Reveal()) >= minPassthroughCheck && carries(req, cred.Reveal()) {
		closeBody(req)
		err := &Error{Flavor: tr.t.Flavor, Err: ErrPassthrough}
		tr.ex.emit(ctx, tr.t, time.Time{}, false, false, err) // a failure that sent nothing (Auditor)
		return nil, err
	}
	tok, err := tr.ex.token(ctx, tr.t)
	if err != nil {
		closeBody(req)
		return nil, err
	}
	d := tr.ex.dpop
	if tok.TokenType != "DPoP" || d == nil {
		r2 := req.Clone(ctx)
		tok.SetAuthHeader(r2)
		return tr.base.RoundTrip(r2)
	}
	// A DPoP-bound token: the DPoP scheme and a fresh proof for this
	// request (RFC 9449 §7.1), once more with the server's nonce when it
	// asks for one (§9) and the body can be sent again.
	for attempt := 0; ; attempt++ {
		r2 := req.Clone(ctx)
		if attempt > 0 && req.Body != nil && req.Body != http.NoBody {
			if r2.Body, err = req.GetBody(); err != nil {
				return nil, fmt.Errorf("%w: obo.Transport: re-reading the body for the DPoP nonce retry: %w", ErrUnavailable, err)
			}
		}
		proof, err := d.proof(r2.Method, r2.URL, tok.AccessToken.Reveal())
		if err != nil {
			closeBody(r2)
			return nil, fmt.Errorf("%w: signing the DPoP proof: %w", ErrConfig, err)
		}
		tok.SetAuthHeader(r2)
		r2.Header.Set("DPoP", proof)
		resp, err := tr.base.RoundTrip(r2)
		if err != nil {
			return nil, err
		}
		changed := d.observe(r2.URL, resp.Header)
		if attempt > 0 || !changed || !isNonceChallenge(resp) || (req.Body != nil && req.Body != http.NoBody && req.GetBody == nil) {
			return resp, nil
		}
		_ = resp.Body.Close()
	}
}

// minPassthroughCheck is the shortest inbound token looked for in outgoing
// requests; shorter strings would match by chance (real tokens are far longer).
const minPassthroughCheck = 16

// carries reports whether raw appears in the URL (the path decoded, the
// query as sent or percent-decoded) or in any header of req other than
// Authorization (which RoundTrip replaces).
func carries(req *http.Request, raw string) bool {
	if req.URL != nil && (strings.Contains(req.URL.RawQuery, raw) || strings.Contains(req.URL.Path, raw) ||
		strings.Contains(percentDecoded(req.URL.RawQuery), raw)) {
		return true
	}
	for name, values := range req.Header {
		if name == "Authorization" {
			continue
		}
		for _, v := range values {
			if strings.Contains(v, raw) {
				return true
			}
		}
	}
	return false
}

// percentDecoded returns s with every valid %XX triplet decoded, as a
// lenient server would read a query built with url.Values or PathEscape,
// whatever the case of the hex digits and whatever malformed escapes beside
// them; the rest, "+" included, is kept as it is (a token has no space).
// It allocates only when s holds a '%'.
func percentDecoded(s string) string {
	i := strings.IndexByte(s, '%')
	if i < 0 {
		return s
	}
	b := make([]byte, 0, len(s))
	b = append(b, s[:i]...)
	for ; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && pct.IsHex(s[i+1]) && pct.IsHex(s[i+2]) {
			b = append(b, pct.Unhex(s[i+1])<<4|pct.Unhex(s[i+2]))
			i += 2
			continue
		}
		b = append(b, s[i])
	}
	return string(b)
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		_ = req.Body.Close()
	}
}

// Client returns an *http.Client whose Transport is Exchanger.Transport(t,
// base) and which follows a redirect only within the origin (scheme and
// host) of the original request, at most 10 times: the exchanged token is
// for this downstream alone. It sets no Timeout; use a context deadline.
func (e *Exchanger) Client(t Target, base http.RoundTripper) (*http.Client, error) {
	tr, err := e.Transport(t, base)
	if err != nil {
		return nil, err
	}
	return &http.Client{Transport: tr, CheckRedirect: sameOrigin}, nil
}

var errCrossOrigin = errors.New("obo: refusing to follow a redirect to another origin with an exchanged token")

func sameOrigin(req *http.Request, via []*http.Request) error {
	if len(via) >= 10 {
		return errors.New("obo: stopped after 10 redirects")
	}
	first := via[0].URL
	if !strings.EqualFold(req.URL.Scheme, first.Scheme) || !strings.EqualFold(req.URL.Host, first.Host) {
		return errCrossOrigin
	}
	return nil
}

// TokenSource returns an oauth2.TokenSource for t bound to ctx: every Token
// call exchanges (or finds in the cache) a token for the credential in ctx,
// failing with ErrNoCredential when there is none. It is meant for one
// request's lifetime, since it holds ctx; the caching happens in the
// Exchanger, so do not wrap it in oauth2.ReuseTokenSource. The returned
// *oauth2.Token prints its secret: do not log it.
func (e *Exchanger) TokenSource(ctx context.Context, t Target) (oauth2.TokenSource, error) {
	ct, err := compileTarget(t)
	if err != nil {
		return nil, err
	}
	return &tokenSource{ctx: ctx, ex: e, t: ct}, nil
}

type tokenSource struct {
	ctx context.Context
	ex  *Exchanger
	t   *target
}

func (s *tokenSource) Token() (*oauth2.Token, error) {
	tok, err := s.ex.token(s.ctx, s.t)
	if err != nil {
		return nil, err
	}
	return tok.OAuth2(), nil
}
