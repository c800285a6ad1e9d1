package auth

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/mcpguard/mcpguard/auth/authtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fuzzSeeds are tokens of every shape the validator must handle.
func fuzzSeeds(t testing.TB, idp *authtest.Server) []string {
	seeds := []string{"", ".", "..", "a.b.c", "e30.e30.e30", "eyJhbGciOiJub25lIn0.e30.", strings.Repeat("A", 100)}
	add := func(tok string, err error) {
		require.NoError(t, err)
		seeds = append(seeds, tok)
	}
	add(idp.Mint(nil))
	add(idp.MintUnsigned(nil))
	add(idp.MintBadSignature(nil))
	add(idp.MintToken(authtest.Token{Header: map[string]any{"kid": nil, "crit": []string{"b64"}, "b64": false}}))
	add(idp.MintToken(authtest.Token{Header: map[string]any{"typ": "JWT", "cty": "JWT", "jku": "https://x"}}))
	add(authtest.Sign([]byte(`{"alg":"EdDSA","alg":"EdDSA"}`), []byte(`{"aud":1,"aud":2}`), "EdDSA", idp.SigningKey().Private()))
	add(authtest.Sign([]byte(`{"alg":"EdDSA","kid":"\u0065ddsa-1"}`), []byte(`{"a":{"b":[{"c":"\"\\"}]}}`), "EdDSA", idp.SigningKey().Private()))
	return seeds
}

// FuzzParseJWS fuzzes the checks made before any key is used: size,
// segments, strict base64url and the protected header.
func FuzzParseJWS(f *testing.F) {
	idp := newIDP(f, nil, "EdDSA")
	for _, s := range fuzzSeeds(f, idp) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		j, err := parseJWS(tok, 4096)
		if err != nil {
			assert.ErrorIs(t, err, ErrInvalidToken)
			if len(tok) >= 16 {
				assertNoTokenLeak(t, tok, err)
			}
			return
		}
		assert.LessOrEqual(t, len(tok), 4096)
		assert.Equal(t, 2, strings.Count(tok, "."))
		assert.True(t, strings.HasPrefix(tok, j.signingInput+"."))
		assert.Equal(t, tok, j.signingInput+"."+b64.EncodeToString(j.sig), "signature segment must be canonical")
		assert.NotEmpty(t, j.alg)
		assert.NotEmpty(t, j.sig)
		if j.hasKID {
			assert.NotEmpty(t, j.kid)
			assert.LessOrEqual(t, len(j.kid), maxKIDLen)
		} else {
			assert.Empty(t, j.kid)
		}
		hb, derr := b64.DecodeString(tok[:strings.IndexByte(tok, '.')])
		require.NoError(t, derr)
		dup, derr := duplicateMembers(hb)
		require.NoError(t, derr)
		assert.False(t, dup)
		assert.NotContains(t, string(hb), `"crit"`)
	})
}

// FuzzDecodePayload checks the duplicate-member detection against a slow
// reference built on json.Decoder.
func FuzzDecodePayload(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":1}`, `{"a":1,"a":2}`, `{"a":{"b":1,"b":2}}`, `{"a":[{"x":1},{"x":1}]}`,
		`{"\u0061":1,"a":2}`, `{"a:b":"c:d","e":"\":"}`, `[]`, `null`, `{"a":"\ud800"}`, "{\"\xff\":1,\"\xfe\":2}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, payload string) {
		claims, err := decodePayload(b64.EncodeToString([]byte(payload)))
		dup, refErr := duplicateMembers([]byte(payload))
		var obj map[string]any
		isObject := json.Unmarshal([]byte(payload), &obj) == nil && obj != nil
		switch {
		case err == nil:
			require.True(t, isObject)
			require.NoError(t, refErr)
			assert.False(t, dup, "duplicate member accepted")
			assert.Equal(t, obj, claims)
		case isObject && refErr == nil:
			assert.True(t, dup, "object without duplicates rejected: %v", err)
		}
	})
}

