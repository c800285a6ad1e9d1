// Command multitenant shows one notes server shared by several customer
// organizations, each seeing only its own notes and only the tools its plan
// includes:
//
//   - the tenant comes from the token's "org_id" claim (Auth0
//     Organizations; tenancy.ClaimAuth0Org), and only listed tenants are
//     served (tenancy.Config.Allowed);
//   - scopes come from Auth0's "permissions" claim (the authz.Auth0 preset);
//   - each tenant has a tool allow-list (authz.Config.TenantTools): the
//     free plan has no notes_write, whatever scopes its users hold;
//   - each tenant has its own request rate (ratelimit's Tenants).
//
// Everything runs on loopback with the test identity provider. It prints
// what each user sees and exits 0 when everything behaved as described.
//
//	go run ./examples/multitenant
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
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
		fmt.Fprintln(os.Stderr, "multitenant:", err)
		os.Exit(1)
	}
}

// The plans: which tools each tenant may use, and how fast its users may
// call (requests per second per user; bursts of twice that).
var (
	tenantTools = map[string][]string{
		"acme":   {"whoami", "notes_list", "notes_read", "notes_write"}, // pro
		"globex": {"whoami", "notes_list", "notes_read"},                // free: read-only
	}
	tenantRates = map[string]int{"acme": 50, "globex": 5}
)

// newHandler wires the multi-tenant server.
func newHandler(issuer, resource string) (http.Handler, func() error, error) {
	scopes, err := authz.Auth0(authz.PresetConfig{}) // "scope" and "permissions"
	if err != nil {
		return nil, nil, err
	}
	validator, err := auth.NewJWTValidator(auth.JWTConfig{Issuer: issuer, Audience: resource, ScopeMapper: scopes})
	if err != nil {
		return nil, nil, err
	}
	tenants, err := tenancy.New(tenancy.Config{
		Claim:   tenancy.ClaimAuth0Org,
		Allowed: slices.Sorted(maps.Keys(tenantTools)), // nobody else is served
	})
	if err != nil {
		_ = validator.Close()
		return nil, nil, err
	}
	policy, err := authz.New(authz.Config{
		ReadScope:   notes.ScopeRead,
		WriteScope:  notes.ScopeWrite,
		ToolRules:   map[string]authz.Rule{"whoami": {Authenticated: true}},
		TenantTools: tenantTools, // on top of the scopes: the tenant's plan
	})
	if err != nil {
		_ = validator.Close()
		return nil, nil, err
	}
	limiter, err := ratelimit.NewMemory(ratelimit.MemoryConfig{})
	if err != nil {
		_ = validator.Close()
		return nil, nil, err
	}
	perTenant := map[string]ratelimit.Limit{}
	for t, r := range tenantRates {
		perTenant[t] = ratelimit.Limit{Events: r, Period: time.Second, Burst: 2 * r}
	}
	requests, err := ratelimit.NewRequestLimit(ratelimit.RequestLimitConfig{
		Limiter: limiter,
		Limit:   ratelimit.Limit{Events: 1, Period: time.Second, Burst: 2}, // any tenant without a plan
		Tenants: perTenant,
	})
	if err != nil {
		_ = validator.Close()
		return nil, nil, err
	}
	guard, err := transport.New(transport.Config{
		Resource:             resource,
		AuthorizationServers: []string{issuer},
		Validator:            validator,
		Policy:               policy,
		Tenancy:              tenants,
		RateLimit:            requests,
	})
	if err != nil {
		_ = validator.Close()
		return nil, nil, err
	}
	srv := server.NewMCPServer("notes", "1.0.0", guard.ServerOptions()...)
	notes.AddTools(srv, notes.NewStore(notes.Limits{}))
	return guard.Handler(srv), validator.Close, nil
}

