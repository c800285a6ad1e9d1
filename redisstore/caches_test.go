package redisstore

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/auth/authtest"
	"github.com/mcpguard/mcpguard/obo"
)

const clientSecret = "rs-client-secret-0123456789"

func newIdP(t *testing.T) *authtest.Server {
	t.Helper()
	idp, err := authtest.New(authtest.Config{TB: t, Algorithms: []string{"ES256"}})
	require.NoError(t, err)
	require.NoError(t, idp.RegisterClient(authtest.Client{ID: "mcp-rs", Secret: clientSecret, AuthMethod: authtest.ClientSecretBasic}))
	return idp
}

func newExchanger(t *testing.T, idp *authtest.Server, shared obo.SharedCache) *obo.Exchanger {
	t.Helper()
	ex, err := obo.New(obo.Config{TokenEndpoint: idp.TokenURL(), ClientID: "mcp-rs",
		ClientSecret: auth.NewCredential(clientSecret), SharedCache: shared})
	require.NoError(t, err)
	return ex
}

var calendar = obo.Target{Flavor: obo.TokenExchange, Audience: "https://calendar.example.com", Scopes: []string{"calendar.read"}}

func userCtx(tok string) context.Context {
	return auth.NewCredentialContext(context.Background(), auth.NewCredential(tok))
}

// assertNoSecrets fails when any key or value of the keyspace holds one of
// the needles, or a long-enough piece of one (a token's signature part).
func assertNoSecrets(t *testing.T, space map[string][]string, needles ...string) {
	t.Helper()
	require.NotEmpty(t, space)
	for k, vs := range space {
		for _, s := range append(vs, k) {
			for _, n := range needles {
				assert.NotContains(t, s, n, "key %s", k)
				for _, part := range strings.Split(n, ".") {
					if len(part) >= 16 {
						assert.NotContains(t, s, part, "key %s", k)
					}
				}
			}
		}
	}
}

// Two exchangers on one Redis stand for two replicas: one exchange at the
// token endpoint for the same user and target; the token is sealed in Redis.
func TestTokenCacheAcrossReplicas(t *testing.T) {
	srv := startRedis(t)
	idp := newIdP(t)
	r1 := newExchanger(t, idp, newShared(t, srv.addr, nil).TokenCache())
	r2 := newExchanger(t, idp, newShared(t, srv.addr, nil).TokenCache())
	user := idp.MustMint(map[string]any{"sub": "alice-subject", "scope": "mcp"})

	a, err := r1.Token(userCtx(user), calendar)
	require.NoError(t, err)
	b, err := r2.Token(userCtx(user), calendar)
	require.NoError(t, err)
	assert.Equal(t, 1, idp.TokenRequests(), "one exchange for both replicas")
	assert.Equal(t, a.AccessToken.Reveal(), b.AccessToken.Reveal())
	assert.Equal(t, a.Expiry.Unix(), b.Expiry.Unix())
	assert.Equal(t, a.Scope, b.Scope)

	other := idp.MustMint(map[string]any{"sub": "bob-subject", "scope": "mcp"})
	_, err = r2.Token(userCtx(other), calendar)
	require.NoError(t, err)
	assert.Equal(t, 2, idp.TokenRequests(), "users never share tokens")

	c := newClient(t, srv.addr)
	space := scanKeyspace(t, c)
	assertNoSecrets(t, space, user, other, a.AccessToken.Reveal(), "alice-subject", "bob-subject", clientSecret)
	for k := range space {
		d, err := c.PTTL(context.Background(), k).Result()
		require.NoError(t, err)
		assert.Greater(t, d, time.Duration(0))
		assert.LessOrEqual(t, d, time.Until(a.Expiry), "never outlives the token")
	}
}

