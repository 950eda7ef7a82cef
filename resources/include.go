package resources

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// Include is one _include or _revinclude parameter of a search.
//
//	_include=Observation:subject          the resources the matches' subject refers to
//	_include=Observation:subject:Patient  only those that are Patients
//	_include=Observation:* (or *)         every reference parameter of the searched type
//	_revinclude=Observation:subject       the Observations whose subject is a match
//	_include:iterate=Patient:organization also for the resources the includes added,
//	                                      until nothing new is found (:recurse is R4's
//	                                      older name for :iterate)
type Include struct {
	// Reverse is set for _revinclude: the resources of Source whose Params refer to a
	// resource of the Bundle are added; for _include, the resources that the Params of
	// Bundle resources of type Source refer to.
	Reverse bool
	// Iterate is set for :iterate: the parameter applies to the included resources as
	// well as to the matches.
	Iterate bool
	// Source is the type whose reference parameters are read. Empty only for
	// _include:iterate=*, which follows every reference parameter of every type.
	Source string
	// Params are the reference parameters followed: one, or every one of Source that can
	// refer to Target for "*" (nil when Source is empty).
	Params []*SearchParam
	// Target restricts the type at the referred end: of the resources included
	// (_include) or of those whose referrers are (_revinclude). Empty: any.
	Target string
	// Value is the parameter's value as Query.Used shows it.
	Value string
}

// Key is the parameter name of inc in Query.Used: _include or _revinclude, with :iterate.
func (inc Include) Key() string {
	k := "_include"
	if inc.Reverse {
		k = "_revinclude"
	}
	if inc.Iterate {
		k += ":iterate"
	}
	return k
}

// isInclude reports whether a parameter name without its modifier is _include or
// _revinclude.
func isInclude(name string) bool { return name == "_include" || name == "_revinclude" }

// countNonEmpty counts the values of a parameter that are not empty (empty ones count as
// absent).
func countNonEmpty(vs []string) int {
	n := 0
	for _, v := range vs {
		if v != "" {
			n++
		}
	}
	return n
}

// include parses one _include or _revinclude occurrence, name[:iterate]=raw.
func (p *searchParser) include(name, raw string) error {
	base, mod, _ := strings.Cut(name, ":")
	inc := Include{Reverse: base == "_revinclude"}
	switch mod {
	case "":
	case "iterate", "recurse":
		inc.Iterate = true
	default:
		return invalid(name, "%s: unknown modifier :%s (%s takes :iterate, or its R4 synonym :recurse)", name, mod, base)
	}
	bad := func(format string, args ...any) error {
		return invalid(name, "%s=%s: %s", name, raw, fmt.Sprintf(format, args...))
	}
	searched := p.td.Name
	// A system-level search (GET [base]?_type=…) searches several types: a plain include
	// may start from any of them, and a plain _revinclude may point at any of them.
	system := p.q.Type == "" && len(p.q.Types) > 0
	isSearched := func(typ string) bool {
		if system {
			return slices.Contains(p.q.Types, typ)
		}
		return typ == searched
	}
	if raw == "*" {
		if inc.Reverse {
			return bad("name the type whose references point at the matches, as in %s=Observation:*", name)
		}
		if system && !inc.Iterate {
			return bad("a system-level search has matches of several types: name the source type, as in %s=Observation:*", name)
		}
		inc.Value = "*"
		if !inc.Iterate {
			inc.Source = searched
			inc.Params = referenceParams(p.td, "")
		}
		return p.addInclude(inc)
	}
	parts := strings.Split(raw, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return bad("the value is SourceType:parameter, SourceType:parameter:TargetType, SourceType:* or *")
	}
	std, ok := p.reg.Type(parts[0])
	if !ok {
		return bad("unknown resource type %q", parts[0])
	}
	inc.Source = std.Name
	if !inc.Reverse && !inc.Iterate && !isSearched(inc.Source) {
		return bad("the source type %s is not the searched type %s (%s follows the references of the matches; _include:iterate those of included resources too)", inc.Source, searched, name)
	}
	if len(parts) == 3 {
		ttd, ok := p.reg.Type(parts[2])
		if !ok {
			return bad("unknown resource type %q", parts[2])
		}
		inc.Target = ttd.Name
		if inc.Reverse && !inc.Iterate && !isSearched(inc.Target) {
			return bad("the target type %s is not the searched type %s", inc.Target, searched)
		}
	}
	// A plain _revinclude follows references to the matches only.
	refersTo := inc.Target
	if inc.Reverse && !inc.Iterate && !system {
		refersTo = searched
	}
	if pname := parts[1]; pname == "*" {
		inc.Params = referenceParams(std, refersTo)
		if len(inc.Params) == 0 && refersTo != "" {
			return bad("no reference parameter of %s refers to %s", inc.Source, refersTo)
		}
	} else {
		sp := std.Param(pname)
		switch {
		case sp == nil:
			return bad("unknown search parameter %q of %s", pname, inc.Source)
		case sp.Type != TypeReference:
			return bad("%s is a %s parameter of %s, not a reference parameter", pname, sp.Type, inc.Source)
		case refersTo != "" && !refersToType(sp, refersTo):
			return bad("%s is not a target of %s.%s (%s)", refersTo, inc.Source, pname, strings.Join(sp.Targets, ", "))
		}
		inc.Params = []*SearchParam{sp}
	}
	inc.Value = raw
	return p.addInclude(inc)
}

