package transport

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	mcptransport "github.com/mark3labs/mcp-go/client/transport"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/auth/authtest"
)

// memIntroCache is an auth.IntrospectionCache in a map, standing for the
// Redis one several deployments share.
type memIntroCache struct {
	mu sync.Mutex
	m  map[[32]byte]memIntroEntry
}

type memIntroEntry struct {
	body  []byte
	until time.Time
}

func (c *memIntroCache) Get(_ context.Context, key [32]byte, now time.Time) ([]byte, time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[key]
	if !ok || !now.Before(e.until) {
		return nil, time.Time{}, false
	}
	return e.body, e.until, true
}

func (c *memIntroCache) Put(_ context.Context, key [32]byte, body []byte, until time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[[32]byte]memIntroEntry{}
	}
	c.m[key] = memIntroEntry{body, until}
}

// TestStackIntrospectionSharedAcrossServers: a Guard whose introspection
// validator shares its SharedCache with the validator of another
// authorization server (one Redis for two tenants' resources) refuses, in
// both eras, an opaque token only that other server issued, whose answer
// names no issuer: it was served, as a token of the Guard's own server.
func TestStackIntrospectionSharedAcrossServers(t *testing.T) {
	shared := &memIntroCache{}
	other := authtest.NewServer(t)
	require.NoError(t, other.RegisterClient(authtest.Client{ID: "mcp-rs", Secret: "rs-secret"}))
	own := authtest.NewServer(t)
	require.NoError(t, own.RegisterClient(authtest.Client{ID: "mcp-rs", Secret: "rs-secret"}))
	introspector := func(idp *authtest.Server, audience string) *auth.IntrospectionValidator {
		v, err := auth.NewIntrospectionValidator(auth.IntrospectionConfig{
			Issuer: idp.Issuer(), Endpoint: idp.IntrospectionURL(), Audience: audience,
			ClientID: "mcp-rs", ClientSecret: auth.NewCredential("rs-secret"), SharedCache: shared,
		})
		require.NoError(t, err)
		t.Cleanup(func() { _ = v.Close() })
		return v
	}
	st := newStack(t, func(c *Config) {
		c.AuthorizationServers = []string{own.Issuer()}
		c.Validator = introspector(own, c.Resource)
	})
	elsewhere := introspector(other, st.url)

	for _, era := range eras {
		t.Run(era, func(t *testing.T) {
			foreign := other.MustMintOpaque(map[string]any{"iss": nil, "aud": st.url, "tenant_id": "acme", "sub": "mallory", "scope": "notes:read"})
			_, err := elsewhere.Validate(t.Context(), foreign)
			require.NoError(t, err, "precondition: active at the other server, its answer shared")

			rec := &answerRecorder{}
			_, err = eraClient(t, st.url, foreign, era, mcptransport.WithHTTPBasicClient(&http.Client{Transport: rec}))
			require.Error(t, err, "another server's token")
			status, chal := rec.answer()
			assert.Equal(t, http.StatusUnauthorized, status)
			assert.Contains(t, chal, `error="invalid_token"`)

			mine := own.MustMintOpaque(map[string]any{"iss": nil, "aud": st.url, "tenant_id": "acme", "sub": "alice", "scope": "notes:read"})
			c, err := eraClient(t, st.url, mine, era)
			require.NoError(t, err, "the Guard's own server's token")
			got, err := callText(t, c, "notes_read")
			require.NoError(t, err)
			assert.Equal(t, "read for acme", got)
		})
	}
}
