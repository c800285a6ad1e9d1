package jobtoken

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/mcpguard/mcpguard/auth"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// assertRefusal checks what every refusal of Validate must be: an
// *auth.Error, 401 or 503, wrapping auth.ErrInvalidToken when 401, whose
// text and description hold neither token.
func assertRefusal(t *testing.T, err error, tokens ...string) {
	t.Helper()
	e := auth.AsError(err)
	require.NotNil(t, e)
	switch e.Status {
	case http.StatusUnauthorized:
		assert.ErrorIs(t, err, auth.ErrInvalidToken)
	case http.StatusServiceUnavailable:
	default:
		t.Errorf("status %d", e.Status)
	}
	for _, tok := range tokens {
		if len(tok) < 16 {
			continue // too short to tell from the error's own words
		}
		assert.NotContains(t, err.Error(), tok)
		assert.NotContains(t, e.Description, tok)
		for _, seg := range strings.Split(tok, ".") {
			if len(seg) >= 16 {
				assert.NotContains(t, err.Error(), seg)
			}
		}
	}
}

// FuzzValidatePair feeds the job validator arbitrary token pairs: nothing
// panics, every refusal is a clean *auth.Error, and a pair is accepted
// only when it is the real one.
func FuzzValidatePair(f *testing.F) {
	fx := newJobFixture(f, nil)
	orig := fx.userToken(f, nil)
	job := fx.mint(f, orig)
	for _, s := range [][2]string{{job, orig}, {orig, job}, {job, job}, {"", ""}, {"a.b.c", orig}, {job + "x", orig},
		{"eyJhbGciOiJFZERTQSIsInR5cCI6ImpvYitqd3QiLCJraWQiOiJ4In0.e30.AA", orig}, {strings.Repeat("A", 20000), orig}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, jobTok, original string) {
		p, err := fx.validator.Validate(t.Context(), jobTok, original)
		if err != nil {
			assert.Nil(t, p)
			assertRefusal(t, err, jobTok, original)
			return
		}
		assert.Equal(t, job, jobTok)
		assert.Equal(t, orig, original)
		assert.Equal(t, auth.KindJob, p.Kind)
	})
}

// FuzzJobClaims signs arbitrary claims with the job issuer's real key (a
// key thief's view, or a minting bug) and checks that the validator's
// claim checks never panic, refuse cleanly, and accept only a job that
// names the original's user and a subset of its scopes.
func FuzzJobClaims(f *testing.F) {
	fx := newJobFixture(f, nil)
	orig := fx.userToken(f, nil)
	job := fx.mint(f, orig)
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(job, ".")[1])
	require.NoError(f, err)
	for _, s := range []string{string(b), `{}`, `null`, `[]`, `{"exp":1e300,"iat":-1e300}`, `{"scope":" "}`,
		strings.Replace(string(b), `"sub":"alice"`, `"sub":"bob"`, 1),
		strings.Replace(string(b), `"scope":"notes:read"`, `"scope":"notes:read admin"`, 1),
		strings.Replace(string(b), `"scope":"notes:read"`, `"scope":["notes:read"]`, 1),
		strings.Replace(string(b), `"sub":"alice"`, `"act":{"sub":"svc","iss":"https://x"},"sub":"alice"`, 1),
		strings.Replace(string(b), `"sub":"alice"`, `"act":{"sub":"svc","iss":7},"sub":"alice"`, 1),
		strings.Replace(string(b), `"sub":"alice"`, `"act":"svc","sub":"alice"`, 1)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, payload string) {
		if !json.Valid([]byte(payload)) {
			return // the issuer signs what json.Marshal writes
		}
		h, _ := json.Marshal(map[string]string{"alg": "EdDSA", "typ": Type, "kid": fx.issuer.KeyID()})
		b64 := base64.RawURLEncoding
		in := b64.EncodeToString(h) + "." + b64.EncodeToString([]byte(payload))
		tok := in + "." + b64.EncodeToString(signEd25519(fx.issuer, in))
		p, err := fx.validator.Validate(t.Context(), tok, orig)
		if err != nil {
			assert.Nil(t, p)
			assertRefusal(t, err, tok, orig)
			return
		}
		assert.Equal(t, "alice", p.Subject)
		assert.Equal(t, fx.idp.Issuer(), p.Issuer)
		if _, ok := p.Claims.Get("act"); ok {
			require.NotNil(t, p.Actor, "an act claim is never dropped")
			assert.NotEmpty(t, p.Actor.Subject)
		} else {
			assert.Nil(t, p.Actor)
		}
		assert.NotEmpty(t, p.Scopes)
		for _, s := range p.Scopes {
			assert.Contains(t, []string{"notes:read", "notes:write", "files:read"}, s, "a job's scopes are the original's")
		}
	})
}

// signEd25519 signs input with the issuer's private key.
func signEd25519(i *Issuer, input string) []byte { return ed25519.Sign(i.key, []byte(input)) }
