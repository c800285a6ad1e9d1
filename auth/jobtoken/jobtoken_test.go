package jobtoken

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/auth/authtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Client-safe descriptions of package auth's rejections, as a client sees
// them.
const (
	authSignature  = "the token's signature is invalid"
	authUnknownKey = "the token's signing key is unknown"
	authAlgorithm  = "the token's signing algorithm is not accepted"
	authType       = "the token's type is not accepted"
	authAudience   = "the token's audience does not match this resource"
	authIssuer     = "the token's issuer is not accepted"
	authMalformed  = "the access token is malformed"
)

const (
	jobIssuerURL = "https://mcp.example.com/jobs"
	jobAudience  = "https://mcp.example.com/mcp#jobs"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type jobFixture struct {
	clock       *fakeClock
	idp         *authtest.Server
	users       *auth.JWTValidator
	issuer      *Issuer
	validator   *Validator
	mu          sync.Mutex
	revoked     map[string]bool
	revokeErr   error
	revokeCalls atomic.Int64
}

func newJobFixture(t testing.TB, edit func(*ValidatorConfig)) *jobFixture {
	t.Helper()
	f := &jobFixture{clock: &fakeClock{t: time.Unix(1_800_000_000, 0)}, revoked: map[string]bool{}}
	var err error
	f.idp, err = authtest.New(authtest.Config{TB: t, Algorithms: []string{"ES256", "EdDSA"}, Now: f.clock.Now})
	require.NoError(t, err)
	f.users, err = auth.NewJWTValidator(auth.JWTConfig{Issuer: f.idp.Issuer(), Audience: f.idp.Audience(),
		JWKSURL: f.idp.JWKSURL(), Now: f.clock.Now})
	require.NoError(t, err)
	t.Cleanup(func() { _ = f.users.Close() })
	_, key, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	f.issuer, err = NewIssuer(IssuerConfig{
		Issuer: jobIssuerURL, Audience: jobAudience, Key: key, Original: f.users, Now: f.clock.Now,
	})
	require.NoError(t, err)
	cfg := ValidatorConfig{
		Issuer: jobIssuerURL, Audience: jobAudience, Original: f.users, Now: f.clock.Now,
		Keys: map[string]ed25519.PublicKey{f.issuer.KeyID(): f.issuer.PublicKey()},
		Revoked: func(_ context.Context, id string) (bool, error) {
			f.revokeCalls.Add(1)
			f.mu.Lock()
			defer f.mu.Unlock()
			return f.revoked[id], f.revokeErr
		},
	}
	if edit != nil {
		edit(&cfg)
	}
	f.validator, err = NewValidator(cfg)
	require.NoError(t, err)
	return f
}

// userToken mints alice's access token (iat now, exp now + 1 h).
func (f *jobFixture) userToken(t testing.TB, claims map[string]any) string {
	t.Helper()
	c := map[string]any{"sub": "alice", "scope": "notes:read notes:write files:read", "tenant_id": "acme"}
	for k, v := range claims {
		c[k] = v
	}
	return f.idp.MustMint(c)
}

func (f *jobFixture) mint(t testing.TB, original string, scopes ...string) string {
	t.Helper()
	if len(scopes) == 0 {
		scopes = []string{"notes:read"}
	}
	tok, err := f.issuer.Mint(t.Context(), Request{JobID: "job-42", Original: auth.NewCredential(original), Scopes: scopes, Tenant: "acme"})
	require.NoError(t, err)
	return tok
}

// resign decodes a job token's claims, lets edit change them, and signs
// the result with the issuer's real key: a token the attacker could only
// build by stealing the key, used to test the checks behind the signature.
func (f *jobFixture) resign(t testing.TB, jobTok string, edit func(c map[string]any)) string {
	t.Helper()
	parts := strings.Split(jobTok, ".")
	require.Len(t, parts, 3)
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	require.NoError(t, err)
	var c map[string]any
	require.NoError(t, json.Unmarshal(b, &c))
	edit(c)
	tok, err := f.issuer.sign(c)
	require.NoError(t, err)
	return tok
}

func TestJobTokenLifecycle(t *testing.T) {
	f := newJobFixture(t, nil)
	t0 := f.clock.Now()
	original := f.userToken(t, nil)
	jobTok := f.mint(t, original, "notes:read", "files:read", "notes:read")

	check := func() *auth.Principal {
		t.Helper()
		p, err := f.validator.Validate(t.Context(), jobTok, original)
		require.NoError(t, err)
		assert.Equal(t, auth.KindJob, p.Kind)
		assert.Equal(t, "job-42", p.JobID)
		assert.Equal(t, "alice", p.Subject)
		assert.Equal(t, f.idp.Issuer(), p.Issuer)
		assert.Equal(t, "mcp-client", p.ClientID)
		assert.Equal(t, []string{f.idp.Audience()}, p.Audience)
		assert.Equal(t, []string{"notes:read", "files:read"}, p.Scopes, "narrowed, deduplicated")
		assert.Equal(t, t0.Add(DefaultLifetime), p.Expiry)
		assert.Equal(t, t0, p.IssuedAt)
		assert.NotEmpty(t, p.TokenID)
		tenant, _ := p.Claims.String(DefaultTenantClaim)
		assert.Equal(t, "acme", tenant)
		iss, _ := p.Claims.String("iss")
		assert.Equal(t, jobIssuerURL, iss, "Claims are the job token's own")
		return p
	}
	check()

	f.clock.Advance(3 * time.Hour) // the user's token expired two hours ago
	_, err := f.users.Validate(t.Context(), original)
	require.ErrorIs(t, err, auth.ErrExpired, "the normal path still refuses the expired original")
	check()

	_, err = f.users.Validate(t.Context(), jobTok)
	require.ErrorIs(t, err, auth.ErrInvalidToken, "a job token is never an access token")
	assert.Equal(t, authType, auth.AsError(err).Description)

	f.clock.Advance(time.Hour + auth.DefaultLeeway) // past the job token's exp
	_, err = f.validator.Validate(t.Context(), jobTok, original)
	require.ErrorIs(t, err, auth.ErrExpired)
	assert.Equal(t, descExpired, auth.AsError(err).Description)
}

func TestJobTokenRejections(t *testing.T) {
	tests := []struct {
		name string
		// build returns the job token and original token to present; it
		// may move the clock.
		build      func(t *testing.T, f *jobFixture) (job, original string)
		wantDesc   string
		wantStatus int // 401 unless set
		wantIs     error
	}{
		{name: "swapped original of the same user", wantDesc: descBinding,
			build: func(t *testing.T, f *jobFixture) (string, string) {
				job := f.mint(t, f.userToken(t, nil))
				return job, f.userToken(t, nil)
			}},
		{name: "swapped original of another user", wantDesc: descBinding,
			build: func(t *testing.T, f *jobFixture) (string, string) {
				return f.mint(t, f.userToken(t, nil)), f.userToken(t, map[string]any{"sub": "bob"})
			}},
		{name: "forged binding: ath edited, signature kept", wantDesc: authSignature,
			build: func(t *testing.T, f *jobFixture) (string, string) {
				job := f.mint(t, f.userToken(t, nil))
				other := f.userToken(t, map[string]any{"sub": "bob"})
				parts := strings.Split(job, ".")
				b, _ := base64.RawURLEncoding.DecodeString(parts[1])
				var c map[string]any
				require.NoError(t, json.Unmarshal(b, &c))
				c[claimOrigHash], c["sub"] = tokenHash(other), "bob"
				nb, _ := json.Marshal(c)
				return parts[0] + "." + base64.RawURLEncoding.EncodeToString(nb) + "." + parts[2], other
			}},
		{name: "forged binding: signed with another key under our kid", wantDesc: authSignature,
			build: func(t *testing.T, f *jobFixture) (string, string) {
				_, key, _ := ed25519.GenerateKey(rand.Reader)
				forger, err := NewIssuer(IssuerConfig{Issuer: jobIssuerURL, Audience: jobAudience, Key: key,
					KeyID: f.issuer.KeyID(), Original: f.users, Now: f.clock.Now})
				require.NoError(t, err)
				orig := f.userToken(t, map[string]any{"scope": "notes:read admin"})
				job, err := forger.Mint(t.Context(), Request{JobID: "j", Original: auth.NewCredential(orig), Scopes: []string{"admin"}})
				require.NoError(t, err)
				return job, orig
			}},
		{name: "forged binding: unknown key", wantDesc: authUnknownKey,
			build: func(t *testing.T, f *jobFixture) (string, string) {
				_, key, _ := ed25519.GenerateKey(rand.Reader)
				forger, err := NewIssuer(IssuerConfig{Issuer: jobIssuerURL, Audience: jobAudience, Key: key, Original: f.users, Now: f.clock.Now})
				require.NoError(t, err)
				orig := f.userToken(t, nil)
				job, err := forger.Mint(t.Context(), Request{JobID: "j", Original: auth.NewCredential(orig), Scopes: []string{"notes:read"}})
				require.NoError(t, err)
				return job, orig
			}},
		{name: "IdP-signed token dressed as a job token", wantDesc: authUnknownKey,
			build: func(t *testing.T, f *jobFixture) (string, string) {
				k, _ := f.idp.KeyFor("EdDSA")
				orig := f.userToken(t, nil)
				job, err := f.idp.MintToken(authtest.Token{Key: k, Header: map[string]any{"typ": Type},
					Claims: map[string]any{"iss": jobIssuerURL, "aud": jobAudience, "job_id": "j", "user_iss": f.idp.Issuer(),
						"ath": tokenHash(orig), "scope": "notes:read", "orig_exp": f.clock.Now().Add(time.Hour).Unix()}})
				require.NoError(t, err)
				return job, orig
			}},
		{name: "access token presented as a job token", wantDesc: authAlgorithm,
			build: func(t *testing.T, f *jobFixture) (string, string) {
				orig := f.userToken(t, nil)
				return orig, orig
			}},
		{name: "scope widening", wantDesc: descScopes,
			build: func(t *testing.T, f *jobFixture) (string, string) {
				orig := f.userToken(t, nil)
				return f.resign(t, f.mint(t, orig), func(c map[string]any) { c["scope"] = "notes:read admin" }), orig
			}},
		{name: "NBSP in the scope is no separator", wantDesc: descScopes,
			build: func(t *testing.T, f *jobFixture) (string, string) {
				orig := f.userToken(t, nil)
				return f.resign(t, f.mint(t, orig), func(c map[string]any) { c["scope"] = "notes:read\u00a0notes:write" }), orig
			}},
		{name: "minted after the original expired", wantDesc: descWindow,
			build: func(t *testing.T, f *jobFixture) (string, string) {
				orig := f.userToken(t, nil)
				origExp := f.clock.Now().Add(time.Hour).Unix()
				job := f.resign(t, f.mint(t, orig), func(c map[string]any) {
					c["iat"], c["exp"] = origExp+1, origExp+3600
				})
				f.clock.Advance(90 * time.Minute)
				return job, orig
			}},
		{name: "minted before the original was issued", wantDesc: descWindow,
			build: func(t *testing.T, f *jobFixture) (string, string) {
				orig := f.userToken(t, nil)
				now := f.clock.Now().Unix()
				return f.resign(t, f.mint(t, orig), func(c map[string]any) { c["iat"], c["exp"] = now-120, now+3600 }), orig
			}},
		{name: "revoked job", wantDesc: descRevoked,
			build: func(t *testing.T, f *jobFixture) (string, string) {
				orig := f.userToken(t, nil)
				job := f.mint(t, orig)
				f.mu.Lock()
				f.revoked["job-42"] = true
				f.mu.Unlock()
				return job, orig
			}},
		{name: "revocation store down fails closed", wantStatus: http.StatusServiceUnavailable, wantIs: auth.ErrUnavailable, wantDesc: descRevokeFailed,
			build: func(t *testing.T, f *jobFixture) (string, string) {
				orig := f.userToken(t, nil)
				job := f.mint(t, orig)
				f.revokeErr = errors.New("redis: connection refused")
				return job, orig
			}},
		{name: "job token expired", wantDesc: descExpired, wantIs: auth.ErrExpired,
			build: func(t *testing.T, f *jobFixture) (string, string) {
				orig := f.userToken(t, nil)
				job := f.mint(t, orig)
				f.clock.Advance(DefaultLifetime + auth.DefaultLeeway)
				return job, orig
			}},
		{name: "job token lives longer than allowed", wantDesc: descLifetime,
			build: func(t *testing.T, f *jobFixture) (string, string) {
				orig := f.userToken(t, nil)
				return f.resign(t, f.mint(t, orig), func(c map[string]any) {
					c["exp"] = f.clock.Now().Add(DefaultLifetime + time.Hour).Unix()
				}), orig
			}},
		{name: "wrong job issuer", wantDesc: descIssuer,
			build: func(t *testing.T, f *jobFixture) (string, string) {
				orig := f.userToken(t, nil)
				return f.resign(t, f.mint(t, orig), func(c map[string]any) { c["iss"] = f.idp.Issuer() }), orig
			}},
		{name: "wrong job audience", wantDesc: descAudience,
			build: func(t *testing.T, f *jobFixture) (string, string) {
				orig := f.userToken(t, nil)
				return f.resign(t, f.mint(t, orig), func(c map[string]any) { c["aud"] = f.idp.Audience() }), orig
			}},
		{name: "no job ID", wantDesc: descMissingClaim,
			build: func(t *testing.T, f *jobFixture) (string, string) {
				orig := f.userToken(t, nil)
				return f.resign(t, f.mint(t, orig), func(c map[string]any) { delete(c, claimJobID) }), orig
			}},
		{name: "job token names another user", wantDesc: descUser,
			build: func(t *testing.T, f *jobFixture) (string, string) {
				orig := f.userToken(t, nil)
				return f.resign(t, f.mint(t, orig), func(c map[string]any) { c["sub"] = "mallory" }), orig
			}},
		{name: "orig_exp disagrees with the original", wantDesc: descBinding,
			build: func(t *testing.T, f *jobFixture) (string, string) {
				orig := f.userToken(t, nil)
				return f.resign(t, f.mint(t, orig), func(c map[string]any) { c[claimOrigExpiry] = c[claimOrigExpiry].(float64) + 3600 }), orig
			}},
		{name: "original with a forged signature", wantDesc: prefixOriginal + authSignature,
			build: func(t *testing.T, f *jobFixture) (string, string) {
				orig := f.userToken(t, nil)
				bad, err := authtest.CorruptSignature(orig)
				require.NoError(t, err)
				return f.resign(t, f.mint(t, orig), func(c map[string]any) { c[claimOrigHash] = tokenHash(bad) }), bad
			}},
		{name: "original for another audience", wantDesc: prefixOriginal + authAudience,
			build: func(t *testing.T, f *jobFixture) (string, string) {
				good := f.userToken(t, nil)
				other := f.userToken(t, map[string]any{"aud": "https://other.example/api"})
				return f.resign(t, f.mint(t, good), func(c map[string]any) { c[claimOrigHash] = tokenHash(other) }), other
			}},
		{name: "original from an untrusted issuer", wantDesc: prefixOriginal + authIssuer,
			build: func(t *testing.T, f *jobFixture) (string, string) {
				good := f.userToken(t, nil)
				other := f.userToken(t, map[string]any{"iss": "https://evil.example"})
				return f.resign(t, f.mint(t, good), func(c map[string]any) {
					c[claimOrigHash], c[claimUserIssuer] = tokenHash(other), "https://evil.example"
				}), other
			}},
		{name: "garbage job token", wantDesc: authMalformed,
			build: func(t *testing.T, f *jobFixture) (string, string) { return "not-a-jwt", f.userToken(t, nil) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newJobFixture(t, nil)
			job, orig := tt.build(t, f)
			p, err := f.validator.Validate(t.Context(), job, orig)
			assert.Nil(t, p)
			require.Error(t, err)
			e := auth.AsError(err)
			want := tt.wantStatus
			if want == 0 {
				want = http.StatusUnauthorized
				assert.ErrorIs(t, err, auth.ErrInvalidToken)
			}
			assert.Equal(t, want, e.Status)
			assert.Equal(t, tt.wantDesc, e.Description)
			if tt.wantIs != nil {
				assert.ErrorIs(t, err, tt.wantIs)
			}
			for _, tok := range []string{job, orig} {
				assert.NotContains(t, err.Error(), tok)
				assert.NotContains(t, fmt.Sprintf("%+v", err), tok)
			}
		})
	}
}

func TestJobRevocationReachesCachedPairs(t *testing.T) {
	f := newJobFixture(t, nil)
	orig := f.userToken(t, nil)
	job := f.mint(t, orig)
	for range 3 {
		_, err := f.validator.Validate(t.Context(), job, orig)
		require.NoError(t, err)
	}
	assert.EqualValues(t, 3, f.revokeCalls.Load(), "the hook is asked on every call, cached or not")
	f.mu.Lock()
	f.revoked["job-42"] = true
	f.mu.Unlock()
	_, err := f.validator.Validate(t.Context(), job, orig)
	require.ErrorIs(t, err, auth.ErrInvalidToken)
	assert.Equal(t, descRevoked, auth.AsError(err).Description)
}

// TestJobRevokerSubject: revoking the user (subject before T) stops the
// jobs minted for them before T, cached or not, and not those minted
// after; revoking a job token's jti stops that token alone.
func TestJobRevokerSubject(t *testing.T) {
	var rev *auth.MemoryRevoker
	f := newJobFixture(t, func(c *ValidatorConfig) {
		var err error
		rev, err = auth.NewMemoryRevoker(auth.RevokerConfig{Now: c.Now})
		require.NoError(t, err)
		c.Revoker = rev
	})
	orig := f.userToken(t, nil)
	job := f.mint(t, orig)
	p, err := f.validator.Validate(t.Context(), job, orig) // cached from here
	require.NoError(t, err)
	f.clock.Advance(time.Second)
	require.NoError(t, rev.Revoke(t.Context(), auth.Revocation{Issuer: f.idp.Issuer(), Subject: "alice"}))
	_, err = f.validator.Validate(t.Context(), job, orig)
	require.ErrorIs(t, err, auth.ErrRevoked)
	assert.Equal(t, http.StatusUnauthorized, auth.AsError(err).Status)

	f.clock.Advance(time.Second)
	orig2 := f.userToken(t, nil)
	job2 := f.mint(t, orig2)
	p2, err := f.validator.Validate(t.Context(), job2, orig2)
	require.NoError(t, err, "a job minted after the revocation runs")

	require.NoError(t, rev.Revoke(t.Context(), auth.Revocation{Issuer: f.idp.Issuer(), TokenID: p2.TokenID}))
	_, err = f.validator.Validate(t.Context(), job2, orig2)
	require.ErrorIs(t, err, auth.ErrRevoked)
	assert.NotEqual(t, p.TokenID, p2.TokenID)
}

func TestJobMintRefuses(t *testing.T) {
	f := newJobFixture(t, nil)
	good := f.userToken(t, nil)
	expired := f.userToken(t, map[string]any{"exp": f.clock.Now().Add(-time.Hour).Unix()})
	forged, err := authtest.CorruptSignature(good)
	require.NoError(t, err)
	tests := []struct {
		name   string
		req    Request
		wantIs error
	}{
		{"scope widening", Request{JobID: "j", Original: auth.NewCredential(good), Scopes: []string{"notes:read", "admin"}}, auth.ErrInsufficientScope},
		{"original already expired", Request{JobID: "j", Original: auth.NewCredential(expired), Scopes: []string{"notes:read"}}, auth.ErrExpired},
		{"forged original", Request{JobID: "j", Original: auth.NewCredential(forged), Scopes: []string{"notes:read"}}, auth.ErrInvalidToken},
		{"no job ID", Request{Original: auth.NewCredential(good), Scopes: []string{"notes:read"}}, auth.ErrConfig},
		{"job ID with a space", Request{JobID: "a b", Original: auth.NewCredential(good), Scopes: []string{"notes:read"}}, auth.ErrConfig},
		{"no original", Request{JobID: "j", Scopes: []string{"notes:read"}}, auth.ErrConfig},
		{"no scopes", Request{JobID: "j", Original: auth.NewCredential(good)}, auth.ErrConfig},
		{"malformed scope", Request{JobID: "j", Original: auth.NewCredential(good), Scopes: []string{"a b"}}, auth.ErrConfig},
		{"lifetime over the cap", Request{JobID: "j", Original: auth.NewCredential(good), Scopes: []string{"notes:read"}, Lifetime: DefaultLifetime + time.Second}, auth.ErrConfig},
		{"negative lifetime", Request{JobID: "j", Original: auth.NewCredential(good), Scopes: []string{"notes:read"}, Lifetime: -time.Second}, auth.ErrConfig},
		{"tenant with a newline", Request{JobID: "j", Original: auth.NewCredential(good), Scopes: []string{"notes:read"}, Tenant: "a\nb"}, auth.ErrConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := f.issuer.Mint(t.Context(), tt.req)
			assert.Empty(t, tok)
			require.ErrorIs(t, err, tt.wantIs)
			for _, s := range []string{good, expired, forged} {
				assert.NotContains(t, err.Error(), s)
			}
		})
	}

	// The original may expire during the leeway: the job token would then
	// be issued after it, so minting refuses.
	almost := f.userToken(t, map[string]any{"exp": f.clock.Now().Add(-30 * time.Second).Unix()})
	_, err = f.issuer.Mint(t.Context(), Request{JobID: "j", Original: auth.NewCredential(almost), Scopes: []string{"notes:read"}})
	require.ErrorIs(t, err, auth.ErrExpired)

	short, err := f.issuer.Mint(t.Context(), Request{JobID: "j", Original: auth.NewCredential(good), Scopes: []string{"notes:read"}, Lifetime: time.Minute})
	require.NoError(t, err)
	p, err := f.validator.Validate(t.Context(), short, good)
	require.NoError(t, err)
	assert.Equal(t, f.clock.Now().Add(time.Minute), p.Expiry)
	assert.Empty(t, p.Claims.Map()[DefaultTenantClaim], "no tenant requested")
}