// duplicateMembers reports whether any object in the JSON text repeats a
// member name (after unescaping), walking it with json.Decoder.
func duplicateMembers(b []byte) (bool, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	type frame struct {
		keys     map[string]bool
		isObject bool
		wantKey  bool
	}
	var stack []*frame
	dup := false
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return dup, nil
		}
		if err != nil {
			return false, err
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.isObject && top.wantKey {
			if d, ok := tok.(json.Delim); ok && d == '}' {
				stack = stack[:len(stack)-1]
				continue
			}
			k := tok.(string)
			if top.keys[k] {
				dup = true
			}
			top.keys[k] = true
			top.wantKey = false
			continue
		}
		switch tok {
		case json.Delim('{'):
			if top != nil && top.isObject {
				top.wantKey = true
			}
			stack = append(stack, &frame{keys: map[string]bool{}, isObject: true, wantKey: true})
			continue
		case json.Delim('['):
			if top != nil && top.isObject {
				top.wantKey = true
			}
			stack = append(stack, &frame{})
			continue
		case json.Delim(']'):
			stack = stack[:len(stack)-1]
			continue
		}
		if top != nil && top.isObject {
			top.wantKey = true
		}
	}
}

// FuzzJWTValidate runs whole validations against a fixed Ed25519 key set
// (Ed25519 signatures are not malleable): only the exact tokens minted can
// pass, and no error quotes the token.
func FuzzJWTValidate(f *testing.F) {
	clock := newFakeClock()
	idp := newIDP(f, clock, "EdDSA")
	doc, err := idp.JWKS()
	require.NoError(f, err)
	v, err := NewJWTValidator(JWTConfig{Issuer: idp.Issuer(), Audience: idp.Audience(), JWKS: doc, Now: clock.Now})
	require.NoError(f, err)
	good := map[string]bool{}
	for _, s := range fuzzSeeds(f, idp) {
		if _, err := v.Validate(f.Context(), s); err == nil {
			good[s] = true
		}
		f.Add(s)
	}
	require.Len(f, good, 1)
	f.Fuzz(func(t *testing.T, tok string) {
		p, err := v.Validate(t.Context(), tok)
		if err == nil {
			require.True(t, good[tok], "accepted a token that was never minted")
			require.NotNil(t, p)
			return
		}
		assert.ErrorIs(t, err, ErrInvalidToken)
		if len(tok) >= 16 {
			assertNoTokenLeak(t, tok, err)
		}
	})
}

// FuzzHeaderFastPath checks that the reflection-free header reader agrees
// with encoding/json on every header it accepts.
func FuzzHeaderFastPath(f *testing.F) {
	for _, s := range []string{
		`{"alg":"RS256","kid":"k1","typ":"JWT"}`, ` { "alg" : "EdDSA" } `, `{}`, `{"alg":"ES256","alg":"ES256"}`,
		`{"alg":"RS256","crit":"x"}`, `{"alg":"RS256","kid":7}`, `{"alg":"R\u0053256"}`, `{"alg":"RS256"}x`,
		`{"alg":"RS256",}`, `{"a":"1","b":"2","c":"3","d":"4","e":"5","f":"6","g":"7","h":"8","i":"9"}`, "{\"alg\":\"\xff\"}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fast, ok, ferr := scanFlatHeader(b)
		slow, serr := decodeHeader(b)
		if ferr != nil {
			require.NotNil(t, serr, "fast path rejected what encoding/json accepts")
			return
		}
		if !ok {
			return
		}
		require.Nil(t, serr, "fast path accepted what encoding/json rejects")
		assert.Equal(t, slow, fast)
	})
}

func TestHeaderFastPathTaken(t *testing.T) {
	for _, h := range []string{`{"alg":"RS256","kid":"k1","typ":"JWT"}`, `{"typ":"at+jwt","alg":"EdDSA","kid":"eddsa-1"}`} {
		got, ok, err := scanFlatHeader([]byte(h))
		require.Nil(t, err)
		require.True(t, ok, h)
		assert.True(t, got.hasAlg && got.algStr && got.hasKID && got.hasTyp)
	}
	_, ok, err := scanFlatHeader([]byte(`{"alg":"RS256","x5c":["MIIB"]}`))
	assert.Nil(t, err)
	assert.False(t, ok, "arrays go through encoding/json")
}

