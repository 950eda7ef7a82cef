package resources

import (
	"errors"
	"fmt"
	"time"

	"github.com/fhirbox/fhirbox/resources/validate"
)

// Code classifies an Error; the server maps each code to one HTTP status. The codes
// here are those the engine and its stores raise; the HTTP layer adds its own
// (authentication, method, media type, size, throttling) beside them.
type Code string

// Error codes. They follow FHIR's OperationOutcome issue types where one fits.
const (
	CodeInvalid            Code = "invalid"             // 400: malformed input
	CodeUnprocessable      Code = "processing"          // 422: well-formed but breaks a rule
	CodeNotFound           Code = "not-found"           // 404
	CodeGone               Code = "deleted"             // 410
	CodeConflict           Code = "conflict"            // 409
	CodePreconditionFailed Code = "precondition-failed" // 412
	// CodeForbidden (403) is a refusal by a Confinement: the caller may use the type,
	// but not this resource of it.
	CodeForbidden Code = "forbidden"
	CodeInternal  Code = "exception" // 500: never shown in detail
)

// Codes of a request that could not be served now but may succeed later: nothing in
// the request itself is wrong.
const (
	CodeUnavailable Code = "transient" // 503 with Retry-After: the database is unreachable
	CodeTimeout     Code = "timeout"   // 503: a statement ran past the statement timeout
)

// Error is the one error type of the engine. Message is safe to show to the client,
// except for CodeInternal, whose message is logged and replaced by a generic text.
type Error struct {
	Code    Code
	Message string
	// Expression optionally names the element or parameter at fault (FHIRPath-like).
	Expression string
	// Issues, when set, are the problems one by one (a resource that fails R4
	// validation): the answer's OperationOutcome lists them instead of Message.
	Issues []validate.Issue
	// Err is the underlying cause, for logs only.
	Err error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the given code and formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Internal wraps an unexpected failure; its detail never reaches the client.
func Internal(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Code: CodeInternal, Message: "internal error", Err: err}
}

// ErrorCode returns the code of err, CodeInternal when err is not an *Error, and ""
// for nil.
func ErrorCode(err error) Code {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// ErrorMessage is the client-safe message of err: an *Error's Message, or a generic
// text for anything else.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Code != CodeInternal {
		return e.Message
	}
	return "internal error"
}

// WithRetryAfter returns an error of code whose client may try again after d (carried in
// its cause, where RetryAfter finds it; the server answers it with Retry-After).
func WithRetryAfter(code Code, d time.Duration, cause error, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), Err: retryAfter{d: d, err: cause}}
}

// RetryAfter is how long the client of err should wait before trying again: what the
// first error of err's chain with a RetryAfter method says, 0 when none does.
func RetryAfter(err error) time.Duration {
	var ra interface{ RetryAfter() time.Duration }
	if errors.As(err, &ra) {
		return ra.RetryAfter()
	}
	return 0
}

type retryAfter struct {
	d   time.Duration
	err error
}

func (r retryAfter) Error() string {
	if r.err == nil {
		return fmt.Sprintf("retry after %s", r.d)
	}
	return r.err.Error()
}

func (r retryAfter) Unwrap() error             { return r.err }
func (r retryAfter) RetryAfter() time.Duration { return r.d }
