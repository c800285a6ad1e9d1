package redisstore

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpguard/mcpguard/auth"
)

const revIssuer = "https://idp.example.com"

func newRevoker(t testing.TB, s *Shared, cfg RevokerConfig) *Revoker {
	t.Helper()
	return closing[*Revoker](t)(s.Revoker(cfg))
}

// closing returns a function that checks a constructor's error and closes
// what it built when the test ends.
func closing[T interface{ Close() error }](t testing.TB) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		require.NoError(t, err)
		t.Cleanup(func() { _ = v.Close() })
		return v
	}
}

// principal is a verified token of sub with the given jti and sid, issued
// a minute ago, valid for an hour.
func principal(sub, jti, sid string) *auth.Principal {
	now := time.Now()
	m := map[string]any{"sub": sub}
	if sid != "" {
		m["sid"] = sid
	}
	return &auth.Principal{Issuer: revIssuer, Subject: sub, TokenID: jti, IssuedAt: now.Add(-time.Minute).Truncate(time.Second),
		Expiry: now.Add(time.Hour), Claims: auth.NewClaims(m)}
}

// awaitRevoked checks p on r until it is refused, and proves the bound:
// a Check made MaxStaleness after the revocation returned must refuse,
// whatever the scheduling (Revoker's guarantee, not a timing). It returns
// the delay observed.
func awaitRevoked(t *testing.T, r *Revoker, p *auth.Principal, revoked time.Time) time.Duration {
	t.Helper()
	d, ok := awaitBound(revoked, r.c.stale, func() bool {
		return errors.Is(r.Check(context.Background(), p), auth.ErrRevoked)
	})
	require.True(t, ok, "not in force %v after the revocation", r.c.stale)
	return d
}

