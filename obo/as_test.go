package obo_test

import (
	"crypto"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"
)

// fakeAS is a token endpoint for obo's unit tests: it authenticates the
// client the way it is told to, records every request, and issues tokens
// that encode who they were issued for, so tests can check which user got
// which token. Tests against the real test IdP live in authtest_test.go.
type fakeAS struct {
	srv      *httptest.Server
	clientID string
	secret   string
	method   string           // expected client auth method
	pub      crypto.PublicKey // for private_key_jwt
	calls    atomic.Int64

	mu      sync.Mutex
	reqs    []recorded
	respond func(form url.Values) (status int, body any) // overrides the default answer
	gate    chan struct{}                                // when set, every request waits for it to close
	entered chan struct{}                                // when set, receives once per request on arrival
}

type recorded struct {
	form   url.Values
	header http.Header
}

// issued is what a fake token encodes.
type issued struct {
	Sub   string `json:"sub"`
	Aud   string `json:"aud,omitempty"`
	Res   string `json:"res,omitempty"`
	Scope string `json:"scope,omitempty"`
	Grant string `json:"grant"`
	N     int64  `json:"n"`
}

func newFakeAS(t testing.TB, method string) *fakeAS {
	t.Helper()
	as := &fakeAS{clientID: "mcp-server", secret: "s3cret:with/odd&chars", method: method}
	as.srv = httptest.NewServer(http.HandlerFunc(as.serve))
	t.Cleanup(as.srv.Close)
	return as
}

func (as *fakeAS) url() string { return as.srv.URL + "/token" }

func (as *fakeAS) requests() []recorded {
	as.mu.Lock()
	defer as.mu.Unlock()
	return append([]recorded(nil), as.reqs...)
}

func (as *fakeAS) last(t *testing.T) recorded {
	t.Helper()
	r := as.requests()
	require.NotEmpty(t, r, "the token endpoint received no request")
	return r[len(r)-1]
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (as *fakeAS) serve(w http.ResponseWriter, r *http.Request) {
	n := as.calls.Add(1)
	as.mu.Lock()
	gate, entered, respond := as.gate, as.entered, as.respond
	as.mu.Unlock()
	if entered != nil {
		entered <- struct{}{}
	}
	if gate != nil {
		<-gate
	}
	if r.Method != http.MethodPost || r.URL.Path != "/token" {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "not_found"})
		return
	}
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request"})
		return
	}
	as.mu.Lock()
	as.reqs = append(as.reqs, recorded{form: r.PostForm, header: r.Header.Clone()})
	as.mu.Unlock()
	if !as.clientOK(r) {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_client", "error_description": "client authentication failed"})
		return
	}
	if respond != nil {
		status, body := respond(r.PostForm)
		if s, ok := body.(string); ok {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			_, _ = w.Write([]byte(s))
			return
		}
		writeJSON(w, status, body)
		return
	}
	f := r.PostForm
	tok := issued{Grant: f.Get("grant_type"), Aud: f.Get("audience"), Res: f.Get("resource"), Scope: f.Get("scope"), N: n}
	resp := map[string]any{"token_type": "Bearer", "expires_in": 3600}
	switch f.Get("grant_type") {
	case "urn:ietf:params:oauth:grant-type:token-exchange":
		tok.Sub = f.Get("subject_token")
		resp["issued_token_type"] = "urn:ietf:params:oauth:token-type:access_token"
		if rt := f.Get("requested_token_type"); rt != "" {
			resp["issued_token_type"] = rt
		}
	case "urn:ietf:params:oauth:grant-type:jwt-bearer":
		tok.Sub = f.Get("assertion")
	case "client_credentials":
		tok.Sub = as.clientID
	default:
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "unsupported_grant_type"})
		return
	}
	resp["access_token"] = encodeIssued(tok)
	writeJSON(w, http.StatusOK, resp)
}

func encodeIssued(tok issued) string {
	b, _ := json.Marshal(tok)
	return "dt." + base64.RawURLEncoding.EncodeToString(b)
}

func decodeIssued(t testing.TB, raw string) issued {
	t.Helper()
	tok, err := tryDecodeIssued(raw)
	require.NoError(t, err)
	return tok
}

// tryDecodeIssued is decodeIssued for goroutines other than the test's,
// which must not call t.FailNow.
func tryDecodeIssued(raw string) (issued, error) {
	var tok issued
	if !strings.HasPrefix(raw, "dt.") {
		return tok, errors.New("not a fake token")
	}
	b, err := base64.RawURLEncoding.DecodeString(raw[3:])
	if err != nil {
		return tok, err
	}
	return tok, json.Unmarshal(b, &tok)
}

func (as *fakeAS) clientOK(r *http.Request) bool {
	f := r.PostForm
	switch as.method {
	case "client_secret_basic":
		u, p, ok := r.BasicAuth()
		if !ok || f.Has("client_secret") {
			return false
		}
		u, err1 := url.QueryUnescape(u)
		p, err2 := url.QueryUnescape(p)
		return err1 == nil && err2 == nil && u == as.clientID && p == as.secret
	case "client_secret_post":
		_, _, basic := r.BasicAuth()
		return !basic && f.Get("client_id") == as.clientID && f.Get("client_secret") == as.secret
	case "private_key_jwt":
		if f.Get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" || f.Has("client_secret") {
			return false
		}
		tok, err := jwt.Parse(f.Get("client_assertion"), func(*jwt.Token) (any, error) { return as.pub, nil },
			jwt.WithAudience(as.url()), jwt.WithIssuer(as.clientID), jwt.WithSubject(as.clientID),
			jwt.WithExpirationRequired(), jwt.WithIssuedAt())
		if err != nil || !tok.Valid {
			return false
		}
		jti, _ := tok.Claims.(jwt.MapClaims)["jti"].(string)
		return jti != ""
	}
	return false
}
