package conformance

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func writeChecks(t *testing.T, dir, name, body string) {
	t.Helper()
	d := filepath.Join(dir, name)
	require.NoError(t, os.MkdirAll(d, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(d, "checks.json"), []byte(body), 0o600))
}

func TestReadResults(t *testing.T) {
	dir := t.TempDir()
	writeChecks(t, dir, "server-ping-2026-11-21T23-42-32-504Z", `[{"id":"ping","status":"SUCCESS"}]`)
	writeChecks(t, dir, "server-tools-call-with-logging-2026-11-21T23-42-32-867Z",
		`[{"id":"tools-call-with-logging","status":"FAILURE","errorMessage":"Expected at least 3 log messages, got 2"}]`)
	writeChecks(t, dir, "server-server-sse-multiple-streams-2026-11-21T23-42-33-019Z",
		`[{"id":"a","status":"SUCCESS"},{"id":"b","status":"INFO"}]`)
	writeChecks(t, dir, "server-warned-2026-11-21T23-42-33-019Z", `[{"id":"w","status":"WARNING","errorMessage":"hmm"}]`)
	writeChecks(t, dir, "server-empty-2026-11-21T23-42-33Z", `[]`)
	writeChecks(t, dir, "client-not-a-server-scenario-2026-11-21T23-42-33Z", `[{"id":"x","status":"SUCCESS"}]`)

	res, err := ReadResults(dir)
	require.NoError(t, err)
	assert.Equal(t, []string{"empty", "ping", "server-sse-multiple-streams", "tools-call-with-logging", "warned"}, res.Names())

	tests := []struct {
		name           string
		passed         bool
		checks, passes int
		failure        string
	}{
		{name: "ping", passed: true, checks: 1, passes: 1},
		{name: "tools-call-with-logging", checks: 1, failure: "got 2"},
		{name: "server-sse-multiple-streams", passed: true, checks: 1, passes: 1},
		{name: "warned", checks: 1, failure: "WARNING hmm"},
		{name: "empty"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := res[tc.name]
			assert.Equal(t, tc.passed, r.Passed)
			assert.Equal(t, tc.checks, r.Checks)
			assert.Equal(t, tc.passes, r.ChecksPassed)
			if tc.failure != "" {
				require.Len(t, r.Failures, 1)
				assert.Contains(t, r.Failures[0], tc.failure)
			} else {
				assert.Empty(t, r.Failures)
			}
		})
	}

	scenarios, passed, checks, checksPassed := res.Totals()
	assert.Equal(t, []int{5, 2, 4, 2}, []int{scenarios, passed, checks, checksPassed})
}

func TestReadResultsMalformed(t *testing.T) {
	dir := t.TempDir()
	writeChecks(t, dir, "server-ping-2026-11-21T23-42-32-504Z", `{"not":"a list"}`)
	_, err := ReadResults(dir)
	assert.ErrorContains(t, err, "scenario ping")

	_, err = ReadResults(filepath.Join(dir, "missing"))
	assert.Error(t, err)
}

func TestReadBaseline(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
		err  bool
	}{
		{
			name: "mcp-go layout",
			in: "# Notification delivery is intermittent.\n# More comment.\nserver:\n" +
				"  - tools-call-with-logging\n  - tools-call-with-progress\n",
			want: []string{"tools-call-with-logging", "tools-call-with-progress"},
		},
		{
			name: "other sections ignored",
			in:   "client:\n  - auth/basic\nserver:\n  - ping\nother:\n  - x\n",
			want: []string{"ping"},
		},
		{name: "no server list", in: "client:\n  - auth/basic\n", err: true},
		{name: "empty", in: "", err: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ReadBaseline(strings.NewReader(tc.in))
			if tc.err {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func FuzzReadBaseline(f *testing.F) {
	f.Add("server:\n  - a\n  - b\n")
	f.Add("x:\n\t- y\nserver:\n- z\n")
	f.Fuzz(func(t *testing.T, in string) {
		names, err := ReadBaseline(strings.NewReader(in))
		if err == nil {
			assert.NotEmpty(t, names)
			for _, n := range names {
				assert.NotContains(t, n, "\n")
			}
		}
	})
}

func TestRegressions(t *testing.T) {
	base := Results{
		"a": {Scenario: "a", Passed: true},
		"b": {Scenario: "b", Passed: true},
		"c": {Scenario: "c"},
	}
	other := Results{
		"a": {Scenario: "a", Passed: true},
		"c": {Scenario: "c", Passed: true},
	}
	assert.Equal(t, []string{"b"}, Regressions(base, other), "missing counts as failing")
	assert.Equal(t, []string{"c"}, Regressions(other, base))
	assert.Empty(t, Regressions(base, base))
}

func TestRequiredUnmet(t *testing.T) {
	req := Required(" 2025-11-25:server-session-lifecycle, caching,,tools-list ")
	assert.Equal(t, []Requirement{
		{Revision: "2025-11-25", Scenario: "server-session-lifecycle"},
		{Scenario: "caching"},
		{Scenario: "tools-list"},
	}, req)

	old := Results{"server-session-lifecycle": {Passed: false}, "tools-list": {Passed: true}}
	assert.Equal(t, []string{"server-session-lifecycle"}, Unmet("2025-11-25", old, req))
	old["server-session-lifecycle"] = Result{Passed: true}
	assert.Empty(t, Unmet("2025-11-25", old, req), "caching does not run in 2025-11-25, so it is not required there")

	stateless := Results{"caching": {Passed: false}}
	assert.Equal(t, []string{"caching"}, Unmet("2026-07-28", stateless, req))
	assert.Equal(t, []string{"server-session-lifecycle"}, Unmet("2025-11-25", Results{}, req),
		"a revision-bound requirement that did not run is unmet")
}
