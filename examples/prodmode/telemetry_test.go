package main

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// metricsURL finds the "serving metrics" log line on stderr.
func (in *instance) metricsURL(t *testing.T) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, line := range strings.Split(in.stderr.String(), "\n") {
			var rec struct {
				Msg string `json:"msg"`
				URL string `json:"url"`
			}
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "serving metrics" {
				return rec.URL
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no metrics line on stderr:\n%s", in.stderr)
	return ""
}

func scrape(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}

// sample returns the value of the first sample line whose name and labels
// contain all of parts, "" when there is none.
func sample(body string, parts ...string) string {
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		ok := true
		for _, p := range parts {
			if !strings.Contains(line, p) {
				ok = false
				break
			}
		}
		if ok {
			if i := strings.LastIndexByte(line, ' '); i > 0 {
				return line[i+1:]
			}
		}
	}
	return ""
}

// MCPGUARD_METRICS_ADDR serves /metrics in Prometheus text format, and the
// decision counters move with the calls.
func TestMetricsEndpoint(t *testing.T) {
	in := start(t, map[string]*string{"MCPGUARD_METRICS_ADDR": ptr("127.0.0.1:0")})
	url := in.metricsURL(t)

	bad := in.call(t, "not-a-token", "whoami", nil)
	require.Equal(t, http.StatusUnauthorized, bad.status)
	tok := in.token(t, map[string]any{"scope": "notes:read"})
	ok := in.call(t, tok, "whoami", nil)
	require.Equal(t, http.StatusOK, ok.status)

	var body string
	require.Eventually(t, func() bool {
		body = scrape(t, url)
		return sample(body, "mcpguard_decisions_total", `mcpguard_decision="allow"`, `mcpguard_event="tool_call"`) != ""
	}, 5*time.Second, 50*time.Millisecond)
	assert.Equal(t, "1", sample(body, "mcpguard_decisions_total", `mcpguard_decision="deny"`, `mcpguard_event="auth_failure"`), body)
	assert.Equal(t, "1", sample(body, "mcpguard_decisions_total", `mcpguard_decision="allow"`, `mcpguard_event="tool_call"`), body)
	assert.NotEmpty(t, sample(body, "mcp_server_operation_duration_seconds_count", `mcp_method_name="tools/call"`), body)
	// The validator's and the limits' own hooks: two cold lookups (the
	// bad token, the good one's first use), the key set fetched at start-up
	// (before the Guard existed), each limit's decision.
	assert.Equal(t, "2", sample(body, "mcpguard_cache_lookups_total", `mcpguard_cache="token"`, `mcpguard_result="miss"`), body)
	keys := sample(body, "mcpguard_jwks_keys", `mcpguard_key_set="`)
	assert.NotEmpty(t, keys, body)
	assert.NotEqual(t, "0", keys)
	assert.NotEmpty(t, sample(body, "mcpguard_jwks_age_seconds", `mcpguard_key_set="`), body)
	assert.Equal(t, "1", sample(body, "mcpguard_rate_limit_decisions_total", `mcpguard_limiter="http"`, `mcpguard_outcome="allowed"`), body)
	assert.Equal(t, "1", sample(body, "mcpguard_rate_limit_decisions_total", `mcpguard_limiter="unauth"`, `mcpguard_outcome="allowed"`), body)
	assert.NotEmpty(t, sample(body, "mcpguard_rate_limit_headroom_count", `mcpguard_limiter="http"`), body)
	assert.NotContains(t, body, tok[len(tok)-20:], "no piece of a token in the scrape")
	assert.NotContains(t, body, "alice", "no subject in the scrape")

	// The counters move.
	in.call(t, "still-not-a-token", "whoami", nil)
	require.Eventually(t, func() bool {
		return sample(scrape(t, url), "mcpguard_decisions_total", `mcpguard_decision="deny"`, `mcpguard_event="auth_failure"`) == "2"
	}, 5*time.Second, 50*time.Millisecond)
}

// Off by default: no metrics listener.
func TestMetricsOffByDefault(t *testing.T) {
	in := start(t, nil)
	tok := in.token(t, map[string]any{"scope": "notes:read"})
	require.Equal(t, http.StatusOK, in.call(t, tok, "whoami", nil).status)
	assert.NotContains(t, in.stderr.String(), "serving metrics")
}

func TestTelemetryConfigErrors(t *testing.T) {
	for name, env := range map[string]map[string]string{
		"MCPGUARD_METRICS_ADDR":  {"MCPGUARD_METRICS_ADDR": "no-port"},
		"MCPGUARD_OTLP_ENDPOINT": {"MCPGUARD_OTLP_ENDPOINT": "ftp://collector"},
	} {
		_, err := configFromEnv(func(k string) string {
			if v, ok := env[k]; ok {
				return v
			}
			if k == "MCPGUARD_ISSUER" {
				return "https://idp.example.com"
			}
			return ""
		})
		require.Error(t, err, name)
		assert.Contains(t, err.Error(), name)
	}
}
