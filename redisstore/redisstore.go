package redisstore

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrConfig is wrapped by every configuration error of this package; the
// message names the field.
var ErrConfig = errors.New("redisstore: invalid configuration")

// ErrUnavailable is wrapped by the errors a store returns when Redis could
// not answer and the store's policy is FailClosed. The Redis error is
// wrapped beside it; neither holds a key or a value.
var ErrUnavailable = errors.New("redisstore: redis unavailable")

// errSealed is wrapped by open when a value read from Redis does not open under
// the seal key (another key, a truncated or forged value). The value is
// then treated as absent.
var errSealed = errors.New("redisstore: sealed value does not open")

// SealKeySize is the length of Config.SealKey: 32 bytes (256 bits).
const SealKeySize = 32

// DefaultPrefix is the key prefix when Config.Prefix is empty.
const DefaultPrefix = "mcpguard:"

// DefaultRetryAfter is how long a store whose Redis call failed skips Redis
// (answering by its policy at once) before it tries again, when
// Config.RetryAfter is zero. It bounds how long a Redis outage costs every
// request a timeout, and how long service takes to resume once Redis is
// back.
const DefaultRetryAfter = 500 * time.Millisecond

// FailurePolicy says what a store does when Redis cannot answer.
type FailurePolicy uint8

const (
	// FailClosed makes the operation fail with an error wrapping
	// ErrUnavailable; the caller refuses the request (503). It is the zero
	// value and the default of every store guarding security state
	// (terminated sessions, session counts, DPoP replay, revocation).
	FailClosed FailurePolicy = iota
	// DegradeLocal answers from a bounded in-process store instead, which
	// every write also reaches, so the replica keeps serving with what it
	// knows itself. Caches (exchanged tokens, introspection verdicts)
	// always degrade: a miss only costs a call to the authorization server.
	DegradeLocal
)

// String returns "fail_closed" or "degrade_local".
func (p FailurePolicy) String() string {
	switch p {
	case FailClosed:
		return "fail_closed"
	case DegradeLocal:
		return "degrade_local"
	}
	return "unknown"
}

func (p FailurePolicy) check(field string) error {
	if p != FailClosed && p != DegradeLocal {
		return fmt.Errorf("%w: %s: unknown policy %d", ErrConfig, field, p)
	}
	return nil
}

// Reporter is told of each change of a store's health: Redis failed
// (outcome is the policy that applied, "fail_closed" or "degrade_local",
// as FailurePolicy.String spells it) or answered again after failing
// (outcome "recovered"). store names the store: "terminated_sessions",
// "session_counts", "dpop_replay", "obo_tokens", "introspection",
// "rate_limits" or "revocation" (the Store… constants). While Redis keeps failing, a store reports at most once
// a second. Nothing passed holds a key, a value or a credential, nor the
// Redis error's text.
//
// It is the one connection between redisstore and an audit log or metrics
// (Config.Reporter): *audit.Recorder implements it (an
// audit.KindStoreFailure event; its telemetry observer counts it) and so
// does *telemetry.Telemetry (mcpguard.store.events, without audit).
// ReportStore is called on the request's goroutine; it must be fast, must
// not block and must be safe for concurrent use.
type Reporter interface {
	ReportStore(ctx context.Context, store, outcome string)
}

// outcomeRecovered is the outcome a Reporter hears on recovery.
const outcomeRecovered = "recovered"

