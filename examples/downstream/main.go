// Command downstream shows an MCP tool calling a downstream API as the
// user, with the user's token exchanged (RFC 8693) rather than passed
// through.
//
// Everything runs on loopback: the test identity provider
// (auth/authtest), a small "calendar" API that accepts only tokens issued
// for itself, and an MCP server (mcp-go Streamable HTTP behind
// auth.Middleware) whose list_events tool calls the calendar through
// obo's http.Client. An MCP client then calls the tool as alice.
//
//	go run ./examples/downstream
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/auth/authtest"
	"github.com/mcpguard/mcpguard/obo"
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := run(ctx, os.Stdout); err != nil {
		log.Fatal(err)
	}
}

// The MCP server's OAuth client registration at the identity provider.
const (
	mcpClientID     = "mcp-server"
	mcpClientSecret = "demo-secret-not-for-production"
)

// demo is the running system.
type demo struct {
	idp         *authtest.Server
	calendar    *calendarAPI
	calendarURL string
	mcpURL      string
	servers     []*http.Server
	closers     []func()
}

// run starts the demo, calls the tool as alice, shows that the calendar
// refuses alice's inbound token, and stops.
func run(ctx context.Context, out io.Writer) error {
	d, err := start()
	if err != nil {
		return err
	}
	defer d.Close()

	inbound, err := d.idp.Mint(map[string]any{"sub": "alice", "scope": "calendar:read"})
	if err != nil {
		return err
	}
	text, err := d.callTool(ctx, inbound)
	if err != nil {
		return err
	}
	fmt.Fprintln(out, "tool result:", text)

	// Passing the inbound token through would not even work: its audience
	// is the MCP server, and the calendar checks the audience.
	status, err := d.directCall(ctx, inbound)
	if err != nil {
		return err
	}
	fmt.Fprintln(out, "calendar called with the inbound token:", status)
	return nil
}

// start brings everything up on 127.0.0.1.
func start() (d *demo, err error) {
	d = &demo{}
	defer func() {
		if err != nil {
			d.Close()
		}
	}()
	mcpLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	d.closers = append(d.closers, func() { _ = mcpLn.Close() })
	calLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	d.closers = append(d.closers, func() { _ = calLn.Close() })
	d.mcpURL = "http://" + mcpLn.Addr().String() + "/mcp"
	d.calendarURL = "http://" + calLn.Addr().String()

	// The identity provider issues tokens for the MCP server (its
	// audience) and exchanges them for the calendar.
	d.idp, err = authtest.New(authtest.Config{Audience: d.mcpURL})
	if err != nil {
		return nil, err
	}
	d.closers = append(d.closers, d.idp.Close)
	if err := d.idp.RegisterClient(authtest.Client{ID: mcpClientID, Secret: mcpClientSecret}); err != nil {
		return nil, err
	}

	// The downstream API.
	d.calendar, err = newCalendarAPI(d.idp.Issuer(), d.calendarURL)
	if err != nil {
		return nil, err
	}
	d.closers = append(d.closers, d.calendar.Close)
	d.serve(calLn, d.calendar)

	// The MCP server.
	h, closeMCP, err := newMCPHandler(d.idp.Issuer(), d.mcpURL, d.calendarURL)
	if err != nil {
		return nil, err
	}
	d.closers = append(d.closers, closeMCP)
	d.serve(mcpLn, h)
	return d, nil
}

func (d *demo) serve(ln net.Listener, h http.Handler) {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	d.servers = append(d.servers, srv)
	go func() { _ = srv.Serve(ln) }()
}

// Close stops every server.
func (d *demo) Close() {
	for _, s := range d.servers {
		_ = s.Close()
	}
	for i := len(d.closers) - 1; i >= 0; i-- {
		d.closers[i]()
	}
}

// newMCPHandler builds the MCP server: bearer validation for its own
// audience, then mcp-go's Streamable HTTP server with one tool that calls
// the calendar as the user.
func newMCPHandler(issuer, resource, calendarURL string) (http.Handler, func(), error) {
	v, err := auth.NewJWTValidator(auth.JWTConfig{Issuer: issuer, Audience: resource})
	if err != nil {
		return nil, nil, err
	}
	ex, err := obo.New(obo.Config{
		Issuer:       issuer, // token endpoint discovered from its metadata
		ClientID:     mcpClientID,
		ClientSecret: auth.NewCredential(mcpClientSecret),
	})
	if err != nil {
		_ = v.Close()
		return nil, nil, err
	}
	calendar, err := ex.Client(obo.Target{
		Flavor:   obo.TokenExchange,
		Audience: calendarURL,
		Scopes:   []string{"calendar.read"},
	}, nil)
	if err != nil {
		_ = v.Close()
		return nil, nil, err
	}

	s := server.NewMCPServer("downstream-demo", "1.0.0", server.WithToolCapabilities(false))
	s.AddTool(mcp.NewTool("list_events", mcp.WithDescription("List the caller's calendar events")),
		func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return listEvents(ctx, calendar, calendarURL)
		})

	mux := http.NewServeMux()
	metaURL, err := auth.MountMetadata(mux, auth.MetadataConfig{
		Resource:             resource,
		AuthorizationServers: []string{issuer},
	})
	if err != nil {
		_ = v.Close()
		return nil, nil, err
	}
	authn, err := auth.Middleware(v, auth.MiddlewareConfig{ResourceMetadataURL: metaURL})
	if err != nil {
		_ = v.Close()
		return nil, nil, err
	}
	mux.Handle("/mcp", authn(server.NewStreamableHTTPServer(s)))
	return mux, func() { _ = v.Close() }, nil
}

