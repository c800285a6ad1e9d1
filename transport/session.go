package transport

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"

	"github.com/mark3labs/mcp-go/server"

	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/internal/httpx"
)

// sessionTagLen is the length in bytes of the HMAC tag appended to session
// IDs (128 bits, base64url: 22 characters).
const sessionTagLen = 16

// SessionBinding binds every Mcp-Session-Id that mcp-go issues to the
// principal (issuer and subject) of the request that created it, so that a
// session ID only ever serves that principal.
//
// It is stateless: the ID the client sees is mcp-go's ID, a dot, and an
// HMAC-SHA256 tag over that ID and the principal. On each request the tag is
// checked against the current principal and stripped before mcp-go sees the
// ID; a missing or wrong tag answers 404, exactly as for a session that does
// not exist (MCP Streamable HTTP: the client then starts a new session).
// Replicas that share Key accept each other's sessions, and nothing grows
// with the number of sessions.
//
// Requests without a session ID — initialize, and 2026-07-28 stateless
// requests — pass through unchanged. SessionBinding must run after
// authentication; a request with no principal is bound to the anonymous
// identity.
type SessionBinding struct {
	key []byte
}

// NewSessionBinding returns a binding keyed by key, which must be at least 32
// bytes; a nil key draws a random one (sessions then do not survive a
// restart, and replicas do not share them).
func NewSessionBinding(key []byte) (*SessionBinding, error) {
	if key == nil {
		key = make([]byte, 32)
		_, _ = rand.Read(key)
	}
	if len(key) < 32 {
		return nil, fmt.Errorf("%w: session binding key must be at least 32 bytes", ErrConfig)
	}
	return &SessionBinding{key: append([]byte(nil), key...)}, nil
}

func (b *SessionBinding) tag(id string, p *auth.Principal) string {
	m := hmac.New(sha256.New, b.key)
	var iss, sub string
	if p != nil {
		iss, sub = p.Issuer, p.Subject
	}
	// Length-prefixed fields: no two (id, iss, sub) triples share an input.
	fmt.Fprintf(m, "%d:%s%d:%s%d:%s", len(id), id, len(iss), iss, len(sub), sub)
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:sessionTagLen])
}

// open returns mcp-go's session ID from a bound one, if the tag matches p.
func (b *SessionBinding) open(bound string, p *auth.Principal) (string, bool) {
	i := strings.LastIndexByte(bound, '.')
	if i <= 0 {
		return "", false
	}
	id, tag := bound[:i], bound[i+1:]
	want := b.tag(id, p)
	return id, hmac.Equal([]byte(tag), []byte(want))
}

// Middleware returns the HTTP middleware that checks, strips and adds tags.
func (b *SessionBinding) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := auth.FromContext(r.Context())
		ids := r.Header.Values(server.HeaderKeySessionID)
		if len(ids) > 1 {
			http.Error(w, "bad request: more than one session ID", http.StatusBadRequest)
			return
		}
		if len(ids) == 1 {
			inner, ok := b.open(ids[0], p)
			if !ok {
				http.Error(w, "session not found", http.StatusNotFound)
				return
			}
			r = r.Clone(r.Context())
			r.Header.Set(server.HeaderKeySessionID, inner)
		}
		sw := &sessionWriter{HeaderHook: httpx.HeaderHook{ResponseWriter: w}, b: b, p: p}
		sw.Before = sw
		next.ServeHTTP(&sw.HeaderHook, r)
	})
}

// sessionWriter tags the session ID mcp-go sets in the response header with
// the principal's binding. It is its own hook: one allocation per request.
type sessionWriter struct {
	httpx.HeaderHook
	b *SessionBinding
	p *auth.Principal
}

func (w *sessionWriter) BeforeHeader(h http.Header, _ int) {
	if id := h.Get(server.HeaderKeySessionID); id != "" {
		h.Set(server.HeaderKeySessionID, id+"."+w.b.tag(id, w.p))
	}
}
