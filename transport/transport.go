package transport

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/server"

	"github.com/mcpguard/mcpguard/audit"
	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/authz"
	"github.com/mcpguard/mcpguard/telemetry"
	"github.com/mcpguard/mcpguard/tenancy"
	"github.com/mcpguard/mcpguard/transport/ratelimit"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// ReasonRevoked is the audit reason of a request refused because its
// token was revoked (auth.ErrRevoked): an auth_failure event with reason
// "revoked" instead of "invalid_token".
const ReasonRevoked = "revoked"

// DefaultSessionIdleTTL is how long a stateful session may stay unused
// before mcp-go forgets it; without it every initialize would keep a
// session forever.
const DefaultSessionIdleTTL = 15 * time.Minute

// Mode selects how callers are identified.
type Mode int

const (
	// ModeProd authenticates every request with Config.Validator. It is the
	// zero value.
	ModeProd Mode = iota
	// ModeDev serves without authentication on a loopback listener only,
	// injecting Config.Dev as the caller. New refuses a non-loopback Addr;
	// each request must also arrive on a loopback connection from a
	// loopback peer, else 403. The same policy, limits and audit run as in
	// production.
	ModeDev
)

func (m Mode) String() string {
	switch m {
	case ModeProd:
		return "prod"
	case ModeDev:
		return "dev"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// Config is everything a server author wires. Components are built by
// their own packages and handed in; nil optional components are left out.
type Config struct {
	// Mode is ModeProd (the zero value) or ModeDev.
	Mode Mode

	// The common case, built for you. Each of Issuer, ToolScopes and
	// TenantClaim stands for one component and is used only when that
	// component is nil; setting both is an error, so nothing is silently
	// ignored.
	//
	// Issuer, in ModeProd with Validator nil, builds a JWT validator
	// (auth.NewJWTValidator: JWKS discovered from the issuer, audience
	// Resource) that Guard.Close closes, and is the default
	// AuthorizationServers.
	Issuer string
	// ToolScopes, with Policy nil, builds the policy: each listed tool
	// needs every scope listed for it (an empty list: any authenticated
	// caller); every other tool, and every prompt and resource, is denied.
	ToolScopes map[string][]string
	// TenantClaim, in ModeProd with Tenancy nil, builds the tenant
	// resolver (tenancy.New with that claim, e.g. "org_id" for Auth0
	// organizations).
	TenantClaim string
	// Revoker, with Issuer, is the revocation list of the JWT validator
	// Issuer builds (auth.JWTConfig.Revoker): an auth.MemoryRevoker, or
	// redisstore's Revoker shared by replicas. Nil revokes nothing. It
	// needs Issuer: with a Validator of your own, set it there.
	Revoker auth.Revoker

	// Resource is the MCP endpoint's URL and the resource identifier tokens
	// must be issued for (RFC 8707, RFC 9728), e.g.
	// "https://mcp.example.com/mcp". Its path is where the MCP handler is
	// mounted. Required in ModeProd: https, or http for a loopback host. In
	// ModeDev it defaults to "http://<Addr>/mcp".
	Resource string
	// Addr is the address the server listens on. Required in ModeDev, where
	// it must be loopback; optional in ModeProd.
	Addr string

	// AuthorizationServers are the issuers listed in the protected resource
	// metadata so clients can find where to get a token. Required in
	// ModeProd.
	AuthorizationServers []string
	// ScopesSupported are listed in the metadata. Nil means
	// Policy.ScopesSupported().
	ScopesSupported []string
	// ResourceName is the metadata's human-readable name; optional.
	ResourceName string

	// Validator authenticates bearer tokens. Required in ModeProd.
	Validator auth.Validator
	// Auth tunes the bearer middleware (Realm, MaxTokenBytes, OnError).
	// ResourceMetadataURL is filled in from Resource.
	Auth auth.MiddlewareConfig

	// Policy decides every tool call, prompt and resource read. Required in
	// both modes: authz.New(authz.Config{}) denies everything, which is the
	// place to start.
	Policy *authz.Policy
	// Tenancy resolves the caller's tenant from verified claims. Nil serves
	// without tenants. Ignored in ModeDev, where Dev.Tenant is used.
	Tenancy *tenancy.Resolver

	// The three request limits are one mechanism, ratelimit.RequestLimit
	// (build each with ratelimit.NewRequestLimit), at three places in the
	// stack. Each must have its own RequestLimitConfig.Namespace — New refuses
	// two with the same one — so limits sharing a Limiter never share a
	// bucket. With Audit set, each limit reports its own decisions to it
	// (ratelimit.Reporter): a refusal is a rate_limited edge event whose
	// Limit is the namespace, with the principal and tenant where the
	// limit knows them; a fail-open is an event of its own. Their own
	// Reporters still run. Nil: that limit is off.
	//
	// PreAuthRateLimit runs on every request, authenticated or not (for
	// example a per-address ceiling far above any one caller's budget),
	// after the header checks and before the body is read or the token
	// checked, so a refused request costs no body buffer.
	PreAuthRateLimit *ratelimit.RequestLimit
	// UnauthenticatedRateLimit limits requests that fail authentication
	// (no token, a bad token), keyed by client address: each failure spends
	// one event of the address's budget, and once it is spent the answer is
	// 429 with Retry-After instead of 401. Authenticated requests are not
	// charged here (RateLimit keys them by tenant and subject), so callers
	// sharing an address keep their own budgets. Its TrustedProxies decide
	// whose X-Forwarded-For is believed.
	UnauthenticatedRateLimit *ratelimit.RequestLimit
	// RateLimit runs after authentication and tenancy on authenticated
	// callers, typically keyed by tenant and subject.
	RateLimit *ratelimit.RequestLimit
	// ToolBudgets enforces per-tool rates, concurrency and timeouts as the
	// innermost tool middleware (ServerOptions installs it). With Audit set,
	// every decision of the budgets reaches the recorder (see
	// ratelimit.ToolBudgets.Reporting): refusals, a fail-closed limiter and
	// timeouts as rate_limited events naming the budgets' namespace, the
	// tool, tenant and principal, a fail-open as an allowed rate_limited
	// event with reason limiter_fail_open. With telemetry on, the Guard's
	// telemetry observes them (SetObserver; budgets that already have an
	// observer are a configuration error). Nil: none.
	ToolBudgets *ratelimit.ToolBudgets

	// Audit records edge outcomes and tool calls. Nil: no audit.
	Audit *audit.Recorder

	// Edge configures Origin checks and the body limit.
	Edge EdgeConfig
	// SessionKey keys session binding (at least 32 bytes; share it among
	// replicas). Nil draws a random key.
	SessionKey []byte
	// Sessions configures what the edge keeps about stateful sessions
	// (terminated IDs, live-session caps). The zero value is one replica's
	// in-memory stores with the default caps.
	Sessions SessionConfig
	// Tasks configures how tasks are bound to the principal that created
	// them (mcp-go isolates them by session only). The zero value keeps
	// owners in memory for DefaultTaskOwnerTTL.
	Tasks TaskConfig
	// RequestState seals the requestState of multi round-trip requests
	// (SEP-2322) with AES-256-GCM, bound to the principal, tenant, an
	// expiry and the request it belongs to. The zero value derives the key
	// from SessionKey and accepts state for DefaultRequestStateTTL.
	RequestState RequestStateConfig
	// DisableStepUp turns off the HTTP-level insufficient_scope answer;
	// tool middleware still enforces.
	DisableStepUp bool

	// Dev is the caller injected in ModeDev.
	Dev DevIdentity

	// HTTPOptions are passed to server.NewStreamableHTTPServer after
	// mcpguard's own (which include server.WithSessionIdleTTL(
	// DefaultSessionIdleTTL), so abandoned sessions are swept); they must
	// not turn off its DNS rebinding protection. Handler gives a POST's
	// body, once read, to mcp-go's Handle rather than its ServeHTTP, so
	// mcp-go's own CORS and protected resource metadata options do not
	// apply to POSTs: the edge answers CORS (EdgeConfig.AllowedOrigins),
	// Handler mounts the metadata, and mcpguard refuses DNS rebinding of a
	// loopback listener itself, with mcp-go's rule. A
	// server.WithHTTPContextFunc or a custom SessionIdManagerResolver then
	// gets mcp-go's request view of a POST: the method, URL, headers and
	// context, but no RemoteAddr or TLS.
	//
	// A 2025-11-25 request needs a session: a GET or a POST other than
	// initialize without Mcp-Session-Id is refused (400 and 404). With
	// server.WithStateLess, whose sessions all have the ID "", mcp-go
	// would otherwise serve every caller's requests in one session, so
	// there only 2026-07-28 clients are served.
	HTTPOptions []server.StreamableHTTPOption
	// Logger receives the dev-mode warning and, at Debug level, the cause
	// of each refused credential (never the token) unless Auth.Logger is
	// set. Nil means slog.Default().
	Logger *slog.Logger

	// MeterProvider and TracerProvider turn on OpenTelemetry metrics and
	// traces of every decision (package telemetry): a SERVER span per MCP
	// request, mcp.server.operation.duration, and the decision,
	// rate-limit, token-exchange and audit-queue metrics, which come from
	// the audit stream (so they need Audit). Nil for both means no
	// telemetry at all, at no cost; to report to the global providers pass
	// otel.GetMeterProvider() and otel.GetTracerProvider().
	MeterProvider  metric.MeterProvider
	TracerProvider trace.TracerProvider
	// Telemetry tunes what is reported (opt-in tenant and tool attributes
	// with their caps, the subject hash key, the propagator). Its own
	// provider fields must be left nil: set the two above.
	Telemetry telemetry.Config
}

// Guard is a configured mcpguard stack. Build it with New, pass
// ServerOptions to server.NewMCPServer, and serve Handler. A Guard is safe
// for concurrent use.
type Guard struct {
	cfg      Config
	resource *url.URL
	metaURL  string
	edge     *edge
	sessions *SessionBinding
	tasks    *taskBinding
	sealer   *requestSealer
	authMW   func(http.Handler) http.Handler
	unauth   *unauthLimiter
	preLimit *ratelimit.RequestLimit // Config.PreAuthRateLimit, reporting to Audit
	limit    *ratelimit.RequestLimit // Config.RateLimit, reporting to Audit
	budgets  *ratelimit.ToolBudgets  // Config.ToolBudgets, reporting to Audit
	tel      *telemetry.Telemetry
	owned    []func() error // components New built from Issuer and friends

	mu      sync.Mutex
	servers []*server.StreamableHTTPServer // built by Handler, shut down by Close
}

// New checks cfg and builds a Guard. Every mistake is an error wrapping
// ErrConfig that names the field to fix; production without a validator,
// or with a non-https resource off loopback, does not start.
func New(cfg Config) (_ *Guard, err error) {
	g := &Guard{cfg: cfg}
	defer func() {
		if err != nil {
			g.closeOwned()
		}
	}()
	if err := g.buildCommon(&cfg); err != nil {
		return nil, err
	}
	if cfg.Policy == nil {
		return nil, fmt.Errorf("%w: Config.Policy is required (authz.New(authz.Config{}) denies everything; add rules from there)", ErrConfig)
	}
	switch cfg.Mode {
	case ModeDev:
		if problem := loopbackAddrProblem(cfg.Addr); problem != "" {
			return nil, fmt.Errorf("%w: Config.Addr: %s", ErrConfig, problem)
		}
		// Settings dev mode would ignore are refused, not silently dropped.
		if cfg.Validator != nil {
			return nil, fmt.Errorf("%w: Config.Validator is set but ModeDev authenticates nobody and would ignore it; leave it nil in dev mode or use ModeProd", ErrConfig)
		}
		if cfg.Tenancy != nil {
			return nil, fmt.Errorf("%w: Config.Tenancy is set but ModeDev would ignore it (the dev tenant is Config.Dev.Tenant); leave it nil in dev mode", ErrConfig)
		}
		if cfg.Resource == "" {
			cfg.Resource = "http://" + cfg.Addr + "/mcp"
		}
	case ModeProd:
		if cfg.Validator == nil {
			return nil, fmt.Errorf("%w: Config.Validator is required in prod mode (use auth.NewJWTValidator); for local work without tokens use ModeDev", ErrConfig)
		}
		if len(cfg.AuthorizationServers) == 0 {
			return nil, fmt.Errorf("%w: Config.AuthorizationServers is required in prod mode: clients discover where to get a token from it", ErrConfig)
		}
		if err := crossCheckValidator(cfg); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("%w: Config.Mode %d is not a known mode", ErrConfig, int(cfg.Mode))
	}
	if err := auth.CheckResource(cfg.Resource); err != nil {
		return nil, fmt.Errorf("%w: Config.Resource: %w", ErrConfig, err)
	}
	g.resource, _ = url.Parse(cfg.Resource)
	if cfg.Addr != "" {
		if _, _, err := net.SplitHostPort(cfg.Addr); err != nil {
			return nil, fmt.Errorf("%w: Config.Addr %q: %v", ErrConfig, cfg.Addr, err)
		}
	}
	if g.metaURL, err = auth.ResourceMetadataURL(cfg.Resource); err != nil {
		return nil, fmt.Errorf("%w: Config.Resource: %w", ErrConfig, err)
	}
	if g.edge, err = newEdge(cfg.Edge); err != nil {
		return nil, err
	}
	g.edge.deferForm = cfg.Mode == ModeProd
	if cfg.Sessions.MaxPerPrincipal < 0 || cfg.Sessions.MaxTotal < 0 {
		return nil, fmt.Errorf("%w: Config.Sessions.MaxPerPrincipal and MaxTotal must not be negative (zero means the default)", ErrConfig)
	}
	if cfg.SessionKey != nil && len(cfg.SessionKey) < 32 {
		return nil, fmt.Errorf("%w: Config.SessionKey must be at least 32 bytes, got %d", ErrConfig, len(cfg.SessionKey))
	}
	if g.sessions, err = newSessionBinding(cfg.SessionKey, cfg.Sessions, DefaultSessionIdleTTL); err != nil {
		return nil, err // already names what to fix and wraps ErrConfig
	}
	if cfg.Tasks.TTL < 0 {
		return nil, fmt.Errorf("%w: Config.Tasks.TTL must not be negative", ErrConfig)
	}
	g.tasks = newTaskBinding(cfg.Tasks, g.sessions.key)
	g.tasks.audit = cfg.Audit
	if g.sealer, err = newRequestSealer(cfg.RequestState, g.sessions.key, cfg.Resource, cfg.Audit); err != nil {
		return nil, err
	}
	if cfg.Auth.ResourceMetadataURL != "" && cfg.Auth.ResourceMetadataURL != g.metaURL {
		return nil, fmt.Errorf("%w: Config.Auth.ResourceMetadataURL %q would be replaced by %q (derived from Config.Resource); leave it empty", ErrConfig, cfg.Auth.ResourceMetadataURL, g.metaURL)
	}
	if cfg.Mode == ModeProd {
		ac := cfg.Auth
		ac.ResourceMetadataURL = g.metaURL
		if ac.Logger == nil {
			// Each refusal's cause at Debug level (never the token).
			ac.Logger = cmp.Or(cfg.Logger, slog.Default())
		}
		// A revoked token is audited as such, not only as invalid_token.
		onError := ac.OnError
		ac.OnError = func(r *http.Request, e *auth.Error) {
			if errors.Is(e, auth.ErrRevoked) {
				audit.Annotate(r.Context(), audit.KindAuthFailure, ReasonRevoked)
			}
			if onError != nil {
				onError(r, e)
			}
		}
		if g.authMW, err = auth.Middleware(cfg.Validator, ac); err != nil {
			return nil, fmt.Errorf("%w: Config.Auth: %w", ErrConfig, err)
		}
	} else {
		g.authMW = devMiddleware(cfg.Dev)
		logger := cfg.Logger
		if logger == nil {
			logger = slog.Default()
		}
		logger.Warn("mcpguard: DEV MODE — no authentication; every request acts as the dev principal; loopback only",
			"addr", cfg.Addr, "subject", cfg.Dev.principal().Subject, "tenant", cfg.Dev.Tenant)
	}
	if err := checkNamespaces(cfg); err != nil {
		return nil, err
	}
	// Each request limit reports its own decisions to the audit recorder
	// (ratelimit.Reporter), so a refusal is recorded as rate_limited with
	// the limit's namespace, not inferred from a 429.
	var rep ratelimit.Reporter
	if cfg.Audit != nil {
		rep = limitAudit{rec: cfg.Audit}
	}
	reporting := func(m *ratelimit.RequestLimit) *ratelimit.RequestLimit {
		if m == nil {
			return nil
		}
		return m.Reporting(rep)
	}
	if cfg.ToolBudgets != nil {
		g.budgets = cfg.ToolBudgets
		if cfg.Audit != nil {
			g.budgets = cfg.ToolBudgets.Reporting(limitAudit{rec: cfg.Audit, tools: true})
		}
	}
	g.preLimit = reporting(cfg.PreAuthRateLimit)
	g.limit = reporting(cfg.RateLimit)
	if cfg.UnauthenticatedRateLimit != nil {
		g.unauth = &unauthLimiter{lim: reporting(cfg.UnauthenticatedRateLimit)}
	}
	if err := g.setupTelemetry(&cfg); err != nil {
		return nil, err
	}
	cfg.AuthorizationServers = slices.Clone(cfg.AuthorizationServers)
	cfg.ScopesSupported = slices.Clone(cfg.ScopesSupported)
	g.cfg = cfg
	if cfg.Mode == ModeProd {
		// Handler mounts the same metadata: check it here, once.
		if _, err := auth.MountMetadata(http.NewServeMux(), g.metadataConfig()); err != nil {
			return nil, fmt.Errorf("%w: protected resource metadata: %w", ErrConfig, err)
		}
	}
	return g, nil
}

// AudienceLister is implemented by validators that can say which audiences
// they accept (RFC 7519 aud). When Config.Validator implements it and
// returns a non-empty list, New refuses a Resource that is not in it:
// every token issued for the resource would be refused.
type AudienceLister interface {
	Audiences() []string
}

// IssuerLister is implemented by validators that can say which issuers
// they trust. When Config.Validator implements it and returns a non-empty
// list, New refuses an AuthorizationServers entry that is not in it:
// clients would fetch tokens the validator refuses.
type IssuerLister interface {
	Issuers() []string
}

// crossCheckValidator compares Resource and AuthorizationServers with what
// the validator says it accepts, when it can say.
func crossCheckValidator(cfg Config) error {
	if al, ok := cfg.Validator.(AudienceLister); ok {
		if auds := al.Audiences(); len(auds) > 0 && !containsURL(auds, cfg.Resource) {
			return fmt.Errorf("%w: Config.Resource %q is not among the validator's audiences %q: tokens issued for this resource would be refused", ErrConfig, cfg.Resource, auds)
		}
	}
	if il, ok := cfg.Validator.(IssuerLister); ok {
		if iss := il.Issuers(); len(iss) > 0 {
			for _, as := range cfg.AuthorizationServers {
				if !containsURL(iss, as) {
					return fmt.Errorf("%w: Config.AuthorizationServers entry %q is not among the validator's issuers %q: clients would get tokens it refuses", ErrConfig, as, iss)
				}
			}
		}
	}
	return nil
}

// containsURL reports whether list holds u, ignoring one trailing slash.
func containsURL(list []string, u string) bool {
	u = strings.TrimSuffix(u, "/")
	for _, x := range list {
		if strings.TrimSuffix(x, "/") == u {
			return true
		}
	}
	return false
}

func (g *Guard) metadataConfig() auth.MetadataConfig {
	scopes := g.cfg.ScopesSupported
	if scopes == nil {
		scopes = g.cfg.Policy.ScopesSupported()
	}
	// A DPoP-aware validator's support is advertised (RFC 9728 §2).
	return auth.DPoPMetadata(auth.MetadataConfig{
		Resource:             g.cfg.Resource,
		AuthorizationServers: g.cfg.AuthorizationServers,
		ScopesSupported:      scopes,
		ResourceName:         g.cfg.ResourceName,
	}, g.cfg.Validator)
}

// namedLimit is one of the request limits of a Config, with its field name.
type namedLimit struct {
	field string
	m     *ratelimit.RequestLimit
}

// requestLimits returns the request limits that are set, outermost first.
func (c *Config) requestLimits() []namedLimit {
	var out []namedLimit
	for _, l := range [...]namedLimit{
		{"PreAuthRateLimit", c.PreAuthRateLimit},
		{"UnauthenticatedRateLimit", c.UnauthenticatedRateLimit},
		{"RateLimit", c.RateLimit},
	} {
		if l.m != nil {
			out = append(out, l)
		}
	}
	return out
}

// checkNamespaces refuses request limits, or a request limit and the tool
// budgets, sharing a key namespace: on one Limiter they would share
// buckets (five bad tokens from an address would spend its users' pre-auth
// budget).
func checkNamespaces(cfg Config) error {
	seen := map[string]string{}
	for _, l := range cfg.requestLimits() {
		if other, ok := seen[l.m.Namespace()]; ok {
			return fmt.Errorf("%w: Config.%s and Config.%s share the key namespace %q; give each its own RequestLimitConfig.Namespace", ErrConfig, other, l.field, l.m.Namespace())
		}
		seen[l.m.Namespace()] = l.field
	}
	if tb := cfg.ToolBudgets; tb != nil {
		if other, ok := seen[tb.Namespace()]; ok {
			return fmt.Errorf("%w: Config.%s and Config.ToolBudgets share the key namespace %q; give each its own Namespace", ErrConfig, other, tb.Namespace())
		}
	}
	return nil
}

// ServerOptions returns the mcp-go options that install the tool-level
// layers, outermost first: audit (so it sees every refusal; a refusal
// mcp-go answers before any middleware runs — a tool or prompt the
// policy's filter hides, a request its request hook refuses — is recorded
// by a request hook ahead of the policy's), the policy
// (filters, authoritative middleware, early-denial hook), the sealing of
// multi round-trip requestState (RequestStateConfig), the hooks that
// bind tasks to their owners, then tool budgets. Tools registered with
// mcp-go's AddTaskTool are hidden from tools/list and tools/call, and the
// Logger says so once: mcp-go runs their handlers without tool middleware, so
// none of these layers would reach them; register a task-capable tool with
// AddTool and mcp.WithTaskSupport instead. Pass them to
// server.NewMCPServer after any server.WithHooks option (one after them
// would drop those hooks: tasks would then be served to no one).
func (g *Guard) ServerOptions() []server.ServerOption {
	var opts []server.ServerOption
	if g.cfg.Audit != nil {
		// The request hook before the policy's: it records the refusals
		// they make.
		d := &denialAudit{rec: g.cfg.Audit, policy: g.cfg.Policy, hook: g.cfg.Policy.RequestHook()}
		opts = append(opts,
			server.WithToolHandlerMiddleware(g.cfg.Audit.ToolMiddleware),
			server.WithResourceHandlerMiddleware(g.cfg.Audit.ResourceMiddleware),
			server.WithPromptHandlerMiddleware(g.cfg.Audit.PromptMiddleware),
			d.option(),
		)
	}
	opts = append(opts, g.cfg.Policy.ServerOptions()...)
	opts = append(opts, g.sealer.options()...)
	opts = append(opts, g.tasks.option(), server.WithToolFilter((&taskTools{log: g.logger}).filter))
	if g.budgets != nil {
		opts = append(opts, server.WithToolHandlerMiddleware(g.budgets.ToolMiddleware))
	}
	return opts
}

// MetadataURL is the protected resource metadata URL sent in challenges.
func (g *Guard) MetadataURL() string { return g.metaURL }

// Resource is the resource identifier (the MCP endpoint's URL).
func (g *Guard) Resource() string { return g.cfg.Resource }

// Handler returns the complete HTTP handler for srv, which must have been
// built with ServerOptions: mcp-go's Streamable HTTP server at the
// resource's path behind the whole stack, and, in ModeProd, the protected
// resource metadata at its RFC 9728 well-known paths.
func (g *Guard) Handler(srv *server.MCPServer) http.Handler {
	opts := append([]server.StreamableHTTPOption{
		server.WithEndpointPath(g.endpointPath()),
		server.WithSessionIdleTTL(DefaultSessionIdleTTL),
	}, g.cfg.HTTPOptions...)
	mcpHandler := server.NewStreamableHTTPServer(srv, opts...)
	g.mu.Lock()
	g.servers = append(g.servers, mcpHandler)
	g.mu.Unlock()
	mux := http.NewServeMux()
	mux.Handle(g.endpointPath(), g.Wrap(srv, direct{s: mcpHandler, tasks: g.tasks, policy: g.cfg.Policy}))
	if g.cfg.Mode == ModeProd {
		if _, err := auth.MountMetadata(mux, g.metadataConfig()); err != nil {
			// New checked the same configuration, so this cannot happen;
			// if it does, fail closed and say why rather than serve
			// without discovery.
			g.logger().Error("mcpguard: protected resource metadata not mounted; refusing every request", "error", err)
			return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				http.Error(w, "server misconfigured", http.StatusInternalServerError)
			})
		}
	}
	return mux
}