// awaitBound asks done until it holds or bound has passed since from; if
// it never held, it waits out the bound and asks once more. It returns the
// delay and the last answer.
func awaitBound(from time.Time, bound time.Duration, done func() bool) (time.Duration, bool) {
	deadline := from.Add(bound)
	for time.Now().Before(deadline) {
		if done() {
			return time.Since(from), true
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(time.Until(deadline))
	return time.Since(from), done()
}

// TestRevokerAcrossReplicas: two replicas share one redis-server; what
// either revokes (by jti, sid, subject) is refused by the other within
// MaxStaleness (one second by default), measured; other tokens are served.
func TestRevokerAcrossReplicas(t *testing.T) {
	srv := startRedis(t)
	a := newRevoker(t, newShared(t, srv.addr, nil), RevokerConfig{})
	b := newRevoker(t, newShared(t, srv.addr, nil), RevokerConfig{})
	require.Equal(t, DefaultMaxStaleness, b.c.stale)
	ctx := context.Background()

	byJTI, bySID, bySub := principal("alice", "j-1", ""), principal("bob", "j-2", "s-1"), principal("carol", "j-3", "")
	unrelated := principal("dave", "j-4", "s-2")
	for _, p := range []*auth.Principal{byJTI, bySID, bySub, unrelated} {
		require.NoError(t, a.Check(ctx, p))
		require.NoError(t, b.Check(ctx, p))
	}

	var worst time.Duration
	for _, tc := range []struct {
		name     string
		from, to *Revoker
		rv       auth.Revocation
		p        *auth.Principal
	}{
		{"jti a→b", a, b, auth.Revocation{Issuer: revIssuer, TokenID: "j-1"}, byJTI},
		{"sid b→a", b, a, auth.Revocation{Issuer: revIssuer, SessionID: "s-1"}, bySID},
		{"subject a→b", a, b, auth.Revocation{Issuer: revIssuer, Subject: "carol"}, bySub},
	} {
		require.NoError(t, tc.from.Revoke(ctx, tc.rv), tc.name)
		done := time.Now()
		assert.ErrorIs(t, tc.from.Check(ctx, tc.p), auth.ErrRevoked, "%s: at once on the replica that revoked", tc.name)
		d := awaitRevoked(t, tc.to, tc.p, done)
		t.Logf("%s: in force on the other replica after %v (bound %v)", tc.name, d, tc.to.c.stale)
		worst = max(worst, d)
	}
	t.Logf("worst cross-replica delay observed: %v", worst)
	for _, r := range []*Revoker{a, b} {
		assert.NoError(t, r.Check(ctx, unrelated), "an unrelated token is still served")
		later := principal("carol", "j-5", "")
		later.IssuedAt = time.Now().Add(time.Second).Truncate(time.Second)
		assert.NoError(t, r.Check(ctx, later), "carol's next token is served")
	}
}

// TestRevokerSubjectLaterToken: a subject revocation covers tokens issued
// before it, not the next one.
func TestRevokerSubjectLaterToken(t *testing.T) {
	srv := startRedis(t)
	a := newRevoker(t, newShared(t, srv.addr, nil), RevokerConfig{})
	b := newRevoker(t, newShared(t, srv.addr, nil), RevokerConfig{})
	ctx := context.Background()
	at := time.Now().Truncate(time.Second)
	require.NoError(t, a.Revoke(ctx, auth.Revocation{Issuer: revIssuer, Subject: "erin", IssuedBefore: at}))
	old := principal("erin", "j-old", "")
	old.IssuedAt = at.Add(-time.Second)
	later := principal("erin", "j-new", "")
	later.IssuedAt = at
	awaitRevoked(t, b, old, time.Now())
	assert.NoError(t, b.Check(ctx, later))
	assert.NoError(t, a.Check(ctx, later))
}

// Redis counts in milliseconds; a subject's bound is kept at least as
// strict as auth.MemoryRevoker's. It was rounded down: revoked at S+0.4 ms
// (IssuedBefore, or the time of Revoke when it is zero), a token issued at
// S, before the revocation, was refused by the memory revoker and served by
// every replica of the Redis one.
func TestRevokerSubjectBoundRoundedUp(t *testing.T) {
	srv := startRedis(t)
	s := time.Now().Truncate(time.Second)
	at := s.Add(400 * time.Microsecond)
	clock := func() time.Time { return at }
	for _, tt := range []struct {
		name   string
		before time.Time
	}{{"iat_before given", at}, {"iat_before the time of Revoke", time.Time{}}} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			sub := "frank " + tt.name
			cfg := RevokerConfig{RevokerConfig: auth.RevokerConfig{Now: clock}}
			a := newRevoker(t, newShared(t, srv.addr, nil), cfg)
			b := newRevoker(t, newShared(t, srv.addr, nil), cfg)
			mem, err := auth.NewMemoryRevoker(auth.RevokerConfig{Now: clock})
			require.NoError(t, err)
			rv := auth.Revocation{Issuer: revIssuer, Subject: sub, IssuedBefore: tt.before}
			require.NoError(t, a.Revoke(ctx, rv))
			require.NoError(t, mem.Revoke(ctx, rv))

			issued := principal(sub, "j-"+tt.name, "")
			issued.IssuedAt = s // before the revocation
			issued.Expiry = s.Add(time.Hour)
			require.ErrorIs(t, mem.Check(ctx, issued), auth.ErrRevoked, "the memory revoker refuses it")
			assert.ErrorIs(t, a.Check(ctx, issued), auth.ErrRevoked, "the replica that revoked")
			_, ok := awaitBound(time.Now(), time.Second, func() bool { return errors.Is(b.Check(ctx, issued), auth.ErrRevoked) })
			assert.True(t, ok, "another replica")

			later := principal(sub, "j-later-"+tt.name, "")
			later.IssuedAt = s.Add(time.Second)
			later.Expiry = later.IssuedAt.Add(time.Hour)
			assert.NoError(t, a.Check(ctx, later))
			assert.NoError(t, b.Check(ctx, later))
		})
	}
}

func TestRevokerCapacityShared(t *testing.T) {
	srv := startRedis(t)
	a := newRevoker(t, newShared(t, srv.addr, nil), RevokerConfig{RevokerConfig: auth.RevokerConfig{Capacity: 2}})
	b := newRevoker(t, newShared(t, srv.addr, nil), RevokerConfig{RevokerConfig: auth.RevokerConfig{Capacity: 2}})
	ctx := context.Background()
	require.NoError(t, a.Revoke(ctx, auth.Revocation{Issuer: revIssuer, TokenID: "x"}))
	require.NoError(t, b.Revoke(ctx, auth.Revocation{Issuer: revIssuer, TokenID: "y"}))
	require.NoError(t, b.Revoke(ctx, auth.Revocation{Issuer: revIssuer, TokenID: "x"}), "the same entry again takes no room")
	err := a.Revoke(ctx, auth.Revocation{Issuer: revIssuer, TokenID: "z"})
	assert.ErrorIs(t, err, auth.ErrRevocationListFull, "the cap holds for all replicas together")
	awaitRevoked(t, a, principal("u", "y", ""), time.Now())
}