// Config configures Shared, the plumbing every store of this package uses.
// Client and SealKey are required; the zero value of every other field is
// the documented default.
type Config struct {
	// Client is the Redis client all stores share: a *redis.Client,
	// *redis.ClusterClient, failover (Sentinel) or ring client. Keep its
	// timeouts short (DialTimeout, ReadTimeout, WriteTimeout of tens to
	// hundreds of milliseconds, MaxRetries 1): requests wait on it.
	// go-redis reconnects by itself, so a restarted Redis is used again
	// without restarting the replicas. Required; Close is the caller's.
	Client redis.UniversalClient
	// Prefix starts every key, so that several deployments share one Redis,
	// except the rate limiter's: redis_rate puts "rate:" before each of
	// its keys, so those read "rate:<Prefix>…" (a Redis ACL key pattern
	// must allow both, e.g. ~<Prefix>* and ~rate:<Prefix>*, or the limiter
	// fails closed with 503). Replicas that share state need the same Prefix. Empty means
	// DefaultPrefix. Braces are refused (they would change Redis Cluster
	// hash slots).
	Prefix string
	// SealKey is the 32-byte secret every replica shares. From it are
	// derived the key that hashes every identifier into a Redis key
	// (HMAC-SHA256, so no token, session ID or subject appears in a key)
	// and the AES-256-GCM key that seals every cached value before it leaves
	// the process. Required; the caller may zero its copy after New.
	SealKey []byte
	// RetryAfter is how long a store skips Redis after a failed call;
	// zero means DefaultRetryAfter, at most a minute.
	RetryAfter time.Duration
	// Reporter, when set, is told about failures and recoveries (see
	// Reporter): pass the *audit.Recorder (or a *telemetry.Telemetry for
	// metrics without audit). Nil: none.
	Reporter Reporter
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Shared is the plumbing the stores of this package share: one Redis
// client, the key prefix, keyed hashing of identifiers, sealing of values
// and the health reporting behind each store's failure policy. Stores of
// other packages (a revocation list) can build on it.
//
// Construct it with New. It is safe for concurrent use.
type Shared struct {
	client     redis.UniversalClient
	prefix     string
	aead       cipher.AEAD
	retryAfter time.Duration
	reporter   Reporter
	now        func() time.Time
	macs       sync.Pool // of *macState keyed with the key-hash key
}

// New checks cfg and returns the shared plumbing. It makes no network
// call.
func New(cfg Config) (*Shared, error) {
	if cfg.Client == nil {
		return nil, fmt.Errorf("%w: Config.Client is required", ErrConfig)
	}
	if len(cfg.SealKey) != SealKeySize {
		return nil, fmt.Errorf("%w: Config.SealKey must be %d bytes, got %d", ErrConfig, SealKeySize, len(cfg.SealKey))
	}
	if strings.ContainsAny(cfg.Prefix, "{}") {
		return nil, fmt.Errorf("%w: Config.Prefix must not contain braces", ErrConfig)
	}
	if len(cfg.Prefix) > 128 {
		return nil, fmt.Errorf("%w: Config.Prefix is longer than 128 bytes", ErrConfig)
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	switch {
	case cfg.RetryAfter < 0 || cfg.RetryAfter > time.Minute:
		return nil, fmt.Errorf("%w: Config.RetryAfter must be between 0 and one minute", ErrConfig)
	case cfg.RetryAfter == 0:
		cfg.RetryAfter = DefaultRetryAfter
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	// Two independent keys from one secret: HMAC-SHA256 as a PRF with
	// distinct labels (HKDF-Expand with a single block).
	sealKey := derive(cfg.SealKey, "mcpguard redisstore seal v1")
	hashKey := derive(cfg.SealKey, "mcpguard redisstore key v1")
	block, err := aes.NewCipher(sealKey)
	if err != nil {
		return nil, fmt.Errorf("%w: Config.SealKey: %w", ErrConfig, err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("%w: Config.SealKey: %w", ErrConfig, err)
	}
	s := &Shared{
		client:     cfg.Client,
		prefix:     cfg.Prefix,
		aead:       aead,
		retryAfter: cfg.RetryAfter,
		reporter:   cfg.Reporter,
		now:        cfg.Now,
	}
	s.macs.New = func() any { return &macState{h: hmac.New(sha256.New, hashKey), buf: make([]byte, 0, 128)} }
	return s, nil
}

func derive(secret []byte, label string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(label))
	m.Write([]byte{1})
	return m.Sum(nil)
}

// key returns the Redis key of identifier parts in the namespace kind:
// the prefix, kind, a colon and the base64url HMAC-SHA256 of the parts under
// the key-hash key. The parts (a token digest, a session key, a subject)
// never appear in the key and cannot be recovered or tested for without
// the seal key. kind must be a short constant such as "replay"; it may
// contain a Redis Cluster hash tag ("{sc}") to keep related keys in one
// slot.
func (s *Shared) key(kind string, parts ...[]byte) string {
	sum := s.digest(kind, parts...)
	b := make([]byte, 0, len(s.prefix)+len(kind)+1+base64.RawURLEncoding.EncodedLen(len(sum)))
	b = append(b, s.prefix...)
	b = append(b, kind...)
	b = append(b, ':')
	b = base64.RawURLEncoding.AppendEncode(b, sum[:])
	return string(b)
}

// digest is the keyed hash behind key.
func (s *Shared) digest(kind string, parts ...[]byte) [sha256.Size]byte {
	m := s.macs.Get().(*macState)
	m.buf = appendPart(m.buf[:0], kind)
	for _, p := range parts {
		m.buf = appendPart(m.buf, p)
	}
	return s.sum(m)
}

// digestString is digest of one string part, without a copy of it on the
// heap (the warm path of TerminatedSessions).
func (s *Shared) digestString(kind, part string) [sha256.Size]byte {
	m := s.macs.Get().(*macState)
	m.buf = appendPart(appendPart(m.buf[:0], kind), part)
	return s.sum(m)
}

// macState is a keyed HMAC and the buffer its input is gathered in, so
// that a digest makes one Write and no allocation.
type macState struct {
	h   hash.Hash
	buf []byte
}

// maxPooledBuf bounds the buffer a macState keeps between uses.
const maxPooledBuf = 4096

func (s *Shared) sum(m *macState) [sha256.Size]byte {
	m.h.Reset()
	m.h.Write(m.buf)
	var sum [sha256.Size]byte
	copy(sum[:], m.h.Sum(m.buf[:0]))
	if cap(m.buf) > maxPooledBuf {
		m.buf = nil
	}
	s.macs.Put(m)
	return sum
}

// appendPart appends p with its length in four bytes, big-endian, so that
// the parts of a digest cannot run into each other.
func appendPart[T string | []byte](b []byte, p T) []byte {
	l := len(p)
	b = append(b, byte(l>>24), byte(l>>16), byte(l>>8), byte(l))
	return append(b, p...)
}

// sealVersion is the first byte of every sealed value.
const sealVersion = 1

// seal encrypts plaintext with AES-256-GCM under the derived seal key and
// a random nonce, authenticating key as associated data, so a value moved
// to another key does not open. The result is what goes to Redis.
func (s *Shared) seal(key string, plaintext []byte) []byte {
	out := make([]byte, 1+s.aead.NonceSize(), 1+s.aead.NonceSize()+len(plaintext)+s.aead.Overhead())
	out[0] = sealVersion
	_, _ = rand.Read(out[1:])
	return s.aead.Seal(out, out[1:], plaintext, []byte(key))
}

// open decrypts a value sealed by seal under the same key, or fails with
// an error wrapping errSealed.
func (s *Shared) open(key string, sealed []byte) ([]byte, error) {
	ns := s.aead.NonceSize()
	if len(sealed) < 1+ns+s.aead.Overhead() || sealed[0] != sealVersion {
		return nil, fmt.Errorf("%w: malformed", errSealed)
	}
	p, err := s.aead.Open(nil, sealed[1:1+ns], sealed[1+ns:], []byte(key))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errSealed, err)
	}
	return p, nil
}

// health tracks whether a store's Redis calls succeed, reports changes
// through Config.Reporter and tells the store when to skip Redis for a while
// after a failure. Get one per store with Shared.health.
type health struct {
	s      *Shared
	store  string
	policy FailurePolicy

	failing   atomic.Bool
	skipUntil atomic.Int64 // unix nanoseconds; Redis is not called before
	lastEvent atomic.Int64 // unix nanoseconds of the last failure event
}

// health returns the health tracker of the store named store (the name a
// Reporter hears), which follows policy.
func (s *Shared) health(store string, policy FailurePolicy) *health {
	return &health{s: s, store: store, policy: policy}
}

// Policy returns the policy the store follows.
func (h *health) Policy() FailurePolicy { return h.policy }

// Skip reports whether Redis failed less than Config.RetryAfter ago, so
// the store should answer by its policy without calling Redis.
func (h *health) Skip() bool {
	u := h.skipUntil.Load()
	return u != 0 && h.s.now().UnixNano() < u
}

// Fail records that a Redis call failed with err and returns err wrapped
// with ErrUnavailable (nil err: the skip error). It tells the Reporter the
// first time and then at most once a second while failures go on. Only a
// real failure (err not nil) starts a new RetryAfter window: a skipped call
// does not, or a store asked more often than RetryAfter would never try
// Redis again.
func (h *health) Fail(ctx context.Context, err error) error {
	now := h.s.now().UnixNano()
	if err == nil {
		err = errors.New("skipped after a recent failure")
	} else {
		h.skipUntil.Store(now + int64(h.s.retryAfter))
	}
	if !errors.Is(err, ErrUnavailable) {
		err = fmt.Errorf("%w: %s: %w", ErrUnavailable, h.store, err)
	}
	first := !h.failing.Swap(true)
	if last := h.lastEvent.Load(); first || now-last >= int64(time.Second) {
		if h.lastEvent.CompareAndSwap(last, now) && h.s.reporter != nil {
			h.s.reporter.ReportStore(ctx, h.store, h.policy.String())
		}
	}
	return err
}

// OK records that a Redis call succeeded, reporting a recovery if the
// store was failing.
func (h *health) OK(ctx context.Context) {
	if !h.failing.Load() {
		return
	}
	if h.failing.Swap(false) {
		h.skipUntil.Store(0)
		if h.s.reporter != nil {
			h.s.reporter.ReportStore(ctx, h.store, outcomeRecovered)
		}
	}
}

// Failing reports whether the last Redis call of the store failed.
func (h *health) Failing() bool { return h.failing.Load() }

// ttl is the expiry Redis should keep a key for, until the given time,
// rounded down to the millisecond Redis counts in so that a key never
// outlives until; ok is false when less than a millisecond is left.
func ttl(now, until time.Time) (d time.Duration, ok bool) {
	d = until.Sub(now).Truncate(time.Millisecond)
	return d, d >= time.Millisecond
}
