package authtest_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/mcpguard/mcpguard/auth/authtest"
)

// A demo or test starts the identity provider, reads its discovery
// document like any OAuth client would, and mints tokens.
func ExampleNew() {
	idp, err := authtest.New(authtest.Config{Algorithms: []string{"ES256", "EdDSA"}})
	if err != nil {
		panic(err)
	}
	defer idp.Close()

	resp, err := http.Get(idp.MetadataURL())
	if err != nil {
		panic(err)
	}
	var meta struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	err = json.NewDecoder(resp.Body).Decode(&meta)
	_ = resp.Body.Close()
	if err != nil {
		panic(err)
	}
	fmt.Println(meta.Issuer == idp.Issuer(), strings.TrimPrefix(meta.JWKSURI, idp.Issuer()))

	tok, err := idp.Mint(map[string]any{"scope": "notes:read"})
	if err != nil {
		panic(err)
	}
	fmt.Println(strings.Count(tok, "."), "dots; signed by", idp.SigningKey().ID())

	next, err := idp.Rotate("EdDSA")
	if err != nil {
		panic(err)
	}
	fmt.Println("now signing with", next.ID(), "of", len(idp.Keys()), "published keys")
	// Output:
	// true /jwks
	// 2 dots; signed by es256-1
	// now signing with eddsa-2 of 3 published keys
}
