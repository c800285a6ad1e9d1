package transport

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/audit"
	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/tenancy"
)

func TestLoopbackAddrProblem(t *testing.T) {
	for _, ok := range []string{"127.0.0.1:8080", "[::1]:0", "localhost:1", "127.1.2.3:9"} {
		assert.Empty(t, loopbackAddrProblem(ok), ok)
	}
	for _, bad := range []string{":8080", "0.0.0.0:8080", "[::]:80", "192.168.1.2:80", "example.com:80", "127.0.0.1", ""} {
		assert.NotEmpty(t, loopbackAddrProblem(bad), bad)
	}
}

func TestStdioIdentity(t *testing.T) {
	v := auth.ValidatorFunc(func(_ context.Context, tok string) (*auth.Principal, error) {
		if tok == "good" {
			return &auth.Principal{Subject: "alice", Issuer: "https://idp", Scopes: []string{"a"}}, nil
		}
		return nil, auth.InvalidToken("the access token is invalid", auth.ErrInvalidToken)
	})
	env := map[string]string{"TOK": "good", "BAD": "forged"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }

	fn, p, err := StdioIdentity(context.Background(), StdioConfig{TokenEnv: "TOK", Validator: v, LookupEnv: lookup,
		Tenant: func(p *auth.Principal) (string, error) { return "acme", nil }})
	require.NoError(t, err)
	assert.Equal(t, auth.KindStdio, p.Kind)
	ctx := fn(context.Background())
	got, ok := auth.FromContext(ctx)
	require.True(t, ok)
	assert.Equal(t, "alice", got.Subject)
	tn, _ := tenancy.FromContext(ctx)
	assert.Equal(t, "acme", tn)

	_, _, err = StdioIdentity(context.Background(), StdioConfig{TokenEnv: "BAD", Validator: v, LookupEnv: lookup})
	assert.ErrorIs(t, err, auth.ErrInvalidToken)
	assert.NotContains(t, err.Error(), "forged")
	_, _, err = StdioIdentity(context.Background(), StdioConfig{TokenEnv: "MISSING", Validator: v, LookupEnv: lookup})
	assert.ErrorIs(t, err, auth.ErrNoCredential)
	_, _, err = StdioIdentity(context.Background(), StdioConfig{TokenEnv: "TOK", LookupEnv: lookup})
	assert.ErrorIs(t, err, ErrConfig)
	_, _, err = StdioIdentity(context.Background(), StdioConfig{})
	assert.ErrorIs(t, err, ErrConfig)
	_, _, err = StdioIdentity(context.Background(), StdioConfig{TokenEnv: "TOK", Validator: v, LookupEnv: lookup,
		Tenant: func(*auth.Principal) (string, error) { return "", errors.New("no tenant") }})
	assert.Error(t, err)

	fn, p, err = StdioIdentity(context.Background(), StdioConfig{Dev: &DevIdentity{Scopes: []string{"x"}, Tenant: "t1"}})
	require.NoError(t, err)
	assert.Equal(t, auth.KindDev, p.Kind)
	assert.Equal(t, "dev", p.Subject)
	tn, _ = tenancy.FromContext(fn(context.Background()))
	assert.Equal(t, "t1", tn)
}

// addrListener reports fixed local and remote addresses for every
// connection it accepts, as a listener on another interface, or a proxy
// in front of a loopback one, would.
type addrListener struct {
	net.Listener
	local, remote net.Addr
}

func (l addrListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return addrConn{Conn: c, l: l}, nil
}

type addrConn struct {
	net.Conn
	l addrListener
}

func (c addrConn) LocalAddr() net.Addr {
	if c.l.local != nil {
		return c.l.local
	}
	return c.Conn.LocalAddr()
}

func (c addrConn) RemoteAddr() net.Addr {
	if c.l.remote != nil {
		return c.l.remote
	}
	return c.Conn.RemoteAddr()
}

// Dev mode is enforced per connection: Config.Addr is loopback, but the
// handler is served where a connection's local or remote address is not;
// the caller is refused with 403 (never acts as the dev principal) and the
// refusal is audited, in both protocol eras.
func TestDevModeRefusesNonLoopbackConnections(t *testing.T) {
	public := &net.TCPAddr{IP: net.ParseIP("192.0.2.10"), Port: 8080}
	for _, tc := range []struct {
		name          string
		local, remote net.Addr
		ok            bool
	}{
		{name: "loopback", ok: true},
		{name: "non-loopback local address", local: public},
		{name: "non-loopback remote address", remote: &net.TCPAddr{IP: net.ParseIP("198.51.100.7"), Port: 40000}},
		{name: "ipv6 public local", local: &net.TCPAddr{IP: net.ParseIP("2001:db8::1"), Port: 8080}},
	} {
		for _, era := range eras {
			t.Run(tc.name+"/"+era, func(t *testing.T) {
				var out syncBuffer
				sink, err := audit.NewJSONSink(&out)
				require.NoError(t, err)
				rec, err := audit.New(audit.Config{Sink: sink})
				require.NoError(t, err)
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				require.NoError(t, err)
				g, err := New(Config{Mode: ModeDev, Addr: ln.Addr().String(), Policy: notesPolicy(t), Audit: rec,
					Dev: DevIdentity{Subject: "dev-alice", Scopes: []string{"notes:read", "notes:write"}}, Logger: slogTo(io.Discard)})
				require.NoError(t, err)
				hs := httptest.NewUnstartedServer(g.Handler(notesServer(g.ServerOptions()...)))
				hs.Listener = addrListener{Listener: ln, local: tc.local, remote: tc.remote}
				hs.Start()
				defer hs.Close()

				c, err := eraClient(t, "http://"+ln.Addr().String()+"/mcp", "", era)
				if tc.ok {
					require.NoError(t, err)
					text, err := callText(t, c, "whoami")
					require.NoError(t, err)
					assert.Contains(t, text, "dev-alice")
					return
				}
				if err == nil {
					// A modern client may only learn at its first call.
					_, err = callText(t, c, "notes_write")
				}
				require.Error(t, err)
				require.NoError(t, rec.Close())
				assert.Contains(t, out.String(), `"reason":"dev_not_loopback"`)
				assert.Contains(t, out.String(), `"status":403`)
				assert.NotContains(t, out.String(), `"kind":"tool_call"`)
			})
		}
	}
}

// A request whose context carries no local address (the handler is not
// driven by net/http's server) is refused: dev mode fails closed.
func TestDevModeRefusesUnknownLocalAddress(t *testing.T) {
	g, err := New(Config{Mode: ModeDev, Addr: "127.0.0.1:8080", Policy: notesPolicy(t), Logger: slogTo(io.Discard)})
	require.NoError(t, err)
	h := g.Handler(notesServer(g.ServerOptions()...))
	for _, tc := range []struct {
		name   string
		local  net.Addr
		remote string
	}{
		{name: "no local address", remote: "127.0.0.1:5000"},
		{name: "remote not host:port", local: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080}, remote: "pipe"},
		{name: "remote public", local: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080}, remote: "203.0.113.1:5000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, "http://127.0.0.1:8080/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"ping"}`))
			req.Header.Set("Content-Type", "application/json")
			req.RemoteAddr = tc.remote
			if tc.local != nil {
				req = req.WithContext(context.WithValue(req.Context(), http.LocalAddrContextKey, tc.local))
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			assert.Equal(t, http.StatusForbidden, w.Code)
		})
	}
}
