// Command proc measures mcpguard as deployed: process against process.
// It builds and starts two child processes on loopback,
//
//   - bare: plain mcp-go (../bare), no authentication;
//   - prodmode: the real examples/prodmode, with its JWT validation,
//     tenancy, policy, per-caller rate limits (set far above the load) and
//     async audit to a file,
//
// gives prodmode a live auth/authtest identity provider, and drives each
// child with N clients calling whoami in two ways: 2025-11-25 sessions
// (every client initializes its own session first) and 2026-07-28
// stateless requests. Each client has its own subject, so prodmode keeps
// one limiter budget and one session binding per client. Rounds interleave
// every (mode, server) pair and rotate their order. For each it reports
// calls/s, p50/p99 latency and the server's CPU time per call, read from
// the child's own /proc/<pid>/stat (utime+stime) around the measured
// window, with the ratio of each to bare in the same mode. Run it from the
// loadtest module:
//
//	cd loadtest && go run ./cmd/proc -clients 16 -duration 5s -rounds 3
//
// By default every client calls again as soon as its answer comes (a
// closed loop), so a slower server also gets fewer calls. With -rate R the
// clients together offer R calls/s, each on its own staggered schedule:
// run at a rate both servers sustain, CPU per call compares the two at the
// same load, the same number of wake-ups and batches per second.
//
// With -base DIR a third server, base, runs examples/prodmode built from
// another checkout of the module (a git worktree of an older commit) in
// the same rounds: before and after a change, measured side by side.
// Besides the totals, proc prints each server's CPU per call against
// bare's round by round (median and range), which drifts of the machine
// between rounds disturb less.
//
// With -profile DIR every child writes a CPU profile of its whole run
// (MCPGUARD_CPUPROFILE) to DIR/<server>.pprof; read it with go tool pprof
// -top. Linux only (/proc).
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpguard/mcpguard/auth/authtest"
)

func main() {
	var o options
	flag.IntVar(&o.clients, "clients", 16, "concurrent clients, each with its own subject (and session in session mode)")
	flag.DurationVar(&o.duration, "duration", 5*time.Second, "measured time per (mode, server) per round")
	flag.DurationVar(&o.warmup, "warmup", time.Second, "unmeasured warm-up per (mode, server) per round")
	flag.IntVar(&o.rounds, "rounds", 3, "rounds; every (mode, server) pair runs once per round, order rotated")
	modes := flag.String("modes", "session,stateless", "comma-separated: session (2025-11-25), stateless (2026-07-28)")
	flag.StringVar(&o.profileDir, "profile", "", "directory for the children's CPU profiles (bare.pprof, prodmode.pprof)")
	flag.StringVar(&o.auditFile, "audit", "", "file for prodmode's audit stream (default: a temporary file)")
	flag.Float64Var(&o.rate, "rate", 0, "offered load in calls/s across all clients, each client paced on its own schedule (0: closed loop, every client calls again as soon as its answer comes)")
	flag.StringVar(&o.baseDir, "base", "", "another checkout of the mcpguard module (a git worktree of an older commit): its examples/prodmode runs as a third server, base, in the same rounds, for before-and-after in one run")
	flag.DurationVar(&o.bareWork, "bare-work", 0, "calibration: CPU bare's whoami burns per call (MCPGUARD_BARE_WORK), to see how CPU per call grows with a server's own work")
	flag.Parse()
	for _, m := range strings.Split(*modes, ",") {
		switch m = strings.TrimSpace(m); m {
		case modeSession, modeStateless:
			o.modes = append(o.modes, m)
		default:
			fmt.Fprintf(os.Stderr, "proc: unknown mode %q (want session or stateless)\n", m)
			os.Exit(2)
		}
	}
	if o.clients < 1 || o.rounds < 1 || o.duration <= 0 || len(o.modes) == 0 || o.rate < 0 || math.IsNaN(o.rate) || math.IsInf(o.rate, 0) {
		fmt.Fprintln(os.Stderr, "proc: -clients, -rounds and -duration must be positive, -rate finite and not negative, -modes not empty")
		os.Exit(2)
	}
	if err := run(o, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "proc:", err)
		os.Exit(1)
	}
}

const (
	modeSession   = "session"
	modeStateless = "stateless"
)

type options struct {
	clients          int
	duration, warmup time.Duration
	rounds           int
	modes            []string
	profileDir       string
	auditFile        string
	bareWork         time.Duration
	rate             float64
	baseDir          string
}

