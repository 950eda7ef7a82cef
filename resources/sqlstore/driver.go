package sqlstore

import (
	"context"

	"github.com/fhirbox/fhirbox/resources"
)

// probeLimit caps the index rows that probing a clause counts. It is about where
// starting from a clause's matches stops paying: a page of 10 found by walking the type
// in sort order reads about N·10/m resources for m matches among N, against m when
// starting from the matches; the two meet at m = √(10·N), 1,000 for N = 100,000.
const probeLimit = 1000

// drivers picks the clause that a MatchIn search starts from, for the page and for the
// count: the clause that requires a row (not a negated one) with the fewest matching
// index rows, counted up to probeLimit. Every other clause is checked one resource at a
// time, so a search costs about as much as its most selective clause matches, however
// many resources the type has. A page in the order of an index (last updated, id) with
// probeLimit matches or more starts from no clause: SQLite walks the index and stops
// when the page is full. Neither starts from a clause when _id selects the resources.
//
// SQLite needs the choice made for it: it plans one "r.id IN (…)" as the start but
// builds every other one in full, which for a common value (gender=male) is half the
// table; and without statistics (a new database has none) it cannot tell a rare value
// from a common one anyway. Clauses that cannot narrow an index range are not probed
// (probing one would read every row of its parameter) and count as common.
func (d *Dialect) drivers(ctx context.Context, db Querier, q *resources.Query, members map[*resources.ConfineGroup][]string) (page, count *resources.Clause, compartment bool, err error) {
	if q.List != nil {
		return nil, nil, false, nil // the List's ids select the resources, as _id does
	}
	var cands, chains []*resources.Clause
	for i := range q.Clauses {
		c := &q.Clauses[i]
		if c.Param == nil {
			continue // reported when the statement is written
		}
		if len(c.Chain) > 0 {
			chains = append(chains, c)
			continue
		}
		if isFullText(c.Param) {
			if d.FTS5 && len(c.Values) > 0 {
				cands = append(cands, c)
			}
			continue
		}
		switch c.Param.Column {
		case "":
		case "id":
			if c.Modifier == "" && len(c.Values) > 0 {
				return nil, nil, false, nil
			}
			continue
		default:
			continue
		}
		ic, err := (&builder{d: d, typ: q.Type, types: q.Types, others: q.OtherTypes}).indexCond(c)
		if err != nil || ic == nil || ic.negate {
			continue // an error is reported when the statement is written
		}
		cands = append(cands, c)
	}
	if len(cands) == 0 && len(chains) == 0 {
		n, err := d.probeCompartments(ctx, db, q, members)
		return nil, nil, err == nil && n < probeLimit, err
	}
	var best *resources.Clause
	bestN := 0
	for _, c := range cands {
		if isFullText(c.Param) {
			n, err := d.probeText(ctx, db, c)
			if err != nil {
				return nil, nil, false, err
			}
			if best == nil || n < bestN {
				best, bestN = c, n
			}
			continue
		}
		pb := &builder{d: d, typ: q.Type, types: q.Types, others: q.OtherTypes}
		ic, _ := pb.indexCond(c)
		n := probeLimit
		if !ic.scans {
			pb.w("SELECT count(*) FROM (SELECT 1 FROM ", ic.t.name, " s WHERE ")
			pb.typeCond("s.resource_type")
			pb.w(" AND s.param = ", pb.arg(ic.param))
			if ic.cond != nil {
				pb.WriteString(" AND (")
				ic.cond()
				pb.WriteString(")")
			}
			pb.w(" LIMIT ", pb.arg(probeLimit), ")")
			if err := db.QueryRowContext(ctx, pb.String(), pb.args...).Scan(&n); err != nil {
				return nil, nil, false, d.Translate(ctx, err)
			}
		}
		if best == nil || n < bestN {
			best, bestN = c, n
		}
	}
	if best, bestN, err = d.probeChains(ctx, db, q, chains, best, bestN); err != nil {
		return nil, nil, false, err
	}
	// A compartment that holds fewer of the type than the best clause matches is the
	// better start: no clause drives, and the compartment's set selects the resources
	// (see builder.confine).
	n, err := d.probeCompartments(ctx, db, q, members)
	if err != nil {
		return nil, nil, false, err
	}
	if n < bestN {
		return nil, nil, true, nil
	}
	if bestN >= probeLimit && indexOrdered(q.Sort) {
		return nil, best, false, nil
	}
	return best, best, false, nil
}

// indexOrdered reports whether a sort is by columns of the resource table, whose
// indexes hold the resources in that order.
func indexOrdered(keys []resources.SortKey) bool {
	for _, k := range keys {
		if k.Param == nil || k.Param.Column == "" {
			return false
		}
	}
	return true
}

// probeCompartments counts, up to probeLimit, the members of the smallest compartment
// a confinement of q's one type holds it to (probeLimit when none does); those of a
// compartment's own type were read already (confineMembers).
func (d *Dialect) probeCompartments(ctx context.Context, db Querier, q *resources.Query, members map[*resources.ConfineGroup][]string) (int, error) {
	least := probeLimit
	if q.Type == "" {
		return least, nil
	}
	for _, groups := range q.Confine {
		if len(groups) != 1 {
			continue // a disjunction: no one set to start from
		}
		g := &groups[0]
		c := g.Compartment
		if c == nil || len(g.Types) != 1 || g.Types[0] != q.Type || len(g.Params) == 0 {
			continue
		}
		if m, ok := members[g]; ok {
			least = min(least, len(m))
			continue
		}
		pb := &builder{d: d}
		pb.WriteString("SELECT count(*) FROM (SELECT 1")
		pb.compartmentRefs(pb.arg(q.Type), g.Params, c)
		pb.w(" LIMIT ", pb.arg(probeLimit), ")")
		var n int
		if err := db.QueryRowContext(ctx, pb.String(), pb.args...).Scan(&n); err != nil {
			return 0, d.Translate(ctx, err)
		}
		least = min(least, n)
	}
	return least, nil
}
