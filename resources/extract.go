package resources

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fhirbox/fhirbox/resources/fhirdate"
	"github.com/fhirbox/fhirbox/resources/fhirpath"
	"github.com/tidwall/gjson"
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
	return extract(td, doc, td.indexed)
}

// extractStored is Extract of content, a stored document of typ, for the parameters
// named in names alone (those the type indexes; others are skipped): what a
// confinement tests of each resource it reads. Only the top-level elements their
// expressions read are decoded (SearchParam.elements): the rest of the document is
// skipped over, not decoded. An Observation's compartment parameters: ~9 µs, against
// ~75 µs to decode the whole and extract every parameter (BenchmarkExtract).
func (r *Registry) extractStored(typ string, content []byte, names []string) (*Index, error) {
	td, ok := r.Type(typ)
	if !ok {
		return nil, Errorf(CodeNotFound, "unknown resource type %q", typ)
	}
	var params []*SearchParam
	partial := true
	var elements []string
	for _, p := range td.indexed {
		if slices.Contains(names, p.Name) {
			params = append(params, p)
			partial = partial && p.elementsOK
			elements = append(elements, p.elements...)
		}
	}
	doc, err := decodeElements(content, elements, partial)
	if err != nil {
		return nil, Internal(fmt.Errorf("index of a stored %s: %w", typ, err))
	}
	return extract(td, doc, params)
}

// decodeElements decodes content, a JSON object, whole; or, when partial, only its
// resourceType and the members named by elements or by a choice element's base name
// in elements (valueQuantity for value). gjson finds them without decoding the others.
func decodeElements(content []byte, elements []string, partial bool) (map[string]any, error) {
	doc := map[string]any{}
	if !partial {
		return doc, decodeNumbers(content, &doc)
	}
	if !gjson.ValidBytes(content) {
		return nil, errors.New("invalid JSON")
	}
	var err error
	gjson.ParseBytes(content).ForEach(func(k, v gjson.Result) bool {
		name := k.String()
		if name != "resourceType" && !slices.ContainsFunc(elements, func(e string) bool { return strings.HasPrefix(name, e) }) {
			return true
		}
		var val any
		if err = decodeNumbers([]byte(v.Raw), &val); err != nil {
			return false
		}
		doc[name] = val
		return true
	})
	return doc, err
}

// decodeNumbers decodes raw into v with numbers as json.Number, as resources are
// decoded when written (and indexed).
func decodeNumbers(raw []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	return d.Decode(v)
}

