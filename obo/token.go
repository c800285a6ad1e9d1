package obo

import (
	"net/http"
	"time"

	"golang.org/x/oauth2"

	"github.com/mcpguard/mcpguard/auth"
)

// Token is an exchanged (or client-credentials) access token.
//
// AccessToken is an auth.Credential, so printing, logging or marshalling a
// Token never shows the token. A Token is a value; the zero value holds no
// token.
type Token struct {
	// AccessToken is the token to send downstream.
	AccessToken auth.Credential
	// TokenType is "Bearer", or "DPoP" for a token bound to Config.DPoPKey
	// (RFC 9449 §5), which must be sent with a proof: Exchanger.Transport
	// does. Answers of any other type are rejected.
	TokenType string
	// IssuedTokenType is RFC 8693's issued_token_type, empty for flavors
	// whose answer has none.
	IssuedTokenType string
	// Expiry is when the token expires, from expires_in; zero when the
	// endpoint sent no expires_in (such a token is used once and not cached).
	Expiry time.Time
	// Scope is the space-separated scope granted, when the endpoint said.
	Scope string
}

// SetAuthHeader sets r's Authorization header to "Bearer <token>", or
// "DPoP <token>" for a DPoP-bound token (RFC 9449 §7.1), which also needs
// a DPoP proof header: use Exchanger.Transport for those. It modifies r:
// call it on a request you own (a clone).
func (t Token) SetAuthHeader(r *http.Request) {
	scheme := "Bearer "
	if t.TokenType == "DPoP" {
		scheme = "DPoP "
	}
	r.Header.Set("Authorization", scheme+t.AccessToken.Reveal())
}

// OAuth2 returns the token as an *oauth2.Token, for code that speaks
// golang.org/x/oauth2. Unlike Token, the result prints its secret: do not
// log it. x/oauth2 sends no DPoP proofs: a token of type DPoP needs
// Exchanger.Transport.
func (t Token) OAuth2() *oauth2.Token {
	return &oauth2.Token{AccessToken: t.AccessToken.Reveal(), TokenType: t.TokenType, Expiry: t.Expiry}
}
