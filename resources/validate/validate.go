// Package validate checks a FHIR R4 resource, decoded as the resource engine sees it
// (map[string]any, numbers as json.Number), against the R4 base definitions embedded
// in package r4: unknown elements (choice types, primitive extensions `_x`, contained
// resources as their own type), cardinality and required elements, the primitive
// types' formats (the regexes of the specification), reference shapes and targets, and
// the codes of required bindings (conformance V1–V6). It also checks a resource
// against a profile, a StructureDefinition stored on the server (profile.go).
//
// Each problem is one Issue with the FHIRPath location of the element at fault. The
// definitions are compiled once (Default); a Validator is safe for concurrent use.
package validate

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/fhirbox/fhirbox/resources/r4"
)

// Issue is one problem found: an OperationOutcome.issue.
type Issue struct {
	// Severity is error, warning or information.
	Severity string
	// Code is the FHIR IssueType: structure (an element that does not belong, or has
	// the wrong JSON shape), required (a required element missing), value (a value in
	// the wrong format), code-invalid (a code outside a required binding), informational.
	Code string
	// Expression is the FHIRPath of the element at fault: Patient.name[0].given[1].
	Expression string
	// Diagnostics says what is wrong, for a person.
	Diagnostics string
}

// Issue severities and codes.
const (
	SeverityError       = "error"
	SeverityWarning     = "warning"
	SeverityInformation = "information"

	CodeStructure     = "structure"
	CodeRequired      = "required"
	CodeValue         = "value"
	CodeCodeInvalid   = "code-invalid"
	CodeInformational = "informational"
)

// Errors reports whether issues hold an error (warnings and information do not count).
func Errors(issues []Issue) bool {
	for _, is := range issues {
		if is.Severity == SeverityError {
			return true
		}
	}
	return false
}

// MaxIssues bounds the issues one validation reports: a document with thousands of
// faults gets the first ones and a last issue saying the rest were left out.
const MaxIssues = 100

// maxDepth bounds how deep the validator follows nested objects (contained resources,
// Questionnaire items within items), so that no document can exhaust the stack.
const maxDepth = 100

// Validator checks documents against the compiled R4 definitions.
type Validator struct {
	roots     map[string]*node // every complex type's and resource type's root
	resources map[string]bool  // the concrete resource types
	element   *node            // Element: what `_x` (a primitive's id and extensions) holds
	regex     map[string]*regexp.Regexp
}

var (
	defaultOnce sync.Once
	defaultV    *Validator
	defaultErr  error
)

// Default returns the Validator of the embedded R4 definitions, compiled at the first
// call. An error means the embedded data is corrupt.
func Default() (*Validator, error) {
	defaultOnce.Do(func() {
		var els *r4.Elements
		if els, defaultErr = r4.LoadElements(); defaultErr == nil {
			defaultV, defaultErr = New(els)
		}
	})
	return defaultV, defaultErr
}

// Known reports whether typ is a concrete R4 resource type.
func (v *Validator) Known(typ string) bool { return v.resources[typ] }

// Validate checks doc as a resource of type typ and returns its problems, nil when
// there are none. A resourceType in doc must be typ; one may be left out, as fhirbox's
// API allows.
func (v *Validator) Validate(typ string, doc map[string]any) []Issue {
	c := &checker{v: v}
	if !v.resources[typ] {
		c.add(CodeStructure, typ, fmt.Sprintf("%s is not an R4 resource type", typ))
		return c.issues
	}
	if rt, ok := doc["resourceType"]; ok && rt != typ {
		c.add(CodeStructure, typ+".resourceType", fmt.Sprintf("resourceType %v is not %s", rt, typ))
		return c.issues
	}
	c.resourceRoot(typ, typ, doc, false)
	return c.done()
}

// checker is one validation's state.
type checker struct {
	v       *Validator
	issues  []Issue
	dropped int
	depth   int
	// contained are the ids of the contained resources of the resource being checked,
	// which local references (#id) may name.
	contained map[string]bool
}

func (c *checker) add(code, expr, msg string) {
	c.addSeverity(SeverityError, code, expr, msg)
}

