package transport

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestStackStreamsEndAtTokenExpiry: a stream is authenticated when it
// opens, so before, a 2025-11-25 GET stream and a 2026-07-28
// subscriptions/listen stream went on serving after the token that opened
// them expired (found in review). Now each ends when the token does; a
// stream opened with a longer-lived token stays open.
func TestStackStreamsEndAtTokenExpiry(t *testing.T) {
	st := newMediationStack(t, nil, server.WithStateful(true))
	// JWT times are whole seconds: exp lands 2-3 s from now.
	short := func() string {
		return st.token(t, map[string]any{"sub": "bob", "scope": "notes:read", "exp": time.Now().Add(3 * time.Second).Unix()})
	}
	long := st.token(t, map[string]any{"sub": "bob", "scope": "notes:read"})

	t.Run(mcp.ProtocolVersion20251125, func(t *testing.T) {
		stream := func(tok string) <-chan time.Duration {
			sid := initSession(t, st, tok)
			require.NotEmpty(t, sid)
			req, err := http.NewRequest(http.MethodGet, st.url, nil)
			require.NoError(t, err)
			req.Header.Set("Accept", "text/event-stream")
			req.Header.Set("Authorization", "Bearer "+tok)
			req.Header.Set(mcp.HeaderSessionID, sid)
			req.Header.Set(mcp.HeaderProtocolVersion, mcp.ProtocolVersion20251125)
			ctx, cancel := context.WithTimeout(context.Background(), 6*time.Second)
			t.Cleanup(cancel)
			start := time.Now()
			resp, err := http.DefaultClient.Do(req.WithContext(ctx))
			require.NoError(t, err)
			require.Equal(t, http.StatusOK, resp.StatusCode)
			ended := make(chan time.Duration, 1)
			go func() {
				defer resp.Body.Close()
				_, _ = io.Copy(io.Discard, resp.Body)
				ended <- time.Since(start)
			}()
			return ended
		}
		shortEnded, longEnded := stream(short()), stream(long)
		select {
		case d := <-shortEnded:
			assert.Greater(t, d, time.Second, "the stream served until the token expired")
		case <-time.After(5 * time.Second):
			t.Fatal("the GET stream outlived its token")
		}
		select {
		case d := <-longEnded:
			t.Fatalf("the stream of a valid token ended after %v", d)
		default:
		}
	})
	t.Run(mcp.ProtocolVersion20260728, func(t *testing.T) {
		listen := func(tok string) <-chan time.Duration {
			c := st.connect(t, tok, mcp.ProtocolVersion20260728)
			ctx, cancel := context.WithTimeout(context.Background(), 6*time.Second)
			t.Cleanup(cancel)
			ended := make(chan time.Duration, 1)
			start := time.Now()
			go func() {
				_ = c.Listen(ctx, mcp.SubscriptionFilter{ResourceSubscriptions: []string{"notes://public/readme"}})
				ended <- time.Since(start)
			}()
			return ended
		}
		shortEnded, longEnded := listen(short()), listen(long)
		select {
		case d := <-shortEnded:
			assert.Greater(t, d, time.Second, "the stream served until the token expired")
		case <-time.After(5 * time.Second):
			t.Fatal("the listen stream outlived its token")
		}
		select {
		case d := <-longEnded:
			t.Fatalf("the stream of a valid token ended after %v", d)
		default:
		}
	})
}
