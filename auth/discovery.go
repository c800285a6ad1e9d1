package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/mcpguard/mcpguard/internal/loopback"
)

// jwksLocator returns the JWKS URL: the configured one, or the jwks_uri
// discovered from the issuer and remembered once found.
type jwksLocator struct {
	client        *http.Client
	issuer        string
	allowHTTP     bool
	mu            sync.Mutex
	jwksURL       string
	discoveryURLs []string
}

// forget drops the discovered URL so that the next fetch discovers it
// again, in case the issuer moved its JWK Set.
func (l *jwksLocator) forget() {
	l.mu.Lock()
	l.jwksURL = ""
	l.mu.Unlock()
}

func (l *jwksLocator) locate(ctx context.Context) (string, error) {
	l.mu.Lock()
	u := l.jwksURL
	l.mu.Unlock()
	if u != "" {
		return u, nil
	}
	u, err := l.discover(ctx)
	if err != nil {
		return "", err
	}
	l.mu.Lock()
	l.jwksURL = u
	l.mu.Unlock()
	return u, nil
}

// discoveryURLs returns where the metadata of issuer lives: first the
// OpenID Connect Discovery 1.0 §4 URL (issuer, trailing slash removed, plus
// "/.well-known/openid-configuration"), then the RFC 8414 §3.1 URL (the
// well-known segment inserted between host and path).
func discoveryURLs(issuer string) ([]string, error) {
	u, err := url.Parse(issuer)
	if err != nil || u.Host == "" {
		return nil, errors.New("issuer is not an absolute URL")
	}
	path := strings.TrimSuffix(u.EscapedPath(), "/")
	base := u.Scheme + "://" + u.Host
	return []string{
		base + path + "/.well-known/openid-configuration",
		base + "/.well-known/oauth-authorization-server" + path,
	}, nil
}

// discover fetches the issuer's metadata (OIDC discovery first, then RFC
// 8414) and returns its jwks_uri.
func (l *jwksLocator) discover(ctx context.Context) (string, error) {
	return discoverEndpoint(ctx, l.client, l.discoveryURLs, l.issuer, "jwks_uri", l.allowHTTP)
}

// discoverEndpoint fetches the metadata documents at urls in order and
// returns the first one's URL-valued member: the document's issuer must
// equal issuer exactly (OIDC Discovery §4.3, RFC 8414 §3.3), and the URL must
// pass the same policy as a configured one (checkFetchURL). Bodies are
// bounded by getBounded; errors name the documents, never a credential.
func discoverEndpoint(ctx context.Context, client *http.Client, urls []string, issuer, member string, allowHTTP bool) (string, error) {
	var errs []error
	for _, du := range urls {
		body, err := getBounded(ctx, client, du, "application/json")
		if err != nil {
			errs = append(errs, err)
			if ctx.Err() != nil {
				break
			}
			continue
		}
		var doc map[string]json.RawMessage
		if err := json.Unmarshal(body, &doc); err != nil || doc == nil {
			errs = append(errs, fmt.Errorf("%s: not a JSON metadata document", du))
			continue
		}
		var iss, endpoint string
		if json.Unmarshal(doc["issuer"], &iss) != nil || iss != issuer {
			errs = append(errs, fmt.Errorf("%s: metadata issuer does not match the configured issuer", du))
			continue
		}
		if json.Unmarshal(doc[member], &endpoint) != nil || endpoint == "" {
			errs = append(errs, fmt.Errorf("%s: metadata has no %s", du, member))
			continue
		}
		if err := checkFetchURL(endpoint, allowHTTP); err != nil {
			errs = append(errs, fmt.Errorf("%s: %s: %w", du, member, err))
			continue
		}
		return endpoint, nil
	}
	return "", fmt.Errorf("discovering the %s of the issuer: %w", member, errors.Join(errs...))
}

// checkFetchURL accepts an absolute https URL without user info or
// fragment, or http to a loopback host (or any host when allowHTTP).
func checkFetchURL(s string, allowHTTP bool) error {
	if err := checkAbsoluteURL(s); err != nil {
		return err
	}
	u, _ := url.Parse(s)
	if u.Scheme == "http" && !allowHTTP && !loopback.Host(u.Hostname()) {
		return errors.New("plain http is allowed only for loopback hosts (see InsecureAllowHTTP)")
	}
	return nil
}
