package transport

import (
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"

	mcptransport "github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/auth/authtest"
)

// answerRecorder is an http.RoundTripper that lets edit change each
// request and keeps the status and challenge of the first answer, so a
// test can see what an mcp-go client was told.
type answerRecorder struct {
	edit func(*http.Request)

	mu     sync.Mutex
	status int
	chal   string
}

func (a *answerRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	if a.edit != nil {
		a.edit(r)
	}
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err == nil {
		a.mu.Lock()
		if a.status == 0 {
			a.status, a.chal = resp.StatusCode, resp.Header.Get("WWW-Authenticate")
		}
		a.mu.Unlock()
	}
	return resp, err
}

func (a *answerRecorder) answer() (int, string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.status, a.chal
}

// TestStackRFC6750Answers drives an mcp-go client in both eras through the
// full stack with credentials presented the ways RFC 6750 §2 and §3.1 tell
// apart (issue 15.7).
func TestStackRFC6750Answers(t *testing.T) {
	st := newStack(t, nil)
	good := st.token(t, map[string]any{"sub": "alice", "scope": "notes:read"})
	meta := `Bearer resource_metadata="` + st.guard.MetadataURL() + `"`
	oversized := strings.Repeat("a", 20<<10) // a b64token, longer than the 16 KiB cap

	tests := []struct {
		name       string
		url        string
		edit       func(*http.Request)
		wantStatus int
		wantChal   string
	}{
		{name: "oversized well-formed token is invalid_token",
			edit:       func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+oversized) },
			wantStatus: http.StatusUnauthorized,
			wantChal:   meta + `, error="invalid_token", error_description="the access token is too large"`},
		{name: "query-only token is no credential",
			url:        "?access_token=" + good,
			wantStatus: http.StatusUnauthorized,
			wantChal:   meta},
		{name: "header and query token is ambiguous",
			url:        "?access_token=" + good,
			edit:       func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+good) },
			wantStatus: http.StatusBadRequest,
			wantChal:   meta + `, error="invalid_request", error_description="malformed bearer request"`},
		{name: "two Authorization headers are ambiguous",
			edit: func(r *http.Request) {
				r.Header.Set("Authorization", "Bearer "+good)
				r.Header.Add("Authorization", "Bearer "+good)
			},
			wantStatus: http.StatusBadRequest,
			wantChal:   meta + `, error="invalid_request", error_description="malformed bearer request"`},
	}
	for _, era := range eras {
		for _, tt := range tests {
			t.Run(era+"/"+tt.name, func(t *testing.T) {
				rec := &answerRecorder{edit: tt.edit}
				_, err := eraClient(t, st.url+tt.url, "", era, mcptransport.WithHTTPBasicClient(&http.Client{Transport: rec}))
				require.Error(t, err, "the client must be refused")
				status, chal := rec.answer()
				assert.Equal(t, tt.wantStatus, status)
				assert.Equal(t, tt.wantChal, chal)
				assert.NotContains(t, err.Error(), good)
			})
		}
	}
	// The same token in the header alone is served, in both eras.
	for _, era := range eras {
		_, err := eraClient(t, st.url, good, era)
		require.NoError(t, err, era)
	}
}

// TestStackBoundTokenAsBearer: a JWT bound to a key ("cnf", RFC 9449 §6.1)
// presented as a plain Bearer token is refused with 401 invalid_token in
// both eras — a stolen key-bound token is no bearer token (issue 15.7).
func TestStackBoundTokenAsBearer(t *testing.T) {
	st := newStack(t, nil)
	k, err := authtest.NewDPoPKey("ES256")
	require.NoError(t, err)
	bound, err := st.idp.MintBound(map[string]any{"aud": st.url, "tenant_id": "acme", "sub": "alice", "scope": "notes:read"}, k)
	require.NoError(t, err)
	for _, era := range eras {
		t.Run(era, func(t *testing.T) {
			rec := &answerRecorder{}
			_, err := eraClient(t, st.url, bound, era, mcptransport.WithHTTPBasicClient(&http.Client{Transport: rec}))
			require.Error(t, err)
			status, chal := rec.answer()
			assert.Equal(t, http.StatusUnauthorized, status)
			assert.Contains(t, chal, `error="invalid_token"`)
		})
	}
	status, _, body := rawCall(t, st.url, bound, "notes_read", "")
	assert.Equal(t, http.StatusUnauthorized, status)
	assert.NotContains(t, body, "read for")
}

