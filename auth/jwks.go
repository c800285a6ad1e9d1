package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/MicahParks/jwkset"
	"golang.org/x/time/rate"
)

const (
	// maxRemoteBody caps every JWKS and discovery response.
	maxRemoteBody = 1 << 20
	// maxKeys caps the usable keys kept from one JWK Set.
	maxKeys = 100
	// RSA modulus bounds: smaller keys are weak, larger ones make each
	// verification needlessly expensive.
	minRSABits = 2048
	maxRSABits = 8192
)

// verifyKey is one usable public key from a JWK Set. A key that stays in
// the set across fetches keeps its *verifyKey (install reuses it), so the
// verified-token cache, which records the key behind each entry, keeps the
// entries of every key still held.
type verifyKey struct {
	kid string
	alg string // the JWK's "alg", empty when absent
	key crypto.PublicKey
	// removed is set once a fetch finds the key gone from the set (or its
	// kid holding other material): cache entries verified with it are
	// then dropped. It is never cleared; a key that comes back is a new
	// *verifyKey.
	removed atomic.Bool
}

// sameKey reports whether a and b are the same key: same kid, alg and
// public material.
func sameKey(a, b *verifyKey) bool {
	return a.kid == b.kid && a.alg == b.alg && publicKeyEqual(a.key, b.key)
}

// usable reports whether tokens verified with k may still be served from
// the cache: k is nil (no key involved, as for introspection) or still in
// the key set.
func (k *verifyKey) usable() bool { return k == nil || !k.removed.Load() }

// fitsAlg reports whether the key may verify a signature made with alg:
// the JWK's own alg (when present) must equal it, and the key type and
// curve must be the ones alg is defined for (RFC 7518 §3.1, RFC 8037 §3.1).
func (k *verifyKey) fitsAlg(alg string) bool {
	if k.alg != "" && k.alg != alg {
		return false
	}
	switch pub := k.key.(type) {
	case *rsa.PublicKey:
		return strings.HasPrefix(alg, "RS") || strings.HasPrefix(alg, "PS")
	case *ecdsa.PublicKey:
		switch alg {
		case "ES256":
			return pub.Curve == elliptic.P256()
		case "ES384":
			return pub.Curve == elliptic.P384()
		case "ES512":
			return pub.Curve == elliptic.P521()
		}
	case ed25519.PublicKey:
		return alg == "EdDSA"
	}
	return false
}

// keySnapshot is an immutable view of the keys held.
type keySnapshot struct {
	byKID map[string][]*verifyKey
	n     int
	only  *verifyKey // the single key when n == 1
}

func newSnapshot(keys []*verifyKey) *keySnapshot {
	s := &keySnapshot{byKID: make(map[string][]*verifyKey, len(keys)), n: len(keys)}
	for _, k := range keys {
		s.byKID[k.kid] = append(s.byKID[k.kid], k)
	}
	if len(keys) == 1 {
		s.only = keys[0]
	}
	return s
}

// lookup selects the key for a token by its kid, never by trying several
// keys: with a kid, only keys with that kid are candidates; without one,
// only a set holding exactly one key yields a candidate. found reports
// whether the kid (or, without kid, any key) is known at all.
func (s *keySnapshot) lookup(kid string, hasKID bool) (cands []*verifyKey, found bool) {
	if s == nil {
		return nil, false
	}
	if !hasKID {
		if s.only != nil {
			return []*verifyKey{s.only}, true
		}
		return nil, s.n > 0
	}
	c, ok := s.byKID[kid]
	return c, ok
}

// carryOver returns keys with every key that old already holds replaced
// by old's *verifyKey for it, and the keys of old that keys no longer
// hold (removed, or replaced by other material under their kid).
func carryOver(old *keySnapshot, keys []*verifyKey) (next, gone []*verifyKey) {
	if old == nil {
		return keys, nil
	}
	next = make([]*verifyKey, len(keys))
	kept := make(map[*verifyKey]bool, len(keys))
	for i, k := range keys {
		next[i] = k
		for _, ok := range old.byKID[k.kid] {
			if !kept[ok] && sameKey(ok, k) {
				next[i] = ok
				kept[ok] = true
				break
			}
		}
	}
	for _, oldKeys := range old.byKID {
		for _, ok := range oldKeys {
			if !kept[ok] {
				gone = append(gone, ok)
			}
		}
	}
	return next, gone
}

