package sqlstore

import (
	"context"
	"strconv"

	"github.com/fhirbox/fhirbox/resources"
)

// A chained clause (resources.Clause.Chain) is written one link at a time, each link a
// subquery over search_reference with an alias of its own level (c1 for the first link,
// c2 for the next…), so that a condition always names the rows it means:
//
//	forward (subject:Patient.family=x), correlated:
//	  EXISTS (SELECT 1 FROM search_reference c1 WHERE c1.resource_type = r.resource_type
//	    AND c1.id = r.id AND c1.param = 'subject' AND (c1.target_type = 'Patient'
//	    AND c1.target_id IN (SELECT s.id FROM search_string s WHERE s.resource_type = 'Patient'
//	      AND s.param = 'family' AND (s.value LIKE 'x%'))))
//	reverse (_has:Observation:subject:code=x), correlated:
//	  EXISTS (SELECT 1 FROM search_reference c1 WHERE c1.resource_type = 'Observation'
//	    AND c1.param = 'subject' AND c1.target_type = 'Patient' AND c1.target_id = r.id
//	    AND c1.id IN (SELECT s.id FROM search_token s WHERE s.resource_type = 'Observation'
//	      AND s.param = 'code' AND (s.code = 'x')))
//
// When the clause drives a MatchIn search the same link selects the ids instead:
// "r.id IN (SELECT c1.id …)" forward, "r.id IN (SELECT c1.target_id …)" reverse. The
// inner set is the rest of the chain (see chainRest): the next link's select, the index
// rows of the last parameter or, for a last parameter that matches resources without a
// row (:missing=true, :not) or reads a column (_id, _lastUpdated), the live resources
// of the type (alias r1, r2… by level) tested by the clause as any clause is. The index
// subqueries keep their alias s: each is a scope of its own.
//
// Both directions use search_reference's two indexes: by target (resource_type, param,
// target_id, …) to go from the targets to the resources that refer to them, by resource
// (resource_type, id, param, …) for the other way. PostgreSQL plans every IN and EXISTS
// as a semi-join and picks the direction; SQLite builds the inner sets first (they are
// not correlated) and probes the indexes with them.

// chain writes " AND <c's first link leads to resources matching the rest of c>". A
// reverse link compares its rows' target ids with the resource table's key in the key's
// collation (Dialect.KeyCollate): in the "C" of the target column PostgreSQL could not use
// the key's index, and read every Patient of 100,000 to answer a _has that 59 match
// (95 ms; 2 ms in the key's collation).
func (b *builder) chain(c *resources.Clause) error {
	if c == b.driver {
		// Several types (a system-level search): their ids repeat, so (type, id) pairs.
		typed := b.typ == "" && len(b.types) > 1
		if typed {
			b.w(" AND (", b.res(), ".resource_type, ", b.res(), ".id) IN (")
		} else {
			b.w(" AND ", b.res(), ".id IN (")
		}
		if err := b.chainSelect(c, typed); err != nil {
			return err
		}
		b.WriteString(")")
		b.selects = true
		return nil
	}
	link := &c.Chain[0]
	k := b.level + 1
	ca := "c" + strconv.Itoa(k)
	b.w(" AND EXISTS (SELECT 1 FROM search_reference ", ca, " WHERE ")
	if link.Reverse {
		b.w(ca, ".resource_type = ", b.arg(link.Types[0]), " AND ", ca, ".param = ", b.arg(link.Param.Name), " AND ", ca, ".target_type = ")
		if b.typ == "" {
			b.w(b.res(), ".resource_type") // a system-level search: the type of each resource
		} else {
			b.WriteString(b.arg(b.typ))
		}
		b.w(" AND ", ca, ".target_id", b.d.KeyCollate, " = ", b.res(), ".id AND ", ca, ".id IN (")
		if err := b.chainRest(c, link.Types[0], false); err != nil {
			return err
		}
		b.WriteString("))")
		return nil
	}
	r := b.res()
	b.w(ca, ".resource_type = ", r, ".resource_type AND ", ca, ".id = ", r, ".id AND ", ca, ".param = ", b.arg(link.Param.Name), " AND ")
	if err := b.chainTargets(c, ca); err != nil {
		return err
	}
	b.WriteString(")")
	return nil
}

