package server

import (
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

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
	resources.CodeTooManyRequests:    http.StatusTooManyRequests,
	resources.CodeInternal:           http.StatusInternalServerError,
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
	resources.CodeTooManyRequests:    "throttled",
	resources.CodeInternal:           "exception",
}

// toError turns any error into a *resources.Error, translating echo's own errors
// (unknown route, wrong method) so that every error body is an OperationOutcome (F15).
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
	if status >= 500 {
		s.log.ErrorContext(c.Request().Context(), "internal error",
			"request_id", observe.RequestIDFrom(c.Request().Context()), "err", err)
		msg = "internal server error; the request id is " + observe.RequestIDFrom(c.Request().Context())
	}
	var expr []string
	if re.Expression != "" {
		expr = []string{re.Expression}
	}
	oo := fhir.NewOutcome("error", issueCode[re.Code], msg, expr...)
	if status == http.StatusUnauthorized {
		h := c.Response().Header()
		var ch challenge
		if errors.As(err, &ch) {
			h.Set(echo.HeaderWWWAuthenticate, string(ch))
		} else {
			// No or unusable credentials: both schemes are offered, Bearer without an
			// error attribute (B1).
			h.Set(echo.HeaderWWWAuthenticate, `Bearer realm="fhirbox"`)
			h.Add(echo.HeaderWWWAuthenticate, `Basic realm="fhirbox"`)
		}
	}
	if ra := retryAfter(0); errors.As(err, &ra) {
		c.Response().Header().Set("Retry-After", strconv.Itoa(int(ra)))
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