func publicKeyEqual(a, b crypto.PublicKey) bool {
	e, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && e.Equal(b)
}

// parseJWKS extracts the usable signature-verification keys of a JWK Set
// (RFC 7517 §5). A key is usable when its kty is RSA, EC or OKP (never oct:
// a published symmetric key must not verify anything), its use is absent or
// "sig", its key_ops (if any) include "verify", its alg (if any) is in
// algs, it holds no private part, and jwkset accepts its parameters. Other
// keys are skipped, not fatal; a set without usable keys is an error.
func parseJWKS(body []byte, algs []string) ([]*verifyKey, error) {
	var set map[string]json.RawMessage
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, fmt.Errorf("JWK Set is not a JSON object: %w", err)
	}
	var raws []json.RawMessage
	if err := json.Unmarshal(set["keys"], &raws); err != nil || raws == nil {
		return nil, errors.New(`JWK Set has no "keys" array`)
	}
	keys := make([]*verifyKey, 0, min(len(raws), maxKeys))
	var skipped []error
	for i, raw := range raws {
		if len(keys) == maxKeys {
			skipped = append(skipped, fmt.Errorf("keys after the first %d usable ones ignored", maxKeys))
			break
		}
		k, err := parseJWK(raw, algs)
		if err != nil {
			skipped = append(skipped, fmt.Errorf("key %d: %w", i, err))
			continue
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("JWK Set holds no usable signature key: %w", errors.Join(skipped...))
	}
	return keys, nil
}

// isJWKMember reports whether lower is the lower-cased name of a JWK member
// we read; a key carrying one in another letter case is ambiguous.
func isJWKMember(lower string) bool {
	switch lower {
	case "kty", "use", "key_ops", "alg", "kid", "x5u", "x5c", "x5t", "x5t#s256", "crv",
		"x", "y", "d", "n", "e", "p", "q", "dp", "dq", "qi", "oth", "k":
		return true
	}
	return false
}

func parseJWK(raw json.RawMessage, algs []string) (*verifyKey, error) {
	var members map[string]json.RawMessage
	if err := json.Unmarshal(raw, &members); err != nil {
		return nil, errors.New("not a JSON object")
	}
	for name := range members {
		if lower := strings.ToLower(name); lower != name && isJWKMember(lower) && name != "x5t#S256" {
			return nil, fmt.Errorf("member %q differs from a JWK member only by case", name)
		}
	}
	for _, private := range [...]string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"} {
		if _, ok := members[private]; ok {
			return nil, fmt.Errorf("holds private or symmetric key material (%q)", private)
		}
	}
	var m jwkset.JWKMarshal
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("invalid member: %w", err)
	}
	switch m.KTY {
	case jwkset.KtyRSA, jwkset.KtyEC, jwkset.KtyOKP:
	default:
		return nil, fmt.Errorf("kty %q cannot verify our signatures", m.KTY)
	}
	if m.USE != "" && m.USE != jwkset.UseSig {
		return nil, fmt.Errorf("use %q is not sig", m.USE)
	}
	if len(m.KEYOPS) > 0 && !slices.Contains(m.KEYOPS, jwkset.KeyOpsVerify) {
		return nil, errors.New(`key_ops does not include "verify"`)
	}
	if m.ALG != "" && !slices.Contains(algs, string(m.ALG)) {
		return nil, fmt.Errorf("alg %q is not accepted", m.ALG)
	}
	j, err := jwkset.NewJWKFromMarshal(m, jwkset.JWKMarshalOptions{}, jwkset.JWKValidateOptions{})
	if err != nil {
		return nil, fmt.Errorf("invalid key parameters: %w", err)
	}
	k := &verifyKey{kid: m.KID, alg: string(m.ALG)}
	switch pub := j.Key().(type) {
	case *rsa.PublicKey:
		if b := pub.N.BitLen(); b < minRSABits || b > maxRSABits {
			return nil, fmt.Errorf("RSA modulus of %d bits is outside [%d, %d]", b, minRSABits, maxRSABits)
		}
		if pub.E < 3 || pub.E%2 == 0 {
			return nil, errors.New("RSA public exponent is invalid")
		}
		k.key = pub
	case *ecdsa.PublicKey:
		k.key = pub
	case ed25519.PublicKey:
		k.key = pub
	default:
		return nil, fmt.Errorf("unsupported key type %T", pub)
	}
	// A key whose alg is set must also fit it (an RS256 EC key is broken).
	if k.alg != "" && !k.fitsAlg(k.alg) {
		return nil, fmt.Errorf("alg %q does not fit the key type", k.alg)
	}
	return k, nil
}

