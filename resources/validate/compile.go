package validate

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/fhirbox/fhirbox/resources/r4"
)

// node is a compiled object shape: a complex type, a resource type, or a backbone
// element defined inline in one.
type node struct {
	name     string            // its path in its definition ("Patient.contact"), for messages
	resource bool              // a resource's root: resourceType belongs
	elems    []*elem           // in definition order
	byName   map[string]*field // every JSON name: a choice element's under each type
}

// elem is one element of a node; a choice element has one field per type.
type elem struct {
	name     string // the JSON name, a choice element's without its type
	min, max int    // max -1: unbounded
	variants []*field
}

// field is one JSON name of an element.
type field struct {
	elem *elem  // the element it is a name of
	name string // the JSON name: given, valueQuantity
	seg  string // its FHIRPath step: given, value.ofType(Quantity)
	typ  string // the FHIR type of its values
	kind kind
	// inline is the shape of a backbone element defined in place (or through a
	// content reference); nil when the values are of the data type typ.
	inline *node
	// contained marks Resource.contained, whose resources share their container's ids.
	contained bool
	binding   *valueSet
	targets   map[string]bool // reference targets; nil: any resource type
}

type kind uint8

const (
	kindComplex kind = iota
	kindPrimitive
	kindResource
)

// New compiles els into a Validator.
func New(els *r4.Elements) (*Validator, error) {
	v := &Validator{roots: map[string]*node{}, resources: map[string]bool{}, regex: map[string]*regexp.Regexp{}}
	vsets := map[string]*valueSet{}
	for _, vs := range els.ValueSets {
		vsets[vs.URL] = newValueSet(vs)
	}
	kinds := map[string]string{}
	for _, s := range els.Structures {
		kinds[s.Name] = s.Kind
		if s.Kind == "primitive-type" && s.Regex != "" {
			re, err := regexp.Compile(`^(?:` + s.Regex + `)$`)
			if err != nil {
				return nil, fmt.Errorf("validate: the regex of %s: %w", s.Name, err)
			}
			v.regex[s.Name] = re
		}
		if s.Kind == "resource" && !s.Abstract {
			v.resources[s.Name] = true
		}
	}
	for _, s := range els.Structures {
		if s.Kind == "primitive-type" {
			continue
		}
		if err := v.compile(s, kinds, vsets); err != nil {
			return nil, err
		}
	}
	v.element = v.roots["Element"]
	if v.element == nil {
		return nil, fmt.Errorf("validate: no definition of Element")
	}
	return v, nil
}

// compile builds the nodes of one structure: its root and each backbone element.
func (v *Validator) compile(s r4.Structure, kinds map[string]string, vsets map[string]*valueSet) error {
	nodes := map[string]*node{s.Name: {name: s.Name, resource: s.Kind == "resource", byName: map[string]*field{}}}
	// Snapshots list every element after its parent, so one pass makes the nodes.
	for _, e := range s.Elements[1:] {
		parent := e.Path[:strings.LastIndexByte(e.Path, '.')]
		if nodes[parent] == nil {
			nodes[parent] = &node{name: parent, byName: map[string]*field{}}
		}
	}
	var refs []*field
	for _, e := range s.Elements[1:] {
		dot := strings.LastIndexByte(e.Path, '.')
		n := nodes[e.Path[:dot]]
		el := &elem{name: e.Name(), min: e.Min, max: parseMax(e.Max)}
		var targets map[string]bool
		for _, t := range e.Targets {
			if t == "Resource" {
				targets = nil
				break
			}
			if targets == nil {
				targets = map[string]bool{}
			}
			targets[t] = true
		}
		mk := func(name, seg, typ string) *field {
			f := &field{name: name, seg: seg, typ: typ, inline: nodes[e.Path], targets: targets, binding: vsets[e.Binding]}
			switch {
			case strings.HasPrefix(typ, "System."):
				f.kind, f.typ = kindPrimitive, systemType(s, e)
			case typ == "Resource":
				f.kind = kindResource
				f.contained = e.Name() == "contained"
			case kinds[typ] == "primitive-type":
				f.kind = kindPrimitive
			case kinds[typ] == "resource":
				f.kind = kindResource // Bundle.entry.resource and the like name Resource
			}
			return f
		}
		switch {
		case e.ContentReference != "":
			f := mk(el.name, el.name, "BackboneElement")
			f.inline = nil
			refs = append(refs, f)
			el.variants = []*field{f}
			f.seg = e.ContentReference // resolved below
		case e.Choice():
			for _, t := range e.Types {
				name := el.name + strings.ToUpper(t[:1]) + t[1:]
				el.variants = append(el.variants, mk(name, el.name+".ofType("+t+")", t))
			}
		case len(e.Types) > 0:
			el.variants = []*field{mk(el.name, el.name, e.Types[0])}
		default:
			return fmt.Errorf("validate: %s has no type", e.Path)
		}
		n.elems = append(n.elems, el)
		for _, f := range el.variants {
			f.elem = el
			n.byName[f.name] = f
		}
	}
	for _, f := range refs {
		target := nodes[f.seg]
		if target == nil {
			return fmt.Errorf("validate: content reference %s names no backbone element", f.seg)
		}
		f.inline, f.seg = target, f.name
	}
	v.roots[s.Name] = nodes[s.Name]
	return nil
}

// systemType is the FHIR type of an element whose type is one of FHIRPath's (the
// ids of resources and elements, Extension.url).
func systemType(s r4.Structure, e r4.Element) string {
	switch {
	case s.Kind == "resource" && e.Path == s.Name+".id":
		return "id"
	case e.Path == "Extension.url":
		return "uri"
	}
	return "string"
}

func parseMax(m string) int {
	if m == "*" {
		return -1
	}
	n, err := strconv.Atoi(m)
	if err != nil {
		return -1
	}
	return n
}
