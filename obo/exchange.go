package obo

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/internal/oauthsyntax"
)

// errRedirect is the cause when the token endpoint answers 3xx.
var errRedirect = fmt.Errorf("%w: the endpoint answered with a redirect, which is never followed", ErrInvalidResponse)

// maxExpiresIn bounds expires_in (ten years) so that Expiry cannot overflow.
const maxExpiresIn = 10 * 365 * 24 * 3600

// exchange makes one request to the token endpoint and validates the answer.
// Every error is an *Error.
func (e *Exchanger) exchange(ctx context.Context, ct *target, subject string) (Token, error) {
	fail := func(status int, cause error) (Token, error) {
		return Token{}, &Error{Flavor: ct.Flavor, Status: status, Err: cause}
	}
	endpoint, err := e.TokenEndpoint(ctx)
	if err != nil {
		return fail(0, err)
	}
	form := url.Values{}
	secrets := make([]string, 0, 4)
	switch ct.Flavor {
	case TokenExchange:
		form.Set("grant_type", grantTypeTokenExchange)
		form.Set("subject_token", subject)
		form.Set("subject_token_type", ct.SubjectTokenType)
		if ct.RequestedTokenType != "" {
			form.Set("requested_token_type", ct.RequestedTokenType)
		}
		if ct.Audience != "" {
			form.Set("audience", ct.Audience)
		}
		if ct.Resource != "" {
			form.Set("resource", ct.Resource)
		}
		if e.cfg.ActorToken != nil {
			actor, err := e.cfg.ActorToken(ctx)
			if err != nil {
				return fail(0, fmt.Errorf("%w: actor token: %w", ErrUnavailable, err))
			}
			if actor.IsZero() {
				return fail(0, fmt.Errorf("%w: actor token source returned an empty token", ErrUnavailable))
			}
			form.Set("actor_token", actor.Reveal())
			form.Set("actor_token_type", e.cfg.ActorTokenType)
			secrets = append(secrets, actor.Reveal())
		}
	case EntraOBO:
		form.Set("grant_type", grantTypeJWTBearer)
		form.Set("assertion", subject)
		form.Set("requested_token_use", "on_behalf_of")
	case ClientCredentials:
		form.Set("grant_type", grantTypeClientCredentials)
		if ct.Audience != "" {
			form.Set("audience", ct.Audience)
		}
		if ct.Resource != "" {
			form.Set("resource", ct.Resource)
		}
	}
	if ct.scope != "" {
		form.Set("scope", ct.scope)
	}
	if subject != "" {
		secrets = append(secrets, subject)
	}

	// One attempt, and with DPoP one more when the endpoint asks for a
	// nonce (RFC 9449 §8). Each attempt signs a fresh client assertion and
	// proof: both carry a jti the endpoint accepts once.
	var status int
	var header http.Header
	var body []byte
	for attempt := 0; ; attempt++ {
		var ferr error
		status, header, body, ferr = e.post(ctx, endpoint, form, &secrets)
		if ferr != nil {
			return fail(status, ferr)
		}
		if e.dpop == nil {
			break
		}
		u, _ := url.Parse(endpoint)
		changed := e.dpop.observe(u, header)
		if attempt > 0 || status != http.StatusBadRequest || !changed || oauthErrorCode(body) != "use_dpop_nonce" {
			break
		}
	}
	switch {
	case status == http.StatusOK:
	case status >= 300 && status < 400:
		// Nothing of a redirect answer is used, and it was not followed.
		return fail(status, errRedirect)
	default:
		return Token{}, newResponseError(ct.Flavor, status, body, statusSentinel(status), secrets...)
	}
	return e.parseToken(ct, subject, header.Get("Content-Type"), body, secrets)
}

