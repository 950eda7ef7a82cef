package sqlstore

import (
	"context"

	"github.com/fhirbox/fhirbox/resources"
)

// confine writes " AND (<group> OR <group> …)": the resource satisfies one of the groups
// of a confinement (resources.Query.Confine). A compartment is tested as membership of
// the resource's id in the set of the type's resources that reference the compartment's
// resource through a compartment parameter — one index lookup that a patient's few
// hundred resources answer, so the database may start from it when the search's own
// clauses match many (conformance M6).
func (b *builder) confine(groups []resources.ConfineGroup) error {
	if len(groups) == 0 {
		b.WriteString(" AND 1 = 0")
		return nil
	}
	// The groups' clauses never drive the search nor make it select by id: they are
	// tested inside a disjunction.
	driver, selects := b.driver, b.selects
	// A compartment the search starts from (Dialect.drivers) selects the resources by
	// id, as a driving clause does: the ORDER BY then leaves the sort index alone.
	g := &groups[0]
	starts := b.compartmentStarts && len(groups) == 1 && g.Compartment != nil && len(g.Types) == 1 && g.Types[0] == b.typ
	defer func() { b.driver, b.selects = driver, selects || starts }()
	b.driver = nil
	b.WriteString(" AND (")
	for i := range groups {
		if i > 0 {
			b.WriteString(" OR ")
		}
		if err := b.confineGroup(&groups[i]); err != nil {
			return err
		}
	}
	b.WriteString(")")
	return nil
}

// confineGroup writes one group as a parenthesised conjunction.
func (b *builder) confineGroup(g *resources.ConfineGroup) error {
	r := b.res()
	b.WriteString("(1 = 1")
	switch len(g.Types) {
	case 0:
	case 1:
		b.w(" AND ", r, ".resource_type = ", b.arg(g.Types[0]))
	default:
		b.w(" AND ", r, ".resource_type IN (")
		for i, t := range g.Types {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(b.arg(t))
		}
		b.WriteString(")")
	}
	if c := g.Compartment; c != nil {
		self := len(g.Types) == 1 && g.Types[0] == c.Type
		b.WriteString(" AND (")
		members, resolved := b.members[g]
		switch {
		case self && len(g.Params) == 0:
			b.w(r, ".id = ", b.arg(c.ID))
		case resolved:
			b.w(r, ".id IN (")
			for i, m := range members {
				if i > 0 {
					b.WriteString(", ")
				}
				b.WriteString(b.arg(m))
			}
			b.WriteString(")")
		case len(g.Params) == 0:
			b.WriteString("1 = 0") // the type has no resources in such compartments
		default:
			// The type is bound, not correlated: the subquery is then a set the database
			// can compute once and start from. The compartment's own resource joins the
			// set rather than an OR beside it, which would keep SQLite from starting there.
			typ := r + ".resource_type"
			if len(g.Types) == 1 {
				typ = b.arg(g.Types[0])
			}
			b.w(r, ".id IN (")
			if self {
				b.w("SELECT ", b.arg(c.ID), " UNION ALL ")
			}
			b.WriteString("SELECT s.id")
			b.compartmentRefs(typ, g.Params, c)
			b.WriteString(")")
		}
		b.WriteString(")")
	}
	if g.InAny != "" {
		b.inAny(g.InAny, g.Params, g.After)
	}
	for i := range g.Clauses {
		if err := b.clause(&g.Clauses[i]); err != nil {
			return err
		}
	}
	b.WriteString(")")
	return nil
}

// confineMembers resolves the groups of q's confinements that confine a compartment's
// own type (the Patients in a Patient's compartment: the Patient and those that link
// to it) into the ids of their members, read with db before the search: a handful at
// most, which the search then tests as a list of values. As a subquery beside a
// search's own conditions the set cost PostgreSQL more to plan (0.5 ms) than the
// cheapest searches, one Patient by name, cost to run.
func (d *Dialect) confineMembers(ctx context.Context, db Querier, q *resources.Query) (map[*resources.ConfineGroup][]string, error) {
	var out map[*resources.ConfineGroup][]string
	for i := range q.Confine {
		for j := range q.Confine[i] {
			g := &q.Confine[i][j]
			c := g.Compartment
			if c == nil || len(g.Types) != 1 || g.Types[0] != c.Type || len(g.Params) == 0 {
				continue
			}
			b := &builder{d: d}
			b.WriteString("SELECT s.id")
			b.compartmentRefs(b.arg(c.Type), g.Params, c)
			rows, err := queryPrepared(ctx, db, b.String(), b.args...)
			if err != nil {
				return nil, d.Translate(ctx, err)
			}
			members := []string{c.ID}
			for rows.Next() {
				var id string
				if err := rows.Scan(&id); err != nil {
					rows.Close()
					return nil, d.Translate(ctx, err)
				}
				members = append(members, id)
			}
			err = rows.Err()
			rows.Close()
			if err != nil {
				return nil, d.Translate(ctx, err)
			}
			if out == nil {
				out = map[*resources.ConfineGroup][]string{}
			}
			out[g] = members
		}
	}
	return out, nil
}

// inAny writes " AND <the resource refers to some resource of compType through one of
// params>": a correlated EXISTS on the reference index's (resource_type, id, …) index.
// A patient-level export walks a type in id order a page at a time and keeps nearly
// every resource: the database probes each as the walk passes it, or merges the
// references in id order from after on (PostgreSQL), where the set of every resource
// that refers to some Patient ("id IN (…)") would be built again for every page.
func (b *builder) inAny(compType string, params []string, after string) {
	if len(params) == 0 {
		b.WriteString(" AND 1 = 0") // the type has no resources in such compartments
		return
	}
	r := b.res()
	b.w(" AND EXISTS (SELECT 1 FROM ", referenceTable.name, " s WHERE s.resource_type = ", r, ".resource_type AND s.id = ", r, ".id AND s.param IN (")
	for i, p := range params {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(b.arg(p))
	}
	b.w(") AND s.target_type = ", b.arg(compType))
	if after != "" {
		b.w(" AND s.id > ", b.arg(after))
	}
	b.WriteString(")")
}

// compartmentRefs writes " FROM search_reference s WHERE …": the index rows of the type
// typ (a placeholder, or a column of the statement) that refer to c through one of
// params.
func (b *builder) compartmentRefs(typ string, params []string, c *resources.Compartment) {
	b.w(" FROM ", referenceTable.name, " s WHERE s.resource_type = ", typ, " AND s.param IN (")
	for i, p := range params {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(b.arg(p))
	}
	b.w(") AND s.target_type = ", b.arg(c.Type), " AND s.target_id = ", b.arg(c.ID))
}
