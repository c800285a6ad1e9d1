package main

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/auth/authtest"
)

// downstreamAPI answers 200 and remembers every Authorization it saw.
type downstreamAPI struct {
	*httptest.Server
	mu   sync.Mutex
	seen []string
}

func newDownstreamAPI(t *testing.T) *downstreamAPI {
	t.Helper()
	d := &downstreamAPI{}
	d.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d.mu.Lock()
		d.seen = append(d.seen, r.Header.Get("Authorization"))
		d.mu.Unlock()
		_, _ = w.Write([]byte("calendar"))
	}))
	t.Cleanup(d.Close)
	return d
}

func TestDownstream(t *testing.T) {
	idp := authtest.NewServer(t)
	api := newDownstreamAPI(t)
	in := startWith(t, idp, map[string]*string{
		"MCPGUARD_DOWNSTREAM_URL":      ptr(api.URL + "/events"),
		"MCPGUARD_DOWNSTREAM_AUDIENCE": ptr("https://calendar.example.com"),
		"MCPGUARD_CLIENT_ID":           ptr("prodmode"),
		"MCPGUARD_CLIENT_SECRET":       ptr("prodmode-secret-123"),
		"MCPGUARD_METRICS_ADDR":        ptr("127.0.0.1:0"),
	})
	// The subject tokens are for this server: its client at the IdP says so.
	require.NoError(t, idp.RegisterClient(authtest.Client{ID: "prodmode", Secret: "prodmode-secret-123", AuthMethod: authtest.ClientSecretBasic, Audience: in.url}))
	tok := in.token(t, map[string]any{"scope": "notes:read"})
	for range 2 {
		text, isErr := in.toolText(t, tok, "downstream_get", nil)
		require.False(t, isErr, text)
		var out struct {
			Status int    `json:"status"`
			Body   string `json:"body"`
		}
		require.NoError(t, json.Unmarshal([]byte(text), &out))
		assert.Equal(t, http.StatusOK, out.Status)
	}
	assert.Equal(t, 1, idp.TokenRequests(), "the exchanged token is cached")
	metrics := scrape(t, in.metricsURL(t))
	assert.Equal(t, "1", sample(metrics, "mcpguard_cache_lookups_total", `mcpguard_cache="exchange"`, `mcpguard_result="miss"`), metrics)
	assert.Equal(t, "1", sample(metrics, "mcpguard_cache_lookups_total", `mcpguard_cache="exchange"`, `mcpguard_result="hit"`), metrics)
	assert.NotContains(t, metrics, "prodmode-secret-123")
	api.mu.Lock()
	seen := append([]string(nil), api.seen...)
	api.mu.Unlock()
	require.Len(t, seen, 2)
	for _, a := range seen {
		assert.True(t, strings.HasPrefix(a, "Bearer "))
		assert.NotEqual(t, "Bearer "+tok, a, "no token passthrough")
	}
	// The exchanged token is for the downstream audience.
	claims := decodeClaims(t, strings.TrimPrefix(seen[0], "Bearer "))
	assert.Equal(t, "https://calendar.example.com", claims["aud"])
	assert.Equal(t, "alice", claims["sub"])

	r := in.call(t, in.token(t, nil), "downstream_get", nil)
	assert.Equal(t, http.StatusForbidden, r.status, "notes:read is needed: %s", r.body)
	assert.NotContains(t, in.stderr.String(), "prodmode-secret-123")
}

func decodeClaims(t *testing.T, jwt string) map[string]any {
	t.Helper()
	parts := strings.Split(jwt, ".")
	require.Len(t, parts, 3)
	b, err := base64URL(parts[1])
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m))
	return m
}

func TestDownstreamConfigErrors(t *testing.T) {
	idp := authtest.NewServer(t)
	for _, tc := range []struct {
		name string
		env  map[string]string
		want string
	}{
		{"no client", map[string]string{"MCPGUARD_DOWNSTREAM_URL": "http://127.0.0.1:1/x"}, "MCPGUARD_CLIENT_ID and MCPGUARD_CLIENT_SECRET are required"},
		{"client without url", map[string]string{"MCPGUARD_CLIENT_ID": "x"}, "MCPGUARD_CLIENT_ID is set without MCPGUARD_DOWNSTREAM_URL"},
		{"plain http off loopback", map[string]string{"MCPGUARD_DOWNSTREAM_URL": "http://api.example.com/x", "MCPGUARD_CLIENT_ID": "x", "MCPGUARD_CLIENT_SECRET": "s3cr3t-value"}, "MCPGUARD_DOWNSTREAM_URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{"MCPGUARD_ADDR": "127.0.0.1:0", "MCPGUARD_ISSUER": idp.Issuer()}
			for k, v := range tc.env {
				env[k] = v
			}
			_, err := configFromEnv(func(k string) string { return env[k] })
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.NotContains(t, err.Error(), "s3cr3t-value")
		})
	}
}

func base64URL(s string) ([]byte, error) { return base64.RawURLEncoding.DecodeString(s) }
