package resources

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/fhirbox/fhirbox/resources/fhirpath"
	"github.com/fhirbox/fhirbox/resources/r4"
)

// fhirPatchOp is one checked operation of a FHIRPath Patch (FHIR R4 fhirpatch.html).
type fhirPatchOp struct {
	index    int
	typ      string // add, insert, delete, replace, move
	path     *fhirpath.Expr
	name     string
	value    any
	hasValue bool
	// valueType is the type a value[x] part names ("Quantity" for valueQuantity): a
	// choice element added or replaced takes it into its name.
	valueType string
	// at is insert's index; source and destination are move's.
	at, source, destination int
}

// fhirPatchParts says which parts each operation type takes, and which of them it needs.
var fhirPatchParts = map[string][]string{
	"add":     {"path", "name", "value"},
	"insert":  {"path", "value", "index"},
	"delete":  {"path"},
	"replace": {"path", "value"},
	"move":    {"path", "source", "destination"},
}

// parseFHIRPathPatch checks the operations of a FHIRPath Patch: each parameter is an
// "operation" whose parts are those its type needs, each once; a part the type does
// not take is refused rather than ignored, as is a path that does not parse.
func parseFHIRPathPatch(params map[string]any) ([]fhirPatchOp, error) {
	list, _ := params["parameter"].([]any)
	if len(list) == 0 {
		return nil, &Error{Code: CodeInvalid, Message: "the FHIRPath Patch has no operation (Parameters.parameter is empty)", Expression: "Parameters.parameter"}
	}
	if len(list) > maxPatchOperations {
		return nil, &Error{Code: CodeInvalid, Message: fmt.Sprintf("the FHIRPath Patch has %d operations, more than the %d one PATCH may have", len(list), maxPatchOperations), Expression: "Parameters.parameter"}
	}
	for k := range params {
		switch k {
		case "resourceType", "id", "meta", "parameter":
		default:
			return nil, &Error{Code: CodeInvalid, Message: fmt.Sprintf("a FHIRPath Patch has no element %q", k), Expression: "Parameters." + k}
		}
	}
	ops := make([]fhirPatchOp, len(list))
	for i, raw := range list {
		op := fhirPatchOp{index: i}
		where := fmt.Sprintf("Parameters.parameter[%d]", i)
		bad := func(format string, args ...any) error {
			name := op.typ
			if name == "" {
				name = "?"
			}
			return &Error{Code: CodeInvalid, Message: fmt.Sprintf("FHIRPath Patch operation [%d] (%s): ", i, name) + fmt.Sprintf(format, args...), Expression: where}
		}
		p, ok := raw.(map[string]any)
		if !ok || p["name"] != "operation" {
			return nil, bad(`each parameter of a FHIRPath Patch is named "operation"`)
		}
		parts := map[string]map[string]any{}
		partList, _ := p["part"].([]any)
		for _, pr := range partList {
			pm, _ := pr.(map[string]any)
			name, _ := pm["name"].(string)
			if name == "" {
				return nil, bad("a part has no name")
			}
			if _, dup := parts[name]; dup {
				return nil, bad("the part %q is given twice", name)
			}
			parts[name] = pm
		}
		t, err := primitivePart(parts, "type")
		if err != nil {
			return nil, bad("%v", err)
		}
		op.typ, _ = t.(string)
		takes, ok := fhirPatchParts[op.typ]
		if !ok {
			return nil, bad("unknown or missing type %s: use add, insert, delete, replace or move", describeValue(t))
		}
		for name := range parts {
			if name != "type" && !contains(takes, name) {
				return nil, bad("a %s operation takes the parts %s, not %q", op.typ, strings.Join(takes, ", "), name)
			}
		}
		for _, name := range takes {
			pm, ok := parts[name]
			if !ok {
				return nil, bad("the part %q is missing", name)
			}
			switch name {
			case "path":
				src, err := primitivePart(parts, name)
				s, _ := src.(string)
				if err != nil || s == "" {
					return nil, bad("path must be a FHIRPath expression (valueString)")
				}
				if op.path, err = fhirpath.Parse(s); err != nil {
					return nil, bad("%v", err)
				}
				if op.typ == "insert" || op.typ == "move" {
					if _, _, ok := op.path.MemberPath(); !ok {
						return nil, bad("the path of %s must end in the name of the list (such as Patient.identifier)", op.typ)
					}
				}
			case "name":
				n, err := primitivePart(parts, name)
				s, _ := n.(string)
				if err != nil || !validElementName(s) {
					return nil, bad("name must be the name of an element (valueString)")
				}
				op.name = s
			case "value":
				if op.value, err = partValue(pm, 0); err != nil {
					return nil, bad("value: %v", err)
				}
				op.hasValue = true
				if _, key, _ := valueX(pm); key != "" {
					op.valueType = key[len("value"):]
				}
			case "index", "source", "destination":
				n, err := primitivePart(parts, name)
				num, _ := n.(json.Number)
				v, err2 := strconv.Atoi(string(num))
				if err != nil || err2 != nil || v < 0 {
					return nil, bad("%s must be a non-negative integer (valueInteger)", name)
				}
				switch name {
				case "index":
					op.at = v
				case "source":
					op.source = v
				default:
					op.destination = v
				}
			}
		}
		ops[i] = op
	}
	return ops, nil
}

