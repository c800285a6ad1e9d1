package jobtoken_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"sync"
	"time"

	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/auth/authtest"
	"github.com/mcpguard/mcpguard/auth/jobtoken"
)

func describe(err error) string {
	e := auth.AsError(err)
	return fmt.Sprintf("%d %q %s", e.Status, e.Code, e.Description)
}

// A tool starts a report that will finish after the user's token expires:
// it mints a job token bound to that token, and the worker later presents
// both.
func Example() {
	var mu sync.Mutex
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }

	idp, err := authtest.New(authtest.Config{Now: clock})
	if err != nil {
		panic(err)
	}
	defer idp.Close()
	users, err := auth.NewJWTValidator(auth.JWTConfig{Issuer: idp.Issuer(), Audience: idp.Audience(), Now: clock})
	if err != nil {
		panic(err)
	}
	defer users.Close()

	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	issuer, err := jobtoken.NewIssuer(jobtoken.IssuerConfig{
		Issuer: "https://mcp.example.com/jobs", Audience: "https://mcp.example.com/mcp#jobs",
		Key: key, Original: users, Now: clock,
	})
	if err != nil {
		panic(err)
	}
	revoked := map[string]bool{}
	jobs, err := jobtoken.NewValidator(jobtoken.ValidatorConfig{
		Issuer: "https://mcp.example.com/jobs", Audience: "https://mcp.example.com/mcp#jobs",
		Keys:     map[string]ed25519.PublicKey{issuer.KeyID(): issuer.PublicKey()},
		Original: users, Now: clock,
		Revoked: func(_ context.Context, id string) (bool, error) {
			mu.Lock()
			defer mu.Unlock()
			return revoked[id], nil
		},
	})
	if err != nil {
		panic(err)
	}

	ctx := context.Background()
	original := idp.MustMint(map[string]any{"sub": "alice", "scope": "reports:read reports:write"})
	jobTok, err := issuer.Mint(ctx, jobtoken.Request{
		JobID: "report-7", Original: auth.NewCredential(original), Scopes: []string{"reports:write"}, Tenant: "acme",
	})
	if err != nil {
		panic(err)
	}

	mu.Lock()
	now = now.Add(3 * time.Hour) // the user's one-hour token has long expired
	mu.Unlock()
	_, err = users.Validate(ctx, original)
	fmt.Println("original alone:", describe(err))
	p, err := jobs.Validate(ctx, jobTok, original)
	if err != nil {
		panic(err)
	}
	fmt.Println(p.Kind, p.JobID, p.Subject, p.Scopes)

	mu.Lock()
	revoked["report-7"] = true
	mu.Unlock()
	_, err = jobs.Validate(ctx, jobTok, original)
	fmt.Println("after revocation:", describe(err))
	// Output:
	// original alone: 401 "invalid_token" the access token has expired
	// job report-7 alice [reports:write]
	// after revocation: 401 "invalid_token" the job has been revoked
}
