package transport

import (
	"net/http"
	"strings"
	"sync"
	"testing"

	mcptransport "github.com/mark3labs/mcp-go/client/transport"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
