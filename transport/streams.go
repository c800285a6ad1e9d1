package transport

import (
	"context"
	"net/http"

	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/authz"
	"github.com/mcpguard/mcpguard/internal/jsonrpc"
)

// untilExpiry ends a long-lived response when the caller's token expires:
// a GET stream (2025-11-25: everything mcp-go sends the session) or a POST
// that opens subscriptions/listen (2026-07-28). Authentication happens
// when a request begins, so before, such a stream went on serving
// notifications, resource updates among them, after the token that opened
// it had expired, while every new request with that token got 401 (found
// in review). The stream ends as the client ending it would; the client
// reconnects with a fresh token. Other requests run to their end: a token
// authorizes the request made while it is valid. cancel is nil when r is
// returned as it is.
func untilExpiry(r *http.Request) (*http.Request, context.CancelFunc) {
	p, ok := auth.FromContext(r.Context())
	if !ok || p == nil || p.Expiry.IsZero() || !opensStream(r) {
		return r, nil
	}
	ctx, cancel := context.WithDeadline(r.Context(), p.Expiry)
	return r.WithContext(ctx), cancel
}

// opensStream reports a request whose answer is a stream that lasts as
// long as the client keeps it: a GET, or a POST of subscriptions/listen.
func opensStream(r *http.Request) bool {
	if r.Method == http.MethodGet {
		return true
	}
	ec, ok := r.Context().Value(bodyKey{}).(*edgeBody)
	if r.Method != http.MethodPost || !ok {
		return false
	}
	msg, err := jsonrpc.PeekMemo(r.Context(), ec.buf)
	if err != nil {
		// The edge refused what it could not read, or let mcp-go answer
		// it; bound it too rather than guess.
		return true
	}
	return msg.Method == authz.MethodSubscriptionsListen
}
