package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults and limits of revocation.
const (
	// DefaultMaxTokenLifetime is RevokerConfig.MaxTokenLifetime when zero:
	// the longest lifetime (exp − iat) of a token a revocation must cover.
	DefaultMaxTokenLifetime = 24 * time.Hour
	// MaxMaxTokenLifetime is the largest MaxTokenLifetime accepted.
	MaxMaxTokenLifetime = 90 * 24 * time.Hour
	// DefaultRevocationCapacity is RevokerConfig.Capacity when zero.
	DefaultRevocationCapacity = 100_000
	// MaxRevocationCapacity is the largest Capacity accepted.
	MaxRevocationCapacity = 10_000_000
	// MaxRevocationFieldBytes caps each string field of a Revocation.
	MaxRevocationFieldBytes = 1024
)

// Sentinels of revocation.
var (
	// ErrRevoked: the token was revoked by the operator (by its jti, its
	// session or its subject). It is wrapped, with ErrInvalidToken, in the
	// *Error a validator returns, so the answer is 401 invalid_token.
	ErrRevoked = errors.New("auth: token revoked")
	// ErrRevocationHorizon: the token lives longer than the revoker's
	// MaxTokenLifetime (or has no expiry), so a revocation entry could
	// expire before the token does; such a token is refused.
	ErrRevocationHorizon = errors.New("auth: token outlives the revocation horizon")
	// ErrRevocationListFull: Revoke was refused because the list holds its
	// capacity of live entries. A live entry is never dropped to make room,
	// since that would un-revoke a token; revoke more broadly (a session or
	// a subject) or raise the capacity.
	ErrRevocationListFull = errors.New("auth: revocation list is full")
	// ErrRevocation: a Revocation is malformed (no issuer, not exactly one
	// target, a field too long, a time out of range).
	ErrRevocation = errors.New("auth: invalid revocation")
)

// Client-safe descriptions of revocation refusals.
const (
	descRevoked        = "the access token has been revoked"
	descRevokedHorizon = "the access token lives longer than this server accepts"
	descRevokeUnavail  = "token revocation status is temporarily unavailable"
)

// Revoker is consulted by the validators (JWTConfig.Revoker,
// IntrospectionConfig.Revoker) for every token they accept: after the
// signature or introspection checks and on every verified-cache hit, so a
// revocation takes effect on tokens already cached.
//
// Check returns nil when p may be served. Otherwise the error should wrap
// ErrRevoked (the token was revoked: 401 invalid_token), ErrRevocationHorizon
// (401), or ErrUnavailable (the status could not be learnt: 503, fail
// closed); an error wrapping none of them is treated as a revocation (401).
// An *Error is returned as it is. Implementations must be safe for
// concurrent use, fast (Check runs on every request), and must never put
// the credential or a claim value in an error.
type Revoker interface {
	Check(ctx context.Context, p *Principal) error
}

// RevokerFunc adapts a function to Revoker.
type RevokerFunc func(ctx context.Context, p *Principal) error

// Check calls f.
func (f RevokerFunc) Check(ctx context.Context, p *Principal) error { return f(ctx, p) }

// Revocation names the tokens to refuse from now on. Issuer is required
// and exactly one of TokenID, SessionID and Subject must be set:
//
//   - TokenID revokes the token whose "jti" it is;
//   - SessionID revokes every token whose "sid" claim (the OpenID Connect
//     session, or the grant, it was issued under) it is;
//   - Subject revokes every token of that "sub" issued before IssuedBefore
//     ("iat" < IssuedBefore; a token without "iat" counts as issued
//     before). Zero IssuedBefore means the time Revoke is called.
//
// Every field is compared exactly. The JSON form is the one prodmode's
// revocation file uses.
type Revocation struct {
	Issuer       string    `json:"iss"`
	TokenID      string    `json:"jti,omitempty"`
	SessionID    string    `json:"sid,omitempty"`
	Subject      string    `json:"sub,omitempty"`
	IssuedBefore time.Time `json:"iat_before,omitzero"`
}

// RevocationKind says which claim a revocation entry matches.
type RevocationKind byte

// The kinds of revocation entries.
const (
	RevokeTokenID   RevocationKind = 'j'
	RevokeSessionID RevocationKind = 's'
	RevokeSubject   RevocationKind = 'u'
)

