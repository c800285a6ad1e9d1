// Command loadtest compares, in one run on one machine, the requests/s and
// latency of a trivial MCP tool call served by:
//
//   - bare: mcp-go's Streamable HTTP server, no auth;
//   - gosdk-jwt: the same server behind the official Go SDK's
//     auth.RequireBearerToken with a golang-jwt verifier that checks the
//     RS256 signature on every request (what servers write today);
//   - mcpguard: the same server behind mcpguard's full prod stack (auth,
//     tenancy, authz, rate limits set high enough not to trigger, audit to
//     a discarding JSON sink).
//
// Every variant gets the same valid RS256 token. Run from the repository:
//
//	cd loadtest && go run . -duration 5s -concurrency 32
//
// It also runs a JWKS flood: requests with random unknown kids against the
// mcpguard stack, and reports how many times the JWKS was fetched.
package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	sdkauth "github.com/modelcontextprotocol/go-sdk/auth"
)

func main() {
	duration := flag.Duration("duration", 5*time.Second, "measured time per variant per round")
	warmup := flag.Duration("warmup", time.Second, "unmeasured warm-up per variant per round")
	conc := flag.Int("concurrency", 32, "concurrent client workers")
	rounds := flag.Int("rounds", 2, "rounds; variants are interleaved within each round")
	flood := flag.Int("flood", 100000, "requests in the unknown-kid JWKS flood (0 to skip)")
	only := flag.String("only", "", "measure only this variant (bare, gosdk-jwt, mcpguard)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the measured runs to this file")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "loadtest:", err)
			os.Exit(1)
		}
		defer f.Close()
		profile = f
	}
	onlyVariant = *only
	if err := run(*duration, *warmup, *conc, *rounds, *flood); err != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(1)
	}
}

// idp is a minimal key holder: one RSA key published as a JWKS that counts
// its fetches.
type idp struct {
	key     *rsa.PrivateKey
	kid     string
	issuer  string
	fetches atomic.Int64
}

func (p *idp) jwks(w http.ResponseWriter, _ *http.Request) {
	p.fetches.Add(1)
	pub := p.key.PublicKey
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"keys": []any{map[string]any{
		"kty": "RSA", "use": "sig", "alg": "RS256", "kid": p.kid,
		"n": base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
		"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
	}}})
}

func (p *idp) mint(kid, audience string) string {
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{
		"iss": p.issuer, "sub": "load-user", "aud": audience, "client_id": "loadtest",
		"exp": time.Now().Add(time.Hour).Unix(), "iat": time.Now().Unix(),
		"scope": "load:call", "tenant_id": "t1",
	})
	tok.Header["kid"] = kid
	s, err := tok.SignedString(p.key)
	if err != nil {
		panic(err)
	}
	return s
}

func newMCPServer(opts ...server.ServerOption) *server.MCPServer {
	s := server.NewMCPServer("load", "1.0", opts...)
	s.AddTool(mcp.NewTool("noop", mcp.WithDescription("does nothing"), mcp.WithReadOnlyHintAnnotation(true)),
		func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return mcp.NewToolResultText("ok"), nil
		})
	return s
}

// serve starts h on a fresh loopback listener and returns its base URL.
func serve(h http.Handler) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), func() { _ = srv.Close() }, nil
}

var (
	profile     *os.File // CPU profile of the measured runs, when set
	onlyVariant string   // measure only this variant, when set
)

type variant struct {
	name  string
	url   string
	token string
}

