package main

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/fhirbox/fhirbox/resources/r4"
)

// The files of the tarball that hold CodeSystems and ValueSets: FHIR's own, and the
// HL7 v3 and v2 terminologies that some of FHIR's value sets draw on.
const (
	valueSetsPath = "package/dist/fhir/r4/valuesets.json"
	v3Path        = "package/dist/fhir/r4/v3-codesystems.json"
	v2Path        = "package/dist/fhir/r4/v2-tables.json"
)

// sourceTerm is a CodeSystem or ValueSet of the source, only the fields read.
type sourceTerm struct {
	ResourceType string        `json:"resourceType"`
	URL          string        `json:"url"`
	Content      string        `json:"content"` // CodeSystem: complete, fragment, not-present…
	Concept      []termConcept `json:"concept"`
	Compose      *struct {
		Include []termInclude `json:"include"`
		Exclude []termInclude `json:"exclude"`
	} `json:"compose"`
	Expansion *struct {
		Contains []termContains `json:"contains"`
	} `json:"expansion"`
}

type termConcept struct {
	Code    string        `json:"code"`
	Concept []termConcept `json:"concept"`
}

type termInclude struct {
	System   string            `json:"system"`
	Concept  []termConcept     `json:"concept"`
	Filter   []json.RawMessage `json:"filter"`
	ValueSet []string          `json:"valueSet"`
}

type termContains struct {
	System   string         `json:"system"`
	Code     string         `json:"code"`
	Contains []termContains `json:"contains"`
}

// terminology is every CodeSystem and ValueSet of the source by URL.
type terminology struct {
	systems   map[string]*sourceTerm
	valueSets map[string]*sourceTerm
}

func loadTerminology(files ...[]byte) (*terminology, error) {
	t := &terminology{systems: map[string]*sourceTerm{}, valueSets: map[string]*sourceTerm{}}
	for _, data := range files {
		var b bundle
		if err := json.Unmarshal(data, &b); err != nil {
			return nil, err
		}
		for _, e := range b.Entry {
			var r sourceTerm
			if err := json.Unmarshal(e.Resource, &r); err != nil {
				return nil, err
			}
			switch r.ResourceType {
			case "CodeSystem":
				if _, dup := t.systems[r.URL]; !dup {
					t.systems[r.URL] = &r
				}
			case "ValueSet":
				if _, dup := t.valueSets[r.URL]; !dup {
					t.valueSets[r.URL] = &r
				}
			}
		}
	}
	return t, nil
}

// expand lists the codes of the value set at url by system, or says why they cannot
// be listed without a terminology server: a filter, a code system that is not in the
// package or not complete in it (SNOMED CT, UCUM, BCP-47, MIME types…), a value set
// that names one of those.
func (t *terminology) expand(url string, depth int) (map[string]map[string]bool, error) {
	if depth > 8 {
		return nil, fmt.Errorf("value sets nested too deep")
	}
	vs, ok := t.valueSets[url]
	if !ok {
		return nil, fmt.Errorf("value set not in the package")
	}
	out := map[string]map[string]bool{}
	add := func(system, code string) {
		if out[system] == nil {
			out[system] = map[string]bool{}
		}
		out[system][code] = true
	}
	if vs.Compose == nil {
		if vs.Expansion == nil {
			return nil, fmt.Errorf("value set has neither compose nor expansion")
		}
		var walk func([]termContains)
		walk = func(cs []termContains) {
			for _, c := range cs {
				if c.Code != "" {
					add(c.System, c.Code)
				}
				walk(c.Contains)
			}
		}
		walk(vs.Expansion.Contains)
		return out, nil
	}
	for _, inc := range vs.Compose.Include {
		if len(inc.Filter) > 0 {
			return nil, fmt.Errorf("include filters %s", inc.System)
		}
		if len(inc.ValueSet) > 0 {
			if inc.System != "" || len(inc.Concept) > 0 {
				return nil, fmt.Errorf("include intersects a system with value sets")
			}
			for _, u := range inc.ValueSet {
				sub, err := t.expand(strings.Split(u, "|")[0], depth+1)
				if err != nil {
					return nil, fmt.Errorf("%s: %w", u, err)
				}
				for sys, codes := range sub {
					for c := range codes {
						add(sys, c)
					}
				}
			}
			continue
		}
		if len(inc.Concept) > 0 {
			for _, c := range inc.Concept {
				add(inc.System, c.Code)
			}
			continue
		}
		cs, ok := t.systems[inc.System]
		if !ok {
			return nil, fmt.Errorf("code system %s not in the package", inc.System)
		}
		if cs.Content != "complete" {
			return nil, fmt.Errorf("code system %s is %q in the package", inc.System, cs.Content)
		}
		var walk func([]termConcept)
		walk = func(cs []termConcept) {
			for _, c := range cs {
				add(inc.System, c.Code)
				walk(c.Concept)
			}
		}
		walk(cs.Concept)
	}
	for _, exc := range vs.Compose.Exclude {
		if len(exc.Filter) > 0 || len(exc.ValueSet) > 0 || len(exc.Concept) == 0 {
			return nil, fmt.Errorf("exclude needs a terminology server")
		}
		for _, c := range exc.Concept {
			delete(out[exc.System], c.Code)
		}
	}
	return out, nil
}

// addBindings expands the value sets of the required bindings of els's elements into
// els.ValueSets; a binding whose codes cannot be listed is dropped from its element
// (its codes are not checked) and its value set recorded in els.Unexpanded with why.
func addBindings(els *r4.Elements, t *terminology) {
	expanded := map[string]*r4.ValueSet{}
	failed := map[string]string{}
	for i := range els.Structures {
		s := &els.Structures[i]
		for j := range s.Elements {
			el := &s.Elements[j]
			if el.Binding == "" {
				continue
			}
			url := el.Binding
			if _, ok := expanded[url]; ok {
				continue
			}
			if _, ok := failed[url]; ok {
				el.Binding = ""
				continue
			}
			codes, err := t.expand(url, 0)
			if err == nil && len(codes) == 0 {
				err = fmt.Errorf("no codes")
			}
			if err != nil {
				failed[url] = err.Error()
				el.Binding = ""
				continue
			}
			vs := &r4.ValueSet{URL: url}
			for sys, cs := range codes {
				inc := r4.ValueSetInclude{System: sys}
				for c := range cs {
					inc.Codes = append(inc.Codes, c)
				}
				sort.Strings(inc.Codes)
				vs.Include = append(vs.Include, inc)
			}
			sort.Slice(vs.Include, func(a, b int) bool { return vs.Include[a].System < vs.Include[b].System })
			expanded[url] = vs
		}
	}
	for _, vs := range expanded {
		els.ValueSets = append(els.ValueSets, *vs)
	}
	sort.Slice(els.ValueSets, func(a, b int) bool { return els.ValueSets[a].URL < els.ValueSets[b].URL })
	for url, why := range failed {
		els.Unexpanded = append(els.Unexpanded, r4.Unexpanded{URL: url, Reason: why})
	}
	sort.Slice(els.Unexpanded, func(a, b int) bool { return els.Unexpanded[a].URL < els.Unexpanded[b].URL })
}
