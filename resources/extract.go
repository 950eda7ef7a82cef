package resources

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fhirbox/fhirbox/resources/fhirdate"
)

// Extract builds the search index of one resource of type typ from its decoded JSON
// content (decoded with json.Decoder.UseNumber; float64 and integer numbers are accepted
// too). Every search parameter of the type that has an Expression contributes entries;
// parameters read from a column (_id, _lastUpdated) do not. Values whose shape does not
// fit the parameter type are skipped, never an error: the index covers what can be
// searched, and validation is not its job. A value of the right shape that the index
// cannot hold (a string longer than MaxIndexValueBytes, a number beyond a float64) is a
// CodeUnprocessable error naming its path: indexing it cut or not at all would make
// searches silently wrong. Entries are deduplicated per parameter and come out in a
// stable order (parameters by name, values in document order).
//
// An unknown type is a CodeNotFound error; an expression of the registry that cannot be
// compiled is an internal error.
func (r *Registry) Extract(typ string, doc map[string]any) (*Index, error) {
	td, ok := r.Type(typ)
	if !ok {
		return nil, Errorf(CodeNotFound, "unknown resource type %q", typ)
	}
	x := extractor{idx: &Index{}, seen: map[any]bool{}}
	for _, name := range td.allParamNames() {
		p := td.Params[name]
		if p.Column != "" || p.Expression == "" {
			continue
		}
		e, err := compiledExpression(p)
		if err != nil {
			return nil, Internal(fmt.Errorf("%s.%s: %w", typ, p.Name, err))
		}
		for _, v := range e.eval(doc) {
			x.add(p, v)
			if x.bad != "" {
				return nil, &Error{
					Code:       CodeUnprocessable,
					Message:    fmt.Sprintf("%s: %s (search parameter %s)", e.locate(typ, doc, v), x.bad, p.Name),
					Expression: e.locate(typ, doc, v),
				}
			}
		}
	}
	return x.idx, nil
}

// MaxIndexValueBytes bounds a string, token or uri value in the search index, a token's
// system and code together: PostgreSQL's b-tree indexes take entries of at most 2,704
// bytes, and an entry also holds the type, parameter and id. A resource with a longer
// value is refused (CodeUnprocessable) on both databases alike, rather than failing on
// one or being indexed under a cut value that searches would get wrong.
const MaxIndexValueBytes = 2048

// located is a value an expression selects and its path in the document.
type located struct {
	v    any
	path string
}

