package auth

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/mcpguard/mcpguard/auth/authtest"
	"github.com/stretchr/testify/require"
)

// benchToken mints a realistic access token (about 700 bytes).
func benchToken(b *testing.B, idp *authtest.Server, k *authtest.Key) string {
	tok, err := idp.MintToken(authtest.Token{Key: k, Claims: map[string]any{
		"scope": "notes:read notes:write", "azp": "mcp-client", "tid": "72f988bf-86f1-41af-91ab-2d7cd011db47",
		"name": "Alice Example", "preferred_username": "alice@contoso.example",
	}})
	require.NoError(b, err)
	return tok
}

// BenchmarkJWTValidate compares, per algorithm, a cold validation (no
// cache: parse, key selection, signature, claims, principal) with the raw
// signature check of the same key through golang-jwt; and measures a warm
// (cached) validation.
func BenchmarkJWTValidate(b *testing.B) {
	clock := newFakeClock()
	idp := newIDP(b, clock)
	cold := newValidator(b, idp, clock, func(c *JWTConfig) { c.DisableCache = true })
	require.NoError(b, cold.Refresh(context.Background()))
	for _, k := range idp.Keys() {
		tok := benchToken(b, idp, k)
		i := strings.LastIndexByte(tok, '.')
		sig, err := b64.DecodeString(tok[i+1:])
		require.NoError(b, err)
		method, pub := jwt.GetSigningMethod(k.Alg()), k.Public()
		b.Run(k.Alg()+"/raw", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := method.Verify(tok[:i], sig, pub); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(k.Alg()+"/cold", func(b *testing.B) {
			b.ReportAllocs()
			ctx := context.Background()
			for b.Loop() {
				if _, err := cold.Validate(ctx, tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	// Interleaved: raw and cold alternate in one loop, so that load from
	// other processes hits both alike; reports their ratio.
	for _, k := range idp.Keys() {
		tok := benchToken(b, idp, k)
		i := strings.LastIndexByte(tok, '.')
		sig, err := b64.DecodeString(tok[i+1:])
		require.NoError(b, err)
		method, pub := jwt.GetSigningMethod(k.Alg()), k.Public()
		b.Run(k.Alg()+"/interleaved", func(b *testing.B) {
			ctx := context.Background()
			var raw, full time.Duration
			for b.Loop() {
				t0 := time.Now()
				if err := method.Verify(tok[:i], sig, pub); err != nil {
					b.Fatal(err)
				}
				t1 := time.Now()
				if _, err := cold.Validate(ctx, tok); err != nil {
					b.Fatal(err)
				}
				raw += t1.Sub(t0)
				full += time.Since(t1)
			}
			b.ReportMetric(float64(raw.Nanoseconds())/float64(b.N), "raw-ns/op")
			b.ReportMetric(float64(full.Nanoseconds())/float64(b.N), "cold-ns/op")
			b.ReportMetric(float64(full)/float64(raw), "cold/raw")
		})
	}
	b.Run("warm", func(b *testing.B) {
		warm := newValidator(b, idp, clock, nil)
		tok := benchToken(b, idp, idp.SigningKey())
		ctx := context.Background()
		_, err := warm.Validate(ctx, tok)
		require.NoError(b, err)
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			if _, err := warm.Validate(ctx, tok); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("warm-parallel", func(b *testing.B) {
		warm := newValidator(b, idp, clock, nil)
		toks := make([]string, 64)
		for i := range toks {
			toks[i] = benchToken(b, idp, idp.SigningKey())
			_, err := warm.Validate(context.Background(), toks[i])
			require.NoError(b, err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				if _, err := warm.Validate(context.Background(), toks[i%len(toks)]); err != nil {
					b.Error(err)
					return
				}
				i++
			}
		})
	})
	b.Run("reject-malformed", func(b *testing.B) {
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := cold.Validate(ctx, "eyJhbGciOiJub25lIn0.e30."); err == nil {
				b.Fatal("accepted")
			}
		}
	})
}
