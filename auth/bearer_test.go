package auth

import (
	"errors"
	"net/http"
	"net/http/httptest"
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

func TestParseAuthorizationMaxBytes(t *testing.T) {
	_, err := ParseAuthorization("Bearer abcdef", 5)
	assert.ErrorIs(t, err, ErrInvalidToken, "a well-formed token over the cap is invalid_token (RFC 6750 §3.1)")
	assert.NotErrorIs(t, err, ErrMalformedRequest)
	e := AsError(err)
	assert.Equal(t, http.StatusUnauthorized, e.Status)
	assert.Equal(t, CodeInvalidToken, e.Code)
	got, err := ParseAuthorization("Bearer abcde", 5)
	require.NoError(t, err)
	assert.Equal(t, "abcde", got)
}

func FuzzParseAuthorization(f *testing.F) {
	for _, s := range []string{"Bearer abc", "Bearer " + strings.Repeat("a", 65), "bearer a.b.c", "Bearer ", "Basic x", "Bearer a b", "Bearer ==", "BEARER x=", "Bearer\x00x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		tok, err := ParseAuthorization(v, 64)
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
