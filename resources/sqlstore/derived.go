package sqlstore

import (
	"fmt"
	"regexp"

	"github.com/fhirbox/fhirbox/resources"
)

// derivedCond returns the condition of a clause that searches rows indexed under a
// derived name (see resources.ModifierParam, ComponentParam, PositionParam) or that
// searches in a way of its own: composite and near parameters, token :text and
// :of-type, reference :identifier, uri :contains. ok is false for every other clause.
func (b *builder) derivedCond(c *resources.Clause) (ic *indexCond, ok bool, err error) {
	p := c.Param
	switch {
	case p.Type == resources.TypeComposite:
		ic, err = b.compositeCond(c)
	case p.Type == resources.TypeSpecial:
		ic, err = b.nearCond(c)
	case p.Type == resources.TypeToken && c.Modifier == "text":
		ic = &indexCond{t: stringTable, param: resources.ModifierParam(p.Name, "text")}
		ic.cond = func() {
			b.or(len(c.Values), func(i int) {
				b.w("s.value LIKE ", b.arg(likeEscape(c.Values[i].Str)+"%"), ` ESCAPE '\'`)
			})
		}
	case p.Type == resources.TypeToken && c.Modifier == "of-type",
		p.Type == resources.TypeReference && c.Modifier == "identifier":
		ic = &indexCond{t: tokenTable, param: resources.ModifierParam(p.Name, c.Modifier)}
		ic.cond = func() { b.or(len(c.Values), func(i int) { b.token(&c.Values[i]) }) }
	case p.Type == resources.TypeURI && c.Modifier == "contains":
		ic = &indexCond{t: tokenTable, param: p.Name, scans: true}
		ic.cond = func() {
			b.or(len(c.Values), func(i int) {
				b.w("s.code LIKE ", b.arg("%"+likeEscape(c.Values[i].Str)+"%"), ` ESCAPE '\'`)
			})
		}
	default:
		return nil, false, nil
	}
	if ic != nil && c.Modifier == "missing" {
		if p.Type != resources.TypeComposite {
			ic.cond = nil
		}
		ic.negate = c.Missing
	} else if ic != nil && len(c.Values) == 0 {
		ic = nil // a value-less clause constrains nothing
	}
	return ic, true, err
}

// compositeCond matches the resources with one element whose components match every
// part of a value: a row of component 0 (the outer "s") and, for each further
// component, a row of the same resource and group (see resources.Index Group), or of
// the same resource alone when the composite's one element is the resource
// (c.Ungrouped). Component 0 leads because R4's composites start with the code that
// makes the value meaningful, and a code narrows the index the most.
func (b *builder) compositeCond(c *resources.Clause) (*indexCond, error) {
	p := c.Param
	names := c.Components
	if len(names) == 0 {
		for k := range p.Components {
			names = append(names, resources.ComponentParam(p.Name, k))
		}
	}
	tables := make([]indexTable, len(p.Components))
	for k, comp := range p.Components {
		t, ok := tableOf(comp.Type)
		if !ok || len(names) != len(p.Components) {
			return nil, &resources.Error{Code: resources.CodeInvalid, Expression: p.Name,
				Message: fmt.Sprintf("%s: component %s has a type (%s) fhirbox cannot search", p.Name, comp.Code, comp.Type)}
		}
		tables[k] = t
	}
	for _, v := range c.Values {
		if len(v.Components) != len(p.Components) {
			return nil, resources.Internal(fmt.Errorf("%s: composite value %q with %d components, %s has %d", b.d.Name, v.Raw, len(v.Components), p.Name, len(p.Components)))
		}
	}
	ic := &indexCond{t: tables[0], param: names[0]}
	// others writes " AND EXISTS (a row of each further component …)", value(k)
	// writing the condition on component k's row "s".
	others := func(value func(sub *builder, k int)) {
		for k := 1; k < len(p.Components); k++ {
			alias := fmt.Sprintf("c%d", k)
			b.w(" AND EXISTS (SELECT 1 FROM ", tables[k].name, " ", alias, " WHERE ", alias, ".resource_type = s.resource_type AND ",
				alias, ".id = s.id AND ", alias, ".param = ", b.arg(names[k]))
			if !c.Ungrouped {
				b.w(" AND ", alias, ".grp = s.grp")
			}
			if value != nil {
				b.WriteString(" AND ")
				b.aliased(alias, func(sub *builder) { value(sub, k) })
			}
			b.WriteString(")")
		}
	}
	if c.Modifier == "missing" {
		if c.Ungrouped && len(p.Components) > 1 {
			// A value of the resource's for every component.
			ic.negate = c.Missing
			ic.cond = func() { b.WriteString("1 = 1"); others(nil) }
			return ic, nil
		}
		return ic, nil // only complete elements have rows
	}
	for _, v := range c.Values {
		for _, cv := range v.Components {
			if cv.Prefix == resources.PrefixNe {
				ic.scans = true
			}
		}
	}
	ic.cond = func() {
		b.or(len(c.Values), func(i int) {
			v := &c.Values[i]
			b.component(p.Components[0].Type, &v.Components[0])
			others(func(sub *builder, k int) { sub.component(p.Components[k].Type, &v.Components[k]) })
		})
	}
	return ic, nil
}

