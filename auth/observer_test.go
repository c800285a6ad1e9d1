package auth

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/auth/authtest"
)

type spanKey struct{}

// recordingObserver writes down what it is told, as lines, and puts the
// name of each operation it starts in the context it returns so that a
// nested operation can be told apart from a sibling.
type recordingObserver struct {
	mu    sync.Mutex
	lines []string
}

func (o *recordingObserver) add(s string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.lines = append(o.lines, s)
}

func (o *recordingObserver) take() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	l := o.lines
	o.lines = nil
	return l
}

func (o *recordingObserver) ObserveCache(_ context.Context, c Cache, hit bool) {
	o.add(fmt.Sprintf("cache %s hit=%v", c, hit))
}

func (o *recordingObserver) StartOperation(ctx context.Context, op Operation) (context.Context, func(Outcome)) {
	parent, _ := ctx.Value(spanKey{}).(string)
	o.add(fmt.Sprintf("start %s parent=%q source=%s", op.Kind, parent, op.Source))
	return context.WithValue(ctx, spanKey{}, op.Kind.String()), func(out Outcome) {
		class := ""
		if out.Err != nil {
			class = "error"
		}
		o.add(fmt.Sprintf("end %s keys=%d err=%s", op.Kind, out.Keys, class))
	}
}

// The JWT validator tells its Observer of each cache lookup, each cold
// validation and each JWK Set fetch, the fetch nested in the validation
// that waited for it.
func TestJWTValidatorObserver(t *testing.T) {
	idp := newIDP(t, nil, "ES256")
	v := newValidator(t, idp, nil, nil)
	o := &recordingObserver{}
	require.NoError(t, v.SetObserver(o))
	require.ErrorIs(t, v.SetObserver(o), ErrConfig, "one observer per validator")
	require.ErrorIs(t, v.SetObserver(nil), ErrConfig)
	ctx := context.WithValue(t.Context(), spanKey{}, "request")

	tok := idp.MustMint(map[string]any{"scope": "a"})
	_, err := v.Validate(ctx, tok)
	require.NoError(t, err)
	src := idp.Issuer()
	assert.Equal(t, []string{
		"cache token hit=false",
		`start validate parent="request" source=` + src,
		`start fetch_keys parent="validate" source=` + src,
		"end fetch_keys keys=1 err=",
		"end validate keys=0 err=",
	}, o.take())

	_, err = v.Validate(ctx, tok)
	require.NoError(t, err)
	assert.Equal(t, []string{"cache token hit=true"}, o.take())

	_, err = v.Validate(ctx, idp.MustMint(map[string]any{"aud": "https://other.example"}))
	require.ErrorIs(t, err, ErrInvalidToken)
	assert.Equal(t, []string{
		"cache token hit=false",
		`start validate parent="request" source=` + src,
		"end validate keys=0 err=error",
	}, o.take())

	// A fetch that fails is reported with its error.
	idp.SetJWKSFault(authtest.FaultStatus500)
	v2 := newValidator(t, idp, nil, nil)
	require.NoError(t, v2.SetObserver(o))
	_, err = v2.Validate(ctx, tok)
	require.ErrorIs(t, err, ErrUnavailable)
	lines := o.take()
	assert.Equal(t, []string{
		"cache token hit=false",
		`start validate parent="request" source=` + src,
		`start fetch_keys parent="validate" source=` + src,
		"end fetch_keys keys=0 err=error",
		"end validate keys=0 err=error",
	}, lines)
	for _, l := range lines {
		assert.NotContains(t, l, tok)
	}
}

// countingObserver counts and allocates nothing.
type countingObserver struct{ hits, misses atomic.Int64 }

func (o *countingObserver) ObserveCache(_ context.Context, _ Cache, hit bool) {
	if hit {
		o.hits.Add(1)
	} else {
		o.misses.Add(1)
	}
}

func (o *countingObserver) StartOperation(ctx context.Context, _ Operation) (context.Context, func(Outcome)) {
	return ctx, nil
}

