package transport

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/tenancy"
)

func TestCheckLoopbackAddr(t *testing.T) {
	for _, ok := range []string{"127.0.0.1:8080", "[::1]:0", "localhost:1", "127.1.2.3:9"} {
		assert.NoError(t, CheckLoopbackAddr(ok), ok)
	}
	for _, bad := range []string{":8080", "0.0.0.0:8080", "[::]:80", "192.168.1.2:80", "example.com:80", "127.0.0.1", ""} {
		assert.ErrorIs(t, CheckLoopbackAddr(bad), ErrConfig, bad)
	}
}

func TestStdioIdentity(t *testing.T) {
	v := auth.ValidatorFunc(func(_ context.Context, tok string) (*auth.Principal, error) {
		if tok == "good" {
			return &auth.Principal{Subject: "alice", Issuer: "https://idp", Scopes: []string{"a"}}, nil
		}
		return nil, auth.InvalidToken("the access token is invalid", auth.ErrInvalidToken)
	})
	env := map[string]string{"TOK": "good", "BAD": "forged"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }

	fn, p, err := StdioIdentity(context.Background(), StdioConfig{TokenEnv: "TOK", Validator: v, LookupEnv: lookup,
		Tenant: func(p *auth.Principal) (string, error) { return "acme", nil }})
	require.NoError(t, err)
	assert.Equal(t, auth.KindStdio, p.Kind)
	ctx := fn(context.Background())
	got, ok := auth.FromContext(ctx)
	require.True(t, ok)
	assert.Equal(t, "alice", got.Subject)
	tn, _ := tenancy.FromContext(ctx)
	assert.Equal(t, "acme", tn)

	_, _, err = StdioIdentity(context.Background(), StdioConfig{TokenEnv: "BAD", Validator: v, LookupEnv: lookup})
	assert.ErrorIs(t, err, auth.ErrInvalidToken)
	assert.NotContains(t, err.Error(), "forged")
	_, _, err = StdioIdentity(context.Background(), StdioConfig{TokenEnv: "MISSING", Validator: v, LookupEnv: lookup})
	assert.ErrorIs(t, err, auth.ErrNoCredential)
	_, _, err = StdioIdentity(context.Background(), StdioConfig{TokenEnv: "TOK", LookupEnv: lookup})
	assert.ErrorIs(t, err, ErrConfig)
	_, _, err = StdioIdentity(context.Background(), StdioConfig{})
	assert.ErrorIs(t, err, ErrConfig)
	_, _, err = StdioIdentity(context.Background(), StdioConfig{TokenEnv: "TOK", Validator: v, LookupEnv: lookup,
		Tenant: func(*auth.Principal) (string, error) { return "", errors.New("no tenant") }})
	assert.Error(t, err)

	fn, p, err = StdioIdentity(context.Background(), StdioConfig{Dev: &DevIdentity{Scopes: []string{"x"}, Tenant: "t1"}})
	require.NoError(t, err)
	assert.Equal(t, auth.KindDev, p.Kind)
	assert.Equal(t, "dev", p.Subject)
	tn, _ = tenancy.FromContext(fn(context.Background()))
	assert.Equal(t, "t1", tn)
}
