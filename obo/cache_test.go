package obo_test

import (
	"context"
	"fmt"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/obo"
)

// TestExpiryDrivenRefresh: a token is served from the cache until its
// expiry minus the skew, then exchanged again.
func TestExpiryDrivenRefresh(t *testing.T) {
	clk := newClock()
	as := newFakeAS(t, "client_secret_basic") // expires_in 3600
	ex := newExchanger(t, as, func(c *obo.Config) {
		c.Now = clk.Now
		c.ExpirySkew = time.Minute
	})
	first, err := ex.Token(userCtx(alice), calendar)
	require.NoError(t, err)
	assert.EqualValues(t, 1, as.calls.Load())

	clk.Add(58*time.Minute + 59*time.Second) // 1 s before expiry minus skew
	again, err := ex.Token(userCtx(alice), calendar)
	require.NoError(t, err)
	assert.EqualValues(t, 1, as.calls.Load(), "still fresh: served from the cache")
	assert.Equal(t, first.AccessToken.Reveal(), again.AccessToken.Reveal())

	clk.Add(time.Second) // exactly expiry minus skew
	renewed, err := ex.Token(userCtx(alice), calendar)
	require.NoError(t, err)
	assert.EqualValues(t, 2, as.calls.Load(), "due for refresh: exchanged again")
	assert.NotEqual(t, first.AccessToken.Reveal(), renewed.AccessToken.Reveal())
	assert.Equal(t, clk.Now().Add(time.Hour), renewed.Expiry)
}

// TestCacheKey: anything that changes the token's meaning changes the key;
// scope order and duplicates do not.
func TestCacheKey(t *testing.T) {
	as := newFakeAS(t, "client_secret_basic")
	ex := newExchanger(t, as, nil)
	base := obo.Target{Flavor: obo.TokenExchange, Audience: "a", Resource: "https://r.example.com", Scopes: []string{"x", "y"}}
	steps := []struct {
		name   string
		ctx    context.Context
		target obo.Target
		calls  int64
	}{
		{"first", userCtx(alice), base, 1},
		{"same again", userCtx(alice), base, 1},
		{"scopes reordered and duplicated", userCtx(alice), obo.Target{Flavor: obo.TokenExchange, Audience: "a", Resource: "https://r.example.com", Scopes: []string{"y", "x", "y"}}, 1},
		{"other user", userCtx(bob), base, 2},
		{"other audience", userCtx(alice), obo.Target{Flavor: obo.TokenExchange, Audience: "b", Resource: "https://r.example.com", Scopes: []string{"x", "y"}}, 3},
		{"other resource", userCtx(alice), obo.Target{Flavor: obo.TokenExchange, Audience: "a", Resource: "https://s.example.com", Scopes: []string{"x", "y"}}, 4},
		{"fewer scopes", userCtx(alice), obo.Target{Flavor: obo.TokenExchange, Audience: "a", Resource: "https://r.example.com", Scopes: []string{"x"}}, 5},
		{"scope boundary moved", userCtx(alice), obo.Target{Flavor: obo.TokenExchange, Audience: "a", Resource: "https://r.example.com", Scopes: []string{"x y"[:1] + "y"}}, 6},
		{"audience and resource swapped", userCtx(alice), obo.Target{Flavor: obo.TokenExchange, Audience: "https://r.example.com", Resource: "https://a.example.com", Scopes: []string{"x", "y"}}, 7},
		{"other requested type", userCtx(alice), obo.Target{Flavor: obo.TokenExchange, Audience: "a", Resource: "https://r.example.com", Scopes: []string{"x", "y"}, RequestedTokenType: obo.TokenTypeJWT}, 8},
		{"other flavor", userCtx(alice), obo.Target{Flavor: obo.EntraOBO, Scopes: []string{"x", "y"}}, 9},
		{"client credentials", context.Background(), obo.Target{Flavor: obo.ClientCredentials, Scopes: []string{"x", "y"}}, 10},
		{"client credentials again, with a user in context", userCtx(alice), obo.Target{Flavor: obo.ClientCredentials, Scopes: []string{"y", "x"}}, 10},
	}
	for _, s := range steps {
		_, err := ex.Token(s.ctx, s.target)
		require.NoError(t, err, s.name)
		assert.Equal(t, s.calls, as.calls.Load(), s.name)
	}
}

