package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcpguard/mcpguard/audit"
	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/obo"
	"github.com/mcpguard/mcpguard/telemetry"
)

// downstreamConfig is MCPGUARD_DOWNSTREAM_URL and its companions; url empty:
// no downstream tool.
type downstreamConfig struct {
	url      string
	audience string
	clientID string
	secret   auth.Credential
}

// downstreamEnv reads the optional downstream variables. The secret never
// appears in an error.
func downstreamEnv(getenv func(string) string, cfg *config) error {
	u := strings.TrimSpace(getenv("MCPGUARD_DOWNSTREAM_URL"))
	if u == "" {
		for _, name := range []string{"MCPGUARD_DOWNSTREAM_AUDIENCE", "MCPGUARD_CLIENT_ID", "MCPGUARD_CLIENT_SECRET"} {
			if strings.TrimSpace(getenv(name)) != "" {
				return fmt.Errorf("%s is set without MCPGUARD_DOWNSTREAM_URL", name)
			}
		}
		return nil
	}
	if err := checkURL(u, true); err != nil {
		return fmt.Errorf("MCPGUARD_DOWNSTREAM_URL %q: %v", shownURL(u), err)
	}
	d := downstreamConfig{
		url:      u,
		audience: strings.TrimSpace(getenv("MCPGUARD_DOWNSTREAM_AUDIENCE")),
		clientID: strings.TrimSpace(getenv("MCPGUARD_CLIENT_ID")),
		secret:   auth.NewCredential(strings.TrimSpace(getenv("MCPGUARD_CLIENT_SECRET"))),
	}
	if d.audience == "" {
		d.audience = u
	}
	if d.clientID == "" || d.secret.IsZero() {
		return errors.New("MCPGUARD_CLIENT_ID and MCPGUARD_CLIENT_SECRET are required with MCPGUARD_DOWNSTREAM_URL: this server's client at the issuer, for token exchange")
	}
	cfg.downstream = d
	return nil
}

// maxDownstreamBody caps what downstream_get returns of the answer.
const maxDownstreamBody = 4 << 10

// addDownstream registers downstream_get (read-only, so notes:read): it
// exchanges the caller's token for MCPGUARD_DOWNSTREAM_AUDIENCE (RFC 8693,
// token endpoint discovered from the issuer; with Redis the exchanged
// token is cached for every replica, sealed) and GETs
// MCPGUARD_DOWNSTREAM_URL with it, answering {"status","body"} (the body
// cut at 4 KiB). The caller's own token is never sent downstream.
func addDownstream(srv *server.MCPServer, cfg config, rec *audit.Recorder, sh *shared, tel *telemetry.Telemetry) error {
	d := cfg.downstream
	ocfg := obo.Config{
		Issuer:       cfg.issuer,
		ClientID:     d.clientID,
		ClientSecret: d.secret,
		Audit:        rec,
	}
	if tel != nil {
		// Exchanged-token cache hits and misses, a span per exchange.
		ocfg.Observer = tel
	}
	if sh != nil {
		ocfg.SharedCache = sh.tokens
	}
	ex, err := obo.New(ocfg)
	if err != nil {
		return fmt.Errorf("MCPGUARD_CLIENT_ID, MCPGUARD_CLIENT_SECRET or MCPGUARD_ISSUER: %w", err)
	}
	target := obo.Target{Flavor: obo.TokenExchange, Audience: d.audience}
	client := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	srv.AddTool(mcp.NewTool("downstream_get",
		mcp.WithDescription("Call the downstream API as you (your token exchanged for its audience) and return its answer."),
		mcp.WithReadOnlyHintAnnotation(true),
		mcp.WithOpenWorldHintAnnotation(true),
	), func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		tok, err := ex.Token(ctx, target)
		if err != nil {
			return mcp.NewToolResultError("the token exchange for the downstream API failed"), nil
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.url, nil)
		if err != nil {
			return mcp.NewToolResultError("the downstream request could not be built"), nil
		}
		tok.SetAuthHeader(req)
		resp, err := client.Do(req)
		if err != nil {
			return mcp.NewToolResultError("the downstream API did not answer"), nil
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, maxDownstreamBody))
		out, _ := json.Marshal(map[string]any{"status": resp.StatusCode, "body": string(body)})
		return mcp.NewToolResultText(string(out)), nil
	})
	return nil
}
