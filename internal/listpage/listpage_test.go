package listpage

import (
	"encoding/base64"
	"slices"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/stretchr/testify/assert"
)

func tasks(ids ...string) []mcp.Task {
	out := make([]mcp.Task, len(ids))
	for i, id := range ids {
		out[i].TaskId = id
	}
	return out
}

func cursor(id string) mcp.Cursor { return mcp.Cursor(base64.StdEncoding.EncodeToString([]byte(id))) }

func TestNarrow(t *testing.T) {
	mine := func(tk mcp.Task) bool { return tk.TaskId[0] == 'm' }
	for _, tc := range []struct {
		name       string
		page       []mcp.Task
		in, cursor mcp.Cursor
		want       []string
	}{
		{"nothing hidden keeps the cursor", tasks("m1", "m2"), cursor("m2"), cursor("m2"), []string{"m1", "m2"}},
		{"last hidden: cursor moves to the last kept", tasks("m1", "x2"), cursor("x2"), cursor("m1"), []string{"m1"}},
		{"middle hidden", tasks("m1", "x2", "m3"), cursor("m3"), cursor("m3"), []string{"m1", "m3"}},
		{"all hidden ends the listing", tasks("x1", "x2"), cursor("x2"), "", nil},
		{"no cursor stays none", tasks("m1", "x2"), "", "", []string{"m1"}},
		{"empty page", tasks(), "", "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := slices.Clone(tc.page)
			got, c := Narrow(tc.page, tc.in, mine)
			var ids []string
			for _, tk := range got {
				ids = append(ids, tk.TaskId)
			}
			assert.Equal(t, tc.want, ids)
			assert.Equal(t, tc.cursor, c)
			assert.NotNil(t, got, "a list result holds an array, never null")
			assert.Equal(t, before, tc.page, "the input is not modified")
		})
	}
}

type named string

func (n named) GetName() string { return string(n) }

func TestRepage(t *testing.T) {
	c := func(s string) mcp.Cursor { return mcp.Cursor(base64.StdEncoding.EncodeToString([]byte(s))) }
	for _, tc := range []struct {
		name    string
		visible []named
		cursor  mcp.Cursor
		limit   int
		want    []named
		next    mcp.Cursor
		ok      bool
	}{
		{"first page, sorted", []named{"d", "a", "c", "b"}, "", 2, []named{"a", "b"}, c("b"), true},
		{"after a cursor", []named{"a", "b", "c", "d"}, c("b"), 2, []named{"c", "d"}, c("d"), true},
		{"a full last page keeps a cursor, as mcp-go", []named{"a", "b"}, "", 2, []named{"a", "b"}, c("b"), true},
		{"a short page has none", []named{"a", "b", "c"}, c("b"), 2, []named{"c"}, "", true},
		{"a cursor between names", []named{"a", "c", "e"}, c("b"), 2, []named{"c", "e"}, c("e"), true},
		{"past the end", []named{"a", "b"}, c("z"), 2, []named{}, "", true},
		{"nothing visible", nil, "", 2, []named{}, "", true},
		{"not base64", []named{"a"}, "!!", 2, nil, "", false},
		{"no limit", []named{"a"}, "", 0, nil, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			page, next, ok := Repage(slices.Clone(tc.visible), tc.cursor, tc.limit)
			assert.Equal(t, tc.ok, ok)
			assert.Equal(t, tc.want, page)
			assert.Equal(t, tc.next, next)
		})
	}
}

func TestAllAllowed(t *testing.T) {
	odd := func(n int) bool { return n%2 == 1 }
	assert.True(t, AllAllowed([]int{1, 3}, odd))
	assert.False(t, AllAllowed([]int{1, 2}, odd))
	assert.True(t, AllAllowed(nil, odd))
}
