package ctxval

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type keyA struct{}
type keyB struct{}
type otherKey struct{}

func TestString(t *testing.T) {
	base := context.WithValue(context.Background(), otherKey{}, "other")
	tests := []struct {
		name  string
		ctx   context.Context
		wantA string
		okA   bool
		wantB string
		okB   bool
	}{
		{name: "none", ctx: base},
		{name: "one", ctx: WithString(base, keyA{}, "a"), wantA: "a", okA: true},
		{name: "two keys", ctx: WithString(WithString(base, keyA{}, "a"), keyB{}, "b"), wantA: "a", okA: true, wantB: "b", okB: true},
		{name: "later hides earlier", ctx: WithString(WithString(base, keyA{}, "old"), keyA{}, "new"), wantA: "new", okA: true},
		{name: "empty value", ctx: WithString(base, keyA{}, ""), okA: true},
		{name: "under another value", ctx: context.WithValue(WithString(base, keyA{}, "a"), otherKey{}, "x"), wantA: "a", okA: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, ok := String(tt.ctx, keyA{})
			assert.Equal(t, tt.okA, ok)
			assert.Equal(t, tt.wantA, a)
			b, ok := String(tt.ctx, keyB{})
			assert.Equal(t, tt.okB, ok)
			assert.Equal(t, tt.wantB, b)
			assert.NotNil(t, tt.ctx.Value(otherKey{}), "other keys reach the parent")
		})
	}
}

func TestStringKeepsParent(t *testing.T) {
	parent, cancel := context.WithCancelCause(context.Background())
	ctx := WithString(parent, keyA{}, "a")
	child, stop := context.WithCancel(ctx)
	defer stop()
	cause := errors.New("stopped")
	cancel(cause)
	<-child.Done()
	assert.ErrorIs(t, context.Cause(child), cause)
	assert.ErrorIs(t, ctx.Err(), context.Canceled)
	v, ok := String(child, keyA{})
	require.True(t, ok)
	assert.Equal(t, "a", v)
}

func TestStringHidesValue(t *testing.T) {
	ctx := WithString(context.Background(), keyA{}, "secret-id")
	assert.NotContains(t, ctx.(interface{ String() string }).String(), "secret-id")
}

func TestWithStringAllocs(t *testing.T) {
	base := context.Background()
	s := "value"
	allocs := testing.AllocsPerRun(100, func() {
		ctx := WithString(base, keyA{}, s)
		if v, _ := String(ctx, keyA{}); v != s {
			t.Fatal(v)
		}
	})
	assert.LessOrEqual(t, allocs, 1.0)
}

func BenchmarkWithString(b *testing.B) {
	base := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		ctx := WithString(base, keyA{}, "value")
		if _, ok := String(ctx, keyB{}); ok {
			b.Fatal("found keyB")
		}
	}
}