// clockTick is USER_HZ, the unit of utime and stime in /proc/<pid>/stat;
// Linux fixes it at 100 for user space whatever the kernel's HZ.
const clockTick = 10 * time.Millisecond

// processCPU is the user+system CPU time a process (all its threads) has
// used, from /proc/<pid>/stat.
func processCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseStat(b)
}

// processSwitches is the number of context switches of all a process's
// threads, from /proc/<pid>/task/*/status. A thread that exits in the
// window takes its count with it, so this is a floor; Go's threads live
// as long as the process.
func processSwitches(pid int) (int64, error) {
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", pid))
	if err != nil {
		return 0, err
	}
	var n int64
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue // the thread exited
		}
		k, err := parseSwitches(b)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", t, err)
		}
		n += k
	}
	return n, nil
}

// parseSwitches sums voluntary_ctxt_switches and nonvoluntary_ctxt_switches
// of a /proc status file (proc(5)).
func parseSwitches(b []byte) (int64, error) {
	if len(b) > 1<<16 {
		return 0, errors.New("status: too long")
	}
	var n int64
	found := 0
	for line := range strings.Lines(string(b)) {
		k, v, ok := strings.Cut(line, ":")
		if !ok || (k != "voluntary_ctxt_switches" && k != "nonvoluntary_ctxt_switches") {
			continue
		}
		x, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil || x < 0 || x > math.MaxInt64-n {
			return 0, fmt.Errorf("status: bad %s", k)
		}
		n += x
		found++
	}
	if found != 2 {
		return 0, errors.New("status: no context switch counts")
	}
	return n, nil
}

// parseStat reads utime and stime (fields 14 and 15, proc(5)) from the
// contents of a /proc/<pid>/stat file. The command name (field 2) is in
// parentheses and may itself hold spaces or parentheses, so fields are
// counted from the last ')'.
func parseStat(b []byte) (time.Duration, error) {
	if len(b) > 4096 {
		return 0, errors.New("stat: too long")
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("stat: no command name")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state): utime is field 14, stime field 15.
	if len(f) < 13 {
		return 0, errors.New("stat: too few fields")
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 63)
	st, err2 := strconv.ParseUint(f[12], 10, 63)
	if err1 != nil || err2 != nil {
		return 0, errors.New("stat: utime or stime is not a number")
	}
	if ticks := ut + st; ticks > uint64(math.MaxInt64/int64(clockTick)) {
		return 0, errors.New("stat: CPU time out of range") // would overflow a Duration
	}
	return time.Duration(ut+st) * clockTick, nil
}

// selfCPU is the load client's own CPU time (this process).
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// runtimeEnv is the Go runtime settings of this process's environment
// (GOGC, GOMEMLIMIT, GODEBUG, GOMAXPROCS), handed to both children alike
// so that an experiment with them changes both sides of the comparison.
func runtimeEnv() []string {
	var env []string
	for _, k := range []string{"GOGC", "GOMEMLIMIT", "GODEBUG", "GOMAXPROCS"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// child is a started server process.
type child struct {
	name string
	url  string
	cmd  *exec.Cmd
	done chan error

	stopOnce sync.Once
	stopErr  error
}

// startChild runs bin with env and waits for its "listening on <URL>" line.
func startChild(name, bin string, env []string, stderr io.Writer) (*child, error) {
	cmd := exec.Command(bin)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, runtimeEnv()...)
	cmd.Env = append(cmd.Env, env...)
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &child{name: name, cmd: cmd, done: make(chan error, 1)}
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		if sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		_, _ = io.Copy(io.Discard, out)
	}()
	go func() { c.done <- cmd.Wait() }()
	select {
	case line, ok := <-lines:
		url, found := strings.CutPrefix(line, "listening on ")
		if !ok || !found || !strings.HasPrefix(url, "http://127.0.0.1:") {
			c.stop()
			return nil, fmt.Errorf("%s: no listening line (got %q)", name, line)
		}
		c.url = url
	case <-time.After(30 * time.Second):
		c.stop()
		return nil, fmt.Errorf("%s: not listening after 30s", name)
	}
	return c, nil
}

// stop ends the child with SIGTERM (so that it writes its profile) and
// waits for it. Later calls return what the first got.
func (c *child) stop() error {
	c.stopOnce.Do(func() {
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case c.stopErr = <-c.done:
		case <-time.After(10 * time.Second):
			_ = c.cmd.Process.Kill()
			c.stopErr = fmt.Errorf("%s did not stop on SIGTERM", c.name)
		}
	})
	return c.stopErr
}

