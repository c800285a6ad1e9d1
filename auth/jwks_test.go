package auth

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpguard/mcpguard/auth/authtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func jwkJSON(t *testing.T, k *authtest.Key) string {
	t.Helper()
	j, err := k.JWK()
	require.NoError(t, err)
	return string(j)
}

// withMember adds or replaces JSON members of a JWK object.
func withMember(t *testing.T, jwk string, members map[string]any) string {
	t.Helper()
	m := map[string]any{}
	require.NoError(t, json.Unmarshal([]byte(jwk), &m))
	for k, v := range members {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	b, err := json.Marshal(m)
	require.NoError(t, err)
	return string(b)
}

func TestParseJWK(t *testing.T) {
	rs, err := authtest.GenerateKey("RS256", "rs")
	require.NoError(t, err)
	es, err := authtest.GenerateKey("ES256", "es")
	require.NoError(t, err)
	ed, err := authtest.GenerateKey("EdDSA", "ed")
	require.NoError(t, err)
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	require.NoError(t, err)
	weakKey, err := authtest.NewKey("weak", "RS256", weak)
	require.NoError(t, err)
	algs := DefaultAlgorithms()

	tests := []struct {
		name   string
		jwk    string
		usable bool
	}{
		{"RSA", jwkJSON(t, rs), true},
		{"EC", jwkJSON(t, es), true},
		{"OKP", jwkJSON(t, ed), true},
		{"no alg, no use", withMember(t, jwkJSON(t, es), map[string]any{"alg": nil, "use": nil}), true},
		{"key_ops verify", withMember(t, jwkJSON(t, es), map[string]any{"key_ops": []string{"verify"}}), true},
		{"symmetric oct key", `{"kty":"oct","kid":"h","k":"c2VjcmV0LXNlY3JldC1zZWNyZXQ"}`, false},
		{"oct key with alg HS256", `{"kty":"oct","kid":"h","alg":"HS256","k":"c2VjcmV0"}`, false},
		{"encryption key", withMember(t, jwkJSON(t, rs), map[string]any{"use": "enc"}), false},
		{"unknown use", withMember(t, jwkJSON(t, rs), map[string]any{"use": "other"}), false},
		{"key_ops without verify", withMember(t, jwkJSON(t, rs), map[string]any{"key_ops": []string{"encrypt"}}), false},
		{"alg outside the allow-list", withMember(t, jwkJSON(t, rs), map[string]any{"alg": "RS512"}), false},
		{"encryption alg", withMember(t, jwkJSON(t, rs), map[string]any{"alg": "RSA-OAEP"}), false},
		{"alg for another key type", withMember(t, jwkJSON(t, es), map[string]any{"alg": "RS256"}), false},
		{"EdDSA alg on an EC key", withMember(t, jwkJSON(t, es), map[string]any{"alg": "EdDSA"}), false},
		{"private exponent published", withMember(t, jwkJSON(t, rs), map[string]any{"d": "AQAB"}), false},
		{"RSA 1024 bits", jwkJSON(t, weakKey), false},
		{"case-variant member", withMember(t, jwkJSON(t, rs), map[string]any{"USE": "enc"}), false},
		{"EC point off the curve", withMember(t, jwkJSON(t, es), map[string]any{"y": "AQAB"}), false},
		{"RSA without n", withMember(t, jwkJSON(t, rs), map[string]any{"n": nil}), false},
		{"unknown kty", `{"kty":"XYZ","kid":"x"}`, false},
		{"not an object", `[1]`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := parseJWK(json.RawMessage(tt.jwk), algs)
			if tt.usable {
				require.NoError(t, err)
				assert.NotNil(t, k.key)
			} else {
				assert.Error(t, err)
				assert.Nil(t, k)
			}
		})
	}
}

