package tenancy

import (
	"errors"
	"net/http"
)

// Sentinel errors, one per class. Everything this package returns wraps one
// of them, so callers match with errors.Is.
var (
	// ErrNoPrincipal: the request reached tenant resolution without an
	// authenticated auth.Principal, which means the auth middleware is
	// missing or was bypassed. It maps to 401 (fail closed).
	ErrNoPrincipal = errors.New("tenancy: no authenticated principal")
	// ErrNoTenant: no tenant could be determined (the claim is absent, the
	// TenantFunc failed, or a context carries no tenant).
	ErrNoTenant = errors.New("tenancy: no tenant")
	// ErrInvalidTenant: a tenant ID breaks the rules of ValidateID or the
	// claim holding it is not a JSON string. Invalid IDs are rejected, never
	// repaired.
	ErrInvalidTenant = errors.New("tenancy: invalid tenant ID")
	// ErrTenantNotAllowed: the tenant is valid but not in Config.Allowed.
	ErrTenantNotAllowed = errors.New("tenancy: tenant not allowed")
	// ErrNarrowingRefused: a request asked for a tenant through
	// Narrowing.Header but narrowing is off, the caller is not a trusted
	// service principal, or the verified claims do not grant that tenant.
	ErrNarrowingRefused = errors.New("tenancy: tenant narrowing refused")
	// ErrTenantMismatch: a stored record belongs to another tenant than the
	// caller's (see Check).
	ErrTenantMismatch = errors.New("tenancy: record belongs to another tenant")
	// ErrInvalidKey: ParseKey was given something KeyFor cannot have built.
	ErrInvalidKey = errors.New("tenancy: malformed partition key")
	// ErrConfig: a configuration mistake detected by New.
	ErrConfig = errors.New("tenancy: invalid configuration")
)

// Reason codes carried by *Error. They are stable, machine-readable and safe
// to send to clients.
const (
	// ReasonNoPrincipal: no authenticated principal (401).
	ReasonNoPrincipal = "no_principal"
	// ReasonTenantRequired: the principal names no tenant (403).
	ReasonTenantRequired = "tenant_required"
	// ReasonInvalidTenant: the tenant ID fails ValidateID (403).
	ReasonInvalidTenant = "invalid_tenant"
	// ReasonTenantNotAllowed: the tenant is not in Config.Allowed (403).
	ReasonTenantNotAllowed = "tenant_not_allowed"
	// ReasonNarrowingRefused: a narrowing header was refused (403).
	ReasonNarrowingRefused = "narrowing_refused"
)

// Error is a tenant resolution failure together with what the client may be
// told.
//
// Status, Reason and Description come from a fixed table and are safe to
// send; Err holds the internal cause (wrapping one of the sentinels) for
// audit and logs. No field ever holds a credential, and Description never
// echoes the rejected value.
type Error struct {
	// Status is the HTTP status to answer with: 401 for ReasonNoPrincipal,
	// 403 otherwise.
	Status int
	// Reason is one of the Reason… codes.
	Reason string
	// Description is a short, fixed, client-safe text.
	Description string
	// Err is the internal cause; it wraps a sentinel of this package.
	Err error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Err.Error()
	}
	return "tenancy: " + e.Description
}

// Unwrap returns the internal cause.
func (e *Error) Unwrap() error { return e.Err }

// Fixed client-safe descriptions.
const (
	descNoPrincipal      = "authentication required"
	descTenantRequired   = "tenant required: the access token does not name a tenant"
	descInvalidTenant    = "the tenant named by the access token is not a valid tenant ID"
	descInvalidRequested = "the requested tenant is not a valid tenant ID"
	descTenantNotAllowed = "the tenant is not served by this server"
	descNarrowingRefused = "the requested tenant is not available to this caller"
)

func newError(status int, reason, desc string, cause error) *Error {
	return &Error{Status: status, Reason: reason, Description: desc, Err: cause}
}

func errNoPrincipal() *Error {
	return newError(http.StatusUnauthorized, ReasonNoPrincipal, descNoPrincipal, ErrNoPrincipal)
}

func errTenantRequired(cause error) *Error {
	return newError(http.StatusForbidden, ReasonTenantRequired, descTenantRequired, cause)
}

func errInvalidTenant(cause error) *Error {
	return newError(http.StatusForbidden, ReasonInvalidTenant, descInvalidTenant, cause)
}

func errInvalidRequested(cause error) *Error {
	return newError(http.StatusForbidden, ReasonInvalidTenant, descInvalidRequested, cause)
}

func errNotAllowed() *Error {
	return newError(http.StatusForbidden, ReasonTenantNotAllowed, descTenantNotAllowed, ErrTenantNotAllowed)
}

func errNarrowingRefused(cause error) *Error {
	return newError(http.StatusForbidden, ReasonNarrowingRefused, descNarrowingRefused, cause)
}

// classified reports whether err already belongs to one of the classes a
// resolution failure can have.
func classified(err error) bool {
	for _, s := range [...]error{ErrNoPrincipal, ErrNoTenant, ErrInvalidTenant, ErrTenantNotAllowed, ErrNarrowingRefused} {
		if errors.Is(err, s) {
			return true
		}
	}
	var e *Error
	return errors.As(err, &e)
}

// asError converts any error into an *Error, classifying by sentinel and
// failing closed (anything unknown means "no usable tenant").
func asError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	switch {
	case errors.Is(err, ErrNoPrincipal):
		return newError(http.StatusUnauthorized, ReasonNoPrincipal, descNoPrincipal, err)
	case errors.Is(err, ErrInvalidTenant):
		return errInvalidTenant(err)
	case errors.Is(err, ErrTenantNotAllowed):
		return newError(http.StatusForbidden, ReasonTenantNotAllowed, descTenantNotAllowed, err)
	case errors.Is(err, ErrNarrowingRefused):
		return errNarrowingRefused(err)
	}
	return errTenantRequired(err)
}