// chainSelect writes the select of the ids of the resources of b.typ whose first link of
// c leads to resources matching the rest of c: the form of a clause that drives a
// MatchIn search, and the probe of Dialect.drivers. typed selects (type, id) pairs. At
// the top of a system-level search b.typ is empty and typeCond names its types.
func (b *builder) chainSelect(c *resources.Clause, typed bool) error {
	link := &c.Chain[0]
	ca := "c" + strconv.Itoa(b.level+1)
	if link.Reverse {
		b.WriteString("SELECT ")
		if typed {
			b.w(ca, ".target_type, ")
		}
		b.w(b.probing, ca, ".target_id", b.d.KeyCollate, " FROM search_reference ", ca, " WHERE ", ca, ".resource_type = ", b.arg(link.Types[0]),
			" AND ", ca, ".param = ", b.arg(link.Param.Name), " AND ")
		b.typeCond(ca + ".target_type")
		b.w(" AND ", ca, ".id IN (")
		if err := b.chainRest(c, link.Types[0], false); err != nil {
			return err
		}
		b.WriteString(")")
		return nil
	}
	b.WriteString("SELECT ")
	if typed {
		b.w(ca, ".resource_type, ")
	}
	b.w(b.probing, ca, ".id FROM search_reference ", ca, " WHERE ")
	b.typeCond(ca + ".resource_type")
	b.w(" AND ", ca, ".param = ", b.arg(link.Param.Name), " AND ")
	return b.chainTargets(c, ca)
}

// chainTargets writes the condition on the target of the forward link's rows ca: one of
// the link's types, and a resource of that type that matches the rest of c. For several
// types the planners want different forms. PostgreSQL cannot turn IN subqueries under
// an OR into joins and ran them for every row of the link (Observation?subject.family=x
// on the Synthea sample: 42 ms, 7 ms as one IN over (type, id) pairs); SQLite uses no
// index for a row-value IN over a compound select, and reads every row of the link
// that way (2 ms with the OR, 22 ms without), so a MatchIn dialect gets the OR.
func (b *builder) chainTargets(c *resources.Clause, ca string) error {
	types := c.Chain[0].Types
	if len(types) == 1 || b.d.MatchIn {
		var err error
		b.or(len(types), func(i int) {
			b.w(ca, ".target_type = ", b.arg(types[i]), " AND ", ca, ".target_id IN (")
			if e := b.chainRest(c, types[i], false); e != nil && err == nil {
				err = e
			}
			b.WriteString(")")
		})
		return err
	}
	b.w("(", ca, ".target_type, ", ca, ".target_id) IN (")
	for i, t := range types {
		if i > 0 {
			b.WriteString(" UNION ALL ")
		}
		if err := b.chainRest(c, t, true); err != nil {
			return err
		}
	}
	b.WriteString(")")
	return nil
}

// chainRest writes the select of the ids of the live resources of typ that match the
// rest of c (c without its first link), one level down. A rest that requires an index
// row (a link, or a clause other than :missing=true and :not) selects the ids from the
// index rows alone: a deleted resource keeps no index rows (Dialect.Next, and the
// PostgreSQL store's write), so checking the resource table too would only cost one
// more probe per match (Patient?_has:Observation:subject:code=8302-2 on the Synthea
// sample: 1,060 of them). Any other rest tests the live resources of typ.
func (b *builder) chainRest(c *resources.Clause, typ string, typed bool) error {
	confs := b.chainConfine[typ]
	if len(confs) == 0 {
		return b.chainRestOf(c, typ, typed)
	}
	// A confined type: of the ids the rest selects, those the caller reaches.
	alias := "k" + strconv.Itoa(b.level+1)
	b.WriteString("SELECT ")
	if typed {
		b.w(alias, ".resource_type, ")
	}
	b.w(alias, ".id FROM resource ", alias, " WHERE ", alias, ".resource_type = ", b.arg(typ), " AND NOT ", alias, ".deleted AND ", alias, ".id IN (")
	if err := b.chainRestOf(c, typ, false); err != nil {
		return err
	}
	b.WriteString(")")
	typ0, driver0, selects0, r0, level0 := b.typ, b.driver, b.selects, b.r, b.level
	defer func() { b.typ, b.driver, b.selects, b.r, b.level = typ0, driver0, selects0, r0, level0 }()
	b.typ, b.r, b.driver, b.level = typ, alias, nil, b.level+1
	for _, groups := range confs {
		if err := b.confine(groups); err != nil {
			return err
		}
	}
	return nil
}

