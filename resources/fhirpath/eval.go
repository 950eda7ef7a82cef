package fhirpath

import (
	"encoding/json"
	"reflect"
	"sort"
	"strconv"
	"strings"
)

// Item is one element of a collection an expression evaluates to: a value as decoded
// from JSON (map[string]any, []any is never an Item, string, json.Number, float64,
// bool) and its FHIR type when evaluation knows it: the resourceType of a resource, the
// type a choice element's name carries (valueQuantity: "Quantity"), the type of a
// literal, or the type resolve() found in a reference. Type is "" when unknown.
type Item struct {
	Value any
	Type  string
}

func jsonNumber(s string) json.Number { return json.Number(s) }

// env is what evaluation of one call to Evaluate shares: the resource it started from.
type env struct {
	root Item
}

// Evaluate evaluates e with doc (a resource decoded from JSON, or any element of one)
// as its context and returns the values of the resulting collection, arrays
// flattened. It never fails: as FHIRPath does, a path that is absent yields nothing.
//
// Navigation: a name selects the child elements of that name; a capitalised name
// equal to the resourceType of the focus (or Resource, DomainResource) selects the
// resource itself, so "Patient.name" applies to a Patient. A choice element is read
// under its base name: "value" reads valueQuantity, valueString… and "value.as(Quantity)"
// only valueQuantity.
//
// Functions: where, select, exists, all, empty, first, last, tail, single, count, not,
// hasValue, distinct, union, iif, toString, startsWith, contains, children, ofType, as,
// is, extension(url) and resolve(). resolve() reads no other resource: for a Reference
// it yields a stand-in resource {"resourceType", "id"} typed by the reference
// ("Patient/1", "https://x/fhir/Patient/1" → Patient), so "resolve() is Patient"
// tests the reference's type; "#id" resolves to the contained resource of doc.
// memberOf() needs terminology and is always empty.
//
// Variables: $this, %resource, %rootResource, %context.
func (e *Expr) Evaluate(doc any) []any {
	items := e.EvaluateItems(doc)
	out := make([]any, len(items))
	for i, it := range items {
		out[i] = it.Value
	}
	return out
}

// EvaluateItems is Evaluate, keeping the type each value is known to have (see Item).
func (e *Expr) EvaluateItems(doc any) []Item {
	ctx := items(doc, "")
	var root Item
	if len(ctx) == 1 {
		root = ctx[0]
	}
	return (&env{root: root}).eval(e.root, ctx)
}

// items flattens v (a value or an array of them) into a collection, typed typ.
func items(v any, typ string) []Item {
	switch v := v.(type) {
	case nil:
		return nil
	case []any:
		var out []Item
		for _, x := range v {
			out = append(out, items(x, typ)...)
		}
		return out
	case map[string]any:
		if rt, ok := v["resourceType"].(string); ok && typ == "" {
			typ = rt
		}
	}
	return []Item{{Value: v, Type: typ}}
}

func boolean(b bool) []Item { return []Item{{Value: b, Type: "boolean"}} }

func (x *env) eval(n node, focus []Item) []Item {
	switch n := n.(type) {
	case *literalNode:
		return n.items
	case *varNode:
		switch n.name {
		case "this", "context":
			return focus
		case "resource", "rootResource":
			if x.root.Value == nil {
				return nil
			}
			return []Item{x.root}
		}
		return nil
	case *memberNode:
		if n.target != nil {
			focus = x.eval(n.target, focus)
		}
		var out []Item
		for _, it := range focus {
			out = append(out, member(it, n.name)...)
		}
		return out
	case *indexNode:
		c := x.eval(n.target, focus)
		idx := x.eval(n.index, focus)
		if len(idx) != 1 {
			return nil
		}
		i, ok := toFloat(idx[0].Value)
		if !ok || i < 0 || int(i) >= len(c) {
			return nil
		}
		return c[int(i) : int(i)+1]
	case *typeTestNode:
		c := x.eval(n.x, focus)
		if n.op == "as" { // on several items too: see call
			return ofType(c, n.typ)
		}
		if len(c) != 1 {
			return nil
		}
		return boolean(isType(c[0], n.typ))
	case *unaryNode:
		c := x.eval(n.x, focus)
		if n.op == "+" || len(c) != 1 {
			return c
		}
		if f, ok := toFloat(c[0].Value); ok {
			return []Item{{Value: jsonNumber(strconv.FormatFloat(-f, 'f', -1, 64)), Type: c[0].Type}}
		}
		return nil
	case *binaryNode:
		return x.binary(n, focus)
	case *callNode:
		return x.call(n, focus)
	}
	return nil
}

