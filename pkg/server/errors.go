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

// statusOf is the one table from error codes to HTTP statuses.
var statusOf = map[resources.Code]int{
	resources.CodeInvalid:            http.StatusBadRequest,
	resources.CodeUnprocessable:      http.StatusUnprocessableEntity,
	resources.CodeNotFound:           http.StatusNotFound,
	resources.CodeGone:               http.StatusGone,
	resources.CodeConflict:           http.StatusConflict,
	resources.CodePreconditionFailed: http.StatusPreconditionFailed,
	resources.CodeUnauthorized:       http.StatusUnauthorized,
	resources.CodeForbidden:          http.StatusForbidden,
	resources.CodeTooLarge:           http.StatusRequestEntityTooLarge,
	resources.CodeNotAcceptable:      http.StatusNotAcceptable,
	resources.CodeUnsupportedMedia:   http.StatusUnsupportedMediaType,
	resources.CodeMethodNotAllowed:   http.StatusMethodNotAllowed,
	resources.CodeInternal:           http.StatusInternalServerError,
	// The database cannot be reached: nothing is wrong with the request, and it may be
	// sent again after Retry-After.
	resources.CodeUnavailable: http.StatusServiceUnavailable,
	// A statement ran past the statement timeout. Not 408, which says the client was
	// too slow to send its request, nor 504, which is a gateway's answer about the
	// server behind it: the server itself gave up, perhaps only for now (under load),
	// perhaps because the request asks too much; the message says both.
	resources.CodeTimeout:   http.StatusServiceUnavailable,
	resources.CodeThrottled: http.StatusTooManyRequests,
}

// issueCode maps codes to OperationOutcome.issue.code values (FHIR IssueType).
var issueCode = map[resources.Code]string{
	resources.CodeInvalid:            "invalid",
	resources.CodeUnprocessable:      "processing",
	resources.CodeNotFound:           "not-found",
	resources.CodeGone:               "deleted",
	resources.CodeConflict:           "conflict",
	resources.CodePreconditionFailed: "conflict",
	resources.CodeUnauthorized:       "login",
	resources.CodeForbidden:          "forbidden",
	resources.CodeTooLarge:           "too-costly",
	resources.CodeNotAcceptable:      "not-supported",
	resources.CodeUnsupportedMedia:   "not-supported",
	resources.CodeMethodNotAllowed:   "not-supported",
	resources.CodeInternal:           "exception",
	resources.CodeUnavailable:        "transient",
	resources.CodeTimeout:            "timeout",
	resources.CodeThrottled:          "throttled",
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
			return resources.Errorf(resources.CodeMethodNotAllowed, "method not allowed on this endpoint")
		case http.StatusRequestEntityTooLarge:
			return resources.Errorf(resources.CodeTooLarge, "the request body is too large")
		case http.StatusUnsupportedMediaType:
			return resources.Errorf(resources.CodeUnsupportedMedia, "unsupported media type")
		case http.StatusBadRequest:
			return resources.Errorf(resources.CodeInvalid, "bad request")
		case http.StatusUnauthorized:
			return resources.Errorf(resources.CodeUnauthorized, "authentication required")
		case http.StatusForbidden:
			return resources.Errorf(resources.CodeForbidden, "forbidden")
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
	status := statusOf[re.Code]
	if status == 0 {
		status = http.StatusInternalServerError
	}
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
	oo := fhir.NewOutcome("error", issueCode[re.Code], msg, expr...)
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
	case resources.CodeUnavailable, resources.CodeTimeout, resources.CodeThrottled:
	default:
		return nil
	}
	retry := 0
	if d := resources.RetryAfter(err); d > 0 {
		retry, _ = strconv.Atoi(retryAfterSeconds(d))
	}
	return &auth.OAuthError{Code: errTemporarilyUnavailable, Description: resources.ErrorMessage(err),
		Status: statusOf[code], RetryAfter: retry}
}
