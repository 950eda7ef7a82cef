package sqlstore

import (
	"context"

	"github.com/fhirbox/fhirbox/resources"
)

// History lists the versions of one resource (q.ID set) or of one type with db, newest
// first.
func (d *Dialect) History(ctx context.Context, db Querier, q resources.HistoryQuery) (*resources.HistoryResult, error) {
	b := builder{d: d}
	b.WriteString(" FROM resource_history WHERE resource_type = ")
	b.WriteString(b.arg(q.Type))
	if q.ID != "" {
		b.WriteString(" AND id = ")
		b.WriteString(b.arg(q.ID))
	}
	if !q.Since.IsZero() {
		b.WriteString(" AND last_updated >= ")
		b.WriteString(b.arg(q.Since))
	}
	from, args := b.String(), b.args

	res := &resources.HistoryResult{}
	count, offset := max(q.Count, 0), max(q.Offset, 0)
	if count > 0 {
		page := b.clone()
		page.WriteString(" ORDER BY last_updated DESC, version_id DESC, id LIMIT ")
		page.WriteString(page.arg(count))
		page.WriteString(" OFFSET ")
		page.WriteString(page.arg(offset))
		var err error
		if res.Entries, err = d.versions(ctx, db, q.Type, "SELECT id, version_id, last_updated, deleted, content"+page.String(), page.args); err != nil {
			return nil, err
		}
		// A page that is not full ends the selection: its total needs no count.
		if n := len(res.Entries); n < count && (n > 0 || offset == 0) {
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
