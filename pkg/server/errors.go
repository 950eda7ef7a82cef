package server

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/fhirbox/fhirbox/pkg/auth"
	"github.com/fhirbox/fhirbox/pkg/fhir"
	"github.com/fhirbox/fhirbox/pkg/observe"
	"github.com/fhirbox/fhirbox/resources"
)

// Error codes that only the HTTP layer raises: a caller not authenticated or not
// allowed, a method, media type or size the protocol refuses, a caller over its share.
// The resource engine never needs them, so they live here, beside the engine's codes
// they extend; their values are what they were when resources defined them.
const (
	codeUnauthorized     resources.Code = "login"             // 401
	codeForbidden        resources.Code = "forbidden"         // 403
	codeMethodNotAllowed resources.Code = "not-supported"     // 405
	codeNotAcceptable    resources.Code = "not-acceptable"    // 406
	codeTooLarge         resources.Code = "too-large"         // 413
	codeUnsupportedMedia resources.Code = "unsupported-media" // 415
	// codeThrottled is 429 with Retry-After: too many requests in flight, or too many
	// failed guesses. Nothing in the request is wrong; it may succeed later.
	codeThrottled resources.Code = "throttled"
)

// outcome is how the server answers one error code: the HTTP status and the
// OperationOutcome.issue.code (FHIR IssueType).
type outcome struct {
	status int
	issue  string
}

// outcomes is the one table from error codes to answers. A code missing from it is
// answered 500, with no issue code.
var outcomes = map[resources.Code]outcome{
	resources.CodeInvalid:            {http.StatusBadRequest, "invalid"},
	resources.CodeUnprocessable:      {http.StatusUnprocessableEntity, "processing"},
	resources.CodeNotFound:           {http.StatusNotFound, "not-found"},
	resources.CodeGone:               {http.StatusGone, "deleted"},
	resources.CodeConflict:           {http.StatusConflict, "conflict"},
	resources.CodePreconditionFailed: {http.StatusPreconditionFailed, "conflict"},
	codeUnauthorized:                 {http.StatusUnauthorized, "login"},
	codeForbidden:                    {http.StatusForbidden, "forbidden"},
	codeTooLarge:                     {http.StatusRequestEntityTooLarge, "too-costly"},
	codeNotAcceptable:                {http.StatusNotAcceptable, "not-supported"},
	codeUnsupportedMedia:             {http.StatusUnsupportedMediaType, "not-supported"},
	codeMethodNotAllowed:             {http.StatusMethodNotAllowed, "not-supported"},
	resources.CodeInternal:           {http.StatusInternalServerError, "exception"},
	// The database cannot be reached: nothing is wrong with the request, and it may be
	// sent again after Retry-After.
	resources.CodeUnavailable: {http.StatusServiceUnavailable, "transient"},
	// A statement ran past the statement timeout. Not 408, which says the client was
	// too slow to send its request, nor 504, which is a gateway's answer about the
	// server behind it: the server itself gave up, perhaps only for now (under load),
	// perhaps because the request asks too much; the message says both.
	resources.CodeTimeout: {http.StatusServiceUnavailable, "timeout"},
	codeThrottled:         {http.StatusTooManyRequests, "throttled"},
}

// statusOf is the HTTP status of code, 500 for a code the table does not know.
func statusOf(code resources.Code) int {
	if o, ok := outcomes[code]; ok {
		return o.status
	}
	return http.StatusInternalServerError
}

// toError turns any error into a *resources.Error, translating echo's own errors
// (unknown route, wrong method) so that every error body is an OperationOutcome
// (conformance F15).
func toError(err error) *resources.Error {
	var re *resources.Error
	if errors.As(err, &re) {
		return re
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		switch he.Code {
		case http.StatusNotFound:
			return resources.Errorf(resources.CodeNotFound, "no such endpoint")
		case http.StatusMethodNotAllowed:
			return resources.Errorf(codeMethodNotAllowed, "method not allowed on this endpoint")
		case http.StatusRequestEntityTooLarge:
			return resources.Errorf(codeTooLarge, "the request body is too large")
		case http.StatusUnsupportedMediaType:
			return resources.Errorf(codeUnsupportedMedia, "unsupported media type")
		case http.StatusBadRequest:
			return resources.Errorf(resources.CodeInvalid, "bad request")
		case http.StatusUnauthorized:
			return resources.Errorf(codeUnauthorized, "authentication required")
		case http.StatusForbidden:
			return resources.Errorf(codeForbidden, "forbidden")
		}
	}
	return resources.Internal(err)
}

