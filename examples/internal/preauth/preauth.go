// Package preauth limits failed authentications per client address, for
// transport.Config.PreAuthRateLimit.
//
// Before authentication the only thing known about a caller is its
// address, so that is what an anonymous or forged-token flood is charged
// to. Charging every request to its address would also make all the users
// behind one address (a NAT, an office, a test machine) share one budget;
// instead only failed authentications are charged here, and callers that
// authenticate are limited afterwards by tenant and subject.
package preauth

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/mcpguard/mcpguard/audit"
	"github.com/mcpguard/mcpguard/transport/ratelimit"
)

// Limit returns middleware to run just outside authentication. Each
// request the authentication layer refuses (401, or 400 with a Bearer
// challenge) spends one event of byAddress, which should be keyed by
// ratelimit.Address; once the address's budget is spent, such refusals are
// answered 429 with Retry-After instead (503 if the limiter fails).
// Requests that authenticate pass through uncharged.
func Limit(byAddress *ratelimit.Middleware) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			next.ServeHTTP(&writer{ResponseWriter: w, r: r, m: byAddress}, r)
		})
	}
}

// writer decides, when the status is written, whether the response is an
// authentication failure to charge, and replaces it when over budget.
type writer struct {
	http.ResponseWriter
	r         *http.Request
	m         *ratelimit.Middleware
	wrote     bool
	swallowed bool
}

func (w *writer) WriteHeader(status int) {
	if w.wrote {
		return
	}
	w.wrote = true
	if authFailure(status, w.Header()) {
		d, err := w.m.Check(w.r)
		if err != nil || !d.Allowed {
			w.refuse(d, err)
			return
		}
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *writer) refuse(d ratelimit.Decision, err error) {
	status, text := http.StatusTooManyRequests, "rate limit exceeded\n"
	if err != nil {
		status, text = http.StatusServiceUnavailable, "rate limiter unavailable\n"
	}
	audit.Annotate(w.r.Context(), audit.KindRateLimited, "auth_failures_limited")
	h := w.Header()
	h.Del("WWW-Authenticate")
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Retry-After", strconv.FormatInt(ratelimit.RetryAfterSeconds(d.RetryAfter), 10))
	w.ResponseWriter.WriteHeader(status)
	_, _ = w.ResponseWriter.Write([]byte(text))
	w.swallowed = true
}

func (w *writer) Write(p []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	if w.swallowed {
		return len(p), nil
	}
	return w.ResponseWriter.Write(p)
}

// Flush keeps streaming (SSE) working through the wrapper.
func (w *writer) Flush() {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *writer) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// authFailure reports whether a response is the authentication layer's
// refusal: 401, or 400 invalid_request with a Bearer challenge (RFC 6750
// §3.1).
func authFailure(status int, h http.Header) bool {
	switch status {
	case http.StatusUnauthorized:
		return true
	case http.StatusBadRequest:
		return strings.HasPrefix(h.Get("WWW-Authenticate"), "Bearer")
	}
	return false
}
