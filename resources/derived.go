package resources

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/fhirbox/fhirbox/resources/fhirpath"
)

// The index rows a modifier or a composite parameter searches are stored in the same
// tables as the others, under names derived from the parameter's that no parameter can
// have (parameter names hold no ":" and no "#"):
//
//   - ModifierParam(p, "text"): string rows of a token parameter's display texts
//     (CodeableConcept.text, Coding.display, Identifier.type.text), for :text;
//   - ModifierParam(p, "of-type"): token rows "type system", "type code|value" of a
//     token parameter's Identifiers, for :of-type;
//   - ModifierParam(p, "identifier"): token rows of a reference parameter's
//     Reference.identifier, for :identifier;
//   - ComponentParam(p, k): the values of component k of a composite parameter, in the
//     table of the component's type, each element's rows sharing a Group number (none
//     for the composites whose element is the resource: see rootComponents);
//   - PositionParam(p, axis): the unit vector of a Location.position, for near.
//   - RangeHighParam(p): the high bounds of a quantity parameter's Range values, each
//     paired by its Group with the low bound under p itself (see range.go).

// BaseParam is the parameter whose rows are indexed under name: name itself, or the
// parameter a derived name (ModifierParam, ComponentParam, PositionParam,
// RangeHighParam) was made from.
func BaseParam(name string) string {
	if i := strings.IndexAny(name, ":#"); i >= 0 {
		return name[:i]
	}
	return name
}

// ModifierParam is the name under which the rows that modifier mod of parameter param
// searches are indexed.
func ModifierParam(param, mod string) string { return param + ":" + mod }

// ComponentParam is the name under which component k (from 0) of composite parameter
// param is indexed.
func ComponentParam(param string, k int) string { return param + "#" + strconv.Itoa(k) }

// PositionParam is the name under which one axis ("x", "y" or "z") of the positions
// a near parameter searches is indexed: the point's unit vector from the earth's centre,
// whose distances need no trigonometry in SQL (see Near).
func PositionParam(param, axis string) string { return param + "#" + axis }

// addGrouped indexes a composite or special parameter p of doc (of type td).
func (x *extractor) addGrouped(td *TypeDef, p *SearchParam, doc map[string]any) error {
	typ := td.Name
	if p.Internal || rootComponents(td, p) != nil {
		return nil
	}
	if p.Type == TypeSpecial {
		if !isNear(p) {
			return nil
		}
		for _, it := range p.expr.EvaluateItems(doc) {
			x.addPosition(p, it.Value)
		}
		return nil
	}
	comps := componentParams(p)
	if comps == nil {
		return nil
	}
	// Each element's rows are gathered apart: an element that lacks a component can
	// never match a search, which names every component, and is left out.
	sub := extractor{idx: &Index{}, seen: map[any]bool{}}
	for g, el := range p.expr.EvaluateItems(doc) {
		if g > 0 {
			sub.reset()
		}
		complete := true
		for k := range p.Components {
			c := &p.Components[k]
			var ctx any = el.Value
			if strings.HasPrefix(c.Expression, "%resource") {
				// The evaluator's %resource is the context it starts from.
				ctx = doc
			}
			before := sub.idx.size()
			for _, it := range c.expr.EvaluateItems(ctx) {
				sub.add(comps[k], it.Value)
				if obj, ok := it.Value.(map[string]any); ok && c.Type == TypeQuantity {
					sub.addUnits(comps[k], obj)
				}
				if sub.bad != "" {
					at := fhirpath.Locate(typ, doc, it.Value)
					return &Error{
						Code:       CodeUnprocessable,
						Message:    fmt.Sprintf("%s: %s (search parameter %s)", at, sub.bad, p.Name),
						Expression: at,
					}
				}
			}
			if sub.idx.size() == before {
				complete = false
				break
			}
		}
		if complete {
			x.group(sub.idx, g+1)
		}
	}
	return nil
}

