// Command prodmode serves the notes tools over MCP Streamable HTTP behind
// the whole mcpguard stack, configured from the environment:
//
//	MCPGUARD_ADDR          listen address (default 127.0.0.1:8080)
//	MCPGUARD_ISSUER        the authorization server's issuer URL (required)
//	MCPGUARD_RESOURCE      this server's URL, the token audience (default http://<addr>/mcp;
//	                       required, and https, when MCPGUARD_ADDR is not loopback)
//	MCPGUARD_AUDIENCE      other accepted audiences, comma-separated (optional)
//	MCPGUARD_JWKS_URL      the issuer's JWK Set (default: discovered from the issuer)
//	MCPGUARD_TENANT_CLAIM  the claim naming the caller's tenant (default tenant_id)
//	MCPGUARD_RATE_LIMIT    requests per second per caller, burst twice that (default 20)
//	MCPGUARD_TRUSTED_PROXIES  reverse proxies whose X-Forwarded-For names the client, comma-separated
//	                       IPs or prefixes (default none: the peer is the client)
//	MCPGUARD_CPUPROFILE    write a CPU profile of the whole run to this file on shutdown (optional)
//	MCPGUARD_METRICS_ADDR  serve OpenTelemetry metrics at http://<addr>/metrics in Prometheus text format (optional, off by default)
//	MCPGUARD_OTLP_ENDPOINT send traces over OTLP/HTTP to this URL, e.g. http://127.0.0.1:4318/v1/traces (optional, off by default;
//	                       no user info: the collector's credentials go in OTEL_EXPORTER_OTLP_HEADERS)
//	MCPGUARD_DPOP          DPoP-bound tokens (RFC 9449): off (default), allowed or required
//	MCPGUARD_REVOCATIONS_FILE  revoke tokens before they expire: a file of JSON lines, see below (optional, off by default)
//	MCPGUARD_REDIS_URL     redis://[user:password@]host:port[/db] (or rediss://): share every store among replicas (optional)
//	MCPGUARD_SEAL_KEY      32 random bytes in base64, the same on every replica (required with MCPGUARD_REDIS_URL)
//	MCPGUARD_DOWNSTREAM_URL a downstream API the downstream_get tool calls as the user (optional, off by default)
//	MCPGUARD_DOWNSTREAM_AUDIENCE the audience its tokens are exchanged for (default MCPGUARD_DOWNSTREAM_URL)
//	MCPGUARD_CLIENT_ID, MCPGUARD_CLIENT_SECRET this server's client at the issuer, for RFC 8693 token exchange (required with MCPGUARD_DOWNSTREAM_URL)
//
// With MCPGUARD_DOWNSTREAM_URL the tool downstream_get (read-only:
// notes:read) exchanges the caller's token for the downstream audience at
// the issuer's token endpoint (discovered; client_secret_basic), GETs the
// URL with the exchanged token (never the caller's) and answers
// {"status","body"} (body cut at 4 KiB). Exchanged tokens are cached until
// shortly before they expire; with MCPGUARD_REDIS_URL the cache is shared
// (sealed in Redis), so replicas make one exchange per user and audience.
//
// With MCPGUARD_REDIS_URL, the state that outlives a request moves to Redis
// (package redisstore), so replicas behind a load balancer agree: the rate
// limits, terminated sessions, live-session counts, DPoP proof replay and
// the token revocation list and downstream_get's exchanged tokens.
// MCPGUARD_SEAL_KEY keys the session binding (replicas sharing it accept
// each other's sessions; it may be set without Redis for that alone),
// hashes every identifier into a Redis key and seals every cached value: no
// token, secret or subject is stored in Redis in clear. Without the key the
// server refuses to start; a Redis that does not answer at start stops it
// too. A session deleted on one replica is refused by the others at once
// (redisstore's Immediate terminated sessions: one Redis lookup per session
// request). Once running, a Redis outage is handled per store: initialize,
// DPoP proofs and requests carrying a session ID answer 503 (fail closed;
// what a replica knows as ended stays 404); the
// rate limits are counted in each replica's memory meanwhile (degrade),
// so stateless calls go on; the revocation list fails closed once the
// replica's copy is a second old (503 for authenticated requests), or with
// MCPGUARD_REVOCATION_ON_OUTAGE=degrade serves from that copy (what it
// refuses stays refused; a revocation cannot be made meanwhile, the file's
// line is retried and logged); every store
// failure and recovery is audited as
// store_failure (reason "<store>:<policy>" or "<store>:recovered"); service
// resumes by itself when Redis is back. Run Redis
// with persistence (appendonly) if ended sessions must stay ended across
// a Redis restart.
//
// Tokens are JWT access tokens for MCPGUARD_RESOURCE, with scopes in
// "scope" or "scp" and the tenant in MCPGUARD_TENANT_CLAIM (a token
// without one is refused). whoami needs only a valid token; notes_read and
// notes_list need notes:read; notes_write needs notes:write. Notes are kept
// per tenant. notes_summary (notes:read, read-only, may run as a task)
// answers {"tenant","count","keys"} for the caller's tenant. The resource
// template notes://{+key} reads the caller's tenant's note at key (keys may
// contain '/'; notes:read, and notes:admin under notes://private/).
// Resource subscriptions are on: a subscriber — a 2025-11-25 session that
// sent resources/subscribe, or a 2026-07-28 subscriptions/listen stream
// naming the note — is sent notifications/resources/updated when the note
// changes, if the note is of the subscriber's tenant and the subscriber may
// read it. The prompt notes_digest {key} (notes:read, and notes:admin for a
// key under private/, as for the note's URI) completes key from the
// caller's tenant's keys it may read; notes_read of a key under private/
// needs notes:admin too. Task capabilities (list, cancel, tool-call tasks) are on. The
// With MCPGUARD_DPOP=allowed a token bound to a client key ("cnf.jkt") is
// accepted with the DPoP scheme and a valid DPoP proof for each request,
// beside ordinary bearer tokens; required accepts bound tokens only, and the
// protected resource metadata says so. A bound token is never accepted as a
// bearer token. The issuer's keys are fetched at start: a wrong or
// unreachable issuer stops the server before it listens, with the variable
// named. Audit events go to stderr as JSON lines (so do the few log lines);
// when the server is ready it prints "listening on <resource URL>" to
// stdout. A listener on loopback refuses requests whose Host is not
// loopback (DNS rebinding protection): behind a reverse proxy, listen on
// the proxy-facing address or have the proxy pass a loopback Host.
//
// MCPGUARD_REVOCATIONS_FILE is the operator's revocation hook (there is no
// HTTP admin endpoint; the file's permissions are its authentication). It
// must exist at start (empty is fine) and holds one revocation per line,
// '#' comments and blank lines skipped:
//
//	{"iss":"https://idp.example.com","jti":"<token id>"}
//	{"iss":"https://idp.example.com","sid":"<session or grant id>"}
//	{"iss":"https://idp.example.com","sub":"<subject>","iat_before":"2026-12-03T11:00:00Z"}
//
// revoking one token, every token of a session, or every token of a subject
// issued before the time. Append lines: the file is re-read within 250 ms
// of a change (or at once on SIGHUP), each line is applied once, and
// removing a line does not un-revoke. A revoked token is refused with 401
// invalid_token, "the access token has been revoked", even when already
// verified, and audited as auth_failure with reason "revoked"; a malformed
// line is logged with its number and skipped; a line that could not be
// applied (Redis down, list full) is logged and retried every second.
// Revocations are kept for 24 h (plus 5 min of leeway), so with the file
// set a token living longer than 24 h is refused. With MCPGUARD_REDIS_URL the list is shared (and on,
// with the same 24 h rule, even without a file): a line applied by the
// replica whose file it is holds on every replica within one second.
//
//	MCPGUARD_ISSUER=https://idp.example.com go run ./examples/prodmode
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode"

	"github.com/mark3labs/mcp-go/server"
	"github.com/redis/go-redis/v9"

	"github.com/mcpguard/mcpguard/audit"
	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/authz"
	"github.com/mcpguard/mcpguard/examples/internal/notes"
	"github.com/mcpguard/mcpguard/internal/loopback"
	"github.com/mcpguard/mcpguard/internal/redact"
	"github.com/mcpguard/mcpguard/tenancy"
	"github.com/mcpguard/mcpguard/transport"
	"github.com/mcpguard/mcpguard/transport/ratelimit"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "prodmode:", err)
		os.Exit(1)
	}
}