func TestParseJWKS(t *testing.T) {
	es, err := authtest.GenerateKey("ES256", "es")
	require.NoError(t, err)
	good := jwkJSON(t, es)
	for _, tt := range []struct {
		name string
		doc  string
		n    int
	}{
		{"one good", `{"keys":[` + good + `]}`, 1},
		{"bad keys skipped", `{"keys":[{"kty":"oct","k":"AA"},` + good + `,{"kty":"RSA"}]}`, 1},
		{"only bad keys", `{"keys":[{"kty":"oct","k":"AA"}]}`, 0},
		{"empty", `{"keys":[]}`, 0},
		{"no keys member", `{"Keys":[` + good + `]}`, 0},
		{"keys not an array", `{"keys":{}}`, 0},
		{"not JSON", `<html>`, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			keys, err := parseJWKS([]byte(tt.doc), DefaultAlgorithms())
			if tt.n == 0 {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Len(t, keys, tt.n)
		})
	}
	t.Run("capped", func(t *testing.T) {
		members := make([]string, maxKeys+5)
		for i := range members {
			members[i] = withMember(t, good, map[string]any{"kid": fmt.Sprint("k", i)})
		}
		keys, err := parseJWKS([]byte(`{"keys":[`+strings.Join(members, ",")+`]}`), DefaultAlgorithms())
		require.NoError(t, err)
		assert.Len(t, keys, maxKeys)
	})
}

// The keyfunc trap: without a kid, keyfunc tries every key in the set, so
// an encryption key (or any key) can verify a token. We choose the key.
func TestJWTKeySelectionWithoutKID(t *testing.T) {
	clock := newFakeClock()

	t.Run("encryption key beside the one signature key", func(t *testing.T) {
		idp := newIDP(t, clock, "RS256")
		encKey, err := authtest.GenerateKey("RS256", "enc-1")
		require.NoError(t, err)
		require.NoError(t, idp.AddKey(encKey.WithUse("enc")))
		v := newValidator(t, idp, clock, nil)

		// Signed by the encryption key, no kid: the only usable key is the
		// signature key, so the signature fails.
		tok, err := idp.MintToken(authtest.Token{Key: encKey, Header: map[string]any{"kid": nil}})
		require.NoError(t, err)
		_, err = v.Validate(t.Context(), tok)
		assertDesc(t, err, descSignature)

		// Naming the encryption key does not help: it is not usable.
		tok, err = idp.MintToken(authtest.Token{Key: encKey})
		require.NoError(t, err)
		_, err = v.Validate(t.Context(), tok)
		assertDesc(t, err, descUnknownKey)

		// The signature key itself works without kid.
		tok, err = idp.MintToken(authtest.Token{Header: map[string]any{"kid": nil}})
		require.NoError(t, err)
		_, err = v.Validate(t.Context(), tok)
		assert.NoError(t, err)
	})

	t.Run("several signature keys", func(t *testing.T) {
		idp := newIDP(t, clock, "ES256", "EdDSA")
		v := newValidator(t, idp, clock, nil)
		for _, k := range idp.Keys() {
			tok, err := idp.MintToken(authtest.Token{Key: k, Header: map[string]any{"kid": nil}})
			require.NoError(t, err)
			_, err = v.Validate(t.Context(), tok)
			assertDesc(t, err, descKeyIDRequired)
		}
	})

	t.Run("published symmetric key", func(t *testing.T) {
		idp := newIDP(t, clock, "ES256")
		secret := []byte("published-secret-published-secret")
		require.NoError(t, idp.AddRawJWK(json.RawMessage(`{"kty":"oct","kid":"hmac-1","k":"`+b64.EncodeToString(secret)+`"}`)))
		v := newValidator(t, idp, clock, nil)
		for _, kid := range []any{nil, "hmac-1"} {
			h := map[string]any{"alg": "HS256"}
			if kid != nil {
				h["kid"] = kid
			}
			hb, err := json.Marshal(h)
			require.NoError(t, err)
			tok, err := authtest.Sign(hb, []byte(`{"sub":"x"}`), "HS256", secret)
			require.NoError(t, err)
			_, err = v.Validate(t.Context(), tok)
			assertDesc(t, err, descAlgorithm)
		}
	})

	t.Run("duplicate kid, one fitting key", func(t *testing.T) {
		idp := newIDP(t, clock, "ES256")
		ed, err := authtest.GenerateKey("EdDSA", idp.SigningKey().ID())
		require.NoError(t, err)
		require.NoError(t, idp.AddRawJWK(json.RawMessage(jwkJSON(t, ed))))
		v := newValidator(t, idp, clock, nil)
		_, err = v.Validate(t.Context(), idp.MustMint(nil))
		assert.NoError(t, err, "ES256 token: only the EC key with that kid fits")
		_, err = v.Validate(t.Context(), mustMintWith(t, idp, ed))
		assert.NoError(t, err, "EdDSA token: only the OKP key with that kid fits")
	})

	t.Run("duplicate kid, two fitting keys", func(t *testing.T) {
		idp := newIDP(t, clock, "ES256")
		twin, err := authtest.GenerateKey("ES256", idp.SigningKey().ID())
		require.NoError(t, err)
		require.NoError(t, idp.AddRawJWK(json.RawMessage(jwkJSON(t, twin))))
		v := newValidator(t, idp, clock, nil)
		_, err = v.Validate(t.Context(), idp.MustMint(nil))
		assertDesc(t, err, descKeyMismatch)
	})
}