// moduleDir is the directory of module path (empty: the main module).
func moduleDir(path string) (string, error) {
	args := []string{"list", "-m", "-f", "{{.Dir}}"}
	if path != "" {
		args = append(args, path)
	}
	out, err := exec.Command("go", args...).Output()
	if err != nil {
		return "", fmt.Errorf("go %s: %w", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(out)), nil
}

func build(dir, pkg, out string) error {
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = dir
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build %s: %w", pkg, err)
	}
	return nil
}

func run(o options, stdout, logw io.Writer) error {
	loadDir, err := moduleDir("")
	if err != nil {
		return err
	}
	rootDir, err := moduleDir("github.com/mcpguard/mcpguard")
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "mcpguard-proc-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	bareBin, prodBin := filepath.Join(tmp, "bare"), filepath.Join(tmp, "prodmode")
	if err := build(loadDir, "./cmd/bare", bareBin); err != nil {
		return err
	}
	if err := build(rootDir, "./examples/prodmode", prodBin); err != nil {
		return err
	}
	servers := []string{"bare", "prodmode"}
	baseBin := filepath.Join(tmp, "base")
	if o.baseDir != "" {
		if err := build(o.baseDir, "./examples/prodmode", baseBin); err != nil {
			return fmt.Errorf("-base: %w", err)
		}
		servers = append(servers, "base")
	}

	idp, err := authtest.New(authtest.Config{Algorithms: []string{"RS256"}})
	if err != nil {
		return err
	}
	defer idp.Close()

	auditPath := o.auditFile
	if auditPath == "" {
		auditPath = filepath.Join(tmp, "audit.jsonl")
	}
	auditFile, err := os.Create(auditPath)
	if err != nil {
		return err
	}
	defer auditFile.Close()

	if o.profileDir != "" {
		if o.profileDir, err = filepath.Abs(o.profileDir); err != nil {
			return err
		}
		if err := os.MkdirAll(o.profileDir, 0o755); err != nil {
			return err
		}
	}
	profileEnv := func(name string) []string {
		if o.profileDir == "" {
			return nil
		}
		return []string{"MCPGUARD_CPUPROFILE=" + filepath.Join(o.profileDir, name+".pprof")}
	}
	bareEnv := append([]string{"MCPGUARD_ADDR=127.0.0.1:0"}, profileEnv("bare")...)
	if o.bareWork > 0 {
		bareEnv = append(bareEnv, "MCPGUARD_BARE_WORK="+o.bareWork.String())
	}
	bare, err := startChild("bare", bareBin, bareEnv, logw)
	if err != nil {
		return err
	}
	defer bare.stop()
	startProd := func(name, bin string, audit io.Writer) (*child, error) {
		return startChild(name, bin, append([]string{
			"MCPGUARD_ADDR=127.0.0.1:0",
			"MCPGUARD_ISSUER=" + idp.Issuer(),
			"MCPGUARD_RATE_LIMIT=1000000", // per caller: far above the load, still charged per call
		}, profileEnv(name)...), audit)
	}
	prod, err := startProd("prodmode", prodBin, auditFile)
	if err != nil {
		return err
	}
	defer prod.stop()
	children := map[string]*child{"bare": bare, "prodmode": prod}
	if o.baseDir != "" {
		baseAudit, err := os.Create(auditPath + ".base")
		if err != nil {
			return err
		}
		defer baseAudit.Close()
		base, err := startProd("base", baseBin, baseAudit)
		if err != nil {
			return err
		}
		defer base.stop()
		children["base"] = base
	}

	// Each client its own subject. The same bytes go to bare and prodmode
	// (bare ignores the token); base gets the same claims with its own
	// audience.
	mint := func(aud string) ([]string, error) {
		tokens := make([]string, o.clients)
		for i := range tokens {
			var err error
			if tokens[i], err = idp.Mint(map[string]any{
				"aud": aud, "sub": fmt.Sprintf("load-%d", i), "tenant_id": "load",
				"client_id": "loadtest", "scope": "notes:read",
			}); err != nil {
				return nil, err
			}
		}
		return tokens, nil
	}
	tokens := map[string][]string{}
	if tokens["prodmode"], err = mint(prod.url); err != nil {
		return err
	}
	tokens["bare"] = tokens["prodmode"]
	if c := children["base"]; c != nil {
		if tokens["base"], err = mint(c.url); err != nil {
			return err
		}
	}

	type key struct{ mode, server string }
	var order []key
	for _, m := range o.modes {
		for _, s := range servers {
			order = append(order, key{m, s})
		}
	}
	results := map[key]*result{}
	perRound := map[key]time.Duration{} // this round's CPU per call
	ratios := map[key][]float64{}       // each round's CPU per call against bare's in that round
	for round := range o.rounds {
		clear(perRound)
		k := round % len(order)
		for _, v := range append(append([]key(nil), order[k:]...), order[:k]...) {
			c := children[v.server]
			r, err := load(c, v.mode, tokens[v.server], o.warmup, o.duration, o.rate)
			if err != nil {
				return fmt.Errorf("round %d, %s %s: %w", round+1, v.server, v.mode, err)
			}
			fmt.Fprintf(logw, "round %d %-9s %-8s %7.0f calls/s  p50 %-8s p99 %-8s server CPU/call %-8s errors %d\n",
				round+1, v.mode, v.server, r.rate(), r.pct(50), r.pct(99), r.cpuPerCall(), r.errors)
			if results[v] == nil {
				results[v] = &result{}
			}
			results[v].merge(r)
			perRound[v] = r.cpuPerCall()
		}
		for _, m := range o.modes {
			if b := perRound[key{m, "bare"}]; b > 0 {
				for _, s := range servers[1:] {
					ratios[key{m, s}] = append(ratios[key{m, s}], float64(perRound[key{m, s}])/float64(b))
				}
			}
		}
	}

	for _, s := range slices.Backward(servers) {
		if err := children[s].stop(); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	fmt.Fprintf(stdout, "process against process: %d clients, %s x %d rounds per (mode, server) after %s warm-up, %d CPUs, GOMAXPROCS=%d, %s, client and servers share the machine\n\n",
		o.clients, o.duration, o.rounds, o.warmup, runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version())
	if o.rate > 0 {
		fmt.Fprintf(stdout, "offered load: %.0f calls/s across the clients, paced (-rate); at equal load, CPU per call compares the servers' own cost\n\n", o.rate)
	}
	if o.bareWork > 0 {
		fmt.Fprintf(stdout, "calibration: bare burns %s of CPU in each tools/call (-bare-work)\n\n", o.bareWork)
	}
	fmt.Fprintln(stdout, "| mode | server | calls/s | p50 | p99 | server CPU per call | client CPU per call | server switches per call | errors | throughput vs bare | CPU per call vs bare | p99 vs bare |")
	fmt.Fprintln(stdout, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, m := range o.modes {
		b := results[key{m, "bare"}]
		for _, s := range servers {
			r := results[key{m, s}]
			fmt.Fprintf(stdout, "| %s | %s | %.0f | %s | %s | %s | %s | %.2f | %d | %.2f× | %.2f× | %.2f× |\n",
				m, s, r.rate(), r.pct(50), r.pct(99), r.cpuPerCall(), r.clientPerCall(), r.switchesPerCall(), r.errors,
				r.rate()/b.rate(), float64(r.cpuPerCall())/float64(b.cpuPerCall()), float64(r.pct(99))/float64(b.pct(99)))
		}
	}
	if o.rounds > 1 {
		fmt.Fprintln(stdout)
		for _, m := range o.modes {
			for _, s := range servers[1:] {
				rs := ratios[key{m, s}]
				med, lo, hi := spread(rs)
				fmt.Fprintf(stdout, "%s %s: CPU per call vs bare, round by round: median %.2f×, range %.2f–%.2f× over %d rounds\n", m, s, med, lo, hi, len(rs))
			}
		}
	}
	if o.profileDir != "" {
		var paths []string
		for _, s := range servers {
			paths = append(paths, filepath.Join(o.profileDir, s+".pprof"))
		}
		fmt.Fprintf(stdout, "\nprofiles: %s (whole run of each child, warm-up and every mode included)\n", strings.Join(paths, ", "))
	}
	return nil
}

// spread is the median, least and greatest of xs (zeros for none).
func spread(xs []float64) (median, lo, hi float64) {
	if len(xs) == 0 {
		return 0, 0, 0
	}
	s := slices.Sorted(slices.Values(xs))
	n := len(s)
	median = s[n/2]
	if n%2 == 0 {
		median = (s[n/2-1] + s[n/2]) / 2
	}
	return median, s[0], s[n-1]
}

// result is what one or more measured windows got.
type result struct {
	calls, errors int64
	elapsed       time.Duration
	serverCPU     time.Duration
	clientCPU     time.Duration
	switches      int64 // the server's context switches, all its threads
	lat           []time.Duration
}

func (r *result) merge(o *result) {
	r.calls += o.calls
	r.errors += o.errors
	r.elapsed += o.elapsed
	r.serverCPU += o.serverCPU
	r.clientCPU += o.clientCPU
	r.switches += o.switches
	r.lat = append(r.lat, o.lat...)
}

func (r *result) rate() float64 { return float64(r.calls) / r.elapsed.Seconds() }

func (r *result) cpuPerCall() time.Duration {
	if r.calls == 0 {
		return 0
	}
	return (r.serverCPU / time.Duration(r.calls)).Round(100 * time.Nanosecond)
}

func (r *result) clientPerCall() time.Duration {
	if r.calls == 0 {
		return 0
	}
	return (r.clientCPU / time.Duration(r.calls)).Round(100 * time.Nanosecond)
}

// switchesPerCall is the server's context switches per call, voluntary
// (a thread that blocked: waiting in epoll, on a futex) and not.
func (r *result) switchesPerCall() float64 {
	if r.calls == 0 {
		return 0
	}
	return float64(r.switches) / float64(r.calls)
}

func (r *result) pct(p int) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	slices.Sort(r.lat)
	return r.lat[(len(r.lat)-1)*p/100].Round(time.Microsecond)
}

// pacer spaces one client's calls period apart. A client that falls more
// than a period behind its schedule starts a new one from now rather than
// sending the calls it missed in a burst, so the offered load never rises
// above the rate asked for. A zero period does not wait: a closed loop.
type pacer struct {
	period time.Duration
	next   time.Time
	now    func() time.Time
	sleep  func(time.Duration)
}

// newPacer paces client i of n so that the n together offer rate calls per
// second, client i's first call i/n of a period after start. A rate of 0
// (or less) makes a pacer that never waits.
func newPacer(rate float64, n, i int, start time.Time, now func() time.Time, sleep func(time.Duration)) *pacer {
	p := &pacer{now: now, sleep: sleep}
	if rate > 0 && n > 0 {
		p.period = time.Duration(float64(n) / rate * float64(time.Second))
		p.next = start.Add(p.period * time.Duration(i) / time.Duration(n))
	}
	return p
}

// wait returns when the next call is due.
func (p *pacer) wait() {
	if p.period <= 0 {
		return
	}
	now := p.now()
	if d := p.next.Sub(now); d > 0 {
		p.sleep(d)
	} else if -d > p.period {
		p.next = now
	}
	p.next = p.next.Add(p.period)
}

// maxSamples bounds the latency samples kept per client per window.
const maxSamples = 1 << 17

// caller is one client: its token, its session (session mode) and a
// pre-built request body.
type caller struct {
	url, mode, token, session string
	body                      []byte
	buf                       bytes.Buffer
}

func (c *caller) request(body []byte) *http.Request {
	req, _ := http.NewRequest(http.MethodPost, c.url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Authorization", "Bearer "+c.token)
	if c.mode == modeStateless {
		req.Header.Set(mcp.HeaderProtocolVersion, mcp.ProtocolVersion20260728)
		req.Header.Set(mcp.HeaderMethod, "tools/call")
		req.Header.Set(mcp.HeaderName, "whoami")
	} else if c.session != "" {
		req.Header.Set(mcp.HeaderProtocolVersion, mcp.ProtocolVersion20251125)
		req.Header.Set(mcp.HeaderSessionID, c.session)
	}
	return req
}

// do sends body and reads the whole answer into c.buf.
func (c *caller) do(hc *http.Client, body []byte) (*http.Response, error) {
	resp, err := hc.Do(c.request(body))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	c.buf.Reset()
	_, err = c.buf.ReadFrom(io.LimitReader(resp.Body, 1<<20))
	return resp, err
}

// call makes one whoami call and checks its answer.
func (c *caller) call(hc *http.Client) error {
	resp, err := c.do(hc, c.body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || !bytes.Contains(c.buf.Bytes(), []byte(`\"tenant\"`)) {
		return fmt.Errorf("whoami: status %d, body %.300s", resp.StatusCode, c.buf.Bytes())
	}
	return nil
}

// open initializes the caller's session (session mode).
func (c *caller) open(hc *http.Client) error {
	if c.mode != modeSession {
		return nil
	}
	resp, err := c.do(hc, []byte(`{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"`+
		mcp.ProtocolVersion20251125+`","capabilities":{},"clientInfo":{"name":"loadtest","version":"1"}}}`))
	if err != nil {
		return err
	}
	c.session = resp.Header.Get(mcp.HeaderSessionID)
	if resp.StatusCode != http.StatusOK || c.session == "" {
		return fmt.Errorf("initialize: status %d, no session (body %.300s)", resp.StatusCode, c.buf.Bytes())
	}
	resp, err = c.do(hc, []byte(`{"jsonrpc":"2.0","method":"notifications/initialized"}`))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("notifications/initialized: status %d", resp.StatusCode)
	}
	return nil
}

// close ends the caller's session (session mode); the answer is not checked.
func (c *caller) close(hc *http.Client) {
	if c.session == "" {
		return
	}
	req := c.request(nil)
	req.Method = http.MethodDelete
	req.Body = http.NoBody
	if resp, err := hc.Do(req); err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
	}
}

func callBody(mode string, id int) []byte {
	if mode == modeSession {
		return []byte(`{"jsonrpc":"2.0","id":` + strconv.Itoa(id) + `,"method":"tools/call","params":{"name":"whoami","arguments":{}}}`)
	}
	return []byte(`{"jsonrpc":"2.0","id":` + strconv.Itoa(id) + `,"method":"tools/call","params":{"name":"whoami","arguments":{},"_meta":{"` +
		mcp.MetaKeyProtocolVersion + `":"` + mcp.ProtocolVersion20260728 + `","` + mcp.MetaKeyClientInfo + `":{"name":"loadtest","version":"1"},"` +
		mcp.MetaKeyClientCapabilities + `":{}}}}`)
}

// load opens one caller per token against c, warms up, then measures one
// window: calls, latencies, and the child's and this process's CPU time.
// With rate > 0 the callers together offer that many calls per second,
// each on its own schedule, staggered so that they do not send in step.
func load(c *child, mode string, tokens []string, warmup, d time.Duration, rate float64) (*result, error) {
	n := len(tokens)
	hc := &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{MaxIdleConns: n * 2, MaxIdleConnsPerHost: n * 2, MaxConnsPerHost: n * 2},
	}
	defer hc.CloseIdleConnections()
	callers := make([]*caller, n)
	for i, tok := range tokens {
		callers[i] = &caller{url: c.url, mode: mode, token: tok, body: callBody(mode, i+1)}
		if err := callers[i].open(hc); err != nil {
			return nil, err
		}
		defer callers[i].close(hc)
		if err := callers[i].call(hc); err != nil { // a wrong answer fails loudly
			return nil, err
		}
	}

	// phase runs every caller until the deadline; with res set it counts.
	phase := func(d time.Duration, res *result) {
		deadline := time.Now().Add(d)
		var mu sync.Mutex
		var wg sync.WaitGroup
		start := time.Now()
		for i, cl := range callers {
			wg.Go(func() {
				var calls, errs int64
				var lat []time.Duration
				if res != nil {
					lat = make([]time.Duration, 0, 4096)
				}
				p := newPacer(rate, n, i, start, time.Now, time.Sleep)
				for {
					p.wait()
					t0 := time.Now()
					if !t0.Before(deadline) {
						break
					}
					if err := cl.call(hc); err != nil {
						errs++
						continue
					}
					calls++
					if res != nil && len(lat) < maxSamples {
						lat = append(lat, time.Since(t0))
					}
				}
				if res != nil {
					mu.Lock()
					res.calls += calls
					res.errors += errs
					res.lat = append(res.lat, lat...)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
	}
	phase(warmup, nil)

	res := &result{}
	cpu0, err := processCPU(c.cmd.Process.Pid)
	if err != nil {
		return nil, err
	}
	sw0, err := processSwitches(c.cmd.Process.Pid)
	if err != nil {
		return nil, err
	}
	self0, start := selfCPU(), time.Now()
	phase(d, res)
	res.elapsed = time.Since(start)
	res.clientCPU = selfCPU() - self0
	cpu1, err := processCPU(c.cmd.Process.Pid)
	if err != nil {
		return nil, err
	}
	res.serverCPU = cpu1 - cpu0
	sw1, err := processSwitches(c.cmd.Process.Pid)
	if err != nil {
		return nil, err
	}
	res.switches = sw1 - sw0
	if res.calls == 0 {
		return nil, errors.New("no successful call")
	}
	return res, nil
}
