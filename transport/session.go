package transport

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"io"
	"maps"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcpguard/mcpguard/audit"
	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/internal/era"
	"github.com/mcpguard/mcpguard/internal/httpx"
	"github.com/mcpguard/mcpguard/internal/jsonrpc"
	"github.com/mcpguard/mcpguard/tenancy"
)

// sessionTagLen is the length in bytes of the HMAC tag appended to session
// IDs (128 bits, base64url: 22 characters).
const sessionTagLen = 16

// SessionBinding binds every Mcp-Session-Id that mcp-go issues to the
// principal of the request that created it — its issuer, subject and kind,
// its actor (issuer, subject and kind of the service acting for the user in
// dual-token mode) and its tenant — so that a session ID only ever serves
// that principal: a job principal, or another service acting for the same
// user, cannot reuse the user's session.
//
// The binding is stateless: the ID the client sees is mcp-go's ID, a dot,
// and an HMAC-SHA256 tag over that ID and the principal. On each request the tag is
// checked against the current principal and stripped before mcp-go sees the
// ID; a missing or wrong tag answers 404, exactly as for a session that does
// not exist (MCP Streamable HTTP: the client then starts a new session).
// Replicas that share Key accept each other's sessions, and nothing grows
// with the number of sessions.
//
// A DELETE that passes the binding terminates the session for good: its ID
// is recorded in a TerminatedSessions store (kept for the idle TTL) before
// mcp-go sees the DELETE, and every later request carrying it answers 404,
// whoever sends it. mcp-go's own session managers do not guarantee this
// (the default stateless one and StatelessGeneratingSessionIdManager forget
// nothing), so the edge does it.
//
// Requests without a session ID — initialize, and 2026-07-28 stateless
// requests — pass through unchanged. SessionBinding must run after
// authentication and tenancy; a request with no principal is bound to the
// anonymous identity.
//
// Live sessions are capped per owner (principal, actor and tenant) and in
// total: an initialize past a cap is answered 429 with Retry-After, before
// mcp-go allocates a session; a slot is freed by DELETE or when the session
// idles out.
type SessionBinding struct {
	key        []byte
	terminated TerminatedSessions
	counts     SessionCounts
	limits     SessionLimits
	ttl        time.Duration
	now        func() time.Time
	macs       sync.Pool // of *keyedMAC
}

// NewSessionBinding returns a binding keyed by key, which must be at least 32
// bytes; a nil key draws a random one (sessions then do not survive a
// restart, and replicas do not share them). It uses the zero SessionConfig:
// in-memory stores, the default caps and DefaultSessionIdleTTL.
func NewSessionBinding(key []byte) (*SessionBinding, error) {
	return newSessionBinding(key, SessionConfig{}, DefaultSessionIdleTTL)
}

func newSessionBinding(key []byte, cfg SessionConfig, ttl time.Duration) (*SessionBinding, error) {
	if key == nil {
		key = make([]byte, 32)
		_, _ = rand.Read(key)
	}
	if len(key) < 32 {
		return nil, fmt.Errorf("%w: session binding key must be at least 32 bytes", ErrConfig)
	}
	b := &SessionBinding{
		key:        append([]byte(nil), key...),
		terminated: cfg.Terminated,
		counts:     cfg.Counts,
		limits:     SessionLimits{PerOwner: cfg.MaxPerPrincipal, Total: cfg.MaxTotal},
		ttl:        ttl,
		now:        cfg.Now,
	}
	if b.terminated == nil {
		b.terminated = &MemoryTerminatedSessions{}
	}
	if b.counts == nil {
		b.counts = &MemorySessionCounts{}
	}
	if b.limits.PerOwner == 0 {
		b.limits.PerOwner = DefaultMaxSessionsPerPrincipal
	}
	if b.limits.Total == 0 {
		b.limits.Total = DefaultMaxSessions
	}
	if b.ttl <= 0 {
		b.ttl = DefaultSessionIdleTTL
	}
	if b.now == nil {
		b.now = time.Now
	}
	return b, nil
}

// ownerKey is the session-count key of the caller.
func (b *SessionBinding) ownerKey(p *auth.Principal, tenant string) string {
	m := hmac.New(sha256.New, b.key)
	writeField(m, "owner")
	writePrincipal(m, p)
	if p != nil {
		writePrincipal(m, p.Actor)
	}
	writeField(m, tenant)
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:sessionTagLen])
}

// isInitialize reports whether r is a JSON-RPC initialize request, which
// makes mcp-go allocate a session whatever session header it carries.
func isInitialize(r *http.Request) bool {
	if r.Method != http.MethodPost {
		return false
	}
	body, ok := bodyFromContext(r.Context())
	return ok && isInitializeBody(r.Context(), body)
}

