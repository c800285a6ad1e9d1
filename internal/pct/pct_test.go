package pct

import (
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestHex(t *testing.T) {
	for c := 0; c < 256; c++ {
		v, err := strconv.ParseUint(string(rune(c)), 16, 8)
		assert.Equal(t, err == nil && c < 128, IsHex(byte(c)), "%q", c)
		if IsHex(byte(c)) {
			assert.Equal(t, byte(v), Unhex(byte(c)), "%q", c)
		}
	}
}
