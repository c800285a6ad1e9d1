package tenancy_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/auth/authtest"
	"github.com/mcpguard/mcpguard/tenancy"
)

// record is what the notes tools store: the tenant and owner are written by
// the server from the context, never taken from the call's arguments.
type record struct {
	Tenant string `json:"tenant"`
	Owner  string `json:"owner"`
	Value  string `json:"value"`
}

// notesStore is a map shared by every tenant, partitioned only by the keys
// the tools build. keyOf and guard are the parts under test.
type notesStore struct {
	mu    sync.Mutex
	m     map[string]record
	keyOf func(ctx context.Context, name string) (string, error)
	// listPrefix returns the key prefix whose records "list" returns.
	listPrefix func(ctx context.Context) (string, error)
	guard      func(ctx context.Context, rec record) error
}

func partitionedStore() *notesStore {
	return &notesStore{
		m: map[string]record{},
		keyOf: func(ctx context.Context, name string) (string, error) {
			return tenancy.Key(ctx, "notes", name)
		},
		listPrefix: func(ctx context.Context) (string, error) {
			k, err := tenancy.Key(ctx, "notes")
			return k + ":", err
		},
		guard: func(ctx context.Context, rec record) error { return tenancy.Check(ctx, rec.Tenant) },
	}
}

// naiveStore forgets the tenant in its keys and skips the guard: the
// control that proves the harness detects cross-tenant reads.
func naiveStore() *notesStore {
	return &notesStore{
		m:          map[string]record{},
		keyOf:      func(_ context.Context, name string) (string, error) { return "notes:" + name, nil },
		listPrefix: func(context.Context) (string, error) { return "notes:", nil },
		guard:      func(context.Context, record) error { return nil },
	}
}

func (s *notesStore) server() *server.MCPServer {
	srv := server.NewMCPServer("notes", "1.0.0", server.WithToolCapabilities(false))
	srv.AddTool(mcp.NewTool("put", mcp.WithString("name", mcp.Required()), mcp.WithString("value", mcp.Required())),
		func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			tenant, err := tenancy.Require(ctx)
			if err != nil {
				return mcp.NewToolResultError("no tenant"), nil
			}
			p, _ := auth.FromContext(ctx)
			key, err := s.keyOf(ctx, req.GetString("name", ""))
			if err != nil {
				return mcp.NewToolResultError("bad key"), nil
			}
			s.mu.Lock()
			s.m[key] = record{Tenant: tenant, Owner: p.Subject, Value: req.GetString("value", "")}
			s.mu.Unlock()
			return mcp.NewToolResultText("ok"), nil
		})
	srv.AddTool(mcp.NewTool("get", mcp.WithString("name", mcp.Required())),
		func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			key, err := s.keyOf(ctx, req.GetString("name", ""))
			if err != nil {
				return mcp.NewToolResultError("bad key"), nil
			}
			s.mu.Lock()
			rec, ok := s.m[key]
			s.mu.Unlock()
			if !ok {
				return mcp.NewToolResultText("not_found"), nil
			}
			if err := s.guard(ctx, rec); err != nil {
				return mcp.NewToolResultError("guard: " + err.Error()), nil
			}
			return mcp.NewToolResultJSON(rec)
		})
	srv.AddTool(mcp.NewTool("list"),
		func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			prefix, err := s.listPrefix(ctx)
			if err != nil {
				return mcp.NewToolResultError("bad prefix"), nil
			}
			var out []record
			s.mu.Lock()
			for k, rec := range s.m {
				if strings.HasPrefix(k, prefix) {
					out = append(out, rec)
				}
			}
			s.mu.Unlock()
			for _, rec := range out {
				if err := s.guard(ctx, rec); err != nil {
					return mcp.NewToolResultError("guard: " + err.Error()), nil
				}
			}
			return mcp.NewToolResultJSON(map[string][]record{"records": out})
		})
	return srv
}

// jwtValidator is auth's JWT validator for the authtest issuer: the tenant
// claim is only ever read from a token whose signature, issuer, audience
// and expiry it verified.
func jwtValidator(t *testing.T, idp *authtest.Server) auth.Validator {
	t.Helper()
	v, err := auth.NewJWTValidator(auth.JWTConfig{
		Issuer:     idp.Issuer(),
		Audience:   idp.Audience(),
		HTTPClient: idp.Client(),
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = v.Close() })
	return v
}

type caller struct {
	tenant, subject, token string
	idx                    int
}

func tenantName(i int) string { return fmt.Sprintf("tenant-%d", i) }