// Close releases what the Guard owns: it shuts down the Streamable HTTP
// servers Handler built (their idle-session sweepers and open sessions) and
// the telemetry registration. It does not close the components handed in
// through Config (Validator, Audit, limiters), which belong to the caller
// and may be shared. Close is safe to call more than once; the Guard's
// handlers must not be used afterwards.
func (g *Guard) Close() error {
	g.mu.Lock()
	servers := g.servers
	g.servers = nil
	g.mu.Unlock()
	var errs []error
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, s := range servers {
		if err := s.Shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if g.tel != nil {
		if err := g.tel.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	errs = append(errs, g.closeOwned())
	return errors.Join(errs...)
}

// closeOwned closes what New built itself, once.
func (g *Guard) closeOwned() error {
	g.mu.Lock()
	owned := g.owned
	g.owned = nil
	g.mu.Unlock()
	var errs []error
	for i := len(owned) - 1; i >= 0; i-- {
		errs = append(errs, owned[i]())
	}
	return errors.Join(errs...)
}

func (g *Guard) logger() *slog.Logger {
	if g.cfg.Logger != nil {
		return g.cfg.Logger
	}
	return slog.Default()
}

func (g *Guard) endpointPath() string {
	if g.resource.Path == "" {
		return "/"
	}
	return g.resource.Path
}

// Wrap puts the HTTP stack around h, for authors with their own router or
// their own mcp-go handler. srv is consulted by step-up to find a tool's
// annotations; nil turns step-up off. The order, outermost first:
// telemetry → audit → request ID, Origin/Content-Type/Content-Length →
// pre-auth rate limit → body → MCP span → unauthenticated rate limit →
// authentication → (prod) the 415 deferred for form bodies → tenancy → session binding → rate limit → step-up →
// the telemetry's dispatch mark → the innermost checks (a stream's end at token expiry, the refusal of a
// sessionless 2025-11-25 request, the filter of task status and resource updates; Guard.Handler's direct does them itself) → h.
func (g *Guard) Wrap(srv *server.MCPServer, h http.Handler) http.Handler {
	if _, ok := h.(direct); !ok {
		h = g.tasks.filter(g.cfg.Policy, h) // direct (Guard.Handler's) filters in its own allocation
	}
	if g.tel != nil {
		// Innermost: only an authenticated request that got this far, for
		// a tool or prompt srv has, names it in metrics (the tool-name cap
		// is not for attackers to fill).
		h = g.tel.Dispatched(registeredIn(srv))(h)
	}
	if srv != nil && !g.cfg.DisableStepUp {
		h = (&stepUp{policy: g.cfg.Policy, srv: srv, metaURL: g.metaURL}).handler(h)
	} else {
		h = (&stepUp{metaURL: g.metaURL}).handler(h) // still records the JSON-RPC id
	}
	if g.limit != nil {
		h = g.limit.Middleware(h)
	}
	h = g.sessions.Middleware(h)
	if g.cfg.Audit != nil {
		h = audit.Capture(h)
	}
	if g.cfg.Tenancy != nil && g.cfg.Mode == ModeProd {
		h = g.cfg.Tenancy.Middleware(h)
	}
	if g.cfg.Audit != nil {
		h = audit.Capture(h)
	}
	if g.edge.deferForm {
		h = g.edge.requireJSON(h)
	}
	h = g.authMW(h)
	if g.unauth != nil {
		h = g.unauth.wrap(h)
	}
	if g.tel != nil {
		h = telemetryBegin(g.tel, h) // inside the body read: the span knows the method
	}
	// The pre-auth limit runs after the header checks and before the
	// body is read.
	var pre func(http.Handler) http.Handler
	if g.preLimit != nil {
		pre = g.preLimit.Middleware
	}
	h = g.edge.handlerPre(pre, h)
	if g.cfg.Audit != nil {
		h = g.cfg.Audit.Middleware(h)
	}
	if g.tel != nil {
		h = g.tel.Middleware(h)
	}
	return h
}
