// Package fhirdate parses FHIR date, dateTime and instant values into the range of
// instants each one covers at the precision it was written with. It stands apart from
// resources so that search, the index extractor, the FHIRPath evaluator (which cannot
// import resources: resources imports it) and cmd/fhirbench share one parser.
package fhirdate

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// dateRE is the syntax of FHIR date, dateTime and instant values: a year, optionally a
// month, a day, a time to the minute or second with optional fraction, and a zone.
var dateRE = regexp.MustCompile(`^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?(Z|[+-]\d{2}:\d{2})?)?)?)?$`)

// spaceZoneRE matches a zone offset whose "+" became a space: a client that does not
// escape "+" in a query string sends "10:00:00+02:00", which decodes as "10:00:00 02:00".
var spaceZoneRE = regexp.MustCompile(`T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)? \d{2}:\d{2}$`)

// ParseRange parses a FHIR date ("2019", "2019-03", "2019-03-04"), dateTime or
// instant ("2019-03-04T10:20", "2019-03-04T10:20:30", "…:30.25", each with an optional
// "Z" or ±hh:mm zone; no zone means UTC) and returns the half-open range [low, high) of
// instants it covers at the precision it was written with, in UTC: "2019-03" is
// [2019-03-01T00:00Z, 2019-04-01T00:00Z), "…T10:20:30Z" is one second, "…:30.25Z" a
// hundredth of a second. A space in place of the "+" of a zone offset is accepted, since
// that is what an unescaped "+" in a query string decodes to. Years run from 0001 to 9999.
func ParseRange(s string) (low, high time.Time, err error) {
	if spaceZoneRE.MatchString(s) {
		i := strings.LastIndexByte(s, ' ')
		s = s[:i] + "+" + s[i+1:]
	}
	m := dateRE.FindStringSubmatch(s)
	if m == nil {
		return time.Time{}, time.Time{}, fmt.Errorf("%q is not a date, dateTime or instant", s)
	}
	num := func(s string, def int) int {
		if s == "" {
			return def
		}
		n, _ := strconv.Atoi(s)
		return n
	}
	year, month, day := num(m[1], 1), num(m[2], 1), num(m[3], 1)
	hour, minute, sec := num(m[4], 0), num(m[5], 0), num(m[6], 0)
	frac := m[7]
	if len(frac) > 9 {
		frac = frac[:9] // beyond nanoseconds time.Time cannot tell instants apart
	}
	nsec := 0
	if frac != "" {
		nsec = num(frac+strings.Repeat("0", 9-len(frac)), 0)
	}
	loc := time.UTC
	if z := m[8]; z != "" && z != "Z" {
		zh, zm := num(z[1:3], 0), num(z[4:6], 0)
		if zh > 14 || zm > 59 {
			return time.Time{}, time.Time{}, fmt.Errorf("%q has an invalid zone offset", s)
		}
		off := zh*3600 + zm*60
		if z[0] == '-' {
			off = -off
		}
		loc = time.FixedZone("", off)
	}
	if year < 1 || month < 1 || month > 12 || hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, time.Time{}, fmt.Errorf("%q is out of range", s)
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, nsec, loc)
	if t.Day() != day { // Feb 30 and the like normalise into the next month
		return time.Time{}, time.Time{}, fmt.Errorf("%q is not a calendar date", s)
	}
	switch {
	case m[2] == "":
		high = t.AddDate(1, 0, 0)
	case m[3] == "":
		high = t.AddDate(0, 1, 0)
	case m[4] == "":
		high = t.AddDate(0, 0, 1)
	case m[6] == "":
		high = t.Add(time.Minute)
	case frac == "":
		high = t.Add(time.Second)
	default:
		step := time.Duration(1)
		for range 9 - len(frac) {
			step *= 10
		}
		high = t.Add(step)
	}
	return t.UTC(), high.UTC(), nil
}
