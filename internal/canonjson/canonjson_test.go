package canonjson

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCanonical(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{"b":1,"a":[true,false,null],"c":{"y":"\u0041","x":2.50}}`, `{"a":[true,false,null],"b":1,"c":{"x":2.50,"y":"A"}}`},
		{` { "a" : 9007199254740993 } `, `{"a":9007199254740993}`},
		{`"\u003c\/"`, `"\u003c/"`},
		{`[]`, `[]`},
		{`{}`, `{}`},
		{`-0`, `-0`},
	} {
		got, err := Canonical([]byte(tc.in))
		require.NoError(t, err, tc.in)
		assert.Equal(t, tc.want, string(got), tc.in)
	}
	// Different number text is a different value, though one float64.
	a, _ := Canonical([]byte(`{"amount":9007199254740992}`))
	b, _ := Canonical([]byte(`{"amount":9007199254740993}`))
	assert.NotEqual(t, a, b)
}

func TestCanonicalRefuses(t *testing.T) {
	for _, in := range []string{
		`{"a":1,"a":2}`,
		`{"ACCOUNT":"m","account":"a"}`,
		`{"x":{"k":1,"\u212a":2}}`, // Kelvin sign folds to k, as encoding/json matches it
		`{"s":1,"\u017f":2}`,       // long s folds to s
		`[{"a":1,"A":2}]`,
		`{"a":1} {}`,
		`{"a":`,
		`{1:2}`,
		strings.Repeat(`[`, MaxDepth+1) + strings.Repeat(`]`, MaxDepth+1),
	} {
		_, err := Canonical([]byte(in))
		assert.Error(t, err, in)
	}
	_, err := Canonical([]byte(`{"a":1,"A":2}`))
	assert.ErrorIs(t, err, ErrAmbiguous)
	_, err = Canonical([]byte(strings.Repeat(`[`, MaxDepth) + strings.Repeat(`]`, MaxDepth)))
	assert.NoError(t, err, "MaxDepth levels are followed")
}

// decode reads b as encoding/json does with UseNumber (numbers as their
// text, so that 1e1000 decodes).
func decode(t *testing.T, b []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	require.NoError(t, dec.Decode(&v), "%q", b)
	return v
}

// FuzzCanonical: whatever Canonical accepts is valid JSON that means the
// same to encoding/json, and canonical forms are fixed points.
func FuzzCanonical(f *testing.F) {
	for _, s := range []string{`{"b":1,"a":[1,2,{"c":null}]}`, `"x"`, `{"a":1,"A":2}`, `[1e5,-0.0,"\ud800"]`, `{"\u212a":1}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Canonical(b)
		if err != nil {
			return
		}
		require.True(t, json.Valid(c), "%q -> %q", b, c)
		assert.Equal(t, decode(t, b), decode(t, c), "%q -> %q", b, c)
		again, err := Canonical(c)
		require.NoError(t, err)
		assert.Equal(t, c, again)
	})
}
