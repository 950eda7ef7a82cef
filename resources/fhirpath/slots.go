package fhirpath

import (
	"fmt"
	"sort"
	"strings"
)

// Slot is where one element selected by an expression sits in a document: the object
// holding it, the key it is under, and its position in the array there (-1 when the
// key holds the element itself). FHIRPath Patch changes a document through slots.
type Slot struct {
	Parent map[string]any
	Key    string
	Index  int
	// Choice is the base name of a choice element the slot holds ("value" for
	// valueQuantity), "" for any other element.
	Choice string
}

// Value returns what the slot holds.
func (s Slot) Value() any {
	if s.Index < 0 {
		return s.Parent[s.Key]
	}
	return s.Parent[s.Key].([]any)[s.Index]
}

// Set replaces what the slot holds with v.
func (s Slot) Set(v any) {
	if s.Index < 0 {
		s.Parent[s.Key] = v
		return
	}
	s.Parent[s.Key].([]any)[s.Index] = v
}

// Slots evaluates e on doc and returns where each selected element sits, in the order
// Evaluate gives them. It follows what can be followed back into the document: names
// (choice elements too), indexers, and where, first, last, tail and single on them; a
// value the expression computed (a literal, a count, a union) has no slot, and is an
// error, as is an expression that selects the resource itself.
func (e *Expr) Slots(doc map[string]any) ([]Slot, error) {
	x := &env{root: Item{Value: doc, Type: typeOf(doc)}}
	return x.slots(e.root, []Item{x.root})
}

// MemberPath splits an expression whose last step is a name into the expression of
// what holds the element and the element's name: "Patient.name[0].given" is
// ("Patient.name[0]", "given"). ok is false for any other expression.
func (e *Expr) MemberPath() (parent *Expr, name string, ok bool) {
	m, ok := e.root.(*memberNode)
	if !ok || m.target == nil {
		return nil, "", false
	}
	src := strings.TrimSpace(e.src)
	return &Expr{src: strings.TrimSuffix(strings.TrimSuffix(src, m.name), "."), root: m.target}, m.name, true
}

// ElementPath is the path of definitions an expression walks, such as "Patient.contact"
// for "Patient.contact.where(gender = 'male')[0]": its names from the resource type
// on, through indexers and the functions Slots follows. ok is false when the
// expression does anything else.
func (e *Expr) ElementPath() (string, bool) {
	var names []string
	n := e.root
	for n != nil {
		switch v := n.(type) {
		case *memberNode:
			names = append(names, v.name)
			n = v.target
		case *indexNode:
			n = v.target
		case *callNode:
			if !followed[v.name] || v.target == nil {
				return "", false
			}
			n = v.target
		default:
			return "", false
		}
	}
	if len(names) == 0 {
		return "", false
	}
	for i, j := 0, len(names)-1; i < j; i, j = i+1, j-1 {
		names[i], names[j] = names[j], names[i]
	}
	return strings.Join(names, "."), true
}

// followed are the functions whose result Slots traces back to the document.
var followed = map[string]bool{"where": true, "first": true, "last": true, "tail": true, "single": true}

func typeOf(doc map[string]any) string { rt, _ := doc["resourceType"].(string); return rt }

// located is a selected element with its slot.
type located struct {
	item Item
	slot Slot
}

func (x *env) slots(n node, focus []Item) ([]Slot, error) {
	ls, err := x.locate(n, focus)
	if err != nil {
		return nil, err
	}
	out := make([]Slot, len(ls))
	for i, l := range ls {
		out[i] = l.slot
	}
	return out, nil
}

func (x *env) locate(n node, focus []Item) ([]located, error) {
	switch n := n.(type) {
	case *memberNode:
		parents := focus
		if n.target != nil {
			parents = x.eval(n.target, focus)
		}
		var out []located
		for _, it := range parents {
			m, ok := it.Value.(map[string]any)
			if !ok {
				continue
			}
			if n.name != "" && n.name[0] >= 'A' && n.name[0] <= 'Z' {
				if rt, ok := m["resourceType"].(string); ok && isResourceType(rt, n.name) {
					return nil, fmt.Errorf("%q selects the resource itself, not an element of it", n.name)
				}
			}
			if _, ok := m[n.name]; ok {
				out = appendSlots(out, m, n.name, "", "")
				continue
			}
			for _, k := range sortedKeys(m) {
				if len(k) > len(n.name) && strings.HasPrefix(k, n.name) {
					if t, ok := choiceTypes[k[len(n.name):]]; ok {
						out = appendSlots(out, m, k, t, n.name)
					}
				}
			}
		}
		return out, nil
	case *indexNode:
		c, err := x.locate(n.target, focus)
		if err != nil {
			return nil, err
		}
		idx := x.eval(n.index, focus)
		if len(idx) != 1 {
			return nil, nil
		}
		i, ok := toFloat(idx[0].Value)
		if !ok || i < 0 || int(i) >= len(c) {
			return nil, nil
		}
		return c[int(i) : int(i)+1], nil
	case *callNode:
		if !followed[n.name] || n.target == nil {
			break
		}
		c, err := x.locate(n.target, focus)
		if err != nil {
			return nil, err
		}
		switch n.name {
		case "first":
			return c[:min(len(c), 1)], nil
		case "last":
			return c[max(len(c)-1, 0):], nil
		case "tail":
			return c[min(len(c), 1):], nil
		case "single":
			if len(c) > 1 {
				return nil, fmt.Errorf("single() found %d elements", len(c))
			}
			return c, nil
		case "where":
			var out []located
			for _, l := range c {
				if v, ok := truth(x.eval(n.args[0], []Item{l.item})); ok && v {
					out = append(out, l)
				}
			}
			return out, nil
		}
	}
	return nil, fmt.Errorf("the expression computes values instead of selecting elements of the resource: use element names, indexers, where, first, last, tail or single")
}

// appendSlots appends the slots of m[key]: each element of an array, or the value;
// choice is the base name when key is a choice element's.
func appendSlots(out []located, m map[string]any, key, typ, choice string) []located {
	switch v := m[key].(type) {
	case nil:
	case []any:
		for i, el := range v {
			if el != nil {
				out = append(out, located{item: Item{Value: el, Type: typ}, slot: Slot{Parent: m, Key: key, Index: i, Choice: choice}})
			}
		}
	default:
		out = append(out, located{item: Item{Value: v, Type: typ}, slot: Slot{Parent: m, Key: key, Index: -1, Choice: choice}})
	}
	return out
}

// sortedKeys returns the keys of m in order, so choice elements come out as Evaluate
// gives them.
func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
