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
	if inm := r.Header.Get("If-None-Match"); inm != "" {
		return sameVersion(inm, res.VersionID)
	}
	ims := r.Header.Get("If-Modified-Since")
	if ims == "" {
		return false
	}
	t, err := http.ParseTime(ims)
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
