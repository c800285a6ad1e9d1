package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/auth/authtest"
)

func TestAuthParam(t *testing.T) {
	for _, tc := range []struct {
		name, header, param, want string
		ok                        bool
	}{
		{"quoted", `DPoP resource_metadata="http://h/x"`, "resource_metadata", "http://h/x", true},
		{"after another param", `Bearer error="invalid_token", scope="a b"`, "scope", "a b", true},
		{"token value", `Bearer scope=read, error="x"`, "scope", "read", true},
		{"suffix of another name is not it", `Bearer xscope="no", scope="yes"`, "scope", "yes", true},
		{"absent", `Bearer error="invalid_token"`, "scope", "", false},
		{"unterminated quote", `Bearer scope="a b`, "scope", "", false},
		{"empty header", ``, "scope", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := authParam(tc.header, tc.param)
			assert.Equal(t, tc.ok, ok)
			assert.Equal(t, tc.want, got)
		})
	}
}

// FuzzAuthParam: authParam never panics, and what it returns is part of
// the header, without a quote.
func FuzzAuthParam(f *testing.F) {
	f.Add(`DPoP resource_metadata="http://h/x", error="use_dpop_nonce"`, "resource_metadata")
	f.Add(`Bearer scope=read`, "scope")
	f.Add(`scope="`, "scope")
	f.Fuzz(func(t *testing.T, h, name string) {
		v, ok := authParam(h, name)
		if !ok {
			assert.Empty(t, v)
			return
		}
		assert.Contains(t, h, v)
		assert.NotContains(t, v, `"`)
	})
}

// fakeAS is an authorization server and MCP server pair, each answer
// breakable, to show the flow refuses what it must.
type fakeAS struct {
	srv      *httptest.Server
	break_   string
	tokenReq url.Values
	proofs   int
}

func newFakeAS(t *testing.T, brk string) *fakeAS {
	f := &fakeAS{break_: brk}
	mux := http.NewServeMux()
	base := func() string { return f.srv.URL }
	mux.HandleFunc("POST /mcp", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("WWW-Authenticate", `DPoP resource_metadata="`+base()+`/.well-known/oauth-protected-resource/mcp"`)
		w.WriteHeader(http.StatusUnauthorized)
	})
	mux.HandleFunc("GET /.well-known/oauth-protected-resource/mcp", func(w http.ResponseWriter, r *http.Request) {
		res := base() + "/mcp"
		if f.break_ == "prm resource" {
			res = "http://elsewhere.example/mcp"
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"resource": res, "authorization_servers": []string{base()}})
	})
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", func(w http.ResponseWriter, r *http.Request) {
		iss := base()
		if f.break_ == "metadata issuer" {
			iss = "https://attacker.example"
		}
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer": iss, "authorization_endpoint": base() + "/authorize", "token_endpoint": base() + "/token",
			"registration_endpoint": base() + "/register", "code_challenge_methods_supported": []string{"S256"},
			"authorization_response_iss_parameter_supported": true, "dpop_signing_alg_values_supported": []string{"ES256"},
		})
	})
	mux.HandleFunc("POST /register", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(map[string]any{"client_id": "c1"})
	})
	mux.HandleFunc("GET /authorize", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		back := url.Values{"code": {"the-code"}, "state": {q.Get("state")}, "iss": {base()}}
		switch f.break_ {
		case "state":
			back.Set("state", "other")
		case "iss":
			back.Set("iss", base()+"/")
		case "no iss":
			back.Del("iss")
		}
		http.Redirect(w, r, q.Get("redirect_uri")+"?"+back.Encode(), http.StatusFound)
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		require.NoError(t, r.ParseForm())
		f.tokenReq = r.PostForm
		if r.Header.Get("DPoP") != "" {
			f.proofs++
		}
		typ := "DPoP"
		if f.break_ == "bearer" {
			typ = "Bearer"
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": "at", "token_type": typ})
	})
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

// TestFlowFailsClosed: the authorization flow gets a DPoP token from a
// well-behaved server pair, and refuses each broken answer.
func TestFlowFailsClosed(t *testing.T) {
	key, err := authtest.NewDPoPKey("ES256")
	require.NoError(t, err)
	hc := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	t.Run("well-behaved", func(t *testing.T) {
		as := newFakeAS(t, "")
		tok, err := (&flow{hc: hc, key: key, serverURL: as.srv.URL + "/mcp"}).authorize(ctx)
		require.NoError(t, err)
		assert.Equal(t, "at", tok)
		assert.Equal(t, 1, as.proofs, "the token request carries a proof")
		assert.Equal(t, as.srv.URL+"/mcp", as.tokenReq.Get("resource"))
		assert.Equal(t, "authorization_code", as.tokenReq.Get("grant_type"))
		assert.Len(t, as.tokenReq.Get("code_verifier"), 43)
	})
	for brk, want := range map[string]string{
		"prm resource":    "is not the server URL",
		"metadata issuer": "is not the authorization server",
		"state":           "state does not match",
		"iss":             "iss is missing or is not",
		"no iss":          "iss is missing or is not",
		"bearer":          `token_type "Bearer", want DPoP`,
	} {
		t.Run(brk, func(t *testing.T) {
			as := newFakeAS(t, brk)
			_, err := (&flow{hc: hc, key: key, serverURL: as.srv.URL + "/mcp"}).authorize(ctx)
			require.Error(t, err)
			assert.Contains(t, err.Error(), want)
			assert.NotContains(t, err.Error(), "the-code", "no credential in the error")
		})
	}
}

// TestStepOneNeeds401: a server that does not challenge is not authorized
// against.
func TestStepOneNeeds401(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	_, err := (&flow{hc: srv.Client(), serverURL: srv.URL}).authorize(context.Background())
	require.Error(t, err)
	assert.True(t, strings.Contains(err.Error(), "want 401"), err.Error())
}
