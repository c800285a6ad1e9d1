// Command conformance-run runs the official MCP conformance suite's server
// scenarios against mcp-go's own conformance server (the reference), our
// fixture server bare, and the same server behind mcpguard's production
// stack with a token-adding proxy in front, then compares them.
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
// reference can fail them on every attempt. The command exits 1 when the
// wrapped server fails any other scenario the bare one passes, or the bare
// fixture fails one the reference passes.
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
	"strings"
	"syscall"
	"time"

	"github.com/mcpguard/mcpguard/e2e/conformance"
)

type variant struct {
	name    string
	url     string
	first   conformance.Results // the full run, before retries
	final   conformance.Results // after retrying baseline scenarios
	retried map[string]int      // scenario -> passing attempt (0: never)
}

func main() {
	jsDir := flag.String("js", "js", "directory with the installed npm packages")
	reference := flag.String("reference", "", "binary of mcp-go's examples/conformance server (optional)")
	baselinePath := flag.String("baseline", "", "mcp-go's conformance/server/expected-failures.yml")
	retries := flag.Int("retries", 20, "attempts for each intermittent scenario that failed")
	skipWrapped := flag.Bool("skip-wrapped", false, "do not run the wrapped variant")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	code, err := run(ctx, *jsDir, *reference, *baselinePath, *retries, *skipWrapped)
	if err != nil {
		log.Print(err)
	}
	os.Exit(code)
}

func run(ctx context.Context, jsDir, reference, baselinePath string, retries int, skipWrapped bool) (int, error) {
	suite, err := conformance.SuiteIn(jsDir)
	if err != nil {
		return 1, err
	}
	var baseline []string
	if baselinePath != "" {
		f, err := os.Open(baselinePath)
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
	if reference != "" {
		url, stopRef, err := startReference(ctx, reference)
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
	if !skipWrapped {
		wrapped, err := conformance.Start(ctx, conformance.Options{Guarded: true})
		if err != nil {
			return 1, fmt.Errorf("wrapped variant: %w", err)
		}
		defer wrapped.Close()
		variants = append(variants, &variant{name: "wrapped", url: wrapped.URL})
	}

	for _, v := range variants {
		start := time.Now()
		res, err := suite.Run(ctx, v.url, "")
		if err != nil {
			return 1, fmt.Errorf("%s: %w", v.name, err)
		}
		v.first, v.final, v.retried = res, conformance.Results{}, map[string]int{}
		for k, r := range res {
			v.final[k] = r
		}
		for _, name := range baseline {
			r, ok := res[name]
			if !ok || r.Passed {
				continue
			}
			attempt, err := suite.Retry(ctx, v.url, name, retries)
			if err != nil {
				return 1, fmt.Errorf("%s: %w", v.name, err)
			}
			v.retried[name] = attempt
			if attempt > 0 {
				r.Passed = true
				v.final[name] = r
			}
		}
		_, passed, checks, checksPassed := v.first.Totals()
		fmt.Printf("%-8s full run: %d/%d scenarios, %d/%d checks passed (%s)\n",
			v.name, passed, len(v.first), checksPassed, checks, time.Since(start).Round(time.Millisecond))
	}
	report(variants, retries)

	// The baseline scenarios fail intermittently in mcp-go itself, even
	// after many retries (the reference server has failed one 21 times in a
	// row here). They are reported above but do not decide the verdict:
	// the comparison is over every other scenario.
	if len(baseline) > 0 {
		fmt.Printf("known mcp-go failures (expected-failures.yml), reported, not compared: %s\n", strings.Join(baseline, ", "))
	}
	code := 0
	for i := 1; i < len(variants); i++ {
		base, other := variants[i-1], variants[i]
		base.final, other.final = without(base.final, baseline), without(other.final, baseline)
		if reg := conformance.Regressions(base.final, other.final); len(reg) > 0 {
			fmt.Printf("FAIL: %s fails scenarios %s passes: %s\n", other.name, base.name, strings.Join(reg, ", "))
			code = 1
		}
		_, bp, _, _ := base.final.Totals()
		_, op, _, _ := other.final.Totals()
		if op < bp {
			fmt.Printf("FAIL: %s passes %d scenarios, %s %d\n", other.name, op, base.name, bp)
			code = 1
		}
	}
	if code == 0 {
		fmt.Println("OK: every variant passes every scenario the previous one passes")
	}
	return code, nil
}

func report(variants []*variant, retries int) {
	names := variants[0].first.Names()
	fmt.Printf("\n%-34s", "scenario")
	for _, v := range variants {
		fmt.Printf(" %-14s", v.name)
	}
	fmt.Println()
	for _, n := range names {
		fmt.Printf("%-34s", n)
		for _, v := range variants {
			cell := "missing"
			if r, ok := v.first[n]; ok {
				cell = "pass"
				if !r.Passed {
					cell = "FAIL"
					if a, ok := v.retried[n]; ok {
						if a > 0 {
							cell = fmt.Sprintf("FAIL, retry %d", a)
						} else {
							cell = fmt.Sprintf("FAIL x%d", retries+1)
						}
					}
				}
			}
			fmt.Printf(" %-14s", cell)
		}
		fmt.Println()
	}
	fmt.Println()
	for _, v := range variants {
		for _, n := range v.first.Names() {
			if r := v.first[n]; !r.Passed {
				fmt.Printf("%s %s: %s\n", v.name, n, strings.Join(r.Failures, "; "))
			}
		}
	}
	fmt.Println()
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
