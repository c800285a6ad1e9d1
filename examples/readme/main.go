// Command readme is the README's "Add it to your server" wiring, whole: a
// two-tool notes server with JWT auth from an issuer, per-tool scopes, the
// Auth0 org_id claim as tenant, a per-user rate limit, audit to stderr and
// a -dev flag for local runs without tokens. Its main is the README
// snippet, line for line (TestReadmeSnippet keeps them equal and runs it).
//
//	RESOURCE=https://notes.example.com/mcp ISSUER=https://example.us.auth0.com/ go run ./examples/readme
//	DEV=1 go run ./examples/readme
package main

import (
	"cmp"
	"errors"
	"log"
	"net/http"
	"os"

	"github.com/mark3labs/mcp-go/server"

	"github.com/mcpguard/mcpguard/audit"
	"github.com/mcpguard/mcpguard/transport"
	"github.com/mcpguard/mcpguard/transport/ratelimit"
)

func main() {
	addr := cmp.Or(os.Getenv("ADDR"), "127.0.0.1:8080")
	sink, _ := audit.NewJSONSink(os.Stderr)
	recorder, err1 := audit.New(audit.Config{Sink: sink, Mode: audit.Async})
	perUser, err2 := ratelimit.NewRequestLimit(ratelimit.RequestLimitConfig{Limit: ratelimit.PerSecond(20)}) // per tenant and user
	if err := errors.Join(err1, err2); err != nil {
		log.Fatal(err)
	}
	defer recorder.Close()
	cfg := transport.Config{
		Resource:    os.Getenv("RESOURCE"), // https://notes.example.com/mcp: the token audience
		Issuer:      os.Getenv("ISSUER"),   // https://example.us.auth0.com/: JWKS discovered from it
		ToolScopes:  map[string][]string{"notes_read": {"notes:read"}, "notes_write": {"notes:write"}},
		TenantClaim: "org_id", // Auth0 organizations
		RateLimit:   perUser,
		Audit:       recorder,
	}
	if os.Getenv("DEV") != "" { // no tokens: every request acts as this caller, from loopback only
		cfg = transport.Config{Mode: transport.ModeDev, Addr: addr, ToolScopes: cfg.ToolScopes, Audit: recorder,
			Dev: transport.DevIdentity{Tenant: "dev", Scopes: []string{"notes:read", "notes:write"}}}
	}
	guard, err := transport.New(cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer guard.Close()
	srv := server.NewMCPServer("notes", "1.0", guard.ServerOptions()...)
	srv.AddTools(notesTools...) // your tools, unchanged
	log.Fatal(http.ListenAndServe(addr, guard.Handler(srv)))
}