func run(duration, warmup time.Duration, conc, rounds, flood int) error {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	p := &idp{key: key, kid: "k1"}
	mux := http.NewServeMux()
	mux.HandleFunc("/jwks", p.jwks)
	idpURL, stopIdP, err := serve(mux)
	if err != nil {
		return err
	}
	defer stopIdP()
	p.issuer = idpURL

	var variants []variant

	// bare mcp-go.
	bareURL, stop, err := serve(server.NewStreamableHTTPServer(newMCPServer()))
	if err != nil {
		return err
	}
	defer stop()
	variants = append(variants, variant{name: "bare", url: bareURL + "/mcp"})

	// go-sdk RequireBearerToken + golang-jwt, verifying every request.
	sdkLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	sdkResource := "http://" + sdkLn.Addr().String() + "/mcp"
	_ = sdkLn.Close()
	verifier := func(_ context.Context, raw string, _ *http.Request) (*sdkauth.TokenInfo, error) {
		claims := jwt.MapClaims{}
		_, err := jwt.ParseWithClaims(raw, claims, func(*jwt.Token) (any, error) { return &key.PublicKey, nil },
			jwt.WithValidMethods([]string{"RS256"}), jwt.WithIssuer(p.issuer), jwt.WithAudience(sdkResource), jwt.WithExpirationRequired())
		if err != nil {
			return nil, fmt.Errorf("%w: %v", sdkauth.ErrInvalidToken, err)
		}
		exp, _ := claims.GetExpirationTime()
		scope, _ := claims["scope"].(string)
		return &sdkauth.TokenInfo{Scopes: strings.Fields(scope), Expiration: exp.Time}, nil
	}
	sdkHandler := sdkauth.RequireBearerToken(verifier, nil)(server.NewStreamableHTTPServer(newMCPServer()))
	sdkURL, stop, err := serveAt(sdkLn.Addr().String(), sdkHandler)
	if err != nil {
		return err
	}
	defer stop()
	variants = append(variants, variant{name: "gosdk-jwt", url: sdkURL + "/mcp", token: p.mint(p.kid, sdkResource)})

	// mcpguard full stack.
	mg, err := newMCPGuardVariant(p)
	if err != nil {
		return err
	}
	defer mg.stop()
	variants = append(variants, mg.variant)
	return measure(variants, p, mg, duration, warmup, conc, rounds, flood)
}

func measure(variants []variant, p *idp, mg *mcpguardVariant, duration, warmup time.Duration, conc, rounds, flood int) error {
	results := map[string]*result{}
	if onlyVariant != "" {
		kept := variants[:0]
		for _, v := range variants {
			if v.name == onlyVariant || v.name == "bare" {
				kept = append(kept, v)
			}
		}
		variants = kept
	}
	for round := 0; round < rounds; round++ {
		// Rotate the order each round, so no variant always runs right
		// after another (and its garbage) or first on a cold machine.
		order := append(append([]variant(nil), variants[round%len(variants):]...), variants[:round%len(variants)]...)
		for _, v := range order {
			if _, err := load(v, conc, warmup); err != nil { // warm-up
				return fmt.Errorf("%s warm-up: %w", v.name, err)
			}
			if profile != nil && v.name != "bare" {
				_ = pprof.StartCPUProfile(profile)
			}
			r, err := load(v, conc, duration)
			if profile != nil && v.name != "bare" {
				pprof.StopCPUProfile()
				profile = nil // one measured run is enough
			}
			if err != nil {
				return fmt.Errorf("%s: %w", v.name, err)
			}
			if results[v.name] == nil {
				results[v.name] = &result{}
			}
			results[v.name].merge(r)
		}
	}
	fmt.Printf("load: %d workers, %s x %d rounds per variant, GOMAXPROCS=%s, one machine (client and server share the cores)\n",
		conc, duration, rounds, strconv.Itoa(runtime.GOMAXPROCS(0)))
	fmt.Printf("%-10s %10s %10s %10s %8s %8s\n", "variant", "req/s", "p50", "p99", "errors", "vs bare")
	base := results["bare"].rps()
	for _, v := range variants {
		r := results[v.name]
		fmt.Printf("%-10s %10.0f %10s %10s %8d %7.2fx\n", v.name, r.rps(), r.pct(50), r.pct(99), r.errors, r.rps()/base)
	}

	if flood > 0 {
		before := p.fetches.Load()
		start := time.Now()
		n, rejected, err := unknownKidFlood(mg.variant.url, p, flood, conc)
		if err != nil {
			return fmt.Errorf("flood: %w", err)
		}
		fmt.Printf("jwks flood: %d requests with random unknown kids in %s, %d rejected with 401, JWKS fetched %d times (refresh window %s)\n",
			n, time.Since(start).Round(time.Millisecond), rejected, p.fetches.Load()-before, mg.refreshWindow)
	}
	return nil
}

func serveAt(addr string, h http.Handler) (string, func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), func() { _ = srv.Close() }, nil
}