// TestRevokerRedisDown kills Redis under both policies: FailClosed refuses
// every request (503) once the copy is stale, DegradeLocal answers from the
// copy; revocations made here during the outage hold here; once Redis is
// back (empty, as after a restart without persistence) service resumes
// without a new Revoker and the replicas put their entries back, so a new
// replica learns them.
func TestRevokerRedisDown(t *testing.T) {
	for _, policy := range []FailurePolicy{FailClosed, DegradeLocal} {
		t.Run(policy.String(), func(t *testing.T) {
			srv := startRedis(t)
			var ev events
			cfg := RevokerConfig{Policy: policy, MaxStaleness: 200 * time.Millisecond}
			r := newRevoker(t, newShared(t, srv.addr, &ev), cfg)
			ctx := context.Background()
			revoked, other, duringOutage := principal("alice", "j-1", ""), principal("dave", "j-2", ""), principal("erin", "j-3", "")
			require.NoError(t, r.Revoke(ctx, auth.Revocation{Issuer: revIssuer, TokenID: "j-1"}))
			require.ErrorIs(t, r.Check(ctx, revoked), auth.ErrRevoked)

			srv.stop()
			err := r.Revoke(ctx, auth.Revocation{Issuer: revIssuer, TokenID: "j-3"})
			assert.ErrorIs(t, err, ErrUnavailable, "the operator learns it did not reach the other replicas")
			assert.ErrorIs(t, r.Check(ctx, duringOutage), auth.ErrRevoked, "but it holds here")
			time.Sleep(cfg.MaxStaleness + 50*time.Millisecond) // the copy is now stale
			switch policy {
			case FailClosed:
				err := r.Check(ctx, other)
				assert.ErrorIs(t, err, auth.ErrUnavailable)
				assert.Equal(t, 503, auth.AsError(err).Status)
				assert.ErrorIs(t, r.Check(ctx, revoked), auth.ErrRevoked, "what the copy refuses stays refused")
			case DegradeLocal:
				assert.ErrorIs(t, r.Check(ctx, revoked), auth.ErrRevoked)
				assert.NoError(t, r.Check(ctx, other))
			}
			evs := ev.list()
			require.NotEmpty(t, evs)
			assert.Equal(t, StoreRevocation, evs[0].Store)
			assert.False(t, evs[0].Recovered)

			srv.start() // empty: the restart lost every entry
			waitRecovered(t, func() error {
				if evs := ev.list(); !evs[len(evs)-1].Recovered {
					return errors.New("no recovery reported yet")
				}
				return r.Check(ctx, other)
			})
			assert.ErrorIs(t, r.Check(ctx, revoked), auth.ErrRevoked, "the copy kept the entry")
			assert.ErrorIs(t, r.Check(ctx, duringOutage), auth.ErrRevoked)
			// The entries went back to Redis: a replica started now knows them.
			fresh := newRevoker(t, newShared(t, srv.addr, nil), cfg)
			awaitRevoked(t, fresh, revoked, time.Now())
			awaitRevoked(t, fresh, duringOutage, time.Now())
			assert.NoError(t, fresh.Check(ctx, other))
		})
	}
}

// TestRevokerKeyspace: Redis holds digests only — no issuer, subject,
// session or token ID in any key or value.
func TestRevokerKeyspace(t *testing.T) {
	srv := startRedis(t)
	r := newRevoker(t, newShared(t, srv.addr, nil), RevokerConfig{})
	ctx := context.Background()
	secrets := []string{"jti-secret-1", "sid-secret-2", "subject-secret-3"}
	require.NoError(t, r.Revoke(ctx, auth.Revocation{Issuer: revIssuer, TokenID: secrets[0]}))
	require.NoError(t, r.Revoke(ctx, auth.Revocation{Issuer: revIssuer, SessionID: secrets[1]}))
	require.NoError(t, r.Revoke(ctx, auth.Revocation{Issuer: revIssuer, Subject: secrets[2]}))
	space := scanKeyspace(t, newClient(t, srv.addr))
	require.Len(t, space, 3, "one sorted set of entries, a version, an epoch")
	n := 0
	for k, vals := range space {
		for _, s := range append([]string{k}, vals...) {
			for _, secret := range append(secrets, "idp.example.com", "secret") {
				assert.NotContains(t, s, secret)
			}
		}
		n += len(vals)
	}
	assert.Equal(t, 5, n, "three entries, the version, the epoch")
	// Every entry expires: the set's expiry is its last entry's.
	d, err := newClient(t, srv.addr).PTTL(ctx, "t:{rv}entries").Result()
	require.NoError(t, err)
	assert.Greater(t, d, time.Duration(0))
	assert.LessOrEqual(t, d, auth.DefaultMaxTokenLifetime+auth.MaxLeeway)
}