// notInitialize reports whether r is known not to be an initialize
// request: not a POST, or a POST whose body Edge read and which is some
// other message.
func notInitialize(r *http.Request) bool {
	if r.Method != http.MethodPost {
		return true
	}
	body, ok := bodyFromContext(r.Context())
	return ok && !isInitializeBody(r.Context(), body)
}

// refuseSessionless answers a sessionless 2025-11-25 request (sessionless)
// and reports whether it did. mcp-go serves such a request in the session
// "" when its session ID manager accepts that one (server.WithStateLess, or
// a custom manager): every caller's sessionless requests and GET streams
// would share it, so one principal's notifications and subscriptions
// reached another's stream (found in review). In mcp-go's default mode
// such a POST gets this same answer from mcp-go, and a GET, which the
// 2025-11-25 transport opens only after initialize, is refused as the
// specification lets a server that requires sessions. direct (and
// Guard.Wrap's filter) call it just before mcp-go, after the DNS
// rebinding check.
func refuseSessionless(w http.ResponseWriter, r *http.Request) bool {
	if r.Header.Get(server.HeaderKeySessionID) != "" || !sessionless(r) {
		return false
	}
	audit.Annotate(r.Context(), audit.KindRequest, "missing_session")
	if r.Method == http.MethodGet {
		http.Error(w, "Bad Request: Mcp-Session-Id header is required", http.StatusBadRequest)
	} else {
		http.Error(w, "Invalid session ID", http.StatusNotFound)
	}
	return true
}

// sessionless reports a request without a session ID that mcp-go would
// serve in the 2025-11-25 era in the session "" (see Middleware): a GET, or
// a POST other than initialize. A 2026-07-28 request is served without a
// session by design, and a POST whose body Edge did not read is left to
// mcp-go.
func sessionless(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet:
		return !mcp.IsModernProtocol(r.Header.Get(mcp.HeaderProtocolVersion))
	case http.MethodPost:
		body, ok := bodyFromContext(r.Context())
		if !ok || isInitializeBody(r.Context(), body) || era.Modern(r.Header.Get(mcp.HeaderProtocolVersion), body) {
			return false
		}
		msg, err := jsonrpc.PeekMemo(r.Context(), body)
		if err != nil {
			msg, _ = decodeRouting(body)
		}
		// Step-up refuses a sessionless cancel with its own answer.
		return msg.Method != methodCancelled
	}
	return false
}

// isInitializeBody reports whether mcp-go reads body as an initialize
// request. A body Peek refuses is read as mcp-go reads it (decodeRouting):
// one Peek finds ambiguous is refused later, by step-up, yet must be
// counted here all the same. Without a backslash, an initialize names its
// method in plain bytes; with one, the method may be written with escapes
// ("initiali\u007ae"), which such a test missed (found in review: an
// initialize carrying the caller's session ID went uncounted and untagged).
func isInitializeBody(ctx context.Context, body []byte) bool {
	if !bytes.Contains(body, []byte("initialize")) && bytes.IndexByte(body, '\\') < 0 {
		return false
	}
	msg, err := jsonrpc.PeekMemo(ctx, body)
	if err != nil {
		msg, _ = decodeRouting(body)
	}
	return msg.Method == string(mcp.MethodInitialize)
}

// storeUnavailable answers a session store failure: fail closed.
func storeUnavailable(w http.ResponseWriter, r *http.Request) {
	audit.Annotate(r.Context(), audit.KindRequest, "session_store_unavailable")
	w.Header().Set("Retry-After", "1")
	http.Error(w, "session store unavailable", http.StatusServiceUnavailable)
}

// writeField writes one length-prefixed field: no two field lists share an
// encoding. appendField is the same encoding without fmt.
func writeField(w io.Writer, s string) { fmt.Fprintf(w, "%d:%s", len(s), s) }

func writePrincipal(w io.Writer, p *auth.Principal) {
	if p == nil {
		writeField(w, "-")
		return
	}
	writeField(w, "p")
	writeField(w, p.Issuer)
	writeField(w, p.Subject)
	writeField(w, strconv.Itoa(int(p.Kind)))
}

// appendField appends one length-prefixed field ("<len>:<s>"): no two
// field lists share an encoding.
func appendField(b []byte, s string) []byte {
	b = strconv.AppendInt(b, int64(len(s)), 10)
	b = append(b, ':')
	return append(b, s...)
}