// errorHandler renders every error as an OperationOutcome in the negotiated format.
// Internal errors are logged with the request id and shown as a generic message.
func (s *Server) errorHandler(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	re := toError(err)
	status := statusOf(re.Code)
	msg := re.Message
	switch {
	case errors.Is(err, context.Canceled) && c.Request().Context().Err() != nil:
		// The client went away and its work was cancelled: nobody reads this answer,
		// and nothing failed. 499 is nginx's "client closed request", for the access log.
		c.Response().WriteHeader(statusClientClosed)
		return
	case re.Code == resources.CodeUnavailable:
		// Logged by the store, once per interval of the outage rather than per request.
	case re.Code == resources.CodeTimeout:
		s.log.WarnContext(c.Request().Context(), "statement timeout",
			"request_id", observe.RequestIDFrom(c.Request().Context()), "path", c.Request().URL.Path)
	case status >= 500:
		s.log.ErrorContext(c.Request().Context(), "internal error",
			"request_id", observe.RequestIDFrom(c.Request().Context()), "err", err)
		msg = "internal server error; the request id is " + observe.RequestIDFrom(c.Request().Context())
	}
	var expr []string
	if re.Expression != "" {
		expr = []string{re.Expression}
	}
	if d := resources.RetryAfter(err); d > 0 {
		c.Response().Header().Set("Retry-After", retryAfterSeconds(d))
	}
	oo := fhir.NewOutcome("error", outcomes[re.Code].issue, msg, expr...)
	if len(re.Issues) > 0 {
		oo = validationOutcome(re.Issues) // one issue per problem (conformance V1)
	}
	if status == http.StatusUnauthorized {
		h := c.Response().Header()
		var ch challenge
		if errors.As(err, &ch) {
			h.Set(echo.HeaderWWWAuthenticate, string(ch))
		} else {
			// No or unusable credentials: both schemes are offered, Bearer without an
			// error attribute (conformance B1).
			h.Set(echo.HeaderWWWAuthenticate, `Bearer realm="fhirbox"`)
			h.Add(echo.HeaderWWWAuthenticate, `Basic realm="fhirbox"`)
		}
	}
	f, ferr := negotiate(c, isFHIRBase(c))
	if ferr != nil {
		f = outFormat{ctype: mimeJSON}
	}
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(status)
		return
	}
	if werr := s.writeValue(c, status, f, oo); werr != nil {
		s.log.Error("write error response", slog.Any("err", werr))
	}
}

// statusClientClosed is the status logged for a request whose client went away.
const statusClientClosed = 499

// retryAfterSeconds is d as a Retry-After value: whole seconds, rounded up, at least 1.
func retryAfterSeconds(d time.Duration) string {
	return strconv.Itoa(max(1, int(math.Ceil(d.Seconds()))))
}

// errTemporarilyUnavailable is RFC 6749's code for a server that cannot answer for now
// (§4.1.2.1 names it for the authorization endpoint; the token endpoint borrows it).
const errTemporarilyUnavailable = "temporarily_unavailable"

// transientOAuth is what the /auth endpoints answer for err when it says the request
// could not be served for now (the database is unreachable or too slow, the caller has
// too many requests in flight): 503 or 429 with Retry-After; nil for any other error.
func transientOAuth(err error) *auth.OAuthError {
	code := resources.ErrorCode(err)
	switch code {
	case resources.CodeUnavailable, resources.CodeTimeout, codeThrottled:
	default:
		return nil
	}
	retry := 0
	if d := resources.RetryAfter(err); d > 0 {
		retry, _ = strconv.Atoi(retryAfterSeconds(d))
	}
	return &auth.OAuthError{Code: errTemporarilyUnavailable, Description: resources.ErrorMessage(err),
		Status: statusOf(code), RetryAfter: retry}
}