// One Shared serves every exchanger of the process: two exchangers with
// their own clients (one per tenant) asking for the same client-credentials
// target each get their own client's token, never the other's from Redis.
func TestTokenCacheKeptPerClient(t *testing.T) {
	srv := startRedis(t)
	idp := newIdP(t)
	require.NoError(t, idp.RegisterClient(authtest.Client{ID: "tenant-b-client", Secret: clientSecret + "-b", AuthMethod: authtest.ClientSecretBasic}))
	sh := newShared(t, srv.addr, nil)
	a := newExchanger(t, idp, sh.TokenCache())
	b, err := obo.New(obo.Config{TokenEndpoint: idp.TokenURL(), ClientID: "tenant-b-client",
		ClientSecret: auth.NewCredential(clientSecret + "-b"), SharedCache: sh.TokenCache()})
	require.NoError(t, err)
	reports := obo.Target{Flavor: obo.ClientCredentials, Audience: "https://reports.example.com", Scopes: []string{"reports.read"}}

	ta, err := a.Token(t.Context(), reports)
	require.NoError(t, err)
	tb, err := b.Token(t.Context(), reports)
	require.NoError(t, err)
	assert.Equal(t, 2, idp.TokenRequests(), "each client obtains its own token")
	assert.NotEqual(t, ta.AccessToken.Reveal(), tb.AccessToken.Reveal(), "b was served a's token from Redis")

	// The same client on another replica still shares.
	a2 := newExchanger(t, idp, newShared(t, srv.addr, nil).TokenCache())
	ta2, err := a2.Token(t.Context(), reports)
	require.NoError(t, err)
	assert.Equal(t, 2, idp.TokenRequests())
	assert.Equal(t, ta.AccessToken.Reveal(), ta2.AccessToken.Reveal())
}

// A value that does not open (another seal key, tampering) is a miss.
func TestTokenCacheRefusesForeignValues(t *testing.T) {
	srv := startRedis(t)
	idp := newIdP(t)
	sh := newShared(t, srv.addr, nil)
	r1 := newExchanger(t, idp, sh.TokenCache())
	user := idp.MustMint(nil)
	_, err := r1.Token(userCtx(user), calendar)
	require.NoError(t, err)

	foreign, err := New(Config{Client: newClient(t, srv.addr), SealKey: testKey(9), Prefix: "t:"})
	require.NoError(t, err)
	r2 := newExchanger(t, idp, foreign.TokenCache())
	_, err = r2.Token(userCtx(user), calendar)
	require.NoError(t, err)
	assert.Equal(t, 2, idp.TokenRequests(), "another seal key: other keys, nothing shared")

	// Overwrite the value in place: it no longer opens.
	c := newClient(t, srv.addr)
	keys, err := c.Keys(context.Background(), "t:obo:*").Result()
	require.NoError(t, err)
	for _, k := range keys {
		require.NoError(t, c.Set(context.Background(), k, "garbage", time.Minute).Err())
	}
	r3 := newExchanger(t, idp, sh.TokenCache())
	_, err = r3.Token(userCtx(user), calendar)
	require.NoError(t, err)
	assert.Equal(t, 3, idp.TokenRequests())
}

// Redis down: caches degrade to the exchanger's own memory; back up: shared
// again.
func TestTokenCacheRedisDown(t *testing.T) {
	srv := startRedis(t)
	idp := newIdP(t)
	var ev events
	r1 := newExchanger(t, idp, newShared(t, srv.addr, &ev).TokenCache())
	r2 := newExchanger(t, idp, newShared(t, srv.addr, nil).TokenCache())
	srv.stop()
	user := idp.MustMint(nil)
	_, err := r1.Token(userCtx(user), calendar)
	require.NoError(t, err, "a cache never fails the call")
	_, err = r1.Token(userCtx(user), calendar)
	require.NoError(t, err)
	assert.Equal(t, 1, idp.TokenRequests(), "served by the local cache")
	evs := ev.list()
	require.NotEmpty(t, evs)
	assert.Equal(t, StoreTokens, evs[0].Store)
	assert.Equal(t, DegradeLocal.String(), evs[0].Outcome)

	srv.start()
	other := idp.MustMint(map[string]any{"sub": "carol"})
	waitRecovered(t, func() error {
		if _, err := r1.Token(userCtx(other), calendar); err != nil {
			return err
		}
		if len(ev.list()) == 0 || !ev.list()[len(ev.list())-1].Recovered {
			return errTryAgain
		}
		return nil
	})
	n := idp.TokenRequests()
	_, err = r2.Token(userCtx(other), calendar)
	require.NoError(t, err)
	assert.Equal(t, n, idp.TokenRequests(), "shared again once Redis is back")
}

