// Command quickstart shows what mcpguard does, in one run on loopback: a
// test identity provider (auth/authtest), the prod-mode notes server (as
// examples/prodmode wires it), and an mcp-go client acting as two users —
// alice of tenant acme (notes:read notes:write) and bob of tenant globex
// (notes:read). It prints what happens and checks every step: discovery
// from the 401 challenge, alice's notes, bob kept out of acme's notes and
// refused notes_write with the missing scope named, a rate limit, and the
// audit trail. It exits 0 when every check passed.
//
//	go run ./examples/quickstart
package main

import (
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/client"
	mcptransport "github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcpguard/mcpguard/audit"
	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/auth/authtest"
	"github.com/mcpguard/mcpguard/authz"
	"github.com/mcpguard/mcpguard/examples/internal/notes"
	"github.com/mcpguard/mcpguard/tenancy"
	"github.com/mcpguard/mcpguard/transport"
	"github.com/mcpguard/mcpguard/transport/ratelimit"
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
	defer cancel()
	if err := run(ctx, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

// ratePerSecond is the per-caller request rate of the demo server; bursts
// of twice that are allowed.
const ratePerSecond = 10

// run runs the demo and returns an error unless every check passed.
func run(ctx context.Context, out io.Writer) error {
	return demo{out: out}.run(ctx)
}

// demo is one run. mutate, when set, changes the server's configuration;
// tests use it to prove that the checks catch a broken server.
type demo struct {
	out    io.Writer
	mutate func(*transport.Config)
}

func (d demo) run(ctx context.Context) error {
	fmt.Fprintln(d.out, "mcpguard quickstart — an identity provider, an MCP server and two users, all on 127.0.0.1")
	ck := &checker{out: d.out}

	// The server's address comes first: it is the audience tokens are
	// issued for.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	resource := "http://" + ln.Addr().String() + "/mcp"
	idp, err := authtest.New(authtest.Config{Algorithms: []string{"RS256"}, Audience: resource, ClientID: "quickstart-client"})
	if err != nil {
		_ = ln.Close()
		return err
	}
	defer idp.Close()
	srv, err := startServer(ln, idp.Issuer(), resource, d.mutate)
	if err != nil {
		return err
	}
	defer srv.stop()

	ck.section("1. Discovery: what a client without a token learns")
	if err := discover(ctx, ck, resource, idp.Issuer()); err != nil {
		return err
	}

	ck.section("2. The identity provider signs in two users")
	alice := newUser(ck, idp, resource, "alice", "acme", "notes:read notes:write")
	bob := newUser(ck, idp, resource, "bob", "globex", "notes:read")

	ck.section("3. alice uses the notes server (an mcp-go client, alice's token)")
	if err := alice.connect(ctx); err != nil {
		return err
	}
	defer alice.close()
	tools := alice.tools(ctx)
	ck.say("tools/list      → %s", strings.Join(tools, ", "))
	ck.check(slices.Equal(tools, []string{"notes_list", "notes_read", "notes_write", "whoami"}), "alice sees all four tools")
	text, _ := alice.call(ctx, "whoami", nil)
	ck.say("whoami          → %s", text)
	ck.check(strings.Contains(text, `"subject":"alice","tenant":"acme"`), "the server knows alice and her tenant from the verified token")
	const secret = "ship v1 on friday"
	text, _ = alice.call(ctx, "notes_write", map[string]any{"key": "plan", "text": secret})
	ck.say("notes_write plan %q → %s", secret, text)
	text, _ = alice.call(ctx, "notes_read", map[string]any{"key": "plan"})
	ck.say("notes_read plan → %q", text)
	ck.check(text == secret, "alice reads back her note")

	ck.section("4. bob, of another tenant, with read access only")
	if err := bob.connect(ctx); err != nil {
		return err
	}
	defer bob.close()
	tools = bob.tools(ctx)
	ck.say("tools/list      → %s", strings.Join(tools, ", "))
	ck.check(!slices.Contains(tools, "notes_write"), "notes_write is hidden from bob")
	text, isErr := bob.call(ctx, "notes_read", map[string]any{"key": "plan"})
	ck.say("notes_read plan → error: %s", text)
	ck.check(isErr && !strings.Contains(text, secret), "bob cannot read acme's note: tenants are isolated")
	text, _ = bob.call(ctx, "notes_list", nil)
	ck.say("notes_list      → %s", text)
	ck.check(text == "[]", "globex has no notes")
	_, err = bob.client.CallTool(ctx, toolCall("notes_write", map[string]any{"key": "plan", "text": "overwritten"}))
	last := bob.last()
	ck.say("notes_write     → HTTP %d, WWW-Authenticate: %s", last.status, last.challenge)
	ck.check(err != nil && last.status == http.StatusForbidden &&
		strings.Contains(last.challenge, `error="insufficient_scope"`) && strings.Contains(last.challenge, `scope="notes:write"`),
		"bob is refused notes_write, and told the scope to ask for")
	text, _ = alice.call(ctx, "notes_read", map[string]any{"key": "plan"})
	ck.check(text == secret, "acme's note is untouched")

	ck.section(fmt.Sprintf("5. Rate limit: %d requests/s per user and tenant, bursts of %d", ratePerSecond, 2*ratePerSecond))
	// All at once, so that the burst is spent however slow this machine is.
	calls := 3 * 2 * ratePerSecond
	var wg sync.WaitGroup
	var mu sync.Mutex
	served := 0
	for range calls {
		wg.Go(func() {
			if _, err := alice.client.CallTool(ctx, toolCall("whoami", nil)); err == nil {
				mu.Lock()
				served++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	limited := alice.rt.limited()
	ck.say("alice sends %d whoami calls at once: %d served, the rest refused with HTTP %d, Retry-After: %s",
		calls, served, limited.status, limited.retryAfter)
	ck.check(served < calls && limited.status == http.StatusTooManyRequests && limited.retryAfter != "",
		"alice is slowed down with 429 and Retry-After")
	_, err = bob.client.CallTool(ctx, toolCall("whoami", nil))
	ck.say("bob calls whoami → HTTP %d", bob.last().status)
	ck.check(err == nil, "bob is still served: every user has a budget of their own")

	ck.section("6. The audit trail (JSON lines; no token in any of them)")
	alice.close()
	bob.close()
	srv.stop() // flushes the audit events
	events, err := srv.events()
	if err != nil {
		return err
	}
	for i := 0; i < len(events); {
		n := 1
		for i+n < len(events) && events[i+n] == events[i] {
			n++
		}
		if n > 1 {
			ck.say("%s  (×%d)", events[i], n)
		} else {
			ck.say("%s", events[i])
		}
		i += n
	}
	trail := srv.audit.String()
	ck.check(strings.Contains(trail, `"kind":"auth_failure"`) && strings.Contains(trail, `"reason":"no_credential"`), "the unauthenticated discovery request is recorded")
	ck.check(hasEvent(events, "tool_call", "alice", "notes_write", "allow"), "alice's notes_write is recorded, with her tenant")
	ck.check(hasEvent(events, "access_denied", "bob", "", "deny"), "bob's refused notes_write is recorded")
	ck.check(hasEvent(events, "rate_limited", "alice", "", "deny"), "alice's 429 is recorded")
	leaked := false
	for _, tok := range []string{alice.token, bob.token} {
		for i := 0; i+16 <= len(tok); i += 8 {
			leaked = leaked || strings.Contains(trail, tok[i:i+16])
		}
	}
	ck.check(!leaked, "no token, or any piece of one, is in the audit trail")

	ck.section("7. OpenTelemetry metrics (transport.Config.MeterProvider)")
	counts, err := srv.decisionCounts(ctx)
	if err != nil {
		return err
	}
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		ck.say("mcpguard.decisions{%s} = %d", k, counts[k])
	}
	ck.check(counts["event=auth_failure decision=deny reason=no_credential"] >= 1 &&
		counts["event=access_denied decision=deny reason=insufficient_scope"] >= 1 &&
		counts["event=tool_call decision=allow reason="] >= 1,
		"the decision counters saw the refusals and the allowed calls")
	lookups, err := srv.counterPoints(ctx, "mcpguard.cache.lookups", "mcpguard.cache", "mcpguard.result")
	if err != nil {
		return err
	}
	for _, k := range []string{"token hit", "token miss"} {
		ck.say("mcpguard.cache.lookups{%s} = %d", k, lookups[k])
	}
	ck.check(lookups["token hit"] >= 1 && lookups["token miss"] >= 1,
		"the verified-token cache counted its misses (new tokens) and hits (the same token again)")

	return ck.result()
}

// discover does what an MCP client's OAuth layer does before it has a
// token: follow the 401 challenge to the protected resource metadata
// (RFC 9728), and from there to the authorization server (RFC 8414).
func discover(ctx context.Context, ck *checker, resource, issuer string) error {
	resp, err := post(ctx, resource, `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`)
	if err != nil {
		return err
	}
	challenge := resp.Header.Get("WWW-Authenticate")
	ck.say("POST %s without a token → HTTP %d", resource, resp.StatusCode)
	ck.say("  WWW-Authenticate: %s", challenge)
	_, metaURL, _ := strings.Cut(challenge, `resource_metadata="`)
	metaURL, _, _ = strings.Cut(metaURL, `"`)
	ck.check(resp.StatusCode == http.StatusUnauthorized && metaURL != "", "401 names where the metadata is")

	var meta struct {
		Resource             string   `json:"resource"`
		AuthorizationServers []string `json:"authorization_servers"`
		ScopesSupported      []string `json:"scopes_supported"`
	}
	if err := getJSON(ctx, metaURL, &meta); err != nil {
		return err
	}
	ck.say("GET %s", metaURL)
	ck.say("  resource %s, authorization_servers %v, scopes_supported %v", meta.Resource, meta.AuthorizationServers, meta.ScopesSupported)
	ck.check(meta.Resource == resource && slices.Equal(meta.AuthorizationServers, []string{issuer}) &&
		slices.Contains(meta.ScopesSupported, notes.ScopeRead) && slices.Contains(meta.ScopesSupported, notes.ScopeWrite),
		"the metadata names this resource, its identity provider and the notes scopes")

	var as struct {
		Issuer        string `json:"issuer"`
		TokenEndpoint string `json:"token_endpoint"`
		JWKSURI       string `json:"jwks_uri"`
	}
	if err := getJSON(ctx, issuer+"/.well-known/oauth-authorization-server", &as); err != nil {
		return err
	}
	ck.say("GET %s/.well-known/oauth-authorization-server", issuer)
	ck.say("  token_endpoint %s, jwks_uri %s", as.TokenEndpoint, as.JWKSURI)
	ck.check(as.Issuer == issuer && as.TokenEndpoint != "", "the identity provider says where to get a token")
	return nil
}

// startServer serves the notes server on ln, wired as examples/prodmode
// wires it, with audit events kept in memory.
func startServer(ln net.Listener, issuer, resource string, mutate func(*transport.Config)) (s *notesServer, err error) {
	s = &notesServer{audit: &syncBuffer{}, metrics: sdkmetric.NewManualReader()}
	defer func() {
		if err != nil {
			s.stop()
			_ = ln.Close()
		}
	}()
	validator, err := auth.NewJWTValidator(auth.JWTConfig{Issuer: issuer, Audience: resource})
	if err != nil {
		return nil, err
	}
	s.closers = append(s.closers, validator.Close)
	tenants, err := tenancy.New(tenancy.Config{Claim: tenancy.ClaimTenantID})
	if err != nil {
		return nil, err
	}
	policy, err := authz.New(authz.Config{
		ReadScope:  notes.ScopeRead,
		WriteScope: notes.ScopeWrite,
		ToolRules:  map[string]authz.Rule{"whoami": {Authenticated: true}},
	})
	if err != nil {
		return nil, err
	}
	limiter, err := ratelimit.NewMemory(ratelimit.MemoryConfig{})
	if err != nil {
		return nil, err
	}
	perCaller := ratelimit.Limit{Events: ratePerSecond, Period: time.Second, Burst: 2 * ratePerSecond}
	byAddress, err := ratelimit.NewRequestLimit(ratelimit.RequestLimitConfig{Limiter: limiter, Limit: perCaller, KeyBy: ratelimit.Address, Namespace: "unauth"})
	if err != nil {
		return nil, err
	}
	byCaller, err := ratelimit.NewRequestLimit(ratelimit.RequestLimitConfig{Limiter: limiter, Limit: perCaller, KeyBy: ratelimit.Tenant | ratelimit.Subject})
	if err != nil {
		return nil, err
	}
	sink, err := audit.NewJSONSink(s.audit)
	if err != nil {
		return nil, err
	}
	rec, err := audit.New(audit.Config{Sink: sink})
	if err != nil {
		return nil, err
	}
	s.closers = append(s.closers, rec.Close)

	cfg := transport.Config{
		Resource:                 resource,
		AuthorizationServers:     []string{issuer},
		Validator:                validator,
		Policy:                   policy,
		Tenancy:                  tenants,
		UnauthenticatedRateLimit: byAddress,
		RateLimit:                byCaller,
		Audit:                    rec,
		// OpenTelemetry metrics into an in-process reader, printed at the
		// end; a real server hands in its own SDK provider and exporter.
		MeterProvider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(s.metrics)),
	}
	if mutate != nil {
		mutate(&cfg)
	}
	guard, err := transport.New(cfg)
	if err != nil {
		return nil, err
	}
	mcpServer := server.NewMCPServer("notes", "1.0.0", guard.ServerOptions()...)
	notes.AddTools(mcpServer, notes.NewStore(notes.Limits{}))

	s.http = &http.Server{Handler: guard.Handler(mcpServer), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = s.http.Serve(ln) }()
	return s, nil
}

// notesServer is the running server and its audit trail.
type notesServer struct {
	http    *http.Server
	audit   *syncBuffer
	metrics *sdkmetric.ManualReader
	closers []func() error
	once    sync.Once
}

// decisionCounts collects mcpguard.decisions as "event=… decision=…
// reason=…" → count.
func (s *notesServer) decisionCounts(ctx context.Context) (map[string]int64, error) {
	var rm metricdata.ResourceMetrics
	if err := s.metrics.Collect(ctx, &rm); err != nil {
		return nil, err
	}
	out := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			sum, ok := m.Data.(metricdata.Sum[int64])
			if m.Name != "mcpguard.decisions" || !ok {
				continue
			}
			for _, dp := range sum.DataPoints {
				get := func(k string) string { v, _ := dp.Attributes.Value(attribute.Key(k)); return v.Emit() }
				out["event="+get("mcpguard.event")+" decision="+get("mcpguard.decision")+" reason="+get("mcpguard.reason")] += dp.Value
			}
		}
	}
	return out, nil
}

// counterPoints collects the int64 counter name, keyed by the values of
// attrs joined with spaces.
func (s *notesServer) counterPoints(ctx context.Context, name string, attrs ...string) (map[string]int64, error) {
	var rm metricdata.ResourceMetrics
	if err := s.metrics.Collect(ctx, &rm); err != nil {
		return nil, err
	}
	out := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			sum, ok := m.Data.(metricdata.Sum[int64])
			if m.Name != name || !ok {
				continue
			}
			for _, dp := range sum.DataPoints {
				vals := make([]string, 0, len(attrs))
				for _, a := range attrs {
					v, _ := dp.Attributes.Value(attribute.Key(a))
					vals = append(vals, v.Emit())
				}
				out[strings.Join(vals, " ")] += dp.Value
			}
		}
	}
	return out, nil
}

