package observe

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
)

type requestIDKey struct{}

// maxRequestIDLen bounds a caller-supplied X-Request-Id; longer or odd ones are replaced.
const maxRequestIDLen = 128

// RequestID gives every request an id: the caller's X-Request-Id when it is short and
// plain, a fresh UUID otherwise. The id is echoed in the response header and kept in
// the request context for logs and error messages.
func RequestID() echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			req := c.Request()
			id := req.Header.Get(echo.HeaderXRequestID)
			if !validRequestID(id) {
				id = uuid.NewString()
			}
			c.Response().Header().Set(echo.HeaderXRequestID, id)
			c.SetRequest(req.WithContext(context.WithValue(req.Context(), requestIDKey{}, id)))
			return next(c)
		}
	}
}

// validRequestID accepts ids that are safe to copy into logs and headers verbatim.
func validRequestID(id string) bool {
	if id == "" || len(id) > maxRequestIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		ch := id[i]
		ok := ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' ||
			ch == '-' || ch == '_' || ch == '.' || ch == ':'
		if !ok {
			return false
		}
	}
	return true
}

// RequestIDFrom returns the request id RequestID stored in ctx, or "".
func RequestIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// AccessLog logs one line per request once the response is written. It logs the path
// without the query string: search parameters can carry personal data (names, birth
// dates, identifiers) that has no place in logs.
func AccessLog(log *slog.Logger) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			start := time.Now()
			err := handled(c, next(c))
			req, res := c.Request(), c.Response()
			level := slog.LevelInfo
			if res.Status >= 500 {
				level = slog.LevelError
				if res.Status == http.StatusServiceUnavailable {
					// A database outage, which the store logs once per interval.
					level = slog.LevelWarn
				}
			}
			if !log.Enabled(req.Context(), level) {
				// The attributes cost a request more than the check.
				return err
			}
			log.LogAttrs(req.Context(), level, "request",
				slog.String("request_id", RequestIDFrom(req.Context())),
				slog.String("method", req.Method),
				slog.String("path", req.URL.Path),
				slog.String("route", routeOf(c)),
				slog.Int("status", res.Status),
				slog.Int64("bytes", res.Size),
				slog.Duration("duration", time.Since(start)),
				slog.String("remote", c.RealIP()),
			)
			return err
		}
	}
}

// handled hands err to echo's error handler so that the response status is known to
// the middleware that measures it; the error is consumed.
func handled(c echo.Context, err error) error {
	if err != nil {
		c.Error(err)
	}
	return nil
}

// routeOf is the matched route pattern; unmatched paths share one label so that
// scanners cannot grow the metric cardinality.
func routeOf(c echo.Context) string {
	if p := c.Path(); p != "" {
		return p
	}
	return "unmatched"
}