// post sends one token request: form with this client's authentication
// and, with Config.DPoPKey, a DPoP proof. It returns the status, headers
// and capped body; secrets gains every credential the request carried, in
// the form it was sent (sentForms derives the encodings).
func (e *Exchanger) post(ctx context.Context, endpoint string, base url.Values, secrets *[]string) (int, http.Header, []byte, error) {
	form := maps.Clone(base)
	var basic string
	switch e.cfg.AuthMethod {
	case ClientSecretBasic:
		// RFC 6749 §2.3.1: both parts are form-urlencoded before Basic
		// (RFC 7617). The base64 credential is a secret of its own: an
		// echo of the header gives the client secret away as surely as
		// the secret itself.
		basic = base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(e.cfg.ClientID) + ":" + url.QueryEscape(e.cfg.ClientSecret.Reveal())))
		*secrets = append(*secrets, e.cfg.ClientSecret.Reveal(), basic)
	case ClientSecretPost:
		form.Set("client_id", e.cfg.ClientID)
		form.Set("client_secret", e.cfg.ClientSecret.Reveal())
		*secrets = append(*secrets, e.cfg.ClientSecret.Reveal())
	case PrivateKeyJWT:
		assertion, err := e.clientAssertion(endpoint)
		if err != nil {
			return 0, nil, nil, fmt.Errorf("%w: signing the client assertion: %w", ErrConfig, err)
		}
		form.Set("client_id", e.cfg.ClientID)
		form.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
		form.Set("client_assertion", assertion)
		*secrets = append(*secrets, assertion)
	}

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return 0, nil, nil, fmt.Errorf("%w: building the request: %w", ErrConfig, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if basic != "" {
		req.Header.Set("Authorization", "Basic "+basic) // what SetBasicAuth writes
	}
	if e.dpop != nil {
		proof, err := e.dpop.proof(http.MethodPost, req.URL, "")
		if err != nil {
			return 0, nil, nil, fmt.Errorf("%w: signing the DPoP proof: %w", ErrConfig, err)
		}
		req.Header.Set("DPoP", proof)
		*secrets = append(*secrets, proof)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		// *url.Error names the method and endpoint only; the body (with the
		// secrets) is never part of it.
		return 0, nil, nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	defer resp.Body.Close()
	body, err := readCapped(resp.Body)
	if err != nil {
		if errors.Is(err, errTooLarge) {
			return resp.StatusCode, nil, nil, fmt.Errorf("%w: %w", ErrInvalidResponse, err)
		}
		return resp.StatusCode, nil, nil, fmt.Errorf("%w: reading the answer: %w", ErrUnavailable, err)
	}
	return resp.StatusCode, resp.Header, body, nil
}

// oauthErrorCode returns the "error" member of an OAuth error body, "" when
// there is none.
func oauthErrorCode(body []byte) string {
	var r struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal(body, &r)
	return r.Error
}

type tokenResponse struct {
	AccessToken     string          `json:"access_token"`
	TokenType       string          `json:"token_type"`
	IssuedTokenType string          `json:"issued_token_type"`
	ExpiresIn       json.RawMessage `json:"expires_in"`
	Scope           string          `json:"scope"`
	Error           string          `json:"error"`
}

// parseToken validates a 200 answer (RFC 6749 §5.1, RFC 8693 §2.2.1).
func (e *Exchanger) parseToken(ct *target, subject, contentType string, body []byte, secrets []string) (Token, error) {
	invalid := func(format string, args ...any) (Token, error) {
		return Token{}, &Error{Flavor: ct.Flavor, Status: http.StatusOK,
			Err: fmt.Errorf("%w: "+format, append([]any{ErrInvalidResponse}, args...)...)}
	}
	if mt, _, err := mime.ParseMediaType(contentType); err != nil || mt != "application/json" {
		return invalid("Content-Type is not application/json")
	}
	var r tokenResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return invalid("the body is not a JSON token response")
	}
	if r.Error != "" {
		oe := newResponseError(ct.Flavor, http.StatusOK, body, ErrRejected, secrets...)
		return Token{}, oe
	}
	switch {
	case r.AccessToken == "":
		return invalid("no access_token")
	case len(r.AccessToken) > MaxTokenBytes:
		return invalid("access_token longer than %d bytes", MaxTokenBytes)
	case !oauthsyntax.IsB64Token(r.AccessToken):
		return invalid("access_token has characters outside the RFC 6750 b64token set")
	case subject != "" && r.AccessToken == subject:
		return invalid("the endpoint returned the subject token unchanged; sending it downstream would be token passthrough")
	case strings.EqualFold(r.TokenType, "DPoP") && e.dpop != nil:
		// Bound to Config.DPoPKey (RFC 9449 §5); sent with proofs.
		r.TokenType = "DPoP"
	case strings.EqualFold(r.TokenType, "DPoP"):
		return invalid("token_type DPoP, but no Config.DPoPKey was set, so no proof could be sent with it")
	case !strings.EqualFold(r.TokenType, "Bearer"):
		return invalid("token_type %q is not Bearer", cleanCode(r.TokenType, sentForms(secrets)))
	default:
		r.TokenType = "Bearer"
	}
	issued := r.IssuedTokenType
	if ct.Flavor == TokenExchange {
		switch {
		case issued == "":
			return invalid("no issued_token_type (RFC 8693 §2.2.1)")
		case ct.RequestedTokenType != "" && issued != ct.RequestedTokenType:
			return invalid("issued_token_type %q is not the requested %q", cleanText(issued, 128, sentForms(secrets)), ct.RequestedTokenType)
		case ct.RequestedTokenType == "" && issued != TokenTypeAccessToken && issued != TokenTypeJWT:
			return invalid("issued_token_type %q is neither an access token nor a JWT", cleanText(issued, 128, sentForms(secrets)))
		}
	} else if !printable(issued) || len(issued) > 256 {
		issued = ""
	}
	tok := Token{
		AccessToken:     auth.NewCredential(r.AccessToken),
		TokenType:       r.TokenType,
		IssuedTokenType: issued,
		Scope:           cleanText(r.Scope, 4096, nil),
	}
	if len(r.ExpiresIn) > 0 && string(r.ExpiresIn) != "null" {
		secs, err := parseExpiresIn(r.ExpiresIn)
		if err != nil {
			return invalid("%v", err)
		}
		tok.Expiry = e.cfg.Now().Add(time.Duration(secs) * time.Second)
	}
	return tok, nil
}