// config is the validated environment.
type config struct {
	addr        string
	issuer      string
	resource    string // empty: http://<listen address>/mcp
	audiences   []string
	jwksURL     string
	tenantClaim string
	rate        int
	// metricsAddr and otlpEndpoint turn on telemetry; empty: off.
	metricsAddr  string
	otlpEndpoint string
	dpop         auth.DPoPMode
	// revocationsFile is MCPGUARD_REVOCATIONS_FILE; empty: no revoker.
	revocationsFile string
	// redis is set by MCPGUARD_REDIS_URL; sealKey by MCPGUARD_SEAL_KEY.
	redis   *redis.Options
	sealKey []byte
	// revocationDegrade is MCPGUARD_REVOCATION_ON_OUTAGE=degrade.
	revocationDegrade bool
	// downstream is set by MCPGUARD_DOWNSTREAM_URL.
	downstream downstreamConfig
	// trustedProxies is MCPGUARD_TRUSTED_PROXIES: the peers whose
	// X-Forwarded-For names the client, for the failed-login budget.
	trustedProxies []netip.Prefix
}

// run serves until ctx is done. A configuration mistake is returned before
// anything listens; the error names the variable to fix.
func run(ctx context.Context, getenv func(string) string, stdout, stderr io.Writer) (err error) {
	cfg, err := configFromEnv(getenv)
	if err != nil {
		return err
	}
	if path := strings.TrimSpace(getenv("MCPGUARD_CPUPROFILE")); path != "" {
		stopProfile, err := startCPUProfile(path)
		if err != nil {
			return fmt.Errorf("MCPGUARD_CPUPROFILE: %w", err)
		}
		defer func() {
			if perr := stopProfile(); perr != nil && err == nil {
				err = fmt.Errorf("MCPGUARD_CPUPROFILE: %w", perr)
			}
		}()
	}
	// Every log line on stderr is JSON, like the audit events beside it.
	logger := slog.New(slog.NewJSONHandler(stderr, nil))

	// With port 0 the resource URL is known only once the port is.
	var ln net.Listener
	if cfg.resource == "" {
		if ln, err = net.Listen("tcp", cfg.addr); err != nil {
			return fmt.Errorf("MCPGUARD_ADDR: %w", err)
		}
		defer ln.Close()
		host, _, _ := net.SplitHostPort(cfg.addr)
		_, port, _ := net.SplitHostPort(ln.Addr().String())
		cfg.resource = "http://" + net.JoinHostPort(host, port) + "/mcp"
	}

	h, closeStack, err := newHandler(ctx, cfg, stderr, logger)
	if err != nil {
		return err
	}
	defer closeStack()

	if ln == nil {
		if ln, err = net.Listen("tcp", cfg.addr); err != nil {
			return fmt.Errorf("MCPGUARD_ADDR: %w", err)
		}
		defer ln.Close()
	}
	hs := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	fmt.Fprintf(stdout, "listening on %s\n", cfg.resource)

	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(shutdown); err != nil {
		_ = hs.Close() // open SSE streams do not end by themselves
	}
	return nil
}