// member returns the children called name of it.
func member(it Item, name string) []Item {
	m, ok := it.Value.(map[string]any)
	if !ok {
		return nil
	}
	if name != "" && name[0] >= 'A' && name[0] <= 'Z' {
		if rt, ok := m["resourceType"].(string); ok && isResourceType(rt, name) {
			return []Item{it}
		}
	}
	if v, ok := m[name]; ok {
		return items(v, "")
	}
	// A choice element: name[x] is written nameQuantity, nameString…; the suffix must
	// name a type, so periodUnit or durationMax are not mistaken for one.
	var keys []string
	for k := range m {
		if len(k) > len(name) && strings.HasPrefix(k, name) {
			if _, ok := choiceTypes[k[len(name):]]; ok {
				keys = append(keys, k)
			}
		}
	}
	sort.Strings(keys)
	var out []Item
	for _, k := range keys {
		out = append(out, items(m[k], choiceTypes[k[len(name):]])...)
	}
	return out
}

// choiceTypes maps each suffix a choice element's name may carry to its FHIR type.
var choiceTypes = func() map[string]string {
	m := map[string]string{}
	for _, t := range []string{
		"base64Binary", "boolean", "canonical", "code", "date", "dateTime", "decimal", "id",
		"instant", "integer", "markdown", "oid", "positiveInt", "string", "time",
		"unsignedInt", "uri", "url", "uuid", "Address", "Age", "Annotation", "Attachment",
		"CodeableConcept", "Coding", "ContactPoint", "Count", "Distance", "Duration",
		"HumanName", "Identifier", "Money", "Period", "Quantity", "Range", "Ratio",
		"Reference", "SampledData", "Signature", "Timing", "ContactDetail", "Contributor",
		"DataRequirement", "Expression", "ParameterDefinition", "RelatedArtifact",
		"TriggerDefinition", "UsageContext", "Dosage", "Meta",
	} {
		m[strings.ToUpper(t[:1])+t[1:]] = t
	}
	return m
}()

// quantityProfiles are the types that are a Quantity (is Quantity holds for them).
var quantityProfiles = map[string]bool{"Age": true, "Count": true, "Distance": true, "Duration": true, "MoneyQuantity": true, "SimpleQuantity": true}

// stringTypes are the FHIR primitive types whose JSON form is a string.
var stringTypes = map[string]bool{
	"string": true, "code": true, "uri": true, "url": true, "canonical": true, "id": true,
	"oid": true, "uuid": true, "markdown": true, "base64Binary": true, "date": true,
	"dateTime": true, "instant": true, "time": true,
}

// isResourceType reports whether a resource of type rt is a want.
func isResourceType(rt, want string) bool {
	switch want {
	case rt, "Resource":
		return true
	case "DomainResource":
		return rt != "Bundle" && rt != "Binary" && rt != "Parameters"
	}
	return false
}

// isType reports whether it is of type typ ("Quantity", "FHIR.Quantity", "System.String",
// "DateTime"). Case is ignored, so the System type DateTime and FHIR's dateTime match.
// A value whose type evaluation does not know is typed by its JSON form: a string is
// any string-valued primitive, a bool boolean, a number integer or decimal; an untyped
// object matches nothing.
func isType(it Item, typ string) bool {
	if i := strings.LastIndexByte(typ, '.'); i >= 0 {
		typ = typ[i+1:]
	}
	if it.Type != "" {
		if m, ok := it.Value.(map[string]any); ok {
			if rt, ok := m["resourceType"].(string); ok && rt == it.Type {
				return isResourceType(rt, typ)
			}
		}
		return strings.EqualFold(it.Type, typ) || strings.EqualFold(typ, "Quantity") && quantityProfiles[it.Type]
	}
	lower := strings.ToLower(typ[:1]) + typ[1:]
	switch v := it.Value.(type) {
	case string:
		return stringTypes[lower]
	case bool:
		return lower == "boolean"
	case json.Number, float64:
		f, _ := toFloat(v)
		return lower == "decimal" || lower == "integer" && f == float64(int64(f)) ||
			(lower == "positiveInt" || lower == "unsignedInt") && f == float64(int64(f)) && f >= 0
	}
	return false
}

