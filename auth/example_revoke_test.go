package auth_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/auth/authtest"
)

// An operator revokes a leaked token by its jti: the validator refuses it
// from the next request on, although it is still cached as verified, and
// keeps serving the user's other tokens.
func ExampleMemoryRevoker() {
	idp, err := authtest.New(authtest.Config{Audience: "https://mcp.example.com/mcp"})
	if err != nil {
		panic(err)
	}
	defer idp.Close()
	rev, err := auth.NewMemoryRevoker(auth.RevokerConfig{})
	if err != nil {
		panic(err)
	}
	v, err := auth.NewJWTValidator(auth.JWTConfig{
		Issuer:   idp.Issuer(),
		Audience: "https://mcp.example.com/mcp",
		Revoker:  rev,
	})
	if err != nil {
		panic(err)
	}
	defer v.Close()
	ctx := context.Background()
	leaked := idp.MustMint(map[string]any{"sub": "alice", "jti": "leaked-1"})
	other := idp.MustMint(map[string]any{"sub": "alice", "jti": "fine-2"})
	_, err = v.Validate(ctx, leaked) // verified and cached
	fmt.Println("before:", err)

	if err := rev.Revoke(ctx, auth.Revocation{Issuer: idp.Issuer(), TokenID: "leaked-1"}); err != nil {
		panic(err)
	}
	_, err = v.Validate(ctx, leaked)
	fmt.Println("leaked:", errors.Is(err, auth.ErrRevoked), auth.AsError(err).Status, auth.AsError(err).Description)
	_, err = v.Validate(ctx, other)
	fmt.Println("other:", err)
	// Output:
	// before: <nil>
	// leaked: true 401 the access token has been revoked
	// other: <nil>
}
