// Command bare is the baseline of the process-against-process load run: a
// plain mcp-go Streamable HTTP server, no authentication, with a whoami
// tool that answers the same JSON shape as examples/prodmode's (from fixed
// values, since there is no caller to read). It is configured like
// prodmode, so that the two children differ only in mcpguard:
//
//	MCPGUARD_ADDR        listen address (default 127.0.0.1:0)
//	MCPGUARD_CPUPROFILE  write a CPU profile of the run to this file on shutdown (optional)
//	MCPGUARD_BARE_WORK   a duration of CPU the whoami handler burns per call (optional; a
//	                     calibration: how process-level CPU per call grows with a server's own work)
//
// When ready it prints "listening on <URL>" to stdout; SIGTERM or an
// interrupt stops it. Run it through the proc command:
//
//	cd loadtest && go run ./cmd/proc
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "bare:", err)
		os.Exit(1)
	}
}

// identity is the shape of prodmode's whoami answer.
type identity struct {
	Subject  string   `json:"subject"`
	Tenant   string   `json:"tenant"`
	ClientID string   `json:"client_id"`
	Scopes   []string `json:"scopes"`
}

// burn keeps the CPU busy for d of wall time: on a core of its own, d of
// CPU.
func burn(d time.Duration) {
	for start := time.Now(); time.Since(start) < d; {
	}
}

func whoami(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	b, err := json.Marshal(identity{Subject: "load-0", Tenant: "load", ClientID: "loadtest", Scopes: []string{"notes:read"}})
	if err != nil {
		return nil, err
	}
	return mcp.NewToolResultText(string(b)), nil
}

func run(ctx context.Context, getenv func(string) string, stdout, stderr io.Writer) (err error) {
	addr := strings.TrimSpace(getenv("MCPGUARD_ADDR"))
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	if path := strings.TrimSpace(getenv("MCPGUARD_CPUPROFILE")); path != "" {
		f, err := os.Create(path)
		if err != nil {
			return fmt.Errorf("MCPGUARD_CPUPROFILE: %w", err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			_ = f.Close()
			return fmt.Errorf("MCPGUARD_CPUPROFILE: %w", err)
		}
		defer func() {
			pprof.StopCPUProfile()
			if cerr := f.Close(); cerr != nil && err == nil {
				err = fmt.Errorf("MCPGUARD_CPUPROFILE: %w", cerr)
			}
		}()
	}
	logger := slog.New(slog.NewJSONHandler(stderr, nil))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("MCPGUARD_ADDR: %w", err)
	}
	defer ln.Close()

	handler := whoami
	if v := strings.TrimSpace(getenv("MCPGUARD_BARE_WORK")); v != "" {
		work, err := time.ParseDuration(v)
		if err != nil || work < 0 || work > time.Second {
			return fmt.Errorf("MCPGUARD_BARE_WORK %q: want a duration in [0, 1s]", v)
		}
		handler = func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			burn(work)
			return whoami(ctx, req)
		}
	}
	srv := server.NewMCPServer("notes", "1.0.0")
	srv.AddTool(mcp.NewTool("whoami",
		mcp.WithDescription("Who the server thinks you are: subject, tenant, OAuth client and scopes."),
		mcp.WithReadOnlyHintAnnotation(true),
	), handler)
	h := server.NewStreamableHTTPServer(srv,
		server.WithSessionIdleTTL(15*time.Minute),
		server.WithStreamableHTTPLogger(logger),
	)
	hs := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	fmt.Fprintf(stdout, "listening on http://%s/mcp\n", ln.Addr())

	select {
	case err := <-served:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
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
