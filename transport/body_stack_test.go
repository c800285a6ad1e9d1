package transport

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/transport/ratelimit"
)

// stallPost opens a connection to the stack, sends a POST announcing
// announced bytes, then only sent bytes of it, and leaves it open.
func stallPost(t *testing.T, base string, announced, sent int) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	_, err = fmt.Fprintf(c, "POST /mcp HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
		strings.TrimPrefix(base, "http://"), announced, strings.Repeat(" ", sent))
	require.NoError(t, err)
	return c
}

func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// Headers announcing 4 MiB bodies, followed by a few bytes, pin what was
// received, not what was announced: 64 such connections held before the
// fix 256 MiB; the heap may now grow by a small fraction of that.
func TestStackAnnouncedBodyDoesNotPinMemory(t *testing.T) {
	st := newStack(t, nil)
	const conns, announced, sent = 64, DefaultMaxBodyBytes, 100
	before := heapInUse()
	for range conns {
		stallPost(t, st.base, announced, sent)
	}
	// Let every connection reach the body read.
	time.Sleep(300 * time.Millisecond)
	after := heapInUse()
	grown := int64(after) - int64(before)
	t.Logf("heap grew by %d KiB for %d connections announcing %d MiB each", grown>>10, conns, announced>>20)
	assert.Less(t, grown, int64(conns*announced/16), "announced bodies are not allocated up front")
}

// readBody grows with what arrives and still reads announced and
// unannounced bodies whole, and refuses a body cut short.
func TestReadBody(t *testing.T) {
	for _, n := range []int{0, 1, bodyChunk - 1, bodyChunk, bodyChunk + 1, 3*bodyChunk + 7} {
		body := strings.Repeat("x", n)
		got, err := readBody(strings.NewReader(body), int64(n), DefaultMaxBodyBytes)
		require.NoError(t, err, n)
		assert.Equal(t, body, string(got))
		got, err = readBody(strings.NewReader(body), -1, DefaultMaxBodyBytes)
		require.NoError(t, err, n)
		assert.Equal(t, body, string(got))
	}
	got, err := readBody(strings.NewReader(strings.Repeat("x", 100)), -1, 10)
	require.NoError(t, err)
	assert.Len(t, got, 11, "limit+1 bytes tell the caller the body is too large")
	_, err = readBody(strings.NewReader("short"), 100, 1000)
	assert.Error(t, err)
}

// The pre-auth limit runs before the body is read: once an address has
// spent its budget, a request announcing a body is answered 429 at once,
// without the server waiting for (or buffering) a single body byte.
func TestStackPreAuthLimitBeforeBody(t *testing.T) {
	mem, err := ratelimit.NewMemory(ratelimit.MemoryConfig{})
	require.NoError(t, err)
	pre, err := ratelimit.NewRequestLimit(ratelimit.RequestLimitConfig{Limiter: mem, Limit: ratelimit.PerMinute(1), KeyBy: ratelimit.Address})
	require.NoError(t, err)
	st := newStack(t, func(c *Config) { c.PreAuthRateLimit = pre })
	status, _, _ := rawCall(t, st.url, "", "whoami", "")
	assert.Equal(t, http.StatusUnauthorized, status, "the first request spends the budget")

	c := stallPost(t, st.base, DefaultMaxBodyBytes, 0)
	require.NoError(t, c.SetReadDeadline(time.Now().Add(3*time.Second)))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	require.NoError(t, err, "answered before any body byte was sent")
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	assert.NotEmpty(t, resp.Header.Get("Retry-After"))
}