// extract indexes doc, a document of td, under params.
func extract(td *TypeDef, doc map[string]any, params []*SearchParam) (*Index, error) {
	typ := td.Name
	if doc["resourceType"] != typ {
		// Expressions start from the type name, which must be the document's.
		typed := make(map[string]any, len(doc)+1)
		for k, v := range doc {
			typed[k] = v
		}
		typed["resourceType"] = typ
		doc = typed
	}
	x := extractor{idx: &Index{}, seen: map[any]bool{}}
	for _, p := range params {
		if p.Type == TypeComposite || p.Type == TypeSpecial {
			if err := x.addGrouped(td, p, doc); err != nil { // derived.go
				return nil, err
			}
			continue
		}
		for _, it := range p.expr.EvaluateItems(doc) {
			x.add(p, it.Value)
			x.addDerived(p, it.Value) // rows for the modifiers: derived.go
			if x.bad != "" {
				at := fhirpath.Locate(typ, doc, it.Value)
				return nil, &Error{
					Code:       CodeUnprocessable,
					Message:    fmt.Sprintf("%s: %s (search parameter %s)", at, x.bad, p.Name),
					Expression: at,
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

// extractor accumulates the entries of one resource.
type extractor struct {
	idx  *Index
	seen map[any]bool // entries already added, to deduplicate
	// bad says why the last value added cannot be indexed: the resource is refused.
	bad string
	// ranges counts the Range values indexed, which number their rows (see range.go).
	ranges int
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
			for _, s := range fhirpath.Flatten(v[k]) {
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
			for _, c := range fhirpath.Flatten(v["coding"]) {
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
	var ok bool
	switch v := v.(type) {
	case string:
		var err error
		if low, high, err = fhirdate.ParseRange(v); err != nil {
			return
		}
	case map[string]any:
		if _, isPeriod := v["start"]; isPeriod || v["end"] != nil {
			low, high, ok = periodRange(v)
		} else {
			low, high, ok = timingRange(v)
		}
		if !ok {
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

// periodRange returns the instants a Period covers; ok is false for one with neither
// bound, a bound that is no date, or an end before its start (no instant is inside, so
// nothing can match).
func periodRange(v map[string]any) (low, high time.Time, ok bool) {
	start, sok := v["start"].(string)
	end, eok := v["end"].(string)
	if !sok && !eok {
		return low, high, false
	}
	low, high = periodLow, periodHigh
	if sok {
		l, _, err := fhirdate.ParseRange(start)
		if err != nil {
			return low, high, false
		}
		low = l
	}
	if eok {
		_, h, err := fhirdate.ParseRange(end)
		if err != nil {
			return low, high, false
		}
		high = h
	}
	return low, high, low.Before(high)
}

// timingRange returns the outer limits of a Timing: from its earliest event or the
// start of repeat.boundsPeriod to its latest event or the end of the bounds. FHIR
// search ignores the schedule within them ("only the outer limits matter"), which
// keeps one entry per Timing. ok is false for a Timing with neither events nor a
// bounding Period (a bare code or a boundsDuration says no date).
func timingRange(v map[string]any) (low, high time.Time, ok bool) {
	widen := func(l, h time.Time) {
		if !ok || l.Before(low) {
			low = l
		}
		if !ok || h.After(high) {
			high = h
		}
		ok = true
	}
	for _, ev := range fhirpath.Flatten(v["event"]) {
		if s, isStr := ev.(string); isStr {
			if l, h, err := fhirdate.ParseRange(s); err == nil {
				widen(l, h)
			}
		}
	}
	if repeat, isObj := v["repeat"].(map[string]any); isObj {
		if bounds, isObj := repeat["boundsPeriod"].(map[string]any); isObj {
			if l, h, valid := periodRange(bounds); valid {
				widen(l, h)
			}
		}
	}
	return low, high, ok
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

// currencySystem is the system of Money's currency codes (ISO 4217), under which a
// quantity search finds an amount: Claim?total=100|urn:iso:std:iso:4217|EUR.
const currencySystem = "urn:iso:std:iso:4217"

func (x *extractor) addQuantity(p *SearchParam, v any) {
	if q, ok := v.(map[string]any); ok {
		if p.ranged && q["value"] == nil && (q["low"] != nil || q["high"] != nil) {
			x.addRange(p, q)
			return
		}
		f, ok := x.numberOf(q["value"])
		if !ok {
			return
		}
		system, code := quantityUnit(q)
		x.number(NumberEntry{Param: p.Name, Value: f, System: system, Code: code})
		return
	}
	if f, ok := x.numberOf(v); ok {
		x.number(NumberEntry{Param: p.Name, Value: f})
	}
}

// quantityUnit returns the system and code a quantity search matches a Quantity's (or
// Money's) unit by: its system and code, the currency of Money, the unit text when
// there is no code.
func quantityUnit(q map[string]any) (system, code string) {
	system, _ = q["system"].(string)
	code, _ = q["code"].(string)
	if currency, isMoney := q["currency"].(string); isMoney && system == "" && code == "" {
		system, code = currencySystem, currency
	}
	if code == "" {
		code, _ = q["unit"].(string)
	}
	return system, code
}

func (x *extractor) addReference(p *SearchParam, v any) {
	var typ, id string
	switch v := v.(type) {
	case string: // a canonical or uri
		typ, id = splitReference(unversioned(v))
	case map[string]any:
		if ref, ok := v["reference"]; ok {
			s, _ := ref.(string)
			typ, id = splitReference(unversioned(s))
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

// unversioned returns a canonical URL without its "|version": the index keeps the
// type and id the URL ends in, so ActivityDefinition?composed-of=PlanDefinition/p1 (or
// the URL) finds "http://x/fhir/PlanDefinition/p1|2.0". A search naming a version is
// refused (not a reference), never answered without it.
func unversioned(ref string) string {
	if i := strings.IndexByte(ref, '|'); i >= 0 {
		return ref[:i]
	}
	return ref
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
