package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/authz"
	"github.com/mcpguard/mcpguard/tenancy"
	"github.com/mcpguard/mcpguard/transport"
)

func TestMain(m *testing.M) {
	if os.Getenv("QUICKSTART_TEST_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestQuickstart runs the real main, as `go run ./examples/quickstart`
// does, and checks that it exits 0 with every step checked.
func TestQuickstart(t *testing.T) {
	exe, err := os.Executable()
	require.NoError(t, err)
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), "QUICKSTART_TEST_MAIN=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), "exit status; stderr:\n%s\nstdout:\n%s", &stderr, &stdout)
	out := stdout.String()
	assert.Regexp(t, `All \d+ checks passed\.\n$`, out)
	assert.NotContains(t, out, "✗")
	for _, step := range []string{"1. Discovery", "2. The identity provider", "3. alice", "4. bob", "5. Rate limit", "6. The audit trail"} {
		assert.Contains(t, out, "\n"+step)
	}
}

// TestQuickstartCatchesBrokenServers runs the demo in-process against
// servers with one protection removed: each run must fail, naming the
// check that caught it.
func TestQuickstartCatchesBrokenServers(t *testing.T) {
	allowAll, err := authz.New(authz.Config{DefaultToolRule: authz.Rule{Authenticated: true}})
	require.NoError(t, err)
	oneTenant, err := tenancy.New(tenancy.Config{Func: func(*auth.Principal) (string, error) { return "shared", nil }})
	require.NoError(t, err)
	tests := []struct {
		name   string
		mutate func(*transport.Config)
		want   string
	}{
		{"no scopes enforced", func(c *transport.Config) { c.Policy = allowAll }, "bob is refused notes_write"},
		{"every user in one tenant", func(c *transport.Config) { c.Tenancy = oneTenant }, "tenants are isolated"},
		{"no rate limit", func(c *transport.Config) { c.RateLimit = nil }, "alice is slowed down"},
		{"no audit", func(c *transport.Config) { c.Audit = nil }, "is recorded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
			defer cancel()
			var out strings.Builder
			err := demo{out: &out, mutate: tt.mutate}.run(ctx)
			require.Error(t, err, out.String())
			assert.Contains(t, err.Error(), tt.want)
			assert.Contains(t, out.String(), "✗ FAILED: ")
		})
	}
	t.Run("intact", func(t *testing.T) {
		var out strings.Builder
		require.NoError(t, run(context.Background(), &out), out.String())
	})
}