// validElementName reports whether s can name a JSON element of a resource.
func validElementName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' && i > 0 || c == '_') {
			return false
		}
	}
	return true
}

// primitivePart returns the value[x] of the part called name.
func primitivePart(parts map[string]map[string]any, name string) (any, error) {
	pm, ok := parts[name]
	if !ok {
		return nil, fmt.Errorf("the part %q is missing", name)
	}
	v, key, err := valueX(pm)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", name, err)
	}
	if key == "" {
		return nil, fmt.Errorf("%s has no value", name)
	}
	return v, nil
}

// valueX returns the one value[x] of a Parameters parameter or part and its key; key
// is "" when it has none.
func valueX(p map[string]any) (v any, key string, err error) {
	for k, x := range p {
		if len(k) > 5 && strings.HasPrefix(k, "value") && k[5] >= 'A' && k[5] <= 'Z' {
			if key != "" {
				return nil, "", fmt.Errorf("both %s and %s are given", key, k)
			}
			v, key = x, k
		}
	}
	return v, key, nil
}

// maxPartDepth bounds the nesting of parts that build a value.
const maxPartDepth = 32

// partValue is the value a "value" part carries: its value[x] (any data type), its
// resource, or the element its parts build (each part an element of it, by name; a
// name given several times is a list), as fhirpatch.html describes for complex types.
func partValue(p map[string]any, depth int) (any, error) {
	if depth > maxPartDepth {
		return nil, fmt.Errorf("parts nested more than %d deep", maxPartDepth)
	}
	v, key, err := valueX(p)
	if err != nil {
		return nil, err
	}
	res, hasRes := p["resource"]
	parts, hasParts := p["part"].([]any)
	given := 0
	for _, b := range []bool{key != "", hasRes, hasParts} {
		if b {
			given++
		}
	}
	switch {
	case given == 0:
		return nil, fmt.Errorf("no value[x], resource or part")
	case given > 1:
		return nil, fmt.Errorf("give one of value[x], resource or part")
	case key != "":
		if v == nil {
			return nil, fmt.Errorf("%s is null", key)
		}
		return v, nil
	case hasRes:
		if _, ok := res.(map[string]any); !ok {
			return nil, fmt.Errorf("resource is not an object")
		}
		return res, nil
	}
	out := map[string]any{}
	seen := map[string]int{}
	for _, pr := range parts {
		pm, _ := pr.(map[string]any)
		name, _ := pm["name"].(string)
		if !validElementName(name) {
			return nil, fmt.Errorf("a part is not named as an element: %s", describeValue(pm["name"]))
		}
		x, err := partValue(pm, depth+1)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", name, err)
		}
		switch seen[name] {
		case 0:
			out[name] = x
		case 1:
			out[name] = []any{out[name], x}
		default:
			out[name] = append(out[name].([]any), x)
		}
		seen[name]++
	}
	return out, nil
}

// fail is a FHIRPath Patch operation that does not apply to the document.
func (op *fhirPatchOp) fail(format string, args ...any) error {
	return &Error{Code: CodeUnprocessable,
		Message:    fmt.Sprintf("FHIRPath Patch operation [%d] (%s %s): ", op.index, op.typ, op.path) + fmt.Sprintf(format, args...),
		Expression: fmt.Sprintf("Parameters.parameter[%d]", op.index)}
}

// applyFHIRPathPatch applies ops in order to doc, a resource of type typ, stopping at
// the first that fails (the whole patch is then refused).
func applyFHIRPathPatch(ops []fhirPatchOp, typ string, doc map[string]any) error {
	copied := 0
	for i := range ops {
		op := &ops[i]
		var err error
		switch op.typ {
		case "add":
			err = op.add(typ, doc, deepCopy(op.value, &copied))
		case "insert":
			err = op.insert(doc, deepCopy(op.value, &copied))
		case "delete":
			err = op.delete(doc)
		case "replace":
			err = op.replace(doc, deepCopy(op.value, &copied))
		case "move":
			err = op.move(doc)
		}
		if err != nil {
			return err
		}
		if copied > maxPatchCopies {
			return op.fail("the patch adds more than %d values", maxPatchCopies)
		}
	}
	return nil
}

// one returns the one object expr selects in doc.
func (op *fhirPatchOp) one(expr *fhirpath.Expr, doc map[string]any) (map[string]any, error) {
	got := expr.Evaluate(doc)
	if len(got) != 1 {
		return nil, op.fail("%s selects %d elements; the operation needs exactly one", expr, len(got))
	}
	m, ok := got[0].(map[string]any)
	if !ok {
		return nil, op.fail("%s selects the value %s, which has no elements", expr, describeValue(got[0]))
	}
	return m, nil
}

