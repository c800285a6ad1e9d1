package tenancy

import (
	"context"
	"fmt"
	"strings"
)

const (
	keyPrefix    = "tenant:"
	objectPrefix = "tenants/"
)

// Key returns the KV-store key for parts in the partition of the tenant in
// ctx: "tenant:<id>:<part>:<part>…". See KeyFor for the encoding. It fails
// with ErrNoTenant when ctx carries no tenant, so no key can be built
// outside a partition.
func Key(ctx context.Context, parts ...string) (string, error) {
	tenant, err := Require(ctx)
	if err != nil {
		return "", err
	}
	return buildKey(tenant, parts), nil
}

// KeyFor returns the KV-store key for parts in tenant's partition, for code
// that holds a tenant ID rather than a request context (background jobs,
// migrations). tenant must pass ValidateID.
//
// The key is "tenant:" + tenant, then ":" + part for each part, where every
// '%' in a part is written "%25" and every ':' is written "%3A". Tenant IDs
// contain neither character, so splitting a key at ':' recovers the tenant
// and each escaped part, and unescaping is unambiguous: two different
// (tenant, parts) inputs never produce the same key, whatever bytes the
// parts hold (including empty parts). ParseKey inverts it. Parts may be any
// byte strings; Redis and most KV stores accept binary-safe keys.
//
// A part made only of bytes other than '%' and ':' is copied unchanged, so
// keys stay readable: KeyFor("acme", "notes", "42") is "tenant:acme:notes:42".
func KeyFor(tenant string, parts ...string) (string, error) {
	if err := ValidateID(tenant); err != nil {
		return "", err
	}
	return buildKey(tenant, parts), nil
}

func buildKey(tenant string, parts []string) string {
	n := len(keyPrefix) + len(tenant)
	for _, p := range parts {
		n += 1 + len(p)
		for i := 0; i < len(p); i++ {
			if p[i] == ':' || p[i] == '%' {
				n += 2
			}
		}
	}
	var b strings.Builder
	b.Grow(n)
	b.WriteString(keyPrefix)
	b.WriteString(tenant)
	for _, p := range parts {
		b.WriteByte(':')
		start := 0
		for i := 0; i < len(p); i++ {
			var esc string
			switch p[i] {
			case ':':
				esc = "%3A"
			case '%':
				esc = "%25"
			default:
				continue
			}
			b.WriteString(p[start:i])
			b.WriteString(esc)
			start = i + 1
		}
		b.WriteString(p[start:])
	}
	return b.String()
}

// ParseKey splits a key built by KeyFor into its tenant and parts. It
// accepts only the exact form KeyFor produces (escapes are "%25" and "%3A",
// upper case, and nothing else follows a '%'), so
// KeyFor(ParseKey(k)) == k for every k it accepts. Anything else is an error
// wrapping ErrInvalidKey. A key with no parts gives nil parts.
func ParseKey(key string) (tenant string, parts []string, err error) {
	rest, ok := strings.CutPrefix(key, keyPrefix)
	if !ok {
		return "", nil, fmt.Errorf("%w: missing %q prefix", ErrInvalidKey, keyPrefix)
	}
	tenant, rest, more := strings.Cut(rest, ":")
	if err := ValidateID(tenant); err != nil {
		return "", nil, fmt.Errorf("%w: %w", ErrInvalidKey, err)
	}
	if !more {
		return tenant, nil, nil
	}
	parts = make([]string, 0, strings.Count(rest, ":")+1)
	for p := range strings.SplitSeq(rest, ":") {
		u, err := unescapePart(p)
		if err != nil {
			return "", nil, err
		}
		parts = append(parts, u)
	}
	return tenant, parts, nil
}

func unescapePart(p string) (string, error) {
	if strings.IndexByte(p, '%') < 0 {
		return p, nil
	}
	var b strings.Builder
	b.Grow(len(p))
	for i := 0; i < len(p); i++ {
		if p[i] != '%' {
			b.WriteByte(p[i])
			continue
		}
		switch {
		case strings.HasPrefix(p[i:], "%25"):
			b.WriteByte('%')
		case strings.HasPrefix(p[i:], "%3A"):
			b.WriteByte(':')
		default:
			return "", fmt.Errorf("%w: bad escape at byte %d of a part", ErrInvalidKey, i)
		}
		i += 2
	}
	return b.String(), nil
}

// Prefix returns the object-store prefix of the tenant in ctx,
// "tenants/<id>/", for S3, GCS or Azure Blob keys and listings. It fails
// with ErrNoTenant when ctx carries no tenant.
//
// Object names appended to the prefix are the caller's to check: the prefix
// ends with '/', and ValidateID guarantees the ID holds no '/' and is not
// "." or "..", so no tenant's prefix is a prefix of another's.
func Prefix(ctx context.Context) (string, error) {
	tenant, err := Require(ctx)
	if err != nil {
		return "", err
	}
	return objectPrefix + tenant + "/", nil
}

// PrefixFor returns tenant's object-store prefix, "tenants/<id>/". tenant
// must pass ValidateID.
func PrefixFor(tenant string) (string, error) {
	if err := ValidateID(tenant); err != nil {
		return "", err
	}
	return objectPrefix + tenant + "/", nil
}

// Check is the row-level guard: it returns nil when recordTenant, the
// tenant stored with a record, is the tenant in ctx, and an error wrapping
// ErrTenantMismatch otherwise (ErrNoTenant when ctx carries none). Call it
// on every record read back from a shared store, even when the query
// already filtered by tenant, so a missing filter fails closed. The error
// never names either tenant.
func Check(ctx context.Context, recordTenant string) error {
	tenant, err := Require(ctx)
	if err != nil {
		return err
	}
	if recordTenant != tenant {
		return ErrTenantMismatch
	}
	return nil
}
