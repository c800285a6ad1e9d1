package auth

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestResourceMetadataURL(t *testing.T) {
	tests := []struct {
		resource, want, wantErr string
	}{
		{resource: "https://mcp.example.com/mcp", want: "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"},
		{resource: "https://mcp.example.com", want: "https://mcp.example.com/.well-known/oauth-protected-resource"},
		{resource: "https://mcp.example.com/", want: "https://mcp.example.com/.well-known/oauth-protected-resource"},
		{resource: "https://mcp.example.com:8443/a/b", want: "https://mcp.example.com:8443/.well-known/oauth-protected-resource/a/b"},
		{resource: "http://127.0.0.1:8080/mcp", want: "http://127.0.0.1:8080/.well-known/oauth-protected-resource/mcp"},
		{resource: "http://[::1]:8080/mcp", want: "http://[::1]:8080/.well-known/oauth-protected-resource/mcp"},
		{resource: "http://localhost/mcp", want: "http://localhost/.well-known/oauth-protected-resource/mcp"},
		{resource: "http://mcp.example.com/mcp", wantErr: "plain http is allowed only for loopback"},
		{resource: "/mcp", wantErr: "absolute"},
		{resource: "", wantErr: "required"},
		{resource: "https://mcp.example.com/mcp#frag", wantErr: "fragment"},
		{resource: "https://mcp.example.com/mcp?x=1", wantErr: "query"},
		{resource: "ftp://mcp.example.com/mcp", wantErr: "absolute http(s)"},
		// The path is a ServeMux pattern: a space made MountMetadata panic,
		// braces a wildcard serving every path, an escape another path.
		{resource: "https://mcp.example.com/a%20b", wantErr: "percent-encoding"},
		{resource: "https://mcp.example.com/GET /mcp", wantErr: "percent-encoding"},
		{resource: "https://mcp.example.com/{id}", wantErr: "percent-encoding"},
		{resource: "https://mcp.example.com/%7Bid%7D", wantErr: "percent-encoding"},
		{resource: "https://mcp.example.com/a%2Fb", wantErr: "percent-encoding"},
		{resource: "https://mcp.example.com/%6Dcp", wantErr: "percent-encoding"},
		{resource: "https://mcp.example.com/v1/mcp-server_2.x~:@", want: "https://mcp.example.com/.well-known/oauth-protected-resource/v1/mcp-server_2.x~:@"},
	}
	for _, tt := range tests {
		t.Run(tt.resource, func(t *testing.T) {
			got, err := ResourceMetadataURL(tt.resource)
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.ErrorIs(t, err, ErrConfig)
				assert.Contains(t, err.Error(), tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

// TestResourceErrorsHideURLSecrets: a resource or authorization server
// refused for its userinfo or query is named without them, so the password
// or token written there never reaches the error text (and the log of a
// server refusing to start).
func TestResourceErrorsHideURLSecrets(t *testing.T) {
	const secret = "hunter2secret"
	for _, tt := range []struct{ url, want string }{
		{"https://user:" + secret + "@mcp.example.com/mcp", "user info"},
		{"https://" + secret + "@mcp.example.com/mcp", "user info"},
		{"http://user:" + secret + "@127.0.0.1/mcp", "user info"},
		{"https://mcp.example.com/mcp?key=" + secret, "query"},
		{"https://mcp.example.com/mcp#" + secret, "fragment"},
	} {
		t.Run(tt.url, func(t *testing.T) {
			err := CheckResource(tt.url)
			require.ErrorIs(t, err, ErrConfig)
			assert.Contains(t, err.Error(), tt.want)
			assert.NotContains(t, err.Error(), secret)

			_, err = MountMetadata(http.NewServeMux(), MetadataConfig{
				Resource: "https://mcp.example.com/mcp", AuthorizationServers: []string{tt.url},
			})
			if tt.want != "query" { // a query is allowed in an issuer URL
				require.ErrorIs(t, err, ErrConfig)
				assert.Contains(t, err.Error(), "AuthorizationServers")
			}
			if err != nil {
				assert.NotContains(t, err.Error(), secret)
			}
		})
	}
}

func TestMountMetadata(t *testing.T) {
	mux := http.NewServeMux()
	metaURL, err := MountMetadata(mux, MetadataConfig{
		Resource:             "https://mcp.example.com/mcp",
		AuthorizationServers: []string{"https://idp.example.com"},
		ScopesSupported:      []string{"notes:read", "notes:write"},
	})
	require.NoError(t, err)
	assert.Equal(t, "https://mcp.example.com/.well-known/oauth-protected-resource/mcp", metaURL)

	for _, path := range []string{"/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"} {
		t.Run(path, func(t *testing.T) {
			rec := httptest.NewRecorder()
			mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
			require.Equal(t, http.StatusOK, rec.Code)
			var doc map[string]any
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &doc))
			assert.Equal(t, "https://mcp.example.com/mcp", doc["resource"])
			assert.Equal(t, []any{"https://idp.example.com"}, doc["authorization_servers"])
			assert.Equal(t, []any{"notes:read", "notes:write"}, doc["scopes_supported"])
			assert.Equal(t, []any{"header"}, doc["bearer_methods_supported"])
		})
	}

	// A second resource on the same mux keeps the first one's root document.
	_, err = MountMetadata(mux, MetadataConfig{Resource: "https://mcp.example.com/other", AuthorizationServers: []string{"https://idp.example.com"}})
	require.NoError(t, err)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/.well-known/oauth-protected-resource", nil))
	assert.Contains(t, rec.Body.String(), `"resource":"https://mcp.example.com/mcp"`)
}

func TestMountMetadataErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  MetadataConfig
		want string
	}{
		{name: "no issuer", cfg: MetadataConfig{Resource: "https://a.example/mcp"}, want: "AuthorizationServers"},
		{name: "bad issuer", cfg: MetadataConfig{Resource: "https://a.example/mcp", AuthorizationServers: []string{"idp"}}, want: "AuthorizationServers"},
		{name: "bad resource", cfg: MetadataConfig{Resource: "http://a.example/mcp", AuthorizationServers: []string{"https://idp"}}, want: "plain http"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := MountMetadata(http.NewServeMux(), tt.cfg)
			require.Error(t, err)
			assert.ErrorIs(t, err, ErrConfig)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
	_, err := MountMetadata(nil, MetadataConfig{})
	assert.ErrorIs(t, err, ErrConfig)
}
