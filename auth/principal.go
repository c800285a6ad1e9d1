package auth

import (
	"context"
	"log/slog"
	"slices"
	"time"
)

// Kind says how a principal was authenticated.
type Kind int

const (
	// KindUser is a principal from an access token presented directly.
	KindUser Kind = iota
	// KindJob is a principal from a signed job token acting for a user
	// whose own token may have expired (see package auth/jobtoken).
	KindJob
	// KindDev is the fixed principal injected in development mode; it was
	// not authenticated at all.
	KindDev
	// KindStdio is the identity of a local stdio server, taken once at start.
	KindStdio
)

// String returns the kind's lower-case name.
func (k Kind) String() string {
	switch k {
	case KindUser:
		return "user"
	case KindJob:
		return "job"
	case KindDev:
		return "dev"
	case KindStdio:
		return "stdio"
	}
	return "unknown"
}

// Principal is the verified identity behind a request. Validators build it
// from verified claims only.
//
// A Principal must not be modified once it has been placed in a context; it
// is then safe for concurrent reads. It never holds the raw credential.
type Principal struct {
	// Kind says how the principal was authenticated.
	Kind Kind
	// Subject is the "sub" claim.
	Subject string
	// Issuer is the "iss" claim.
	Issuer string
	// ClientID is the OAuth client the token was issued to: "azp",
	// "client_id", "appid" or "cid", whichever the token carries.
	ClientID string
	// Audience is the "aud" claim as a list.
	Audience []string
	// Scopes are the effective scopes, as produced by the ScopeMapper.
	Scopes []string
	// Expiry is the "exp" claim; zero when the token has none (job principals
	// report their job token's expiry).
	Expiry time.Time
	// IssuedAt is the "iat" claim, zero when absent.
	IssuedAt time.Time
	// TokenID is the "jti" claim, empty when absent.
	TokenID string
	// JobID is set for KindJob principals.
	JobID string
	// Actor is the party acting for Subject: the calling service in
	// dual-token mode (as RFC 8693's "act" claim describes), nil otherwise.
	Actor *Principal
	// Claims are all verified claims of the token.
	Claims Claims
}

// HasScope reports whether the principal holds scope s.
func (p *Principal) HasScope(s string) bool {
	return p != nil && slices.Contains(p.Scopes, s)
}

// LogValue renders the identifying fields for log/slog. It never includes
// claims or credentials.
func (p *Principal) LogValue() slog.Value {
	if p == nil {
		return slog.StringValue("<nil>")
	}
	attrs := []slog.Attr{
		slog.String("kind", p.Kind.String()),
		slog.String("sub", p.Subject),
		slog.String("iss", p.Issuer),
	}
	if p.ClientID != "" {
		attrs = append(attrs, slog.String("client_id", p.ClientID))
	}
	if p.JobID != "" {
		attrs = append(attrs, slog.String("job_id", p.JobID))
	}
	if p.Actor != nil {
		attrs = append(attrs, slog.Any("actor", p.Actor))
	}
	return slog.GroupValue(attrs...)
}

type principalKey struct{}

// NewContext returns a copy of ctx carrying p.
func NewContext(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the principal stored in ctx by NewContext.
func FromContext(ctx context.Context) (*Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(*Principal)
	return p, ok && p != nil
}