// rootComponents returns, for a composite parameter whose one element is the resource
// itself (R4's Observation code-value-quantity, code-value-concept…), the parameters of
// the type that define its components, when each is there with the component's type:
// their rows are the component's values (R4 defines a component as its definition's
// parameter applied to the element), so the composite indexes no rows of its own and
// its search needs no groups. nil for every other parameter.
func rootComponents(td *TypeDef, p *SearchParam) []*SearchParam {
	if p.Type != TypeComposite || strings.TrimSpace(p.Expression) != td.Name {
		return nil
	}
	out := make([]*SearchParam, len(p.Components))
	for k, c := range p.Components {
		d := td.Params[c.Code]
		if d == nil || d.Type != c.Type || d.expr == nil || d.Column != "" || d.Internal {
			return nil
		}
		out[k] = d
	}
	return out
}

// reset empties x for the next element.
func (x *extractor) reset() {
	clear(x.seen)
	idx := x.idx
	idx.Strings, idx.Tokens, idx.Dates = idx.Strings[:0], idx.Tokens[:0], idx.Dates[:0]
	idx.Numbers, idx.References = idx.Numbers[:0], idx.References[:0]
	x.bad = ""
}

// components caches componentParams, which every write of a type with composites asks
// for: *SearchParam → []*SearchParam.
var components sync.Map

// componentParams returns the parameters under which p's components are indexed, nil
// when a component has a type no index table holds.
func componentParams(p *SearchParam) []*SearchParam {
	if c, ok := components.Load(p); ok {
		return c.([]*SearchParam)
	}
	c := newComponentParams(p)
	components.Store(p, c)
	return c
}

func newComponentParams(p *SearchParam) []*SearchParam {
	out := make([]*SearchParam, len(p.Components))
	for k, c := range p.Components {
		switch c.Type {
		case TypeString, TypeToken, TypeURI, TypeDate, TypeNumber, TypeQuantity, TypeReference:
		default:
			return nil
		}
		out[k] = &SearchParam{Name: ComponentParam(p.Name, k), Type: c.Type}
	}
	return out
}

// size counts idx's rows.
func (idx *Index) size() int {
	return len(idx.Strings) + len(idx.Tokens) + len(idx.Dates) + len(idx.Numbers) + len(idx.References)
}

// group adds idx's rows to x's as group g.
func (x *extractor) group(idx *Index, g int) {
	for _, e := range idx.Strings {
		if e.Group = g; x.first(e) {
			x.idx.Strings = append(x.idx.Strings, e)
		}
	}
	for _, e := range idx.Tokens {
		if e.Group = g; x.first(e) {
			x.idx.Tokens = append(x.idx.Tokens, e)
		}
	}
	for _, e := range idx.Dates {
		if e.Group = g; x.first(e) {
			x.idx.Dates = append(x.idx.Dates, e)
		}
	}
	for _, e := range idx.Numbers {
		if e.Group = g; x.first(e) {
			x.idx.Numbers = append(x.idx.Numbers, e)
		}
	}
	for _, e := range idx.References {
		if e.Group = g; x.first(e) {
			x.idx.References = append(x.idx.References, e)
		}
	}
}

// earthRadius is the mean radius of the earth in metres (IUGG), the sphere near
// measures distances on.
const earthRadius = 6371008.8

// addPosition indexes a Location.position ({latitude, longitude}) as its unit vector.
func (x *extractor) addPosition(p *SearchParam, v any) {
	pos, ok := v.(map[string]any)
	if !ok {
		return
	}
	lat, ok1 := number(pos["latitude"])
	long, ok2 := number(pos["longitude"])
	if !ok1 || !ok2 || math.Abs(lat) > 90 || math.Abs(long) > 180 {
		return
	}
	for axis, f := range unitVector(lat, long) {
		x.derivedNumber(NumberEntry{Param: PositionParam(p.Name, [3]string{"x", "y", "z"}[axis]), Value: f})
	}
}

// unitVector returns the point at lat, long (degrees) on the unit sphere.
func unitVector(lat, long float64) [3]float64 {
	φ, λ := lat*math.Pi/180, long*math.Pi/180
	return [3]float64{math.Cos(φ) * math.Cos(λ), math.Cos(φ) * math.Sin(λ), math.Sin(φ)}
}

