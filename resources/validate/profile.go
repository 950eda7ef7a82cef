package validate

import (
	"errors"
	"fmt"
	"strings"
)

// Profile is a StructureDefinition that constrains a resource type, compiled: what of
// it fhirbox checks (conformance V7) is each element's cardinality (min, max) and its
// fixed[x] and pattern[x] values. Slices (elements with a sliceName, or below one),
// invariants, bindings and type restrictions are not checked.
type Profile struct {
	URL   string
	Type  string
	rules []rule
}

// rule is one element's constraints.
type rule struct {
	path     string   // the element's path, for messages
	segs     []string // its JSON steps below the root; a choice's ends in [x]
	min, max int      // max -1: unbounded; min -1, max -2: not constrained
	fixed    any
	pattern  any
	kind     string // fixedUri, patternCodeableConcept: the name, for messages
}

// CompileProfile compiles a StructureDefinition document: its snapshot's elements, or
// its differential's when it has no snapshot.
func CompileProfile(sd map[string]any) (*Profile, error) {
	typ, _ := sd["type"].(string)
	u, _ := sd["url"].(string)
	if typ == "" {
		return nil, errors.New("the StructureDefinition has no type")
	}
	p := &Profile{URL: u, Type: typ}
	var elems []any
	for _, part := range []string{"snapshot", "differential"} {
		if m, ok := sd[part].(map[string]any); ok {
			if elems, ok = m["element"].([]any); ok && len(elems) > 0 {
				break
			}
		}
	}
	for _, x := range elems {
		e, ok := x.(map[string]any)
		if !ok {
			continue
		}
		path, _ := e["path"].(string)
		id, _ := e["id"].(string)
		if _, sliced := e["sliceName"]; sliced || strings.Contains(id, ":") {
			continue
		}
		segs := strings.Split(path, ".")
		if len(segs) < 2 || segs[0] != typ {
			continue
		}
		r := rule{path: path, segs: segs[1:], min: -1, max: -2}
		if n, ok := numberText(e["min"]); ok {
			fmt.Sscan(n, &r.min)
		}
		if m, ok := e["max"].(string); ok {
			r.max = parseMax(m)
		}
		for k, v := range e {
			if strings.HasPrefix(k, "fixed") && len(k) > 5 {
				r.fixed, r.kind = v, k
			}
			if strings.HasPrefix(k, "pattern") && len(k) > 7 {
				r.pattern, r.kind = v, k
			}
		}
		if r.min > 0 || r.max >= 0 || r.fixed != nil || r.pattern != nil {
			p.rules = append(p.rules, r)
		}
	}
	return p, nil
}

// Check checks doc, a resource of typ, against p.
func (p *Profile) Check(typ string, doc map[string]any) []Issue {
	c := &checker{}
	if typ != p.Type {
		c.add(CodeStructure, typ+".meta.profile", fmt.Sprintf("profile %s constrains %s, not %s", p.URL, p.Type, typ))
		return c.done()
	}
	for _, r := range p.rules {
		parents := []located{{typ, doc}}
		for _, seg := range r.segs[:len(r.segs)-1] {
			var next []located
			for _, par := range parents {
				if m, ok := par.v.(map[string]any); ok {
					next = append(next, values(par.path, m, seg)...)
				}
			}
			parents = next
		}
		last := r.segs[len(r.segs)-1]
		for _, par := range parents {
			m, ok := par.v.(map[string]any)
			if !ok {
				continue
			}
			vals := values(par.path, m, last)
			where := par.path + "." + strings.TrimSuffix(last, "[x]")
			switch {
			case r.min > 0 && len(vals) < r.min:
				c.add(CodeRequired, where, fmt.Sprintf("profile %s: %s needs at least %d values, has %d", p.URL, r.path, r.min, len(vals)))
			case r.max >= 0 && len(vals) > r.max:
				c.add(CodeStructure, where, fmt.Sprintf("profile %s: %s allows at most %d values, has %d", p.URL, r.path, r.max, len(vals)))
			}
			for _, val := range vals {
				if r.fixed != nil && !equal(r.fixed, val.v) {
					c.add(CodeValue, val.path, fmt.Sprintf("profile %s: %s must be exactly the %s given", p.URL, r.path, r.kind))
				}
				if r.pattern != nil && !matches(r.pattern, val.v) {
					c.add(CodeValue, val.path, fmt.Sprintf("profile %s: %s must match the %s given", p.URL, r.path, r.kind))
				}
			}
		}
	}
	return c.done()
}

// located is a value and its FHIRPath location.
type located struct {
	path string
	v    any
}

// values lists the values of the element seg of m: a list's items, one value, or
// none; a choice step (value[x]) takes whichever type is present.
func values(path string, m map[string]any, seg string) []located {
	key := seg
	if base, ok := strings.CutSuffix(seg, "[x]"); ok {
		key = ""
		for k := range m {
			if len(k) > len(base) && strings.HasPrefix(k, base) && k[len(base)] >= 'A' && k[len(base)] <= 'Z' {
				key = k
				break
			}
		}
		if key == "" {
			return nil
		}
	}
	v, ok := m[key]
	if !ok || v == nil {
		return nil
	}
	if list, ok := v.([]any); ok {
		out := make([]located, 0, len(list))
		for i, x := range list {
			if x != nil {
				out = append(out, located{fmt.Sprintf("%s.%s[%d]", path, key, i), x})
			}
		}
		return out
	}
	return []located{{path + "." + key, v}}
}

// equal compares JSON values, numbers by their text.
func equal(a, b any) bool {
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, v := range x {
			if !equal(v, y[k]) {
				return false
			}
		}
		return true
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !equal(x[i], y[i]) {
				return false
			}
		}
		return true
	}
	if sa, ok := numberText(a); ok {
		sb, ok := numberText(b)
		return ok && sa == sb
	}
	return a == b
}

// matches reports whether v has at least what pattern has (FHIR's pattern[x]): an
// object's every element, a list's every item matched by some item of v's list.
func matches(pattern, v any) bool {
	switch x := pattern.(type) {
	case map[string]any:
		y, ok := v.(map[string]any)
		if !ok {
			return false
		}
		for k, pv := range x {
			if !matches(pv, y[k]) {
				return false
			}
		}
		return true
	case []any:
		y, ok := v.([]any)
		if !ok {
			return false
		}
		for _, pi := range x {
			found := false
			for _, vi := range y {
				if matches(pi, vi) {
					found = true
					break
				}
			}
			if !found {
				return false
			}
		}
		return true
	}
	return equal(pattern, v)
}
