package resources

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// SystemTypes reads the _type parameter of a system-level search (GET [base]?_type=…):
// the types it names, in order, each once (several occurrences add up). Without _type it
// is every type of the registry, or with fhirOnly every FHIR R4 type (fhirbox's own
// types are not served under the FHIR base). An unknown type, or one of fhirbox's own
// under fhirOnly, is a CodeInvalid error naming it.
func (s *Service) SystemTypes(params url.Values, fhirOnly bool) ([]string, error) {
	var types []string
	for _, raw := range params["_type"] {
		for _, t := range strings.Split(raw, ",") {
			t = strings.TrimSpace(t)
			if t == "" || slices.Contains(types, t) {
				continue
			}
			td, ok := s.reg.Type(t)
			if !ok {
				return nil, invalid("_type", "_type: unknown resource type %q", t)
			}
			if fhirOnly && td.Own {
				return nil, invalid("_type", "_type: %s is fhirbox's own type, not a FHIR resource: search it at /%s?…", t, t)
			}
			types = append(types, t)
		}
	}
	if len(types) > 0 {
		return types, nil
	}
	for _, t := range s.reg.Types() {
		if !fhirOnly || !s.reg.Own(t) {
			types = append(types, t)
		}
	}
	return types, nil
}

// SystemSearch runs a system-level search over types (see SystemTypes; the caller may
// have narrowed them, say to those its policies allow) with the other parameters of
// params (see ParseSystemSearch), paged through stored result sets as SearchPages
// pages a search of one type: the set holds "Type/id" and its fingerprint the types.
func (s *Service) SystemSearch(ctx context.Context, types []string, params url.Values, opts SearchOptions) (*SearchResult, *Query, error) {
	q, err := ParseSystemSearch(s.reg, types, params, s.parseOptions(opts.Strict))
	if err != nil {
		return nil, nil, err
	}
	if err := s.prepare(ctx, q); err != nil {
		return nil, q, err
	}
	return s.pages(ctx, q, opts)
}

// ParseSystemSearch parses the search parameters of a system-level search over types
// (at least one) into a Query with an empty Type. A parameter is understood when every
// one of types has it with the same parameter type (the full-text ones, _list and the
// control parameters apply to all); one that only some have, or have with different
// types, is a CodeInvalid error naming a type that lacks it, whatever opts.Strict says:
// ignoring it would return the other types' resources unfiltered. _type is not read
// here (see SystemTypes) but kept in Query.Used as given, for the links.
func ParseSystemSearch(reg *Registry, types []string, params url.Values, opts ParseOptions) (*Query, error) {
	if len(types) == 0 {
		return nil, Internal(fmt.Errorf("system search without types"))
	}
	tds := make([]*TypeDef, len(types))
	for i, t := range types {
		td, ok := reg.Type(t)
		if !ok {
			return nil, invalid("_type", "_type: unknown resource type %q", t)
		}
		tds[i] = td
	}
	// A parameter is common when each type has it with the first one's parameter type:
	// one pass over every type's parameters counts them (a search at the base has some
	// 150 types); the type that lacks one is looked for only when it is asked for.
	common := &TypeDef{Name: systemName(types), Params: map[string]*SearchParam{}}
	type seen struct {
		p     *SearchParam
		n     int
		mixed bool
	}
	count := map[string]*seen{}
	for _, td := range tds {
		for name, p := range td.Params {
			if p.Internal {
				continue
			}
			switch c := count[name]; {
			case c == nil:
				count[name] = &seen{p: p, n: 1}
			case c.p.Type != p.Type:
				c.mixed = true
			default:
				c.n++
			}
		}
	}
	for name, c := range count {
		if c.n == len(tds) && !c.mixed {
			common.Params[name] = c.p
		}
	}
	lacking := func(name string) string {
		c := count[name]
		if c == nil {
			return ""
		}
		for _, td := range tds {
			switch op := td.Param(name); {
			case op == nil:
				return fmt.Sprintf("%s is not a search parameter of %s, one of the types searched", name, td.Name)
			case op.Type != c.p.Type:
				return fmt.Sprintf("%s is a %s parameter of some of the types searched but a %s parameter of %s: a system-level search takes only parameters every type has alike", name, c.p.Type, op.Type, td.Name)
			}
		}
		return ""
	}
	q := &Query{Types: types, OtherTypes: otherTypes(reg, types)}
	rest := url.Values{}
	for k, v := range params {
		if k != "_type" {
			rest[k] = v
		}
	}
	q, err := parseSearch(reg, common, q, rest, opts, lacking)
	if err != nil {
		return nil, err
	}
	if t := params["_type"]; len(t) > 0 {
		q.Used["_type"] = []string{strings.Join(t, ",")}
		q.Original["_type"] = t // the paging links repeat it as given
	}
	return q, nil
}

// otherTypes returns the registry's types that are not among types when those are
// more than half of them (a store then names the others, see Query.OtherTypes), else nil.
func otherTypes(reg *Registry, types []string) *[]string {
	all := reg.Types()
	if len(types) <= len(all)/2 {
		return nil
	}
	others := []string{}
	for _, t := range all {
		if !slices.Contains(types, t) {
			others = append(others, t)
		}
	}
	return &others
}

// systemName names the types of a system-level search in messages.
func systemName(types []string) string {
	if len(types) <= 3 {
		return strings.Join(types, ", ")
	}
	return fmt.Sprintf("%s, %s and %d other types", types[0], types[1], len(types)-2)
}
