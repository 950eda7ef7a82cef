package server

import (
	"regexp"
	"strings"

	"github.com/labstack/echo/v4"
)

// A page of fhirbox's own that needs a signed-in browser (the Auth Sandbox) sends the
// browser to /auth/login?next=<its path>; the login form carries next along, and a
// successful sign-in lands there instead of on the signed-in page.

// nextParam names the page to return to after sign-in, in the login page's query and
// form.
const nextParam = "next"

// localPage is what next may name: a path of fhirbox's own pages, under /ui/, never
// another site (no scheme, no host, no "//", no backslash) nor a query.
var localPage = regexp.MustCompile(`^/ui/[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$`)

// localNext is v when it names a page of fhirbox's own, else "" (an open redirect is
// never made of it).
func localNext(v string) string {
	if len(v) > 256 || !localPage.MatchString(v) || strings.Contains(v, "//") {
		return ""
	}
	return v
}

// nextOf is the page to return to after sign-in: from the posted form (handleLogin puts
// it in the context) or the login page's query.
func nextOf(c echo.Context) string {
	if v, ok := c.Get(nextParam).(string); ok {
		return localNext(v)
	}
	return localNext(c.QueryParam(nextParam))
}

// afterSignIn is where a sign-in without an authorization request lands: next, or the
// signed-in page.
func afterSignIn(next string) string {
	if next != "" {
		return next
	}
	return "/auth/logout"
}