// stop closes the server, then flushes and closes the audit recorder.
func (s *notesServer) stop() {
	s.once.Do(func() {
		if s.http != nil {
			_ = s.http.Close()
		}
		for i := len(s.closers) - 1; i >= 0; i-- {
			_ = s.closers[i]()
		}
	})
}

// event is the part of an audit event the transcript shows.
type event struct {
	Kind     string `json:"kind"`
	Subject  string `json:"subject"`
	Tenant   string `json:"tenant"`
	Tool     string `json:"tool"`
	Decision string `json:"decision"`
	Reason   string `json:"reason"`
	Status   int    `json:"status"`
	Error    string `json:"error_class"`
}

func (e event) String() string {
	who := "-"
	if e.Subject != "" {
		who = e.Subject + "@" + e.Tenant
	}
	s := fmt.Sprintf("%-14s %-13s %-6s", e.Kind, who, e.Decision)
	if e.Tool != "" {
		s += " tool=" + e.Tool
	}
	if e.Status != 0 {
		s += fmt.Sprintf(" status=%d", e.Status)
	}
	if e.Reason != "" {
		s += " reason=" + e.Reason
	}
	if e.Error != "" {
		s += " error=" + e.Error
	}
	return s
}

func (s *notesServer) events() ([]event, error) {
	var events []event
	for line := range strings.Lines(s.audit.String()) {
		var e event
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			return nil, fmt.Errorf("an audit line is not JSON: %w", err)
		}
		events = append(events, e)
	}
	return events, nil
}

