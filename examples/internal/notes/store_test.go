package notes

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/tenancy"
)

func tenantCtx(t string) context.Context { return tenancy.NewContext(context.Background(), t) }

func TestStoreIsolation(t *testing.T) {
	st := NewStore(Limits{})
	acme, globex := tenantCtx("acme"), tenantCtx("globex")
	require.NoError(t, st.Write(acme, "plan", "acme plan"))
	require.NoError(t, st.Write(globex, "plan", "globex plan"))

	got, err := st.Read(acme, "plan")
	require.NoError(t, err)
	assert.Equal(t, "acme plan", got)
	got, err = st.Read(globex, "plan")
	require.NoError(t, err)
	assert.Equal(t, "globex plan", got)

	require.NoError(t, st.Write(acme, "other", "x"))
	keys, err := st.List(acme)
	require.NoError(t, err)
	assert.Equal(t, []string{"other", "plan"}, keys)
	keys, err = st.List(globex)
	require.NoError(t, err)
	assert.Equal(t, []string{"plan"}, keys)
	keys, err = st.List(tenantCtx("initech"))
	require.NoError(t, err)
	assert.Equal(t, []string{}, keys, "an empty list, not null")

	_, err = st.Read(tenantCtx("initech"), "plan")
	assert.ErrorIs(t, err, ErrNotFound)
}

func TestStoreNeedsTenant(t *testing.T) {
	st := NewStore(Limits{})
	for name, ctx := range map[string]context.Context{
		"none":    context.Background(),
		"invalid": tenantCtx("a:b"),
	} {
		t.Run(name, func(t *testing.T) {
			assert.Error(t, st.Write(ctx, "k", "v"))
			_, err := st.Read(ctx, "k")
			assert.Error(t, err)
			_, err = st.List(ctx)
			assert.Error(t, err)
		})
	}
	assert.Zero(t, len(st.notes), "nothing stored outside a partition")
}

func TestStoreLimits(t *testing.T) {
	st := NewStore(Limits{MaxKeyBytes: 8, MaxTextBytes: 16, MaxPerTenant: 2, MaxNotes: 3})
	acme, globex := tenantCtx("acme"), tenantCtx("globex")
	tests := []struct {
		name      string
		key, text string
		want      error
	}{
		{"empty key", "", "t", ErrBadKey},
		{"long key", "123456789", "t", ErrBadKey},
		{"control character", "a\x00b", "t", ErrBadKey},
		{"newline", "a\nb", "t", ErrBadKey},
		{"invalid UTF-8", "a\xffb", "t", ErrBadKey},
		{"long text", "k", strings.Repeat("x", 17), ErrTooLarge},
		{"long text is not echoed", "k", strings.Repeat("secret", 4), ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := st.Write(acme, tt.key, tt.text)
			assert.ErrorIs(t, err, tt.want)
		})
	}
	assert.NotContains(t, st.Write(acme, "k", strings.Repeat("secret", 4)).Error(), "secret")
	require.NoError(t, st.Write(acme, "a", strings.Repeat("x", 16)))
	require.NoError(t, st.Write(acme, "b", "2"))
	assert.ErrorIs(t, st.Write(acme, "c", "3"), ErrFull, "per tenant")
	require.NoError(t, st.Write(acme, "a", "replaced"), "replacing does not count")
	require.NoError(t, st.Write(globex, "a", "1"))
	err := st.Write(globex, "b", "2")
	assert.ErrorIs(t, err, ErrFull, "in all")
	assert.Contains(t, err.Error(), "server is full")
}

// FuzzStoreIsolation: whatever keys two tenants use, neither reads or
// lists the other's notes.
func FuzzStoreIsolation(f *testing.F) {
	f.Add("plan", "plan")
	f.Add("a:b", "a%3Ab")
	f.Add("tenant:globex:notes:x", "x")
	f.Fuzz(func(t *testing.T, k1, k2 string) {
		st := NewStore(Limits{})
		acme, globex := tenantCtx("acme"), tenantCtx("globex")
		if st.Write(acme, k1, "acme") != nil {
			return
		}
		if got, err := st.Read(globex, k2); err == nil {
			t.Fatalf("globex read %q as %q", k2, got)
		}
		if keys, _ := st.List(globex); len(keys) != 0 {
			t.Fatalf("globex lists %q", keys)
		}
		if st.Write(globex, k2, "globex") == nil {
			if got, _ := st.Read(acme, k1); got != "acme" {
				t.Fatalf("acme's %q now reads %q", k1, got)
			}
		}
	})
}

func BenchmarkStoreRead(b *testing.B) {
	st := NewStore(Limits{})
	ctx := tenantCtx("acme")
	require.NoError(b, st.Write(ctx, "plan", "text"))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := st.Read(ctx, "plan"); err != nil {
			b.Fatal(err)
		}
	}
}
