package b64url

import (
	"encoding/base64"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDecode(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want string
		bad  int // index of the bad byte; -1 for none, -2 for a strict-mode refusal
	}{
		{"", "", -1},
		{"YWJj", "abc", -1},
		{"YWI", "ab", -1},
		{"-_8", "\xfb\xff", -1},
		{"YW\nJj", "", 2},
		{"YWJj\r", "", 4},
		{"\nYWJj", "", 0},
		{"YWJj=", "", 4},
		{"YW=", "", 2},
		{"YW+j", "", 2}, // standard base64's '+'
		{"YW/j", "", 2},
		{"YW Jj", "", 2},
		{"YWJ", "", -2}, // non-zero trailing bits
		{"Y", "", -2},   // an impossible length
	} {
		got, err := DecodeString(tt.in)
		dst := make([]byte, base64.RawURLEncoding.DecodedLen(len(tt.in)))
		n, derr := Decode(dst, []byte(tt.in))
		switch tt.bad {
		case -1:
			require.NoError(t, err, "%q", tt.in)
			require.NoError(t, derr, "%q", tt.in)
			assert.Equal(t, tt.want, string(got))
			assert.Equal(t, tt.want, string(dst[:n]))
			assert.True(t, Valid(tt.in))
		case -2:
			assert.Error(t, err, "%q", tt.in)
			assert.Error(t, derr, "%q", tt.in)
			assert.True(t, Valid(tt.in))
		default:
			assert.Equal(t, base64.CorruptInputError(tt.bad), err, "%q", tt.in)
			assert.Equal(t, base64.CorruptInputError(tt.bad), derr, "%q", tt.in)
			assert.False(t, Valid(tt.in))
		}
	}
	// The standard library's strict mode, for contrast, takes line breaks.
	got, err := base64.RawURLEncoding.Strict().DecodeString("YW\nJj")
	require.NoError(t, err)
	assert.Equal(t, "abc", string(got))
}

// Every input that decodes has exactly one encoding: itself.
func FuzzDecodeString(f *testing.F) {
	for _, s := range []string{"", "YWJj", "YW\nJj", "-_8", "YWJ", "YWJj=="} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b, err := DecodeString(s)
		if err != nil {
			return
		}
		assert.Equal(t, s, base64.RawURLEncoding.EncodeToString(b))
		assert.True(t, Valid(s))
	})
}