// harness runs tenants×callers MCP clients against one Streamable HTTP
// server behind auth.Middleware and tenancy's Handler, each caller holding
// its own token signed by an authtest identity provider.
type harness struct {
	url     string
	idp     *authtest.Server
	callers []caller
}

func newHarness(t *testing.T, store *notesStore, tenants, perTenant int) *harness {
	t.Helper()
	idp, err := authtest.New(authtest.Config{TB: t, Algorithms: []string{"EdDSA"}})
	require.NoError(t, err)
	h := &harness{idp: idp}
	for ti := range tenants {
		for ci := range perTenant {
			c := caller{
				tenant:  tenantName(ti),
				subject: fmt.Sprintf("user-%d-%d", ti, ci),
				idx:     ci,
			}
			c.token = idp.MustMint(map[string]any{"sub": c.subject, "tenant_id": c.tenant})
			h.callers = append(h.callers, c)
		}
	}

	resolver, err := tenancy.New(tenancy.Config{Claim: tenancy.ClaimTenantID})
	require.NoError(t, err)
	authMW, err := auth.Middleware(jwtValidator(t, idp), auth.MiddlewareConfig{ResourceMetadataURL: "http://127.0.0.1/.well-known/oauth-protected-resource"})
	require.NoError(t, err)
	mcpHTTP := server.NewStreamableHTTPServer(store.server())
	ts := httptest.NewServer(authMW(resolver.Middleware(mcpHTTP)))
	t.Cleanup(ts.Close)
	h.url = ts.URL
	return h
}

func (h *harness) connect(ctx context.Context, token string) (*client.Client, error) {
	c, err := client.NewStreamableHttpClient(h.url, transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + token}))
	if err != nil {
		return nil, err
	}
	if err := c.Start(ctx); err != nil {
		return nil, err
	}
	_, err = c.Initialize(ctx, mcp.InitializeRequest{Params: mcp.InitializeParams{
		ProtocolVersion: mcp.LATEST_PROTOCOL_VERSION,
		ClientInfo:      mcp.Implementation{Name: "isolation-test", Version: "1"},
	}})
	if err != nil {
		_ = c.Close()
		return nil, err
	}
	return c, nil
}

func callTool(ctx context.Context, c *client.Client, name string, args map[string]any) (string, error) {
	res, err := c.CallTool(ctx, mcp.CallToolRequest{Params: mcp.CallToolParams{Name: name, Arguments: args}})
	if err != nil {
		return "", err
	}
	if len(res.Content) == 0 {
		return "", errors.New("empty result")
	}
	text, ok := mcp.AsTextContent(res.Content[0])
	if !ok {
		return "", errors.New("not text")
	}
	if res.IsError {
		return "", fmt.Errorf("tool error: %s", text.Text)
	}
	return text.Text, nil
}

const notesPerCaller = 3

// Shared names: every tenant's caller i writes the same names, so any key
// that forgets the tenant collides across tenants.
func sharedName(callerIdx, n int) string { return fmt.Sprintf("note-%d-%d", callerIdx, n) }

// ownOnlyName exists in exactly one tenant; it contains ':' and '%' so the
// key escaping is exercised end to end.
func ownOnlyName(tenant string) string { return "only:" + tenant + "%" }

func value(c caller, n int) string { return fmt.Sprintf("%s|%s|%d", c.tenant, c.subject, n) }

type tally struct {
	reads       atomic.Int64 // records checked
	crossTenant atomic.Int64 // records from another tenant
	wrongValue  atomic.Int64 // own-tenant record with an unexpected value
	guardHits   atomic.Int64 // tool answered with a guard error
	otherErrors atomic.Int64
	firstErr    atomic.Value
}

func (ty *tally) fail(err error) {
	ty.otherErrors.Add(1)
	ty.firstErr.CompareAndSwap(nil, err.Error())
}

// checkRecord checks one record returned to caller c.
func (ty *tally) checkRecord(c caller, rec record, wantValue string) {
	ty.reads.Add(1)
	if rec.Tenant != c.tenant || !strings.HasPrefix(rec.Value, c.tenant+"|") {
		ty.crossTenant.Add(1)
		return
	}
	if wantValue != "" && rec.Value != wantValue {
		ty.wrongValue.Add(1)
	}
}

