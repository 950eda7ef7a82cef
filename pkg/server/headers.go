package server

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
)

// securityHeaders marks every answer, errors included, as not to be content-sniffed,
// and every answer but the public discovery documents as not to be stored: resources,
// bundles, tokens and even error texts can carry personal data that a shared cache or
// the browser's disk has no business keeping.
func (s *Server) securityHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("X-Content-Type-Options", "nosniff")
		if !cacheable(c.Request().URL.Path) {
			h.Set(echo.HeaderCacheControl, "no-store")
		}
		return next(c)
	}
}

// cacheable reports whether path serves a document that is the same for every caller
// and carries no personal data: the CapabilityStatements and discovery documents.
func cacheable(path string) bool {
	return path == "/metadata" || path == "/fhir/metadata" || strings.HasPrefix(path, "/.well-known/")
}

// signinPath reports whether path is the authorization endpoint or a sign-in page.
func signinPath(path string) bool {
	switch path {
	case "/auth/authorize", "/auth/login", "/auth/consent", "/auth/logout":
		return true
	}
	return strings.HasPrefix(path, "/ui/")
}

// headWithoutBody lets HEAD run the GET handler of its route and drops what it writes,
// so status and headers are those of GET (Content-Length included where GET sets it).
// net/http drops a HEAD body too, but not every http.ResponseWriter does.
func headWithoutBody(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if c.Request().Method == http.MethodHead {
			res := c.Response()
			res.Writer = headWriter{res.Writer}
		}
		return next(c)
	}
}

// headWriter is an http.ResponseWriter that keeps headers and status and drops the body.
type headWriter struct{ http.ResponseWriter }

func (w headWriter) Write(p []byte) (int, error) { return len(p), nil }

// Unwrap lets http.ResponseController reach the connection (deadlines, flush).
func (w headWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// cors answers CORS for the configured origins only, matched exactly (no wildcards,
// no subdomains); preflight requests are answered here, before authorize, since a
// browser sends them without credentials.
func cors(origins []string) echo.MiddlewareFunc {
	allowed := make(map[string]bool, len(origins))
	for _, o := range origins {
		allowed[o] = true
	}
	return middleware.CORSWithConfig(middleware.CORSConfig{
		// The authorization endpoint and the sign-in pages are for browsers navigating,
		// never for scripts of other origins (RFC 9700 §2.6, conformance S6).
		Skipper:         func(c echo.Context) bool { return signinPath(c.Request().URL.Path) },
		AllowOriginFunc: func(origin string) (bool, error) { return allowed[origin], nil },
		AllowMethods:    []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodDelete},
		AllowHeaders: []string{echo.HeaderAuthorization, echo.HeaderContentType, echo.HeaderAccept,
			"If-Match", "If-None-Match", "If-None-Exist", "Prefer", echo.HeaderXRequestID},
		ExposeHeaders: []string{"ETag", echo.HeaderLastModified, echo.HeaderLocation, echo.HeaderXRequestID,
			echo.HeaderWWWAuthenticate, echo.HeaderRetryAfter},
		MaxAge: 600,
	})
}

// ParseCORSOrigins reads a comma-separated list of exact origins (scheme://host[:port],
// as browsers send them in Origin); an empty list turns CORS off.
func ParseCORSOrigins(list string) ([]string, error) {
	var out []string
	for _, o := range strings.Split(list, ",") {
		if o = strings.TrimSpace(o); o == "" {
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
			strings.ContainsAny(o, "*?#") || u.Scheme+"://"+strings.ToLower(u.Host) != o {
			return nil, fmt.Errorf("%q is not an origin: write scheme://host[:port] in lower case, without path or wildcard", o)
		}
		out = append(out, o)
	}
	return out, nil
}
