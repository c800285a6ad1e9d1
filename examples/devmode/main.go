// Command devmode serves the same notes tools as prodmode with no
// authentication, for local work: every request acts as a fixed developer
// principal (tenant "dev", scopes notes:read and notes:write), and the same
// policy and audit run as in production. It listens on loopback only.
//
//	MCPGUARD_ADDR  listen address, loopback only (default 127.0.0.1:8080)
//
//	go run ./examples/devmode
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/mark3labs/mcp-go/server"

	"github.com/mcpguard/mcpguard/audit"
	"github.com/mcpguard/mcpguard/authz"
	"github.com/mcpguard/mcpguard/examples/internal/notes"
	"github.com/mcpguard/mcpguard/transport"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "devmode:", err)
		os.Exit(1)
	}
}

// run serves until ctx is done. A non-loopback MCPGUARD_ADDR is refused
// before anything listens.
func run(ctx context.Context, getenv func(string) string, stdout, stderr io.Writer) error {
	addr := getenv("MCPGUARD_ADDR")
	if addr == "" {
		addr = "127.0.0.1:8080"
	}
	logger := slog.New(slog.NewJSONHandler(stderr, nil))
	policy, err := authz.New(authz.Config{
		ReadScope:  notes.ScopeRead,
		WriteScope: notes.ScopeWrite,
		ToolRules:  map[string]authz.Rule{"whoami": {Authenticated: true}},
	})
	if err != nil {
		return err
	}
	sink, err := audit.NewJSONSink(stderr)
	if err != nil {
		return err
	}
	rec, err := audit.New(audit.Config{Sink: sink, Mode: audit.Async, OnFull: audit.DropAndCount})
	if err != nil {
		return err
	}
	defer rec.Close()

	guard, err := transport.New(transport.Config{
		Mode:   transport.ModeDev, // refuses an address off loopback
		Addr:   addr,
		Policy: policy,
		Dev: transport.DevIdentity{
			Subject: "developer",
			Tenant:  "dev",
			Scopes:  []string{notes.ScopeRead, notes.ScopeWrite},
		},
		Audit:       rec,
		HTTPOptions: []server.StreamableHTTPOption{server.WithStreamableHTTPLogger(logger)},
		Logger:      logger,
	})
	if err != nil {
		return fmt.Errorf("MCPGUARD_ADDR: %w", err)
	}
	srv := server.NewMCPServer("notes", "1.0.0", guard.ServerOptions()...)
	notes.AddTools(srv, notes.NewStore(notes.Limits{}))

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("MCPGUARD_ADDR: %w", err)
	}
	hs := &http.Server{Handler: guard.Handler(srv), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	fmt.Fprintf(stdout, "listening on http://%s/mcp\n", ln.Addr())

	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(shutdown); err != nil {
		_ = hs.Close()
	}
	return nil
}
