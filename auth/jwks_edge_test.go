package auth

import (
	"log/slog"
	"testing"
	"time"

	"github.com/mcpguard/mcpguard/auth/authtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// blockedWriter is a log destination nobody reads (a stuck stderr pipe):
// every Write blocks until release is closed.
type blockedWriter struct {
	release chan struct{}
	writes  chan struct{}
}

func newBlockedWriter() *blockedWriter {
	return &blockedWriter{release: make(chan struct{}), writes: make(chan struct{}, 16)}
}

func (w *blockedWriter) Write(p []byte) (int, error) {
	select {
	case w.writes <- struct{}{}:
	default:
	}
	<-w.release
	return len(p), nil
}

// TestJWKSFailedFetchDoesNotWaitOnLog: a request waiting on a JWKS fetch
// that fails is answered within the fetch timeout even when the log write
// reporting the failure blocks (issue 15.5).
func TestJWKSFailedFetchDoesNotWaitOnLog(t *testing.T) {
	const fetchTimeout = 200 * time.Millisecond
	clock := newFakeClock()
	idp := newIDP(t, clock, "ES256")
	w := newBlockedWriter()
	v := newValidator(t, idp, clock, func(c *JWTConfig) {
		c.FetchTimeout = fetchTimeout
		c.Logger = slog.New(slog.NewTextHandler(w, nil))
	})
	t.Cleanup(func() { close(w.release) }) // runs before the validator's Close
	_, err := v.Validate(t.Context(), idp.MustMint(nil))
	require.NoError(t, err)

	idp.SetJWKSFault(authtest.FaultDown)
	next, err := idp.Rotate("ES256")
	require.NoError(t, err)
	clock.Advance(time.Minute) // past the refetch cooldown
	tok := mustMintWith(t, idp, next)

	done := make(chan error, 1)
	start := time.Now()
	go func() {
		_, err := v.Validate(t.Context(), tok)
		done <- err
	}()
	select {
	case err = <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the request waited on the blocked log write")
	}
	assert.Less(t, time.Since(start), fetchTimeout+2*time.Second)
	assert.ErrorIs(t, err, ErrUnavailable)
	select {
	case <-w.writes:
	case <-time.After(5 * time.Second):
		t.Fatal("the failure was not logged at all")
	}
}