type tryAgain struct{}

func (tryAgain) Error() string { return "try again" }

var errTryAgain error = tryAgain{}

// Two introspection validators on one Redis: one introspection per token;
// the answer is sealed; a revocation at the AS is seen by both when the
// first answer's TTL ends.
func TestIntrospectionCacheAcrossReplicas(t *testing.T) {
	srv := startRedis(t)
	idp := newIdP(t)
	newV := func() *auth.IntrospectionValidator {
		v, err := auth.NewIntrospectionValidator(auth.IntrospectionConfig{
			Issuer: idp.Issuer(), Endpoint: idp.IntrospectionURL(), Audience: idp.Audience(),
			ClientID: "mcp-rs", ClientSecret: auth.NewCredential(clientSecret),
			SharedCache: newShared(t, srv.addr, nil).IntrospectionCache(),
		})
		require.NoError(t, err)
		t.Cleanup(func() { _ = v.Close() })
		return v
	}
	r1, r2 := newV(), newV()
	tok := idp.MustMintOpaque(map[string]any{"sub": "alice-subject", "scope": "notes:read"})
	p1, err := r1.Validate(t.Context(), tok)
	require.NoError(t, err)
	p2, err := r2.Validate(t.Context(), tok)
	require.NoError(t, err)
	assert.Equal(t, 1, idp.IntrospectionRequests(), "one introspection for both replicas")
	assert.Equal(t, p1.Subject, p2.Subject)
	assert.Equal(t, p1.Scopes, p2.Scopes)
	assert.Equal(t, p1.Expiry, p2.Expiry)

	bad := idp.MustMintOpaque(map[string]any{"aud": "https://other.example/api"})
	_, err = r1.Validate(t.Context(), bad)
	require.ErrorIs(t, err, auth.ErrInvalidToken)
	_, err = r2.Validate(t.Context(), bad)
	require.ErrorIs(t, err, auth.ErrInvalidToken)
	assert.Equal(t, 2, idp.IntrospectionRequests(), "rejections are shared too")

	c := newClient(t, srv.addr)
	space := scanKeyspace(t, c)
	assertNoSecrets(t, space, tok, bad, "alice-subject", clientSecret, "notes:read")
	for k := range space {
		d, err := c.PTTL(context.Background(), k).Result()
		require.NoError(t, err)
		assert.LessOrEqual(t, d, auth.DefaultIntrospectionCacheTTL, k)
	}
}

// One Shared serves every validator of the process: a validator of another
// authorization server does not read this one's answers from Redis. Server
// A's "inactive" for a token of server B refused it at B's validator.
func TestIntrospectionCacheKeptPerServer(t *testing.T) {
	srv := startRedis(t)
	sh := newShared(t, srv.addr, nil)
	idpA, idpB := newIdP(t), newIdP(t)
	newV := func(idp *authtest.Server) *auth.IntrospectionValidator {
		v, err := auth.NewIntrospectionValidator(auth.IntrospectionConfig{
			Issuer: idp.Issuer(), Endpoint: idp.IntrospectionURL(), Audience: idp.Audience(),
			ClientID: "mcp-rs", ClientSecret: auth.NewCredential(clientSecret),
			SharedCache: sh.IntrospectionCache(),
		})
		require.NoError(t, err)
		t.Cleanup(func() { _ = v.Close() })
		return v
	}
	va, vb := newV(idpA), newV(idpB)
	tok := idpB.MustMintOpaque(map[string]any{"sub": "bob-subject"})
	_, err := va.Validate(t.Context(), tok)
	require.ErrorIs(t, err, auth.ErrInvalidToken, "server A does not know it")
	p, err := vb.Validate(t.Context(), tok)
	require.NoError(t, err, "server A's answer decided at server B's validator")
	assert.Equal(t, idpB.Issuer(), p.Issuer)
	assert.Equal(t, 1, idpB.IntrospectionRequests())
}
