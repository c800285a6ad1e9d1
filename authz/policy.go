package authz

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/internal/oauthsyntax"
	"github.com/mcpguard/mcpguard/tenancy"
)

// The MCP methods a Policy decides on.
const (
	MethodToolsCall     = "tools/call"
	MethodResourcesRead = "resources/read"
	MethodPromptsGet    = "prompts/get"
)

// Rule says who may use one tool, prompt or resource.
//
// The principal must hold every scope in AllOf and, when AnyOf is set, at
// least one scope in AnyOf. Authenticated allows any authenticated principal
// and cannot be combined with scopes. The zero Rule allows nobody: allow is
// always explicit, so a zero Rule in Config.ToolRules denies that tool.
type Rule struct {
	// AllOf are scopes the principal must all hold.
	AllOf []string
	// AnyOf are scopes of which the principal must hold at least one.
	AnyOf []string
	// Authenticated allows every authenticated principal, whatever its
	// scopes.
	Authenticated bool
}

// ResourceRule is the Rule for resources whose URI starts with Prefix.
type ResourceRule struct {
	// Prefix is compared with the URI as a plain string prefix: end it with
	// "/" ("notes://private/") so that it does not also cover
	// "notes://private-archive".
	Prefix string
	// Rule applies to the matching URIs.
	Rule Rule
}

// Config configures a Policy. The zero Config denies everything.
//
// A tool call is decided in this order: no principal → denied; when
// TenantTools is set, a tool not listed for the request's tenant → denied;
// then the first of ToolRules[name], the annotation defaults (ReadScope and
// WriteScope) and DefaultToolRule decides.
type Config struct {
	// ToolRules are the rules of named tools, by exact tool name.
	ToolRules map[string]Rule
	// DefaultToolRule decides tools that have no entry in ToolRules when the
	// annotation defaults are off. The zero Rule denies them.
	DefaultToolRule Rule

	// ReadScope and WriteScope turn on annotation-driven defaults: a tool
	// with no entry in ToolRules requires ReadScope when its mcp-go
	// annotations say readOnlyHint: true, and WriteScope otherwise (an
	// absent hint, or a tool whose annotations cannot be found, is not
	// read-only). Set both or neither. A principal holding WriteScope but
	// not ReadScope cannot call read-only tools: grant both scopes to
	// writers. mcp-go offers no lookup of task tools (AddTaskTool), so they
	// always count as not read-only: give them ToolRules entries.
	ReadScope  string
	WriteScope string

	// PromptRules are the rules of named prompts, by exact prompt name.
	PromptRules map[string]Rule
	// DefaultPromptRule decides prompts with no entry in PromptRules. The
	// zero Rule denies them.
	DefaultPromptRule Rule

	// ResourceRules decide resources by URI prefix; the longest matching
	// prefix wins. Prefixes are matched against CanonicalResourceURI's form
	// of the URI (percent-encoded unreserved characters decoded, as mcp-go
	// decodes template variables), so "notes://priv%61te/x" falls under
	// "notes://private/". A URI CanonicalResourceURI refuses (a dot segment
	// "/./", "/../", also in query values, a backslash, a control
	// character, a percent-encoded delimiter or percent sign), or whose raw,
	// canonical and fully decoded forms fall under different rules, is
	// denied whatever the rules say, so a prefix cannot be escaped by path
	// traversal or encoding.
	ResourceRules []ResourceRule
	// DefaultResourceRule decides resources no prefix matches. The zero Rule
	// denies them.
	DefaultResourceRule Rule

	// TenantTools, when non-nil (even empty), restricts each tenant to the
	// tools listed for it: a tenant only sees and calls those, and a request
	// without a tenant, or whose tenant has no entry, gets no tools at all.
	// nil turns tenant allow-lists off.
	TenantTools map[string][]string
	// Tenant returns the tenant of a request. nil means tenancy.FromContext.
	// It is consulted only when TenantTools is set.
	Tenant func(ctx context.Context) (string, bool)

	// Tools finds a tool's annotations by name, for the annotation defaults
	// when the check does not run inside mcp-go (the HTTP edge). Inside
	// mcp-go the policy reads the session's and the server's tools from the
	// context first, as mcp-go dispatches. nil means only the context is
	// used; a tool found nowhere is treated as not read-only. ServerTools
	// adapts an *server.MCPServer.
	Tools ToolLookup
}

