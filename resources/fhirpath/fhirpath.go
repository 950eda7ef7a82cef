// Package fhirpath compiles and evaluates FHIRPath expressions against resources
// decoded from JSON. It holds two evaluators. Compile/Eval/Locate cover the subset of
// the parameters in resources/searchparams.yaml (paths, "|" and where(field='literal')),
// from which the index extractor reads today. Parse/Evaluate is the FHIRPath that every
// R4 search parameter needs (choice types, where, resolve() is, as/ofType, exists, …);
// it parses all of them and will replace the subset when the registry reads the R4
// definitions (issue 14).
package fhirpath

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
)

// Expression is a compiled expression: the union of its paths. It is immutable, so one
// Expression may be evaluated by any number of goroutines.
type Expression struct {
	paths [][]step
}

// step is one step of a path: navigation to a child element (field), or, when where is
// set, a filter keeping the elements whose field equals value.
type step struct {
	field string
	where bool
	value string
}

// keeps reports whether a where step keeps obj: its field is present and, as JSON text,
// equals the step's value.
func (s step) keeps(obj map[string]any) bool {
	return obj[s.field] != nil && literalString(obj[s.field]) == s.value
}

// Compile parses expr, in the subset of FHIRPath that search parameters use: paths
// joined by "|", each "Type.a.b" with optional ".where(field='literal')" filters after a
// step. The leading type name is dropped: the expression is only ever applied to a
// resource of that type. A backslash in a literal escapes the next character. Anything
// else (another function, an operator, a path without its type) is an error.
func Compile(expr string) (*Expression, error) {
	var e Expression
	for _, src := range splitOutsideQuotes(expr, '|') {
		src = strings.TrimSpace(src)
		if src == "" {
			continue
		}
		path, err := compilePath(src)
		if err != nil {
			return nil, fmt.Errorf("expression %q: %w", expr, err)
		}
		e.paths = append(e.paths, path)
	}
	if len(e.paths) == 0 {
		return nil, fmt.Errorf("expression %q selects nothing", expr)
	}
	return &e, nil
}

