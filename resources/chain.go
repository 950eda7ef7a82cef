package resources

import (
	"context"
	"slices"
	"sort"
	"strings"
)

// Chained parameters (FHIR search §3.1.1.6) and reverse chaining with _has (§3.1.1.7).
//
// A chained name is links followed by an ordinary parameter: "subject:Patient.name",
// "subject.name" (every target type of subject that has name),
// "subject:Patient.organization.name", "_has:Observation:subject:code", and mixes of
// them. The parser turns it into one Clause whose Chain lists the links; the stores
// write each link as a subquery over search_reference.

// hasPrefix starts a reverse chain: _has:Type:reference:parameter.
const hasPrefix = "_has:"

// isChained reports whether a parameter name is a chain or a reverse chain. No search
// parameter has a "." in its name; "_has" alone is a malformed reverse chain, refused as
// such rather than ignored as unknown.
func isChained(name string) bool {
	return name == "_has" || strings.HasPrefix(name, hasPrefix) || strings.Contains(name, ".")
}

// chainLinks counts the links of a chained name as written, without looking anything
// up (so that a request past the limits is refused before any work), and returns the
// last part, "parameter[:modifier]". A name that is not chained has no links.
func chainLinks(name string) (links int, last string) {
	if !isChained(name) {
		return 0, name
	}
	rest := name
	for {
		if rest == "_has" || strings.HasPrefix(rest, hasPrefix) {
			links++
			parts := strings.SplitN(strings.TrimPrefix(rest, hasPrefix), ":", 3)
			if len(parts) < 3 {
				return links, ""
			}
			rest = parts[2]
			continue
		}
		i := strings.IndexByte(rest, '.')
		if i < 0 {
			return links, rest
		}
		links++
		rest = rest[i+1:]
	}
}

// chained parses one occurrence of a chained parameter name=raw. An unknown first
// parameter is treated like any unknown parameter (ignored, or refused when strict);
// every other mistake in the chain is a CodeInvalid error naming it: the request says
// it wants a chain, and answering without it would be a silently wrong answer.
func (p *searchParser) chained(name, raw string) error {
	from := []*TypeDef{p.td}
	var links []ChainLink
	var prefix strings.Builder
	rest := name
	for {
		if rest == "_has" || strings.HasPrefix(rest, hasPrefix) {
			link, inner, err := p.hasLink(name, rest, from)
			if err != nil {
				return err
			}
			links = append(links, link)
			prefix.WriteString(hasPrefix + link.Types[0] + ":" + link.Param.Name + ":")
			td, _ := p.reg.Type(link.Types[0])
			from, rest = []*TypeDef{td}, inner
			continue
		}
		head, tail, ok := strings.Cut(rest, ".")
		if !ok {
			break
		}
		link, to, err := p.forwardLink(name, head, tail, from, len(links) == 0)
		if err != nil || link == nil {
			return err // nil, nil: an unknown first parameter, ignored
		}
		links = append(links, *link)
		prefix.WriteString(head + ".")
		from, rest = to, tail
	}
	pname, _, _ := strings.Cut(rest, ":")
	params, err := chainParams(name, pname, from)
	if err != nil {
		return err
	}
	sp := params[0]
	if len(params) > 1 && sp.Type == TypeReference {
		sp = mergedTargets(params)
	}
	return p.paramClause(sp, links, prefix.String(), name, rest, raw)
}

// chainParams returns parameter pname of every type in from, all of one search type.
func chainParams(name, pname string, from []*TypeDef) ([]*SearchParam, error) {
	params := make([]*SearchParam, len(from))
	for i, td := range from {
		if params[i] = td.Param(pname); params[i] == nil {
			return nil, invalid(name, "%s: %s has no search parameter %q", name, td.Name, pname)
		}
		if params[i].Type != params[0].Type {
			return nil, invalid(name, "%s: %s is a %s parameter of %s but a %s parameter of %s; name the target type in the chain (reference:Type.%s)",
				name, pname, params[0].Type, from[0].Name, params[i].Type, td.Name, pname)
		}
	}
	return params, nil
}

// mergedTargets is a reference parameter that several types share by name, targeting
// what any of them does, for parsing the values at the end of an untyped chain.
func mergedTargets(params []*SearchParam) *SearchParam {
	m := *params[0]
	m.Targets = nil
	for _, sp := range params {
		if len(sp.Targets) == 0 {
			m.Targets = nil
			return &m
		}
		for _, t := range sp.Targets {
			if !slices.Contains(m.Targets, t) {
				m.Targets = append(m.Targets, t)
			}
		}
	}
	sort.Strings(m.Targets)
	return &m
}