// component writes the condition one part of a composite value puts on a row "s" of
// its component, as the parameter type of the component searches.
func (b *builder) component(t resources.ParamType, v *resources.Value) {
	b.WriteString("(")
	switch t {
	case resources.TypeString:
		b.w("s.value LIKE ", b.arg(likeEscape(v.Str)+"%"), ` ESCAPE '\'`)
	case resources.TypeURI:
		b.w("s.code = ", b.arg(v.Str))
	case resources.TypeToken:
		b.token(v)
	case resources.TypeDate:
		b.dateRange(v, "s.low", "s.high", false)
	case resources.TypeNumber, resources.TypeQuantity:
		b.number(v)
	case resources.TypeReference:
		b.reference(v, "")
	default:
		b.WriteString("1 = 0")
	}
	b.WriteString(")")
}

// rowAlias finds the references to the index row "s" in SQL that this package writes.
var rowAlias = regexp.MustCompile(`(^|[^A-Za-z0-9_.])s\.`)

// aliased runs write, which writes conditions on the index row "s" as the writers of
// search.go do, and writes its text with "s" renamed alias: the rows of a composite's
// further components are correlated with the row of its first, which keeps "s". The
// text renamed is this package's own SQL (values are bound, never written into it).
func (b *builder) aliased(alias string, write func(sub *builder)) {
	sub := &builder{d: b.d, args: b.args, typ: b.typ}
	write(sub)
	b.WriteString(rowAlias.ReplaceAllString(sub.String(), "${1}"+alias+"."))
	b.args = sub.args
}

// nearCond matches the Locations whose position is within the distance of a near
// value: each axis of the position's unit vector within the chord of the point's (the
// rows of axis x, which the index narrows, joined with y and z), then the exact
// distance. A chord grows with the distance along the surface, so comparing chords is
// comparing distances, in arithmetic both databases have.
func (b *builder) nearCond(c *resources.Clause) (*indexCond, error) {
	p := c.Param
	ic := &indexCond{t: numberTable, param: resources.PositionParam(p.Name, "x")}
	for _, v := range c.Values {
		if v.Near == nil {
			return nil, resources.Internal(fmt.Errorf("%s: near value %q without a position", b.d.Name, v.Raw))
		}
	}
	ic.cond = func() {
		b.or(len(c.Values), func(i int) {
			pt, chord := c.Values[i].Near.NearBox()
			// A hair of slack for the rounding of the stored axes: a point at exactly
			// the distance is near.
			const slack = 1e-12
			box := chord + slack
			x, y, z := b.arg(pt[0]), b.arg(pt[1]), b.arg(pt[2])
			b.w("s.value >= ", b.arg(pt[0]-box), " AND s.value <= ", b.arg(pt[0]+box),
				" AND EXISTS (SELECT 1 FROM search_number ny, search_number nz",
				" WHERE ny.resource_type = s.resource_type AND ny.id = s.id AND ny.param = ", b.arg(resources.PositionParam(p.Name, "y")),
				" AND nz.resource_type = s.resource_type AND nz.id = s.id AND nz.param = ", b.arg(resources.PositionParam(p.Name, "z")),
				" AND ny.value >= ", b.arg(pt[1]-box), " AND ny.value <= ", b.arg(pt[1]+box),
				" AND nz.value >= ", b.arg(pt[2]-box), " AND nz.value <= ", b.arg(pt[2]+box),
				" AND (s.value - ", x, ") * (s.value - ", x, ") + (ny.value - ", y, ") * (ny.value - ", y,
				") + (nz.value - ", z, ") * (nz.value - ", z, ") <= ", b.arg(box*box), ")")
		})
	}
	return ic, nil
}