// addDerived adds the rows the modifiers of p search for one value v of p.
func (x *extractor) addDerived(p *SearchParam, v any) {
	obj, ok := v.(map[string]any)
	if !ok || p.Internal {
		return
	}
	switch p.Type {
	case TypeToken:
		x.addTokenText(p, obj)
		x.addOfType(p, obj)
	case TypeReference:
		if id, ok := obj["identifier"].(map[string]any); ok {
			system, _ := id["system"].(string)
			value, _ := id["value"].(string)
			x.derivedToken(ModifierParam(p.Name, "identifier"), system, value)
		}
	case TypeQuantity:
		x.addUnits(p, obj)
	}
}

// addUnits adds the row of a Quantity's unit when it differs from its code (R4:
// "5.4||mmHg" matches the code or the unit; the unit has no system). A Money's currency
// is its code already (addQuantity).
func (x *extractor) addUnits(p *SearchParam, obj map[string]any) {
	f, ok := number(obj["value"])
	if !ok {
		return
	}
	code, _ := obj["code"].(string)
	if unit, _ := obj["unit"].(string); unit != "" && code != "" && unit != code {
		x.derivedNumber(NumberEntry{Param: p.Name, Value: f, Code: unit})
	}
}

// addTokenText indexes the texts :text searches: CodeableConcept.text and its codings'
// display, Coding.display, Identifier.type.text.
func (x *extractor) addTokenText(p *SearchParam, obj map[string]any) {
	name := ModifierParam(p.Name, "text")
	if t, ok := obj["text"].(string); ok {
		x.text(name, t)
	}
	for _, c := range fhirpath.Flatten(obj["coding"]) {
		if c, ok := c.(map[string]any); ok {
			if d, ok := c["display"].(string); ok {
				x.text(name, d)
			}
		}
	}
	if d, ok := obj["display"].(string); ok {
		x.text(name, d)
	}
	if typ, ok := obj["type"].(map[string]any); ok && obj["value"] != nil {
		if t, ok := typ["text"].(string); ok {
			x.text(name, t)
		}
	}
}

// text adds a string row for :text. A text is searched by its beginning, so one longer
// than the index holds is indexed by as much of its beginning as fits: every search
// value the parser accepts (at most MaxIndexValueBytes) gets the same answer.
func (x *extractor) text(param, s string) {
	n := NormalizeString(s)
	if len(n) > MaxIndexValueBytes {
		cut := MaxIndexValueBytes
		for cut > 0 && !utf8.RuneStart(n[cut]) {
			cut--
		}
		n = n[:cut]
	}
	if n == "" {
		return
	}
	e := StringEntry{Param: param, Value: n, Exact: n}
	if x.first(e) {
		x.idx.Strings = append(x.idx.Strings, e)
	}
}

// addOfType indexes an Identifier's type codings with its value, for :of-type.
func (x *extractor) addOfType(p *SearchParam, obj map[string]any) {
	value, ok := obj["value"].(string)
	typ, isMap := obj["type"].(map[string]any)
	if !ok || !isMap || value == "" {
		return
	}
	for _, c := range fhirpath.Flatten(typ["coding"]) {
		c, ok := c.(map[string]any)
		if !ok {
			continue
		}
		system, _ := c["system"].(string)
		if code, _ := c["code"].(string); code != "" {
			x.derivedToken(ModifierParam(p.Name, "of-type"), system, code+"|"+value)
		}
	}
}

// derivedToken adds a token row under a derived name. Unlike a parameter's own value,
// one longer than the index holds is skipped, not refused: no search value the parser
// accepts could equal it.
func (x *extractor) derivedToken(param, system, code string) {
	if code == "" || len(system)+len(code) > MaxIndexValueBytes {
		return
	}
	e := TokenEntry{Param: param, System: system, Code: code}
	if x.first(e) {
		x.idx.Tokens = append(x.idx.Tokens, e)
	}
}

// derivedNumber adds a number row unless x has it already.
func (x *extractor) derivedNumber(e NumberEntry) {
	if x.first(e) {
		x.idx.Numbers = append(x.idx.Numbers, e)
	}
}