// addInclude records inc once: a parameter given twice is followed once.
func (p *searchParser) addInclude(inc Include) error {
	for _, have := range p.q.Includes {
		if have.Key() == inc.Key() && have.Value == inc.Value {
			return nil
		}
	}
	p.q.Includes = append(p.q.Includes, inc)
	p.q.Used.Add(inc.Key(), inc.Value)
	return nil
}

// referenceParams returns the public reference parameters of td, sorted by name, that can
// refer to target (any when empty).
func referenceParams(td *TypeDef, target string) []*SearchParam {
	var out []*SearchParam
	for _, name := range td.ParamNames() {
		if sp := td.Params[name]; sp.Type == TypeReference && (target == "" || refersToType(sp, target)) {
			out = append(out, sp)
		}
	}
	return out
}

// refersToType reports whether reference parameter sp may refer to a resource of typ.
func refersToType(sp *SearchParam, typ string) bool {
	return len(sp.Targets) == 0 || slices.Contains(sp.Targets, typ)
}

// IncludeQuery asks a store for the live resources linked to a set of resources by their
// reference index rows (see Store.Include).
type IncludeQuery struct {
	// From holds the resources whose links are followed: ids by type.
	From map[string][]string
	// Links are the links followed; a resource is returned when any link leads to it.
	Links []IncludeLink
	// Limit caps the resources returned; which are returned past it is unspecified.
	Limit int
}

// IncludeLink is one kind of link between resources by their reference index rows.
type IncludeLink struct {
	// Reverse links a resource of From to the resources of Source whose Params refer to
	// it; a forward link leads from a resource of From of type Source to the resources
	// its Params refer to.
	Reverse bool
	// Source is the type of the resources whose index rows are read.
	Source string
	// Params are the reference parameters read (names).
	Params []string
	// Target restricts the referred type: for a forward link, of the resources returned
	// (empty: any); for a reverse link it is the type of the resources of From that are
	// referred to, and never empty.
	Target string
}

