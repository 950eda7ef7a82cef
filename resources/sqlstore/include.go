package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"

	"github.com/fhirbox/fhirbox/resources"
)

// Include returns the live resources that q's links lead to from q.From (see
// resources.Store.Include), in one statement: the keys every link reads from
// search_reference, each once (DISTINCT, UNION), joined to the resource table, so that
// a Patient that twenty Observations of a page refer to is read once, not twenty times.
// Forward links read the index rows of the From resources by (resource_type, id), the
// search_reference_probe index; reverse links those pointing at them by (resource_type,
// param, target_id), search_reference_target. Only when the ids would bind more values
// than a statement takes are they split over several statements.
func (d *Dialect) Include(ctx context.Context, db Querier, q resources.IncludeQuery) ([]*resources.Resource, error) {
	if len(q.Links) == 0 || q.Limit <= 0 {
		return nil, nil
	}
	type key struct{ typ, id string }
	seen := map[key]bool{}
	var out []*resources.Resource
	for _, from := range splitFrom(q.From, d.includeChunk(q.Links)) {
		b := &builder{d: d}
		if !b.include(from, q.Links, q.Limit-len(out)) {
			continue
		}
		rows, err := db.QueryContext(ctx, b.String(), b.args...)
		if err != nil {
			return nil, d.Translate(ctx, err)
		}
		for rows.Next() {
			r := &resources.Resource{}
			var content []byte
			if err := rows.Scan(&r.Type, &r.ID, &r.VersionID, d.timeDest(&r.LastUpdated), &content); err != nil {
				rows.Close()
				return nil, d.Translate(ctx, err)
			}
			if k := (key{r.Type, r.ID}); !seen[k] {
				seen[k] = true
				r.LastUpdated = r.LastUpdated.UTC()
				r.Content = content
				out = append(out, r)
			}
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, d.Translate(ctx, err)
		}
		if len(out) >= q.Limit {
			break
		}
	}
	return out, nil
}

// include writes the statement of links from the resources of from, at most limit rows.
// It reports false when no link applies to them.
func (b *builder) include(from map[string][]string, links []resources.IncludeLink, limit int) bool {
	parts := 0
	union := func() {
		if parts > 0 {
			b.WriteString(" UNION ")
		}
		parts++
	}
	b.WriteString("SELECT r.resource_type, r.id, r.version_id, r.last_updated, r.content FROM (")
	// Forward links from one type share its ids: one branch per type.
	for _, typ := range sortedKeys(from) {
		var fwd []resources.IncludeLink
		for _, l := range links {
			if !l.Reverse && l.Source == typ {
				fwd = append(fwd, l)
			}
		}
		if len(fwd) == 0 {
			continue
		}
		union()
		b.w("SELECT DISTINCT ", b.unordered("s.target_type"), " AS t, ", b.unordered("s.target_id"),
			" AS i FROM search_reference s WHERE s.resource_type = ", b.arg(typ), " AND s.id IN (")
		b.ids(from[typ])
		b.WriteString(") AND ")
		b.or(len(fwd), func(i int) {
			b.WriteString("s.param IN (")
			b.list(fwd[i].Params)
			b.WriteString(")")
			if fwd[i].Target != "" {
				b.w(" AND s.target_type = ", b.arg(fwd[i].Target))
			}
		})
	}
	for _, l := range links {
		ids := from[l.Target]
		if !l.Reverse || len(ids) == 0 {
			continue
		}
		union()
		b.w("SELECT DISTINCT ", b.unordered("s.resource_type"), " AS t, ", b.unordered("s.id"),
			" AS i FROM search_reference s WHERE s.resource_type = ", b.arg(l.Source), " AND s.param IN (")
		b.list(l.Params)
		b.w(") AND s.target_type = ", b.arg(l.Target), " AND s.target_id IN (")
		b.ids(ids)
		b.WriteString(")")
	}
	if parts == 0 {
		return false
	}
	// The keys come from search_reference, whose target columns PostgreSQL compares
	// under collation "C"; compared with the resource table's key under another, they
	// could not use its index.
	b.w(") k JOIN resource r ON r.resource_type = k.t", b.d.KeyCollate, " AND r.id = k.i", b.d.KeyCollate,
		" WHERE NOT r.deleted LIMIT ", b.arg(limit))
	return true
}

// unordered writes a column that DISTINCT selects. Without statistics, SQLite would
// read the rows from the index that yields that column in order, so that DISTINCT needs
// no sorting, even where the index narrows nothing but the type: every row of the
// parameter (16,067 for Observation.subject on the Synthea sample) instead of the
// page's. A unary + makes the column an expression no index holds, as orderBy does.
func (b *builder) unordered(col string) string {
	if b.d.MatchIn {
		return "+" + col
	}
	return col
}

// ids writes a set of ids for IN (…): one placeholder each, or, where the dialect has
// ValuesOf, the rows of one argument holding them all.
func (b *builder) ids(ids []string) {
	if b.d.ValuesOf == "" || len(ids) < 2 {
		b.list(ids)
		return
	}
	js, _ := json.Marshal(ids) // strings always encode
	b.WriteString(fmt.Sprintf(b.d.ValuesOf, b.arg(string(js))))
}

// list writes the placeholders of a comma list of values.
func (b *builder) list(vs []string) {
	for i, v := range vs {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(b.arg(v))
	}
}

// includeChunk is how many ids of From one statement may bind for links: each id is bound
// once for the forward links of its type and once per reverse link to its type; the
// parameter names and types bound besides are few. With ValuesOf, a set of ids is one
// argument, and any number fits.
func (d *Dialect) includeChunk(links []resources.IncludeLink) int {
	if d.ValuesOf != "" {
		return math.MaxInt
	}
	perID, fixed := 1, 0
	for _, l := range links {
		fixed += len(l.Params) + 2
		if l.Reverse {
			perID++
		}
	}
	return max(1, (maxArgs-fixed-16)/perID)
}

// splitFrom splits from into parts of at most n ids each (one part, from itself, when it
// fits).
func splitFrom(from map[string][]string, n int) []map[string][]string {
	total := 0
	for _, ids := range from {
		total += len(ids)
	}
	if total <= n {
		return []map[string][]string{from}
	}
	var parts []map[string][]string
	cur, size := map[string][]string{}, 0
	for _, typ := range sortedKeys(from) {
		ids := from[typ]
		for len(ids) > 0 {
			k := min(len(ids), n-size)
			cur[typ] = append(cur[typ], ids[:k]...)
			ids, size = ids[k:], size+k
			if size == n {
				parts = append(parts, cur)
				cur, size = map[string][]string{}, 0
			}
		}
	}
	if size > 0 {
		parts = append(parts, cur)
	}
	return parts
}

func sortedKeys(m map[string][]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
