package telemetry

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/obo"
	"github.com/mcpguard/mcpguard/transport/ratelimit"
)

func TestAuthErrorType(t *testing.T) {
	for _, tc := range []struct {
		kind auth.OpKind
		err  error
		want string
	}{
		{auth.OpValidate, auth.InvalidToken("bad", auth.ErrInvalidToken), "invalid_token"},
		{auth.OpValidate, auth.Unavailable("down", auth.ErrUnavailable), "unavailable"},
		{auth.OpIntrospect, auth.Unavailable("down", fmt.Errorf("%w: %w", auth.ErrUnavailable, context.DeadlineExceeded)), "timeout"},
		{auth.OpFetchKeys, errors.New(`GET https://idp/jwks?kid="<script>": status 500`), "fetch_failed"},
		{auth.OpFetchKeys, fmt.Errorf("JWK Set: %w", context.Canceled), "canceled"},
		{auth.OpValidate, errors.New("something else"), "invalid_token"}, // AsError fails closed
	} {
		assert.Equal(t, tc.want, authErrorType(tc.kind, tc.err), "%v", tc.err)
	}
}

// A nil *Telemetry — transport.Guard.Telemetry() with telemetry off — can
// be wired into every hook and ignores what it is told.
func TestNilTelemetryIgnores(t *testing.T) {
	var tel *Telemetry
	ctx := context.Background()
	assert.NotPanics(t, func() {
		tel.ObserveCache(ctx, auth.CacheToken, true)
		c, end := tel.StartOperation(ctx, auth.Operation{Kind: auth.OpValidate})
		assert.Equal(t, ctx, c)
		assert.Nil(t, end)
		tel.ObserveExchange(ctx, obo.ExchangeEvent{})
		c, xend := tel.StartExchange(ctx, obo.ExchangeEvent{})
		assert.Equal(t, ctx, c)
		assert.Nil(t, xend)
		tel.ObserveRateLimit(ctx, ratelimit.Observed{})
	})
}
