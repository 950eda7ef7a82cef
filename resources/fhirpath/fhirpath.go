// Package fhirpath parses and evaluates FHIRPath expressions against resources decoded
// from JSON, in the part of the language that the search parameters of FHIR R4 use
// (Parse, Evaluate; every R4 expression parses, see the tests). It also locates a value
// in a document for messages (Locate) and flattens JSON values into collections
// (Flatten), as the index extractor needs.
package fhirpath

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
)

// Locate returns the path, such as "Patient.name[0].family", of the first element of
// doc that is v (the same object or array, or an equal primitive), in document order
// with object keys sorted, for messages about a value an expression selected; typ alone
// when none is. typ is doc's type, which starts the path.
func Locate(typ string, doc map[string]any, v any) string {
	if p, ok := locate(doc, v, typ); ok {
		return p
	}
	return typ
}

func locate(node, v any, path string) (string, bool) {
	if sameValue(node, v) {
		return path, true
	}
	switch n := node.(type) {
	case map[string]any:
		keys := make([]string, 0, len(n))
		for k := range n {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if arr, ok := n[k].([]any); ok && !sameValue(arr, v) {
				for i, el := range arr {
					if p, ok := locate(el, v, fmt.Sprintf("%s.%s[%d]", path, k, i)); ok {
						return p, true
					}
				}
				continue
			}
			if p, ok := locate(n[k], v, path+"."+k); ok {
				return p, true
			}
		}
	case []any:
		for i, el := range n {
			if p, ok := locate(el, v, fmt.Sprintf("%s[%d]", path, i)); ok {
				return p, true
			}
		}
	}
	return "", false
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
	}
	return append(dst, v)
}