// TestCachedPairDiesWithTheOriginalsKey: a verified pair is cached, but
// only as long as the identity provider still publishes the key that signed
// the original token. Once the provider retires that key, the very next
// call is refused, cached or not, while a pair whose original was signed by
// a key that stays is still served.
func TestCachedPairDiesWithTheOriginalsKey(t *testing.T) {
	f := newJobFixture(t, nil)
	retired := f.idp.SigningKey()
	kept, err := f.idp.NewKey("ES256")
	require.NoError(t, err)
	origRetired := f.userToken(t, nil)
	jobRetired := f.mint(t, origRetired)
	origKept, err := f.idp.MintToken(authtest.Token{Key: kept,
		Claims: map[string]any{"sub": "alice", "scope": "notes:read", "tenant_id": "acme"}})
	require.NoError(t, err)
	jobKept := f.mint(t, origKept)
	for _, pair := range [][2]string{{jobRetired, origRetired}, {jobKept, origKept}} {
		_, err := f.validator.Validate(t.Context(), pair[0], pair[1])
		require.NoError(t, err)
	}

	require.NoError(t, f.idp.SetSigningKey(kept.ID()))
	require.NoError(t, f.idp.RetireKey(retired.ID()))
	require.NoError(t, f.users.Refresh(t.Context()))
	f.clock.Advance(2 * time.Hour) // both originals have expired; only the cache or a job check can accept them

	_, err = f.validator.Validate(t.Context(), jobRetired, origRetired)
	require.ErrorIs(t, err, auth.ErrInvalidToken, "the cached pair must not outlive the original's key")
	assert.Equal(t, prefixOriginal+authUnknownKey, auth.AsError(err).Description)
	p, err := f.validator.Validate(t.Context(), jobKept, origKept)
	require.NoError(t, err, "a pair whose key stays is still valid")
	assert.Equal(t, "alice", p.Subject)
}