// forwardLink parses head, "reference[:Type]", a link from the types in from, followed
// by tail. It returns the types the link leads to: the type named, or else every target
// of the reference that has the parameter tail starts with.
func (p *searchParser) forwardLink(name, head, tail string, from []*TypeDef, first bool) (*ChainLink, []*TypeDef, error) {
	ref, typ, _ := strings.Cut(head, ":")
	if first && p.td.Param(ref) == nil {
		p.ignore(name) // refused at the end when strict, with every other one
		return nil, nil, nil
	}
	params, err := chainParams(name, ref, from)
	if err != nil {
		return nil, nil, err
	}
	if params[0].Type != TypeReference {
		return nil, nil, invalid(name, "%s: %s is a %s parameter of %s, not a reference: only references can be chained",
			name, ref, params[0].Type, from[0].Name)
	}
	targets := mergedTargets(params).Targets // empty: any type
	if typ != "" {
		td, ok := p.reg.Type(typ)
		if !ok || !typeName.MatchString(typ) {
			return nil, nil, invalid(name, "%s: unknown resource type %q", name, typ)
		}
		if len(targets) > 0 && !slices.Contains(targets, typ) {
			return nil, nil, invalid(name, "%s: %s is not a target of %s (%s)", name, typ, ref, strings.Join(targets, ", "))
		}
		if err := p.crosses(name, typ); err != nil {
			return nil, nil, err
		}
		return &ChainLink{Param: params[0], Types: []string{typ}}, []*TypeDef{td}, nil
	}
	next := tail
	if i := strings.IndexAny(next, ":."); i >= 0 {
		next = next[:i]
	}
	if next == "_has" {
		return nil, nil, invalid(name, "%s: a chain into _has names the type it goes through (%s:Type._has:…)", name, ref)
	}
	if len(targets) == 0 {
		targets = p.reg.Types()
	}
	var to []*TypeDef
	var types []string
	for _, t := range targets {
		if td, ok := p.reg.Type(t); ok && td.Param(next) != nil && p.crosses(name, t) == nil {
			to, types = append(to, td), append(types, t)
		}
	}
	if len(to) == 0 {
		return nil, nil, invalid(name, "%s: no target type of %s has a search parameter %q; name the type (%s:Type.%s)", name, ref, next, ref, next)
	}
	return &ChainLink{Param: params[0], Types: types}, to, nil
}

// hasLink parses rest, "_has:Type:reference:inner", a reverse link to the resources of
// Type whose reference refers to the resources of from, and returns inner.
func (p *searchParser) hasLink(name, rest string, from []*TypeDef) (ChainLink, string, error) {
	parts := strings.SplitN(strings.TrimPrefix(rest, hasPrefix), ":", 3)
	if rest == "_has" || len(parts) < 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return ChainLink{}, "", invalid(name, "%s: _has takes the form _has:Type:reference:parameter (e.g. _has:Observation:subject:code)", name)
	}
	typ, ref, inner := parts[0], parts[1], parts[2]
	td, ok := p.reg.Type(typ)
	if !ok || !typeName.MatchString(typ) {
		return ChainLink{}, "", invalid(name, "%s: unknown resource type %q", name, typ)
	}
	if err := p.crosses(name, typ); err != nil {
		return ChainLink{}, "", err
	}
	sp := td.Param(ref)
	if sp == nil {
		return ChainLink{}, "", invalid(name, "%s: %s has no search parameter %q", name, typ, ref)
	}
	if sp.Type != TypeReference {
		return ChainLink{}, "", invalid(name, "%s: %s of %s is a %s parameter, not a reference", name, ref, typ, sp.Type)
	}
	if len(from) == 1 && from[0] == p.td && p.q.Type == "" {
		// The first link of a system-level search: it must be able to refer to each
		// of the searched types, as a parameter must be one every type has.
		from = nil
		for _, t := range p.q.Types {
			if f, ok := p.reg.Type(t); ok {
				from = append(from, f)
			}
		}
	}
	for _, f := range from {
		if len(sp.Targets) > 0 && !slices.Contains(sp.Targets, f.Name) {
			return ChainLink{}, "", invalid(name, "%s: %s of %s never refers to %s (it refers to %s)", name, ref, typ, f.Name, strings.Join(sp.Targets, ", "))
		}
	}
	return ChainLink{Param: sp, Types: []string{typ}, Reverse: true}, inner, nil
}

// crosses refuses a link between fhirbox's own types (User, Client, AccessPolicy…) and
// FHIR types, either way: whoever may search or write Observations could otherwise
// learn a User's roles (Observation?subject:User.roles=admin with a subject they wrote)
// or which policies exist.
func (p *searchParser) crosses(name, typ string) error {
	if p.reg.Own(typ) != p.reg.Own(p.td.Name) {
		return invalid(name, "%s: a chain cannot lead from %s to %s (fhirbox's own types and FHIR types are not chained)", name, p.td.Name, typ)
	}
	return nil
}

// ChainTypes returns the types that q's chains and _has lead to, each once, in the
// order met.
func (q *Query) ChainTypes() []string {
	var types []string
	for _, c := range q.Clauses {
		for _, l := range c.Chain {
			for _, t := range l.Types {
				if !slices.Contains(types, t) {
					types = append(types, t)
				}
			}
		}
	}
	return types
}

// chainCheckKey carries the check of WithChainCheck.
type chainCheckKey struct{}

// ChainCheck decides whether a search may lead, through chains or _has, to resources
// of each of types; a non-nil error (e.g. a CodeForbidden *Error) refuses the search.
// A non-nil Confinement confines the linked resources of those types beyond what the
// context does (the decision on a type allowed it only within compartments).
type ChainCheck func(ctx context.Context, types []string) (Confinement, error)

// WithChainCheck returns ctx carrying check, which the searches of the Service (and
// the conditional operations, which search) apply before running a query with chains:
// a chain tells which resources of the types it leads to exist and what they hold
// (Patient?_has:Observation:subject:code=X names the patients with such an
// Observation), so whoever may not search those types must not learn it that way.
func WithChainCheck(ctx context.Context, check ChainCheck) context.Context {
	return context.WithValue(ctx, chainCheckKey{}, check)
}

// checkChains applies the ChainCheck of ctx, if any, to the types q's chains lead to,
// and keeps in q what it confines them to.
func checkChains(ctx context.Context, q *Query) error {
	check, _ := ctx.Value(chainCheckKey{}).(ChainCheck)
	if check == nil {
		return nil
	}
	if types := q.ChainTypes(); len(types) > 0 {
		conf, err := check(ctx, types)
		if err != nil {
			return err
		}
		q.chainConf = conf
	}
	return nil
}
