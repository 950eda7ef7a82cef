package accesspolicy

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/fhirbox/fhirbox/resources"
)

// compartmentTypes are the R4 CompartmentDefinitions a policy may confine to.
var compartmentTypes = []string{"Patient", "Encounter", "RelatedPerson", "Practitioner", "Device"}

// Compartment is one compartment a policy confines a request to (conformance M7):
// Patient p1's is p1 and every resource that refers to it through the R4
// CompartmentDefinition's parameters.
type Compartment struct {
	Type string `json:"type"`
	ID   string `json:"id"`
}

// compartmentSpec is an AccessPolicy's compartment: its type, and where the id is —
// a path into the request object (".user.fhirUser", ".user.data.patients") or a
// literal id.
type compartmentSpec struct {
	typ  string
	path []string // nil for a literal id
	id   string
}

// parseCompartment reads an AccessPolicy's compartment field; nil when absent.
func parseCompartment(raw any) (*compartmentSpec, error) {
	if raw == nil {
		return nil, nil
	}
	m, ok := raw.(map[string]any)
	if !ok {
		return nil, invalid("compartment", "compartment must be an object {type, id}, e.g. {type: Patient, id: .user.fhirUser}")
	}
	for k := range m {
		if k != "type" && k != "id" {
			return nil, invalid("compartment."+k, "compartment has two fields, type and id; %q is not one", k)
		}
	}
	typ, _ := m["type"].(string)
	known := false
	for _, t := range compartmentTypes {
		known = known || t == typ
	}
	if !known {
		return nil, invalid("compartment.type", "compartment.type must be one of the R4 compartments %s, not %v", strings.Join(compartmentTypes, ", "), m["type"])
	}
	id, _ := m["id"].(string)
	spec := &compartmentSpec{typ: typ}
	switch {
	case strings.HasPrefix(id, ".") && len(id) > 1:
		spec.path = strings.Split(id[1:], ".")
		for _, seg := range spec.path {
			if seg == "" {
				return nil, invalid("compartment.id", "compartment.id %q has an empty segment", id)
			}
		}
	case id != "" && !strings.HasPrefix(id, "."):
		spec.id = id
	default:
		return nil, invalid("compartment.id", "compartment.id must be a path into the request object (e.g. .user.fhirUser) or an id")
	}
	return spec, nil
}

// resolve returns the compartments the spec names for the request object obj: the
// value at its path may be an id, a reference ("Patient/p1", or an object with
// reference, or with resourceType and id), or a list of them. A reference to another
// type is no compartment of this one and is left out.
func (s *compartmentSpec) resolve(obj map[string]any) []Compartment {
	if s.path == nil {
		return []Compartment{{Type: s.typ, ID: s.id}}
	}
	var v any = obj
	for _, seg := range s.path {
		switch cur := v.(type) {
		case map[string]any:
			v = cur[seg]
		case []any:
			i, err := strconv.Atoi(seg)
			if err != nil || i < 0 || i >= len(cur) {
				return nil
			}
			v = cur[i]
		default:
			return nil
		}
	}
	var out []Compartment
	add := func(v any) {
		if id := s.idOf(v); id != "" {
			out = append(out, Compartment{Type: s.typ, ID: id})
		}
	}
	if list, ok := v.([]any); ok {
		for _, x := range list {
			add(x)
		}
	} else {
		add(v)
	}
	return out
}

// idOf reads one id or reference; "" when it names no resource of the spec's type.
func (s *compartmentSpec) idOf(v any) string {
	var ref string
	switch x := v.(type) {
	case string:
		ref = x
	case map[string]any:
		if r, ok := x["reference"].(string); ok {
			ref = r
		} else if t, _ := x["resourceType"].(string); t == s.typ {
			ref, _ = x["id"].(string)
		}
	}
	if i := strings.LastIndex(ref, "/"); i >= 0 {
		head := ref[:i]
		if j := strings.LastIndex(head, "/"); j >= 0 {
			head = head[j+1:]
		}
		if head != s.typ {
			return ""
		}
		ref = ref[i+1:]
	}
	if ref == "" || len(ref) > 64 || strings.ContainsAny(ref, " ?#|") {
		return ""
	}
	return ref
}

// String writes the spec back, for traces.
func (s *compartmentSpec) String() string {
	if s.path == nil {
		return fmt.Sprintf("%s/%s", s.typ, s.id)
	}
	return fmt.Sprintf("%s .%s", s.typ, strings.Join(s.path, "."))
}

// Confinement returns what the decision confines its request to, as the resource engine
// applies it (resources.WithConfinement); nil when nothing confines it.
func (d Decision) Confinement() resources.Confinement {
	if len(d.Compartments) == 0 {
		return nil
	}
	return policyConfinement{policy: d.Policy, comps: d.Compartments}
}

// policyConfinement confines a request to the compartments of the policies that
// allowed it. A type that no compartment of theirs can hold (a Practitioner, a
// Medication, for a Patient compartment) is not confined: none of its resources is
// anybody's in that sense, and the policies' own patterns decide it.
type policyConfinement struct {
	policy string
	comps  []Compartment
}

// For returns a reach per compartment that can hold typ.
func (c policyConfinement) For(typ string) ([]resources.Reach, bool) {
	var reaches []resources.Reach
	confined := false
	for _, comp := range c.comps {
		if !(resources.Compartment{Type: comp.Type}).Holds(typ) {
			continue
		}
		confined = true
		reaches = append(reaches, resources.Reach{Compartment: &resources.Compartment{Type: comp.Type, ID: comp.ID}})
	}
	return reaches, confined
}

// Describe names the policy and its compartments.
func (c policyConfinement) Describe(string) string {
	names := make([]string, len(c.comps))
	for i, comp := range c.comps {
		names[i] = comp.Type + "/" + comp.ID
	}
	return fmt.Sprintf("access policy %q (the compartment of %s)", c.policy, strings.Join(names, ", "))
}

// Key identifies the compartments.
func (c policyConfinement) Key() string {
	k := "policy"
	for _, comp := range c.comps {
		k += "\x00" + comp.Type + "/" + comp.ID
	}
	return k
}