// FuzzPayloadFastPath checks that the reflection-free payload reader agrees
// with encoding/json on every payload it reads: same acceptance, the same
// map, the same duplicate verdict.
func FuzzPayloadFastPath(f *testing.F) {
	for _, s := range []string{
		`{"iss":"https://idp.example","aud":["a","b"],"exp":1700000000,"scope":"r w","ok":true,"x":null}`,
		`{}`, ` {"a" : { "b" : [ 1 , -0 , 0.5 , 1e3 , -2E-7 , 12345678901234567890 ] } } `, `{"a":1,"a":2}`,
		`{"a":{"b":1,"b":2}}`, `{"a":[{"x":1},{"x":1}]}`, `{"a":[],"b":{}}`, `{"a":01}`, `{"a":1.}`, `{"a":.5}`,
		`{"a":1e}`, `{"a":-}`, `{"a":1e400}`, `{"a":tru}`, `{"a":1,}`, `{"a":[1,]}`, `{"a":"\u0041"}`, `{"a":1}x`,
		`[]`, `null`, `"s"`, "{\"a\":\"\xff\"}", "{\"a\":\"\x01\"}", "{\"a\":\"\x7f\"}", `{"a":9007199254740993}`,
		`{"a":999999999999999,"b":-999999999999999,"c":1000000000000000}`,
		strings.Repeat(`{"a":`, fastMaxDepth) + "1" + strings.Repeat("}", fastMaxDepth),
		strings.Repeat(`[`, fastMaxDepth+1) + strings.Repeat("]", fastMaxDepth+1),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fast, dup, ok := scanPayload(b)
		var slow map[string]any
		serr := json.Unmarshal(b, &slow)
		if !ok {
			return
		}
		require.NoError(t, serr, "fast path read what encoding/json rejects")
		require.NotNil(t, slow)
		assert.Equal(t, countMembers(b) != totalMembers(slow), dup, "duplicate verdicts differ")
		assert.True(t, reflect.DeepEqual(slow, fast), "maps differ: %#v vs %#v", slow, fast)
		got, derr := decodePayload(b64.EncodeToString(b))
		want, werr := decodePayloadJSON(b)
		assert.Equal(t, werr == nil, derr == nil)
		assert.True(t, reflect.DeepEqual(want, got))
	})
}

func TestPayloadFastPathTaken(t *testing.T) {
	for _, tc := range []struct {
		name, payload string
		dup           bool
	}{
		{"typical", `{"iss":"https://idp.example","sub":"alice","aud":["mcp"],"exp":1700000000,"iat":1699990000,"scope":"notes:read"}`, false},
		{"nested", `{"a":{"b":[{"c":1.5e2},{"c":false}],"d":null},"e":[]}`, false},
		{"whitespace", " \t\r\n{ \"a\" : [ 1 , 2 ] } \n", false},
		{"top duplicate", `{"aud":"a","aud":"b"}`, true},
		{"nested duplicate", `{"a":[{"x":1,"y":2,"x":3}]}`, true},
		{"same name in sibling objects", `{"a":{"x":1},"b":{"x":1}}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, dup, ok := scanPayload([]byte(tc.payload))
			require.True(t, ok, "fast path not taken")
			assert.Equal(t, tc.dup, dup)
			var want map[string]any
			require.NoError(t, json.Unmarshal([]byte(tc.payload), &want))
			assert.Equal(t, want, got)
		})
	}
	for _, tc := range []struct{ name, payload string }{
		{"escape", `{"a":"\u0041"}`},
		{"non-ASCII", "{\"a\":\"\xc3\xa9\"}"},
		{"control byte", "{\"a\":\"\x01\"}"},
		{"out of range", `{"a":1e400}`},
		{"not an object", `[1]`},
		{"trailing data", `{}{}`},
		{"leading zero", `{"a":01}`},
		{"too deep", strings.Repeat(`{"a":`, fastMaxDepth+1) + "1" + strings.Repeat("}", fastMaxDepth+1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, ok := scanPayload([]byte(tc.payload))
			assert.False(t, ok, "left to encoding/json")
		})
	}
}
