// Command conformance-server serves the MCP conformance fixture server on
// loopback, bare or wrapped by mcpguard's production stack behind a
// token-adding reverse proxy, for running the conformance suite by hand.
//
// Usage:
//
//	conformance-server [-addr 127.0.0.1:3001] [-guard]
//
// The MCP endpoint is http://ADDR/mcp; http://ADDR/health answers 200.
package main

import (
	"context"
	"flag"
	"log"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/mcpguard/mcpguard/e2e/conformance"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:3001", "loopback address to listen on")
	guard := flag.Bool("guard", false, "wrap the server with mcpguard's prod stack behind a token-adding proxy")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv, err := conformance.Start(ctx, conformance.Options{Addr: *addr, Guarded: *guard, Logger: slog.Default()})
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("conformance server (guarded=%v) on %s", *guard, srv.URL)
	<-ctx.Done()
	srv.Close()
}
