package auth

import (
	"errors"
	"net/http"
)

// RFC 6750 §3.1 error codes.
const (
	CodeInvalidRequest    = "invalid_request"
	CodeInvalidToken      = "invalid_token"
	CodeInsufficientScope = "insufficient_scope"
)

// Sentinel errors, one per class. Validators wrap them (usually inside an
// *Error) so callers match with errors.Is.
var (
	// ErrNoCredential: the request carried no bearer credential.
	ErrNoCredential = errors.New("auth: no bearer credential")
	// ErrMalformedRequest: the credential was presented in a way RFC 6750
	// forbids (two credentials, a query-string token, a bad header).
	ErrMalformedRequest = errors.New("auth: malformed bearer request")
	// ErrInvalidToken: the token was presented but is not acceptable
	// (bad signature, wrong issuer or audience, malformed, revoked...).
	ErrInvalidToken = errors.New("auth: invalid token")
	// ErrExpired: the token is past its expiry (it also matches ErrInvalidToken).
	ErrExpired = errors.New("auth: token expired")
	// ErrInsufficientScope: the principal lacks a required scope.
	ErrInsufficientScope = errors.New("auth: insufficient scope")
	// ErrUnavailable: the token could not be checked because a dependency
	// (JWKS, introspection endpoint) failed. Clients should retry rather
	// than discard their token, so it maps to 503, not 401.
	ErrUnavailable = errors.New("auth: validation temporarily unavailable")
	// ErrConfig: a configuration mistake detected by a constructor.
	ErrConfig = errors.New("auth: invalid configuration")
)

// Error is a validation failure with what the client may be told.
//
// Code, Status and Description come from a fixed table and are safe to send;
// Err holds the internal cause for audit and logs. No field ever contains the
// credential.
type Error struct {
	// Code is the RFC 6750 error code, empty when no credential was sent.
	Code string
	// Status is the HTTP status to answer with.
	Status int
	// Description is a short, fixed, client-safe text (RFC 6750
	// error_description); never derived from the token.
	Description string
	// Scope lists the scopes needed, for insufficient_scope.
	Scope []string
	// Err is the internal cause. It never contains the credential.
	Err error
}

func (e *Error) Error() string {
	msg := "auth: " + e.Description
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns the internal cause.
func (e *Error) Unwrap() error { return e.Err }

// Is makes every *Error with Code invalid_token match ErrInvalidToken, and
// so on for the other codes, so errors.Is works on the class even when the
// cause is a more specific sentinel.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrInvalidToken:
		return e.Code == CodeInvalidToken
	case ErrMalformedRequest:
		return e.Code == CodeInvalidRequest
	case ErrInsufficientScope:
		return e.Code == CodeInsufficientScope
	case ErrUnavailable:
		return e.Status == http.StatusServiceUnavailable
	}
	return false
}

// InvalidToken returns an invalid_token *Error (HTTP 401) with a fixed,
// client-safe description and an internal cause. cause should wrap a
// sentinel; it must not contain the token.
func InvalidToken(description string, cause error) *Error {
	return &Error{Code: CodeInvalidToken, Status: http.StatusUnauthorized, Description: description, Err: cause}
}

// Unavailable returns a 503 *Error for a dependency failure.
func Unavailable(description string, cause error) *Error {
	if cause == nil {
		cause = ErrUnavailable
	}
	return &Error{Status: http.StatusServiceUnavailable, Description: description, Err: cause}
}

// InsufficientScope returns a 403 insufficient_scope *Error naming the
// scopes required (RFC 6750 §3.1).
func InsufficientScope(scopes ...string) *Error {
	return &Error{
		Code: CodeInsufficientScope, Status: http.StatusForbidden,
		Description: "the token lacks a required scope",
		Scope:       scopes, Err: ErrInsufficientScope,
	}
}

// AsError converts any validation error into an *Error. An error that is not
// an *Error becomes an opaque invalid_token 401 when it wraps
// ErrInvalidToken or ErrExpired, a 503 when it wraps ErrUnavailable or a
// context error, and an invalid_token 401 otherwise (fail closed).
func AsError(err error) *Error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	switch {
	case errors.Is(err, ErrNoCredential):
		return &Error{Status: http.StatusUnauthorized, Description: "a bearer token is required", Err: err}
	case errors.Is(err, ErrMalformedRequest):
		return &Error{Code: CodeInvalidRequest, Status: http.StatusBadRequest, Description: "malformed bearer request", Err: err}
	case errors.Is(err, ErrUnavailable):
		return Unavailable("token validation is temporarily unavailable", err)
	case errors.Is(err, ErrInsufficientScope):
		return &Error{Code: CodeInsufficientScope, Status: http.StatusForbidden, Description: "the token lacks a required scope", Err: err}
	}
	return InvalidToken("the access token is invalid", err)
}
