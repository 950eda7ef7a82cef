package sqlstore

import (
	"context"

	"github.com/fhirbox/fhirbox/resources"
)

// History lists the versions of one resource (q.ID set), of one type, or of the types of a
// system-level history with db, newest first: last_updated descending, then version
// descending, then type and id, the order a cursor (q.After) continues.
func (d *Dialect) History(ctx context.Context, db Querier, q resources.HistoryQuery) (*resources.HistoryResult, error) {
	b := builder{d: d, typ: q.Type, types: q.Types, others: q.OtherTypes}
	b.WriteString(" FROM resource_history h WHERE ")
	b.typeCond("h.resource_type")
	if q.ID != "" {
		b.w(" AND h.id = ", b.arg(q.ID))
	}
	if !q.Since.IsZero() {
		b.w(" AND h.last_updated >= ", b.arg(q.Since))
	}
	if !q.AtHigh.IsZero() {
		// Current at some instant of [low, high): written before high, and its next
		// version (versions count up by one) not written at or before low.
		b.w(" AND h.last_updated < ", b.arg(q.AtHigh),
			" AND NOT EXISTS (SELECT 1 FROM resource_history n WHERE n.resource_type = h.resource_type AND n.id = h.id",
			" AND n.version_id = h.version_id + 1 AND n.last_updated <= ", b.arg(q.AtLow), ")")
	}
	from, args := b.String(), b.args

	res := &resources.HistoryResult{}
	count, offset := max(q.Count, 0), max(q.Offset, 0)
	if count > 0 {
		page := b.clone()
		if c := q.After; c != nil {
			// The first bound alone is what an index on last_updated can range over.
			lu, v, t := page.arg(c.LastUpdated), page.arg(c.VersionID), page.arg(c.Type)
			page.w(" AND h.last_updated <= ", lu, " AND (h.last_updated < ", lu, " OR h.version_id < ", v,
				" OR (h.version_id = ", v, " AND (h.resource_type > ", t, " OR (h.resource_type = ", t,
				" AND h.id > ", page.arg(c.ID), "))))")
		}
		// One row more than the page tells whether a next page has any.
		page.w(" ORDER BY h.last_updated DESC, h.version_id DESC, h.resource_type, h.id LIMIT ", page.arg(count+1),
			" OFFSET ", page.arg(offset))
		var err error
		if res.Entries, err = d.typedVersions(ctx, db, "SELECT h.resource_type, h.id, h.version_id, h.last_updated, h.deleted, h.content"+page.String(), page.args); err != nil {
			return nil, err
		}
		if res.More = len(res.Entries) > count; res.More {
			res.Entries = res.Entries[:count]
		}
		// The last page of a selection read from its start tells the total: no count.
		if n := len(res.Entries); !res.More && q.After == nil && (n > 0 || offset == 0) {
			res.Total = offset + n
			return res, nil
		}
	}
	if err := db.QueryRowContext(ctx, "SELECT count(*)"+from, args...).Scan(&res.Total); err != nil {
		return nil, d.Translate(ctx, err)
	}
	return res, nil
}

// versions runs query, which selects the id, version_id, last_updated, deleted and
// content of versions of resources of type typ, and returns them in order.
func (d *Dialect) versions(ctx context.Context, db Querier, typ, query string, args []any) ([]*resources.Resource, error) {
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, d.Translate(ctx, err)
	}
	defer rows.Close()
	var out []*resources.Resource
	for rows.Next() {
		r := &resources.Resource{Type: typ}
		var content []byte
		if err := rows.Scan(&r.ID, &r.VersionID, d.timeDest(&r.LastUpdated), &r.Deleted, &content); err != nil {
			return nil, d.Translate(ctx, err)
		}
		r.LastUpdated = r.LastUpdated.UTC()
		r.Content = content
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, d.Translate(ctx, err)
	}
	return out, nil
}
