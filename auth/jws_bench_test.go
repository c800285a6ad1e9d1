package auth

import "testing"

// BenchmarkDecodeFastPath compares the reflection-free readers of the JWS
// header and the claims payload with the encoding/json readers they fall
// back to, on shapes real IdPs issue. The package doc quotes the figures.
func BenchmarkDecodeFastPath(b *testing.B) {
	header := []byte(`{"alg":"RS256","kid":"k-2026-11","typ":"at+jwt"}`)
	payload := []byte(`{"iss":"https://login.example.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0",` +
		`"aud":"api://4f1e5c1a-0d7e-4a37-9b1c-2c9c1e3b7a10","sub":"AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ",` +
		`"azp":"a1b2c3d4-0000-4000-8000-000000000001","scp":"notes.read notes.write","tid":"72f988bf-86f1-41af-91ab-2d7cd011db47",` +
		`"oid":"00000000-0000-0000-0000-000000000042","roles":["Notes.Admin"],"ver":"2.0",` +
		`"iat":1764720000,"nbf":1764720000,"exp":1764723600}`)
	b.Run("header/scan", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, ok, err := scanFlatHeader(header); !ok || err != nil {
				b.Fatal("fast path refused a flat header")
			}
		}
	})
	b.Run("header/json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := decodeHeader(header); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("payload/scan", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, dup, ok := scanPayload(payload); !ok || dup {
				b.Fatal("fast path refused a plain payload")
			}
		}
	})
	b.Run("payload/json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := decodePayloadJSON(payload); err != nil {
				b.Fatal(err)
			}
		}
	})
}