// chainRestOf is chainRest without confinement.
func (b *builder) chainRestOf(c *resources.Clause, typ string, typed bool) error {
	rest := *c
	rest.Chain = c.Chain[1:]
	typ0, driver0, selects0, r0, level0 := b.typ, b.driver, b.selects, b.r, b.level
	defer func() { b.typ, b.driver, b.selects, b.r, b.level = typ0, driver0, selects0, r0, level0 }()
	b.level++
	b.typ = typ
	if len(rest.Chain) > 0 {
		b.r = ""
		return b.chainSelect(&rest, typed)
	}
	if ic := b.rowCond(&rest); ic != nil {
		b.WriteString("SELECT ")
		if typed {
			b.WriteString("s.resource_type, ")
		}
		b.w("s.id FROM ", ic.t.name, " s WHERE s.resource_type = ", b.arg(typ), " AND s.param = ", b.arg(ic.param))
		if ic.cond != nil {
			b.WriteString(" AND (")
			ic.cond()
			b.WriteString(")")
		}
		return nil
	}
	b.r = "r" + strconv.Itoa(b.level)
	b.driver = nil
	b.WriteString("SELECT ")
	if typed {
		b.w(b.r, ".resource_type, ")
	}
	b.w(b.r, ".id FROM resource ", b.r, " WHERE ", b.r, ".resource_type = ", b.arg(typ), " AND NOT ", b.r, ".deleted")
	return b.clause(&rest)
}

// rowCond returns the condition of c when c requires an index row of its parameter,
// nil otherwise (a column parameter, :missing=true, :not, or an error, which the
// resource-table form then reports).
func (b *builder) rowCond(c *resources.Clause) *indexCond {
	if c.Param == nil || c.Param.Column != "" {
		return nil
	}
	ic, err := b.indexCond(c)
	if err != nil || ic == nil || ic.negate {
		return nil
	}
	return ic
}

// probeChains counts the matches of chained clauses, as drivers does for the others,
// and returns the best of them and best, the best other clause. A chain is probed only
// when no other clause has fewer than probeLimit rows: probing one computes its last
// link's matches in full (all the patients of a common name), while a chain checked
// against a few hundred candidates costs one index probe each.
func (d *Dialect) probeChains(ctx context.Context, db Querier, q *resources.Query, chains []*resources.Clause, best *resources.Clause, bestN int) (*resources.Clause, int, error) {
	if best != nil && bestN < probeLimit {
		return best, bestN, nil
	}
	for _, c := range chains {
		// The unary + makes the selected id an expression no index holds: for the
		// DISTINCT, SQLite (without statistics) otherwise read the link's rows in the
		// order of its target index, every row of the parameter (a _has at 100,000
		// patients: 410 ms; 2.9 ms with it).
		pb := &builder{d: d, typ: q.Type, types: q.Types, others: q.OtherTypes, probing: "+"}
		// DISTINCT: a _has link finds a resource once per resource referring to it
		// (Patient?_has:Observation:subject:code=8302-2: 1,060 rows, 126 patients).
		pb.WriteString("SELECT count(*) FROM (SELECT DISTINCT * FROM (")
		if err := pb.chainSelect(c, false); err != nil {
			return nil, 0, err
		}
		pb.WriteString(") m")
		pb.w(" LIMIT ", pb.arg(probeLimit), ") d")
		n := probeLimit
		if err := db.QueryRowContext(ctx, pb.String(), pb.args...).Scan(&n); err != nil {
			return nil, 0, d.Translate(ctx, err)
		}
		if best == nil || n < bestN {
			best, bestN = c, n
		}
	}
	return best, bestN, nil
}