// run drives every caller concurrently: all writes, a barrier, then all
// reads (so a broken partition is caught deterministically), checking
// every record each caller gets back.
func (h *harness) run(t *testing.T) *tally {
	t.Helper()
	ctx := t.Context()
	ty := &tally{}
	clients := make([]*client.Client, len(h.callers))
	var wrote, done sync.WaitGroup
	wrote.Add(len(h.callers))
	for i, c := range h.callers {
		done.Go(func() {
			cl, err := h.connect(ctx, c.token)
			if err != nil {
				ty.fail(fmt.Errorf("connect %s: %w", c.subject, err))
				wrote.Done()
				return
			}
			clients[i] = cl
			for n := range notesPerCaller {
				if _, err := callTool(ctx, cl, "put", map[string]any{"name": sharedName(c.idx, n), "value": value(c, n)}); err != nil {
					ty.fail(err)
				}
			}
			if c.idx == 0 {
				if _, err := callTool(ctx, cl, "put", map[string]any{"name": ownOnlyName(c.tenant), "value": value(c, -1)}); err != nil {
					ty.fail(err)
				}
			}
			wrote.Done()
			wrote.Wait()

			for n := range notesPerCaller {
				h.get(ctx, ty, cl, c, sharedName(c.idx, n), value(c, n))
			}
			// Names that exist only in other tenants must not be found.
			for _, other := range h.tenantsExcept(c.tenant) {
				h.get(ctx, ty, cl, c, ownOnlyName(other), "")
			}
			text, err := callTool(ctx, cl, "list", nil)
			if err != nil {
				h.count(ty, err)
				return
			}
			var listed struct {
				Records []record `json:"records"`
			}
			if err := json.Unmarshal([]byte(text), &listed); err != nil {
				ty.fail(err)
				return
			}
			for _, rec := range listed.Records {
				ty.checkRecord(c, rec, "")
			}
		})
	}
	done.Wait()
	for _, cl := range clients {
		if cl != nil {
			_ = cl.Close()
		}
	}
	return ty
}

func (h *harness) get(ctx context.Context, ty *tally, cl *client.Client, c caller, name, want string) {
	text, err := callTool(ctx, cl, "get", map[string]any{"name": name})
	if err != nil {
		h.count(ty, err)
		return
	}
	if text == "not_found" {
		if want != "" {
			ty.fail(fmt.Errorf("%s lost its own record %q", c.subject, name))
		}
		return
	}
	var rec record
	if err := json.Unmarshal([]byte(text), &rec); err != nil {
		ty.fail(err)
		return
	}
	ty.checkRecord(c, rec, want)
}

func (h *harness) count(ty *tally, err error) {
	if strings.Contains(err.Error(), "guard: ") {
		ty.guardHits.Add(1)
		return
	}
	ty.fail(err)
}

func (h *harness) tenantsExcept(tenant string) []string {
	seen := map[string]bool{tenant: true}
	var out []string
	for _, c := range h.callers {
		if !seen[c.tenant] {
			seen[c.tenant] = true
			out = append(out, c.tenant)
		}
	}
	sort.Strings(out)
	return out
}

// TestIsolationUnderLoad is the isolation proof: 8 tenants × 50 concurrent
// MCP clients, each through auth.Middleware, the tenancy handler and a real
// mcp-go Streamable HTTP server, write and read a tenant-partitioned map
// whose names collide across tenants. Every record read back is checked.
func TestIsolationUnderLoad(t *testing.T) {
	const tenants, perTenant = 8, 50
	store := partitionedStore()
	h := newHarness(t, store, tenants, perTenant)
	ty := h.run(t)

	require.Zero(t, ty.otherErrors.Load(), "first error: %v", ty.firstErr.Load())
	assert.Zero(t, ty.crossTenant.Load(), "cross-tenant reads")
	assert.Zero(t, ty.wrongValue.Load(), "own-tenant records with a wrong value")
	assert.Zero(t, ty.guardHits.Load(), "row guard rejections")
	// Per caller: notesPerCaller gets, plus every record of its tenant from list.
	perTenantRecords := perTenant*notesPerCaller + 1
	want := int64(tenants * perTenant * (notesPerCaller + perTenantRecords))
	assert.Equal(t, want, ty.reads.Load(), "records checked")

	// The store itself: every key parses to the tenant stored in its record.
	store.mu.Lock()
	defer store.mu.Unlock()
	assert.Len(t, store.m, tenants*perTenantRecords)
	for k, rec := range store.m {
		tenant, parts, err := tenancy.ParseKey(k)
		require.NoError(t, err, "key %q", k)
		assert.Equal(t, rec.Tenant, tenant, "key %q", k)
		require.Len(t, parts, 2)
		assert.Equal(t, "notes", parts[0])
		assert.True(t, strings.HasPrefix(rec.Value, tenant+"|"), "key %q holds %q", k, rec.Value)
	}
	t.Logf("%d tenants x %d callers: %d records checked, 0 cross-tenant", tenants, perTenant, ty.reads.Load())
}

