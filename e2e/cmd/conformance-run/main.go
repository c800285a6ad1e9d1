// Command conformance-run runs the official MCP conformance suite's server
// scenarios against mcp-go's own conformance server (the reference), our
// fixture server bare, and the same server behind mcpguard's production
// stack with a token-adding proxy in front, then compares them. Each
// variant plays the scenarios every revision in -revisions requires (the
// CLI's --requirements): 2025-11-25 over sessions and 2026-07-28
// stateless, each compared on its own.
//
// Usage (from the e2e module; .ci/conformance.sh does this):
//
//	conformance-run -js js -reference /path/to/mcp-go-conformance \
//	    -baseline /path/to/mcp-go/conformance/server/expected-failures.yml
//
// Scenarios listed in the baseline fail intermittently in mcp-go itself (a
// notification sent just before a tool returns can be dropped); each of
// them that fails in the full run is rerun alone up to -retries times, and
// the outcome is reported; they do not decide the verdict, since even the
// reference can fail them on every attempt. Any other scenario a variant
// fails in its full run while the previous variant passes it is rerun alone
// up to -regression-retries times (default 3): one that then passes counts
// as passed and is reported on a "RETRIED" line and as "FAIL, retry N" in
// the table; one that fails every attempt stays a regression. -results
// writes the per-scenario table as Markdown (e2e/conformance/RESULTS.md).
// The command exits 1 when, in
// any revision, the wrapped server fails any other scenario the bare one
// passes, the bare fixture fails one the reference passes, or the wrapped
// server fails a scenario of -require-wrapped (default $REQUIRE_WRAPPED, or
// 2025-11-25:server-session-lifecycle), which it must pass even where the
// bare fixture does not.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mcpguard/mcpguard/e2e/conformance"
)

type variant struct {
	name string
	url  string
	eras map[string]*outcome // revision -> outcome
}

type outcome struct {
	first   conformance.Results // the full run, before retries
	final   conformance.Results // after retrying baseline scenarios and regressions
	retried map[string]int      // scenario -> passing attempt (0: never)
	tries   map[string]int      // scenario -> attempts made alone
}

// defaultRequired are the scenarios the wrapped server must pass even where
// the bare fixture fails them: mcp-go keeps answering a terminated session,
// mcpguard's TerminatedSessions answers 404 after DELETE.
const defaultRequired = "2025-11-25:server-session-lifecycle"

func main() {
	jsDir := flag.String("js", "js", "directory with the installed npm packages")
	reference := flag.String("reference", "", "binary of mcp-go's examples/conformance server (optional)")
	baselinePath := flag.String("baseline", "", "mcp-go's conformance/server/expected-failures.yml")
	retries := flag.Int("retries", 20, "attempts for each intermittent scenario that failed")
	skipWrapped := flag.Bool("skip-wrapped", false, "do not run the wrapped variant")
	regressionRetries := flag.Int("regression-retries", 3, "attempts, alone, for each scenario a variant fails where the previous one passes (0: none)")
	resultsPath := flag.String("results", "", "write the per-scenario table (scenario, revision, each variant) as Markdown to this file")
	revisions := flag.String("revisions", strings.Join(conformance.Revisions, ","), "comma-separated specification revisions to run")
	reqDefault := defaultRequired
	if env, ok := os.LookupEnv("REQUIRE_WRAPPED"); ok {
		reqDefault = env
	}
	required := flag.String("require-wrapped", reqDefault,
		"comma-separated scenarios (\"scenario\" or \"revision:scenario\") the wrapped server must pass whatever the bare one does; default $REQUIRE_WRAPPED or "+defaultRequired)
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg := config{
		jsDir: *jsDir, reference: *reference, baselinePath: *baselinePath, retries: *retries,
		skipWrapped: *skipWrapped, revisions: strings.Split(*revisions, ","),
		regressionRetries: *regressionRetries, resultsPath: *resultsPath,
		required: conformance.Required(*required),
	}
	code, err := run(ctx, cfg)
	if err != nil {
		log.Print(err)
	}
	os.Exit(code)
}

type config struct {
	jsDir, reference, baselinePath string
	retries, regressionRetries     int
	skipWrapped                    bool
	resultsPath                    string
	revisions                      []string
	required                       []conformance.Requirement
}

