package sqlstore

import (
	"context"
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

// ParamFilter is the condition " AND param IN ($n, …)" on the parameters params, its
// placeholders numbered after the first n arguments; empty when params is.
func ParamFilter(params []string, n int) (string, []any) {
	if len(params) == 0 {
		return "", nil
	}
	var b strings.Builder
	args := make([]any, len(params))
	b.WriteString(" AND param IN (")
	for i, p := range params {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("$" + strconv.Itoa(n+i+1))
		args[i] = p
	}
	b.WriteString(")")
	return b.String(), args
}
