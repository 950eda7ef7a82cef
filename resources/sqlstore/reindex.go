package sqlstore

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fhirbox/fhirbox/resources"
)

// CountLive counts the live resources of typ, only those last updated at or after since
// when since is not zero (resources.IndexRewriter).
func (d *Dialect) CountLive(ctx context.Context, q Querier, typ string, since time.Time) (int64, error) {
	stmt, args := "SELECT count(*) FROM resource WHERE resource_type = $1 AND NOT deleted", []any{typ}
	if !since.IsZero() {
		stmt += " AND last_updated >= $2"
		args = append(args, d.timeArg(since))
	}
	var n int64
	if err := q.QueryRowContext(ctx, stmt, args...).Scan(&n); err != nil {
		return 0, d.Translate(ctx, err)
	}
	return n, nil
}

// BatchSQL selects the resources of a resources.RewriteBatch, in id order; lock is
// appended (PostgreSQL: FOR UPDATE). Scan its rows with ScanBatch.
func (d *Dialect) BatchSQL(b resources.RewriteBatch, lock string) (string, []any) {
	stmt := "SELECT id, version_id, last_updated, content FROM resource WHERE resource_type = $1 AND id > $2 AND NOT deleted"
	args := []any{b.Type, b.After}
	if !b.Since.IsZero() {
		args = append(args, d.timeArg(b.Since))
		stmt += " AND last_updated >= $" + strconv.Itoa(len(args))
	}
	args = append(args, b.Limit)
	stmt += " ORDER BY id LIMIT $" + strconv.Itoa(len(args))
	if lock != "" {
		stmt += " " + lock
	}
	return stmt, args
}

// ScanBatch reads the rows of BatchSQL.
func (d *Dialect) ScanBatch(ctx context.Context, q Querier, typ, stmt string, args []any) ([]*resources.Resource, error) {
	rows, err := q.QueryContext(ctx, stmt, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*resources.Resource
	for rows.Next() {
		r := &resources.Resource{Type: typ}
		var content []byte
		if err := rows.Scan(&r.ID, &r.VersionID, d.timeDest(&r.LastUpdated), &content); err != nil {
			return nil, err
		}
		r.LastUpdated = r.LastUpdated.UTC()
		r.Content = content
		out = append(out, r)
	}
	return out, rows.Err()
}

// IndexTables are the search_* tables of the index.
var IndexTables = []string{"search_string", "search_token", "search_date", "search_number", "search_reference"}

// ParamFilter is the condition " AND (param IN ($n, …) OR param LIKE …)" on the rows
// of the parameters params and of the names derived from them (resources.BaseParam:
// "code:text", "onset-age#high"), its placeholders numbered after the first n
// arguments; empty when params is.
func ParamFilter(params []string, n int) (string, []any) {
	if len(params) == 0 {
		return "", nil
	}
	var b strings.Builder
	args := make([]any, 0, 3*len(params))
	arg := func(v string) string {
		args = append(args, v)
		return "$" + strconv.Itoa(n+len(args))
	}
	b.WriteString(" AND (param IN (")
	for i, p := range params {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(arg(p))
	}
	b.WriteString(")")
	for _, p := range params {
		for _, sep := range []string{":", "#"} {
			b.WriteString(" OR param LIKE " + arg(likeEscape(p)+sep+"%") + ` ESCAPE '\'`)
		}
	}
	b.WriteString(")")
	return b.String(), args
}

// IndexDiff compares the stored rows of one index table with those a rewrite makes, so
// that it deletes and inserts only the rows that changed: after an upgrade that adds
// parameters, most rows of a resource are as they were, and rewriting them all would
// cost each one a delete and an insert in every index of its table.
type IndexDiff struct {
	stored map[string][]any // row key → handles of the stored rows with it
}

// Stored records a stored row: the handle that deletes it (SQLite's rowid,
// PostgreSQL's ctid) and its values, the resource id first, then the table's columns.
func (d *IndexDiff) Stored(handle any, vals []any) {
	if d.stored == nil {
		d.stored = map[string][]any{}
	}
	k := rowKey(vals)
	d.stored[k] = append(d.stored[k], handle)
}

// Read records the stored rows that stmt selects: the handle, then the values.
func (d *IndexDiff) Read(ctx context.Context, q Querier, stmt string, args []any) error {
	rows, err := q.QueryContext(ctx, stmt, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return err
	}
	vals := make([]any, len(cols))
	dest := make([]any, len(cols))
	for i := range vals {
		dest[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return err
		}
		d.Stored(vals[0], slices.Clone(vals[1:]))
	}
	return rows.Err()
}

// Split returns the rows (resource id first) that are not stored yet, and the handles
// of the stored rows that none of rows is.
func (d *IndexDiff) Split(rows [][]any) (insert [][]any, del []any) {
	for _, r := range rows {
		k := rowKey(r)
		if hs := d.stored[k]; len(hs) > 0 {
			d.stored[k] = hs[1:]
			continue
		}
		insert = append(insert, r)
	}
	for _, hs := range d.stored {
		del = append(del, hs...)
	}
	return insert, del
}

// rowKey writes values so that a value written by the index and the same value read
// back from either database give the same text: instants to the microsecond, numbers
// as float64.
func rowKey(vals []any) string {
	var b strings.Builder
	for _, v := range vals {
		switch v := v.(type) {
		case string:
			b.WriteString(v)
		case []byte:
			b.Write(v)
		case time.Time:
			b.WriteString(strconv.FormatInt(v.UnixMicro(), 10))
		case int64:
			b.WriteString(strconv.FormatInt(v, 10))
		case float64:
			b.WriteString(strconv.FormatFloat(v, 'g', -1, 64))
		default:
			fmt.Fprint(&b, v)
		}
		b.WriteByte(0)
	}
	return b.String()
}