func appendPrincipal(b []byte, p *auth.Principal) []byte {
	if p == nil {
		return appendField(b, "-")
	}
	b = appendField(b, "p")
	b = appendField(b, p.Issuer)
	b = appendField(b, p.Subject)
	return appendField(b, strconv.Itoa(int(p.Kind)))
}

// keyedMAC is a pooled HMAC-SHA256 under the binding key with its scratch
// buffers: hmac.New and its two inner hashes cost more than a tag, and a
// buffer handed to a hash.Hash escapes.
type keyedMAC struct {
	h   hash.Hash
	msg []byte
	out [sha256.Size]byte
}

func (b *SessionBinding) mac() *keyedMAC {
	if m, ok := b.macs.Get().(*keyedMAC); ok {
		return m
	}
	return &keyedMAC{h: hmac.New(sha256.New, b.key), msg: make([]byte, 0, 256)}
}

// sum returns the first sessionTagLen bytes of the HMAC of m.msg,
// base64url-encoded, and puts m back in the pool.
func (b *SessionBinding) sum(m *keyedMAC) string {
	var enc [sessionTagEncLen]byte
	return string(b.sumInto(m, &enc))
}

// sessionTagEncLen is the length of a base64url (unpadded) session tag.
const sessionTagEncLen = (sessionTagLen*8 + 5) / 6

// sumInto is sum writing the encoded tag into enc (the caller's stack)
// and returning it, so a tag that is only compared costs no allocation.
func (b *SessionBinding) sumInto(m *keyedMAC, enc *[sessionTagEncLen]byte) []byte {
	m.h.Write(m.msg)
	m.h.Sum(m.out[:0])
	base64.RawURLEncoding.Encode(enc[:], m.out[:sessionTagLen])
	m.h.Reset()
	if cap(m.msg) <= 4096 { // a huge principal does not pin its buffer
		m.msg = m.msg[:0]
		b.macs.Put(m)
	}
	return enc[:]
}

func (b *SessionBinding) tag(id string, p *auth.Principal, tenant string) string {
	var enc [sessionTagEncLen]byte
	return string(b.tagInto(id, p, tenant, &enc))
}

// tagInto is tag written into enc.
func (b *SessionBinding) tagInto(id string, p *auth.Principal, tenant string, enc *[sessionTagEncLen]byte) []byte {
	m := b.mac()
	m.msg = appendField(m.msg[:0], id)
	m.msg = appendPrincipal(m.msg, p)
	if p != nil {
		m.msg = appendPrincipal(m.msg, p.Actor)
	}
	m.msg = appendField(m.msg, tenant)
	return b.sumInto(m, enc)
}

// terminatedKey is the store key of mcp-go's session ID id: a digest under
// the binding key, so a shared store never holds a usable session ID.
func (b *SessionBinding) terminatedKey(id string) string {
	m := b.mac()
	m.msg = appendField(m.msg[:0], "terminated")
	m.msg = appendField(m.msg, id)
	return b.sum(m)
}

// open returns mcp-go's session ID from a bound one, if the tag matches p.
func (b *SessionBinding) open(bound string, p *auth.Principal, tenant string) (string, bool) {
	i := strings.LastIndexByte(bound, '.')
	if i <= 0 {
		return "", false
	}
	id, tag := bound[:i], bound[i+1:]
	var enc [sessionTagEncLen]byte
	want := b.tagInto(id, p, tenant, &enc)
	return id, hmac.Equal([]byte(tag), want)
}

// withHeader returns a copy of r whose header key (canonical) holds only
// value. r and its Header are not modified: the copy has its own header map
// sharing the other values' slices, which nothing downstream writes
// through (a deep r.Clone would copy every header value, the URL and the
// trailers to change one entry). The copy and the new value's slice are
// one allocation.
func withHeader(r *http.Request, key, value string) *http.Request {
	c := &headerCopy{req: *r, value: [1]string{value}}
	h := make(http.Header, len(r.Header))
	maps.Copy(h, r.Header)
	h[key] = c.value[:]
	c.req.Header = h
	return &c.req
}

// headerCopy is a shallow request copy (what r.WithContext makes) together
// with the backing array of the one header value withHeader replaces.
type headerCopy struct {
	req   http.Request
	value [1]string
}

// Audit reasons of the session_rejected events (audit.KindSessionRejected,
// decision deny) of requests the session binding refuses.
const (
	// ReasonSessionUnknown: the Mcp-Session-Id is not one of this
	// principal's (another principal's or tenant's, forged, or malformed);
	// the client gets 404, as for an unknown session.
	ReasonSessionUnknown = "session_unknown"
	// ReasonSessionTerminated: the session was ended (DELETE) and its ID
	// never serves again (404).
	ReasonSessionTerminated = "session_terminated"
	// ReasonMultipleSessionIDs: the request carries more than one
	// Mcp-Session-Id (400).
	ReasonMultipleSessionIDs = "multiple_session_ids"
)