// startCPUProfile profiles the process into a new file at path; the
// returned function stops the profile and flushes it (on shutdown, after
// the server has stopped serving).
func startCPUProfile(path string) (func() error, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return nil, err
	}
	return func() error {
		pprof.StopCPUProfile()
		return f.Close()
	}, nil
}

// newHandler is the mcpguard wiring: a JWT validator for this resource,
// tenants from a claim, a policy keyed on tool annotations, rate limits
// before and after authentication, and audit to stderr — composed by
// transport.New around the mcp-go server.
func newHandler(ctx context.Context, cfg config, stderr io.Writer, logger *slog.Logger) (_ http.Handler, _ func(), err error) {
	var closers []func() error
	closeAll := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			_ = closers[i]()
		}
	}
	defer func() {
		if err != nil {
			closeAll()
		}
	}()

	// Audit through a bounded queue: a stderr nobody reads slows nothing;
	// events that do not fit are counted and reported, never silently lost.
	sink, err := audit.NewJSONSink(stderr)
	if err != nil {
		return nil, nil, err
	}
	rec, err := audit.New(audit.Config{Sink: sink, Mode: audit.Async, OnFull: audit.DropAndCount})
	if err != nil {
		return nil, nil, err
	}
	closers = append(closers, rec.Close)

	// MCPGUARD_REDIS_URL: every store shared among replicas lives in Redis.
	var sh *shared
	if cfg.redis != nil {
		if sh, err = newShared(ctx, cfg, rec); err != nil {
			return nil, nil, err
		}
		closers = append(closers, sh.close)
	}
	rev, closeRevoker, err := newRevoker(ctx, cfg, sh, logger)
	if err != nil {
		return nil, nil, err
	}
	closers = append(closers, closeRevoker)
	dpopCfg := auth.DPoPConfig{Mode: cfg.dpop} // htu origin: the resource
	if sh != nil {
		dpopCfg.Replay = sh.replay
	}

	validator, err := auth.NewJWTValidator(auth.JWTConfig{
		Issuer:          cfg.issuer,
		Audience:        cfg.resource,
		AudienceAliases: cfg.audiences,
		JWKSURL:         cfg.jwksURL, // empty: discovered from the issuer
		Logger:          logger,
		DPoP:            dpopCfg,
		Revoker:         rev, // nil (no revoker) without MCPGUARD_REVOCATIONS_FILE or MCPGUARD_REDIS_URL
	})
	if err != nil {
		return nil, nil, fmt.Errorf("MCPGUARD_ISSUER, MCPGUARD_AUDIENCE or MCPGUARD_JWKS_URL: %w", err)
	}
	closers = append(closers, validator.Close)
	// Fail now rather than on the first request if the keys cannot be had.
	refresh, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := validator.Refresh(refresh); err != nil {
		if cfg.jwksURL != "" {
			return nil, nil, fmt.Errorf("MCPGUARD_JWKS_URL: cannot fetch the signing keys: %w", err)
		}
		return nil, nil, fmt.Errorf("MCPGUARD_ISSUER: cannot discover the signing keys: %w", err)
	}
	tenants, err := tenancy.New(tenancy.Config{Claim: cfg.tenantClaim})
	if err != nil {
		return nil, nil, fmt.Errorf("MCPGUARD_TENANT_CLAIM: %w", err)
	}
	resourceRules, promptRules := notesRules()
	policy, err := authz.New(authz.Config{
		ReadScope:     notes.ScopeRead,  // tools annotated read-only
		WriteScope:    notes.ScopeWrite, // every other tool
		ToolRules:     map[string]authz.Rule{"whoami": {Authenticated: true}},
		ResourceRules: resourceRules, // notes://… notes:read, notes://private/… notes:admin
		PromptRules:   promptRules,
	})
	if err != nil {
		return nil, nil, err
	}

	// One budget per caller: its tenant and subject once authenticated;
	// its address while it fails to authenticate (only failures are
	// charged, so users sharing an address keep their own budgets).
	var limiter ratelimit.Limiter
	if sh != nil {
		limiter = sh.limiter
	} else if limiter, err = ratelimit.NewMemory(ratelimit.MemoryConfig{}); err != nil {
		return nil, nil, err
	}
	perCaller := ratelimit.Limit{Events: cfg.rate, Period: time.Second, Burst: 2 * cfg.rate}
	byAddress, err := ratelimit.NewRequestLimit(ratelimit.RequestLimitConfig{
		Limiter: limiter, Limit: perCaller, KeyBy: ratelimit.Address, Namespace: "unauth",
		TrustedProxies: cfg.trustedProxies,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("MCPGUARD_RATE_LIMIT: %w", err)
	}
	byCaller, err := ratelimit.NewRequestLimit(ratelimit.RequestLimitConfig{Limiter: limiter, Limit: perCaller, KeyBy: ratelimit.Tenant | ratelimit.Subject})
	if err != nil {
		return nil, nil, fmt.Errorf("MCPGUARD_RATE_LIMIT: %w", err)
	}

	obs, err := newObservability(ctx, cfg, logger)
	if err != nil {
		return nil, nil, err
	}
	closers = append(closers, obs.close)

	tcfg := transport.Config{
		MeterProvider:        obs.meters,  // nil unless MCPGUARD_METRICS_ADDR
		TracerProvider:       obs.tracers, // nil unless MCPGUARD_OTLP_ENDPOINT
		Resource:             cfg.resource,
		AuthorizationServers: []string{cfg.issuer},
		ResourceName:         "mcpguard notes example",
		Validator:            validator,
		// The scope to ask for first, sent with every 401 (MCP scope
		// selection); notes:write comes later through step-up.
		Auth:                     auth.MiddlewareConfig{ChallengeScope: []string{"notes:read"}},
		Policy:                   policy,
		Tenancy:                  tenants,
		UnauthenticatedRateLimit: byAddress,
		RateLimit:                byCaller,
		Audit:                    rec,
		HTTPOptions: []server.StreamableHTTPOption{
			server.WithSessionIdleTTL(15 * time.Minute), // sessions never DELETEd
			server.WithStreamableHTTPLogger(logger),
		},
		Logger: logger,
	}
	if cfg.sealKey != nil {
		// Replicas sharing MCPGUARD_SEAL_KEY accept each other's sessions.
		tcfg.SessionKey = sessionKey(cfg.sealKey)
	}
	if sh != nil {
		tcfg.Sessions = transport.SessionConfig{Terminated: sh.terminated, Counts: sh.counts}
	}
	guard, err := transport.New(tcfg)
	if err != nil {
		return nil, nil, fmt.Errorf("MCPGUARD_RESOURCE: %w", err)
	}
	store := notes.NewStore(notes.Limits{})
	subs, err := newSubscriptions(policy)
	if err != nil {
		return nil, nil, err
	}
	opts := append([]server.ServerOption{
		server.WithTaskCapabilities(true, true, true),
		server.WithResourceCapabilities(true, false),
		server.WithPromptCompletionProvider(completions{store, policy}),
		server.WithCompletions(),
		server.WithToolHandlerMiddleware(privateReads(policy)),
	}, guard.ServerOptions()...)
	srv := server.NewMCPServer("notes", "1.0.0", append(opts, subs.ServerOptions()...)...)
	store.OnChange(notifyChanged(subs))
	notes.AddTools(srv, store)
	if cfg.downstream.url != "" {
		if err := addDownstream(srv, cfg, rec, sh, guard.Telemetry()); err != nil {
			return nil, nil, err
		}
	}
	addNotesExtras(srv, store, policy)
	return guard.Handler(srv), closeAll, nil
}