func ofType(c []Item, typ string) []Item {
	var out []Item
	for _, it := range c {
		if isType(it, typ) {
			out = append(out, it)
		}
	}
	return out
}

func toFloat(v any) (float64, bool) {
	switch v := v.(type) {
	case json.Number:
		f, err := v.Float64()
		return f, err == nil
	case float64:
		return v, true
	case int:
		return float64(v), true
	}
	return 0, false
}

// truth is a collection's value where a boolean is expected: empty is unknown (ok
// false); a single boolean is itself; any other single item is true.
func truth(c []Item) (value, ok bool) {
	if len(c) != 1 {
		return false, false
	}
	if b, isBool := c[0].Value.(bool); isBool {
		return b, true
	}
	return true, true
}

// equal is FHIRPath "=" between two items: numbers by value, others by their JSON form.
func equal(a, b any) bool {
	fa, okA := toFloat(a)
	fb, okB := toFloat(b)
	if okA || okB {
		return okA && okB && fa == fb
	}
	return reflect.DeepEqual(a, b)
}

func (x *env) binary(n *binaryNode, focus []Item) []Item {
	l := x.eval(n.l, focus)
	switch n.op {
	case "and", "or", "xor", "implies":
		lv, lok := truth(l)
		// Short circuit where the left side decides, as FHIRPath allows.
		switch {
		case n.op == "and" && lok && !lv, n.op == "implies" && lok && !lv:
			return boolean(n.op == "implies")
		case n.op == "or" && lok && lv:
			return boolean(true)
		}
		rv, rok := truth(x.eval(n.r, focus))
		switch n.op {
		case "and":
			if rok && !rv {
				return boolean(false)
			}
			if lok && rok {
				return boolean(true)
			}
		case "or":
			if rok && rv {
				return boolean(true)
			}
			if lok && rok {
				return boolean(false)
			}
		case "xor":
			if lok && rok {
				return boolean(lv != rv)
			}
		case "implies":
			if rok && rv {
				return boolean(true)
			}
			if lok && rok {
				return boolean(false)
			}
		}
		return nil
	}
	r := x.eval(n.r, focus)
	switch n.op {
	case "|":
		return distinct(append(append([]Item(nil), l...), r...))
	case "=", "!=", "~", "!~":
		if len(l) == 0 || len(r) == 0 {
			if n.op[0] == '~' || n.op == "!~" {
				return boolean((len(l) == 0 && len(r) == 0) == (n.op == "~"))
			}
			return nil
		}
		eq := len(l) == len(r)
		for i := 0; eq && i < len(l); i++ {
			if n.op[len(n.op)-1] == '~' {
				eq = equivalent(l[i].Value, r[i].Value)
			} else {
				eq = equal(l[i].Value, r[i].Value)
			}
		}
		return boolean(eq == (n.op == "=" || n.op == "~"))
	case "<", ">", "<=", ">=":
		if len(l) != 1 || len(r) != 1 {
			return nil
		}
		cmp, ok := compare(l[0].Value, r[0].Value)
		if !ok {
			return nil
		}
		switch n.op {
		case "<":
			return boolean(cmp < 0)
		case ">":
			return boolean(cmp > 0)
		case "<=":
			return boolean(cmp <= 0)
		}
		return boolean(cmp >= 0)
	case "in", "contains":
		if n.op == "contains" {
			l, r = r, l
		}
		if len(l) == 0 {
			return nil
		}
		if len(l) != 1 {
			return nil
		}
		for _, it := range r {
			if equal(l[0].Value, it.Value) {
				return boolean(true)
			}
		}
		return boolean(false)
	case "&":
		return []Item{{Value: stringOf(l) + stringOf(r), Type: "string"}}
	case "+":
		if len(l) == 1 && len(r) == 1 {
			if ls, ok := l[0].Value.(string); ok {
				if rs, ok := r[0].Value.(string); ok {
					return []Item{{Value: ls + rs, Type: "string"}}
				}
			}
		}
		return arithmetic(n.op, l, r)
	}
	return arithmetic(n.op, l, r)
}