// TestIsolationHarnessDetectsLeaks runs the same harness against a store
// that forgets the tenant: the checks must see cross-tenant reads, or the
// isolation test above proves nothing.
func TestIsolationHarnessDetectsLeaks(t *testing.T) {
	h := newHarness(t, naiveStore(), 2, 3)
	ty := h.run(t)
	require.Zero(t, ty.otherErrors.Load(), "first error: %v", ty.firstErr.Load())
	assert.Positive(t, ty.crossTenant.Load(), "the harness must catch an unpartitioned store")
}

// TestGuardCatchesMissingFilter: a store whose keys forget the tenant but
// which still calls tenancy.Check fails closed instead of leaking.
func TestGuardCatchesMissingFilter(t *testing.T) {
	s := naiveStore()
	s.guard = func(ctx context.Context, rec record) error { return tenancy.Check(ctx, rec.Tenant) }
	h := newHarness(t, s, 2, 3)
	ty := h.run(t)
	require.Zero(t, ty.otherErrors.Load(), "first error: %v", ty.firstErr.Load())
	assert.Zero(t, ty.crossTenant.Load())
	assert.Positive(t, ty.guardHits.Load())
}

// TestMCPClientSeesTenantReason: a verified principal without a tenant is
// refused before mcp-go runs, and the mcp-go client can read why.
func TestMCPClientSeesTenantReason(t *testing.T) {
	h := newHarness(t, partitionedStore(), 1, 1)
	noTenant := h.idp.MustMint(map[string]any{"sub": "stray"})

	_, err := h.connect(t.Context(), noTenant)
	require.Error(t, err, "a principal without a tenant must not get a session")
	t.Logf("mcp-go client error on initialize: %v", err)

	// mcp-go v1.2.1's client reports any 4xx on initialize as "likely a
	// legacy SSE server"; on every other request it decodes the JSON-RPC
	// body and returns error.message, which is what tenancy sends.
	tr, err := transport.NewStreamableHTTP(h.url, transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + noTenant}))
	require.NoError(t, err)
	require.NoError(t, tr.Start(t.Context()))
	defer tr.Close()
	res, err := tr.SendRequest(t.Context(), transport.JSONRPCRequest{JSONRPC: "2.0", ID: mcp.NewRequestId(int64(7)), Method: "tools/list"})
	require.NoError(t, err)
	require.NotNil(t, res.Error)
	assert.Equal(t, "tenant required: the access token does not name a tenant", res.Error.AsError().Error())

	resp := h.post(t, noTenant)
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)
	var rpc transport.JSONRPCResponse
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&rpc))
	require.NotNil(t, rpc.Error)
	assert.Equal(t, tenancy.CodeForbidden, rpc.Error.Code)
	assert.Contains(t, rpc.Error.AsError().Error(), "tenant required")
}

// TestTenantOnlyFromVerifiedTokens: a tenant claim in a token whose
// signature does not verify, an unsigned token, or a tenant header never
// reaches the tools.
func TestTenantOnlyFromVerifiedTokens(t *testing.T) {
	h := newHarness(t, partitionedStore(), 1, 1)
	claims := map[string]any{"sub": "mallory", "tenant_id": "tenant-0"}
	badSig, err := h.idp.MintBadSignature(claims)
	require.NoError(t, err)
	unsigned, err := h.idp.MintUnsigned(claims)
	require.NoError(t, err)

	for name, tok := range map[string]string{"bad signature": badSig, "unsigned": unsigned, "no token": ""} {
		t.Run(name, func(t *testing.T) {
			resp := h.post(t, tok)
			assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
			assert.Contains(t, resp.Header.Get("WWW-Authenticate"), "resource_metadata=")
		})
	}
	t.Run("tenant header without tenant claim", func(t *testing.T) {
		tok := h.idp.MustMint(map[string]any{"sub": "mallory"})
		resp := h.post(t, tok, "X-Tenant-Id", "tenant-0", "Mcp-Tenant", "tenant-0", "Tenant", "tenant-0")
		assert.Equal(t, http.StatusForbidden, resp.StatusCode)
	})
}

// post sends a tools/list request with token (none when empty) and extra
// header pairs; the body is closed when the test ends.
func (h *harness) post(t *testing.T, token string, headers ...string) *http.Response {
	t.Helper()
	body := `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, h.url, strings.NewReader(body))
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	t.Cleanup(func() { _ = resp.Body.Close() })
	return resp
}
