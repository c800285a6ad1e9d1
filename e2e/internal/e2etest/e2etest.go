// Package e2etest holds helpers shared by the end-to-end tests: finding the
// pinned Node tooling and deciding whether its absence skips or fails a test.
package e2etest

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// RequireEnv names the environment variable that turns a missing Node
// installation from a skip into a failure. The CI scripts set it so that CI
// never skips the end-to-end suite.
const RequireEnv = "MCPGUARD_E2E_REQUIRE"

// JSDir returns the e2e module's js directory (package.json, the provider
// script and, once installed, node_modules), found by walking up from the
// test's working directory to the e2e module root.
func JSDir(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatalf("e2etest: %v", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "js", "package.json")); err == nil {
			if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
				return filepath.Join(dir, "js")
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatalf("e2etest: no js/package.json above the test directory")
		}
		dir = parent
	}
}

// SkipUnlessInstalled skips the test with a clear message when check reports
// missing tooling (matching notInstalled), unless RequireEnv is set to 1, in
// which case the test fails. Any other error fails the test.
func SkipUnlessInstalled(t testing.TB, check func() error, notInstalled error) {
	t.Helper()
	err := check()
	if err == nil {
		return
	}
	if errors.Is(err, notInstalled) && os.Getenv(RequireEnv) != "1" {
		t.Skipf("%v; `bash .ci/e2e.sh` installs it (set %s=1 to fail instead of skipping)", err, RequireEnv)
	}
	t.Fatal(err)
}