// arithmetic evaluates -, *, /, div and mod (and + on numbers) on single numbers.
func arithmetic(op string, l, r []Item) []Item {
	if len(l) != 1 || len(r) != 1 {
		return nil
	}
	a, okA := toFloat(l[0].Value)
	b, okB := toFloat(r[0].Value)
	if !okA || !okB {
		return nil
	}
	var v float64
	switch op {
	case "+":
		v = a + b
	case "-":
		v = a - b
	case "*":
		v = a * b
	case "/", "div", "mod":
		if b == 0 {
			return nil
		}
		switch op {
		case "/":
			v = a / b
		case "div":
			v = float64(int64(a / b))
		default:
			v = a - b*float64(int64(a/b))
		}
	}
	return []Item{{Value: jsonNumber(strconv.FormatFloat(v, 'f', -1, 64)), Type: "decimal"}}
}

// stringOf is the string value of a single-item collection ("" for empty), for &.
func stringOf(c []Item) string {
	if len(c) != 1 {
		return ""
	}
	switch v := c[0].Value.(type) {
	case string:
		return v
	case json.Number:
		return v.String()
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(v)
	}
	return ""
}

// equivalent is "~": strings ignoring case and surrounding space, else equal.
func equivalent(a, b any) bool {
	as, okA := a.(string)
	bs, okB := b.(string)
	if okA && okB {
		return strings.EqualFold(strings.Join(strings.Fields(as), " "), strings.Join(strings.Fields(bs), " "))
	}
	return equal(a, b)
}

// compare orders two numbers, or two strings (dates in ISO form order as strings).
func compare(a, b any) (int, bool) {
	if fa, ok := toFloat(a); ok {
		fb, ok := toFloat(b)
		if !ok {
			return 0, false
		}
		switch {
		case fa < fb:
			return -1, true
		case fa > fb:
			return 1, true
		}
		return 0, true
	}
	as, okA := a.(string)
	bs, okB := b.(string)
	if !okA || !okB {
		return 0, false
	}
	return strings.Compare(as, bs), true
}

// distinct drops repeated items (by "="), keeping the first of each.
func distinct(c []Item) []Item {
	var out []Item
next:
	for _, it := range c {
		for _, o := range out {
			if equal(it.Value, o.Value) {
				continue next
			}
		}
		out = append(out, it)
	}
	return out
}