// add adds the element name to what the path selects: appended to a list, or set
// when absent; a single element already there is refused (replace changes it). An
// element the R4 definitions say repeats is added as a list.
func (op *fhirPatchOp) add(typ string, doc map[string]any, v any) error {
	m, err := op.one(op.path, doc)
	if err != nil {
		return err
	}
	el, known := element(typ, op.path, op.name)
	name := op.name
	if known && el.Choice() && op.valueType != "" {
		name += op.valueType // value as a Quantity is valueQuantity
	}
	cur, exists := m[name]
	switch arr, isList := cur.([]any); {
	case isList:
		m[name] = append(arr, v)
	case exists && cur != nil:
		return op.fail("%s is already there and is no list: use replace to change it", name)
	case known && el.Max != "0" && el.Max != "1":
		m[name] = []any{v}
	default:
		m[name] = v
	}
	return nil
}

// list returns the object holding the list the path of insert and move names, the
// list's name, and the list (nil when absent).
func (op *fhirPatchOp) list(doc map[string]any) (map[string]any, string, []any, error) {
	parent, name, _ := op.path.MemberPath()
	m, err := op.one(parent, doc)
	if err != nil {
		return nil, "", nil, err
	}
	cur, exists := m[name]
	arr, isList := cur.([]any)
	if exists && cur != nil && !isList {
		return nil, "", nil, op.fail("%s is a single element, not a list", name)
	}
	return m, name, arr, nil
}

func (op *fhirPatchOp) insert(doc map[string]any, v any) error {
	m, name, arr, err := op.list(doc)
	if err != nil {
		return err
	}
	if op.at > len(arr) {
		return op.fail("index %d is past the end of the list (%d elements)", op.at, len(arr))
	}
	arr = append(arr, nil)
	copy(arr[op.at+1:], arr[op.at:])
	arr[op.at] = v
	m[name] = arr
	return nil
}

func (op *fhirPatchOp) move(doc map[string]any) error {
	m, name, arr, err := op.list(doc)
	if err != nil {
		return err
	}
	if op.source >= len(arr) || op.destination >= len(arr) {
		return op.fail("source %d and destination %d must be below the length of the list (%d elements)", op.source, op.destination, len(arr))
	}
	v := arr[op.source]
	arr = append(arr[:op.source], arr[op.source+1:]...)
	arr = append(arr, nil)
	copy(arr[op.destination+1:], arr[op.destination:])
	arr[op.destination] = v
	m[name] = arr
	return nil
}

// delete removes the one element the path selects; none is no error (fhirpatch.html:
// "delete … if found").
func (op *fhirPatchOp) delete(doc map[string]any) error {
	slots, err := op.path.Slots(doc)
	if err != nil {
		return op.fail("%v", err)
	}
	switch len(slots) {
	case 0:
		return nil
	case 1:
	default:
		return op.fail("the path selects %d elements; delete removes only one", len(slots))
	}
	s := slots[0]
	if s.Index < 0 {
		delete(s.Parent, s.Key)
		return nil
	}
	arr := s.Parent[s.Key].([]any)
	arr = append(arr[:s.Index], arr[s.Index+1:]...)
	if len(arr) == 0 {
		delete(s.Parent, s.Key) // FHIR has no empty lists
		return nil
	}
	s.Parent[s.Key] = arr
	return nil
}

func (op *fhirPatchOp) replace(doc map[string]any, v any) error {
	slots, err := op.path.Slots(doc)
	if err != nil {
		return op.fail("%v", err)
	}
	if len(slots) != 1 {
		return op.fail("the path selects %d elements; replace needs exactly one", len(slots))
	}
	sl := slots[0]
	if key := sl.Choice + op.valueType; sl.Choice != "" && op.valueType != "" && sl.Index < 0 && key != sl.Key {
		// A choice element replaced by a value of another type changes its name.
		delete(sl.Parent, sl.Key)
		sl.Parent[key] = v
		return nil
	}
	sl.Set(v)
	return nil
}

// r4Elements are the R4 element definitions, loaded on first use.
var r4Elements = sync.OnceValues(r4.LoadElements)

// element returns the R4 definition of the element name below what path selects in a
// resource of type typ; ok is false when the definitions do not say.
func element(typ string, path *fhirpath.Expr, name string) (r4.Element, bool) {
	ep, ok := path.ElementPath()
	if !ok {
		return r4.Element{}, false
	}
	if first, _, _ := strings.Cut(ep, "."); first != typ {
		ep = typ + "." + ep
	}
	defs, err := r4Elements()
	if err != nil {
		return r4.Element{}, false
	}
	return defs.Element(ep + "." + name)
}
