package obo

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/internal/oauthsyntax"
)

const (
	fuzzSubject = "subject-token-0123456789abcdefghij"
	fuzzSecret  = "client-secret-0123456789"
	fuzzOpaque  = "opaque/token+0123==" // form-encoded differently
	fuzzShort   = "p+w="                // shorter than minRedactLen
)

// fuzzForms are the forms of the fuzz secrets that must never come back:
// raw and form-urlencoded.
var fuzzForms = []string{
	fuzzSubject, fuzzSecret, fuzzOpaque, url.QueryEscape(fuzzOpaque), strings.ToLower(url.QueryEscape(fuzzOpaque)),
	fuzzShort, url.QueryEscape(fuzzShort),
}

func fuzzExchanger(t testing.TB) *Exchanger {
	t.Helper()
	e := &Exchanger{cfg: Config{Now: func() time.Time { return time.Unix(1700000000, 0) }}}
	return e
}

// FuzzParseToken: whatever a token endpoint answers with 200, parsing
// neither panics nor accepts something unusable, and no error quotes a
// secret.
func FuzzParseToken(f *testing.F) {
	for _, s := range []string{
		`{"access_token":"abc","token_type":"Bearer","issued_token_type":"urn:ietf:params:oauth:token-type:access_token","expires_in":3600}`,
		`{"access_token":"abc","token_type":"bearer","expires_in":"3599"}`,
		`{"access_token":"` + fuzzSubject + `","token_type":"Bearer","issued_token_type":"urn:ietf:params:oauth:token-type:jwt"}`,
		`{"error":"invalid_grant","error_description":"` + fuzzSecret + `"}`,
		`{"access_token":"a b","token_type":"N_A","expires_in":-1}`,
		`{"access_token":"x","token_type":"` + fuzzSecret + `"}`,
		`{"access_token":"x","token_type":"Bearer","issued_token_type":"pre` + fuzzSubject + `"}`,
		`{"expires_in":1e400}`, `[]`, `null`, ``,
	} {
		f.Add([]byte(s), uint8(TokenExchange))
		f.Add([]byte(s), uint8(EntraOBO))
	}
	e := fuzzExchanger(f)
	f.Fuzz(func(t *testing.T, body []byte, flavor uint8) {
		ft := Flavor(flavor%3 + 1)
		tgt := Target{Flavor: ft, Audience: "a"}
		if ft != TokenExchange {
			tgt = Target{Flavor: ft, Scopes: []string{"api://x/.default"}}
		}
		ct, err := compileTarget(tgt)
		require.NoError(t, err)
		tok, err := e.parseToken(ct, fuzzSubject, "application/json", body, []string{fuzzSubject, fuzzSecret})
		if err != nil {
			var oe *Error
			require.ErrorAs(t, err, &oe)
			assert.True(t, errors.Is(err, ErrInvalidResponse) || errors.Is(err, ErrRejected))
			assert.NotContains(t, err.Error(), fuzzSubject)
			assert.NotContains(t, err.Error(), fuzzSecret)
			return
		}
		raw := tok.AccessToken.Reveal()
		assert.True(t, oauthsyntax.IsB64Token(raw))
		assert.NotEqual(t, fuzzSubject, raw)
		assert.Equal(t, "Bearer", tok.TokenType)
		if ft == TokenExchange {
			assert.Contains(t, []string{TokenTypeAccessToken, TokenTypeJWT}, tok.IssuedTokenType)
		}
		if !tok.Expiry.IsZero() {
			assert.True(t, tok.Expiry.After(e.cfg.Now()))
		}
	})
}