func TestJWKSOutageKeepsKeys(t *testing.T) {
	tests := []struct {
		name  string
		fault authtest.Fault
		delay time.Duration
	}{
		{"down", authtest.FaultDown, 0},
		{"500", authtest.FaultStatus500, 0},
		{"garbage", authtest.FaultGarbage, 0},
		{"empty set", authtest.FaultEmpty, 0},
		{"oversized body", authtest.FaultOversized, 0},
		{"redirect to another host", authtest.FaultRedirect, 0},
		{"slower than the timeout", authtest.FaultNone, time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newFakeClock()
			idp := newIDP(t, clock, "ES256")
			v := newValidator(t, idp, clock, func(c *JWTConfig) { c.FetchTimeout = 200 * time.Millisecond })
			_, err := v.Validate(t.Context(), idp.MustMint(nil))
			require.NoError(t, err)
			require.Equal(t, 1, idp.JWKSFetches())

			idp.SetJWKSFault(tt.fault)
			idp.SetJWKSDelay(tt.delay)
			err = v.Refresh(t.Context())
			require.Error(t, err)
			assert.ErrorIs(t, err, ErrUnavailable)

			// New tokens (not cached) still validate with the keys held,
			// also after the refresh interval has passed.
			clock.Advance(2 * time.Hour)
			for range 3 {
				_, err = v.Validate(t.Context(), idp.MustMint(nil))
				require.NoError(t, err)
			}

			// A rotated key cannot be learnt while the endpoint is broken.
			clock.Advance(time.Minute)
			next, err := idp.Rotate("ES256")
			require.NoError(t, err)
			tok := mustMintWith(t, idp, next)
			_, err = v.Validate(t.Context(), tok)
			require.Error(t, err)
			assert.ErrorIs(t, err, ErrUnavailable)
			assertNoTokenLeak(t, tok, err)
			assert.Equal(t, 0, idp.RedirectFetches(), "redirect to another host followed")

			// Recovery: the next window fetches again and learns the key.
			idp.SetJWKSFault(authtest.FaultNone)
			idp.SetJWKSDelay(0)
			clock.Advance(time.Minute)
			_, err = v.Validate(t.Context(), tok)
			assert.NoError(t, err)
		})
	}
}

func TestJWKSRedirectedKeyNeverTrusted(t *testing.T) {
	clock := newFakeClock()
	idp := newIDP(t, clock, "ES256")
	idp.SetJWKSFault(authtest.FaultRedirect)
	v := newValidator(t, idp, clock, nil)
	tok := mustMintWith(t, idp, idp.RedirectKey())
	_, err := v.Validate(t.Context(), tok)
	require.ErrorIs(t, err, ErrUnavailable)
	assert.Equal(t, 0, idp.RedirectFetches())
	assert.Contains(t, err.Error(), "redirect to another host")
}