// listEvents is the tool: ctx carries the caller's credential (put there
// by auth.Middleware), which the obo client exchanges for a calendar token.
func listEvents(ctx context.Context, calendar *http.Client, calendarURL string) (*mcp.CallToolResult, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, calendarURL+"/events", nil)
	if err != nil {
		return nil, err
	}
	resp, err := calendar.Do(req)
	if err != nil {
		var oe *obo.Error
		if errors.As(err, &oe) && oe.InteractionRequired() {
			return mcp.NewToolResultError("please sign in again to grant calendar access"), nil
		}
		return mcp.NewToolResultError("the calendar is unavailable"), nil
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil || resp.StatusCode != http.StatusOK {
		return mcp.NewToolResultError(fmt.Sprintf("the calendar answered %d", resp.StatusCode)), nil
	}
	return mcp.NewToolResultText(string(body)), nil
}

// calendarAPI is the downstream API. It accepts only tokens issued for its
// own audience by the identity provider, and records what it saw.
type calendarAPI struct {
	v        *auth.JWTValidator
	audience string

	mu   sync.Mutex
	seen []string // Authorization headers received, for the test
}

func newCalendarAPI(issuer, audience string) (*calendarAPI, error) {
	v, err := auth.NewJWTValidator(auth.JWTConfig{Issuer: issuer, Audience: audience})
	if err != nil {
		return nil, err
	}
	return &calendarAPI{v: v, audience: audience}, nil
}

// Close releases the validator.
func (c *calendarAPI) Close() { _ = c.v.Close() }

// Seen returns the Authorization headers received so far.
func (c *calendarAPI) Seen() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.seen...)
}

func (c *calendarAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	c.seen = append(c.seen, r.Header.Get("Authorization"))
	c.mu.Unlock()
	raw, err := auth.BearerToken(r, 0)
	if err != nil {
		http.Error(w, "a bearer token is required", http.StatusUnauthorized)
		return
	}
	// The audience check is what refuses a passed-through inbound token.
	p, err := c.v.Validate(r.Context(), raw)
	if err != nil {
		http.Error(w, "the token is not for this API", http.StatusUnauthorized)
		return
	}
	// An exchanged token names the service acting for the user (RFC 8693
	// §4.1); a token without act was not obtained by exchange.
	actor, ok := p.Claims.String("act.sub")
	if !ok {
		http.Error(w, "a delegated token is required", http.StatusForbidden)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"user":     p.Subject,
		"actor":    actor,
		"audience": strings.Join(p.Audience, " "),
		"events":   []string{"09:00 stand-up", "14:00 design review"},
	})
}

// callTool connects an MCP client with the inbound token and calls
// list_events, returning the tool's text.
func (d *demo) callTool(ctx context.Context, inbound string) (string, error) {
	c, err := client.NewStreamableHttpClient(d.mcpURL,
		transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + inbound}))
	if err != nil {
		return "", err
	}
	defer c.Close()
	if err := c.Start(ctx); err != nil {
		return "", err
	}
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	init.Params.ClientInfo = mcp.Implementation{Name: "downstream-demo-client", Version: "1.0.0"}
	if _, err := c.Initialize(ctx, init); err != nil {
		return "", fmt.Errorf("initialize: %w", err)
	}
	call := mcp.CallToolRequest{}
	call.Params.Name = "list_events"
	res, err := c.CallTool(ctx, call)
	if err != nil {
		return "", fmt.Errorf("call: %w", err)
	}
	var texts []string
	for _, content := range res.Content {
		if tc, ok := content.(mcp.TextContent); ok {
			texts = append(texts, strings.TrimSpace(tc.Text))
		}
	}
	if res.IsError {
		return "", fmt.Errorf("tool error: %s", strings.Join(texts, " "))
	}
	return strings.Join(texts, " "), nil
}

// directCall sends the inbound token straight to the calendar and returns
// the status it answers.
func (d *demo) directCall(ctx context.Context, inbound string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.calendarURL+"/events", nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+inbound)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}
