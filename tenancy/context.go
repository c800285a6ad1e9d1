package tenancy

import (
	"context"
	"fmt"

	"github.com/mcpguard/mcpguard/internal/ctxval"
)

type tenantKey struct{}

// NewContext returns a copy of ctx carrying the tenant ID. Only code that
// derived the tenant from verified claims should call it (Handler does).
// NewContext does not validate the ID; Require and the partition helpers
// do, every time they read it.
func NewContext(ctx context.Context, tenant string) context.Context {
	return ctxval.WithString(ctx, tenantKey{}, tenant)
}

// FromContext returns the tenant stored by NewContext. It reports false when
// there is none or it is empty.
func FromContext(ctx context.Context) (string, bool) {
	t, ok := ctxval.String(ctx, tenantKey{})
	return t, ok && t != ""
}

// Require returns the tenant stored in ctx, checked by ValidateID. It is
// what data-access code should call: an error wrapping ErrNoTenant when ctx
// carries no tenant, or ErrInvalidTenant when the stored ID is not valid,
// so a missing tenant can never turn into an unpartitioned query.
func Require(ctx context.Context) (string, error) {
	t, ok := FromContext(ctx)
	if !ok {
		return "", fmt.Errorf("%w in the context", ErrNoTenant)
	}
	if err := ValidateID(t); err != nil {
		return "", err
	}
	return t, nil
}
