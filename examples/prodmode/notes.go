package main

import (
	"context"
	"errors"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/authz"
	"github.com/mcpguard/mcpguard/examples/internal/notes"
	"github.com/mcpguard/mcpguard/tenancy"
)

// scopeAdmin guards the notes under notesPrivatePrefix.
const scopeAdmin = "notes:admin"

const (
	notesURIPrefix     = "notes://"
	notesPrivatePrefix = "notes://private/"
	notesTemplate      = "notes://{+key}"
	maxCompletions     = 100 // what the MCP specification allows in one answer
)

// Summary is what notes_summary answers, as JSON.
type Summary struct {
	Tenant string   `json:"tenant"`
	Count  int      `json:"count"`
	Keys   []string `json:"keys"`
}

// notesRules are the policy rules of the resources and prompt below.
func notesRules() ([]authz.ResourceRule, map[string]authz.Rule) {
	return []authz.ResourceRule{
			{Prefix: notesURIPrefix, Rule: authz.Rule{AllOf: []string{notes.ScopeRead}}},
			{Prefix: notesPrivatePrefix, Rule: authz.Rule{AllOf: []string{scopeAdmin}}},
		}, map[string]authz.Rule{
			"notes_digest": {AllOf: []string{notes.ScopeRead}},
		}
}

// addNotesExtras registers what prodmode serves beside notes.AddTools: the
// notes_summary tool (read-only, task support optional), the notes://{+key}
// resource template and the notes_digest prompt. The prompt reads a note as
// the resource template does, so it is held to the note's resource rule
// too (policy): notes_digest of a key under private/ needs notes:admin.
func addNotesExtras(srv *server.MCPServer, st *notes.Store, policy *authz.Policy) {
	srv.AddTool(mcp.NewTool("notes_summary",
		mcp.WithDescription("Your tenant's notes at a glance: tenant, count and keys, as JSON."),
		mcp.WithReadOnlyHintAnnotation(true),
		mcp.WithOpenWorldHintAnnotation(false),
		mcp.WithTaskSupport(mcp.TaskSupportOptional),
	), func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		tenant, err := tenancy.Require(ctx)
		if err != nil {
			return mcp.NewToolResultError("this request has no tenant"), nil
		}
		keys, err := st.List(ctx)
		if err != nil {
			return mcp.NewToolResultError("the note store failed"), nil
		}
		return mcp.NewToolResultJSON(Summary{Tenant: tenant, Count: len(keys), Keys: keys})
	})

	srv.AddResourceTemplate(mcp.NewResourceTemplate(notesTemplate, "note",
		mcp.WithTemplateDescription("The note saved under a key (keys may contain '/'); notes://private/… needs notes:admin."),
		mcp.WithTemplateMIMEType("text/plain"),
	), func(ctx context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
		key, ok := templateKey(req.Params.Arguments)
		if !ok {
			return nil, errors.New("no key in the URI")
		}
		text, err := st.Read(ctx, key)
		if err != nil {
			return nil, noteError(err)
		}
		return []mcp.ResourceContents{mcp.TextResourceContents{URI: req.Params.URI, MIMEType: "text/plain", Text: text}}, nil
	})

	srv.AddPrompt(mcp.NewPrompt("notes_digest",
		mcp.WithPromptDescription("Summarise the note saved under a key."),
		mcp.WithArgument("key", mcp.RequiredArgument(), mcp.ArgumentDescription("the note's name")),
	), func(ctx context.Context, req mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
		key := req.Params.Arguments["key"]
		if d := mayRead(ctx, policy, key); !d.Allowed {
			return nil, d.Err()
		}
		text, err := st.Read(ctx, key)
		if err != nil {
			return nil, noteError(err)
		}
		return mcp.NewGetPromptResult("Digest of note "+key, []mcp.PromptMessage{
			mcp.NewPromptMessage(mcp.RoleUser, mcp.NewTextContent("Summarise this note in one sentence:\n\n"+text)),
		}), nil
	})
}

