package telemetry

import (
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFolderCaps(t *testing.T) {
	f := newFolder(5)
	seen := map[string]bool{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2500 {
				v := f.fold("tenant-" + strconv.Itoa(w*2500+i))
				mu.Lock()
				seen[v] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	assert.Len(t, seen, 6, "10,000 distinct values give the 5 admitted plus _other")
	assert.True(t, seen[Other])
	// An admitted value stays itself.
	for v := range seen {
		if v != Other {
			assert.Equal(t, v, f.fold(v))
		}
	}
}

func TestCut(t *testing.T) {
	assert.Equal(t, "abc", cut("abc"))
	long := strings.Repeat("é", MaxValueLen) // 2 bytes each
	c := cut(long)
	assert.LessOrEqual(t, len(c), MaxValueLen)
	assert.True(t, strings.HasPrefix(long, c))
	assert.Equal(t, 0, len(c)%2, "cut at a rune boundary")
}

func TestNewConfig(t *testing.T) {
	_, err := New(Config{SubjectHashKey: []byte("short")})
	require.ErrorIs(t, err, ErrConfig)
	_, err = New(Config{MaxTenants: -1})
	require.ErrorIs(t, err, ErrConfig)
	tel, err := New(Config{SubjectHashKey: []byte("0123456789abcdef")})
	require.NoError(t, err)
	h1 := tel.subjectHash("https://idp", "alice")
	assert.Len(t, h1, 32)
	assert.NotContains(t, h1, "alice")
	assert.NotEqual(t, h1, tel.subjectHash("https://other", "alice"), "the issuer is part of the hash")
	tel2, _ := New(Config{})
	assert.Empty(t, tel2.subjectHash("https://idp", "alice"), "no key, no subject")
	require.NoError(t, tel.Close())
}

// Client-chosen method names and protocol versions become attributes only
// when MCP defines them; anything else is Other.
func TestBoundedRequestValues(t *testing.T) {
	for _, tc := range []struct{ name, in, method, protocol string }{
		{"none", "", "", ""},
		{"known", "tools/call", "tools/call", Other},
		{"notification", "notifications/initialized", "notifications/initialized", Other},
		{"made up", "evil/1", Other, Other},
		{"case", "Tools/call", Other, Other},
		{"server only", "sampling/createMessage", Other, Other},
		{"2025-11-25", "2025-11-25", Other, "2025-11-25"},
		{"2026-07-28", "2026-07-28", Other, "2026-07-28"},
		{"future", "2099-01-01", Other, Other},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.method, methodName(tc.in))
			assert.Equal(t, tc.protocol, protocolVersion(tc.in))
		})
	}
}
