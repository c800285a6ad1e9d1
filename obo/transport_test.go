package obo_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/obo"
)

// downstream records the Authorization header of every request.
type downstream struct {
	srv   *httptest.Server
	calls atomic.Int64
	auths chan string
}

func newDownstream(t *testing.T) *downstream {
	t.Helper()
	d := &downstream{auths: make(chan string, 100)}
	d.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d.calls.Add(1)
		d.auths <- r.Header.Get("Authorization")
		if r.URL.Path == "/moved" {
			http.Redirect(w, r, "/api", http.StatusFound)
			return
		}
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(d.srv.Close)
	return d
}

type trackedBody struct {
	io.Reader
	closed atomic.Bool
}

func (b *trackedBody) Close() error { b.closed.Store(true); return nil }

func TestTransport(t *testing.T) {
	as := newFakeAS(t, "client_secret_basic")
	ex := newExchanger(t, as, nil)
	ds := newDownstream(t)
	tr, err := ex.Transport(calendar, nil)
	require.NoError(t, err)
	client := &http.Client{Transport: tr}

	t.Run("sends the exchanged token, replacing any inbound one, on a clone", func(t *testing.T) {
		req, err := http.NewRequestWithContext(userCtx(alice), http.MethodGet, ds.srv.URL+"/api", nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+alice) // a careless tool copied the inbound header
		resp, err := client.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		got := <-ds.auths
		require.True(t, strings.HasPrefix(got, "Bearer dt."))
		assert.NotContains(t, got, alice[:10]+alice[10:]) // not the raw inbound token
		it := decodeIssued(t, strings.TrimPrefix(got, "Bearer "))
		assert.Equal(t, alice, it.Sub)
		assert.Equal(t, "calendar-api", it.Aud)
		assert.Equal(t, "Bearer "+alice, req.Header.Get("Authorization"), "the caller's request is not modified")
	})

	t.Run("no credential: error, nothing sent, body closed", func(t *testing.T) {
		before := ds.calls.Load()
		asBefore := as.calls.Load()
		body := &trackedBody{Reader: strings.NewReader("payload")}
		req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, ds.srv.URL+"/api", body)
		require.NoError(t, err)
		_, err = client.Do(req)
		require.ErrorIs(t, err, obo.ErrNoCredential)
		assert.Equal(t, before, ds.calls.Load(), "no unauthenticated request went out")
		assert.Equal(t, asBefore, as.calls.Load())
		assert.True(t, body.closed.Load())
	})

	t.Run("inbound token elsewhere in the request: refused", func(t *testing.T) {
		before := ds.calls.Load()
		for _, mk := range []func() *http.Request{
			func() *http.Request {
				r, _ := http.NewRequestWithContext(userCtx(alice), http.MethodGet, ds.srv.URL+"/api", nil)
				r.Header.Set("X-Forwarded-Access-Token", alice)
				return r
			},
			func() *http.Request {
				r, _ := http.NewRequestWithContext(userCtx(alice), http.MethodGet, ds.srv.URL+"/api?access_token="+alice, nil)
				return r
			},
		} {
			// RoundTrip directly: http.Client would quote the caller's own URL.
			_, err := tr.RoundTrip(mk())
			require.ErrorIs(t, err, obo.ErrPassthrough)
			assertNoSecrets(t, err.Error(), alice)
		}
		assert.Equal(t, before, ds.calls.Load())
	})

	t.Run("exchange failure: nothing sent", func(t *testing.T) {
		before := ds.calls.Load()
		as.respond = func(url.Values) (int, any) { return 400, map[string]string{"error": "invalid_grant"} }
		defer func() { as.respond = nil }()
		req, _ := http.NewRequestWithContext(userCtx(bob), http.MethodGet, ds.srv.URL+"/api", nil)
		_, err := client.Do(req)
		require.ErrorIs(t, err, obo.ErrRejected)
		assert.Equal(t, before, ds.calls.Load())
	})

	t.Run("zero Transport fails closed", func(t *testing.T) {
		req, _ := http.NewRequestWithContext(userCtx(alice), http.MethodGet, ds.srv.URL+"/api", nil)
		_, err := (&obo.Transport{}).RoundTrip(req)
		require.ErrorIs(t, err, obo.ErrConfig)
	})
}

func TestClientRedirects(t *testing.T) {
	as := newFakeAS(t, "client_secret_basic")
	ex := newExchanger(t, as, nil)
	ds := newDownstream(t)
	other := newDownstream(t)
	hop := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.srv.URL+"/api", http.StatusTemporaryRedirect)
	}))
	defer hop.Close()
	client, err := ex.Client(calendar, nil)
	require.NoError(t, err)

	req, _ := http.NewRequestWithContext(userCtx(alice), http.MethodGet, ds.srv.URL+"/moved", nil)
	resp, err := client.Do(req)
	require.NoError(t, err, "same-origin redirects are followed")
	resp.Body.Close()
	assert.EqualValues(t, 2, ds.calls.Load())

	req, _ = http.NewRequestWithContext(userCtx(alice), http.MethodGet, hop.URL+"/x", nil)
	_, err = client.Do(req)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "another origin")
	assert.Zero(t, other.calls.Load(), "the exchanged token never reaches another origin")
}