func TestJobKeyRotation(t *testing.T) {
	f := newJobFixture(t, nil)
	orig := f.userToken(t, nil)
	oldJob := f.mint(t, orig)
	_, key, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	next, err := NewIssuer(IssuerConfig{Issuer: jobIssuerURL, Audience: jobAudience, Key: key, Original: f.users, Now: f.clock.Now})
	require.NoError(t, err)
	assert.NotEqual(t, f.issuer.KeyID(), next.KeyID())
	newJob, err := next.Mint(t.Context(), Request{JobID: "job-43", Original: auth.NewCredential(orig), Scopes: []string{"notes:read"}})
	require.NoError(t, err)

	both, err := NewValidator(ValidatorConfig{Issuer: jobIssuerURL, Audience: jobAudience, Original: f.users, Now: f.clock.Now,
		Keys: map[string]ed25519.PublicKey{f.issuer.KeyID(): f.issuer.PublicKey(), next.KeyID(): next.PublicKey()}})
	require.NoError(t, err)
	for _, job := range []string{oldJob, newJob} {
		_, err := both.Validate(t.Context(), job, orig)
		require.NoError(t, err)
	}
	onlyNew, err := NewValidator(ValidatorConfig{Issuer: jobIssuerURL, Audience: jobAudience, Original: f.users, Now: f.clock.Now,
		Keys: map[string]ed25519.PublicKey{next.KeyID(): next.PublicKey()}})
	require.NoError(t, err)
	_, err = onlyNew.Validate(t.Context(), oldJob, orig)
	require.ErrorIs(t, err, auth.ErrInvalidToken, "removing a key revokes every job token it signed")
}

