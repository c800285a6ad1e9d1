package auth

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/mark3labs/mcp-go/server"

	"github.com/mcpguard/mcpguard/internal/loopback"
	"github.com/mcpguard/mcpguard/internal/redact"
)

// ResourceMetadataURL returns the absolute URL of the protected resource
// metadata document for resource, formed as RFC 9728 §3.1 prescribes: the
// well-known segment is inserted between the host and the resource's path,
// so "https://mcp.example.com/mcp" gives
// "https://mcp.example.com/.well-known/oauth-protected-resource/mcp".
// It uses mcp-go's server.ProtectedResourceMetadataPath for the path.
func ResourceMetadataURL(resource string) (string, error) {
	u, err := parseResource(resource)
	if err != nil {
		return "", err
	}
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: server.ProtectedResourceMetadataPath(resource)}).String(), nil
}

// CheckResource reports whether resource is an acceptable protected
// resource identifier: an absolute https URL without query, fragment or
// user info (RFC 9728 §1.2, RFC 8707 §2), or http when the host is a
// loopback address or "localhost", whose path holds no percent-encoding
// and only the characters RFC 3986 allows unencoded (the path is the
// http.ServeMux pattern the endpoint is mounted at).
func CheckResource(resource string) error {
	_, err := parseResource(resource)
	return err
}

// Configuration errors name a refused URL as redact.URI shows it, without
// its userinfo, query or fragment: a URL written with a password
// ("https://user:pw@host") or a token in it is refused without the secret
// reaching the error text, and so a log.
func parseResource(resource string) (*url.URL, error) {
	if err := checkAbsoluteURL(resource); err != nil {
		return nil, fmt.Errorf("%w: resource %q: %v", ErrConfig, redact.URI(resource), err)
	}
	u, _ := url.Parse(resource)
	if u.RawQuery != "" {
		return nil, fmt.Errorf("%w: resource %q: must not contain a query", ErrConfig, redact.URI(resource))
	}
	if u.Scheme == "http" && !loopback.Host(u.Hostname()) {
		return nil, fmt.Errorf("%w: resource %q: plain http is allowed only for loopback hosts; use https", ErrConfig, resource)
	}
	if !plainPath(u) {
		return nil, fmt.Errorf("%w: resource %q: the path may hold only letters, digits, '/' and -._~!$&'()*+,;=:@, without percent-encoding", ErrConfig, resource)
	}
	return u, nil
}

// plainPath reports whether u's path is made of RFC 3986 pchar other than
// percent-encoding, and '/'. The path is also the http.ServeMux pattern
// the endpoint and its metadata are mounted at, where a space starts a
// method, braces make a wildcard and an escape may stand for '/': such a
// resource made MountMetadata panic or the endpoint answer at other paths.
func plainPath(u *url.URL) bool {
	if u.EscapedPath() != u.Path {
		return false
	}
	for i := 0; i < len(u.Path); i++ {
		c := u.Path[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("/-._~!$&'()*+,;=:@", c) >= 0 {
			continue
		}
		return false
	}
	return true
}

// MetadataConfig is mcp-go's RFC 9728 metadata document, reused as is.
type MetadataConfig = server.ProtectedResourceMetadataConfig

// MountMetadata registers the protected resource metadata document on mux,
// using mcp-go's handler, at the path-inserted well-known URL of
// cfg.Resource (RFC 9728 §3.1) and also, for clients that only try the
// root, at "/.well-known/oauth-protected-resource" — unless mux already
// serves that path. BearerMethodsSupported defaults to ["header"], the only
// method Middleware accepts. It returns the metadata document's URL, for
// MiddlewareConfig.ResourceMetadataURL.
//
// cfg.Resource must pass CheckResource, and AuthorizationServers must hold
// at least one absolute URL: without it no client can discover where to get
// a token.
func MountMetadata(mux *http.ServeMux, cfg MetadataConfig) (string, error) {
	if mux == nil {
		return "", fmt.Errorf("%w: MountMetadata: mux is nil", ErrConfig)
	}
	metaURL, err := ResourceMetadataURL(cfg.Resource)
	if err != nil {
		return "", err
	}
	if len(cfg.AuthorizationServers) == 0 {
		return "", fmt.Errorf("%w: MetadataConfig.AuthorizationServers: at least one issuer is required", ErrConfig)
	}
	for _, as := range cfg.AuthorizationServers {
		if err := checkAbsoluteURL(as); err != nil {
			return "", fmt.Errorf("%w: MetadataConfig.AuthorizationServers %q: %v", ErrConfig, redact.URI(as), err)
		}
	}
	cfg.AuthorizationServers = slices.Clone(cfg.AuthorizationServers)
	cfg.ScopesSupported = slices.Clone(cfg.ScopesSupported)
	if len(cfg.BearerMethodsSupported) == 0 {
		cfg.BearerMethodsSupported = []string{"header"}
	}
	h := server.NewProtectedResourceMetadataHandler(cfg)
	p := server.ProtectedResourceMetadataPath(cfg.Resource)
	mux.Handle(p, h)
	if p != server.WellKnownProtectedResourcePath && !muxHas(mux, server.WellKnownProtectedResourcePath) {
		mux.Handle(server.WellKnownProtectedResourcePath, h)
	}
	return metaURL, nil
}

func muxHas(mux *http.ServeMux, path string) bool {
	req := &http.Request{Method: http.MethodGet, URL: &url.URL{Path: path}, Host: "localhost"}
	_, pattern := mux.Handler(req)
	return pattern == path
}

// DPoPMetadata returns cfg advertising v's DPoP support (RFC 9728 §2,
// RFC 9449 §5.1): dpop_signing_alg_values_supported, and
// dpop_bound_access_tokens_required true in DPoPRequired mode. A validator
// without DPoP (or DPoPDisabled) leaves cfg unchanged.
func DPoPMetadata(cfg MetadataConfig, v Validator) MetadataConfig {
	dv, ok := v.(DPoPValidator)
	if !ok || dv.DPoPMode() == DPoPDisabled {
		return cfg
	}
	cfg.DPoPSigningAlgValuesSupported = dv.DPoPAlgorithms()
	if dv.DPoPMode() == DPoPRequired {
		required := true
		cfg.DPoPBoundAccessTokensRequired = &required
	}
	return cfg
}
