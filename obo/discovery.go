package obo

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// metadata is the part of an RFC 8414 §2 / OpenID Connect Discovery §3
// document this package uses.
type metadata struct {
	Issuer                            string   `json:"issuer"`
	TokenEndpoint                     string   `json:"token_endpoint"`
	TokenEndpointAuthMethodsSupported []string `json:"token_endpoint_auth_methods_supported"`
}

// metadataURLs returns where to look for issuer's metadata, in order: the
// RFC 8414 §3.1 URL (well-known segment inserted before the issuer's path),
// then the OpenID Connect Discovery §4 URL (appended to the issuer).
func metadataURLs(issuer string) []string {
	u, _ := url.Parse(issuer)
	path := strings.TrimSuffix(u.EscapedPath(), "/")
	oauthURL := u.Scheme + "://" + u.Host + "/.well-known/oauth-authorization-server" + path
	oidcURL := strings.TrimSuffix(issuer, "/") + "/.well-known/openid-configuration"
	return []string{oauthURL, oidcURL}
}

// discover fetches and checks issuer's metadata. A 3xx or 4xx answer from
// the first URL moves on to the next; a network failure or 5xx stops.
func discover(ctx context.Context, client *http.Client, issuer string) (*metadata, error) {
	var last error
	for _, mu := range metadataURLs(issuer) {
		md, status, err := fetchMetadata(ctx, client, mu)
		if err == nil {
			if err := md.check(issuer); err != nil {
				return nil, err
			}
			return md, nil
		}
		last = err
		if status < 300 || status >= 500 {
			return nil, err
		}
	}
	return nil, last
}

func fetchMetadata(ctx context.Context, client *http.Client, mu string) (*metadata, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, mu, nil)
	if err != nil {
		return nil, 0, fmt.Errorf("%w: discovery: %w", ErrConfig, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("%w: discovery: %w", ErrUnavailable, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
		return nil, resp.StatusCode, fmt.Errorf("%w: discovery: %s answered %d", ErrUnavailable, mu, resp.StatusCode)
	case resp.StatusCode != http.StatusOK:
		return nil, resp.StatusCode, fmt.Errorf("%w: discovery: %s answered %d (redirects are not followed)", ErrConfig, mu, resp.StatusCode)
	}
	body, err := readCapped(resp.Body)
	if err != nil {
		return nil, resp.StatusCode, fmt.Errorf("%w: discovery: %s: %w", ErrInvalidResponse, mu, err)
	}
	var md metadata
	if err := json.Unmarshal(body, &md); err != nil {
		return nil, resp.StatusCode, fmt.Errorf("%w: discovery: %s is not a JSON metadata document", ErrInvalidResponse, mu)
	}
	return &md, resp.StatusCode, nil
}

// check applies RFC 8414 §3.3: the document's issuer must be exactly the
// configured one, and its token endpoint must be acceptable.
func (md *metadata) check(issuer string) error {
	if md.Issuer != issuer {
		return fmt.Errorf("%w: discovery: the metadata names issuer %q, not %q (RFC 8414 §3.3)", ErrConfig, cleanText(md.Issuer, 256, nil), issuer)
	}
	if md.TokenEndpoint == "" {
		return fmt.Errorf("%w: discovery: the metadata has no token_endpoint", ErrConfig)
	}
	if err := checkEndpoint(md.TokenEndpoint); err != nil {
		return fmt.Errorf("%w: discovery: token_endpoint: %s", ErrConfig, cleanText(err.Error(), 512, nil))
	}
	return nil
}

// accepts reports an error when the document lists the client
// authentication methods and m is not among them.
func (md *metadata) accepts(m AuthMethod) error {
	if len(md.TokenEndpointAuthMethodsSupported) == 0 || slices.Contains(md.TokenEndpointAuthMethodsSupported, string(m)) {
		return nil
	}
	return fmt.Errorf("%w: Config.AuthMethod: the issuer does not support %s (token_endpoint_auth_methods_supported)", ErrConfig, m)
}
