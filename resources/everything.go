package resources

import (
	"context"
	"net/url"
	"slices"
	"strings"

	"github.com/fhirbox/fhirbox/resources/fhirdate"
)

// EverythingTypes returns the types Patient $everything reaches, narrowed by the _type
// parameter of params when given (an unknown type, or one no Patient compartment holds,
// is a CodeInvalid error naming it): the Patient and every type of the R4 Patient
// compartment.
func (s *Service) EverythingTypes(params url.Values) ([]string, error) {
	all := CompartmentTypes("Patient")
	if len(params["_type"]) == 0 {
		return all, nil
	}
	var types []string
	for _, raw := range params["_type"] {
		for _, t := range strings.Split(raw, ",") {
			t = strings.TrimSpace(t)
			if t == "" || slices.Contains(types, t) {
				continue
			}
			if !slices.Contains(all, t) {
				if _, ok := s.reg.Type(t); !ok {
					return nil, invalid("_type", "_type: unknown resource type %q", t)
				}
				return nil, invalid("_type", "_type: %s is in no Patient compartment, so $everything holds none of it but what the compartment's resources refer to", t)
			}
			types = append(types, t)
		}
	}
	return types, nil
}

// everythingParams are the parameters of Patient $everything that fhirbox applies, besides
// the paging ones; start and end (the care dates of R4's operation) are refused: each type
// dates its care in another element, and ignoring them would widen the answer.
var everythingParams = []string{"_since", "_type", "_count", "_format", "_pretty", "_page", PageSetParam, "_total", "_lastUpdated"}

// Everything is Patient $everything (R4 OperationDefinition Patient-everything,
// conformance F46): the Patient id and every resource of its compartment among types (the
// caller narrows them to those it may search), updated at or after _since when given,
// paged as a system-level search, with what they refer to included (search.mode
// include) when the Bundle is written. The compartment is a confinement of the search,
// as a patient-scoped token's is, so paging, totals and access checks are a search's.
//
// With id empty it is the type-level operation: the compartments of every patient the
// caller may see, which is what the caller may search of those types.
func (s *Service) Everything(ctx context.Context, id string, types []string, params url.Values, opts SearchOptions) (*SearchResult, *Query, error) {
	if id != "" {
		if _, err := s.Read(ctx, "Patient", id); err != nil {
			return nil, nil, err
		}
	}
	sp := url.Values{}
	for k, vs := range params {
		switch {
		case k == "start" || k == "end":
			return nil, nil, invalid(k, "%s: the care-date bounds of $everything are not supported (each type dates its care in another element); use _since to get what changed", k)
		case k == "_since":
			if len(vs) != 1 {
				return nil, nil, invalid(k, "_since: give one instant")
			}
			if _, _, err := fhirdate.ParseRange(vs[0]); err != nil || len(vs[0]) < len("2006-01-02T15:04:05Z") {
				return nil, nil, invalid(k, "_since: %q is not an instant (e.g. 2026-01-02T10:00:00Z)", vs[0])
			}
			sp.Set("_lastUpdated", "ge"+vs[0])
		case slices.Contains(everythingParams, k):
			sp[k] = vs
		case opts.Strict:
			return nil, nil, invalid(k, "%s is no parameter of Patient $everything (it takes _since, _type and _count)", k)
		}
	}
	if id != "" {
		ctx = WithConfinement(ctx, compartmentConfinement{Compartment{Type: "Patient", ID: id}})
	}
	res, q, err := s.SystemSearch(ctx, types, sp, opts)
	if err != nil {
		return nil, q, err
	}
	for k := range params {
		if !slices.Contains(everythingParams, k) {
			q.Ignored = append(q.Ignored, Ignored{Param: k, Reason: k + " is no parameter of Patient $everything (it takes _since, _type and _count)"})
		}
	}
	// What the page refers to, whatever its type: R4's "any resource referenced from
	// those". Added by Service.Include, each one checked as a read of it would be.
	for _, t := range types {
		td, ok := s.reg.Type(t)
		if !ok {
			continue
		}
		if params := referenceParams(td, ""); len(params) > 0 {
			q.Includes = append(q.Includes, Include{Source: t, Params: params, Value: t + ":*"})
		}
	}
	q.Operation = "Patient/$everything"
	if id != "" {
		q.Operation = "Patient/" + id + "/$everything"
	}
	return res, q, nil
}

// compartmentConfinement confines a search to one compartment, for the types it can
// hold: the compartment of an operation, not of a caller.
type compartmentConfinement struct{ c Compartment }

func (c compartmentConfinement) For(typ string) ([]Reach, bool) {
	if !c.c.Holds(typ) {
		return nil, false
	}
	return []Reach{{Compartment: &c.c}}, true
}

func (c compartmentConfinement) Describe(string) string {
	return "the compartment of " + c.c.String()
}

func (c compartmentConfinement) Key() string { return "compartment\x00" + c.c.String() }
