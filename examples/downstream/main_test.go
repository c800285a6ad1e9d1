package main

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/auth/authtest"
	"github.com/mcpguard/mcpguard/obo"
)

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestRun(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run(testCtx(t), &out))
	got := out.String()
	assert.Contains(t, got, `"user":"alice"`)
	assert.Contains(t, got, `"actor":"mcp-server"`)
	assert.Contains(t, got, "calendar called with the inbound token: 401")
}

// TestDownstreamGetsExchangedTokenOnly: every token the calendar received
// is an exchanged one for its own audience, never the inbound token, and
// two tool calls cost one exchange.
func TestDownstreamGetsExchangedTokenOnly(t *testing.T) {
	ctx := testCtx(t)
	d, err := start()
	require.NoError(t, err)
	defer d.Close()
	inbound, err := d.idp.Mint(map[string]any{"sub": "alice"})
	require.NoError(t, err)

	for range 2 {
		text, err := d.callTool(ctx, inbound)
		require.NoError(t, err)
		assert.Contains(t, text, `"user":"alice"`)
	}
	assert.Equal(t, 1, d.idp.TokenRequests(), "the second call used the cached token")

	seen := d.calendar.Seen()
	require.Len(t, seen, 2)
	for _, h := range seen {
		require.True(t, strings.HasPrefix(h, "Bearer "))
		raw := strings.TrimPrefix(h, "Bearer ")
		assert.NotEqual(t, inbound, raw, "the inbound token was passed through")
		claims := verify(t, d.idp, raw, d.calendarURL)
		assert.Equal(t, "alice", claims["sub"])
		assert.Equal(t, map[string]any{"sub": mcpClientID}, claims["act"])
		assert.NotContains(t, claims["aud"], d.mcpURL)
	}
}

// TestToolWithoutCredentialSendsNothing: the tool handler, reached without
// a user credential, fails and the calendar receives nothing.
func TestToolWithoutCredentialSendsNothing(t *testing.T) {
	d, err := start()
	require.NoError(t, err)
	defer d.Close()
	ex, err := obo.New(obo.Config{TokenEndpoint: d.idp.TokenURL(), ClientID: mcpClientID, ClientSecret: auth.NewCredential(mcpClientSecret)})
	require.NoError(t, err)
	client, err := ex.Client(obo.Target{Flavor: obo.TokenExchange, Audience: d.calendarURL}, nil)
	require.NoError(t, err)
	res, err := listEvents(context.Background(), client, d.calendarURL)
	require.NoError(t, err)
	assert.True(t, res.IsError)
	assert.Empty(t, d.calendar.Seen())
	assert.Zero(t, d.idp.TokenRequests())

	// And without a bearer token the MCP server itself answers 401.
	resp, err := http.Post(d.mcpURL, "application/json", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"ping"}`))
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
}

// TestInteractionRequired: when the identity provider wants the user back,
// the tool says so instead of failing obscurely.
func TestInteractionRequired(t *testing.T) {
	ctx := testCtx(t)
	d, err := start()
	require.NoError(t, err)
	defer d.Close()
	d.idp.SetTokenError(authtest.InteractionRequired(`{"access_token":{"acrs":{"essential":true,"value":"c1"}}}`))
	inbound, err := d.idp.Mint(map[string]any{"sub": "bob"})
	require.NoError(t, err)
	_, err = d.callTool(ctx, inbound)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "please sign in again")
	assert.Empty(t, d.calendar.Seen())
}

func verify(t *testing.T, idp *authtest.Server, raw, aud string) jwt.MapClaims {
	t.Helper()
	claims := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(raw, claims, func(tk *jwt.Token) (any, error) {
		kid, _ := tk.Header["kid"].(string)
		k, ok := idp.Key(kid)
		if !ok {
			return nil, jwt.ErrTokenUnverifiable
		}
		return k.Public(), nil
	}, jwt.WithIssuer(idp.Issuer()), jwt.WithAudience(aud), jwt.WithExpirationRequired())
	require.NoError(t, err)
	return claims
}
