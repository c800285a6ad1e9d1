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

func TestAuthority(t *testing.T) {
	for h, want := range map[string]bool{
		"localhost": true, "LocalHost:8080": true, "127.0.0.1": true, "127.0.0.1:3000": true,
		"127.8.9.10": true, "[::1]": true, "[::1]:3000": true, "::1": true,
		"": false, "evil.example": false, "evil.example:80": false, "localhost.evil.example": false,
		"127.0.0.1.evil.example": false, "10.0.0.1:80": false, "[::2]:80": false, "0.0.0.0": false,
	} {
		assert.Equal(t, want, Authority(h), h)
	}
}