func TestSafeClientRedirects(t *testing.T) {
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("other")) }))
	defer other.Close()
	mux := http.NewServeMux()
	mux.HandleFunc("/same", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/final", http.StatusFound) })
	mux.HandleFunc("/cross", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, other.URL, http.StatusFound) })
	mux.HandleFunc("/loop", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/loop", http.StatusFound) })
	mux.HandleFunc("/final", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("final")) })
	srv := httptest.NewServer(mux)
	defer srv.Close()

	called := false
	c := safeClient(&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { called = true; return nil }})
	body, err := getBounded(t.Context(), c, srv.URL+"/same", "*/*")
	require.NoError(t, err)
	assert.Equal(t, "final", string(body))
	assert.True(t, called, "the caller's own redirect policy still runs")
	_, err = getBounded(t.Context(), c, srv.URL+"/cross", "*/*")
	assert.ErrorContains(t, err, "redirect to another host")
	_, err = getBounded(t.Context(), c, srv.URL+"/loop", "*/*")
	assert.ErrorContains(t, err, "too many redirects")
}

func TestJWKSFirstFetchFailsThenRecovers(t *testing.T) {
	clock := newFakeClock()
	idp := newIDP(t, clock, "ES256")
	idp.SetJWKSFault(authtest.FaultStatus500)
	v := newValidator(t, idp, clock, nil)
	tok := idp.MustMint(nil)
	for range 5 {
		_, err := v.Validate(t.Context(), tok)
		var e *Error
		require.ErrorAs(t, err, &e)
		assert.Equal(t, http.StatusServiceUnavailable, e.Status)
		assert.ErrorIs(t, err, ErrUnavailable)
		assertNoTokenLeak(t, tok, err)
	}
	assert.Equal(t, 1, idp.JWKSFetches(), "failed first fetch is retried only after the cooldown")
	idp.SetJWKSFault(authtest.FaultNone)
	clock.Advance(DefaultRefetchCooldown)
	_, err := v.Validate(t.Context(), tok)
	require.NoError(t, err)
	assert.Equal(t, 2, idp.JWKSFetches())
}

func randomKID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// validateAll validates toks from 16 goroutines and returns the errors.
func validateAll(v *JWTValidator, toks []string) []error {
	errs := make([]error, len(toks))
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := g; i < len(toks); i += 16 {
				_, errs[i] = v.Validate(context.Background(), toks[i])
			}
		})
	}
	wg.Wait()
	return errs
}

func TestJWKSUnknownKIDFlood(t *testing.T) {
	clock := newFakeClock()
	idp := newIDP(t, clock, "ES256")
	flood := make([]string, 1000)
	for i := range flood {
		tok, err := idp.MintToken(authtest.Token{Header: map[string]any{"kid": randomKID()}})
		require.NoError(t, err)
		flood[i] = tok
	}

	for _, warm := range []bool{false, true} {
		t.Run(fmt.Sprintf("keys held %v", warm), func(t *testing.T) {
			before := idp.JWKSFetches()
			v := newValidator(t, idp, clock, nil)
			if warm {
				_, err := v.Validate(t.Context(), idp.MustMint(nil))
				require.NoError(t, err)
			}
			for i, err := range validateAll(v, flood) {
				require.Error(t, err, i)
				assert.ErrorIs(t, err, ErrInvalidToken)
			}
			assert.LessOrEqual(t, idp.JWKSFetches()-before, 2, "JWKS fetches caused by 1,000 unknown kids")
		})
	}

	t.Run("a new signing key is learnt within one cooldown during a flood", func(t *testing.T) {
		v := newValidator(t, idp, clock, nil)
		_, err := v.Validate(t.Context(), idp.MustMint(nil))
		require.NoError(t, err)
		validateAll(v, flood[:100]) // the flood has used this window's refetch

		next, err := idp.Rotate("ES256")
		require.NoError(t, err)
		fresh := idp.MustMint(nil)
		_, err = v.Validate(t.Context(), fresh)
		assertDesc(t, err, descUnknownKey) // still inside the cooldown
		require.Equal(t, next.ID(), idp.SigningKey().ID())

		before := idp.JWKSFetches()
		clock.Advance(DefaultRefetchCooldown)
		mixed := append([]string{}, flood...)
		for i := 0; i < len(mixed); i += 50 {
			mixed[i] = fresh
		}
		errs := validateAll(v, mixed)
		for i, err := range errs {
			if mixed[i] == fresh {
				require.NoError(t, err, "the new key's token at %d", i)
			} else {
				require.Error(t, err)
			}
		}
		assert.Equal(t, 1, idp.JWKSFetches()-before, "one refetch for the whole window")
	})
}

