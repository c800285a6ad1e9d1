package auth

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTrustInfo(t *testing.T) {
	idp := newIDP(t, nil, "ES256")
	jwtV := func(edit func(*JWTConfig)) *JWTValidator { return newValidator(t, idp, nil, edit) }
	plain := jwtV(func(c *JWTConfig) {
		c.Issuers = []string{"https://other.example"}
		c.AudienceAliases = []string{"api://notes"}
	})
	as := newFakeAS(t).inMemory()
	intro := newIntrospection(t, as, nil)
	chain, err := NewChainValidator(ChainConfig{JWT: plain, Opaque: intro})
	require.NoError(t, err)
	opaqueFunc := ValidatorFunc(func(context.Context, string) (*Principal, error) { return nil, ErrInvalidToken })
	blindChain, err := NewChainValidator(ChainConfig{JWT: plain, Opaque: opaqueFunc})
	require.NoError(t, err)
	dual, err := NewDualValidator(DualConfig{Service: plain, User: intro, ServiceClientIDs: []string{"svc"}, UserIssuers: []string{as.issuer}})
	require.NoError(t, err)

	tests := []struct {
		name    string
		v       trustInfo
		auds    []string
		issuers []string
	}{
		{"jwt", plain, []string{idp.Audience(), "api://notes"}, []string{idp.Issuer(), "https://other.example"}},
		{"jwt skipping audience", jwtV(func(c *JWTConfig) { c.Audience, c.InsecureSkipAudience = "", true }), nil, []string{idp.Issuer()}},
		{"jwt with issuer template", jwtV(func(c *JWTConfig) { c.IssuerTemplates = []string{"https://login.example/{tid}/v2.0"} }), []string{idp.Audience()}, nil},
		{"jwt with issuer func", jwtV(func(c *JWTConfig) { c.IssuerFunc = func(string, Claims) bool { return false } }), []string{idp.Audience()}, nil},
		{"introspection", intro, []string{testAudience}, []string{as.issuer}},
		{"chain", chain, []string{idp.Audience(), "api://notes", testAudience}, []string{idp.Issuer(), "https://other.example", as.issuer}},
		{"chain with a validator that cannot say", blindChain, nil, nil},
		{"dual names the service validator's", dual, []string{idp.Audience(), "api://notes"}, []string{idp.Issuer(), "https://other.example"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.auds, tt.v.Audiences())
			assert.Equal(t, tt.issuers, tt.v.Issuers())
		})
	}
	// The slices are copies.
	plain.Audiences()[0] = "changed"
	assert.Equal(t, idp.Audience(), plain.Audiences()[0])
}

// TestMiddlewareLogsRejectionCause: each refusal's cause is logged at
// Debug level, never the token (issue 15.9); nothing below Debug.
func TestMiddlewareLogsRejectionCause(t *testing.T) {
	idp := newIDP(t, nil, "ES256")
	v := newValidator(t, idp, nil, nil)
	forged, err := idp.MintBadSignature(nil)
	require.NoError(t, err)
	wrongAud := idp.MustMint(map[string]any{"aud": "https://other.example/mcp"})

	for _, lvl := range []slog.Level{slog.LevelDebug, slog.LevelInfo} {
		var buf bytes.Buffer
		mw, err := Middleware(v, MiddlewareConfig{
			ResourceMetadataURL: "https://rs.example/.well-known/oauth-protected-resource",
			Logger:              slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: lvl})),
		})
		require.NoError(t, err)
		h := mw(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { t.Fatal("reached the handler") }))
		for _, tok := range []string{forged, wrongAud} {
			r := httptest.NewRequest(http.MethodPost, "/mcp", nil)
			r.Header.Set("Authorization", "Bearer "+tok)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			require.Equal(t, http.StatusUnauthorized, w.Code)
		}
		out := buf.String()
		if lvl == slog.LevelInfo {
			assert.Empty(t, out, "nothing logged above Debug")
			continue
		}
		assert.Contains(t, out, "auth: request refused")
		assert.Contains(t, out, "error=invalid_token")
		assert.Contains(t, out, "signature")
		assert.Contains(t, out, "audience")
		assert.NotContains(t, out, forged)
		assert.NotContains(t, out, wrongAud)
	}
}