// configFromEnv reads and checks the environment. Every error names the
// variable.
func configFromEnv(getenv func(string) string) (config, error) {
	env := func(name, def string) string {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			return v
		}
		return def
	}
	cfg := config{
		addr:         env("MCPGUARD_ADDR", "127.0.0.1:8080"),
		issuer:       env("MCPGUARD_ISSUER", ""),
		resource:     env("MCPGUARD_RESOURCE", ""),
		jwksURL:      env("MCPGUARD_JWKS_URL", ""),
		tenantClaim:  env("MCPGUARD_TENANT_CLAIM", tenancy.ClaimTenantID),
		metricsAddr:  env("MCPGUARD_METRICS_ADDR", ""),
		otlpEndpoint: env("MCPGUARD_OTLP_ENDPOINT", ""),

		revocationsFile: env("MCPGUARD_REVOCATIONS_FILE", ""),
	}
	if cfg.metricsAddr != "" {
		if _, _, err := net.SplitHostPort(cfg.metricsAddr); err != nil {
			return config{}, fmt.Errorf("MCPGUARD_METRICS_ADDR %q is not host:port: %v", cfg.metricsAddr, err)
		}
	}
	if cfg.otlpEndpoint != "" {
		u, err := url.Parse(cfg.otlpEndpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return config{}, fmt.Errorf("MCPGUARD_OTLP_ENDPOINT %q: an http(s) URL is required, e.g. http://127.0.0.1:4318/v1/traces", shownURL(cfg.otlpEndpoint))
		}
		if u.User != nil {
			// The exporter would drop it (and a failing export might log
			// the URL): credentials for the collector go in a header.
			return config{}, fmt.Errorf("MCPGUARD_OTLP_ENDPOINT %q: must not carry user info; give the collector's credentials in OTEL_EXPORTER_OTLP_HEADERS", shownURL(cfg.otlpEndpoint))
		}
	}

	host, port, err := net.SplitHostPort(cfg.addr)
	if err != nil {
		return config{}, fmt.Errorf("MCPGUARD_ADDR %q is not host:port: %v", cfg.addr, err)
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || (n == 0 && port != "0") {
		return config{}, fmt.Errorf("MCPGUARD_ADDR %q: the port must be a number from 0 to 65535", cfg.addr)
	}
	if cfg.resource == "" {
		if host == "" || !loopback.Host(host) {
			return config{}, fmt.Errorf("MCPGUARD_RESOURCE is required when MCPGUARD_ADDR (%q) is not a loopback address: set it to the https URL clients reach this server at, e.g. https://mcp.example.com/mcp", cfg.addr)
		}
		if port != "0" {
			cfg.resource = "http://" + net.JoinHostPort(host, port) + "/mcp"
		}
	} else if err := auth.CheckResource(cfg.resource); err != nil {
		return config{}, fmt.Errorf("MCPGUARD_RESOURCE: %w", err)
	} else if (host == "" || !loopback.Host(host)) && !strings.HasPrefix(strings.ToLower(cfg.resource), "https://") {
		// Listening beyond loopback, clients reach the server through a
		// name of its own: a loopback http resource would be an audience
		// and a metadata URL no client there can use.
		return config{}, fmt.Errorf("MCPGUARD_RESOURCE %q: must be https when MCPGUARD_ADDR (%q) is not a loopback address: set it to the https URL clients reach this server at, e.g. https://mcp.example.com/mcp", shownURL(cfg.resource), cfg.addr)
	}

	if cfg.issuer == "" {
		return config{}, errors.New("MCPGUARD_ISSUER is required: the issuer URL of the authorization server whose tokens this server accepts")
	}
	if err := checkURL(cfg.issuer, cfg.jwksURL == ""); err != nil {
		if cfg.jwksURL == "" {
			return config{}, fmt.Errorf("MCPGUARD_ISSUER %q: %v (its signing keys are discovered from it; or set MCPGUARD_JWKS_URL)", shownURL(cfg.issuer), err)
		}
		return config{}, fmt.Errorf("MCPGUARD_ISSUER %q: %v", shownURL(cfg.issuer), err)
	}
	if cfg.jwksURL != "" {
		if err := checkURL(cfg.jwksURL, true); err != nil {
			return config{}, fmt.Errorf("MCPGUARD_JWKS_URL %q: %v", shownURL(cfg.jwksURL), err)
		}
	}

	for _, v := range strings.Split(getenv("MCPGUARD_TRUSTED_PROXIES"), ",") {
		v = strings.TrimSpace(v)
		if v == "" {
			continue
		}
		p, err := netip.ParsePrefix(v)
		if err != nil {
			a, aerr := netip.ParseAddr(v)
			if aerr != nil || a.Zone() != "" {
				return config{}, fmt.Errorf("MCPGUARD_TRUSTED_PROXIES: %q is not an IP address or prefix (comma-separated, e.g. 10.0.0.0/8,192.0.2.7)", v)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		cfg.trustedProxies = append(cfg.trustedProxies, p.Masked())
	}
	for _, a := range strings.Split(getenv("MCPGUARD_AUDIENCE"), ",") {
		a = strings.TrimSpace(a)
		if a == "" {
			continue
		}
		if strings.ContainsFunc(a, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) }) {
			return config{}, fmt.Errorf("MCPGUARD_AUDIENCE: %q is not an audience (comma-separated identifiers, no spaces)", a)
		}
		if strings.Contains(a, "*") {
			// Audiences are compared exactly: "*" would not widen the
			// check, only accept tokens whose aud is that literal string.
			return config{}, fmt.Errorf("MCPGUARD_AUDIENCE: %q: wildcards are not audiences; list each identifier this server is known by", a)
		}
		cfg.audiences = append(cfg.audiences, a)
	}

	if _, err := tenancy.New(tenancy.Config{Claim: cfg.tenantClaim}); err != nil {
		return config{}, fmt.Errorf("MCPGUARD_TENANT_CLAIM %q: %w", cfg.tenantClaim, err)
	}

	switch d := env("MCPGUARD_DPOP", "off"); strings.ToLower(d) {
	case "off":
	case "allowed":
		cfg.dpop = auth.DPoPAllowed
	case "required":
		cfg.dpop = auth.DPoPRequired
	default:
		return config{}, fmt.Errorf("MCPGUARD_DPOP %q: want off, allowed or required", d)
	}

	if err := redisEnv(getenv, &cfg); err != nil {
		return config{}, err
	}
	if err := downstreamEnv(getenv, &cfg); err != nil {
		return config{}, err
	}

	rate := env("MCPGUARD_RATE_LIMIT", "20")
	if cfg.rate, err = strconv.Atoi(rate); err != nil || cfg.rate < 1 || cfg.rate > 1_000_000 {
		return config{}, fmt.Errorf("MCPGUARD_RATE_LIMIT %q: want a whole number of requests per second from 1 to 1000000", rate)
	}
	return cfg, nil
}

// shownURL is s as a configuration error may show it: without its query
// or fragment, and with its userinfo [REDACTED], since an operator may have
// written a password or token there (which checkURL refuses) and the error
// goes to stderr, beside the logs.
func shownURL(s string) string { return redact.URI(s) }

// checkURL accepts an absolute http(s) URL; with fetched, plain http only
// to a loopback host, since keys fetched over http could be forged.
func checkURL(s string, fetched bool) error {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return errors.New("not a URL")
	case u.Scheme != "https" && u.Scheme != "http", u.Host == "":
		return errors.New("want an absolute http(s) URL")
	case u.User != nil, u.Fragment != "", u.RawQuery != "":
		return errors.New("must not carry user info, a query or a fragment")
	case fetched && u.Scheme == "http" && !loopback.Host(u.Hostname()):
		return errors.New("plain http is allowed only on loopback; use https")
	}
	return nil
}
