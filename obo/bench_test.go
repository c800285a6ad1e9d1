package obo_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/auth/authtest"
	"github.com/mcpguard/mcpguard/obo"
)

// benchSubject returns a token-shaped subject of about n bytes: ~300 is a
// small ES256 token, ~900 a typical RS256 access token, ~2,000 an Entra
// token with groups. The cache key hashes all of it (SHA-256), so the
// lookup cost grows with it.
func benchSubject(n, i int) string {
	return fmt.Sprintf("eyJhbGciOiJSUzI1NiJ9.%s.%d", strings.Repeat("Q", n-30), i)
}

func warmExchanger(b *testing.B, users, size int) (*obo.Exchanger, []context.Context) {
	as := newFakeAS(b, "client_secret_basic")
	ex := newExchanger(b, as, nil)
	ctxs := make([]context.Context, users)
	for i := range ctxs {
		ctxs[i] = userCtx(benchSubject(size, i))
		_, err := ex.Token(ctxs[i], calendar)
		require.NoError(b, err)
	}
	return ex, ctxs
}

// BenchmarkTokenCached is the hot path: a token for a user and target
// already in the cache (budget: <= 1 µs).
func BenchmarkTokenCached(b *testing.B) {
	for _, size := range []int{300, 900, 2000} {
		b.Run(fmt.Sprintf("subject=%dB", size), func(b *testing.B) {
			ex, ctxs := warmExchanger(b, 1, size)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := ex.Token(ctxs[0], calendar); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkTokenSourceCached: the same lookup through a TokenSource, whose
// target is compiled once.
func BenchmarkTokenSourceCached(b *testing.B) {
	ex, ctxs := warmExchanger(b, 1, 900)
	ts, err := ex.TokenSource(ctxs[0], calendar)
	require.NoError(b, err)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := ts.Token(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTokenCachedParallel: many users' cached tokens looked up from
// all cores at once.
func BenchmarkTokenCachedParallel(b *testing.B) {
	ex, ctxs := warmExchanger(b, 64, 900)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := ex.Token(ctxs[i%len(ctxs)], calendar); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}

// BenchmarkTokenCachedObserved: BenchmarkTokenCached/subject=900B with a
// Config.Observer that does nothing: a cache hit reports to
// ObserveExchange only (StartExchange is for exchanges made), so it must
// stay allocation-free.
func BenchmarkTokenCachedObserved(b *testing.B) {
	as := newFakeAS(b, "client_secret_basic")
	obs := &countingStarts{observerFunc: func(context.Context, obo.ExchangeEvent) {}}
	ex := newExchanger(b, as, func(c *obo.Config) { c.Observer = obs })
	ctx := userCtx(benchSubject(900, 0))
	_, err := ex.Token(ctx, calendar)
	require.NoError(b, err)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := ex.Token(ctx, calendar); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if n := obs.starts.Load(); n != 1 {
		b.Fatalf("%d exchanges started, want the warm-up's only", n)
	}
}

type nopTransport struct{}

func (nopTransport) RoundTrip(*http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: 200, Body: io.NopCloser(strings.NewReader(""))}, nil
}

// BenchmarkTransportCached: RoundTrip with a cached token and a base
// transport that does nothing — the cost the Transport adds per request.
func BenchmarkTransportCached(b *testing.B) {
	ex, ctxs := warmExchanger(b, 1, 900)
	tr, err := ex.Transport(calendar, nopTransport{})
	require.NoError(b, err)
	req, err := http.NewRequestWithContext(ctxs[0], http.MethodGet, "https://calendar.example.com/events", nil)
	require.NoError(b, err)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := tr.RoundTrip(req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTransportDPoP: RoundTrip with a cached DPoP-bound token (from
// the test IdP) and a base transport that does nothing — the per-request
// cost of signing a fresh ES256 proof, next to BenchmarkTransportCached.
func BenchmarkTransportDPoP(b *testing.B) {
	s := newIDP(b, authtest.Config{})
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(b, err)
	ex := s.exchanger(b, obo.ClientSecretBasic, func(c *obo.Config) { c.DPoPKey = &obo.PrivateKey{Signer: key} })
	target := obo.Target{Flavor: obo.ClientCredentials, Resource: "https://calendar.example.com"}
	tok, err := ex.Token(context.Background(), target)
	require.NoError(b, err)
	require.Equal(b, "DPoP", tok.TokenType)
	tr, err := ex.Transport(target, nopTransport{})
	require.NoError(b, err)
	req, err := http.NewRequest(http.MethodGet, "https://calendar.example.com/events", nil)
	require.NoError(b, err)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := tr.RoundTrip(req); err != nil {
			b.Fatal(err)
		}
	}
}