// Include runs the _include and _revinclude parameters of q on the page of matches in
// res, and puts the resources they add into res.Included, sorted by type and id: the
// live resources that the page's reference index rows name (_include), or whose rows
// name a resource of the page (_revinclude), and, for :iterate, those of the resources so
// added, round after round until a round adds nothing. A resource is added once, and
// never when it is a match of the page.
//
// allow decides whether the caller may see a resource (the server asks its access
// policies as for a read of it); a resource it refuses is left out, and its own
// references are not followed. Each resource is asked about once.
//
// The resources reached, allowed or not, are capped by Limits.Includes: past it the
// includes stop, res.Included holds what was found until then, and res.IncludesIncomplete
// says why. Each round is one statement per store (more only when the ids would not fit
// into one).
func (s *Service) Include(ctx context.Context, q *Query, res *SearchResult, allow func(typ, id string) bool) error {
	if len(q.Includes) == 0 || len(res.Entries) == 0 || q.Summary == "count" {
		return nil
	}
	limit := s.opts.Limits.withDefaults().Includes
	type key struct{ typ, id string }
	seen := make(map[key]bool, len(res.Entries))
	frontier := map[string][]string{}
	for _, r := range res.Entries {
		seen[key{r.Type, r.ID}] = true
		frontier[r.Type] = append(frontier[r.Type], r.ID)
	}
	reached := 0
	for round := 0; len(frontier) > 0; round++ {
		links := s.includeLinks(q.Includes, frontier, round == 0)
		if len(links) == 0 {
			break
		}
		remaining := limit - reached
		// Every resource already seen may come back once more: asking for that many
		// beyond what is left shows whether the new ones go past the limit.
		found, err := s.store.Include(ctx, IncludeQuery{From: frontier, Links: links, Limit: remaining + 1 + len(seen)})
		if err != nil {
			return err
		}
		var added []*Resource
		for _, r := range found {
			if k := (key{r.Type, r.ID}); !seen[k] {
				seen[k] = true
				added = append(added, r)
			}
		}
		// Sorted, so that which resources are kept at the limit does not depend on the
		// order the database found them in.
		slices.SortFunc(added, compareResources)
		stop := len(added) > remaining
		if stop {
			added = added[:remaining]
			res.IncludesIncomplete = fmt.Sprintf("_include and _revinclude reached more than %d resources and stopped there: the Bundle holds some of what they ask for, not all (setting %s, key includes=%d)",
				limit, LimitsSetting, limit)
		}
		reached += len(added)
		frontier = map[string][]string{}
		for _, r := range added {
			if !allow(r.Type, r.ID) {
				continue
			}
			// An included resource is reached as a read of it would be.
			if ok, err := s.reachable(ctx, r); err != nil {
				return err
			} else if !ok {
				continue
			}
			res.Included = append(res.Included, r)
			frontier[r.Type] = append(frontier[r.Type], r.ID)
		}
		if stop {
			break
		}
	}
	slices.SortFunc(res.Included, compareResources)
	return nil
}

// includeLinks returns the links that incs follow from the resources of frontier: all of
// them from the matches (first), those with :iterate from included resources.
func (s *Service) includeLinks(incs []Include, frontier map[string][]string, first bool) []IncludeLink {
	types := make([]string, 0, len(frontier))
	for t := range frontier {
		types = append(types, t)
	}
	slices.Sort(types)
	var links []IncludeLink
	add := func(l IncludeLink, params []*SearchParam) {
		for _, sp := range params {
			l.Params = append(l.Params, sp.Name)
		}
		if len(l.Params) == 0 {
			return
		}
		for i, have := range links {
			if have.Reverse == l.Reverse && have.Source == l.Source && have.Target == l.Target {
				for _, p := range l.Params {
					if !slices.Contains(have.Params, p) {
						links[i].Params = append(links[i].Params, p)
					}
				}
				return
			}
		}
		links = append(links, l)
	}
	for _, inc := range incs {
		if !first && !inc.Iterate {
			continue
		}
		for _, typ := range types {
			switch {
			case inc.Reverse:
				if inc.Target != "" && inc.Target != typ {
					continue
				}
				var params []*SearchParam
				for _, sp := range inc.Params {
					if refersToType(sp, typ) {
						params = append(params, sp)
					}
				}
				add(IncludeLink{Reverse: true, Source: inc.Source, Target: typ}, params)
			case inc.Source == "":
				if td, ok := s.reg.Type(typ); ok {
					add(IncludeLink{Source: typ}, referenceParams(td, ""))
				}
			case inc.Source == typ:
				add(IncludeLink{Source: typ, Target: inc.Target}, inc.Params)
			}
		}
	}
	return links
}

// compareResources orders resources by type, then id.
func compareResources(a, b *Resource) int {
	if c := strings.Compare(a.Type, b.Type); c != 0 {
		return c
	}
	return strings.Compare(a.ID, b.ID)
}