// Kind returns which claim r matches, after checking r's shape. Errors
// wrap ErrRevocation and name the field, never its value.
func (r Revocation) Kind() (RevocationKind, error) {
	bad := func(format string, args ...any) (RevocationKind, error) {
		return 0, fmt.Errorf("%w: %s", ErrRevocation, fmt.Sprintf(format, args...))
	}
	if r.Issuer == "" {
		return bad("iss is required")
	}
	n, kind := 0, RevocationKind(0)
	for _, f := range [...]struct {
		name string
		v    string
		k    RevocationKind
	}{{"iss", r.Issuer, 0}, {"jti", r.TokenID, RevokeTokenID}, {"sid", r.SessionID, RevokeSessionID}, {"sub", r.Subject, RevokeSubject}} {
		if len(f.v) > MaxRevocationFieldBytes {
			return bad("%s is longer than %d bytes", f.name, MaxRevocationFieldBytes)
		}
		if f.v != "" && f.k != 0 {
			n, kind = n+1, f.k
		}
	}
	if n != 1 {
		return bad("exactly one of jti, sid and sub is required")
	}
	if !r.IssuedBefore.IsZero() && kind != RevokeSubject {
		return bad("iat_before applies to sub only")
	}
	return kind, nil
}

// RevokerConfig configures a MemoryRevoker (and the Redis revoker's local
// copy). Every zero value is a documented default.
type RevokerConfig struct {
	// MaxTokenLifetime is the longest lifetime (exp − iat) of the tokens
	// this server accepts. An entry is kept until no token it can affect
	// can still be valid: MaxTokenLifetime plus MaxLeeway after the
	// revocation (after IssuedBefore for a subject). A token that lives
	// longer, or has no exp, is refused with ErrRevocationHorizon, since
	// its revocation could be forgotten before it expires; a token
	// without iat must not have more than MaxTokenLifetime left to run.
	// That bound is all there is for a token without iat: one revoked
	// while it still had more than MaxTokenLifetime to run (refused then
	// by this rule) is served again once its entry expires, if it still
	// has MaxTokenLifetime or less to run. The IdPs of authz's presets put
	// iat in every access token.
	// Zero means DefaultMaxTokenLifetime (24 h); at most
	// MaxMaxTokenLifetime.
	MaxTokenLifetime time.Duration
	// Capacity caps the live entries. Zero means
	// DefaultRevocationCapacity (100,000); at most MaxRevocationCapacity.
	// A full list refuses new revocations (ErrRevocationListFull) and
	// never forgets a live one.
	Capacity int
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
}

// MemoryRevoker is a bounded in-memory revocation list for one process.
// Revoke adds an entry; Check (the Revoker) refuses the tokens it names.
// Entries hold keyed SHA-256 digests of the issuer and the revoked value,
// never the values themselves, and expire on their own (see
// RevokerConfig.MaxTokenLifetime). Check takes no lock and does no work
// beyond the horizon check while the list is empty.
//
// Construct it with NewMemoryRevoker; it is safe for concurrent use.
type MemoryRevoker struct {
	set *RevocationSet
	now func() time.Time
}

// NewMemoryRevoker checks cfg and returns an empty revoker. Mistakes are
// errors naming the field and wrapping ErrConfig.
func NewMemoryRevoker(cfg RevokerConfig) (*MemoryRevoker, error) {
	var key [32]byte
	if _, err := rand.Read(key[:]); err != nil {
		return nil, fmt.Errorf("%w: drawing the revocation key: %w", ErrConfig, err)
	}
	set, err := NewRevocationSet(cfg, key[:])
	if err != nil {
		return nil, err
	}
	return &MemoryRevoker{set: set, now: set.now}, nil
}

// Revoke adds r to the list; it takes effect on the next request. Errors
// wrap ErrRevocation (a malformed r) or ErrRevocationListFull.
func (m *MemoryRevoker) Revoke(_ context.Context, r Revocation) error {
	e, err := m.set.Entry(r, m.now())
	if err != nil {
		return err
	}
	return m.set.Add(e, m.now())
}

// Check implements Revoker.
func (m *MemoryRevoker) Check(_ context.Context, p *Principal) error {
	return m.set.Check(p, m.now())
}