func TestRevokerConfig(t *testing.T) {
	srv := startRedis(t)
	s := newShared(t, srv.addr, nil)
	for _, tc := range []struct {
		name string
		cfg  RevokerConfig
		bad  string
	}{
		{"policy", RevokerConfig{Policy: 9}, "Policy"},
		{"staleness too short", RevokerConfig{MaxStaleness: time.Millisecond}, "MaxStaleness"},
		{"poll not shorter", RevokerConfig{PollInterval: time.Second}, "PollInterval"},
		{"capacity", RevokerConfig{RevokerConfig: auth.RevokerConfig{Capacity: -1}}, "Capacity"},
		{"lifetime", RevokerConfig{RevokerConfig: auth.RevokerConfig{MaxTokenLifetime: time.Millisecond}}, "MaxTokenLifetime"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Revoker(tc.cfg)
			assert.ErrorIs(t, err, ErrConfig)
			assert.ErrorContains(t, err, tc.bad)
		})
	}
}

func TestEntryEncoding(t *testing.T) {
	set, err := auth.NewRevocationSet(auth.RevokerConfig{}, make([]byte, 32))
	require.NoError(t, err)
	now := time.Now().Truncate(time.Millisecond)
	for _, rv := range []auth.Revocation{
		{Issuer: "i", TokenID: "j"}, {Issuer: "i", SessionID: "s"}, {Issuer: "i", Subject: "u", IssuedBefore: now.Add(-time.Minute)},
	} {
		e, err := set.Entry(rv, now)
		require.NoError(t, err)
		m := encodeEntry(e)
		assert.LessOrEqual(t, len(m), maxMemberBytes)
		got, ok := decodeEntry(m, e.Expiry)
		require.True(t, ok, m)
		assert.Equal(t, e.Kind, got.Kind)
		assert.Equal(t, e.Digest, got.Digest)
		assert.True(t, e.Before.Equal(got.Before))
	}
	for _, bad := range []string{"", "j", "x" + strings.Repeat("A", 43), "j" + strings.Repeat("A", 42) + "=", "u" + strings.Repeat("A", 43),
		"u" + strings.Repeat("A", 43) + ".-5", "u" + strings.Repeat("A", 43) + ".+5", "j" + strings.Repeat("A", 43) + ".5", "u" + strings.Repeat("A", 43) + ".1x", "u" + strings.Repeat("0", 43) + ".00", "u" + strings.Repeat("A", 43) + ".0123"} {
		_, ok := decodeEntry(bad, now)
		assert.False(t, ok, "%q", bad)
	}
}

// FuzzDecodeEntry: members read from Redis are untrusted; decodeEntry
// never panics and accepts only what encodeEntry writes.
func FuzzDecodeEntry(f *testing.F) {
	f.Add("j" + strings.Repeat("A", 43))
	f.Add("u" + strings.Repeat("_", 43) + ".1700000000000")
	f.Add("s" + strings.Repeat("-", 43) + "x")
	f.Fuzz(func(t *testing.T, m string) {
		e, ok := decodeEntry(m, time.Unix(0, 0))
		if !ok {
			return
		}
		assert.Equal(t, m, encodeEntry(e), "only the canonical form is accepted")
	})
}

// BenchmarkRevokerCheck is the warm-path cost of the Redis revoker: its
// copy is fresh (the poller keeps it so), so Check is an atomic load and
// the local lookup — no Redis round trip. 10,000 entries are revoked.
func BenchmarkRevokerCheck(b *testing.B) {
	srv := startRedis(b)
	r := newRevoker(b, newShared(b, srv.addr, nil), RevokerConfig{})
	ctx := context.Background()
	for i := range 10_000 {
		require.NoError(b, r.Revoke(ctx, auth.Revocation{Issuer: revIssuer, TokenID: "jti-" + string(rune('a'+i%26)) + strings.Repeat("x", i%50) + time.Duration(i).String()}))
	}
	p := principal("alice", "not-revoked", "sid-1")
	require.NoError(b, r.Check(ctx, p))
	b.ReportAllocs()
	for b.Loop() {
		if err := r.Check(ctx, p); err != nil {
			b.Fatal(err)
		}
	}
}