// Policy decides whether a principal may call a tool, get a prompt or read
// a resource. Build it with New; the zero Policy denies everything. A Policy
// is immutable and safe for concurrent use.
type Policy struct {
	toolRules       map[string]*rule
	defaultTool     rule
	annotations     bool
	readRule        rule
	writeRule       rule
	anyone          rule // allows every principal
	readScope       string
	writeScope      string
	promptRules     map[string]*rule
	defaultPrompt   rule
	resourceRules   []resourceRule // longest prefix first
	defaultResource rule
	tenantTools     map[tenantTool]struct{} // nil: allow-lists off
	tenant          func(context.Context) (string, bool)
	tools           ToolLookup
	scopesSupported []string
}

// tenantTool is a key of the tenant allow-lists: one map lookup per check.
type tenantTool struct{ tenant, tool string }

type rule struct {
	allOf, anyOf  []string
	authenticated bool
}

type resourceRule struct {
	prefix string
	rule   rule
}

// denies reports whether the rule allows nobody (the zero Rule).
func (r *rule) denies() bool {
	return !r.authenticated && len(r.allOf) == 0 && len(r.anyOf) == 0
}

// New validates cfg and builds a Policy. Every mistake is reported with the
// field it is in, wrapping auth.ErrConfig. New copies what it keeps: later
// changes to cfg's maps and slices do not affect the Policy.
func New(cfg Config) (*Policy, error) {
	pl := &Policy{
		tenant: cfg.Tenant,
		tools:  cfg.Tools,
		anyone: rule{authenticated: true},
	}
	if pl.tenant == nil {
		pl.tenant = tenancy.FromContext
	}
	scopes := map[string]struct{}{}
	var err error
	compile := func(field string, r Rule) rule {
		if err != nil {
			return rule{}
		}
		var c rule
		c, err = compileRule(field, r, scopes)
		return c
	}
	compilePtr := func(field string, r Rule) *rule {
		c := compile(field, r)
		return &c
	}

	pl.toolRules = make(map[string]*rule, len(cfg.ToolRules))
	for _, name := range sortedKeys(cfg.ToolRules) {
		if name == "" {
			return nil, fmt.Errorf("%w: authz: Config.ToolRules: empty tool name", auth.ErrConfig)
		}
		pl.toolRules[name] = compilePtr(fmt.Sprintf("Config.ToolRules[%q]", name), cfg.ToolRules[name])
	}
	pl.defaultTool = compile("Config.DefaultToolRule", cfg.DefaultToolRule)

	switch {
	case cfg.ReadScope == "" && cfg.WriteScope == "":
	case cfg.ReadScope == "" || cfg.WriteScope == "":
		return nil, fmt.Errorf("%w: authz: Config.ReadScope and Config.WriteScope must be set together", auth.ErrConfig)
	default:
		pl.annotations = true
		pl.readScope, pl.writeScope = cfg.ReadScope, cfg.WriteScope
		pl.readRule = compile("Config.ReadScope", Rule{AllOf: []string{cfg.ReadScope}})
		pl.writeRule = compile("Config.WriteScope", Rule{AllOf: []string{cfg.WriteScope}})
	}

	pl.promptRules = make(map[string]*rule, len(cfg.PromptRules))
	for _, name := range sortedKeys(cfg.PromptRules) {
		if name == "" {
			return nil, fmt.Errorf("%w: authz: Config.PromptRules: empty prompt name", auth.ErrConfig)
		}
		pl.promptRules[name] = compilePtr(fmt.Sprintf("Config.PromptRules[%q]", name), cfg.PromptRules[name])
	}
	pl.defaultPrompt = compile("Config.DefaultPromptRule", cfg.DefaultPromptRule)

	seen := map[string]bool{}
	for i, rr := range cfg.ResourceRules {
		field := fmt.Sprintf("Config.ResourceRules[%d]", i)
		if rr.Prefix == "" {
			return nil, fmt.Errorf("%w: authz: %s.Prefix is empty", auth.ErrConfig, field)
		}
		if seen[rr.Prefix] {
			return nil, fmt.Errorf("%w: authz: %s.Prefix %q is listed twice", auth.ErrConfig, field, rr.Prefix)
		}
		seen[rr.Prefix] = true
		pl.resourceRules = append(pl.resourceRules, resourceRule{prefix: rr.Prefix, rule: compile(field+".Rule", rr.Rule)})
	}
	slices.SortStableFunc(pl.resourceRules, func(a, b resourceRule) int {
		return cmp.Compare(len(b.prefix), len(a.prefix))
	})
	pl.defaultResource = compile("Config.DefaultResourceRule", cfg.DefaultResourceRule)
	if err != nil {
		return nil, err
	}

	if cfg.TenantTools != nil {
		pl.tenantTools = make(map[tenantTool]struct{})
		for _, tenant := range sortedKeys(cfg.TenantTools) {
			if tenant == "" {
				return nil, fmt.Errorf("%w: authz: Config.TenantTools: empty tenant", auth.ErrConfig)
			}
			for i, tool := range cfg.TenantTools[tenant] {
				if tool == "" {
					return nil, fmt.Errorf("%w: authz: Config.TenantTools[%q][%d]: empty tool name", auth.ErrConfig, tenant, i)
				}
				pl.tenantTools[tenantTool{tenant, tool}] = struct{}{}
			}
		}
	}

	pl.scopesSupported = make([]string, 0, len(scopes))
	for s := range scopes {
		pl.scopesSupported = append(pl.scopesSupported, s)
	}
	slices.Sort(pl.scopesSupported)
	return pl, nil
}

