package transport

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/mcpguard/mcpguard/internal/httpx"
	"github.com/mcpguard/mcpguard/transport/ratelimit"
)

// unauthLimiter spends the client address's budget on every request that
// fails authentication and answers 429 instead once the budget is spent.
// Requests that authenticate are not charged here: the post-auth limiter
// keys them by tenant and subject, so callers sharing an address (behind a
// NAT, or every client on loopback) keep their own budgets, and an
// unauthenticated flood from an address never locks its authenticated users
// out. Each refused request still costs its token check; a per-address
// ceiling on all traffic is Config.PreAuthRateLimit's job.
type unauthLimiter struct {
	lim *ratelimit.RequestLimit
}

// wrap puts the limiter around the authentication middleware authed.
func (u *unauthLimiter) wrap(authed http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		authed.ServeHTTP(&unauthWriter{ResponseWriter: w, lim: u.lim, r: r}, r)
	})
}

// unauthWriter sees the authentication middleware's answer: a 400 or 401
// is a failed authentication, charged to the address (a request without a
// principal is keyed by address); over budget, the answer becomes 429 with
// Retry-After and the refusal's own body is dropped.
type unauthWriter struct {
	http.ResponseWriter
	lim     *ratelimit.RequestLimit
	r       *http.Request
	decided bool
	swallow bool
}

func (w *unauthWriter) WriteHeader(status int) {
	if !w.decided {
		w.decided = true
		// Only authentication's own refusals count: they carry a Bearer or
		// DPoP challenge (a DPoP-required validator sends only the DPoP
		// one). mcp-go's 400s for an authenticated caller's bad JSON carry
		// none, and must not spend the address's budget.
		if (status == http.StatusUnauthorized || status == http.StatusBadRequest) &&
			authChallenge(w.ResponseWriter.Header()) {
			// Decide reports the refusal to audit itself (the Guard's
			// ratelimit.Reporter): kind rate_limited, this limit's namespace.
			d, err := w.lim.Decide(w.r)
			if err != nil || !d.Allowed {
				retry := d.RetryAfter
				if retry <= 0 {
					retry = time.Second
				}
				w.swallow = true
				h := w.ResponseWriter.Header()
				h.Del("WWW-Authenticate")
				h.Del("Content-Type")
				h.Set("Retry-After", strconv.FormatInt(httpx.RetryAfterSeconds(retry), 10))
				http.Error(w.ResponseWriter, "rate limit exceeded", http.StatusTooManyRequests)
				return
			}
		}
	}
	if !w.swallow {
		w.ResponseWriter.WriteHeader(status)
	}
}

func (w *unauthWriter) Write(b []byte) (int, error) {
	if !w.decided {
		w.WriteHeader(http.StatusOK)
	}
	if w.swallow {
		return len(b), nil
	}
	return w.ResponseWriter.Write(b)
}

// Flush keeps streaming responses of authenticated requests working.
func (w *unauthWriter) Flush() {
	if !w.decided {
		w.WriteHeader(http.StatusOK)
	}
	if !w.swallow {
		_ = http.NewResponseController(w.ResponseWriter).Flush()
	}
}

// Unwrap returns the underlying writer, for http.ResponseController.
func (w *unauthWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// authChallenge reports whether h carries an authentication challenge of
// the auth package's schemes, Bearer (RFC 6750) or DPoP (RFC 9449), in any
// of its WWW-Authenticate values; auth-scheme names are case-insensitive.
func authChallenge(h http.Header) bool {
	for _, v := range h.Values("WWW-Authenticate") {
		scheme, _, _ := strings.Cut(strings.TrimLeft(v, " \t"), " ")
		if strings.EqualFold(scheme, "Bearer") || strings.EqualFold(scheme, "DPoP") {
			return true
		}
	}
	return false
}