// TestStackLogsRefusalCause: with Config.Logger at Debug level the cause
// of each refused token reaches the log, never the token (issue 15.9).
func TestStackLogsRefusalCause(t *testing.T) {
	logs := &syncBuffer{}
	st := newStack(t, func(c *Config) {
		c.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	wrongAud := st.token(t, map[string]any{"aud": "https://other.example/mcp", "scope": "notes:read"})
	for _, era := range eras {
		_, err := eraClient(t, st.url, wrongAud, era)
		require.Error(t, err, era)
	}
	out := logs.String()
	assert.Contains(t, out, "auth: request refused")
	assert.Contains(t, out, "audience")
	assert.NotContains(t, out, wrongAud)
}

// TestStackFormBodyAmbiguity: over real HTTP in both eras (a bound
// 2025-11-25 session, a stateless 2026-07-28 request), an access token in
// the Authorization header and another in a form body or the query is
// refused with 400 invalid_request before the token is checked (RFC 6750
// §2); a form body without one, behind a good token, still gets the edge's
// 415; and the audit trail records the refusal without either token.
func TestStackFormBodyAmbiguity(t *testing.T) {
	st := newStack(t, nil)
	good := st.token(t, map[string]any{"sub": "alice", "scope": "notes:read"})
	other := st.token(t, map[string]any{"sub": "mallory", "scope": "notes:read notes:write"})
	meta := `Bearer resource_metadata="` + st.guard.MetadataURL() + `"`
	ambiguous := meta + `, error="invalid_request", error_description="malformed bearer request"`
	const form = "application/x-www-form-urlencoded"

	alice, err := eraClient(t, st.url, good, mcp.ProtocolVersion20251125)
	require.NoError(t, err)
	sid := alice.GetSessionId()
	require.NotEmpty(t, sid)

	type req struct {
		name, query, ct, body string
		auth                  string
		wantStatus            int
		wantChal              string
	}
	for _, era := range eras {
		tests := []req{
			{name: "header and form token", ct: form, body: "access_token=" + other, auth: good, wantStatus: 400, wantChal: ambiguous},
			{name: "header and escaped form token after ;", ct: form + "; charset=utf-8", body: "a=1;access%5Ftoken=" + other, auth: good, wantStatus: 400, wantChal: ambiguous},
			{name: "header and oversized form", ct: form, body: strings.Repeat("a", 100<<10), auth: good, wantStatus: 400, wantChal: ambiguous},
			{name: "header and query token", query: "?access_token=" + other, ct: "application/json", body: rpcBody(era, "tools/list"), auth: good, wantStatus: 400, wantChal: ambiguous},
			{name: "header and query token after ;", query: "?x=1;access_token=" + other, ct: "application/json", body: rpcBody(era, "tools/list"), auth: good, wantStatus: 400, wantChal: ambiguous},
			{name: "bad header and form token", ct: form, body: "access_token=" + other, auth: "not-a-jwt", wantStatus: 400, wantChal: ambiguous},
			{name: "form without token behind a good header", ct: form, body: "a=1", auth: good, wantStatus: http.StatusUnsupportedMediaType},
			{name: "form token alone", ct: form, body: "access_token=" + other, wantStatus: http.StatusUnsupportedMediaType},
			{name: "query token alone", query: "?access_token=" + other, ct: "application/json", body: rpcBody(era, "tools/list"), wantStatus: 401, wantChal: meta},
			{name: "header alone", ct: "application/json", body: rpcBody(era, "tools/list"), auth: good, wantStatus: 200},
		}
		for _, tt := range tests {
			t.Run(era+"/"+tt.name, func(t *testing.T) {
				r, _ := http.NewRequest(http.MethodPost, st.url+tt.query, strings.NewReader(tt.body))
				r.Header.Set("Content-Type", tt.ct)
				r.Header.Set("Accept", "application/json, text/event-stream")
				r.Header.Set(mcp.HeaderProtocolVersion, era)
				if era == mcp.ProtocolVersion20260728 {
					r.Header.Set(mcp.HeaderMethod, "tools/list")
				} else {
					r.Header.Set("Mcp-Session-Id", sid)
				}
				if tt.auth != "" {
					r.Header.Set("Authorization", "Bearer "+tt.auth)
				}
				resp, err := http.DefaultClient.Do(r)
				require.NoError(t, err)
				b, _ := io.ReadAll(resp.Body)
				_ = resp.Body.Close()
				assert.Equal(t, tt.wantStatus, resp.StatusCode, string(b))
				assert.Equal(t, tt.wantChal, resp.Header.Get("WWW-Authenticate"))
				assert.NotContains(t, string(b), good)
				assert.NotContains(t, string(b), other)
			})
		}
	}
	require.NoError(t, st.rec.Close())
	trail := st.audit.String()
	assert.Contains(t, trail, `"reason":"invalid_request"`)
	assert.Contains(t, trail, `"reason":"unsupported_media_type"`)
	assert.NotContains(t, trail, good, "no credential in the audit trail")
	assert.NotContains(t, trail, other, "no credential in the audit trail")
}