// Len returns the number of entries held, expired ones included until
// they are swept.
func (m *MemoryRevoker) Len() int { return m.set.Len() }

// RevocationDigest is the keyed digest identifying a revocation entry: the
// SHA-256 of the key, the kind, the issuer and the revoked value. It is
// what a shared store (package redisstore) keeps, so a store dump names no
// subject or session.
type RevocationDigest [sha256.Size]byte

// RevocationEntry is one entry of a RevocationSet.
type RevocationEntry struct {
	Kind   RevocationKind
	Digest RevocationDigest
	// Before is the subject's iat bound (RevokeSubject only).
	Before time.Time
	// Expiry is when the entry may be forgotten.
	Expiry time.Time
}

// RevocationSet is the lookup structure behind MemoryRevoker and the
// Redis revoker's local copy: bounded maps of entry digests per kind, read
// under a read lock and skipped altogether while empty. Its methods are
// safe for concurrent use. Construct it with NewRevocationSet.
type RevocationSet struct {
	key      []byte
	lifetime time.Duration // MaxTokenLifetime + MaxLeeway
	capacity int
	now      func() time.Time

	n  atomic.Int64 // entries held, for the lock-free empty check
	mu sync.RWMutex
	m  [3]map[RevocationDigest]RevocationEntry // by kindIndex
}

// NewRevocationSet checks cfg and returns an empty set whose digests are
// keyed with key (at least 16 bytes; replicas sharing entries need the
// same key).
func NewRevocationSet(cfg RevokerConfig, key []byte) (*RevocationSet, error) {
	cfgErr := func(field, format string, args ...any) error {
		return fmt.Errorf("%w: RevokerConfig.%s: %s", ErrConfig, field, fmt.Sprintf(format, args...))
	}
	lifetime, err := durationOr(cfg.MaxTokenLifetime, DefaultMaxTokenLifetime, time.Second, MaxMaxTokenLifetime)
	if err != nil {
		return nil, cfgErr("MaxTokenLifetime", "%v", err)
	}
	capacity := cfg.Capacity
	switch {
	case capacity == 0:
		capacity = DefaultRevocationCapacity
	case capacity < 0 || capacity > MaxRevocationCapacity:
		return nil, cfgErr("Capacity", "must be between 1 and %d", MaxRevocationCapacity)
	}
	if len(key) < 16 {
		return nil, fmt.Errorf("%w: the revocation digest key must be at least 16 bytes", ErrConfig)
	}
	s := &RevocationSet{key: append([]byte(nil), key...), lifetime: lifetime + MaxLeeway, capacity: capacity, now: cfg.Now}
	if s.now == nil {
		s.now = time.Now
	}
	for i := range s.m {
		s.m[i] = make(map[RevocationDigest]RevocationEntry)
	}
	return s, nil
}

// Horizon is how long an entry is kept: MaxTokenLifetime plus MaxLeeway.
func (s *RevocationSet) Horizon() time.Duration { return s.lifetime }

// Capacity returns the most live entries the set holds.
func (s *RevocationSet) Capacity() int { return s.capacity }

func kindIndex(k RevocationKind) int {
	switch k {
	case RevokeTokenID:
		return 0
	case RevokeSessionID:
		return 1
	case RevokeSubject:
		return 2
	}
	return -1
}

// Entry checks r and returns its entry as of now: its digest, its
// subject bound and its expiry.
func (s *RevocationSet) Entry(r Revocation, now time.Time) (RevocationEntry, error) {
	kind, err := r.Kind()
	if err != nil {
		return RevocationEntry{}, err
	}
	e := RevocationEntry{Kind: kind, Expiry: now.Add(s.lifetime)}
	value := r.TokenID
	switch kind {
	case RevokeSessionID:
		value = r.SessionID
	case RevokeSubject:
		value = r.Subject
		e.Before = r.IssuedBefore
		if e.Before.IsZero() {
			e.Before = now
		}
		if e.Before.After(now.Add(MaxLeeway)) {
			return RevocationEntry{}, fmt.Errorf("%w: iat_before is more than %v in the future", ErrRevocation, MaxLeeway)
		}
		// Tokens issued before Before are all expired by Before+lifetime.
		e.Expiry = e.Before.Add(s.lifetime)
		if !e.Expiry.After(now) {
			return RevocationEntry{}, fmt.Errorf("%w: iat_before is so far in the past that every token it names has expired", ErrRevocation)
		}
	}
	e.Digest = s.digest(kind, r.Issuer, value)
	return e, nil
}

