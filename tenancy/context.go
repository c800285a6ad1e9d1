package tenancy

import "context"

type tenantKey struct{}

// NewContext returns a copy of ctx carrying the tenant ID. Only code that
// derived the tenant from verified claims should call it.
func NewContext(ctx context.Context, tenant string) context.Context {
	return context.WithValue(ctx, tenantKey{}, tenant)
}

// FromContext returns the tenant stored by NewContext. It reports false when
// there is none or it is empty.
func FromContext(ctx context.Context) (string, bool) {
	t, ok := ctx.Value(tenantKey{}).(string)
	return t, ok && t != ""
}