func (c *checker) addSeverity(sev, code, expr, msg string) {
	if len(c.issues) >= MaxIssues {
		c.dropped++
		return
	}
	c.issues = append(c.issues, Issue{Severity: sev, Code: code, Expression: expr, Diagnostics: msg})
}

func (c *checker) done() []Issue {
	if c.dropped > 0 {
		c.issues = append(c.issues, Issue{Severity: SeverityError, Code: CodeInformational,
			Diagnostics: fmt.Sprintf("%d more problems were found and are not listed", c.dropped)})
	}
	return c.issues
}

// resourceRoot checks a resource at path: the top-level one, or one inside another
// (contained, a Bundle entry's, a Parameters parameter's). inContained marks a
// contained resource, which may not contain others and shares its container's ids.
func (c *checker) resourceRoot(path, typ string, doc map[string]any, inContained bool) {
	saved := c.contained
	if !inContained {
		c.contained = nil
		if list, ok := doc["contained"].([]any); ok {
			for _, r := range list {
				if m, ok := r.(map[string]any); ok {
					if id, ok := m["id"].(string); ok {
						if c.contained == nil {
							c.contained = map[string]bool{}
						}
						c.contained[id] = true
					}
				}
			}
		}
	} else if _, ok := doc["contained"]; ok {
		c.add(CodeStructure, path+".contained", "a contained resource cannot contain resources (dom-2)")
	}
	c.object(path, c.v.roots[typ], doc)
	c.contained = saved
}

// resource checks v, the value of an element of type Resource, as the type its
// resourceType names.
func (c *checker) resource(path string, v any, inContained bool) {
	m, ok := v.(map[string]any)
	if !ok {
		c.add(CodeStructure, path, "must be a resource (a JSON object with a resourceType)")
		return
	}
	rt, _ := m["resourceType"].(string)
	if !c.v.resources[rt] {
		if rt == "" {
			c.add(CodeStructure, path, "a resource here must have a resourceType")
		} else {
			c.add(CodeStructure, path+".resourceType", fmt.Sprintf("%q is not an R4 resource type", rt))
		}
		return
	}
	c.resourceRoot(path, rt, m, inContained)
}

