package transport

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"

	"github.com/mcpguard/mcpguard/audit"
	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/internal/loopback"
	"github.com/mcpguard/mcpguard/tenancy"
)

// DevIdentity is the fixed caller injected in ModeDev: no token is read.
// The zero value is a principal with subject "dev", no tenant and no scopes —
// so the same policy that runs in production denies it every scoped tool
// until scopes are listed here.
type DevIdentity struct {
	// Subject defaults to "dev".
	Subject string
	// Issuer defaults to "urn:mcpguard:dev".
	Issuer string
	// Tenant, when set, is put in the context as the caller's tenant.
	Tenant string
	// Scopes are the dev principal's scopes.
	Scopes []string
}

func (d DevIdentity) principal() *auth.Principal {
	p := &auth.Principal{
		Kind:     auth.KindDev,
		Subject:  d.Subject,
		Issuer:   d.Issuer,
		ClientID: "mcpguard-dev",
		Scopes:   slices.Clone(d.Scopes),
	}
	if p.Subject == "" {
		p.Subject = "dev"
	}
	if p.Issuer == "" {
		p.Issuer = "urn:mcpguard:dev"
	}
	return p
}

// devMiddleware injects the dev principal (and tenant) into every request
// that arrived over a loopback connection. Config.Addr is only what the
// author says; the handler may be served on any listener, so each request's
// own connection is checked: its local address (http.LocalAddrContextKey)
// and its peer (RemoteAddr) must both be loopback. Anything else — including
// a request without a known local address — gets 403 and is audited as
// access_denied with reason "dev_not_loopback".
func devMiddleware(d DevIdentity) func(http.Handler) http.Handler {
	p := d.principal()
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !loopbackConn(r) {
				audit.Annotate(r.Context(), audit.KindAccessDenied, "dev_not_loopback")
				http.Error(w, "forbidden: dev mode serves loopback connections only", http.StatusForbidden)
				return
			}
			ctx := auth.NewContext(r.Context(), p)
			if d.Tenant != "" {
				ctx = tenancy.NewContext(ctx, d.Tenant)
			}
			next.ServeHTTP(w, r.WithContext(ctx))
		})
	}
}

// loopbackConn reports whether r arrived on a loopback connection from a
// loopback peer. Both addresses must be known IPs: a missing local address
// (a handler driven by something other than net/http's server) or a
// RemoteAddr that is not host:port is refused.
func loopbackConn(r *http.Request) bool {
	local, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok || local == nil || !loopbackAddr(local.String()) {
		return false
	}
	return loopbackAddr(r.RemoteAddr)
}

// loopbackAddr reports whether hostport is a loopback IP and a port.
func loopbackAddr(hostport string) bool {
	ap, err := netip.ParseAddrPort(hostport)
	return err == nil && ap.Addr().Unmap().IsLoopback()
}

// loopbackAddrProblem says what is wrong with addr as a dev-mode listen
// address, "" when nothing is.
func loopbackAddrProblem(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Sprintf("listen address %q: %v", addr, err)
	}
	if host == "" {
		return fmt.Sprintf("listen address %q listens on every interface; dev mode needs a loopback address such as 127.0.0.1:8080", addr)
	}
	if !loopback.Host(host) {
		return fmt.Sprintf("listen address %q is not loopback; dev mode serves without authentication and must listen on 127.0.0.1, [::1] or localhost", addr)
	}
	return ""
}