func TestJWKSPeriodicRefreshAndKeyRetirement(t *testing.T) {
	clock := newFakeClock()
	idp := newIDP(t, clock, "ES256")
	v := newValidator(t, idp, clock, func(c *JWTConfig) { c.RefreshInterval = 10 * time.Minute })
	old := idp.MustMint(nil)
	_, err := v.Validate(t.Context(), old)
	require.NoError(t, err)
	require.Equal(t, 1, v.cache.len())

	clock.Advance(9 * time.Minute)
	_, err = v.Validate(t.Context(), idp.MustMint(nil))
	require.NoError(t, err)
	assert.Equal(t, 1, idp.JWKSFetches(), "no refresh before the interval")

	// The issuer rotates and retires the old key; the refresh notices and
	// the cached token (verified with the retired key) stops validating.
	oldKID := idp.SigningKey().ID()
	_, err = idp.Rotate("ES256")
	require.NoError(t, err)
	require.NoError(t, idp.RetireKey(oldKID))
	clock.Advance(2 * time.Minute)
	_, err = v.Validate(t.Context(), old) // cache hit; starts the background refresh
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		_, err := v.Validate(t.Context(), old)
		return err != nil
	}, 10*time.Second, 5*time.Millisecond)
	_, err = v.Validate(t.Context(), old)
	assertDesc(t, err, descUnknownKey)
	// The refresh, plus at most one refetch for the now unknown kid.
	assert.Contains(t, []int{2, 3}, idp.JWKSFetches())
	_, err = v.Validate(t.Context(), idp.MustMint(nil))
	assert.NoError(t, err)
}

func TestJWKSDiscovery(t *testing.T) {
	tests := []struct {
		name        string
		cfg         authtest.Config
		edit        func(doc map[string]any)
		metaFetches int
		wantErr     string
	}{
		{name: "OIDC discovery", cfg: authtest.Config{}, metaFetches: 1},
		{name: "OIDC discovery with an issuer path", cfg: authtest.Config{IssuerPath: "/realms/acme"}, metaFetches: 1},
		{name: "RFC 8414 fallback", cfg: authtest.Config{DisableOIDCDiscovery: true}, metaFetches: 2},
		{name: "RFC 8414 fallback with an issuer path", cfg: authtest.Config{DisableOIDCDiscovery: true, IssuerPath: "/tenant/a"}, metaFetches: 2},
		{name: "issuer mismatch", edit: func(d map[string]any) { d["issuer"] = "https://evil.example" }, metaFetches: 2, wantErr: "metadata issuer does not match"},
		{name: "no jwks_uri", edit: func(d map[string]any) { delete(d, "jwks_uri") }, metaFetches: 2, wantErr: "no jwks_uri"},
		{name: "plain-http jwks_uri elsewhere", edit: func(d map[string]any) { d["jwks_uri"] = "http://198.51.100.7/jwks" }, metaFetches: 2, wantErr: "plain http"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newFakeClock()
			cfg := tt.cfg
			cfg.TB, cfg.Now, cfg.Algorithms = t, clock.Now, []string{"ES256"}
			idp, err := authtest.New(cfg)
			require.NoError(t, err)
			if tt.edit != nil {
				idp.EditMetadata(tt.edit)
			}
			v := newValidator(t, idp, clock, func(c *JWTConfig) { c.JWKSURL = "" })
			tok := idp.MustMint(nil)
			_, err = v.Validate(t.Context(), tok)
			assert.Equal(t, tt.metaFetches, idp.MetadataFetches())
			if tt.wantErr != "" {
				require.ErrorIs(t, err, ErrUnavailable)
				assert.Contains(t, err.Error(), tt.wantErr)
				assert.Equal(t, 0, idp.JWKSFetches())
				return
			}
			require.NoError(t, err)
			require.NoError(t, v.Refresh(t.Context()))
			assert.Equal(t, tt.metaFetches, idp.MetadataFetches(), "the jwks_uri is discovered once")
			assert.Equal(t, 2, idp.JWKSFetches())
		})
	}
}

