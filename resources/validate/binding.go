package validate

import (
	"fmt"
	"sort"

	"github.com/fhirbox/fhirbox/resources/r4"
)

// valueSet is an expanded value set of a required binding.
type valueSet struct {
	url      string
	bySystem map[string]map[string]bool
	any      map[string]bool // every code, whatever its system
}

func newValueSet(vs r4.ValueSet) *valueSet {
	out := &valueSet{url: vs.URL, bySystem: map[string]map[string]bool{}, any: map[string]bool{}}
	for _, inc := range vs.Include {
		codes := map[string]bool{}
		for _, c := range inc.Codes {
			codes[c] = true
			out.any[c] = true
		}
		out.bySystem[inc.System] = codes
	}
	return out
}

// has reports whether the value set holds code in system ("" for any system).
func (vs *valueSet) has(system, code string) bool {
	if system == "" {
		return vs.any[code]
	}
	return vs.bySystem[system][code]
}

// code checks a code element's value against its required binding (conformance V5).
func (c *checker) code(path string, vs *valueSet, code string) {
	if !vs.any[code] {
		c.add(CodeCodeInvalid, path, fmt.Sprintf("%q is not a code of the value set %s (a required binding)", clip(code), vs.url))
	}
}

// coding checks a Coding bound to a required value set: its system, when given, must
// be one of the value set's and its code one of that system's.
func (c *checker) coding(path string, vs *valueSet, m map[string]any) {
	code, _ := m["code"].(string)
	if code == "" {
		return
	}
	sys, _ := m["system"].(string)
	if !vs.has(sys, code) {
		c.add(CodeCodeInvalid, path, fmt.Sprintf("%s|%s is not a code of the value set %s (a required binding)", sys, clip(code), vs.url))
	}
}

// concept checks a CodeableConcept bound to a required value set: one of its codings
// with a code must be in the value set (a concept of text alone passes).
func (c *checker) concept(path string, vs *valueSet, m map[string]any) {
	codings, _ := m["coding"].([]any)
	seen := false
	for _, x := range codings {
		cm, _ := x.(map[string]any)
		code, _ := cm["code"].(string)
		if code == "" {
			continue
		}
		seen = true
		sys, _ := cm["system"].(string)
		if vs.has(sys, code) {
			return
		}
	}
	if seen {
		c.add(CodeCodeInvalid, path+".coding", fmt.Sprintf("no coding is a code of the value set %s (a required binding)", vs.url))
	}
}

func sortStrings(s []string) { sort.Strings(s) }
