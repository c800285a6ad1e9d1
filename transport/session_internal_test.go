package transport

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/auth"
)

// referenceTag is the session tag as first specified: HMAC-SHA256 over the
// fields written with writeField. Tags issued by an older replica must keep
// verifying, so the allocation-free encoding must match it byte for byte.
func referenceTag(key []byte, id string, p *auth.Principal, tenant string) string {
	m := hmac.New(sha256.New, key)
	writeField(m, id)
	writePrincipal(m, p)
	if p != nil {
		writePrincipal(m, p.Actor)
	}
	writeField(m, tenant)
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:sessionTagLen])
}

func referenceTerminatedKey(key []byte, id string) string {
	m := hmac.New(sha256.New, key)
	writeField(m, "terminated")
	writeField(m, id)
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:sessionTagLen])
}

func TestSessionTagEncodingUnchanged(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	b, err := NewSessionBinding(key)
	require.NoError(t, err)
	long := string(make([]byte, 600)) // longer than the stack buffer
	user := &auth.Principal{Issuer: "https://idp.example", Subject: "alice", Kind: auth.KindUser}
	svc := &auth.Principal{Issuer: "https://idp.example", Subject: "alice",
		Actor: &auth.Principal{Issuer: "https://svc.example", Subject: "svc", Kind: auth.KindJob}}
	tests := []struct {
		name, id, tenant string
		p                *auth.Principal
	}{
		{"anonymous", "mcp-session-1", "", nil},
		{"user", "mcp-session-1", "acme", user},
		{"actor", "mcp-session-2", "acme", svc},
		{"empty id", "", "", user},
		{"long fields", long, long, &auth.Principal{Issuer: long, Subject: long}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, referenceTag(key, tt.id, tt.p, tt.tenant), b.tag(tt.id, tt.p, tt.tenant))
			assert.Equal(t, referenceTerminatedKey(key, tt.id), b.terminatedKey(tt.id))
		})
	}
}

// The pooled keyed hashes are reset between uses, also under concurrency.
func TestSessionTagConcurrent(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	b, err := NewSessionBinding(key)
	require.NoError(t, err)
	p := &auth.Principal{Issuer: "https://idp.example", Subject: "alice"}
	want := referenceTag(key, "s", p, "acme")
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 200 {
				if got := b.tag("s", p, "acme"); got != want {
					t.Errorf("tag %q, want %q", got, want)
					return
				}
			}
		})
	}
	wg.Wait()
}

func BenchmarkSessionTag(b *testing.B) {
	sb, err := NewSessionBinding(nil)
	require.NoError(b, err)
	p := &auth.Principal{Issuer: "https://idp.example", Subject: "alice"}
	b.ReportAllocs()
	for b.Loop() {
		_ = sb.tag("mcp-session-6f1b2f9e-6c2d-4f7e-9a55-0d3c4b1e2a77", p, "acme")
	}
}

func TestWithHeaderLeavesTheRequestAlone(t *testing.T) {
	r := httptest.NewRequest(http.MethodPost, "http://127.0.0.1/mcp", nil)
	r.Header.Set("Mcp-Session-Id", "bound.tag")
	r.Header.Set("Authorization", "Bearer x")
	r2 := withHeader(r, "Mcp-Session-Id", "inner")
	assert.Equal(t, "bound.tag", r.Header.Get("Mcp-Session-Id"), "the incoming request is not modified")
	assert.Equal(t, "inner", r2.Header.Get("Mcp-Session-Id"))
	assert.Equal(t, []string{"inner"}, r2.Header.Values("Mcp-Session-Id"))
	assert.Equal(t, "Bearer x", r2.Header.Get("Authorization"))
	r2.Header.Set("Authorization", "changed")
	assert.Equal(t, "Bearer x", r.Header.Get("Authorization"), "the copy has its own map")
	assert.Equal(t, r.Context(), r2.Context())
}

func TestOpenDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under -race")
	}
	b, err := NewSessionBinding(bytes.Repeat([]byte{7}, 32))
	require.NoError(t, err)
	p := &auth.Principal{Issuer: "i", Subject: "alice"}
	bound := "sess." + b.tag("sess", p, "acme")
	allocs := testing.AllocsPerRun(200, func() {
		if _, ok := b.open(bound, p, "acme"); !ok {
			t.Fatal("a valid tag did not open")
		}
	})
	assert.Zero(t, allocs, "checking a session tag allocates nothing")
}