func hasEvent(events []event, kind, subject, tool, decision string) bool {
	return slices.ContainsFunc(events, func(e event) bool {
		return e.Kind == kind && e.Subject == subject && e.Decision == decision && (tool == "" || e.Tool == tool)
	})
}

// user is one signed-in user with an mcp-go client.
type user struct {
	ck       *checker
	name     string
	resource string
	token    string
	client   *client.Client
	rt       *recorder
}

func newUser(ck *checker, idp *authtest.Server, resource, name, tenant, scope string) *user {
	tok := idp.MustMint(map[string]any{"sub": name, "tenant_id": tenant, "scope": scope})
	ck.say("%-5s of tenant %-6s gets an access token for %s with scope %q", name, tenant, resource, scope)
	return &user{ck: ck, name: name, resource: resource, token: tok, rt: &recorder{next: http.DefaultTransport}}
}

func (u *user) connect(ctx context.Context) error {
	c, err := client.NewStreamableHttpClient(u.resource,
		mcptransport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + u.token}),
		mcptransport.WithHTTPBasicClient(&http.Client{Transport: u.rt}))
	if err != nil {
		return err
	}
	if err := c.Start(ctx); err != nil {
		return err
	}
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	init.Params.ClientInfo = mcp.Implementation{Name: "quickstart", Version: "1.0.0"}
	if _, err := c.Initialize(ctx, init); err != nil {
		_ = c.Close()
		return fmt.Errorf("%s: initialize: %w", u.name, err)
	}
	u.client = c
	return nil
}

