package format

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// MaxNumberLength bounds the text of a number in a document. A float64 tells 17
// significant digits apart and FHIR's decimal syntax allows 35; past the bound digits
// carry nothing a reader keeps, and PostgreSQL's JSONB, which keeps a number's digits
// exactly, refuses more than 16,383 after the point.
const MaxNumberLength = 128

// checkNumber says why a JSON number cannot be kept, or "" when it can. Numbers are
// stored as written, but each must be a finite float64 that is not rounded to zero:
// RFC 8259 §6 warns that wider numbers are not interoperable (encoding/json, like most
// readers, fails on them), fhirbox's search index holds a float64, and PostgreSQL's
// JSONB refuses exponents beyond its numeric range. A number accepted here is one the
// index holds as it is, never silently as a different value.
func checkNumber(n json.Number) string {
	s := string(n)
	if len(s) > MaxNumberLength {
		return fmt.Sprintf("a number of %d characters is longer than the %d allowed", len(s), MaxNumberLength)
	}
	f, err := strconv.ParseFloat(s, 64)
	switch {
	case err != nil || math.IsInf(f, 0):
		return fmt.Sprintf("the number %s is outside the range of a 64-bit float (±1.8e308), the widest JSON readers and the search index hold", s)
	case f == 0 && strings.ContainsAny(mantissa(s), "123456789"):
		return fmt.Sprintf("the number %s is too small for a 64-bit float (4.9e-324) and would be read as 0", s)
	}
	return ""
}

// mantissa returns a number's text before its exponent.
func mantissa(s string) string {
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		return s[:i]
	}
	return s
}