func run(ctx context.Context, cfg config) (int, error) {
	began := time.Now()
	suite, err := conformance.SuiteIn(cfg.jsDir)
	if err != nil {
		return 1, err
	}
	var baseline []string
	if cfg.baselinePath != "" {
		f, err := os.Open(cfg.baselinePath)
		if err != nil {
			return 1, err
		}
		baseline, err = conformance.ReadBaseline(f)
		f.Close()
		if err != nil {
			return 1, err
		}
	}

	var variants []*variant
	if cfg.reference != "" {
		url, stopRef, err := startReference(ctx, cfg.reference)
		if err != nil {
			return 1, err
		}
		defer stopRef()
		variants = append(variants, &variant{name: "mcp-go", url: url})
	}
	bare, err := conformance.Start(ctx, conformance.Options{})
	if err != nil {
		return 1, err
	}
	defer bare.Close()
	variants = append(variants, &variant{name: "bare", url: bare.URL})
	if !cfg.skipWrapped {
		wrapped, err := conformance.Start(ctx, conformance.Options{Guarded: true})
		if err != nil {
			return 1, fmt.Errorf("wrapped variant: %w", err)
		}
		defer wrapped.Close()
		variants = append(variants, &variant{name: "wrapped", url: wrapped.URL})
	}

	// The variants are separate servers and the suite's client mostly
	// waits on timers, so the variants run side by side; the revisions of
	// one variant run one after the other.
	logs := make([]strings.Builder, len(variants))
	errs := make([]error, len(variants))
	var wg sync.WaitGroup
	for i, v := range variants {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = playVariant(ctx, suite, v, cfg, baseline, &logs[i])
		}()
	}
	wg.Wait()
	for i := range variants {
		fmt.Print(logs[i].String())
	}
	if err := errors.Join(errs...); err != nil {
		return 1, err
	}
	retried, err := retryRegressions(ctx, suite, cfg, variants, baseline)
	if err != nil {
		return 1, err
	}
	for _, rev := range cfg.revisions {
		report(rev, variants)
	}
	for _, line := range retried {
		fmt.Println(line)
	}
	if cfg.resultsPath != "" {
		if err := os.WriteFile(cfg.resultsPath, []byte(resultsMarkdown(cfg, variants, baseline, retried)), 0o644); err != nil {
			return 1, err
		}
	}

	// The baseline scenarios fail intermittently in mcp-go itself, even
	// after many retries (the reference server has failed one 21 times in a
	// row here). They are reported above but do not decide the verdict:
	// the comparison is over every other scenario.
	if len(baseline) > 0 {
		fmt.Printf("known mcp-go failures (expected-failures.yml), reported, not compared: %s\n", strings.Join(baseline, ", "))
	}
	code := 0
	for _, rev := range cfg.revisions {
		for i := 1; i < len(variants); i++ {
			base, other := variants[i-1], variants[i]
			bf, of := without(base.eras[rev].final, baseline), without(other.eras[rev].final, baseline)
			if reg := conformance.Regressions(bf, of); len(reg) > 0 {
				fmt.Printf("FAIL %s: %s fails scenarios %s passes: %s\n", rev, other.name, base.name, strings.Join(reg, ", "))
				code = 1
			}
		}
		if last := variants[len(variants)-1]; last.name == "wrapped" {
			if unmet := conformance.Unmet(rev, last.eras[rev].final, cfg.required); len(unmet) > 0 {
				fmt.Printf("FAIL %s: wrapped fails required scenarios: %s\n", rev, strings.Join(unmet, ", "))
				code = 1
			}
		}
	}
	if code == 0 {
		fmt.Println("OK: in every revision each variant passes every scenario the previous one passes, and wrapped passes every required one")
	}
	fmt.Printf("wall time %s\n", time.Since(began).Round(time.Millisecond))
	return code, nil
}

