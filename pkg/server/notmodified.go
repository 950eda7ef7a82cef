package server

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/fhirbox/fhirbox/resources"
)

// notModified reports whether a read or vread of res is answered 304 Not Modified (FHIR
// R4 http.html "conditional read"; RFC 9110 §13.1.2–13.1.3; conformance F3 and H5): when
// If-None-Match names its version (or is "*"), or, when the request has no If-None-Match
// (which then decides alone, §13.1.3), when If-Modified-Since is not before its
// lastUpdated at the second precision an HTTP-date has. An If-Modified-Since that is not
// an HTTP-date is ignored, as §13.1.3 requires, and the read answers in full.
func notModified(r *http.Request, res *resources.Resource) bool {
	return unchanged(res, r.Header.Get("If-None-Match"), r.Header.Get("If-Modified-Since"), http.ParseTime)
}

// unchanged is notModified for the two conditions given as text, however they came (a
// request's headers, a Bundle entry's ifNoneMatch and ifModifiedSince): parse reads the
// If-Modified-Since value, and one it cannot read is ignored.
func unchanged(res *resources.Resource, ifNoneMatch, ifModifiedSince string, parse func(string) (time.Time, error)) bool {
	if ifNoneMatch != "" {
		return sameVersion(ifNoneMatch, res.VersionID)
	}
	if ifModifiedSince == "" {
		return false
	}
	t, err := parse(ifModifiedSince)
	if err != nil {
		return false
	}
	return !res.LastUpdated.Truncate(time.Second).After(t)
}

// answerNotModified writes the 304 of a conditional read: no body, with the ETag and
// Last-Modified a 200 would have carried.
func answerNotModified(c echo.Context, res *resources.Resource) error {
	setVersionHeaders(c, res)
	return c.NoContent(http.StatusNotModified)
}
