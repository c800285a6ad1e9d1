package transport

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcpguard/mcpguard/audit"
	"github.com/mcpguard/mcpguard/auth"
	"github.com/mcpguard/mcpguard/internal/b64url"
	"github.com/mcpguard/mcpguard/internal/canonjson"
	"github.com/mcpguard/mcpguard/tenancy"
)

// Defaults of RequestStateConfig.
const (
	// DefaultRequestStateTTL is how long a sealed requestState is accepted.
	DefaultRequestStateTTL = 10 * time.Minute
	// DefaultMaxRequestStateBytes caps a sealed requestState as it arrives;
	// a longer one is refused before it is decoded.
	DefaultMaxRequestStateBytes = 16 << 10
)

// requestStatePrefix starts every sealed requestState (version 1).
const requestStatePrefix = "mg1."

// ErrRequestState is wrapped by every refusal of a requestState. What the
// client sees is only its fixed text; why it was refused goes to the audit
// event.
var ErrRequestState = errors.New("mcpguard: requestState refused")

// RequestStateConfig configures the sealing of multi round-trip request
// state (SEP-2322). The zero value seals with a key derived from
// Config.SessionKey and accepts state for DefaultRequestStateTTL.
type RequestStateConfig struct {
	// Key is the AES-256-GCM key (exactly 32 bytes). Replicas behind one
	// load balancer must share it, as they share SessionKey. Nil derives it
	// from SessionKey (HKDF-SHA256), so replicas sharing SessionKey share
	// this key too.
	Key []byte
	// TTL is how long sealed state is accepted after it was issued
	// (default DefaultRequestStateTTL).
	TTL time.Duration
	// MaxBytes caps a sealed requestState (default
	// DefaultMaxRequestStateBytes). State a handler hands out that would
	// seal to more is refused with an error instead of being sent.
	MaxBytes int
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// requestSealer seals and opens requestState. It is safe for concurrent
// use.
type requestSealer struct {
	aead  cipher.AEAD
	aad   []byte // requestStateAAD and the resource
	ttl   time.Duration
	max   int
	now   func() time.Time
	audit *audit.Recorder
}

// newRequestSealer binds what it seals to resource too, so that Guards of
// two resources that share a key (Config.SessionKey, or RequestState.Key)
// do not open each other's state.
func newRequestSealer(cfg RequestStateConfig, sessionKey []byte, resource string, rec *audit.Recorder) (*requestSealer, error) {
	key := cfg.Key
	switch {
	case key == nil:
		var err error
		if key, err = hkdf.Key(sha256.New, sessionKey, nil, "mcpguard requestState v1", 32); err != nil {
			return nil, err
		}
	case len(key) != 32:
		return nil, fmt.Errorf("%w: Config.RequestState.Key must be 32 bytes (AES-256), got %d", ErrConfig, len(key))
	}
	if cfg.TTL < 0 {
		return nil, fmt.Errorf("%w: Config.RequestState.TTL must not be negative", ErrConfig)
	}
	if cfg.TTL == 0 {
		cfg.TTL = DefaultRequestStateTTL
	}
	if cfg.MaxBytes < 0 {
		return nil, fmt.Errorf("%w: Config.RequestState.MaxBytes must not be negative", ErrConfig)
	}
	if cfg.MaxBytes == 0 {
		cfg.MaxBytes = DefaultMaxRequestStateBytes
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	aad := append(append(slices.Clip(requestStateAAD), 0), resource...)
	return &requestSealer{aead: aead, aad: aad, ttl: cfg.TTL, max: cfg.MaxBytes, now: cfg.Now, audit: rec}, nil
}

// sealedState is what a sealed requestState holds. It is only ever read
// after the AEAD has authenticated it.
type sealedState struct {
	Issuer      string `json:"i"`
	Subject     string `json:"s"`
	Kind        string `json:"k"`
	ActorIssuer string `json:"ai,omitempty"`
	Actor       string `json:"a,omitempty"`
	Tenant      string `json:"t,omitempty"`
	Expiry      int64  `json:"e"`
	Request     []byte `json:"r"` // requestDigest
	State       string `json:"v"` // the handler's own state
}

// owner fills the principal and tenant fields of st from ctx.
func owner(ctx context.Context) sealedState {
	var st sealedState
	if p, ok := auth.FromContext(ctx); ok && p != nil {
		st.Issuer, st.Subject, st.Kind = p.Issuer, p.Subject, p.Kind.String()
		if p.Actor != nil {
			st.ActorIssuer, st.Actor = p.Actor.Issuer, p.Actor.Subject
		}
	}
	st.Tenant, _ = tenancy.FromContext(ctx)
	return st
}

// requestDigest identifies the request a state belongs to: the JSON-RPC
// method, the tool or prompt name (or resource URI) and the arguments as
// canonical JSON (object keys sorted). inputResponses, _meta and the task
// parameters are left out: a retry changes them.
//
// raw, when not empty, is the arguments as the client sent them (a tool
// call's RawArguments), which typed handlers decode (BindArguments,
// NewTypedToolHandler): they are digested in canonjson's form, which keeps
// each number's text and refuses members whose names differ only in case.
// Before, the digest was of the arguments as mcp-go decoded them into a
// map, so two argument objects a handler reads differently — members
// reordered around a case variant, integers one float64 apart — shared a
// digest, and state sealed for one was accepted for the other (found in
// review).
func requestDigest(method, name string, args any, raw json.RawMessage) ([]byte, error) {
	var b []byte
	var err error
	if len(raw) > 0 {
		b, err = canonjson.Canonical(raw)
	} else {
		b, err = json.Marshal(args)
	}
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	for _, f := range []string{method, name} {
		fmt.Fprintf(h, "%d:%s", len(f), f)
	}
	h.Write(b)
	return h.Sum(nil), nil
}

// requestStateAAD binds the ciphertext to its purpose; the resource
// follows it, after a zero byte.
var requestStateAAD = []byte("mcpguard requestState v1")

// seal wraps state for the request in ctx.
func (s *requestSealer) seal(ctx context.Context, digest []byte, state string) (string, error) {
	st := owner(ctx)
	st.Expiry = s.now().Add(s.ttl).Unix()
	st.Request = digest
	st.State = state
	plain, err := json.Marshal(st)
	if err != nil {
		return "", err
	}
	ns := s.aead.NonceSize()
	if n := len(requestStatePrefix) + base64.RawURLEncoding.EncodedLen(ns+len(plain)+s.aead.Overhead()); n > s.max {
		return "", fmt.Errorf("%w: the handler's requestState seals to %d bytes, over the %d-byte cap", ErrRequestState, n, s.max)
	}
	buf := make([]byte, ns, ns+len(plain)+s.aead.Overhead())
	if _, err := rand.Read(buf); err != nil {
		return "", err
	}
	buf = s.aead.Seal(buf, buf[:ns], plain, s.aad)
	return requestStatePrefix + base64.RawURLEncoding.EncodeToString(buf), nil
}

// Reasons a requestState is refused, as audit records them.
const (
	stateMalformed    = "request_state_malformed"
	stateTooLarge     = "request_state_too_large"
	stateTampered     = "request_state_tampered"
	stateExpired      = "request_state_expired"
	stateForeign      = "request_state_foreign_principal"
	stateOtherRequest = "request_state_other_request"
)

// open checks sealed against the request in ctx and returns the handler's
// state, or the reason it is refused.
func (s *requestSealer) open(ctx context.Context, digest []byte, sealed string) (string, string) {
	if len(sealed) > s.max {
		return "", stateTooLarge
	}
	enc, ok := strings.CutPrefix(sealed, requestStatePrefix)
	if !ok {
		return "", stateMalformed
	}
	raw, err := b64url.DecodeString(enc)
	ns := s.aead.NonceSize()
	if err != nil || len(raw) < ns+s.aead.Overhead() {
		return "", stateMalformed
	}
	plain, err := s.aead.Open(nil, raw[:ns], raw[ns:], s.aad)
	if err != nil {
		return "", stateTampered
	}
	var st sealedState
	if err := json.Unmarshal(plain, &st); err != nil {
		return "", stateMalformed // sealed by us, so only a key shared with another format gets here
	}
	want := owner(ctx)
	switch {
	case st.Issuer != want.Issuer || st.Subject != want.Subject || st.Kind != want.Kind ||
		st.ActorIssuer != want.ActorIssuer || st.Actor != want.Actor || st.Tenant != want.Tenant:
		return "", stateForeign
	case subtle.ConstantTimeCompare(st.Request, digest) != 1:
		return "", stateOtherRequest
	case !s.now().Before(time.Unix(st.Expiry, 0)):
		return "", stateExpired
	}
	return st.State, ""
}

// refuse records the refusal and returns the error the client sees.
func (s *requestSealer) refuse(ctx context.Context, method, name, reason string) error {
	if s.audit != nil {
		s.audit.Denial(ctx, method, name, reason)
	}
	return ErrRequestState
}

// ToolMiddleware opens the requestState of a tools/call before the handler
// runs (refusing one that was tampered with, expired, issued to another
// principal or tenant, or for another request) and seals the requestState
// of the result the handler returns.
func (s *requestSealer) ToolMiddleware(next server.ToolHandlerFunc) server.ToolHandlerFunc {
	return func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		const method = "tools/call"
		name := req.Params.Name
		var digest []byte
		if req.Params.RequestState != "" {
			d, err := requestDigest(method, name, req.Params.Arguments, req.Params.RawArguments)
			if err != nil {
				return nil, s.refuse(ctx, method, name, stateMalformed)
			}
			digest = d
			state, reason := s.open(ctx, digest, req.Params.RequestState)
			if reason != "" {
				return nil, s.refuse(ctx, method, name, reason)
			}
			req.Params.RequestState = state
		}
		res, err := next(ctx, req)
		if err != nil || res == nil || res.RequestState == "" {
			return res, err
		}
		if digest == nil {
			if digest, err = requestDigest(method, name, req.Params.Arguments, req.Params.RawArguments); err != nil {
				return nil, err
			}
		}
		sealed, err := s.seal(ctx, digest, res.RequestState)
		if err != nil {
			return nil, err
		}
		out := *res // the handler's result may be shared
		out.RequestState = sealed
		return &out, nil
	}
}

// PromptMiddleware is ToolMiddleware for prompts/get.
func (s *requestSealer) PromptMiddleware(next server.PromptHandlerFunc) server.PromptHandlerFunc {
	return func(ctx context.Context, req mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
		const method = "prompts/get"
		name := req.Params.Name
		digest, err := requestDigest(method, name, req.Params.Arguments, nil)
		if err != nil {
			return nil, s.refuse(ctx, method, name, stateMalformed)
		}
		if req.Params.RequestState != "" {
			state, reason := s.open(ctx, digest, req.Params.RequestState)
			if reason != "" {
				return nil, s.refuse(ctx, method, name, reason)
			}
			req.Params.RequestState = state
		}
		res, err := next(ctx, req)
		if err != nil || res == nil || res.RequestState == "" {
			return res, err
		}
		sealed, err := s.seal(ctx, digest, res.RequestState)
		if err != nil {
			return nil, err
		}
		out := *res
		out.RequestState = sealed
		return &out, nil
	}
}

// ResourceMiddleware refuses a resources/read whose requestState does not
// open. mcp-go's resource handlers return contents, not a result, so they
// cannot hand out state and none is sealed for them: any requestState on a
// resources/read is refused unless it was sealed for that very URI.
func (s *requestSealer) ResourceMiddleware(next server.ResourceHandlerFunc) server.ResourceHandlerFunc {
	return func(ctx context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
		if req.Params.RequestState != "" {
			const method = "resources/read"
			digest, err := requestDigest(method, req.Params.URI, nil, nil)
			if err != nil {
				return nil, s.refuse(ctx, method, req.Params.URI, stateMalformed)
			}
			state, reason := s.open(ctx, digest, req.Params.RequestState)
			if reason != "" {
				return nil, s.refuse(ctx, method, req.Params.URI, reason)
			}
			req.Params.RequestState = state
		}
		return next(ctx, req)
	}
}

// option installs the sealing middleware for tools, prompts and resources.
func (s *requestSealer) options() []server.ServerOption {
	return []server.ServerOption{
		server.WithToolHandlerMiddleware(s.ToolMiddleware),
		server.WithPromptHandlerMiddleware(s.PromptMiddleware),
		server.WithResourceHandlerMiddleware(s.ResourceMiddleware),
	}
}
