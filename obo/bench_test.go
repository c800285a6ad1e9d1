package obo_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/obo"
)

// benchSubject is shaped like a real access token (about 900 bytes).
var benchSubject = "eyJhbGciOiJSUzI1NiIsImtpZCI6InJzMjU2LTEiLCJ0eXAiOiJhdCtqd3QifQ." + strings.Repeat("QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo", 20) + ".c2lnbmF0dXJl" + strings.Repeat("A", 100)

func warmExchanger(b *testing.B, users int) (*obo.Exchanger, []context.Context) {
	as := newFakeAS(b, "client_secret_basic")
	ex := newExchanger(b, as, nil)
	ctxs := make([]context.Context, users)
	for i := range ctxs {
		ctxs[i] = userCtx(fmt.Sprintf("%s-%d", benchSubject, i))
		_, err := ex.Token(ctxs[i], calendar)
		require.NoError(b, err)
	}
	return ex, ctxs
}

// BenchmarkTokenCached is the hot path: a token for a user and target
// already in the cache (budget: <= 1 µs).
func BenchmarkTokenCached(b *testing.B) {
	ex, ctxs := warmExchanger(b, 1)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := ex.Token(ctxs[0], calendar); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTokenSourceCached: the same lookup through a TokenSource, whose
// target is compiled once.
func BenchmarkTokenSourceCached(b *testing.B) {
	ex, ctxs := warmExchanger(b, 1)
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
	ex, ctxs := warmExchanger(b, 64)
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

type nopTransport struct{}

func (nopTransport) RoundTrip(*http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: 200, Body: io.NopCloser(strings.NewReader(""))}, nil
}

// BenchmarkTransportCached: RoundTrip with a cached token and a base
// transport that does nothing — the cost the Transport adds per request.
func BenchmarkTransportCached(b *testing.B) {
	ex, ctxs := warmExchanger(b, 1)
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