// Without an observer nothing is reported and nothing is built.
func TestJWTValidatorNoObserver(t *testing.T) {
	idp := newIDP(t, nil, "ES256")
	v := newValidator(t, idp, nil, nil)
	tok := idp.MustMint(nil)
	_, err := v.Validate(t.Context(), tok)
	require.NoError(t, err)
	ctx, end := v.keys.obs.start(t.Context(), Operation{Kind: OpValidate})
	assert.Nil(t, end)
	assert.Equal(t, t.Context(), ctx)
	allocs := testing.AllocsPerRun(100, func() { _, _ = v.Validate(t.Context(), tok) })
	o := &countingObserver{}
	require.NoError(t, v.SetObserver(o))
	assert.Equal(t, allocs, testing.AllocsPerRun(100, func() { _, _ = v.Validate(t.Context(), tok) }),
		"a warm validation with an observer that allocates nothing allocates no more than without one")
	assert.Equal(t, int64(101), o.hits.Load(), "AllocsPerRun's warm-up run and its 100 runs, all hits")
	assert.Zero(t, o.misses.Load())
}

// The introspection validator tells its Observer of each cache lookup and
// each introspection, with the failure of one that failed.
func TestIntrospectionValidatorObserver(t *testing.T) {
	idp := newIDP(t, nil, "ES256")
	require.NoError(t, idp.RegisterClient(authtest.Client{ID: "mcp-rs", Secret: "rs-secret"}))
	v, err := NewIntrospectionValidator(IntrospectionConfig{
		Issuer: idp.Issuer(), Endpoint: idp.IntrospectionURL(), Audience: idp.Audience(),
		ClientID: "mcp-rs", ClientSecret: NewCredential("rs-secret"),
	})
	require.NoError(t, err)
	defer v.Close()
	chain, err := NewChainValidator(ChainConfig{Opaque: v})
	require.NoError(t, err)
	o := &recordingObserver{}
	require.NoError(t, chain.SetObserver(o), "the chain passes the observer on")
	ctx := context.WithValue(t.Context(), spanKey{}, "request")

	tok := idp.MustMintOpaque(nil)
	_, err = chain.Validate(ctx, tok)
	require.NoError(t, err)
	_, err = chain.Validate(ctx, tok)
	require.NoError(t, err)
	src := idp.Issuer()
	assert.Equal(t, []string{
		"cache introspection hit=false",
		`start introspect parent="request" source=` + src,
		"end introspect keys=0 err=",
		"cache introspection hit=true",
	}, o.take())

	idp.SetIntrospectionFault(authtest.FaultStatus500)
	bad := idp.MustMintOpaque(nil)
	_, err = chain.Validate(ctx, bad)
	require.ErrorIs(t, err, ErrUnavailable)
	lines := o.take()
	assert.Equal(t, []string{
		"cache introspection hit=false",
		`start introspect parent="request" source=` + src,
		"end introspect keys=0 err=error",
	}, lines)
	for _, l := range lines {
		assert.False(t, strings.Contains(l, bad) || strings.Contains(l, "rs-secret"))
	}
}

// KeySet says what the validator holds and when it was fetched, without
// waiting for an Observer to see a fetch.
func TestJWTValidatorKeySet(t *testing.T) {
	clock := newFakeClock()
	idp := newIDP(t, clock, "ES256")
	v := newValidator(t, idp, clock, nil)
	assert.Equal(t, KeySetInfo{Source: idp.Issuer()}, v.KeySet(), "nothing fetched yet")
	require.NoError(t, v.Refresh(t.Context()))
	assert.Equal(t, KeySetInfo{Source: idp.Issuer(), Keys: 1, Fetched: clock.Now()}, v.KeySet())
	chain, err := NewChainValidator(ChainConfig{JWT: v})
	require.NoError(t, err)
	assert.Equal(t, v.KeySet(), chain.KeySet())
	assert.Equal(t, KeySetInfo{}, (&JWTValidator{}).KeySet())
}