type result struct {
	n       int64
	errors  int64
	elapsed time.Duration
	lat     []time.Duration
}

func (r *result) merge(o *result) {
	r.n += o.n
	r.errors += o.errors
	r.elapsed += o.elapsed
	r.lat = append(r.lat, o.lat...)
}

func (r *result) rps() float64 { return float64(r.n) / r.elapsed.Seconds() }

func (r *result) pct(p int) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	slices.Sort(r.lat)
	return r.lat[(len(r.lat)-1)*p/100].Round(time.Microsecond)
}

// maxSamples bounds the latency samples kept per run.
const maxSamples = 1 << 21

func newHTTPClient(conc int) *http.Client {
	return &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{MaxIdleConns: conc * 2, MaxIdleConnsPerHost: conc * 2, MaxConnsPerHost: conc * 2},
	}
}

// callBody is a 2026-07-28 stateless tools/call: no session is needed.
func callBody(id int) []byte {
	return []byte(`{"jsonrpc":"2.0","id":` + strconv.Itoa(id) + `,"method":"tools/call","params":{"name":"noop","arguments":{},"_meta":{"` +
		mcp.MetaKeyProtocolVersion + `":"` + mcp.ProtocolVersion20260728 + `","` + mcp.MetaKeyClientInfo + `":{"name":"loadtest","version":"1"},"` +
		mcp.MetaKeyClientCapabilities + `":{}}}}`)
}

func newCall(url, token string, id int) *http.Request {
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(string(callBody(id))))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set(mcp.HeaderProtocolVersion, mcp.ProtocolVersion20260728)
	req.Header.Set(mcp.HeaderMethod, "tools/call")
	req.Header.Set(mcp.HeaderName, "noop")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return req
}

// load runs conc workers calling the tool for d and checks every answer.
func load(v variant, conc int, d time.Duration) (*result, error) {
	c := newHTTPClient(conc)
	defer c.CloseIdleConnections()
	// One checked call first: a variant that answers wrongly fails loudly.
	if err := checkedCall(c, v, 0); err != nil {
		return nil, err
	}
	var (
		mu  sync.Mutex
		res = &result{}
		wg  sync.WaitGroup
	)
	deadline := time.Now().Add(d)
	start := time.Now()
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			var n, errs int64
			lat := make([]time.Duration, 0, 4096)
			for i := 0; time.Now().Before(deadline); i++ {
				t0 := time.Now()
				resp, err := c.Do(newCall(v.url, v.token, w*1_000_000+i))
				if err != nil {
					errs++
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					errs++
					continue
				}
				n++
				if len(lat) < maxSamples/conc {
					lat = append(lat, time.Since(t0))
				}
			}
			mu.Lock()
			res.n += n
			res.errors += errs
			res.lat = append(res.lat, lat...)
			mu.Unlock()
		}(w)
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	return res, nil
}

func checkedCall(c *http.Client, v variant, id int) error {
	resp, err := c.Do(newCall(v.url, v.token, id))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"text":"ok"`) {
		return fmt.Errorf("check call: status %d, body %.300s", resp.StatusCode, body)
	}
	return nil
}

// unknownKidFlood sends n requests whose tokens name random unknown kids
// (signed with the real key) and counts the 401s.
func unknownKidFlood(url string, p *idp, n, conc int) (sent, rejected int64, err error) {
	c := newHTTPClient(conc)
	defer c.CloseIdleConnections()
	aud := strings.TrimSuffix(url, "")
	var next atomic.Int64
	var wg sync.WaitGroup
	var rej, total atomic.Int64
	tokens := make([]string, 512) // signing is slow: reuse a pool of distinct kids
	for i := range tokens {
		var b [9]byte
		_, _ = rand.Read(b[:])
		tokens[i] = p.mint("unknown-"+base64.RawURLEncoding.EncodeToString(b[:]), aud)
	}
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(n) {
					return
				}
				resp, err := c.Do(newCall(url, tokens[int(i)%len(tokens)], int(i)))
				if err != nil {
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
				total.Add(1)
				if resp.StatusCode == http.StatusUnauthorized {
					rej.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return total.Load(), rej.Load(), nil
}
