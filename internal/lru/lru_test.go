package lru

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

type item struct {
	Links[item]
	v int
}

func order(l *List[item, *item]) []int {
	var out []int
	for e := l.Front(); e != nil; e = e.next {
		out = append(out, e.v)
	}
	// The backward walk must agree.
	var back []int
	for e := l.Back(); e != nil; e = e.prev {
		back = append([]int{e.v}, back...)
	}
	if len(out) != len(back) {
		panic("list links disagree")
	}
	for i := range out {
		if out[i] != back[i] {
			panic("list links disagree")
		}
	}
	return out
}

func TestList(t *testing.T) {
	var l List[item, *item]
	assert.Nil(t, l.Front())
	assert.Nil(t, l.Back())
	a, b, c := &item{v: 1}, &item{v: 2}, &item{v: 3}
	l.PushFront(a)
	l.PushFront(b)
	l.PushFront(c)
	assert.Equal(t, []int{3, 2, 1}, order(&l))
	assert.Equal(t, a, l.Back())

	l.MoveToFront(a)
	assert.Equal(t, []int{1, 3, 2}, order(&l))
	l.MoveToFront(a) // already in front
	assert.Equal(t, []int{1, 3, 2}, order(&l))

	l.Remove(c) // middle
	assert.Equal(t, []int{1, 2}, order(&l))
	assert.Nil(t, c.prev)
	assert.Nil(t, c.next)
	l.Remove(b) // back
	assert.Equal(t, []int{1}, order(&l))
	assert.Equal(t, a, l.Back())
	l.Remove(a) // only
	assert.Nil(t, l.Front())
	assert.Nil(t, l.Back())

	l.PushFront(c) // a removed entry can come back
	assert.Equal(t, []int{3}, order(&l))
}

func BenchmarkMoveToFront(b *testing.B) {
	var l List[item, *item]
	items := make([]item, 64)
	for i := range items {
		l.PushFront(&items[i])
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		l.MoveToFront(&items[i%len(items)])
		i++
	}
}