func (x *env) call(n *callNode, focus []Item) []Item {
	c := focus
	if n.target != nil {
		c = x.eval(n.target, focus)
	}
	// each evaluates argument i once per item, with the item as focus and $this.
	each := func(i int, it Item) []Item { return x.eval(n.args[i], []Item{it}) }
	switch n.name {
	case "where", "select", "all":
		var out []Item
		for _, it := range c {
			r := each(0, it)
			switch n.name {
			case "select":
				out = append(out, r...)
			case "where":
				if v, ok := truth(r); ok && v {
					out = append(out, it)
				}
			case "all":
				if v, ok := truth(r); !ok || !v {
					return boolean(false)
				}
			}
		}
		if n.name == "all" {
			return boolean(true)
		}
		return out
	case "exists":
		if len(n.args) == 0 {
			return boolean(len(c) > 0)
		}
		for _, it := range c {
			if v, ok := truth(each(0, it)); ok && v {
				return boolean(true)
			}
		}
		return boolean(false)
	case "empty":
		return boolean(len(c) == 0)
	case "hasValue":
		if len(c) != 1 {
			return boolean(false)
		}
		_, complex := c[0].Value.(map[string]any)
		return boolean(!complex)
	case "first", "last", "single":
		if len(c) == 0 || n.name == "single" && len(c) > 1 {
			return nil
		}
		if n.name == "last" {
			return c[len(c)-1:]
		}
		return c[:1]
	case "tail":
		if len(c) < 2 {
			return nil
		}
		return c[1:]
	case "count":
		return []Item{{Value: jsonNumber(strconv.Itoa(len(c))), Type: "integer"}}
	case "not":
		if v, ok := truth(c); ok {
			return boolean(!v)
		}
		return nil
	case "distinct":
		return distinct(c)
	case "union":
		return distinct(append(append([]Item(nil), c...), x.eval(n.args[0], focus)...))
	case "iif":
		if v, ok := truth(x.eval(n.args[0], c)); ok && v {
			return x.eval(n.args[1], c)
		}
		if len(n.args) == 3 {
			return x.eval(n.args[2], c)
		}
		return nil
	case "toString":
		if len(c) != 1 {
			return nil
		}
		if _, complex := c[0].Value.(map[string]any); complex {
			return nil
		}
		return []Item{{Value: stringOf(c), Type: "string"}}
	case "startsWith", "contains":
		arg := x.eval(n.args[0], focus)
		if len(c) != 1 || len(arg) != 1 {
			return nil
		}
		s, ok1 := c[0].Value.(string)
		sub, ok2 := arg[0].Value.(string)
		if !ok1 || !ok2 {
			return nil
		}
		if n.name == "startsWith" {
			return boolean(strings.HasPrefix(s, sub))
		}
		return boolean(strings.Contains(s, sub))
	case "children":
		var out []Item
		for _, it := range c {
			if m, ok := it.Value.(map[string]any); ok {
				keys := make([]string, 0, len(m))
				for k := range m {
					keys = append(keys, k)
				}
				sort.Strings(keys)
				for _, k := range keys {
					out = append(out, items(m[k], "")...)
				}
			}
		}
		return out
	case "ofType", "as":
		// FHIRPath makes "as" on several items an error; R4 expressions apply it to
		// repeating elements (Observation.component.value as Quantity), so it filters
		// like ofType, as other servers do.
		return ofType(c, n.typ)
	case "is":
		if len(c) != 1 {
			return nil
		}
		return boolean(isType(c[0], n.typ))
	case "extension":
		urls := x.eval(n.args[0], focus)
		if len(urls) != 1 {
			return nil
		}
		var out []Item
		for _, it := range c {
			for _, ext := range member(it, "extension") {
				if m, ok := ext.Value.(map[string]any); ok && equal(m["url"], urls[0].Value) {
					out = append(out, Item{Value: ext.Value, Type: "Extension"})
				}
			}
		}
		return out
	case "resolve":
		var out []Item
		for _, it := range c {
			if r, ok := x.resolve(it); ok {
				out = append(out, r)
			}
		}
		return out
	}
	// memberOf needs a terminology server, which this package does not have.
	return nil
}

// resolve finds what the Reference (or canonical / uri string) it points to, without
// reading other resources: see Evaluate.
func (x *env) resolve(it Item) (Item, bool) {
	ref, _ := it.Value.(string)
	if m, ok := it.Value.(map[string]any); ok {
		ref, _ = m["reference"].(string)
	}
	if ref == "" {
		return Item{}, false
	}
	if strings.HasPrefix(ref, "#") {
		root, _ := x.root.Value.(map[string]any)
		for _, c := range items(root["contained"], "") {
			if m, ok := c.Value.(map[string]any); ok && m["id"] == ref[1:] {
				return c, true
			}
		}
		return Item{}, false
	}
	if i := strings.Index(ref, "/_history/"); i >= 0 {
		ref = ref[:i]
	}
	if i := strings.IndexAny(ref, "|?#"); i >= 0 {
		ref = ref[:i]
	}
	parts := strings.Split(ref, "/")
	if len(parts) < 2 {
		return Item{}, false
	}
	typ, id := parts[len(parts)-2], parts[len(parts)-1]
	if typ == "" || typ[0] < 'A' || typ[0] > 'Z' || id == "" {
		return Item{}, false
	}
	for i := 0; i < len(typ); i++ {
		if !isIdentStart(typ[i]) && !isDigit(typ[i]) {
			return Item{}, false
		}
	}
	return Item{Value: map[string]any{"resourceType": typ, "id": id}, Type: typ}, true
}