// parseExpiresIn accepts a JSON integer, or a string of digits as older
// Microsoft endpoints send, between 1 and maxExpiresIn.
func parseExpiresIn(raw json.RawMessage) (int64, error) {
	s := string(raw)
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = s[1 : len(s)-1]
	}
	if len(s) == 0 || len(s) > 12 {
		return 0, errors.New("expires_in is not a positive integer")
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, errors.New("expires_in is not a positive integer")
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 1 || n > maxExpiresIn {
		return 0, errors.New("expires_in is out of range")
	}
	return n, nil
}

// clientAssertion signs a fresh RFC 7523 §3 client assertion: iss and sub
// are the client ID, aud the token endpoint (or AssertionAudience), with a
// unique jti and a short lifetime.
func (e *Exchanger) clientAssertion(endpoint string) (string, error) {
	now := e.cfg.Now()
	aud := e.cfg.AssertionAudience
	if aud == "" {
		aud = endpoint
	}
	claims := jwt.MapClaims{
		"iss": e.cfg.ClientID,
		"sub": e.cfg.ClientID,
		"aud": aud,
		"jti": rand.Text(),
		"iat": now.Unix(),
		"nbf": now.Unix(),
		"exp": now.Add(e.cfg.AssertionLifetime).Unix(),
	}
	t := jwt.NewWithClaims(e.signer, claims)
	pk := e.cfg.PrivateKey
	if pk.KeyID != "" {
		t.Header["kid"] = pk.KeyID
	}
	if pk.Thumbprint != "" {
		t.Header["x5t"] = pk.Thumbprint
	}
	if pk.ThumbprintS256 != "" {
		t.Header["x5t#S256"] = pk.ThumbprintS256
	}
	return t.SignedString(pk.Signer)
}

var errTooLarge = fmt.Errorf("the answer is larger than %d bytes", MaxResponseBytes)

// readCapped reads at most MaxResponseBytes; a longer body is errTooLarge.
func readCapped(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxResponseBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > MaxResponseBytes {
		return nil, errTooLarge
	}
	return b, nil
}