// TestCacheBounded: with CacheSize 2, the least recently used token is
// evicted and has to be exchanged again.
func TestCacheBounded(t *testing.T) {
	as := newFakeAS(t, "client_secret_basic")
	ex := newExchanger(t, as, func(c *obo.Config) { c.CacheSize = 2 })
	users := []string{alice, bob, "carol-inbound-token-0123456789"}
	get := func(u string) {
		t.Helper()
		_, err := ex.Token(userCtx(u), calendar)
		require.NoError(t, err)
	}
	get(users[0])
	get(users[1])
	get(users[0]) // alice is now the most recent
	assert.EqualValues(t, 2, as.calls.Load())
	get(users[2]) // evicts bob
	assert.EqualValues(t, 3, as.calls.Load())
	get(users[0])
	assert.EqualValues(t, 3, as.calls.Load(), "alice must still be cached")
	get(users[1])
	assert.EqualValues(t, 4, as.calls.Load(), "bob was evicted")

	t.Run("negative size disables the cache", func(t *testing.T) {
		as := newFakeAS(t, "client_secret_basic")
		ex := newExchanger(t, as, func(c *obo.Config) { c.CacheSize = -1 })
		for range 3 {
			_, err := ex.Token(userCtx(alice), calendar)
			require.NoError(t, err)
		}
		assert.EqualValues(t, 3, as.calls.Load())
	})
}

// TestOneExchangeForManyCallers: 1,000 goroutines asking for the same
// user and target cause exactly one exchange.
func TestOneExchangeForManyCallers(t *testing.T) {
	as := newFakeAS(t, "client_secret_basic")
	gate := make(chan struct{})
	as.gate = gate
	var mu sync.Mutex
	var cached, shared, total int
	obs := &countingStarts{observerFunc: func(_ context.Context, ev obo.ExchangeEvent) {
		mu.Lock()
		defer mu.Unlock()
		total++
		if ev.Cached {
			cached++
		}
		if ev.Shared {
			shared++
		}
	}}
	ex := newExchanger(t, as, func(c *obo.Config) { c.Observer = obs })
	const n = 1000
	var wg sync.WaitGroup
	var start sync.WaitGroup
	start.Add(n)
	toks := make([]string, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			start.Done()
			tok, err := ex.Token(userCtx(alice), calendar)
			toks[i], errs[i] = tok.AccessToken.Reveal(), err
		})
	}
	start.Wait()
	close(gate)
	wg.Wait()
	assert.EqualValues(t, 1, as.calls.Load(), "exactly one exchange")
	for i := range n {
		require.NoError(t, errs[i])
		assert.Equal(t, toks[0], toks[i])
	}
	assert.Equal(t, alice, decodeIssued(t, toks[0]).Sub)
	assert.Equal(t, n, total, "one event per call")
	assert.Equal(t, n-1, cached+shared, "all but the leader were served by the cache or the shared flight")
	assert.EqualValues(t, 1, obs.starts.Load(), "one exchange started, for the leader only")
}

// TestUsersNeverShareTokens: many goroutines for several users at once;
// every goroutine checks it received a token issued for its own user.
func TestUsersNeverShareTokens(t *testing.T) {
	as := newFakeAS(t, "client_secret_basic")
	ex := newExchanger(t, as, nil)
	const n, nUsers = 1000, 10
	users := make([]string, nUsers)
	for i := range users {
		users[i] = fmt.Sprintf("user-%02d-inbound-token-0123456789", i)
	}
	var wg sync.WaitGroup
	wrong := make(chan string, n)
	for i := range n {
		wg.Go(func() {
			u := users[i%nUsers]
			target := calendar
			if i%3 == 0 {
				target = obo.Target{Flavor: obo.EntraOBO, Scopes: []string{"api://calendar/.default"}}
			}
			tok, err := ex.Token(userCtx(u), target)
			if err != nil {
				wrong <- fmt.Sprintf("goroutine %d: %v", i, err)
				return
			}
			it, err := tryDecodeIssued(tok.AccessToken.Reveal())
			if err != nil {
				wrong <- fmt.Sprintf("goroutine %d: %v", i, err)
				return
			}
			if it.Sub != u {
				wrong <- fmt.Sprintf("goroutine %d for user %d received a token for another user", i, i%nUsers)
			}
			if (target.Flavor == obo.EntraOBO) != (it.Grant == "urn:ietf:params:oauth:grant-type:jwt-bearer") {
				wrong <- fmt.Sprintf("goroutine %d received a token of another flavor", i)
			}
		})
	}
	wg.Wait()
	close(wrong)
	for w := range wrong {
		t.Error(w)
	}
	assert.EqualValues(t, 2*nUsers, as.calls.Load(), "one exchange per user and target")
}

