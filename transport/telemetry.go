package transport

import (
	"fmt"
	"net/http"

	"github.com/mark3labs/mcp-go/server"

	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/telemetry"
)

// setupTelemetry builds the Guard's telemetry when a provider is set and
// connects it to the audit stream, where the decisions are, and to the
// session counts when they can say how many slots they hold (Len, as
// MemorySessionCounts does; a shared store without it reports no gauge).
func (g *Guard) setupTelemetry(cfg *Config) error {
	tc := cfg.Telemetry
	if tc.MeterProvider != nil || tc.TracerProvider != nil {
		return fmt.Errorf("%w: Config.Telemetry's providers must be nil: set Config.MeterProvider and Config.TracerProvider", ErrConfig)
	}
	if cfg.MeterProvider == nil && cfg.TracerProvider == nil {
		return nil
	}
	tc.MeterProvider, tc.TracerProvider = cfg.MeterProvider, cfg.TracerProvider
	tel, err := telemetry.New(tc)
	if err != nil {
		return fmt.Errorf("%w: Config.Telemetry: %w", ErrConfig, err)
	}
	if !tel.Active() {
		return nil // the API's no-op providers: nothing to record, nothing installed
	}
	if cfg.Audit != nil {
		if err := cfg.Audit.SetObserver(tel); err != nil {
			return fmt.Errorf("%w: Config.Audit: %w", ErrConfig, err)
		}
		if err := tel.ObserveRecorder(cfg.Audit); err != nil {
			return fmt.Errorf("%w: Config.Audit: %w", ErrConfig, err)
		}
	}
	if s, ok := cfg.Validator.(interface{ SetObserver(auth.Observer) error }); ok {
		// Cache lookups, cold validations, introspections and key-set
		// fetches (auth's own hook; a validator without one reports none).
		if err := s.SetObserver(tel); err != nil {
			return fmt.Errorf("%w: Config.Validator: %w (a validator reports to one Guard's telemetry)", ErrConfig, err)
		}
	}
	if k, ok := cfg.Validator.(interface{ KeySet() auth.KeySetInfo }); ok {
		if err := tel.ObserveKeySet(k.KeySet); err != nil {
			return fmt.Errorf("%w: Config.Validator: %w", ErrConfig, err)
		}
	}
	for _, l := range cfg.requestLimits() {
		// Every decision, allowed ones with their headroom.
		if err := l.m.SetObserver(tel); err != nil {
			return fmt.Errorf("%w: Config.%s: %w (a limit reports to one Guard's telemetry)", ErrConfig, l.field, err)
		}
	}
	if cfg.ToolBudgets != nil {
		// Every budgeted call's decision (the copy g.budgets shares the slot).
		if err := cfg.ToolBudgets.SetObserver(tel); err != nil {
			return fmt.Errorf("%w: Config.ToolBudgets: %w (tool budgets report to one Guard's telemetry)", ErrConfig, err)
		}
	}
	if n, ok := g.sessions.counts.(interface{ Len() int }); ok {
		if err := tel.ObserveSessions(n.Len); err != nil {
			return fmt.Errorf("%w: Config.Sessions: %w", ErrConfig, err)
		}
	}
	g.tel = tel
	return nil
}

// Telemetry returns the Guard's telemetry, nil when it is off (no
// providers, or the API's no-op ones). Hand it to the components the Guard
// does not build, for instance as an obo.Exchanger's
// Config.Observer: obo.Config{Observer: g.Telemetry()} (a nil
// *telemetry.Telemetry ignores what it is told, so this works either way).
func (g *Guard) Telemetry() *telemetry.Telemetry { return g.tel }

// telemetryBegin starts the MCP span once Edge has read the body.
func telemetryBegin(tel *telemetry.Telemetry, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := bodyFromContext(r.Context())
		next.ServeHTTP(w, r.WithContext(tel.Begin(r, body)))
	})
}

// registeredIn reports whether srv has the tool (tools/call) or prompt
// (prompts/get) of a name, for telemetry's tool-name slots; nil for a nil
// srv. Task tools and session tools are not in srv's table: their names
// count as telemetry.Other. ListPrompts copies srv's table, so a prompts/get
// costs one map when ToolAttribute is on (mcp-go has no single-prompt
// lookup); tools/call uses GetTool.
func registeredIn(srv *server.MCPServer) func(method, name string) bool {
	if srv == nil {
		return nil
	}
	return func(method, name string) bool {
		switch method {
		case "tools/call":
			return srv.GetTool(name) != nil
		case "prompts/get":
			_, ok := srv.ListPrompts()[name]
			return ok
		}
		return false
	}
}
