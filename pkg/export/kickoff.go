package export

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/fhirbox/fhirbox/resources"
)

// NDJSON is the media type of the output files; the kick-off's _outputFormat may name
// it by its two abbreviations too (IG: application/ndjson, ndjson).
const NDJSON = "application/fhir+ndjson"

var outputFormats = []string{NDJSON, "application/ndjson", "ndjson"}

// unsupported are the kick-off parameters of the IG that fhirbox does not apply: a
// strict kick-off refuses them, a lenient one is run without them (IG: "Prefer:
// handling=lenient").
var unsupported = map[string]string{
	"_typeFilter":           "_typeFilter is not supported",
	"_elements":             "_elements is not supported in an export",
	"patient":               "the patient parameter is not supported",
	"includeAssociatedData": "includeAssociatedData is not supported",
}

// Request is a parsed kick-off.
type Request struct {
	// Types are the types asked for with _type, in order, each once (none: every type
	// the export level covers).
	Types []string
	// Since is _since (zero: none).
	Since time.Time
	// Ignored says, per parameter a lenient kick-off left out, why.
	Ignored []string
}

// Prefer reads the Prefer headers of a kick-off: whether respond-async is among them
// (the IG requires it) and whether handling=lenient is.
func Prefer(values []string) (async, lenient bool) {
	for _, h := range values {
		// Preferences are separated by commas, their parameters by semicolons (RFC 7240).
		for _, part := range strings.FieldsFunc(h, func(r rune) bool { return r == ',' || r == ';' }) {
			k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
			switch {
			case strings.EqualFold(k, "respond-async"):
				async = true
			case strings.EqualFold(k, "handling") && strings.EqualFold(strings.Trim(v, `"`), "lenient"):
				lenient = true
			}
		}
	}
	return async, lenient
}

// ParseKickoff reads the parameters of a kick-off (the query of a GET, or those of a
// POSTed Parameters resource as the same values). A parameter that is malformed, or
// not one fhirbox applies, is a CodeInvalid error, unless lenient, which leaves an
// unknown one out and says so in Request.Ignored (a malformed _since or _outputFormat
// is refused either way: the export would not be what was asked).
func ParseKickoff(params url.Values, lenient bool) (*Request, error) {
	r := &Request{}
	names := make([]string, 0, len(params))
	for k := range params {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		vs := params[k]
		switch k {
		case "_type":
			for _, v := range vs {
				for _, t := range strings.Split(v, ",") {
					if t = strings.TrimSpace(t); t == "" {
						return nil, invalid("_type: an empty type name")
					}
					if !slices.Contains(r.Types, t) {
						r.Types = append(r.Types, t)
					}
				}
			}
		case "_since":
			if len(vs) != 1 {
				return nil, invalid("_since: give it once")
			}
			t, err := time.Parse(time.RFC3339Nano, vs[0])
			if err != nil {
				return nil, invalid(fmt.Sprintf("_since %q is not a FHIR instant such as 2026-01-02T03:04:05Z", vs[0]))
			}
			r.Since = t.UTC()
		case "_outputFormat":
			if len(vs) != 1 || !slices.Contains(outputFormats, vs[0]) {
				return nil, invalid(fmt.Sprintf("_outputFormat %q: fhirbox writes %s only", strings.Join(vs, ","), strings.Join(outputFormats, ", ")))
			}
		default:
			reason, ok := unsupported[k]
			if !ok {
				reason = k + " is not a parameter of $export"
			}
			if !lenient {
				return nil, invalid(reason + " (send Prefer: handling=lenient to export without it)")
			}
			r.Ignored = append(r.Ignored, reason)
		}
	}
	return r, nil
}

func invalid(msg string) error {
	return &resources.Error{Code: resources.CodeInvalid, Message: msg}
}
