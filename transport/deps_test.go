package transport

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Importing transport (or ratelimit) brings in no Redis module: the Redis
// limiter is its own package, transport/ratelimit/redisrate.
func TestNoRedisDependency(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go command not found")
	}
	out, err := exec.Command(gobin, "list", "-deps", "-f", "{{if .Module}}{{.Module.Path}}{{end}}", ".", "./ratelimit").CombinedOutput()
	require.NoError(t, err, string(out))
	for _, mod := range strings.Fields(string(out)) {
		assert.NotContains(t, mod, "redis", "transport must not depend on %s", mod)
		assert.NotEqual(t, "go.uber.org/atomic", mod, "go-redis's")
	}
}
