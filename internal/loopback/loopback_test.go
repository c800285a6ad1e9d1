package loopback

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestHost(t *testing.T) {
	for _, h := range []string{"localhost", "127.0.0.1", "127.8.9.10", "::1"} {
		assert.True(t, Host(h), h)
	}
	for _, h := range []string{"", "localhost.example.com", "example.com", "10.0.0.1", "0.0.0.0", "::", "[::1]", "LOCALHOST.", "127.0.0.1:80"} {
		assert.False(t, Host(h), h)
	}
}