// TestCancelledCallerDoesNotFailOthers: the caller that started an
// exchange gives up; another caller waiting for the same token still gets
// it, from the one exchange.
func TestCancelledCallerDoesNotFailOthers(t *testing.T) {
	as := newFakeAS(t, "client_secret_basic")
	gate := make(chan struct{})
	entered := make(chan struct{}, 1)
	as.gate, as.entered = gate, entered
	ex := newExchanger(t, as, nil)

	leaderCtx, cancel := context.WithCancel(userCtx(alice))
	leaderErr := make(chan error, 1)
	go func() {
		_, err := ex.Token(leaderCtx, calendar)
		leaderErr <- err
	}()
	<-entered // the exchange is in flight

	followerTok := make(chan obo.Token, 1)
	followerErr := make(chan error, 1)
	go func() {
		tok, err := ex.Token(userCtx(alice), calendar)
		followerTok <- tok
		followerErr <- err
	}()
	cancel()
	err := <-leaderErr
	require.ErrorIs(t, err, context.Canceled)
	require.ErrorIs(t, err, obo.ErrUnavailable)
	close(gate)
	require.NoError(t, <-followerErr)
	assert.Equal(t, alice, decodeIssued(t, (<-followerTok).AccessToken.Reveal()).Sub)
	assert.EqualValues(t, 1, as.calls.Load())
}

func TestExchangeEvents(t *testing.T) {
	as := newFakeAS(t, "client_secret_post")
	var events []obo.ExchangeEvent
	ex := newExchanger(t, as, func(c *obo.Config) {
		c.Observer = observerFunc(func(_ context.Context, ev obo.ExchangeEvent) { events = append(events, ev) })
	})
	_, err := ex.Token(userCtx(alice), calendar)
	require.NoError(t, err)
	tok, err := ex.Token(userCtx(alice), calendar)
	require.NoError(t, err)
	as.respond = func(url.Values) (int, any) { return 400, map[string]string{"error": "invalid_grant"} }
	_, err = ex.Token(userCtx(bob), calendar)
	require.Error(t, err)

	require.Len(t, events, 3)
	assert.Equal(t, obo.TokenExchange, events[0].Flavor)
	assert.Equal(t, "calendar-api", events[0].Audience)
	assert.Equal(t, "https://calendar.example.com/", events[0].Resource)
	assert.Equal(t, "calendar.read", events[0].Scope)
	assert.False(t, events[0].Cached)
	assert.Equal(t, "ok", events[0].Outcome())
	assert.True(t, events[1].Cached)
	assert.Equal(t, "error", events[2].Outcome())
	var oe *obo.Error
	require.ErrorAs(t, events[2].Err, &oe)
	assert.Equal(t, obo.CodeInvalidGrant, oe.Code)
	for _, ev := range events {
		for _, s := range []string{fmt.Sprintf("%+v", ev), fmt.Sprintf("%#v", ev), fmt.Sprint(ev.LogValue())} {
			assertNoSecrets(t, s, alice, bob, tok.AccessToken.Reveal(), as.secret)
		}
	}
}

// TestNothingPrintsSecrets: a Config, a PrivateKey and a Token print
// without their secrets whatever the verb.
func TestNothingPrintsSecrets(t *testing.T) {
	as := newFakeAS(t, "client_secret_basic")
	cfg := obo.Config{TokenEndpoint: as.url(), ClientID: as.clientID, ClientSecret: auth.NewCredential(as.secret)}
	ex, err := obo.New(cfg)
	require.NoError(t, err)
	tok, err := ex.Token(userCtx(alice), calendar)
	require.NoError(t, err)
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		assertNoSecrets(t, fmt.Sprintf(verb, cfg), as.secret)
		assertNoSecrets(t, fmt.Sprintf(verb, tok), tok.AccessToken.Reveal())
		assertNoSecrets(t, fmt.Sprintf(verb, &tok), tok.AccessToken.Reveal())
	}
	key := obo.PrivateKey{KeyID: "k1"}
	assert.Contains(t, fmt.Sprintf("%+v", key), "[REDACTED]")
}