// digest is SHA-256(key ‖ kind ‖ len(iss) ‖ iss ‖ value), hashed from a
// stack buffer for the usual short claims.
func (s *RevocationSet) digest(kind RevocationKind, iss, value string) RevocationDigest {
	var stack [384]byte
	buf := append(stack[:0], s.key...)
	buf = append(buf, byte(kind))
	buf = binary.BigEndian.AppendUint32(buf, uint32(len(iss)))
	buf = append(buf, iss...)
	buf = append(buf, value...)
	return sha256.Sum256(buf)
}

// Add inserts e (keeping the later expiry, and for a subject the later
// bound, of an entry already held). When the set is full it first sweeps
// entries expired at now; when it is still full it refuses with
// ErrRevocationListFull.
func (s *RevocationSet) Add(e RevocationEntry, now time.Time) error {
	i := kindIndex(e.Kind)
	if i < 0 {
		return fmt.Errorf("%w: unknown kind %q", ErrRevocation, byte(e.Kind))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.m[i]
	if old, ok := m[e.Digest]; ok {
		if old.Expiry.After(e.Expiry) {
			e.Expiry = old.Expiry
		}
		if old.Before.After(e.Before) {
			e.Before = old.Before
		}
		m[e.Digest] = e
		return nil
	}
	if int(s.n.Load()) >= s.capacity {
		s.sweepLocked(now)
		if int(s.n.Load()) >= s.capacity {
			return fmt.Errorf("%w: %d live entries", ErrRevocationListFull, s.capacity)
		}
	}
	m[e.Digest] = e
	s.n.Add(1)
	return nil
}

// Replace swaps the whole content for entries (a full reload from a
// shared store), dropping those expired at now and keeping at most the
// capacity. It reports whether entries had to be left out.
func (s *RevocationSet) Replace(entries []RevocationEntry, now time.Time) (truncated bool) {
	var next [3]map[RevocationDigest]RevocationEntry
	for i := range next {
		next[i] = make(map[RevocationDigest]RevocationEntry)
	}
	n := 0
	for _, e := range entries {
		i := kindIndex(e.Kind)
		if i < 0 || !e.Expiry.After(now) {
			continue
		}
		if old, ok := next[i][e.Digest]; ok {
			if old.Expiry.After(e.Expiry) {
				e.Expiry = old.Expiry
			}
			if old.Before.After(e.Before) {
				e.Before = old.Before
			}
			next[i][e.Digest] = e
			continue
		}
		if n >= s.capacity {
			truncated = true
			continue
		}
		next[i][e.Digest] = e
		n++
	}
	s.mu.Lock()
	s.m = next
	s.n.Store(int64(n))
	s.mu.Unlock()
	return truncated
}

// Sweep drops the entries expired at now.
func (s *RevocationSet) Sweep(now time.Time) {
	s.mu.Lock()
	s.sweepLocked(now)
	s.mu.Unlock()
}

func (s *RevocationSet) sweepLocked(now time.Time) {
	for _, m := range s.m {
		for k, e := range m {
			if !e.Expiry.After(now) {
				delete(m, k)
				s.n.Add(-1)
			}
		}
	}
}

// Len returns the number of entries held.
func (s *RevocationSet) Len() int { return int(s.n.Load()) }

// Entries returns a copy of the entries live at now, for a shared store
// to publish again (after it lost its content).
func (s *RevocationSet) Entries(now time.Time) []RevocationEntry {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]RevocationEntry, 0, s.n.Load())
	for _, m := range s.m {
		for _, e := range m {
			if e.Expiry.After(now) {
				out = append(out, e)
			}
		}
	}
	return out
}

