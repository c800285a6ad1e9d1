package obo

import (
	"strings"
	"testing"
	"time"
)

var zzSubject = strings.Repeat("A", 900)

func BenchmarkZZKey(b *testing.B) {
	ct, _ := compileTarget(Target{Flavor: TokenExchange, Audience: "calendar-api", Resource: "https://calendar.example.com/", Scopes: []string{"calendar.read"}})
	for b.Loop() {
		ct.key(zzSubject)
	}
}
func BenchmarkZZCompile(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		compileTarget(Target{Flavor: TokenExchange, Audience: "calendar-api", Resource: "https://calendar.example.com/", Scopes: []string{"calendar.read"}})
	}
}
func BenchmarkZZCacheGet(b *testing.B) {
	c := newCache(100)
	k := [32]byte{1}
	now := time.Now()
	c.put(k, Token{}, now.Add(time.Hour))
	for b.Loop() {
		c.get(k, now)
	}
}
func BenchmarkZZNow(b *testing.B) {
	for b.Loop() {
		time.Now()
	}
}
