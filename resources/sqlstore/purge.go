package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// purgeTables are every table that holds rows of a resource: the purge leaves nothing.
var purgeTables = []string{"resource", "resource_history", "search_string", "search_token", "search_date", "search_number", "search_reference"}

// Purge removes, history and index rows included, up to limit resources of typ that have
// run out: the live ones whose number parameter param (an instant in Unix seconds) is
// before the given time, and the deleted ones last written before deletedBefore. It
// returns how many it removed; a caller purges again until that is fewer than limit.
//
// It is for what the server writes and owns (Sessions, authorization codes), which would
// otherwise pile up with every token: a purged resource is gone, not deleted, and reads
// as never having existed.
func (d *Dialect) Purge(ctx context.Context, db *sql.DB, typ, param string, before time.Time, deletedBefore time.Time, limit int) (int, error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return 0, d.Translate(ctx, err)
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `SELECT id FROM (
  SELECT DISTINCT id FROM search_number WHERE resource_type = $1 AND param = $2 AND value < $3
  UNION
  SELECT id FROM resource WHERE resource_type = $1 AND deleted AND last_updated < $4
) ended LIMIT $5`, typ, param, before.Unix(), d.timeArg(deletedBefore), limit)
	if err != nil {
		return 0, d.Translate(ctx, err)
	}
	var ids []any
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return 0, d.Translate(ctx, err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, d.Translate(ctx, err)
	}
	if len(ids) == 0 {
		return 0, nil
	}
	var in strings.Builder
	for i := range ids {
		if i > 0 {
			in.WriteString(", ")
		}
		in.WriteString("$" + strconv.Itoa(i+2))
	}
	args := append([]any{typ}, ids...)
	tables := append(append([]string(nil), purgeTables...), "search_text")
	if d.FTS5 {
		// The FTS5 rows are found through their keys, which go after them.
		q := fmt.Sprintf("DELETE FROM search_text WHERE rowid IN (SELECT docid FROM search_text_key WHERE resource_type = $1 AND id IN (%s))", in.String())
		if _, err := tx.ExecContext(ctx, q, args...); err != nil {
			return 0, d.Translate(ctx, err)
		}
		tables[len(tables)-1] = "search_text_key"
	}
	for _, t := range tables {
		q := fmt.Sprintf("DELETE FROM %s WHERE resource_type = $1 AND id IN (%s)", t, in.String())
		if _, err := tx.ExecContext(ctx, q, args...); err != nil {
			return 0, d.Translate(ctx, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, d.Translate(ctx, err)
	}
	return len(ids), nil
}
