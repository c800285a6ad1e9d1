package authtest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// introspectReq posts form to the introspection endpoint, authenticating
// with Basic when id is set, and returns the status and decoded body.
func introspectReq(t *testing.T, s *Server, id, secret string, form url.Values) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.IntrospectionURL(), strings.NewReader(form.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if id != "" {
		req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	}
	resp, err := s.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var body map[string]any
	_ = json.Unmarshal(b, &body)
	return resp.StatusCode, body
}

func newIntrospectionServer(t *testing.T, now func() time.Time) *Server {
	t.Helper()
	s, err := New(Config{TB: t, Algorithms: []string{"ES256", "EdDSA"}, Now: now})
	require.NoError(t, err)
	require.NoError(t, s.RegisterClient(Client{ID: "resource server", Secret: "rs-secret"}))
	return s
}

func TestIntrospectionAnswers(t *testing.T) {
	clock := time.Unix(1_800_000_000, 0)
	now := func() time.Time { return clock }
	s := newIntrospectionServer(t, now)

	opaque := s.MustMintOpaque(map[string]any{"scope": "notes:read", "username": "alice@example.com"})
	assert.Zero(t, strings.Count(opaque, "."), "an opaque token is not JWT-shaped")
	jwtTok := s.MustMint(map[string]any{"scope": "notes:write"})
	forged, err := CorruptSignature(jwtTok)
	require.NoError(t, err)
	expiredOpaque := s.MustMintOpaque(map[string]any{"exp": clock.Add(-time.Second).Unix()})
	futureOpaque := s.MustMintOpaque(map[string]any{"nbf": clock.Add(time.Hour).Unix()})
	expiredJWT := s.MustMint(map[string]any{"exp": clock.Add(-time.Second).Unix()})
	revokedOpaque := s.MustMintOpaque(nil)
	revokedJWT := s.MustMint(nil)
	s.Revoke(revokedOpaque)
	s.Revoke(revokedJWT)
	other, err := New(Config{TB: t, Algorithms: []string{"ES256"}, Now: now})
	require.NoError(t, err)
	foreignJWT := other.MustMint(nil)

	tests := []struct {
		name   string
		tok    string
		active bool
		check  func(t *testing.T, body map[string]any)
	}{
		{"opaque", opaque, true, func(t *testing.T, b map[string]any) {
			assert.Equal(t, "alice", b["sub"])
			assert.Equal(t, s.Issuer(), b["iss"])
			assert.Equal(t, s.Audience(), b["aud"])
			assert.Equal(t, "mcp-client", b["client_id"])
			assert.Equal(t, "notes:read", b["scope"])
			assert.Equal(t, "alice@example.com", b["username"])
			assert.Equal(t, "Bearer", b["token_type"])
			assert.Equal(t, float64(clock.Add(time.Hour).Unix()), b["exp"])
		}},
		{"own JWT", jwtTok, true, func(t *testing.T, b map[string]any) {
			assert.Equal(t, "notes:write", b["scope"])
			assert.Equal(t, "alice", b["sub"])
		}},
		{"forged JWT", forged, false, nil},
		{"expired opaque", expiredOpaque, false, nil},
		{"not yet valid opaque", futureOpaque, false, nil},
		{"expired JWT", expiredJWT, false, nil},
		{"revoked opaque", revokedOpaque, false, nil},
		{"revoked JWT", revokedJWT, false, nil},
		{"JWT of another server", foreignJWT, false, nil},
		{"unknown", "2YotnFZFEjr1zCsicMWpAA", false, nil},
		{"empty", "", false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := introspectReq(t, s, "resource server", "rs-secret", url.Values{"token": {tt.tok}, "token_type_hint": {"access_token"}})
			require.Equal(t, http.StatusOK, status)
			assert.Equal(t, tt.active, body["active"])
			if !tt.active {
				assert.Len(t, body, 1, "an inactive answer says nothing else (RFC 7662 §2.2)")
			}
			if tt.check != nil {
				tt.check(t, body)
			}
		})
	}
	assert.Equal(t, len(tests), s.IntrospectionRequests())
}

func TestIntrospectionClientAuthentication(t *testing.T) {
	s := newIntrospectionServer(t, nil)
	tok := s.MustMintOpaque(nil)
	form := url.Values{"token": {tok}}

	status, body := introspectReq(t, s, "resource server", "rs-secret", form)
	assert.Equal(t, http.StatusOK, status)
	assert.Equal(t, true, body["active"])

	post := url.Values{"token": {tok}, "client_id": {"resource server"}, "client_secret": {"rs-secret"}}
	status, body = introspectReq(t, s, "", "", post)
	assert.Equal(t, http.StatusOK, status)
	assert.Equal(t, true, body["active"])

	for name, c := range map[string][2]string{"wrong secret": {"resource server", "nope"}, "unknown client": {"stranger", "x"}, "none": {"", ""}} {
		t.Run(name, func(t *testing.T) {
			status, body := introspectReq(t, s, c[0], c[1], form)
			assert.Equal(t, http.StatusUnauthorized, status)
			assert.Equal(t, "invalid_client", body["error"])
			assert.NotContains(t, body, "active", "no token information without client authentication")
		})
	}
	status, body = introspectReq(t, s, "resource server", "rs-secret", url.Values{})
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Equal(t, "invalid_request", body["error"])

	_, raw := get(t, s, s.MetadataURL())
	var doc map[string]any
	require.NoError(t, json.Unmarshal(raw, &doc))
	assert.Equal(t, s.IntrospectionURL(), doc["introspection_endpoint"])
	assert.Contains(t, doc["introspection_endpoint_auth_methods_supported"], ClientSecretBasic)
}

func TestIntrospectionFaults(t *testing.T) {
	s := newIntrospectionServer(t, nil)
	client := s.Client()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	tok := s.MustMintOpaque(nil)
	for _, tt := range []struct {
		fault  Fault
		status int
		check  func(t *testing.T, body []byte)
	}{
		{FaultStatus500, http.StatusInternalServerError, nil},
		{FaultGarbage, http.StatusOK, func(t *testing.T, b []byte) { assert.False(t, json.Valid(b)) }},
		{FaultEmpty, http.StatusOK, func(t *testing.T, b []byte) { assert.JSONEq(t, `{}`, string(b)) }},
		{FaultOversized, http.StatusOK, func(t *testing.T, b []byte) { assert.Greater(t, len(b), 2<<20) }},
		{FaultRedirect, http.StatusTemporaryRedirect, nil},
		{FaultNone, http.StatusOK, func(t *testing.T, b []byte) { assert.Contains(t, string(b), `"active":true`) }},
	} {
		s.SetIntrospectionFault(tt.fault)
		req, err := http.NewRequest(http.MethodPost, s.IntrospectionURL(), strings.NewReader(url.Values{"token": {tok}}.Encode()))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("resource+server", "rs-secret")
		resp, err := client.Do(req)
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		assert.Equal(t, tt.status, resp.StatusCode, tt.fault)
		if tt.check != nil {
			tt.check(t, b)
		}
	}
	s.SetIntrospectionFault(FaultDown)
	req, err := http.NewRequest(http.MethodPost, s.IntrospectionURL(), strings.NewReader("token=x"))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	_, err = client.Do(req)
	assert.Error(t, err)
	s.SetIntrospectionFault(FaultNone)
	assert.Zero(t, s.RedirectFetches())
}