// splitOutsideQuotes splits s at each sep that is not inside a '…' literal.
func splitOutsideQuotes(s string, sep byte) []string {
	var parts []string
	quoted, start := false, 0
	for i := 0; i < len(s); i++ {
		switch {
		case quoted && s[i] == '\\':
			i++
		case s[i] == '\'':
			quoted = !quoted
		case !quoted && s[i] == sep:
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	return append(parts, s[start:])
}

// compilePath compiles one path such as "Patient.telecom.where(system='email')".
func compilePath(src string) ([]step, error) {
	c := pathScanner{s: src}
	if c.ident() == "" || !c.eat('.') {
		return nil, fmt.Errorf("path %q does not start with a type name", src)
	}
	var steps []step
	for {
		name := c.ident()
		if name == "" {
			return nil, fmt.Errorf("path %q: element name expected at offset %d", src, c.i)
		}
		if c.eat('(') {
			if name != "where" {
				return nil, fmt.Errorf("path %q: function %s() is not supported", src, name)
			}
			c.spaces()
			field := c.ident()
			c.spaces()
			if field == "" || !c.eat('=') {
				return nil, fmt.Errorf("path %q: where() takes field='value'", src)
			}
			c.spaces()
			value, ok := c.literal()
			c.spaces()
			if !ok || !c.eat(')') {
				return nil, fmt.Errorf("path %q: where() takes field='value'", src)
			}
			steps = append(steps, step{field: field, where: true, value: value})
		} else {
			steps = append(steps, step{field: name})
		}
		if c.i == len(c.s) {
			return steps, nil
		}
		if !c.eat('.') {
			return nil, fmt.Errorf("path %q: unexpected %q at offset %d", src, c.s[c.i], c.i)
		}
	}
}

// pathScanner reads the tokens of one path.
type pathScanner struct {
	s string
	i int
}

func (c *pathScanner) ident() string {
	start := c.i
	for c.i < len(c.s) {
		b := c.s[c.i]
		if b == '_' || b == '-' || '0' <= b && b <= '9' || 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' {
			c.i++
			continue
		}
		break
	}
	return c.s[start:c.i]
}

func (c *pathScanner) eat(b byte) bool {
	if c.i < len(c.s) && c.s[c.i] == b {
		c.i++
		return true
	}
	return false
}

func (c *pathScanner) spaces() {
	for c.i < len(c.s) && c.s[c.i] == ' ' {
		c.i++
	}
}

// literal reads a '…' string; a backslash escapes the next character.
func (c *pathScanner) literal() (string, bool) {
	if !c.eat('\'') {
		return "", false
	}
	var b strings.Builder
	for c.i < len(c.s) {
		ch := c.s[c.i]
		c.i++
		switch ch {
		case '\'':
			return b.String(), true
		case '\\':
			if c.i < len(c.s) {
				b.WriteByte(c.s[c.i])
				c.i++
			}
		default:
			b.WriteByte(ch)
		}
	}
	return "", false
}

// Eval applies the expression to doc, a resource decoded from JSON, and returns the
// selected values in document order, path after path. Arrays are flattened at every
// step, as in FHIRPath, so "Patient.name.given" yields each given name of each name;
// nulls and missing elements select nothing. A where() filter compares primitives as
// their JSON text: where(flag='true') keeps both true and "true".
func (e *Expression) Eval(doc map[string]any) []any {
	var out []any
	for _, path := range e.paths {
		nodes := []any{doc}
		for _, s := range path {
			var next []any
			for _, n := range nodes {
				obj, ok := n.(map[string]any)
				if !ok {
					continue
				}
				if s.where {
					if s.keeps(obj) {
						next = append(next, obj)
					}
					continue
				}
				next = appendFlat(next, obj[s.field])
			}
			nodes = next
		}
		out = append(out, nodes...)
	}
	return out
}

// appendFlat appends v, or each element of v when it is an array; nulls are absent.
func appendFlat(dst []any, v any) []any {
	switch v := v.(type) {
	case nil:
		return dst
	case []any:
		for _, el := range v {
			if el != nil {
				dst = append(dst, el)
			}
		}
		return dst
	default:
		return append(dst, v)
	}
}

// literalString returns a primitive JSON value as where() compares it.
func literalString(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case bool:
		return strconv.FormatBool(v)
	case json.Number:
		return v.String()
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	return ""
}

// located is a value an expression selects and its path in the document.
type located struct {
	v    any
	path string
}

// Locate returns the path, such as "Patient.name[0].family", of the first value that e
// selects in doc and that is v (the same object or array, or an equal primitive), for
// messages about it; typ alone when none is. typ is doc's type, which starts the path.
func (e *Expression) Locate(typ string, doc map[string]any, v any) string {
	for _, path := range e.paths {
		nodes := []located{{doc, typ}}
		for _, s := range path {
			var next []located
			for _, n := range nodes {
				obj, ok := n.v.(map[string]any)
				if !ok {
					continue
				}
				if s.where {
					if s.keeps(obj) {
						next = append(next, n)
					}
					continue
				}
				switch c := obj[s.field].(type) {
				case nil:
				case []any:
					for i, el := range c {
						if el != nil {
							next = append(next, located{el, fmt.Sprintf("%s.%s[%d]", n.path, s.field, i)})
						}
					}
				default:
					next = append(next, located{c, n.path + "." + s.field})
				}
			}
			nodes = next
		}
		for _, n := range nodes {
			if sameValue(n.v, v) {
				return n.path
			}
		}
	}
	return typ
}

// sameValue reports whether a and b are the same selected value: the same object or
// array, or equal primitives.
func sameValue(a, b any) bool {
	switch a.(type) {
	case map[string]any, []any:
		ra, rb := reflect.ValueOf(a), reflect.ValueOf(b)
		return ra.Kind() == rb.Kind() && ra.Pointer() == rb.Pointer()
	case string, json.Number, bool, float64:
		return a == b
	}
	return false
}

// Flatten returns v as a FHIRPath collection: the elements of an array, nothing for
// null, v alone otherwise; nulls inside an array are absent. The index extractor reads
// the parts of a selected value (the given names of a HumanName, the codings of a
// CodeableConcept) this way, as a path step would.
func Flatten(v any) []any { return appendFlat(nil, v) }