// playVariant runs every revision against v and retries its failed
// baseline scenarios, writing one summary line per revision to w.
func playVariant(ctx context.Context, suite conformance.Suite, v *variant, cfg config, baseline []string, w io.Writer) error {
	v.eras = map[string]*outcome{}
	for _, rev := range cfg.revisions {
		start := time.Now()
		res, err := suite.Run(ctx, v.url, rev, "")
		if err != nil {
			return fmt.Errorf("%s %s: %w", v.name, rev, err)
		}
		o := &outcome{first: res, final: conformance.Results{}, retried: map[string]int{}, tries: map[string]int{}}
		for k, r := range res {
			o.final[k] = r
		}
		for _, name := range baseline {
			r, ok := res[name]
			if !ok || r.Passed {
				continue
			}
			attempt, err := suite.Retry(ctx, v.url, rev, name, cfg.retries)
			if err != nil {
				return fmt.Errorf("%s %s: %w", v.name, rev, err)
			}
			o.retried[name] = attempt
			o.tries[name] = cfg.retries
			if attempt > 0 {
				r.Passed = true
				o.final[name] = r
			}
		}
		v.eras[rev] = o
		_, passed, checks, checksPassed := o.first.Totals()
		fmt.Fprintf(w, "%-8s %s: %d/%d scenarios, %d/%d checks passed (%s)\n",
			v.name, rev, passed, len(o.first), checksPassed, checks, time.Since(start).Round(time.Millisecond))
	}
	return nil
}

// retryRegressions reruns alone, up to cfg.regressionRetries times, each
// scenario outside the baseline that a variant failed in its full run while
// the previous variant passed it. The suite and mcp-go are timing-sensitive
// on a loaded machine: a server-initiated request's answer can reach mcp-go
// after the POST stream it belongs to was dropped, which happens behind the
// token-adding proxy in front of bare mcp-go too (elicitation-sep1034-
// defaults, once in about fifty runs under load). A scenario that passes
// alone counts as passed and is reported with its attempt; one that fails
// every attempt stays a regression. The returned lines say which.
func retryRegressions(ctx context.Context, suite conformance.Suite, cfg config, variants []*variant, baseline []string) ([]string, error) {
	var lines []string
	if cfg.regressionRetries <= 0 {
		return nil, nil
	}
	for _, rev := range cfg.revisions {
		for i := 1; i < len(variants); i++ {
			base, other := variants[i-1], variants[i]
			o := other.eras[rev]
			for _, name := range conformance.Regressions(without(base.eras[rev].final, baseline), without(o.final, baseline)) {
				if _, ran := o.first[name]; !ran {
					continue // missing, not failed: nothing to retry
				}
				attempt, err := suite.Retry(ctx, other.url, rev, name, cfg.regressionRetries)
				if err != nil {
					return nil, fmt.Errorf("%s %s: retrying %s: %w", other.name, rev, name, err)
				}
				o.retried[name] = attempt
				o.tries[name] = cfg.regressionRetries
				if attempt > 0 {
					r := o.final[name]
					r.Passed = true
					o.final[name] = r
					lines = append(lines, fmt.Sprintf("RETRIED %s %s %s: failed in the full run (%s passes it), passed alone on attempt %d of %d",
						rev, other.name, name, base.name, attempt, cfg.regressionRetries))
				} else {
					lines = append(lines, fmt.Sprintf("RETRIED %s %s %s: failed in the full run (%s passes it) and on all %d attempts alone",
						rev, other.name, name, base.name, cfg.regressionRetries))
				}
			}
		}
	}
	return lines, nil
}

// cell is a variant's verdict on scenario n of revision rev.
func cell(v *variant, rev, n string) string {
	o := v.eras[rev]
	r, ok := o.first[n]
	switch {
	case !ok:
		return "missing"
	case r.Passed:
		return "pass"
	}
	a, retried := o.retried[n]
	switch {
	case !retried:
		return "FAIL"
	case a > 0:
		return fmt.Sprintf("FAIL, retry %d", a)
	}
	return fmt.Sprintf("FAIL x%d", o.tries[n]+1)
}

func scenarioNames(rev string, variants []*variant) []string {
	var names []string
	for _, v := range variants {
		for _, n := range v.eras[rev].first.Names() {
			if !slices.Contains(names, n) {
				names = append(names, n)
			}
		}
	}
	slices.Sort(names)
	return names
}