func compileRule(field string, r Rule, scopes map[string]struct{}) (rule, error) {
	if r.Authenticated && (len(r.AllOf) > 0 || len(r.AnyOf) > 0) {
		return rule{}, fmt.Errorf("%w: authz: %s: Authenticated cannot be combined with scopes", auth.ErrConfig, field)
	}
	check := func(name string, list []string) ([]string, error) {
		if list == nil {
			return nil, nil
		}
		out := make([]string, 0, len(list))
		for i, s := range list {
			if !oauthsyntax.IsScopeToken(s) {
				return nil, fmt.Errorf("%w: authz: %s.%s[%d]: %q is not an RFC 6749 scope token", auth.ErrConfig, field, name, i, s)
			}
			if !slices.Contains(out, s) {
				out = append(out, s)
			}
			scopes[s] = struct{}{}
		}
		return out, nil
	}
	allOf, err := check("AllOf", r.AllOf)
	if err != nil {
		return rule{}, err
	}
	anyOf, err := check("AnyOf", r.AnyOf)
	if err != nil {
		return rule{}, err
	}
	return rule{allOf: allOf, anyOf: anyOf, authenticated: r.Authenticated}, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// ScopesSupported returns every scope the policy's rules mention, sorted,
// for the scopes_supported member of the protected resource metadata
// (RFC 9728 §2). The caller may modify the returned slice.
func (pl *Policy) ScopesSupported() []string {
	return slices.Clone(pl.scopesSupported)
}

// Reason says why a Decision was made.
type Reason int

const (
	// ReasonNoRule: no rule allows the request (the default deny, an
	// explicit zero Rule, an unknown method, or a resource URI that could
	// escape its prefix). It is the zero value, so a zero Decision denies.
	ReasonNoRule Reason = iota
	// ReasonAllowed: a rule allows the request.
	ReasonAllowed
	// ReasonUnauthenticated: there is no principal.
	ReasonUnauthenticated
	// ReasonTenant: the tool is not on the tenant's allow-list, or the
	// request has no tenant while allow-lists are on.
	ReasonTenant
	// ReasonInsufficientScope: a rule applies but the principal lacks the
	// scopes it needs; Decision.Missing and Decision.AnyOf name them.
	ReasonInsufficientScope
	// ReasonMethod: the JSON-RPC method is not one a client may send
	// (ClassifyMethod returns MethodRefused).
	ReasonMethod
)

// String returns the reason's name, for logs and audit.
func (r Reason) String() string {
	switch r {
	case ReasonNoRule:
		return "no_rule"
	case ReasonAllowed:
		return "allowed"
	case ReasonUnauthenticated:
		return "unauthenticated"
	case ReasonTenant:
		return "tenant"
	case ReasonInsufficientScope:
		return "insufficient_scope"
	case ReasonMethod:
		return "method_not_found"
	}
	return "unknown"
}

// Decision is the outcome of a check. The zero Decision denies.
type Decision struct {
	// Allowed reports whether the request may proceed.
	Allowed bool
	// Reason says why.
	Reason Reason
	// Missing are the required scopes the principal lacks, for
	// ReasonInsufficientScope.
	Missing []string
	// AnyOf, for ReasonInsufficientScope, are the alternatives of a rule's
	// AnyOf when the principal holds none of them.
	AnyOf []string
}

// Err returns nil when the decision allows, and a *DeniedError otherwise.
func (d Decision) Err() error {
	if d.Allowed {
		return nil
	}
	return &DeniedError{Reason: d.Reason, Missing: d.Missing, AnyOf: d.AnyOf}
}

// Check decides whether p may make the request identified by method and
// name: MethodToolsCall with a tool name, MethodPromptsGet with a prompt
// name, MethodResourcesRead, MethodResourcesSubscribe or
// MethodResourcesUnsubscribe with a resource URI. A method ClassifyMethod
// refuses is denied with ReasonMethod; any other is denied with
// ReasonNoRule (completion/complete and subscriptions/listen need their
// whole request: RequestHook decides them). It reads the tenant from ctx (Config.Tenant) when
// tenant allow-lists are on and, for a tool whose rule depends on its
// annotations, finds the tool in the mcp-go session and server carried by
// ctx, then through Config.Tools.
//
// Check does no I/O and allocates nothing when it allows. It is the
// decision behind every adapter of this package and the one the HTTP edge
// calls for step-up (answering d.Err() with auth.WriteError gives 403
// insufficient_scope naming the missing scopes).
func (pl *Policy) Check(ctx context.Context, p *auth.Principal, method, name string) Decision {
	switch method {
	case MethodToolsCall:
		return pl.checkTool(ctx, p, name, toolHint{})
	case MethodPromptsGet:
		return pl.checkPrompt(p, name)
	case MethodResourcesRead, MethodResourcesSubscribe, MethodResourcesUnsubscribe:
		return pl.checkResource(p, name)
	}
	if ClassifyMethod(method) == MethodRefused {
		return Decision{Reason: ReasonMethod}
	}
	if p == nil {
		return Decision{Reason: ReasonUnauthenticated}
	}
	return Decision{Reason: ReasonNoRule}
}

// toolHint carries a tool's read-only annotation when the caller knows it.
type toolHint struct {
	known    bool
	readOnly bool
}

func (pl *Policy) checkTool(ctx context.Context, p *auth.Principal, name string, hint toolHint) Decision {
	r, reason := pl.toolRule(ctx, p, name, hint)
	if r == nil {
		return Decision{Reason: reason}
	}
	return decide(p, r)
}

// allowsTool is checkTool without the details of a denial, for the filter.
func (pl *Policy) allowsTool(ctx context.Context, p *auth.Principal, name string, hint toolHint) bool {
	r, _ := pl.toolRule(ctx, p, name, hint)
	return r != nil && allows(p, r)
}

// toolRule returns the rule that decides a call of the tool name by p, or
// nil and the reason to deny before any rule applies.
func (pl *Policy) toolRule(ctx context.Context, p *auth.Principal, name string, hint toolHint) (*rule, Reason) {
	if p == nil {
		return nil, ReasonUnauthenticated
	}
	if pl.tenantTools != nil {
		tenant, ok := pl.tenant(ctx)
		if !ok {
			return nil, ReasonTenant
		}
		if _, ok := pl.tenantTools[tenantTool{tenant, name}]; !ok {
			return nil, ReasonTenant
		}
	}
	if r, ok := pl.toolRules[name]; ok {
		return r, ReasonNoRule
	}
	if !pl.annotations {
		return &pl.defaultTool, ReasonNoRule
	}
	if !hint.known {
		// Whichever annotation the tool has, a principal holding both
		// scopes may call it: skip the lookup.
		if hasScope(p, pl.readScope) && hasScope(p, pl.writeScope) {
			return &pl.anyone, ReasonNoRule
		}
		hint = pl.lookupTool(ctx, name)
	}
	if hint.readOnly {
		return &pl.readRule, ReasonNoRule
	}
	return &pl.writeRule, ReasonNoRule
}

func (pl *Policy) checkPrompt(p *auth.Principal, name string) Decision {
	if p == nil {
		return Decision{Reason: ReasonUnauthenticated}
	}
	return decide(p, pl.promptRule(name))
}

func (pl *Policy) allowsPrompt(p *auth.Principal, name string) bool {
	return p != nil && allows(p, pl.promptRule(name))
}

func (pl *Policy) promptRule(name string) *rule {
	if r, ok := pl.promptRules[name]; ok {
		return r
	}
	return &pl.defaultPrompt
}

func (pl *Policy) checkResource(p *auth.Principal, uri string) Decision {
	if p == nil {
		return Decision{Reason: ReasonUnauthenticated}
	}
	r := pl.resourceRuleOf(uri)
	if r == nil {
		return Decision{Reason: ReasonNoRule}
	}
	return decide(p, r)
}

// resourceRuleOf returns the rule deciding uri, or nil when the URI is
// refused whatever the rules say: CanonicalResourceURI refuses it, or its
// raw, canonical and fully decoded forms fall under different rules (a
// prefix rule must not depend on how a handler decodes).
func (pl *Policy) resourceRuleOf(uri string) *rule {
	canon, err := CanonicalResourceURI(uri)
	if err != nil {
		return nil
	}
	r := pl.resourceRule(canon)
	if canon == uri && strings.IndexByte(uri, '%') < 0 {
		return r
	}
	if pl.resourceRule(uri) != r || pl.resourceRule(fullyDecoded(canon)) != r {
		return nil
	}
	return r
}

// resourceRule returns the rule of the longest prefix of uri, or the
// default rule.
func (pl *Policy) resourceRule(uri string) *rule {
	for i := range pl.resourceRules {
		if strings.HasPrefix(uri, pl.resourceRules[i].prefix) {
			return &pl.resourceRules[i].rule
		}
	}
	return &pl.defaultResource
}

// allows reports whether r allows the non-nil principal p.
func allows(p *auth.Principal, r *rule) bool {
	if r.denies() {
		return false
	}
	for _, s := range r.allOf {
		if !hasScope(p, s) {
			return false
		}
	}
	return len(r.anyOf) == 0 || holdsAny(p, r.anyOf)
}

func holdsAny(p *auth.Principal, scopes []string) bool {
	for _, s := range scopes {
		if hasScope(p, s) {
			return true
		}
	}
	return false
}

// decide applies r to the non-nil principal p, saying what is missing when
// it denies.
func decide(p *auth.Principal, r *rule) Decision {
	if allows(p, r) {
		return Decision{Allowed: true, Reason: ReasonAllowed}
	}
	if r.denies() {
		return Decision{Reason: ReasonNoRule}
	}
	d := Decision{Reason: ReasonInsufficientScope}
	for _, s := range r.allOf {
		if !hasScope(p, s) {
			d.Missing = append(d.Missing, s)
		}
	}
	if len(r.anyOf) > 0 && !holdsAny(p, r.anyOf) {
		d.AnyOf = slices.Clone(r.anyOf)
	}
	return d
}

// hasScope reports whether p holds s. The empty scope is never held.
func hasScope(p *auth.Principal, s string) bool {
	if s == "" {
		return false
	}
	for _, have := range p.Scopes {
		if have == s {
			return true
		}
	}
	return false
}

// escapesPrefix reports whether uri could name something outside a prefix
// it starts with once a handler resolves it: a "." or ".." segment (of the
// path, or a query value), a backslash, a NUL, or a percent-encoded dot,
// slash, backslash or percent sign (the last against double decoding).
func escapesPrefix(uri string) bool {
	start := 0
	for i := 0; i <= len(uri); i++ {
		if i < len(uri) {
			if uri[i] < 0x20 {
				return true // NUL and control characters
			}
			switch c := uri[i]; c {
			case '\\', 0x7f:
				return true
			case '%':
				if i+2 < len(uri) {
					hi, lo := uri[i+1], uri[i+2]|0x20
					if hi == '2' && (lo == 'e' || lo == 'f' || lo == '5') || hi == '5' && lo == 'c' {
						return true
					}
				}
			}
			if !isSegmentEnd(uri[i]) {
				continue
			}
		}
		if seg := uri[start:i]; seg == "." || seg == ".." {
			return true
		}
		start = i + 1
	}
	return false
}

func isSegmentEnd(c byte) bool {
	switch c {
	case '/', '?', '#', '=', '&', ';':
		return true
	}
	return false
}