// keySource holds the verification keys: a fixed set, or a remote JWK Set
// fetched (and possibly discovered) on demand.
//
// Reads take an atomic snapshot and no lock. Fetches run one at a time in a
// goroutine shared by every caller waiting for it, detached from any single
// request's context; no lock is held during I/O. On-demand fetches (no keys
// yet, an unknown kid, or a known kid whose key no longer verifies — the
// issuer may have put new material under it) are throttled by a
// rate.Limiter cooldown; the scheduled refresh (every interval, jittered)
// is started by the first request once due, so an idle validator runs no
// goroutine at all. When a fetch fails the keys already held stay in use.
type keySource struct {
	static   bool
	algs     []string
	client   *http.Client
	timeout  time.Duration
	interval time.Duration // the scheduled refresh's period
	minGap   time.Duration // the cooldown: no scheduled fetch comes sooner after the last one
	now      func() time.Time
	log      *slog.Logger
	locate   func(ctx context.Context) (string, error) // the JWKS URL, discovering it if needed
	forget   func()                                    // drops a discovered URL; nil when configured
	source   string                                    // Operation.Source: the issuer, else the JWKS URL
	obs      observerSlot

	fetchedAt atomic.Int64 // unix nanoseconds of the last successful fetch; 0 before one

	snap    atomic.Pointer[keySnapshot]
	nextDue atomic.Int64 // unix nanoseconds when the scheduled refresh is due

	mu       sync.Mutex
	cooldown *rate.Limiter
	inflight *fetchCall
	lastErr  error
	closed   bool

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

type fetchCall struct {
	done chan struct{}
	err  error
}

func (ks *keySource) close() {
	ks.mu.Lock()
	ks.closed = true
	ks.mu.Unlock()
	if ks.cancel != nil {
		ks.cancel()
	}
	ks.wg.Wait()
}

// keysFor returns the candidate keys for a token's kid, fetching the set
// when no keys are held yet or the kid is unknown — at most once per
// cooldown, whatever the number of callers.
func (ks *keySource) keysFor(ctx context.Context, kid string, hasKID bool) ([]*verifyKey, *Error) {
	snap := ks.snap.Load()
	if ks.static {
		return ks.pick(snap, kid, hasKID)
	}
	now := ks.now()
	if snap != nil {
		ks.maybeRefresh(now)
		// A held set is never empty, so a kid-less token either has its
		// one key or is refused; only an unknown kid is worth a refetch.
		if cands, _ := snap.lookup(kid, hasKID); cands != nil {
			return cands, nil
		} else if !hasKID {
			return ks.pick(snap, kid, hasKID)
		}
	}
	call := ks.onDemand(ctx, now)
	if call == nil {
		if snap == nil {
			ks.mu.Lock()
			cause := ks.lastErr
			ks.mu.Unlock()
			if cause == nil {
				cause = errors.New("no fetch attempted")
			}
			return nil, Unavailable(descKeysUnavail, fmt.Errorf("%w: no signing keys held yet and the refetch cooldown is active: %w", ErrUnavailable, cause))
		}
		return nil, InvalidToken(descUnknownKey, fmt.Errorf("%w: kid %s not in the key set (refetch cooldown active)", ErrInvalidToken, quoteShort(kid)))
	}
	select {
	case <-call.done:
	case <-ctx.Done():
		return nil, Unavailable(descKeysUnavail, fmt.Errorf("%w: waiting for the JWK Set: %w", ErrUnavailable, ctx.Err()))
	}
	snap = ks.snap.Load()
	if snap == nil {
		return nil, Unavailable(descKeysUnavail, fmt.Errorf("%w: fetching the JWK Set: %w", ErrUnavailable, call.err))
	}
	cands, e := ks.pick(snap, kid, hasKID)
	if e != nil && call.err != nil {
		// The key may be one the issuer just started using; we could not
		// find out, so this is an outage, not a verdict on the token.
		return nil, Unavailable(descKeysUnavail, fmt.Errorf("%w: refetching the JWK Set for an unknown kid: %w", ErrUnavailable, call.err))
	}
	return cands, e
}

func (ks *keySource) pick(snap *keySnapshot, kid string, hasKID bool) ([]*verifyKey, *Error) {
	cands, found := snap.lookup(kid, hasKID)
	switch {
	case cands != nil:
		return cands, nil
	case !hasKID && found:
		return nil, InvalidToken(descKeyIDRequired, fmt.Errorf("%w: token has no kid and the key set holds %d keys", ErrInvalidToken, snap.n))
	}
	return nil, InvalidToken(descUnknownKey, fmt.Errorf("%w: kid %s not in the key set", ErrInvalidToken, quoteShort(kid)))
}

// changedKey is called when key, chosen for kid, failed to verify a
// signature: the issuer may have put new material under the same kid. It
// refetches the set as for an unknown kid (at most once per cooldown,
// joining a fetch in flight) and returns the candidates now held for kid
// when they differ from key; nil when nothing changed or no fetch could
// be made.
func (ks *keySource) changedKey(ctx context.Context, kid string, key *verifyKey) []*verifyKey {
	if ks.static {
		return nil
	}
	call := ks.onDemand(ctx, ks.now())
	if call == nil {
		return nil
	}
	select {
	case <-call.done:
	case <-ctx.Done():
		return nil
	}
	cands, _ := ks.snap.Load().lookup(kid, true)
	if slices.ContainsFunc(cands, func(c *verifyKey) bool { return c.alg == key.alg && publicKeyEqual(c.key, key.key) }) {
		return nil
	}
	return cands
}

// onDemand joins the fetch in flight or, if the cooldown allows, starts
// one in ctx's name (see startLocked). It returns nil when throttled.
func (ks *keySource) onDemand(ctx context.Context, now time.Time) *fetchCall {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	if ks.inflight != nil {
		return ks.inflight
	}
	r := ks.cooldown.ReserveN(now, 1)
	if !r.OK() || r.DelayFrom(now) > 0 {
		r.CancelAt(now) // give the token back: we are not fetching
		return nil
	}
	return ks.startLocked(ctx, now)
}

// maybeRefresh starts a background fetch when the scheduled refresh is
// due. It does not wait for it.
func (ks *keySource) maybeRefresh(now time.Time) {
	if ks.static || now.UnixNano() < ks.nextDue.Load() {
		return
	}
	ks.mu.Lock()
	defer ks.mu.Unlock()
	if ks.inflight == nil && now.UnixNano() >= ks.nextDue.Load() {
		// Nobody waits for the scheduled refresh: it is no part of the
		// request that happened to find it due.
		ks.startLocked(context.Background(), now)
	}
}

// scheduleLocked sets when the scheduled refresh after a fetch started at
// now is due: one interval later, less a jitter of up to 5% (replicas do
// not fetch in step), and never sooner than the cooldown.
func (ks *keySource) scheduleLocked(now time.Time) {
	wait := ks.interval
	if j := int64(ks.interval / 20); j > 0 {
		wait -= time.Duration(rand.Int64N(j + 1))
	}
	wait = max(wait, ks.minGap)
	ks.nextDue.Store(now.Add(wait).UnixNano())
}

// refresh fetches now (joining a fetch in flight) and waits, ignoring the
// cooldown.
func (ks *keySource) refresh(ctx context.Context) error {
	if ks.static {
		return nil
	}
	ks.mu.Lock()
	call := ks.inflight
	if call == nil {
		call = ks.startLocked(ctx, ks.now())
	}
	ks.mu.Unlock()
	select {
	case <-call.done:
		return call.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// startLocked starts a fetch; ks.mu must be held. The fetch runs under
// ks.ctx, detached from every request; ctx, the context of whoever needs
// it, only tells the Observer (if any) what the fetch is part of.
func (ks *keySource) startLocked(ctx context.Context, now time.Time) *fetchCall {
	call := &fetchCall{done: make(chan struct{})}
	if ks.closed {
		call.err = errors.New("validator closed")
		close(call.done)
		return call
	}
	ks.inflight = call
	ks.scheduleLocked(now)
	fctx := ks.ctx
	octx, end := ks.obs.start(ctx, Operation{Kind: OpFetchKeys, Source: ks.source})
	if end != nil {
		var cancel context.CancelFunc
		fctx, cancel = withValuesOf(octx, ks.ctx)
		prev := end
		end = func(o Outcome) { cancel(); prev(o) }
	}
	ks.wg.Add(1)
	go func() {
		defer ks.wg.Done()
		err := ks.fetch(fctx)
		ks.mu.Lock()
		ks.inflight = nil
		ks.lastErr = err
		ks.mu.Unlock()
		// End the fetch's operation before releasing the waiters, so a
		// span of it ends inside the validation that waited (an Observer
		// must not block), and release them before logging: a log write
		// can block (a stuck stderr pipe) and no request may wait on it.
		if end != nil {
			out := Outcome{Err: err}
			if err == nil {
				out.Keys = ks.snap.Load().n
			}
			end(out)
		}
		call.err = err
		close(call.done)
		if err != nil {
			ks.log.Warn("auth: JWK Set refresh failed; keeping the keys held", "error", err)
		}
	}()
	return call
}

func (ks *keySource) fetch(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, ks.timeout)
	defer cancel()
	u, err := ks.locate(ctx)
	if err != nil {
		return err
	}
	body, err := getBounded(ctx, ks.client, u, "application/jwk-set+json, application/json")
	var keys []*verifyKey
	if err == nil {
		keys, err = parseJWKS(body, ks.algs)
	}
	if err != nil {
		if ks.forget != nil {
			ks.forget()
		}
		return fmt.Errorf("JWK Set: %w", err)
	}
	ks.install(keys)
	ks.fetchedAt.Store(ks.now().UnixNano())
	return nil
}

// install makes keys the key set. Keys already held keep their
// *verifyKey, so the cached tokens they verified stay cached; each key
// that left the set (or whose kid now holds other material) is marked
// removed after the new set is stored, and the cache drops the entries of
// that key alone on their next use. A verification that picked a key from
// the old set and caches its token after the mark is still caught: the
// mark is on the key the entry records. Installs run one at a time.
func (ks *keySource) install(keys []*verifyKey) {
	next, gone := carryOver(ks.snap.Load(), keys)
	ks.snap.Store(newSnapshot(next))
	for _, k := range gone {
		k.removed.Store(true)
	}
}

// getBounded GETs u and returns the body of a 200 response, reading at most
// maxRemoteBody bytes.
func getBounded(ctx context.Context, client *http.Client, u, accept string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", accept)
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		return nil, fmt.Errorf("GET %s: status %d", u, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxRemoteBody+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: reading body: %w", u, err)
	}
	if len(body) > maxRemoteBody {
		return nil, fmt.Errorf("GET %s: body exceeds %d bytes", u, maxRemoteBody)
	}
	return body, nil
}

// safeClient returns a copy of base (or of a fresh client) that refuses
// redirects leaving the original scheme and host and follows at most three.
func safeClient(base *http.Client) *http.Client {
	c := &http.Client{}
	if base != nil {
		*c = *base
	}
	prev := c.CheckRedirect
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= 3 {
			return errors.New("too many redirects")
		}
		if o := via[0].URL; req.URL.Scheme != o.Scheme || req.URL.Host != o.Host {
			return fmt.Errorf("redirect to another host (%s) refused", req.URL.Host)
		}
		if prev != nil {
			return prev(req, via)
		}
		return nil
	}
	return c
}

// quoteShort quotes an untrusted short value for an error message,
// truncated and with non-printable characters escaped.
func quoteShort(s string) string {
	const max = 40
	if len(s) > max {
		s = s[:max] + "…"
	}
	return fmt.Sprintf("%+q", s)
}