// resultsMarkdown is the per-scenario table of every revision, for
// e2e/conformance/RESULTS.md.
func resultsMarkdown(cfg config, variants []*variant, baseline, retried []string) string {
	var b strings.Builder
	b.WriteString("# Conformance results\n\n")
	b.WriteString("Generated by `bash .ci/conformance.sh -results conformance/RESULTS.md` (cmd/conformance-run) from one full run of the\n")
	b.WriteString("server scenarios each revision requires, against every variant: `mcp-go` is mcp-go's own examples/conformance\n")
	b.WriteString("server (the reference), `bare` our fixture (package conformance) served by mcp-go alone, `wrapped` the same\n")
	b.WriteString("fixture behind mcpguard's production stack with a token-adding proxy in front.\n\n")
	b.WriteString("`pass`/`FAIL` is the full run; `FAIL, retry N` passed when rerun alone on attempt N; `FAIL xN` failed N times.\n")
	if len(baseline) > 0 {
		fmt.Fprintf(&b, "Known intermittent in mcp-go itself (its expected-failures.yml), retried and reported, not compared: %s.\n", strings.Join(baseline, ", "))
	}
	b.WriteString("\n| scenario | revision | " + strings.Join(variantNames(variants), " | ") + " |\n")
	b.WriteString("|---|---|" + strings.Repeat("---|", len(variants)) + "\n")
	for _, rev := range cfg.revisions {
		for _, n := range scenarioNames(rev, variants) {
			cells := make([]string, 0, len(variants))
			for _, v := range variants {
				cells = append(cells, cell(v, rev, n))
			}
			fmt.Fprintf(&b, "| %s | %s | %s |\n", n, rev, strings.Join(cells, " | "))
		}
	}
	for _, rev := range cfg.revisions {
		var passed []string
		for _, v := range variants {
			_, p, checks, checksPassed := v.eras[rev].first.Totals()
			passed = append(passed, fmt.Sprintf("%s %d/%d (%d/%d checks)", v.name, p, len(v.eras[rev].first), checksPassed, checks))
		}
		fmt.Fprintf(&b, "\n%s, scenarios passed in the full run: %s.\n", rev, strings.Join(passed, ", "))
	}
	if len(retried) > 0 {
		b.WriteString("\nRegressions retried alone:\n\n")
		for _, l := range retried {
			b.WriteString("- " + l + "\n")
		}
	}
	b.WriteString("\nWhy each scenario that fails does (from the suite's check messages):\n\n")
	for _, rev := range cfg.revisions {
		for _, v := range variants {
			o := v.eras[rev]
			for _, n := range o.first.Names() {
				if r := o.first[n]; !r.Passed {
					msg := strings.Join(r.Failures, "; ")
					if len(msg) > 600 {
						msg = msg[:600] + " …"
					}
					fmt.Fprintf(&b, "- %s %s %s: %s\n", rev, v.name, n, strings.ReplaceAll(msg, "|", "/"))
				}
			}
		}
	}
	return b.String()
}

func report(rev string, variants []*variant) {
	names := scenarioNames(rev, variants)
	fmt.Printf("\n| %s scenario | %s |\n", rev, strings.Join(variantNames(variants), " | "))
	fmt.Printf("|---|%s\n", strings.Repeat("---|", len(variants)))
	for _, n := range names {
		cells := make([]string, 0, len(variants))
		for _, v := range variants {
			cells = append(cells, cell(v, rev, n))
		}
		fmt.Printf("| %s | %s |\n", n, strings.Join(cells, " | "))
	}
	fmt.Println()
	for _, v := range variants {
		o := v.eras[rev]
		for _, n := range o.first.Names() {
			if r := o.first[n]; !r.Passed {
				fmt.Printf("%s %s %s: %s\n", rev, v.name, n, strings.Join(r.Failures, "; "))
			}
		}
	}
	fmt.Println()
}

func variantNames(vs []*variant) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = v.name
	}
	return out
}

// without returns res less the named scenarios.
func without(res conformance.Results, names []string) conformance.Results {
	out := conformance.Results{}
	for k, r := range res {
		out[k] = r
	}
	for _, n := range names {
		delete(out, n)
	}
	return out
}

// startReference runs mcp-go's conformance server binary on a free loopback
// port (it reads CONFORMANCE_ADDR) and waits for its /health.
func startReference(ctx context.Context, bin string) (string, func(), error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	addr := l.Addr().String()
	l.Close()
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "CONFORMANCE_ADDR="+addr)
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("reference server: %w", err)
	}
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return "http://" + addr + "/mcp", stop, nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			stop()
			return "", nil, errors.New("reference server did not become healthy")
		}
		time.Sleep(100 * time.Millisecond)
	}
}