// FuzzErrorResponse: the fields kept from an error answer are printable,
// bounded and free of the secrets sent and of JWTs.
func FuzzErrorResponse(f *testing.F) {
	for _, s := range []string{
		`{"error":"invalid_grant","error_description":"token ` + fuzzSubject + ` expired"}`,
		`{"error":"interaction_required","claims":"{\"access_token\":{}}","error_codes":[50076,"x"],"suberror":"basic_action"}`,
		`{"error":"x","error_description":"eyJhbGciOi.eyJzdWIi.sig and eyJ alone"}`,
		`{"error":"\u0000\n","error_uri":"https://` + fuzzSecret + `"}`,
		`{"error_codes":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18]}`,
		`{"error":"` + fuzzSecret + `","suberror":"x` + fuzzSubject + `"}`,
		`{"error_description":"client-secret-\u00000123456789 ` + fuzzSubject[:10] + `\n` + fuzzSubject[10:] + `"}`,
		`{"error_description":"got subject_token=opaque%2Ftoken%2B0123%3D%3D&client_secret=p%2Bw%3D"}`,
		`{"error_description":"got opaque%2ftoken%2b0123%3d%3d and p+w= here","error_uri":"https://x/?s=p%2Bw%3D"}`,
		`{"error":"p%2Bw%3D","suberror":"opaque/token+0123=="}`,
		`{"error_description":"` + strings.Repeat(fuzzSubject+" ", 60) + `client-secret-0123456789"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		oe := newResponseError(TokenExchange, 400, body, ErrRejected, fuzzSubject, fuzzSecret, fuzzOpaque, fuzzShort)
		require.ErrorIs(t, oe, ErrRejected)
		for _, s := range []string{oe.Error(), oe.Description, oe.URI, oe.Claims, oe.Code, oe.SubError} {
			for _, f := range fuzzForms {
				assert.NotContains(t, s, f)
			}
			for i := 0; i < len(s); i++ {
				assert.True(t, s[i] >= 0x20 && s[i] <= 0x7e, "non-printable byte %q", s[i])
			}
		}
		assert.NotContains(t, oe.Description, "eyJhbGciOi.")
		assert.LessOrEqual(t, len(oe.Description), maxDescriptionLen)
		assert.LessOrEqual(t, len(oe.Claims), maxClaimsLen)
		assert.LessOrEqual(t, len(oe.ErrorCodes), maxErrorCodes)
		assert.LessOrEqual(t, len(oe.Code), maxCodeLen)
	})
}

// FuzzMetadata: a discovery document either passes RFC 8414 §3.3 checks
// with an acceptable token endpoint, or is a configuration error.
func FuzzMetadata(f *testing.F) {
	const issuer = "https://as.example.com/tenant"
	for _, s := range []string{
		`{"issuer":"https://as.example.com/tenant","token_endpoint":"https://as.example.com/tenant/token"}`,
		`{"issuer":"https://as.example.com/tenant","token_endpoint":"http://evil.example/token"}`,
		`{"issuer":"https://as.example.com/tenant/","token_endpoint":"https://as.example.com/t"}`,
		`{"issuer":"https://as.example.com/tenant","token_endpoint":"https://u:p@as.example.com/t#f"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var md metadata
		if json.Unmarshal(body, &md) != nil {
			return
		}
		err := md.check(issuer)
		if err != nil {
			require.ErrorIs(t, err, ErrConfig)
			return
		}
		assert.Equal(t, issuer, md.Issuer)
		assert.NoError(t, checkEndpoint(md.TokenEndpoint))
		assert.True(t, strings.HasPrefix(md.TokenEndpoint, "https://") || strings.HasPrefix(md.TokenEndpoint, "http://"))
	})
}

// FuzzParseExpiresIn: accepted values are integers in range.
func FuzzParseExpiresIn(f *testing.F) {
	for _, s := range []string{`3600`, `"3599"`, `0`, `-1`, `1.5`, `1e3`, `"x"`, `99999999999999999999`, `""`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		n, err := parseExpiresIn(raw)
		if err == nil {
			assert.GreaterOrEqual(t, n, int64(1))
			assert.LessOrEqual(t, n, int64(maxExpiresIn))
		}
	})
}

// TestKeyUnambiguous: moving bytes between fields never yields the same
// key.
func TestKeyUnambiguous(t *testing.T) {
	mk := func(tg Target) *target {
		ct, err := compileTarget(tg)
		require.NoError(t, err)
		return ct
	}
	subj := func(s string) [32]byte { // what auth.Credential.Digest returns
		if s == "" {
			return [32]byte{}
		}
		return sha256.Sum256([]byte(s))
	}
	var ex [32]byte // an Exchanger's id
	keys := map[[32]byte]string{}
	add := func(name string, k [32]byte) {
		if prev, dup := keys[k]; dup {
			t.Fatalf("%s and %s share a cache key", name, prev)
		}
		keys[k] = name
	}
	add("ab|c", mk(Target{Flavor: TokenExchange, Audience: "ab", Resource: "https://c"}).key(ex, subj("s")))
	add("a|bc", mk(Target{Flavor: TokenExchange, Audience: "a", Resource: "https://bc"}).key(ex, subj("s")))
	add("scopes x,y", mk(Target{Flavor: TokenExchange, Audience: "a", Scopes: []string{"x", "y"}}).key(ex, subj("s")))
	add("scope xy", mk(Target{Flavor: TokenExchange, Audience: "a", Scopes: []string{"xy"}}).key(ex, subj("s")))
	add("subject s1", mk(Target{Flavor: TokenExchange, Audience: "a"}).key(ex, subj("s1")))
	add("subject s", mk(Target{Flavor: TokenExchange, Audience: "a"}).key(ex, subj("s")))
	add("obo", mk(Target{Flavor: EntraOBO, Scopes: []string{"a"}}).key(ex, subj("s")))
	add("cc", mk(Target{Flavor: ClientCredentials, Scopes: []string{"a"}}).key(ex, subj("")))
	add("another exchanger", mk(Target{Flavor: TokenExchange, Audience: "a"}).key(sha256.Sum256([]byte("ex")), subj("s")))
	add("cc, another exchanger", mk(Target{Flavor: ClientCredentials, Scopes: []string{"a"}}).key(sha256.Sum256([]byte("ex")), subj("")))
	long := strings.Repeat("x", 5000) // beyond the stack buffer
	add("long subject", mk(Target{Flavor: TokenExchange, Audience: "a"}).key(ex, subj(long)))
	assert.Equal(t, mk(Target{Flavor: TokenExchange, Audience: "a"}).key(ex, subj(long)), mk(Target{Flavor: TokenExchange, Audience: "a"}).key(ex, subj(long)))
}