// Middleware returns the HTTP middleware that checks, strips and adds tags.
// Each refusal is annotated for the audit edge event as
// audit.KindSessionRejected with one of the Reason… codes above.
func (b *SessionBinding) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		p, _ := auth.FromContext(ctx)
		tenant, _ := tenancy.FromContext(ctx)
		ids := r.Header.Values(server.HeaderKeySessionID)
		if len(ids) > 1 {
			audit.Annotate(ctx, audit.KindSessionRejected, ReasonMultipleSessionIDs)
			http.Error(w, "bad request: more than one session ID", http.StatusBadRequest)
			return
		}
		if len(ids) == 1 {
			inner, ok := b.open(ids[0], p, tenant)
			if !ok {
				// Another principal's, a forged or a malformed ID: the
				// client is told what an unknown one gets, and so is the
				// audit trail (the tag cannot tell them apart).
				audit.Annotate(ctx, audit.KindSessionRejected, ReasonSessionUnknown)
				http.Error(w, "session not found", http.StatusNotFound)
				return
			}
			key := b.terminatedKey(inner)
			now := b.now()
			dead, err := b.terminated.Terminated(ctx, key, now)
			if err != nil {
				storeUnavailable(w, r)
				return
			}
			if dead {
				audit.Annotate(ctx, audit.KindSessionRejected, ReasonSessionTerminated)
				http.Error(w, "session not found", http.StatusNotFound)
				return
			}
			if r.Method == http.MethodDelete {
				// Recorded before mcp-go sees the DELETE: once the owner asked
				// for the end, the ID never serves again, whatever mcp-go's
				// session manager does with it.
				if err := b.terminated.Terminate(ctx, key, now.Add(b.ttl)); err != nil {
					storeUnavailable(w, r)
					return
				}
				if err := b.counts.Release(ctx, key); err != nil {
					storeUnavailable(w, r)
					return
				}
			} else if err := b.counts.Touch(ctx, key, now.Add(b.ttl)); err != nil {
				storeUnavailable(w, r)
				return
			}
			r = withHeader(r, server.HeaderKeySessionID, inner)
		}
		if notInitialize(r) {
			// mcp-go sets Mcp-Session-Id only in an initialize response, so
			// a request known to be something else is not wrapped. Were a
			// later mcp-go to echo the ID elsewhere, the untagged ID would
			// still open nothing: open refuses an ID without this
			// principal's tag.
			next.ServeHTTP(w, r)
			return
		}
		sw := &sessionWriter{HeaderHook: httpx.HeaderHook{ResponseWriter: w}, b: b, p: p, tenant: tenant}
		sw.Before = sw
		if !isInitialize(r) {
			// Without Edge's body in the context, any response may be an
			// initialize response: tag whatever ID it carries.
			next.ServeHTTP(&sw.HeaderHook, r)
			return
		}
		// initialize: take a live-session slot before mcp-go allocates the
		// session, commit it under the issued ID, or give it back.
		reservation, retry, err := b.counts.Reserve(ctx, b.ownerKey(p, tenant), b.limits, b.now())
		if errors.Is(err, ErrSessionLimit) {
			audit.Annotate(ctx, audit.KindRateLimited, "session_limit")
			w.Header().Set("Retry-After", strconv.Itoa(max(1, int((retry+time.Second-1)/time.Second))))
			http.Error(w, "too many live sessions", http.StatusTooManyRequests)
			return
		}
		if err != nil {
			storeUnavailable(w, r)
			return
		}
		committed := false
		defer func() {
			if !committed {
				_ = b.counts.Release(ctx, reservation)
			}
		}()
		next.ServeHTTP(&sw.HeaderHook, r)
		if sw.issued != "" {
			if err := b.counts.Commit(ctx, reservation, b.terminatedKey(sw.issued), b.now().Add(b.ttl)); err == nil {
				committed = true
			}
		}
	})
}

// sessionWriter tags the session ID mcp-go sets in the response header with
// the principal's binding. It is its own hook: one allocation per request.
type sessionWriter struct {
	httpx.HeaderHook
	b      *SessionBinding
	p      *auth.Principal
	tenant string
	issued string // mcp-go's session ID in the response, if any
}

func (w *sessionWriter) BeforeHeader(h http.Header, _ int) {
	if id := h.Get(server.HeaderKeySessionID); id != "" {
		w.issued = id
		h.Set(server.HeaderKeySessionID, id+"."+w.b.tag(id, w.p, w.tenant))
	}
}
