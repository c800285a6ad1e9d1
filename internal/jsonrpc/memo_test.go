package jsonrpc

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type memoCtx struct {
	context.Context
	memo Memo
}

func (c *memoCtx) Value(key any) any {
	if key == (MemoKey{}) {
		return &c.memo
	}
	return c.Context.Value(key)
}

func TestPeekMemo(t *testing.T) {
	body := []byte(`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"whoami"}}`)
	other := []byte(`{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"notes_write"}}`)
	ambiguous := []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","NAME":"b"}}`)

	t.Run("no memo is Peek", func(t *testing.T) {
		msg, err := PeekMemo(context.Background(), body)
		require.NoError(t, err)
		assert.Equal(t, "whoami", msg.Name)
	})
	t.Run("same bytes, answered from the memo", func(t *testing.T) {
		ctx := &memoCtx{Context: context.Background()}
		first, err := PeekMemo(ctx, body)
		require.NoError(t, err)
		require.True(t, ctx.memo.set)
		copied := append([]byte(nil), body...) // what mcp-go reads again
		second, err := PeekMemo(ctx, copied)
		require.NoError(t, err)
		assert.Equal(t, first, second)
	})
	t.Run("other bytes are peeked, the memo kept", func(t *testing.T) {
		ctx := &memoCtx{Context: context.Background()}
		_, err := PeekMemo(ctx, body)
		require.NoError(t, err)
		msg, err := PeekMemo(ctx, other)
		require.NoError(t, err)
		assert.Equal(t, "notes_write", msg.Name, "never the remembered name for other bytes")
		again, err := PeekMemo(ctx, body)
		require.NoError(t, err)
		assert.Equal(t, "whoami", again.Name)
	})
	t.Run("errors are remembered too", func(t *testing.T) {
		ctx := &memoCtx{Context: context.Background()}
		_, err := PeekMemo(ctx, ambiguous)
		require.ErrorIs(t, err, ErrAmbiguous)
		_, err = PeekMemo(ctx, append([]byte(nil), ambiguous...))
		require.ErrorIs(t, err, ErrAmbiguous)
	})
	t.Run("same length, different bytes", func(t *testing.T) {
		ctx := &memoCtx{Context: context.Background()}
		a := []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"aa"}}`)
		b := []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"bb"}}`)
		_, err := PeekMemo(ctx, a)
		require.NoError(t, err)
		msg, err := PeekMemo(ctx, b)
		require.NoError(t, err)
		assert.Equal(t, "bb", msg.Name)
	})
}

func TestMemoFact(t *testing.T) {
	var nilMemo *Memo
	nilMemo.Keep("a", 1)
	_, ok := nilMemo.Recall("a")
	assert.False(t, ok, "a nil Memo remembers nothing")

	var m Memo
	_, ok = m.Recall("a")
	assert.False(t, ok, "nothing kept yet")
	m.Keep("a", 1)
	v, ok := m.Recall("a")
	assert.True(t, ok)
	assert.Equal(t, uint8(1), v)
	_, ok = m.Recall("b")
	assert.False(t, ok, "a fact is only for the name it was kept for")
	m.Keep("b", 0)
	_, ok = m.Recall("b")
	assert.False(t, ok, "the first fact stays; a second name is not kept")
	v, _ = m.Recall("a")
	assert.Equal(t, uint8(1), v)
}