func TestCacheLRU(t *testing.T) {
	c := newCache(2)
	now := time.Unix(0, 0)
	k := func(b byte) [32]byte { return [32]byte{b} }
	c.put(k(1), Token{TokenType: "1"}, now.Add(time.Hour))
	c.put(k(2), Token{TokenType: "2"}, now.Add(time.Hour))
	_, ok := c.get(k(1), now)
	require.True(t, ok)
	c.put(k(3), Token{TokenType: "3"}, now.Add(time.Hour))
	assert.Equal(t, 2, c.len())
	_, ok = c.get(k(2), now)
	assert.False(t, ok, "2 was least recently used")
	_, ok = c.get(k(1), now.Add(time.Hour))
	assert.False(t, ok, "expired at its refresh time")
	assert.Equal(t, 1, c.len(), "an expired entry is removed on lookup")
}

// TestCleanTextForms: cleanText removes every form a secret was sent in,
// drops a text holding a short one, and lets no part of a secret through
// the cut it makes in a long text.
func TestCleanTextForms(t *testing.T) {
	basic := "bWNwLXNlcnZlcjpzM2NyM3QlMkJ2JTJGYWx1ZSUzRHh5eg==" // base64("mcp-server:" + QueryEscape(secret))
	long := strings.Repeat("opaque/tok+", 60)                   // 660 bytes
	forms := sentForms([]string{"s3cr3t+v/alue=xyz", basic, long, "pw1", "p\x00ässwörd-long"})
	tests := []struct {
		name string
		in   string
		want string
		gone []string // must not appear
	}{
		{"raw", "bad s3cr3t+v/alue=xyz here", "bad [REDACTED] here", nil},
		{"form-encoded", "client_secret=s3cr3t%2Bv%2Falue%3Dxyz&x=1", "client_secret=[REDACTED]&x=1", nil},
		{"form-encoded, lower-case hex", "client_secret=s3cr3t%2bv%2falue%3dxyz", "client_secret=[REDACTED]", nil},
		{"Basic header", "auth=Basic " + basic + " end", "auth=Basic [REDACTED] end", nil},
		{"Basic header, unpadded", "auth=Basic " + strings.TrimRight(basic, "="), "auth=Basic [REDACTED]", nil},
		{"short secret drops the text", "client_secret=pw1&x=1", "", nil},
		{"non-ASCII secret as its printable bytes", "got psswrd-long", "got [REDACTED]", nil},
		{"harmless text", "the subject token has expired", "the subject token has expired", nil},
		{"secret cut by the length cap", strings.Repeat(long+" ", 3) + strings.Repeat("x", 4*maxDescriptionLen-3*(len(long)+1)-6) + "s3cr3t+v/alue=xyz",
			"", []string{"s3cr3t", "s3cr"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := cleanText(tt.in, maxDescriptionLen, forms)
			if tt.gone == nil {
				assert.Equal(t, tt.want, got)
			}
			for _, g := range tt.gone {
				assert.NotContains(t, got, g)
			}
			for _, f := range forms {
				assert.NotContains(t, got, f)
			}
		})
	}
}

// FuzzPercentDecoded: the passthrough check's decoder reads every query
// url.PathUnescape can decode exactly as it does, and never fails on one it
// cannot.
func FuzzPercentDecoded(f *testing.F) {
	for _, s := range []string{"", "a=b", "t=2YotnFZ%2BFEjr1z%2fCsic%3D", "x=%zz&t=%2B", "%", "%4", "%41%"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := percentDecoded(s)
		if want, err := url.PathUnescape(s); err == nil && got != want {
			t.Fatalf("percentDecoded(%q) = %q, url.PathUnescape gives %q", s, got, want)
		}
		if !strings.Contains(s, "%") && got != s {
			t.Fatalf("percentDecoded(%q) changed a string without escapes", s)
		}
	})
}
