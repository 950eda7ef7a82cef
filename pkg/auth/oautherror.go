package auth

import (
	"fmt"
	"net/http"
	"strings"
)

// RFC 6749 §5.2 error codes (and RFC 8707's invalid_target).
const (
	ErrCodeInvalidRequest       = "invalid_request"
	ErrCodeInvalidClient        = "invalid_client"
	ErrCodeInvalidGrant         = "invalid_grant"
	ErrCodeUnauthorizedClient   = "unauthorized_client"
	ErrCodeUnsupportedGrantType = "unsupported_grant_type"
	ErrCodeInvalidScope         = "invalid_scope"
	ErrCodeInvalidTarget        = "invalid_target"
)

// OAuthError is the one error type of the /auth endpoints, rendered as RFC 6749 §5.2
// JSON ({error, error_description}) with Status.
type OAuthError struct {
	Code        string
	Description string
	// Status is the HTTP status: 400 unless set (401 for a client that failed HTTP Basic,
	// 429 while password guessing is slowed down).
	Status int
	// Challenge is set when the client authenticated with HTTP Basic and failed: the
	// response carries WWW-Authenticate: Basic (conformance T5).
	Challenge bool
	// RetryAfter is the Retry-After header in seconds, when positive.
	RetryAfter int
}

func (e *OAuthError) Error() string { return e.Code + ": " + e.Description }

// HTTPStatus is the status the error is answered with.
func (e *OAuthError) HTTPStatus() int {
	if e.Status != 0 {
		return e.Status
	}
	if e.Challenge {
		return http.StatusUnauthorized
	}
	return http.StatusBadRequest
}

// Body is the JSON body. error_description keeps to printable ASCII without " and \
// (conformance T3).
func (e *OAuthError) Body() map[string]string {
	b := map[string]string{"error": e.Code}
	if d := cleanDescription(e.Description); d != "" {
		b["error_description"] = d
	}
	return b
}

func oauthErr(code, format string, args ...any) *OAuthError {
	return &OAuthError{Code: code, Description: fmt.Sprintf(format, args...)}
}

func cleanDescription(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteByte('\'')
		case r == '\\':
			b.WriteByte('/')
		case r >= 0x20 && r <= 0x7e:
			b.WriteRune(r)
		default:
			b.WriteByte('?')
		}
	}
	return b.String()
}