func TestJobConfigErrors(t *testing.T) {
	f := newJobFixture(t, nil)
	_, key, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	issuerTests := []struct {
		field string
		edit  func(*IssuerConfig)
	}{
		{"Original", func(c *IssuerConfig) { c.Original = nil }},
		{"Issuer", func(c *IssuerConfig) { c.Issuer = "" }},
		{"Issuer", func(c *IssuerConfig) { c.Issuer = f.idp.Issuer() }},
		{"Audience", func(c *IssuerConfig) { c.Audience = "" }},
		{"Key", func(c *IssuerConfig) { c.Key = key[:10] }},
		{"KeyID", func(c *IssuerConfig) { c.KeyID = "a b" }},
		{"MaxLifetime", func(c *IssuerConfig) { c.MaxLifetime = LifetimeLimit + time.Hour }},
		{"TenantClaim", func(c *IssuerConfig) { c.TenantClaim = "sub" }},
	}
	for _, tt := range issuerTests {
		t.Run("issuer "+tt.field, func(t *testing.T) {
			cfg := IssuerConfig{Issuer: jobIssuerURL, Audience: jobAudience, Key: key, Original: f.users}
			tt.edit(&cfg)
			i, err := NewIssuer(cfg)
			assert.Nil(t, i)
			require.ErrorIs(t, err, auth.ErrConfig)
			assert.Contains(t, err.Error(), "IssuerConfig."+tt.field)
		})
	}
	pub := key.Public().(ed25519.PublicKey)
	validatorTests := []struct {
		field string
		edit  func(*ValidatorConfig)
	}{
		{"Original", func(c *ValidatorConfig) { c.Original = nil }},
		{"Issuer", func(c *ValidatorConfig) { c.Issuer = f.idp.Issuer() }},
		{"Audience", func(c *ValidatorConfig) { c.Audience = "" }},
		{"Keys", func(c *ValidatorConfig) { c.Keys = nil }},
		{"Keys", func(c *ValidatorConfig) { c.Keys = map[string]ed25519.PublicKey{"k": pub[:5]} }},
		{"MaxLifetime", func(c *ValidatorConfig) { c.MaxLifetime = -time.Second }},
		{"Leeway", func(c *ValidatorConfig) { c.Leeway = time.Hour }},
		{"CacheSize", func(c *ValidatorConfig) { c.CacheSize = -1 }},
	}
	for _, tt := range validatorTests {
		t.Run("validator "+tt.field, func(t *testing.T) {
			cfg := ValidatorConfig{Issuer: jobIssuerURL, Audience: jobAudience, Original: f.users,
				Keys: map[string]ed25519.PublicKey{"k": pub}}
			tt.edit(&cfg)
			v, err := NewValidator(cfg)
			assert.Nil(t, v)
			require.ErrorIs(t, err, auth.ErrConfig)
			assert.Contains(t, err.Error(), "ValidatorConfig."+tt.field)
		})
	}
}

