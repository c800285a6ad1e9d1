package authz

import (
	"context"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/internal/listpage"
)

// addListHooks adds to h the hooks that narrow resources/list and
// resources/templates/list to what the principal in the context may read,
// as ToolFilter and PromptFilter narrow tools/list and prompts/list. mcp-go
// has no resource filter, so the hooks rewrite the list result after mcp-go
// built it and before it is sent (AfterListResources and
// AfterListResourceTemplates; ServerOptions installs them).
//
// A resource is listed when the principal may read its URI (the rule of
// resources/read). A template is listed when some URI it can expand to is
// readable: the rule of its literal part — the text before the first "{" —
// or of a longer rule prefix beginning with that literal part allows the
// principal. A template whose literal part CanonicalResourceURI refuses is
// hidden.
//
// With server.WithPaginationLimit mcp-go cuts pages before the hooks run,
// and its next cursor encodes the name of the page's last entry. Narrowing
// such a page would tell a caller with crafted cursors how many hidden
// entries lie after a name (which spells out hidden names, one guess at a
// time) and would lose the entries after a page of hidden ones. So for
// resources/list, a full page with an entry hidden is replaced by the page
// mcp-go would cut from the readable resources alone (the server's and the
// session's): what the caller gets depends on what it may read and nothing
// else. mcp-go has no way to list resource templates from outside, so a
// template page is narrowed: its cursor is pointed at the last template
// still listed, never a hidden one, and a page whose templates are all
// hidden ends the listing (fail closed: templates after it are not listed,
// though still readable).
func (pl *Policy) addListHooks(h *server.Hooks) {
	h.AddAfterListResources(func(ctx context.Context, _ any, req *mcp.ListResourcesRequest, res *mcp.ListResourcesResult) {
		if res == nil {
			return
		}
		p, _ := auth.FromContext(ctx)
		allows := func(r mcp.Resource) bool { return pl.allowsResource(p, r.URI) }
		if res.NextCursor != "" && req != nil && !listpage.AllAllowed(res.Resources, allows) {
			// mcp-go cut a full page (its limit is the page's length) with
			// entries hidden: page the readable resources instead.
			if page, next, ok := listpage.Repage(readableResources(ctx, allows), req.Params.Cursor, len(res.Resources)); ok {
				res.Resources, res.NextCursor = page, next
				return
			}
		}
		res.Resources, res.NextCursor = listpage.Narrow(res.Resources, res.NextCursor, allows)
	})
	h.AddAfterListResourceTemplates(func(ctx context.Context, _ any, _ *mcp.ListResourceTemplatesRequest, res *mcp.ListResourceTemplatesResult) {
		if res == nil {
			return
		}
		p, _ := auth.FromContext(ctx)
		res.ResourceTemplates, res.NextCursor = listpage.Narrow(res.ResourceTemplates, res.NextCursor, func(t mcp.ResourceTemplate) bool {
			return t.URITemplate != nil && t.URITemplate.Template != nil && pl.allowsTemplate(p, t.URITemplate.Raw())
		})
	})
}

// readableResources returns the resources mcp-go lists in ctx (the
// server's, with the session's in their place by URI, as
// handleListResources merges them) that allows keeps.
func readableResources(ctx context.Context, allows func(mcp.Resource) bool) []mcp.Resource {
	srv := server.ServerFromContext(ctx)
	if srv == nil {
		return nil
	}
	all := make(map[string]mcp.Resource)
	for uri, r := range srv.ListResources() {
		all[uri] = r.Resource
	}
	if s, ok := server.ClientSessionFromContext(ctx).(server.SessionWithResources); ok {
		for uri, r := range s.GetSessionResources() {
			all[uri] = r.Resource
		}
	}
	out := make([]mcp.Resource, 0, len(all))
	for _, r := range all {
		if allows(r) {
			out = append(out, r)
		}
	}
	return out
}

// allowsResource reports whether p may read uri.
func (pl *Policy) allowsResource(p *auth.Principal, uri string) bool {
	return pl.checkResource(p, uri).Allowed
}

// allowsTemplate reports whether p may read some URI the RFC 6570 template
// tmpl expands to: its literal part's rule, or the rule of a longer prefix
// beginning with it, allows p.
func (pl *Policy) allowsTemplate(p *auth.Principal, tmpl string) bool {
	if p == nil {
		return false
	}
	lit, _, expr := strings.Cut(tmpl, "{")
	if !expr {
		return pl.allowsResource(p, tmpl)
	}
	r := &pl.defaultResource
	if lit != "" {
		// Refused as resources/read refuses: a literal part whose raw and
		// canonical forms fall under different rules reads nothing.
		if r = pl.resourceRuleOf(lit); r == nil {
			return false
		}
		lit, _ = CanonicalResourceURI(lit)
	} else if len(pl.resourceRules) > 0 && pl.resourceRules[len(pl.resourceRules)-1].prefix == "" {
		r = &pl.resourceRules[len(pl.resourceRules)-1].rule
	}
	if allows(p, r) {
		return true
	}
	for i := range pl.resourceRules {
		if rr := &pl.resourceRules[i]; len(rr.prefix) > len(lit) && strings.HasPrefix(rr.prefix, lit) && allows(p, &rr.rule) {
			return true
		}
	}
	return false
}