// run starts the identity provider and the server, then acts as users of
// three organizations.
func run(ctx context.Context, out io.Writer) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	resource := "http://" + ln.Addr().String() + "/mcp"
	idp, err := authtest.New(authtest.Config{Algorithms: []string{"RS256"}, Audience: resource})
	if err != nil {
		_ = ln.Close()
		return err
	}
	defer idp.Close()
	h, closeHandler, err := newHandler(idp.Issuer(), resource)
	if err != nil {
		_ = ln.Close()
		return err
	}
	defer closeHandler()
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	defer hs.Close()

	both := []string{notes.ScopeRead, notes.ScopeWrite}
	signIn := func(name, org string) string {
		fmt.Fprintf(out, "%s of %s signs in with permissions %v\n", name, org, both)
		return idp.MustMint(map[string]any{"sub": name, "org_id": org, "permissions": both})
	}

	// acme (pro): every tool.
	fmt.Fprintln(out)
	ann, err := connect(ctx, resource, signIn("ann", "acme"))
	if err != nil {
		return err
	}
	defer ann.Close()
	tools, err := toolNames(ctx, ann)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "  tools: %s\n", strings.Join(tools, ", "))
	if !slices.Contains(tools, "notes_write") {
		return errors.New("acme's plan includes notes_write, but ann does not see it")
	}
	if text, err := callText(ctx, ann, "notes_write", map[string]any{"key": "roadmap", "text": "acme's roadmap"}); err != nil || text != "saved" {
		return fmt.Errorf("ann's notes_write: %q, %v", text, err)
	}
	fmt.Fprintln(out, "  notes_write roadmap → saved")

	// globex (free): read-only, whatever gus's permissions say.
	fmt.Fprintln(out)
	gus, err := connect(ctx, resource, signIn("gus", "globex"))
	if err != nil {
		return err
	}
	defer gus.Close()
	if tools, err = toolNames(ctx, gus); err != nil {
		return err
	}
	fmt.Fprintf(out, "  tools: %s\n", strings.Join(tools, ", "))
	if slices.Contains(tools, "notes_write") {
		return errors.New("globex's plan has no notes_write, but gus sees it")
	}
	_, err = callText(ctx, gus, "notes_write", map[string]any{"key": "roadmap", "text": "globex's roadmap"})
	if err == nil {
		return errors.New("gus could call notes_write, which globex's plan does not include")
	}
	fmt.Fprintf(out, "  notes_write roadmap → refused: %v\n", err)
	text, err := callText(ctx, gus, "notes_read", map[string]any{"key": "roadmap"})
	fmt.Fprintf(out, "  notes_read roadmap → %s\n", orError(text, err))
	if err == nil || strings.Contains(text, "acme") {
		return errors.New("gus could read acme's note")
	}

	// initech is not a customer: refused before any tool.
	fmt.Fprintln(out)
	status, body, err := post(ctx, resource, signIn("ivy", "initech"),
		`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"ivy","version":"1"}}}`)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "  initialize → HTTP %d %s\n", status, body)
	if status != http.StatusForbidden || !strings.Contains(body, tenancy.ReasonTenantNotAllowed) {
		return errors.New("ivy of initech, not a served tenant, was not refused")
	}

	// Plans differ in speed too.
	fmt.Fprintln(out)
	annServed, gusServed := burst(ctx, ann, 30), burst(ctx, gus, 30)
	fmt.Fprintf(out, "30 whoami calls at once: ann (acme, %d/s) has %d served, gus (globex, %d/s) has %d served\n",
		tenantRates["acme"], annServed, tenantRates["globex"], gusServed)
	if annServed != 30 || gusServed >= 30 {
		return errors.New("the per-tenant rates were not applied")
	}
	return nil
}

// post sends one JSON-RPC request and returns the status and body.
func post(ctx context.Context, url, token, body string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, strings.TrimSpace(string(b)), err
}

func connect(ctx context.Context, resource, token string) (*client.Client, error) {
	c, err := client.NewStreamableHttpClient(resource,
		mcptransport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + token}))
	if err != nil {
		return nil, err
	}
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	init.Params.ClientInfo = mcp.Implementation{Name: "multitenant-demo", Version: "1.0.0"}
	if _, err := c.Initialize(ctx, init); err != nil {
		_ = c.Close()
		return nil, err
	}
	return c, nil
}

func toolNames(ctx context.Context, c *client.Client) ([]string, error) {
	res, err := c.ListTools(ctx, mcp.ListToolsRequest{})
	if err != nil {
		return nil, err
	}
	var names []string
	for _, t := range res.Tools {
		names = append(names, t.Name)
	}
	slices.Sort(names)
	return names, nil
}

// callText calls a tool; a tool error is returned as an error.
func callText(ctx context.Context, c *client.Client, name string, args map[string]any) (string, error) {
	res, err := c.CallTool(ctx, mcp.CallToolRequest{Params: mcp.CallToolParams{Name: name, Arguments: args}})
	if err != nil {
		return "", err
	}
	var texts []string
	for _, content := range res.Content {
		if t, ok := content.(mcp.TextContent); ok {
			texts = append(texts, t.Text)
		}
	}
	text := strings.Join(texts, " ")
	if res.IsError {
		return text, errors.New(text)
	}
	return text, nil
}

func orError(text string, err error) string {
	if err != nil {
		return "error: " + err.Error()
	}
	return text
}

// burst makes n calls at once and returns how many were served.
func burst(ctx context.Context, c *client.Client, n int) int {
	var wg sync.WaitGroup
	var mu sync.Mutex
	served := 0
	for range n {
		wg.Go(func() {
			if _, err := callText(ctx, c, "whoami", nil); err == nil {
				mu.Lock()
				served++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return served
}