func (u *user) close() {
	if u.client != nil {
		_ = u.client.Close()
	}
}

func (u *user) tools(ctx context.Context) []string {
	res, err := u.client.ListTools(ctx, mcp.ListToolsRequest{})
	if err != nil {
		u.ck.check(false, "%s: tools/list: %v", u.name, err)
		return nil
	}
	var names []string
	for _, t := range res.Tools {
		names = append(names, t.Name)
	}
	slices.Sort(names)
	return names
}

// call calls a tool and returns its text and whether it is a tool error.
// A failed request counts as a failed check.
func (u *user) call(ctx context.Context, tool string, args map[string]any) (string, bool) {
	res, err := u.client.CallTool(ctx, toolCall(tool, args))
	if err != nil {
		u.ck.check(false, "%s: %s: %v", u.name, tool, err)
		return "", true
	}
	var texts []string
	for _, c := range res.Content {
		if t, ok := c.(mcp.TextContent); ok {
			texts = append(texts, t.Text)
		}
	}
	return strings.Join(texts, " "), res.IsError
}

func (u *user) last() response { return u.rt.last() }

func toolCall(name string, args map[string]any) mcp.CallToolRequest {
	return mcp.CallToolRequest{Params: mcp.CallToolParams{Name: name, Arguments: args}}
}

