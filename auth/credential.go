package auth

import (
	"context"
	"fmt"
	"log/slog"
)

const redacted = "[REDACTED]"

// Credential holds a raw bearer credential. Every way of printing it —
// String, GoString, Format (all verbs), LogValue, MarshalJSON, MarshalText —
// yields a redaction; only Reveal returns the secret, for the one place that
// must send it (a token exchange).
//
// The zero value is an empty credential. Credential is safe for concurrent use.
type Credential struct {
	raw string
	sum *[32]byte // SHA-256 of raw when Middleware computed it, else nil
}

// NewCredential wraps a raw token and computes its digest (see Digest)
// once, so the caches that key on it during the request never hash it again.
func NewCredential(raw string) Credential {
	sum := [32]byte(keyOf(raw))
	return Credential{raw: raw, sum: &sum}
}

// Reveal returns the raw token. Call it only to send the token to the party
// that issued it or may exchange it; never log or store the result.
func (c Credential) Reveal() string { return c.raw }

// Digest returns the SHA-256 of the token: the key under which caches
// (verified tokens, exchanged tokens) may remember it without holding it.
// NewCredential computes it once; every later call returns that value.
func (c Credential) Digest() [32]byte {
	if c.sum != nil {
		return *c.sum
	}
	return keyOf(c.raw)
}

// IsZero reports whether the credential is empty.
func (c Credential) IsZero() bool { return c.raw == "" }

// String returns a redaction.
func (c Credential) String() string { return redacted }

// GoString returns a redaction.
func (c Credential) GoString() string { return "auth.Credential{" + redacted + "}" }

// Format writes a redaction whatever the verb.
func (c Credential) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(redacted)) }

// LogValue returns a redaction for log/slog.
func (c Credential) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalJSON returns a redaction as a JSON string.
func (c Credential) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// MarshalText returns a redaction.
func (c Credential) MarshalText() ([]byte, error) { return []byte(redacted), nil }

type credentialKey struct{}

// NewCredentialContext returns a copy of ctx carrying the caller's credential,
// for packages such as obo that must exchange it. Middleware sets it next to
// the Principal.
func NewCredentialContext(ctx context.Context, c Credential) context.Context {
	return context.WithValue(ctx, credentialKey{}, c)
}

// CredentialFromContext returns the credential stored by NewCredentialContext.
// It reports false when there is none or it is empty.
func CredentialFromContext(ctx context.Context) (Credential, bool) {
	c, ok := credentialFrom(ctx)
	return c, ok && !c.IsZero()
}

// credentialFrom returns the credential in ctx, stored either by
// NewCredentialContext or by Middleware's request context.
func credentialFrom(ctx context.Context) (Credential, bool) {
	switch v := ctx.Value(credentialKey{}).(type) {
	case Credential:
		return v, true
	case *Credential:
		return *v, v != nil
	}
	return Credential{}, false
}

// requestContext is the context Middleware hands on: the caller's
// credential with its digest and, once validated, the principal, in one
// allocation instead of four (digest, boxed credential, two context
// nodes). p is set once, after validation and before the next handler
// sees the context; nothing writes it afterwards.
type requestContext struct {
	context.Context
	cred Credential
	sum  [32]byte
	p    *Principal
}

func newRequestContext(parent context.Context, raw string) *requestContext {
	c := &requestContext{Context: parent, sum: [32]byte(keyOf(raw))}
	c.cred = Credential{raw: raw, sum: &c.sum}
	return c
}

func (c *requestContext) Value(key any) any {
	switch key.(type) {
	case credentialKey:
		return &c.cred
	case principalKey:
		if c.p != nil {
			return c.p
		}
	}
	return c.Context.Value(key)
}

// String names the context without its contents.
func (c *requestContext) String() string {
	if s, ok := c.Context.(fmt.Stringer); ok {
		return s.String() + ".WithValue(auth.credential, auth.principal)"
	}
	return "context.WithValue(auth.credential, auth.principal)"
}
