package auth

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/mcpguard/mcpguard/auth/authtest"
)

// BenchmarkDPoPProof compares the full proof check of parseDPoPProof
// (header, jwk, thumbprint, signature, claims) with the raw ES256
// verification it contains. Goal: ≤ 1.2×.
func BenchmarkDPoPProof(b *testing.B) {
	k, err := authtest.NewDPoPKey("ES256")
	if err != nil {
		b.Fatal(err)
	}
	proof := k.MustSign(authtest.Proof{Method: "POST", URL: dpopResource, AccessToken: "tok"})
	cache := &jwkCache{}
	methods := map[string]jwt.SigningMethod{"ES256": jwt.SigningMethodES256}
	i := strings.LastIndexByte(proof, '.')
	sig, _ := b64.DecodeString(proof[i+1:])
	pub := k.Key().Public()
	b.Run("raw-ES256", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := jwt.SigningMethodES256.Verify(proof[:i], sig, pub); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("proof", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, e := parseDPoPProof(proof, methods, cache); e != nil {
				b.Fatal(e)
			}
		}
	})
	// interleaved runs both in every iteration and reports their ratio: on
	// a loaded machine the two separate runs above see different load, the
	// halves of one iteration nearly the same. ns/op is the sum of both.
	b.Run("interleaved", func(b *testing.B) {
		var raw, full time.Duration
		for b.Loop() {
			t0 := time.Now()
			if err := jwt.SigningMethodES256.Verify(proof[:i], sig, pub); err != nil {
				b.Fatal(err)
			}
			t1 := time.Now()
			if _, e := parseDPoPProof(proof, methods, cache); e != nil {
				b.Fatal(e)
			}
			raw += t1.Sub(t0)
			full += time.Since(t1)
		}
		if raw > 0 {
			b.ReportMetric(float64(full)/float64(raw), "proof/raw")
		}
	})
}

// BenchmarkDPoPMiddlewareWarm is one request through Middleware with a
// cached DPoP-bound token and a fresh proof (signed beforehand, outside
// the timer): the per-request cost DPoP adds on the warm path.
func BenchmarkDPoPMiddlewareWarm(b *testing.B) {
	idp := newIDP(b, nil)
	key, err := authtest.NewDPoPKey("ES256")
	if err != nil {
		b.Fatal(err)
	}
	v := newValidator(b, idp, nil, func(c *JWTConfig) { c.DPoP = DPoPConfig{Mode: DPoPRequired, Resource: dpopResource} })
	mw, err := Middleware(v, MiddlewareConfig{ResourceMetadataURL: testMetaURL})
	if err != nil {
		b.Fatal(err)
	}
	h := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	tok := idp.MustMintBound(nil, key)
	const pool = 4096
	proofs := make([]string, pool)
	for i := range proofs {
		proofs[i] = key.MustSign(authtest.Proof{Method: "POST", URL: dpopResource, AccessToken: tok})
	}
	r := httptest.NewRequest(http.MethodPost, dpopResource, nil)
	r.Header.Set("Authorization", "DPoP "+tok)
	w := httptest.NewRecorder()
	r.Header.Set("DPoP", proofs[0])
	h.ServeHTTP(w, r) // warm the token cache
	b.ReportAllocs()
	n := 1
	for b.Loop() {
		if n == pool {
			// Fresh jtis would be needed beyond the pool; re-sign outside
			// the measurement.
			b.StopTimer()
			for i := range proofs {
				proofs[i] = key.MustSign(authtest.Proof{Method: "POST", URL: dpopResource, AccessToken: tok})
			}
			n = 0
			b.StartTimer()
		}
		r.Header.Set("DPoP", proofs[n])
		n++
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != 200 {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
}