// templateKey is the key variable of notes://{+key} as mcp-go matched it.
func templateKey(args map[string]any) (string, bool) {
	switch v := args["key"].(type) {
	case string:
		return v, v != ""
	case []string:
		if len(v) == 1 && v[0] != "" {
			return v[0], true
		}
	}
	return "", false
}

// noteError is a store error as a client may see it.
func noteError(err error) error {
	for _, known := range []error{notes.ErrNotFound, notes.ErrBadKey} {
		if errors.Is(err, known) {
			return known
		}
	}
	if errors.Is(err, tenancy.ErrNoTenant) {
		return errors.New("this request has no tenant")
	}
	return errors.New("the note store failed")
}

// mayRead decides whether the caller in ctx may read the note at key, by
// the rule of its resource URI (notes:admin under notes://private/).
func mayRead(ctx context.Context, policy *authz.Policy, key string) authz.Decision {
	p, _ := auth.FromContext(ctx)
	return policy.Check(ctx, p, authz.MethodResourcesRead, notesURIPrefix+key)
}

// privateReads holds notes_read to the rule of the note's URI, as the
// resource template and notes_digest are: reading a note under private/
// needs notes:admin on every path. (Writing one stays open to notes:write,
// as the example's contract has it.)
func privateReads(policy *authz.Policy) server.ToolHandlerMiddleware {
	return func(next server.ToolHandlerFunc) server.ToolHandlerFunc {
		return func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			if req.Params.Name == "notes_read" {
				if key, err := req.RequireString("key"); err == nil {
					if d := mayRead(ctx, policy, key); !d.Allowed {
						return nil, d.Err()
					}
				}
			}
			return next(ctx, req)
		}
	}
}

// completions completes notes_digest's key from the caller's tenant's keys
// the caller may read.
type completions struct {
	st     *notes.Store
	policy *authz.Policy
}

func (c completions) CompletePromptArgument(ctx context.Context, prompt string, arg mcp.CompleteArgument, _ mcp.CompleteContext) (*mcp.Completion, error) {
	if prompt != "notes_digest" || arg.Name != "key" {
		return &mcp.Completion{Values: []string{}}, nil
	}
	keys, err := c.st.List(ctx)
	if err != nil {
		return nil, noteError(err)
	}
	out := &mcp.Completion{Values: []string{}}
	for _, k := range keys {
		if !strings.HasPrefix(k, arg.Value) || !mayRead(ctx, c.policy, k).Allowed {
			continue
		}
		out.Total++
		if len(out.Values) < maxCompletions {
			out.Values = append(out.Values, k)
		}
	}
	out.HasMore = out.Total > len(out.Values)
	return out, nil
}

// Bounds of the subscription registry.
const (
	maxSubscribedSessions      = 10_000
	maxSubscriptionsPerSession = 100
)

// newSubscriptions returns the registry that remembers who subscribed to
// which note — resources/subscribe in a 2025-11-25 session, the
// resourceSubscriptions of a 2026-07-28 subscriptions/listen stream — with
// the subscriber's principal and tenant, so that a changed note is
// announced only to subscribers of the note's tenant who may still read it
// (notifyChanged). Install its ServerOptions after the guard's.
func newSubscriptions(policy *authz.Policy) (*authz.Subscriptions, error) {
	return authz.NewSubscriptions(policy, authz.SubscriptionsConfig{
		MaxSessions:   maxSubscribedSessions,
		MaxPerSession: maxSubscriptionsPerSession,
	})
}

// notifyChanged is the store's change callback: it sends
// notifications/resources/updated for the note to the subscribers of its
// tenant who may read its URI now, in both protocol eras. A subscriber
// whose queue is full misses this one.
func notifyChanged(subs *authz.Subscriptions) func(tenant, key string) {
	return func(tenant, key string) {
		subs.NotifyTenantUpdated(tenant, notesURIPrefix+key)
	}
}

var _ server.PromptCompletionProvider = completions{}