// locate returns the path, "Type.name[0].family", of the first value that e selects in
// doc and that is v, for messages about it; the expression itself when none is.
func (e *expression) locate(typ string, doc map[string]any, v any) string {
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
					if literalString(obj[s.field]) == s.value && obj[s.field] != nil {
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

// expressions caches compiled expressions by parameter. Parameters live as long as
// their registry, which is normally the whole process, so the cache is never pruned.
var expressions sync.Map // *SearchParam → *expression (or error)

// compiledExpression returns p's expression compiled, compiling it on first use.
func compiledExpression(p *SearchParam) (*expression, error) {
	if v, ok := expressions.Load(p); ok {
		if err, bad := v.(error); bad {
			return nil, err
		}
		return v.(*expression), nil
	}
	e, err := compileExpression(p.Expression)
	if err != nil {
		expressions.Store(p, err)
		return nil, err
	}
	v, _ := expressions.LoadOrStore(p, e)
	if err, bad := v.(error); bad {
		return nil, err
	}
	return v.(*expression), nil
}

// expression is a compiled search parameter expression: the union of its paths.
type expression struct {
	paths [][]step
}

// step is one step of a path: navigation to a child element (field), or, when where is
// set, a filter keeping the elements whose field equals value.
type step struct {
	field string
	where bool
	value string
}

// compileExpression parses the FHIRPath subset the registry uses: paths joined by "|",
// each "Type.a.b" with optional ".where(field='literal')" filters after a step. The
// leading type name is dropped: the expression is only ever applied to its own type.
func compileExpression(expr string) (*expression, error) {
	var e expression
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

// eval applies the expression to doc and returns the selected values. Arrays are
// flattened at every step, as in FHIRPath, so "Patient.name.given" yields each given
// name of each name.
func (e *expression) eval(doc map[string]any) []any {
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
					if literalString(obj[s.field]) == s.value && obj[s.field] != nil {
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

// extractor accumulates the entries of one resource.
type extractor struct {
	idx  *Index
	seen map[any]bool // entries already added, to deduplicate
	// bad says why the last value added cannot be indexed: the resource is refused.
	bad string
}

// first reports whether entry is new, and remembers it.
func (x *extractor) first(entry any) bool {
	if x.seen[entry] {
		return false
	}
	x.seen[entry] = true
	return true
}

// add turns one selected value into entries according to p's type and v's shape.
func (x *extractor) add(p *SearchParam, v any) {
	switch p.Type {
	case TypeString:
		x.addString(p, v)
	case TypeToken:
		x.addToken(p, v)
	case TypeURI:
		if s, ok := v.(string); ok {
			x.token(p, "", s)
		}
	case TypeDate:
		x.addDate(p, v)
	case TypeNumber:
		if f, ok := x.numberOf(v); ok {
			x.number(NumberEntry{Param: p.Name, Value: f})
		}
	case TypeQuantity:
		x.addQuantity(p, v)
	case TypeReference:
		x.addReference(p, v)
	}
}

// nameParts and addressParts are the string elements of HumanName and Address that a
// string parameter on the whole datatype searches (FHIR: "any part of the name").
var (
	nameParts    = []string{"family", "given", "prefix", "suffix", "text"}
	addressParts = []string{"line", "city", "district", "state", "postalCode", "country", "text"}
)

func (x *extractor) addString(p *SearchParam, v any) {
	switch v := v.(type) {
	case string:
		x.string(p, v)
	case map[string]any:
		var parts []string
		switch {
		case hasAny(v, "family", "given", "prefix", "suffix"):
			parts = nameParts
		case hasAny(v, "line", "city", "district", "state", "postalCode", "country"):
			parts = addressParts
		case hasAny(v, "text") && onlyKeys(v, "text", "use", "type", "period", "id", "extension"):
			// A HumanName or Address given only as text; other objects with a text
			// (CodeableConcept, Narrative) are not strings to search.
			parts = []string{"text"}
		}
		for _, k := range parts {
			for _, s := range appendFlat(nil, v[k]) {
				if s, ok := s.(string); ok {
					x.string(p, s)
				}
			}
		}
	}
}

func hasAny(obj map[string]any, keys ...string) bool {
	for _, k := range keys {
		if _, ok := obj[k]; ok {
			return true
		}
	}
	return false
}

func onlyKeys(obj map[string]any, keys ...string) bool {
	for k := range obj {
		found := false
		for _, allowed := range keys {
			if k == allowed {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

func (x *extractor) string(p *SearchParam, s string) {
	n := NormalizeString(s)
	if n == "" {
		return
	}
	if len(s) > MaxIndexValueBytes || len(n) > MaxIndexValueBytes {
		x.bad = fmt.Sprintf("a string of %d bytes is longer than the %d bytes the search index holds", max(len(s), len(n)), MaxIndexValueBytes)
		return
	}
	e := StringEntry{Param: p.Name, Value: n, Exact: s}
	if x.first(e) {
		x.idx.Strings = append(x.idx.Strings, e)
	}
}

// contactSystems are ContactPoint.system codes. An object {system, value} whose system
// is one of them is a ContactPoint, indexed by its value alone (so email=a@b.c finds
// it); otherwise it is an Identifier, indexed as system|value.
var contactSystems = map[string]bool{
	"phone": true, "fax": true, "email": true, "pager": true, "url": true, "sms": true, "other": true,
}

func (x *extractor) addToken(p *SearchParam, v any) {
	switch v := v.(type) {
	case string:
		x.token(p, "", v)
	case bool:
		x.token(p, "", strconv.FormatBool(v))
	case json.Number:
		x.token(p, "", v.String())
	case map[string]any:
		system, _ := v["system"].(string)
		switch {
		case v["coding"] != nil: // CodeableConcept
			for _, c := range appendFlat(nil, v["coding"]) {
				if c, ok := c.(map[string]any); ok {
					s, _ := c["system"].(string)
					code, _ := c["code"].(string)
					x.token(p, s, code)
				}
			}
		case v["code"] != nil: // Coding
			code, _ := v["code"].(string)
			x.token(p, system, code)
		case v["value"] != nil: // Identifier or ContactPoint
			value, _ := v["value"].(string)
			if contactSystems[system] {
				system = ""
			}
			x.token(p, system, value)
		}
	}
}

func (x *extractor) token(p *SearchParam, system, code string) {
	if code == "" {
		return
	}
	if len(system)+len(code) > MaxIndexValueBytes {
		x.bad = fmt.Sprintf("a code and system of %d bytes together are longer than the %d bytes the search index holds", len(system)+len(code), MaxIndexValueBytes)
		return
	}
	e := TokenEntry{Param: p.Name, System: system, Code: code}
	if x.first(e) {
		x.idx.Tokens = append(x.idx.Tokens, e)
	}
}

// Bounds of an open Period: a missing start or end covers all time on that side.
var (
	periodLow  = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)
	periodHigh = time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)
)

func (x *extractor) addDate(p *SearchParam, v any) {
	var low, high time.Time
	switch v := v.(type) {
	case string:
		var err error
		if low, high, err = fhirdate.ParseRange(v); err != nil {
			return
		}
	case map[string]any: // Period
		start, sok := v["start"].(string)
		end, eok := v["end"].(string)
		if !sok && !eok {
			return
		}
		low, high = periodLow, periodHigh
		if sok {
			l, _, err := fhirdate.ParseRange(start)
			if err != nil {
				return
			}
			low = l
		}
		if eok {
			_, h, err := fhirdate.ParseRange(end)
			if err != nil {
				return
			}
			high = h
		}
		if !low.Before(high) {
			// An end before the start: no instant is inside, so nothing can match.
			return
		}
	default:
		return
	}
	e := DateEntry{Param: p.Name, Low: low, High: high}
	if x.first(e) {
		x.idx.Dates = append(x.idx.Dates, e)
	}
}

// number returns v as a finite float64 when it is a JSON number.
func number(v any) (float64, bool) {
	var f float64
	switch v := v.(type) {
	case json.Number:
		var err error
		if f, err = strconv.ParseFloat(string(v), 64); err != nil {
			return 0, false
		}
	case float64:
		f = v
	case float32:
		f = float64(v)
	case int:
		f = float64(v)
	case int64:
		f = float64(v)
	case int32:
		f = float64(v)
	default:
		return 0, false
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false
	}
	return f, true
}

// numberOf is number for a value to index: a JSON number that a float64 (the index
// column on both databases) cannot hold, beyond ±1.8e308 or so small that it would be
// indexed as 0, makes the resource unfit to index (x.bad) rather than missing from, or
// wrong in, the index. pkg/format refuses such numbers in request bodies already.
func (x *extractor) numberOf(v any) (float64, bool) {
	f, ok := number(v)
	if n, isNum := v.(json.Number); isNum && (!ok || f == 0 && strings.ContainsAny(mantissa(string(n)), "123456789")) {
		x.bad = fmt.Sprintf("the number %.40s is outside the range the search index holds (a 64-bit float: ±4.9e-324 to ±1.8e308)", n)
		return 0, false
	}
	return f, ok
}

// mantissa returns a number's text before its exponent.
func mantissa(s string) string {
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		return s[:i]
	}
	return s
}

func (x *extractor) number(e NumberEntry) {
	if x.first(e) {
		x.idx.Numbers = append(x.idx.Numbers, e)
	}
}

func (x *extractor) addQuantity(p *SearchParam, v any) {
	if q, ok := v.(map[string]any); ok {
		f, ok := x.numberOf(q["value"])
		if !ok {
			return
		}
		system, _ := q["system"].(string)
		code, _ := q["code"].(string)
		if code == "" {
			code, _ = q["unit"].(string)
		}
		x.number(NumberEntry{Param: p.Name, Value: f, System: system, Code: code})
		return
	}
	if f, ok := x.numberOf(v); ok {
		x.number(NumberEntry{Param: p.Name, Value: f})
	}
}

func (x *extractor) addReference(p *SearchParam, v any) {
	var typ, id string
	switch v := v.(type) {
	case string:
		typ, id = splitReference(v)
	case map[string]any:
		if ref, ok := v["reference"]; ok {
			s, _ := ref.(string)
			typ, id = splitReference(s)
		} else {
			// Aidbox's form {resourceType, id}.
			typ, _ = v["resourceType"].(string)
			id, _ = v["id"].(string)
			if !typeName.MatchString(typ) || !ValidID(id) {
				return
			}
		}
	}
	if typ == "" {
		return
	}
	if len(p.Targets) > 0 && !contains(p.Targets, typ) {
		return
	}
	e := ReferenceEntry{Param: p.Name, TargetType: typ, TargetID: id}
	if x.first(e) {
		x.idx.References = append(x.idx.References, e)
	}
}

// typeName is the syntax of a resource type name.
var typeName = regexp.MustCompile(`^[A-Z][A-Za-z0-9]{0,63}$`)

// splitReference splits a literal reference, relative ("Patient/123") or absolute
// ("https://host/fhir/Patient/123", "…/Patient/123/_history/2"), into its type and id.
// Contained ("#x"), urn: and otherwise unusable references give "", "".
func splitReference(ref string) (typ, id string) {
	if ref == "" || ref[0] == '#' || strings.HasPrefix(ref, "urn:") {
		return "", ""
	}
	if i := strings.IndexAny(ref, "?#"); i >= 0 {
		ref = ref[:i]
	}
	segs := strings.Split(strings.TrimSuffix(ref, "/"), "/")
	if n := len(segs); n >= 4 && segs[n-2] == "_history" {
		segs = segs[:n-2]
	}
	if len(segs) < 2 {
		return "", ""
	}
	typ, id = segs[len(segs)-2], segs[len(segs)-1]
	if !typeName.MatchString(typ) || !ValidID(id) {
		return "", ""
	}
	return typ, id
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
