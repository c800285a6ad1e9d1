package auth

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/internal/oauthsyntax"
)

func TestBearerToken(t *testing.T) {
	const tok = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln"
	tests := []struct {
		name    string
		headers []string
		query   string
		want    string
		wantErr error
	}{
		{name: "canonical", headers: []string{"Bearer " + tok}, want: tok},
		{name: "scheme lower case", headers: []string{"bearer " + tok}, want: tok},
		{name: "scheme mixed case", headers: []string{"BeArEr " + tok}, want: tok},
		{name: "several spaces", headers: []string{"Bearer   " + tok}, want: tok},
		{name: "padding", headers: []string{"Bearer abc=="}, want: "abc=="},
		{name: "no header", wantErr: ErrNoCredential},
		{name: "basic scheme", headers: []string{"Basic dXNlcjpwYXNz"}, wantErr: ErrNoCredential},
		{name: "scheme prefix only", headers: []string{"Bearerx " + tok}, wantErr: ErrNoCredential},
		{name: "scheme alone", headers: []string{"Bearer"}, wantErr: ErrMalformedRequest},
		{name: "scheme and space", headers: []string{"Bearer "}, wantErr: ErrMalformedRequest},
		{name: "two headers", headers: []string{"Bearer " + tok, "Bearer " + tok}, wantErr: ErrMalformedRequest},
		{name: "two tokens in one header", headers: []string{"Bearer " + tok + " " + tok}, wantErr: ErrMalformedRequest},
		{name: "comma list", headers: []string{"Bearer " + tok + ", Bearer " + tok}, wantErr: ErrMalformedRequest},
		{name: "trailing space", headers: []string{"Bearer " + tok + " "}, wantErr: ErrMalformedRequest},
		{name: "tab separator", headers: []string{"Bearer\t" + tok}, wantErr: ErrNoCredential},
		{name: "quote in token", headers: []string{`Bearer a"b`}, wantErr: ErrMalformedRequest},
		{name: "padding in middle", headers: []string{"Bearer ab=c"}, wantErr: ErrMalformedRequest},
		{name: "only padding", headers: []string{"Bearer =="}, wantErr: ErrMalformedRequest},
		{name: "non ascii", headers: []string{"Bearer abcé"}, wantErr: ErrMalformedRequest},
		{name: "oversized", headers: []string{"Bearer " + strings.Repeat("a", DefaultMaxTokenBytes+1)}, wantErr: ErrInvalidToken},
		{name: "oversized and malformed", headers: []string{"Bearer " + strings.Repeat("a", DefaultMaxTokenBytes+1) + "\""}, wantErr: ErrMalformedRequest},
		{name: "query token alone is ignored", query: "access_token=" + tok, wantErr: ErrNoCredential},
		{name: "query token with basic header is ignored", headers: []string{"Basic dXNlcjpwYXNz"}, query: "access_token=" + tok, wantErr: ErrNoCredential},
		{name: "query token with header", headers: []string{"Bearer " + tok}, query: "access_token=" + tok, wantErr: ErrMalformedRequest},
		{name: "unrelated query", headers: []string{"Bearer " + tok}, query: "x=1", want: tok},
		{name: "query token after a semicolon with header", headers: []string{"Bearer " + tok}, query: "x=1;access_token=" + tok, wantErr: ErrMalformedRequest},
		{name: "escaped query name with header", headers: []string{"Bearer " + tok}, query: "access%5Ftoken=" + tok, wantErr: ErrMalformedRequest},
		{name: "empty query token with header", headers: []string{"Bearer " + tok}, query: "access_token", wantErr: ErrMalformedRequest},
		{name: "lookalike query name", headers: []string{"Bearer " + tok}, query: "access_tokens=1&xaccess_token=2", want: tok},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/mcp?"+tt.query, nil)
			for _, h := range tt.headers {
				r.Header.Add("Authorization", h)
			}
			got, err := BearerToken(r, 0)
			if tt.wantErr != nil {
				require.Error(t, err)
				assert.ErrorIs(t, err, tt.wantErr)
				assert.NotContains(t, err.Error(), tok, "error must not echo the token")
				assert.Empty(t, got)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

// TestAccessTokenQuery: with DPoP accepted, a query token is treated as
// by BearerToken — ignored alone, ambiguous beside a header (issue 15.7).
func TestAccessTokenQuery(t *testing.T) {
	const tok = "abc.def.ghi"
	r := httptest.NewRequest(http.MethodPost, "/mcp?access_token="+tok, nil)
	_, _, err := accessToken(r, 0, true)
	assert.ErrorIs(t, err, ErrNoCredential, "a query-only token is no credential")
	for _, h := range []string{"Bearer " + tok, "DPoP " + tok} {
		r.Header.Set("Authorization", h)
		_, _, err = accessToken(r, 0, true)
		assert.ErrorIs(t, err, ErrMalformedRequest, h)
	}
	r.Header.Set("Authorization", "Basic dXNlcjpwYXNz")
	_, _, err = accessToken(r, 0, true)
	assert.ErrorIs(t, err, ErrNoCredential)
}

func TestHasAccessTokenParam(t *testing.T) {
	for raw, want := range map[string]bool{
		"":                        false,
		"access_token=x":          true,
		"access_token":            true,
		"access_token=":           true,
		"a=1&access_token=x":      true,
		"a=1;access_token=x":      true,
		"access%5Ftoken=x":        true,
		"access%5ftoken=x":        true,
		"%61ccess_token=x":        true,
		"access_token%3D=x":       false, // the name is "access_token="
		"access+token=x":          false,
		"access_tokens=x":         false,
		"x=access_token":          false,
		"xaccess_token=1":         false,
		"access%zztoken=x":        false,
		"a=%zz&access_token=x":    true, // a bad escape elsewhere hides nothing
		"&&;;access_token=x&&":    true,
		"ACCESS_TOKEN=x":          false, // parameter names are case-sensitive
		"access_token%00=x":       false,
		strings.Repeat("a&", 100): false,
	} {
		assert.Equal(t, want, hasAccessTokenParam(raw), "%q", raw)
	}
}

func TestFormBodyToken(t *testing.T) {
	const form = "application/x-www-form-urlencoded"
	tests := []struct {
		name, ct, body string
		found          bool
		wantErr        error
		examined       bool
	}{
		{name: "form with token", ct: form, body: "a=1&access_token=abc", found: true, examined: true},
		{name: "form with charset", ct: "Application/X-WWW-Form-Urlencoded; charset=utf-8", body: "access_token=abc", found: true, examined: true},
		{name: "form without token", ct: form, body: "a=1&b=2", examined: true},
		{name: "json is not examined", ct: "application/json", body: "access_token=abc"},
		{name: "multipart is not the form method", ct: "multipart/form-data; boundary=x", body: "access_token=abc"},
		{name: "no content type", body: "access_token=abc"},
		{name: "form at the cap", ct: form, body: strings.Repeat("a", maxFormScan-len("&access_token=x")) + "&access_token=x", found: true, examined: true},
		{name: "form over the cap", ct: form, body: strings.Repeat("a", maxFormScan+1), wantErr: ErrMalformedRequest},
	}
	for _, tt := range tests {
		for _, chunked := range []bool{false, true} {
			name := tt.name
			if chunked {
				name += "/unknown length"
			}
			t.Run(name, func(t *testing.T) {
				r := httptest.NewRequest(http.MethodPost, "/mcp", strings.NewReader(tt.body))
				if chunked {
					r.ContentLength = -1
				}
				if tt.ct != "" {
					r.Header.Set("Content-Type", tt.ct)
				}
				orig := r.Body
				found, body, err := formBodyToken(r)
				assert.True(t, orig == r.Body, "r is not modified")
				if tt.wantErr != nil {
					require.ErrorIs(t, err, tt.wantErr)
					assert.NotContains(t, err.Error(), "aaaa")
					return
				}
				require.NoError(t, err)
				assert.Equal(t, tt.found, found)
				if !tt.examined {
					assert.Nil(t, body, "nothing read")
					return
				}
				require.NotNil(t, body)
				got, err := io.ReadAll(body)
				require.NoError(t, err)
				assert.Equal(t, tt.body, string(got), "the body is replayed whole")
				require.NoError(t, body.Close())
			})
		}
	}
}

func FuzzHasAccessTokenParam(f *testing.F) {
	for _, s := range []string{"access_token=x", "a=1;access_token=x", "access%5Ftoken=", "access_token%", "%", "&;=", "access+token", "%61ccess_token"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		got := hasAccessTokenParam(raw)
		// Whatever url.ParseQuery sees must be seen too: a parameter it
		// finds can never slip past the ambiguity check.
		if q, _ := url.ParseQuery(raw); q.Has("access_token") && !got {
			t.Fatalf("url.ParseQuery finds access_token in %q, hasAccessTokenParam does not", raw)
		}
		// With ';' as a separator as well.
		if q, _ := url.ParseQuery(strings.ReplaceAll(raw, ";", "&")); q.Has("access_token") && !got {
			t.Fatalf("access_token after a ';' in %q missed", raw)
		}
		if !strings.Contains(raw, "access") && !strings.Contains(raw, "%") && got {
			t.Fatalf("found a parameter in %q, which cannot name one", raw)
		}
	})
}

func TestParseAuthorizationMaxBytes(t *testing.T) {
	_, err := parseAuthorization("Bearer abcdef", 5)
	assert.ErrorIs(t, err, ErrInvalidToken, "a well-formed token over the cap is invalid_token (RFC 6750 §3.1)")
	assert.NotErrorIs(t, err, ErrMalformedRequest)
	e := AsError(err)
	assert.Equal(t, http.StatusUnauthorized, e.Status)
	assert.Equal(t, CodeInvalidToken, e.Code)
	got, err := parseAuthorization("Bearer abcde", 5)
	require.NoError(t, err)
	assert.Equal(t, "abcde", got)
}

func FuzzParseAuthorization(f *testing.F) {
	for _, s := range []string{"Bearer abc", "Bearer " + strings.Repeat("a", 65), "bearer a.b.c", "Bearer ", "Basic x", "Bearer a b", "Bearer ==", "BEARER x=", "Bearer\x00x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		tok, err := parseAuthorization(v, 64)
		if err != nil {
			if !errors.Is(err, ErrNoCredential) && !errors.Is(err, ErrMalformedRequest) && !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("unexpected error class: %v", err)
			}
			if tok != "" {
				t.Fatalf("token returned with error")
			}
			// Error text comes from a fixed table: it cannot echo input.
			switch err.Error() {
			case ErrNoCredential.Error(),
				ErrMalformedRequest.Error() + ": empty bearer token",
				"auth: " + descTooLarge + ": " + ErrInvalidToken.Error() + ": bearer token longer than 64 bytes",
				ErrMalformedRequest.Error() + ": bearer token has characters outside the RFC 6750 b64token set":
			default:
				t.Fatalf("error text not from the fixed table: %q", err)
			}
			return
		}
		if tok == "" || len(tok) > 64 || !oauthsyntax.IsB64Token(tok) {
			t.Fatalf("accepted bad token %q", tok)
		}
		if !strings.HasSuffix(v, tok) || !asciiEqualFold(v[:6], "bearer") {
			t.Fatalf("token %q not the tail of a Bearer header %q", tok, v)
		}
		// Every accepted token must be pure header-safe ASCII: it cannot
		// smuggle separators into anything it is later written to.
		for i := 0; i < len(tok); i++ {
			if tok[i] <= ' ' || tok[i] >= 0x7f || tok[i] == ',' || tok[i] == '"' {
				t.Fatalf("unsafe byte %q in token", tok[i])
			}
		}
	})
}