// Check returns nil when p is not revoked at now, else an *Error: 401
// invalid_token wrapping ErrRevoked or ErrRevocationHorizon.
func (s *RevocationSet) Check(p *Principal, now time.Time) error {
	if p == nil {
		return InvalidToken(descRevoked, fmt.Errorf("%w: %w: no principal", ErrInvalidToken, ErrRevoked))
	}
	if e := s.horizon(p, now); e != nil {
		return e
	}
	if s.n.Load() == 0 {
		return nil
	}
	var kind RevocationKind
	s.mu.RLock()
	switch {
	case len(s.m[0]) > 0 && p.TokenID != "" && s.live(0, s.digest(RevokeTokenID, p.Issuer, p.TokenID), p, now):
		kind = RevokeTokenID
	case len(s.m[1]) > 0 && s.liveSession(p, now):
		kind = RevokeSessionID
	case len(s.m[2]) > 0 && s.live(2, s.digest(RevokeSubject, p.Issuer, p.Subject), p, now):
		kind = RevokeSubject
	}
	s.mu.RUnlock()
	if kind == 0 {
		return nil
	}
	return InvalidToken(descRevoked, fmt.Errorf("%w: %w (%s)", ErrInvalidToken, ErrRevoked, kind))
}

func (s *RevocationSet) liveSession(p *Principal, now time.Time) bool {
	sid, ok := p.Claims.m["sid"].(string)
	return ok && sid != "" && s.live(1, s.digest(RevokeSessionID, p.Issuer, sid), p, now)
}

// live reports whether map i holds an unexpired entry d that applies to p
// (read lock held).
func (s *RevocationSet) live(i int, d RevocationDigest, p *Principal, now time.Time) bool {
	e, ok := s.m[i][d]
	if !ok || !e.Expiry.After(now) {
		return false
	}
	return e.Kind != RevokeSubject || p.IssuedAt.IsZero() || p.IssuedAt.Before(e.Before)
}

// horizon refuses a token that could outlive a revocation entry. An
// entry lives MaxTokenLifetime + MaxLeeway (s.lifetime) and a validator
// accepts a token until exp plus its leeway (at most MaxLeeway), so the
// token may live MaxTokenLifetime, not s.lifetime: that margin is the
// leeway's.
func (s *RevocationSet) horizon(p *Principal, now time.Time) *Error {
	maxLife := s.lifetime - MaxLeeway
	switch {
	case p.Expiry.IsZero():
		return InvalidToken(descRevokedHorizon, fmt.Errorf("%w: %w: the token has no expiry", ErrInvalidToken, ErrRevocationHorizon))
	case p.Expiry.Sub(now) > maxLife, !p.IssuedAt.IsZero() && p.Expiry.Sub(p.IssuedAt) > maxLife:
		return InvalidToken(descRevokedHorizon, fmt.Errorf("%w: %w: the token lives longer than MaxTokenLifetime (%v)", ErrInvalidToken, ErrRevocationHorizon, maxLife))
	}
	return nil
}

// String returns the claim the kind matches: "jti", "sid" or "sub".
func (k RevocationKind) String() string {
	switch k {
	case RevokeTokenID:
		return "jti"
	case RevokeSessionID:
		return "sid"
	case RevokeSubject:
		return "sub"
	}
	return "unknown"
}

// CheckRevoked asks r about p and returns what a validator answers: nil
// when p may be served (or r is nil), else an *Error — 401 invalid_token
// wrapping ErrRevoked or ErrRevocationHorizon, or 503 when r could not
// answer. It is for validators outside this package (package jobtoken).
func CheckRevoked(ctx context.Context, r Revoker, p *Principal) *Error {
	return checkRevoked(ctx, r, p)
}

// checkRevoked asks r about p and turns its answer into the validator's
// *Error (nil when p may be served). A nil r revokes nothing.
func checkRevoked(ctx context.Context, r Revoker, p *Principal) *Error {
	if r == nil {
		return nil
	}
	err := r.Check(ctx, p)
	if err == nil {
		return nil
	}
	var e *Error
	switch {
	case errors.As(err, &e):
		return e
	case errors.Is(err, ErrUnavailable), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return &Error{Status: http.StatusServiceUnavailable, Description: descRevokeUnavail, Err: fmt.Errorf("%w: revocation check: %w", ErrUnavailable, err)}
	case errors.Is(err, ErrRevocationHorizon):
		return InvalidToken(descRevokedHorizon, fmt.Errorf("%w: %w", ErrInvalidToken, err))
	}
	return InvalidToken(descRevoked, fmt.Errorf("%w: %w: %w", ErrInvalidToken, ErrRevoked, err))
}