// FuzzValidateJob mutates a valid job token: nothing may panic, and no
// token other than the one minted may ever be accepted.
func FuzzValidateJob(f *testing.F) {
	fx := newJobFixture(f, func(c *ValidatorConfig) { c.DisableCache = true; c.Revoked = nil })
	orig := fx.userToken(f, nil)
	job := fx.mint(f, orig)
	f.Add(job)
	f.Add(strings.Replace(job, ".", "..", 1))
	f.Add(job[:len(job)-2])
	f.Fuzz(func(t *testing.T, tok string) {
		p, err := fx.validator.Validate(context.Background(), tok, orig)
		if err == nil {
			if tok != job || p.Kind != auth.KindJob {
				t.Fatalf("accepted a token that was not minted")
			}
			return
		}
		if strings.Contains(err.Error(), orig) {
			t.Fatal("the error contains the original token")
		}
	})
}

func BenchmarkJobValidate(b *testing.B) {
	for _, mode := range []string{"cold", "warm"} {
		b.Run(mode, func(b *testing.B) {
			fx := newJobFixture(b, func(c *ValidatorConfig) { c.DisableCache = mode == "cold" })
			orig := fx.userToken(b, nil)
			job := fx.mint(b, orig)
			fx.clock.Advance(2 * time.Hour) // the original has expired
			ctx := context.Background()
			if _, err := fx.validator.Validate(ctx, job, orig); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := fx.validator.Validate(ctx, job, orig); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkJobMint(b *testing.B) {
	fx := newJobFixture(b, nil)
	orig := fx.userToken(b, nil)
	req := Request{JobID: "job-1", Original: auth.NewCredential(orig), Scopes: []string{"notes:read"}, Tenant: "acme"}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := fx.issuer.Mint(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}
