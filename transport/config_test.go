package transport

import (
	"context"
	"io"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/tenancy"
)

// listingValidator is a validator that can say its audiences and issuers.
type listingValidator struct {
	auth.ValidatorFunc
	auds, iss []string
}

func (v listingValidator) Audiences() []string { return v.auds }
func (v listingValidator) Issuers() []string   { return v.iss }

// Configuration that cannot lie: settings the mode would ignore, a
// resource or issuer the validator would refuse, a metadata URL New would
// overwrite — each is refused, naming the field, with ErrConfig wrapped
// once.
func TestNewRefusesSettingsThatWouldLie(t *testing.T) {
	deny := auth.ValidatorFunc(func(context.Context, string) (*auth.Principal, error) { return nil, auth.ErrInvalidToken })
	res, err := tenancy.New(tenancy.Config{})
	require.NoError(t, err)
	prod := func(v auth.Validator) Config {
		return Config{Resource: "https://mcp.example.com/mcp", AuthorizationServers: []string{"https://idp.example.com"}, Validator: v, Policy: notesPolicy(t)}
	}
	dev := Config{Mode: ModeDev, Addr: "127.0.0.1:8080", Policy: notesPolicy(t), Logger: slogTo(io.Discard)}

	good := listingValidator{ValidatorFunc: deny, auds: []string{"https://mcp.example.com/mcp/"}, iss: []string{"https://idp.example.com/"}}
	_, err = New(prod(good))
	require.NoError(t, err, "a trailing slash is no difference")
	_, err = New(prod(listingValidator{ValidatorFunc: deny}))
	require.NoError(t, err, "a validator that lists nothing is not checked")

	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"resource not an audience", prod(listingValidator{ValidatorFunc: deny, auds: []string{"https://other.example.com/mcp"}}), "Config.Resource"},
		{"authorization server not an issuer", prod(listingValidator{ValidatorFunc: deny, iss: []string{"https://other-idp.example.com"}}), "Config.AuthorizationServers"},
		{"dev mode with a validator", func() Config { c := dev; c.Validator = deny; return c }(), "Config.Validator"},
		{"dev mode with tenancy", func() Config { c := dev; c.Tenancy = res; return c }(), "Config.Tenancy"},
		{"metadata URL overwritten", func() Config {
			c := prod(deny)
			c.Auth.ResourceMetadataURL = "https://elsewhere.example.com/.well-known/oauth-protected-resource"
			return c
		}(), "Config.Auth.ResourceMetadataURL"},
		{"dev off loopback", func() Config { c := dev; c.Addr = "0.0.0.0:8080"; return c }(), "Config.Addr"},
		{"short session key", func() Config { c := prod(deny); c.SessionKey = []byte("short"); return c }(), "Config.SessionKey"},
		{"negative body limit", func() Config { c := prod(deny); c.Edge.MaxBodyBytes = -1; return c }(), "EdgeConfig.MaxBodyBytes"},
		{"negative session cap", func() Config { c := prod(deny); c.Sessions.MaxPerPrincipal = -1; return c }(), "Config.Sessions"},
		{"short request-state key", func() Config { c := prod(deny); c.RequestState.Key = []byte("short"); return c }(), "Config.RequestState.Key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, err := New(tc.cfg)
			require.ErrorIs(t, err, ErrConfig)
			assert.Nil(t, g)
			assert.Contains(t, err.Error(), tc.want)
			assert.Equal(t, 1, strings.Count(err.Error(), ErrConfig.Error()), "wrapped once: %s", err)
		})
	}
	// The metadata URL New derives itself may be repeated.
	c := prod(deny)
	c.Auth.ResourceMetadataURL = "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"
	_, err = New(c)
	require.NoError(t, err)
}

// sweepers counts mcp-go's idle-session sweeper goroutines.
func sweepers() int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	return strings.Count(string(buf), "startSessionSweeper.func1(")
}

// Guard.Close shuts down what Handler built: mcp-go's idle-session sweeper
// goroutine does not outlive the Guard.
func TestGuardCloseReleasesHandlers(t *testing.T) {
	g, err := New(Config{Mode: ModeDev, Addr: "127.0.0.1:8080", Policy: notesPolicy(t), Logger: slogTo(io.Discard)})
	require.NoError(t, err)
	before := sweepers()
	_ = g.Handler(notesServer(g.ServerOptions()...))
	_ = g.Handler(notesServer(g.ServerOptions()...))
	require.Eventually(t, func() bool { return sweepers() == before+2 }, 3*time.Second, 10*time.Millisecond, "each handler runs a sweeper")
	require.NoError(t, g.Close())
	require.NoError(t, g.Close(), "twice is fine")
	assert.Eventually(t, func() bool { return sweepers() == before }, 3*time.Second, 10*time.Millisecond, "sweepers left: %d", sweepers()-before)
}