func TestJWKSRediscoveredAfterFailure(t *testing.T) {
	clock := newFakeClock()
	idp := newIDP(t, clock, "ES256")
	v := newValidator(t, idp, clock, func(c *JWTConfig) { c.JWKSURL = "" })
	require.NoError(t, v.Refresh(t.Context()))
	require.NoError(t, v.Refresh(t.Context()))
	assert.Equal(t, 1, idp.MetadataFetches(), "jwks_uri remembered while it works")
	idp.SetJWKSFault(authtest.FaultStatus500)
	require.Error(t, v.Refresh(t.Context()))
	idp.SetJWKSFault(authtest.FaultNone)
	require.NoError(t, v.Refresh(t.Context()))
	assert.Equal(t, 2, idp.MetadataFetches(), "a failing jwks_uri is discovered again")
}

// fetchRunning reports whether v's own key source has a fetch in flight.
// (Counting goroutines across the process would also count other tests'
// validators and made this check flaky.)
func fetchRunning(v *JWTValidator) bool {
	v.keys.mu.Lock()
	defer v.keys.mu.Unlock()
	return v.keys.inflight != nil
}

func TestJWTValidatorCloseStopsFetches(t *testing.T) {
	clock := newFakeClock()
	idp := newIDP(t, clock, "ES256")
	idp.SetJWKSDelay(time.Hour)
	v, err := NewJWTValidator(JWTConfig{Issuer: idp.Issuer(), Audience: idp.Audience(), JWKSURL: idp.JWKSURL(),
		Now: clock.Now, FetchTimeout: time.Minute})
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := v.Validate(ctx, idp.MustMint(nil))
		done <- err
	}()
	require.Eventually(t, func() bool { return idp.JWKSFetches() == 1 }, 10*time.Second, time.Millisecond)
	cancel() // the caller gives up; the shared fetch goes on
	err = <-done
	require.ErrorIs(t, err, ErrUnavailable)
	assert.ErrorIs(t, err, context.Canceled)
	assert.True(t, fetchRunning(v), "the fetch should still be running")

	require.NoError(t, v.Close()) // cancels the fetch and waits for it
	assert.False(t, fetchRunning(v), "a fetch left running after Close")

	// After Close, no fetch starts, even once the cooldown has passed.
	clock.Advance(time.Minute)
	_, err = v.Validate(t.Context(), idp.MustMint(nil))
	require.ErrorIs(t, err, ErrUnavailable)
	assert.ErrorContains(t, err, "closed")
	assert.Equal(t, 1, idp.JWKSFetches())
	assert.False(t, fetchRunning(v))
	require.NoError(t, v.Close())
}

func TestJWTValidatorRefresh(t *testing.T) {
	clock := newFakeClock()
	idp := newIDP(t, clock, "ES256")
	v := newValidator(t, idp, clock, nil)
	require.NoError(t, v.Refresh(t.Context()))
	require.NoError(t, v.Refresh(t.Context()), "Refresh ignores the cooldown")
	assert.Equal(t, 2, idp.JWKSFetches())

	idp.SetJWKSDelay(time.Hour)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	assert.ErrorIs(t, v.Refresh(ctx), context.DeadlineExceeded)
}