// object checks the elements of obj, an instance of n, at path.
func (c *checker) object(path string, n *node, obj map[string]any) {
	if c.depth >= maxDepth {
		c.add(CodeStructure, path, fmt.Sprintf("nested more than %d levels deep", maxDepth))
		return
	}
	c.depth++
	defer func() { c.depth-- }()
	if len(obj) == 0 {
		c.add(CodeStructure, path, "an element must have content: {} is not allowed")
		return
	}
	var unknown []string
	for k := range obj {
		if n.byName[k] != nil || k == "resourceType" && n.resource {
			continue
		}
		if k != "" && k[0] == '_' {
			if f := n.byName[k[1:]]; f != nil && f.kind == kindPrimitive {
				continue
			}
		}
		unknown = append(unknown, k)
	}
	for _, e := range n.elems {
		present := 0
		for _, f := range c.variantsIn(e, n, obj) {
			v, has := obj[f.name]
			var ext any
			hasExt := false
			if f.kind == kindPrimitive {
				ext, hasExt = obj["_"+f.name]
			}
			if !has && !hasExt {
				continue
			}
			present++
			c.field(path, e, f, v, has, ext, hasExt)
		}
		switch {
		case present == 0 && e.min > 0:
			c.add(CodeRequired, path+"."+e.name, fmt.Sprintf("%s is required (at least %d)", e.name, e.min))
		case present > 1:
			c.add(CodeStructure, path+"."+e.name, fmt.Sprintf("only one of the types of %s[x] may be given", e.name))
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		for _, k := range unknown {
			c.add(CodeStructure, path+"."+k, fmt.Sprintf("unknown element %q in %s", k, n.name))
		}
	}
}

// variantsIn returns the fields of e to look for in obj: all of them, or for a choice
// element of many types (Extension.value[x] has 50) those obj has, found from obj's
// few keys rather than by a lookup per type.
func (c *checker) variantsIn(e *elem, n *node, obj map[string]any) []*field {
	if len(e.variants) <= 4 {
		return e.variants
	}
	var out []*field
	for k := range obj {
		name := k
		if k != "" && k[0] == '_' {
			name = k[1:]
		}
		if f := n.byName[name]; f != nil && f.elem == e && !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	if len(out) > 1 {
		slices.SortFunc(out, func(a, b *field) int { return strings.Compare(a.name, b.name) })
	}
	return out
}

// field checks the value (and the primitive extension ext) of one element of an object.
func (c *checker) field(parent string, e *elem, f *field, v any, has bool, ext any, hasExt bool) {
	p := parent + "." + f.seg
	if e.max == 0 {
		c.add(CodeStructure, p, fmt.Sprintf("%s is not allowed here (max 0)", e.name))
		return
	}
	if e.max == 1 {
		if has {
			if _, isList := v.([]any); isList {
				c.add(CodeStructure, p, fmt.Sprintf("%s takes one value, not a list", e.name))
			} else {
				c.value(p, f, v)
			}
		}
		if hasExt {
			c.primitiveElement(p, ext)
		}
		return
	}
	var list, exts []any
	if has {
		var ok bool
		if list, ok = v.([]any); !ok {
			c.add(CodeStructure, p, fmt.Sprintf("%s takes a list (a JSON array), even of one value", e.name))
			return
		}
		switch {
		case len(list) == 0:
			c.add(CodeStructure, p, "an empty list is not allowed: leave the element out")
		case e.max > 0 && len(list) > e.max:
			c.add(CodeStructure, p, fmt.Sprintf("%s takes at most %d values, not %d", e.name, e.max, len(list)))
		case len(list) < e.min:
			c.add(CodeRequired, p, fmt.Sprintf("%s needs at least %d values, not %d", e.name, e.min, len(list)))
		}
	}
	if hasExt {
		var ok bool
		if exts, ok = ext.([]any); !ok {
			c.add(CodeStructure, parent+"._"+f.name, "takes a list (a JSON array) like "+f.name)
			exts = nil
		} else if has && len(exts) != len(list) {
			c.add(CodeStructure, parent+"._"+f.name, fmt.Sprintf("has %d items, %s has %d: they go in pairs", len(exts), f.name, len(list)))
		}
	}
	for i, item := range list {
		ip := fmt.Sprintf("%s[%d]", p, i)
		if item == nil {
			if i >= len(exts) || exts[i] == nil {
				c.add(CodeStructure, ip, "null is allowed in a list only where _"+f.name+" gives the item an id or extensions")
			}
			continue
		}
		c.value(ip, f, item)
	}
	for i, x := range exts {
		if x != nil {
			c.primitiveElement(fmt.Sprintf("%s[%d]", p, i), x)
		}
	}
}

// primitiveElement checks the `_x` part of a primitive: an Element (id, extensions).
func (c *checker) primitiveElement(path string, v any) {
	m, ok := v.(map[string]any)
	if !ok {
		c.add(CodeStructure, path, "the id and extensions of a primitive value (_"+lastName(path)+") must be an object")
		return
	}
	c.object(path, c.v.element, m)
}

func lastName(path string) string {
	name := path[strings.LastIndexByte(path, '.')+1:]
	if i := strings.IndexByte(name, '['); i >= 0 {
		name = name[:i]
	}
	return name
}

// value checks one value of an element of field f.
func (c *checker) value(path string, f *field, v any) {
	switch f.kind {
	case kindPrimitive:
		if s, ok := c.primitive(path, f.typ, v); ok && f.binding != nil {
			c.code(path, f.binding, s)
		}
	case kindResource:
		c.resource(path, v, f.contained)
	default:
		m, ok := v.(map[string]any)
		if !ok {
			c.add(CodeStructure, path, fmt.Sprintf("must be a JSON object (a %s)", f.typ))
			return
		}
		n := f.inline
		if n == nil {
			n = c.v.roots[f.typ]
		}
		if n == nil {
			return // a type the definitions do not describe (none in R4 today)
		}
		c.object(path, n, m)
		switch f.typ {
		case "Reference":
			c.reference(path, f, m)
		case "Coding":
			if f.binding != nil {
				c.coding(path, f.binding, m)
			}
		case "CodeableConcept":
			if f.binding != nil {
				c.concept(path, f.binding, m)
			}
		}
	}
}
