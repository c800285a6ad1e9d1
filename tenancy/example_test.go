package tenancy_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/tenancy"
)

// An Entra ID resolver reads the "tid" claim of the verified principal.
func ExampleNew() {
	r, err := tenancy.New(tenancy.Config{Claim: tenancy.ClaimEntra})
	if err != nil {
		panic(err)
	}
	p := &auth.Principal{
		Subject: "alice",
		Claims:  auth.NewClaims(map[string]any{"tid": "72f988bf-86f1-41af-91ab-2d7cd011db47"}),
	}
	tenant, err := r.Resolve(p)
	fmt.Println(tenant, err)

	// A token without the claim is refused: a tenant is required by default.
	_, err = r.Resolve(&auth.Principal{Subject: "bob"})
	fmt.Println(errors.Is(err, tenancy.ErrNoTenant))
	// Output:
	// 72f988bf-86f1-41af-91ab-2d7cd011db47 <nil>
	// true
}

// Auth0 Organizations with an allow-list of the organizations this server
// serves.
func ExampleNew_allowList() {
	r, err := tenancy.New(tenancy.Config{
		Claim:   tenancy.ClaimAuth0Org,
		Allowed: []string{"org_9aB8cD7eF6gH5iJ4"},
	})
	if err != nil {
		panic(err)
	}
	for _, org := range []string{"org_9aB8cD7eF6gH5iJ4", "org_other", "org:bad"} {
		p := &auth.Principal{Claims: auth.NewClaims(map[string]any{"org_id": org})}
		tenant, err := r.Resolve(p)
		var e *tenancy.Error
		if errors.As(err, &e) {
			fmt.Println(e.Status, e.Reason)
			continue
		}
		fmt.Println("ok", tenant)
	}
	// Output:
	// ok org_9aB8cD7eF6gH5iJ4
	// 403 tenant_not_allowed
	// 403 invalid_tenant
}

// Middleware sits behind auth.Middleware, which puts the verified principal in
// the context. Here a stand-in does that so the example runs alone.
func ExampleResolver_Middleware() {
	r, err := tenancy.New(tenancy.Config{Claim: tenancy.ClaimTenantID})
	if err != nil {
		panic(err)
	}
	tool := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		tenant, _ := tenancy.FromContext(req.Context())
		fmt.Fprintln(w, "tenant", tenant)
	})
	// In a server: authMW(r.Handler(mcpHTTPServer)), authMW from auth.Middleware.
	stack := func(claims map[string]any) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			p := &auth.Principal{Subject: "alice", Claims: auth.NewClaims(claims)}
			r.Middleware(tool).ServeHTTP(w, req.WithContext(auth.NewContext(req.Context(), p)))
		})
	}
	for _, claims := range []map[string]any{{"tenant_id": "acme"}, {}} {
		rec := httptest.NewRecorder()
		stack(claims).ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/mcp", nil))
		body, _ := io.ReadAll(rec.Body)
		fmt.Print(rec.Code, " ", string(body))
	}
	fmt.Println()
	// Output:
	// 200 tenant acme
	// 403 {"jsonrpc":"2.0","id":null,"error":{"code":-32003,"message":"tenant required: the access token does not name a tenant","data":{"reason":"tenant_required"}}}
}

// Redis keys: every key a tool builds lives in the caller's partition, and
// parts are escaped so no name can reach into another key.
func ExampleKey() {
	ctx := tenancy.NewContext(context.Background(), "acme") // done by Handler

	key, err := tenancy.Key(ctx, "notes", "2024:q1")
	if err != nil {
		panic(err) // ErrNoTenant when the context has no tenant
	}
	fmt.Println(key)
	// rdb.Set(ctx, key, value, ttl) with github.com/redis/go-redis/v9.

	// SCAN MATCH pattern for one tenant's notes. Tenant IDs hold no glob
	// characters; parts used in a pattern must not either ('*', '?', '[', '\').
	prefix, _ := tenancy.Key(ctx, "notes")
	fmt.Println(prefix + ":*")

	_, err = tenancy.Key(context.Background(), "notes")
	fmt.Println(errors.Is(err, tenancy.ErrNoTenant))
	// Output:
	// tenant:acme:notes:2024%3Aq1
	// tenant:acme:notes:*
	// true
}

// ParseKey recovers what KeyFor encoded.
func ExampleParseKey() {
	key, _ := tenancy.KeyFor("acme", "a:b", "100%")
	tenant, parts, err := tenancy.ParseKey(key)
	fmt.Printf("%s %q %q %v\n", key, tenant, parts, err)
	// Output:
	// tenant:acme:a%3Ab:100%25 "acme" ["a:b" "100%"] <nil>
}

// S3 prefixes: put objects under the tenant's prefix and list with it.
func ExamplePrefix() {
	ctx := tenancy.NewContext(context.Background(), "acme")
	prefix, err := tenancy.Prefix(ctx)
	if err != nil {
		panic(err)
	}
	fmt.Println(prefix + "reports/2024.pdf")
	// s3.PutObjectInput{Bucket: &bucket, Key: aws.String(prefix + name)}
	// s3.ListObjectsV2Input{Bucket: &bucket, Prefix: aws.String(prefix)}
	// Output:
	// tenants/acme/reports/2024.pdf
}

// SQL: filter every query by the context's tenant, and check each row with
// Check so a query that forgets the filter fails closed.
func ExampleCheck() {
	ctx := tenancy.NewContext(context.Background(), "acme")

	tenant, err := tenancy.Require(ctx)
	if err != nil {
		panic(err) // no tenant: no query
	}
	const q = `SELECT id, tenant_id, body FROM notes WHERE tenant_id = $1 AND id = $2`
	fmt.Println(q, []any{tenant, 42})
	// rows, err := db.QueryContext(ctx, q, tenant, 42)

	// Rows as a query without the filter would return them:
	rows := []struct{ ID, TenantID string }{{"42", "acme"}, {"42", "globex"}}
	for _, row := range rows {
		if err := tenancy.Check(ctx, row.TenantID); err != nil {
			fmt.Println("row", row.ID, "rejected:", errors.Is(err, tenancy.ErrTenantMismatch))
			continue
		}
		fmt.Println("row", row.ID, "ok")
	}
	// Output:
	// SELECT id, tenant_id, body FROM notes WHERE tenant_id = $1 AND id = $2 [acme 42]
	// row 42 ok
	// row 42 rejected: true
}

// Dual-token mode: a trusted reporting service acting for a user may pick
// one of the organizations the user's verified token lists.
func ExampleResolver_Narrow() {
	r, err := tenancy.New(tenancy.Config{
		Claim: tenancy.ClaimAuth0Org,
		Narrowing: tenancy.Narrowing{
			Header: "Mcp-Tenant",
			Claim:  "https://example.com/orgs",
			Trusted: func(actor *auth.Principal) bool {
				return actor.Issuer == "https://example.us.auth0.com/" && actor.ClientID == "reports-service"
			},
		},
	})
	if err != nil {
		panic(err)
	}
	user := &auth.Principal{
		Subject: "auth0|alice",
		Actor:   &auth.Principal{Issuer: "https://example.us.auth0.com/", ClientID: "reports-service"},
		Claims: auth.NewClaims(map[string]any{
			"org_id":                   "org_a",
			"https://example.com/orgs": []any{"org_a", "org_b"},
		}),
	}
	for _, want := range []string{"org_b", "org_c"} {
		tenant, err := r.Narrow(user, want)
		fmt.Printf("%q %v\n", tenant, errors.Is(err, tenancy.ErrNarrowingRefused))
	}
	// Output:
	// "org_b" false
	// "" true
}