func TestClientCredentialsTransport(t *testing.T) {
	as := newFakeAS(t, "client_secret_post")
	ex := newExchanger(t, as, nil)
	ds := newDownstream(t)
	client, err := ex.Client(obo.Target{Flavor: obo.ClientCredentials, Scopes: []string{"jobs.run"}}, nil)
	require.NoError(t, err)
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, ds.srv.URL+"/api", nil)
	resp, err := client.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	it := decodeIssued(t, strings.TrimPrefix(<-ds.auths, "Bearer "))
	assert.Equal(t, "mcp-server", it.Sub)
	assert.Equal(t, "client_credentials", it.Grant)
}

func TestTokenSource(t *testing.T) {
	as := newFakeAS(t, "client_secret_basic")
	ex := newExchanger(t, as, nil)
	ts, err := ex.TokenSource(userCtx(bob), calendar)
	require.NoError(t, err)
	tok, err := ts.Token()
	require.NoError(t, err)
	assert.True(t, tok.Valid())
	assert.Equal(t, "Bearer", tok.Type())
	assert.Equal(t, bob, decodeIssued(t, tok.AccessToken).Sub)
	again, err := ts.Token()
	require.NoError(t, err)
	assert.Equal(t, tok.AccessToken, again.AccessToken)
	assert.EqualValues(t, 1, as.calls.Load())

	none, err := ex.TokenSource(auth.NewContext(context.Background(), &auth.Principal{Subject: "bob"}), calendar)
	require.NoError(t, err)
	_, err = none.Token()
	require.ErrorIs(t, err, obo.ErrNoCredential)
}

// TestTransportPassthroughEncoded: an inbound token put in the query the
// way a tool builds one (url.Values, so percent-encoded) is the inbound
// token still, and is refused like the token written out. An opaque token
// of the standard base64 alphabet changes when encoded: "+", "/" and "="
// are escaped, so it was sent downstream.
func TestTransportPassthroughEncoded(t *testing.T) {
	as := newFakeAS(t, "client_secret_basic")
	ex := newExchanger(t, as, nil)
	ds := newDownstream(t)
	tr, err := ex.Transport(calendar, nil)
	require.NoError(t, err)
	const inbound = "2YotnFZ+FEjr1z/CsicMWpAA=="
	tests := map[string]string{
		"url.Values":                 "?" + url.Values{"access_token": {inbound}}.Encode(),
		"PathEscape in the query":    "?t=" + url.PathEscape(inbound),
		"lower-case escapes":         "?t=" + strings.NewReplacer("%2B", "%2b", "%2F", "%2f", "%3D", "%3d").Replace(url.QueryEscape(inbound)),
		"after a malformed pair":     "?x=%zz&t=" + url.QueryEscape(inbound),
		"escaped path":               "/api/" + url.PathEscape(inbound),
		"escaped in a later segment": "?a=1;t=" + url.QueryEscape(inbound),
	}
	for name, suffix := range tests {
		t.Run(name, func(t *testing.T) {
			before := ds.calls.Load()
			req, err := http.NewRequestWithContext(userCtx(inbound), http.MethodGet, ds.srv.URL+suffix, nil)
			require.NoError(t, err)
			_, err = tr.RoundTrip(req)
			require.ErrorIs(t, err, obo.ErrPassthrough)
			assertNoSecrets(t, err.Error(), inbound)
			assert.Equal(t, before, ds.calls.Load(), "nothing sent")
		})
	}
	t.Run("another value is sent", func(t *testing.T) {
		req, err := http.NewRequestWithContext(userCtx(inbound), http.MethodGet, ds.srv.URL+"/api?"+url.Values{"q": {"a+b/c="}}.Encode(), nil)
		require.NoError(t, err)
		resp, err := tr.RoundTrip(req)
		require.NoError(t, err)
		_ = resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode)
	})
}

// TestTransportPassthroughServiceTarget: a Transport for a
// ClientCredentials target needs no user credential, but a request it
// sends from within a user's request may still carry that user's inbound
// token; it is refused like any other passthrough. The check ran for the
// user flavors only, so such a request went downstream with the token.
func TestTransportPassthroughServiceTarget(t *testing.T) {
	as := newFakeAS(t, "client_secret_basic")
	ex := newExchanger(t, as, nil)
	ds := newDownstream(t)
	tr, err := ex.Transport(obo.Target{Flavor: obo.ClientCredentials, Audience: "billing-api"}, nil)
	require.NoError(t, err)

	req, err := http.NewRequestWithContext(userCtx(alice), http.MethodGet, ds.srv.URL+"/api", nil)
	require.NoError(t, err)
	req.Header.Set("X-Forwarded-Access-Token", alice)
	_, err = tr.RoundTrip(req)
	require.ErrorIs(t, err, obo.ErrPassthrough)
	assertNoSecrets(t, err.Error(), alice)
	assert.Zero(t, ds.calls.Load(), "nothing sent")

	// Without the inbound token, and without any user, it is sent.
	for _, ctx := range []context.Context{userCtx(alice), context.Background()} {
		req, err = http.NewRequestWithContext(ctx, http.MethodGet, ds.srv.URL+"/api", nil)
		require.NoError(t, err)
		resp, err := tr.RoundTrip(req)
		require.NoError(t, err)
		_ = resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode)
	}
}