// recorder is an http.RoundTripper that remembers the last response's
// status and headers, to show what the mcp-go client received.
type recorder struct {
	next http.RoundTripper
	mu   sync.Mutex
	resp response
	r429 response // the first 429
}

type response struct {
	status     int
	challenge  string
	retryAfter string
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.next.RoundTrip(req)
	if err == nil && req.Method == http.MethodPost {
		r.mu.Lock()
		r.resp = response{resp.StatusCode, resp.Header.Get("WWW-Authenticate"), resp.Header.Get("Retry-After")}
		if resp.StatusCode == http.StatusTooManyRequests && r.r429.status == 0 {
			r.r429 = r.resp
		}
		r.mu.Unlock()
	}
	return resp, err
}

func (r *recorder) last() response {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.resp
}

func (r *recorder) limited() response {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.r429
}

// checker prints the transcript and counts the checks.
type checker struct {
	out    io.Writer
	passed int
	failed []string
}

func (c *checker) section(title string) { fmt.Fprintf(c.out, "\n%s\n", title) }

func (c *checker) say(format string, args ...any) {
	fmt.Fprintf(c.out, "   "+format+"\n", args...)
}

func (c *checker) check(ok bool, format string, args ...any) {
	what := fmt.Sprintf(format, args...)
	if ok {
		c.passed++
		fmt.Fprintf(c.out, "   ✓ %s\n", what)
		return
	}
	c.failed = append(c.failed, what)
	fmt.Fprintf(c.out, "   ✗ FAILED: %s\n", what)
}

func (c *checker) result() error {
	if n := len(c.failed); n > 0 {
		fmt.Fprintf(c.out, "\n%d of %d checks failed.\n", n, c.passed+n)
		return fmt.Errorf("%d of %d checks failed: %s", n, c.passed+n, strings.Join(c.failed, "; "))
	}
	fmt.Fprintf(c.out, "\nAll %d checks passed.\n", c.passed)
	return nil
}

func post(ctx context.Context, url, body string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	_ = resp.Body.Close()
	return resp, nil
}

func getJSON(ctx context.Context, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: HTTP %d", url, resp.StatusCode)
	}
	return json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(v)
}

// syncBuffer collects audit lines written from the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
