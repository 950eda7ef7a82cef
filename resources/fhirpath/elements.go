package fhirpath

import "slices"

// Elements returns the top-level elements of the resource that e reads, by the names
// it navigates to from the resource ("subject" for "Observation.subject.where(resolve()
// is Patient)"; a choice element by its base name, "value" for valueQuantity…), with
// "contained" when it calls resolve(), which reads the resource's contained resources.
// Evaluated on a document holding those elements alone (and resourceType), e selects
// what it selects on the whole. ok is false when e may read the resource beyond them:
// it yields the resource itself, passes it to a function other than a filter, or names
// %resource or %rootResource.
func (e *Expr) Elements() (names []string, ok bool) {
	w := &elementWalk{}
	if w.walk(e.root, true) || w.beyond {
		return nil, false
	}
	slices.Sort(w.names)
	return slices.Compact(w.names), true
}

// elementWalk collects the elements an expression reads from its resource.
type elementWalk struct {
	names  []string
	beyond bool // the expression reads the resource other than by named elements
}

// filters are the functions whose result is a subset of their input: on the resource
// itself they yield it or nothing, and their arguments only test it.
var filters = map[string]bool{"where": true, "first": true, "last": true, "tail": true, "single": true, "distinct": true, "ofType": true, "as": true}

// argsOnFocus are the functions whose arguments env.call evaluates on the call's focus
// rather than on the items of its target.
var argsOnFocus = map[string]bool{"union": true, "startsWith": true, "contains": true, "extension": true}

// walk visits n, evaluated with the resource as its focus when atRoot, and reports
// whether n yields the resource itself (which a member of it then narrows).
func (w *elementWalk) walk(n node, atRoot bool) (whole bool) {
	switch x := n.(type) {
	case nil, *literalNode:
		return false
	case *varNode:
		switch x.name {
		case "this", "context": // $this, %context: the focus (env.eval)
			return atRoot
		case "resource", "rootResource":
			w.beyond = true
		}
		return false
	case *memberNode:
		var on bool
		if x.target == nil {
			on = atRoot
			if on && x.name != "" && x.name[0] >= 'A' && x.name[0] <= 'Z' {
				return true // the resource's type name: the resource itself
			}
		} else {
			on = w.walk(x.target, atRoot)
		}
		if on {
			w.names = append(w.names, x.name)
		}
		return false
	case *callNode:
		on := atRoot
		if x.target != nil {
			on = w.walk(x.target, atRoot)
		}
		if x.name == "resolve" {
			w.names = append(w.names, "contained")
		}
		if x.name == "extension" && on {
			w.names = append(w.names, "extension")
			on = false
		}
		// An argument's focus is each item of the target, or (for these four, as
		// env.call evaluates them) the call's own focus.
		argAtRoot := on
		if argsOnFocus[x.name] {
			argAtRoot = atRoot
		}
		for _, a := range x.args {
			if w.walk(a, argAtRoot) {
				w.beyond = true
			}
		}
		if on && !filters[x.name] {
			w.beyond = true
			return false
		}
		return on
	case *indexNode:
		if w.walk(x.index, atRoot) {
			w.beyond = true
		}
		return w.walk(x.target, atRoot)
	case *typeTestNode:
		on := w.walk(x.x, atRoot)
		if on && x.op != "as" {
			w.beyond = true
			return false
		}
		return on
	case *unaryNode:
		if w.walk(x.x, atRoot) {
			w.beyond = true
		}
		return false
	case *binaryNode:
		l, r := w.walk(x.l, atRoot), w.walk(x.r, atRoot)
		if x.op == "|" {
			return l || r
		}
		if l || r {
			w.beyond = true
		}
		return false
	}
	w.beyond = true // a node this walk does not know
	return false
}
