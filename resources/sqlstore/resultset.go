package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/fhirbox/fhirbox/resources"
)

// The stored result sets of stable paging (resources/resultset.go) live in two tables
// (migrations/*/00007_search_sets.sql): search_set, one row per set, and search_set_ids,
// the set's ids in chunks of resources.ResultSetChunk joined by newlines, so that storing
// 10,000 ids writes 10 rows and reading a page reads one or two.

// SearchIDs returns the ids of the first limit matches of q, in q's order, as
// "Type/id" in a system-level search (q.Type empty), whose ids repeat across types: the
// page statement without its content, started (MatchIn) as the count is, from the
// clause with the fewest matches, since it reads up to limit of them rather than a page.
func (d *Dialect) SearchIDs(ctx context.Context, db Querier, q *resources.Query, limit int) ([]string, error) {
	members, err := d.confineMembers(ctx, db, q)
	if err != nil {
		return nil, err
	}
	var driver *resources.Clause
	starts := false
	if d.MatchIn {
		if _, driver, starts, err = d.drivers(ctx, db, q, members); err != nil {
			return nil, err
		}
	}
	b := &builder{d: d, driver: driver, members: members, compartmentStarts: starts}
	typed := q.Type == ""
	if typed {
		b.WriteString("SELECT r.resource_type, r.id FROM resource r WHERE ")
	} else {
		b.WriteString("SELECT r.id FROM resource r WHERE ")
	}
	if err := b.where(q); err != nil {
		return nil, err
	}
	if err := b.checkArgs(); err != nil {
		return nil, err
	}
	if err := b.orderBy(q.Sort); err != nil {
		return nil, err
	}
	b.w(" LIMIT ", b.arg(limit))
	rows, err := db.QueryContext(ctx, b.String(), b.args...)
	if err != nil {
		return nil, d.Translate(ctx, err)
	}
	defer rows.Close()
	ids := make([]string, 0, min(limit, 1024))
	for rows.Next() {
		var typ, id string
		dest := []any{&id}
		if typed {
			dest = []any{&typ, &id}
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, d.Translate(ctx, err)
		}
		if typed {
			id = typ + "/" + id
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, d.Translate(ctx, err)
	}
	return ids, nil
}

// ReadLive returns the current versions of those of ids (of type typ) that exist and
// are not deleted, in no particular order.
func (d *Dialect) ReadLive(ctx context.Context, db Querier, typ string, ids []string) ([]*resources.Resource, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	b := &builder{d: d}
	b.w("SELECT r.id, r.version_id, r.last_updated, r.deleted, r.content FROM resource r WHERE r.resource_type = ", b.arg(typ),
		" AND NOT r.deleted AND r.id IN (")
	for i, id := range ids {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(b.arg(id))
	}
	b.WriteString(")")
	if err := b.checkArgs(); err != nil {
		return nil, err
	}
	return d.versions(ctx, db, typ, b.String(), b.args)
}

// SaveResultSet stores rs, all its ids, in one transaction of db.
func (d *Dialect) SaveResultSet(ctx context.Context, db *sql.DB, rs *resources.ResultSet) error {
	if rs.Key == "" || rs.From != 0 || len(rs.IDs) != rs.Size {
		return resources.Internal(fmt.Errorf("%s: saving a result set without a key or with %d of its %d ids", d.Name, len(rs.IDs), rs.Size))
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return d.Translate(ctx, err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `INSERT INTO search_set (set_key, resource_type, fingerprint, total, size, expires)
VALUES ($1, $2, $3, $4, $5, $6)`, rs.Key, rs.Type, rs.Fingerprint, rs.Total, rs.Size, d.timeArg(rs.Expires)); err != nil {
		return d.Translate(ctx, err)
	}
	// All chunks in one statement: at most MaxResultSetMax / ResultSetChunk rows.
	var sb strings.Builder
	sb.WriteString("INSERT INTO search_set_ids (set_key, chunk, ids) VALUES ")
	args := []any{rs.Key}
	for c := 0; c*resources.ResultSetChunk < len(rs.IDs); c++ {
		part := rs.IDs[c*resources.ResultSetChunk : min((c+1)*resources.ResultSetChunk, len(rs.IDs))]
		if c > 0 {
			sb.WriteString(", ")
		}
		args = append(args, c, strings.Join(part, "\n"))
		sb.WriteString("($1, $" + strconv.Itoa(len(args)-1) + ", $" + strconv.Itoa(len(args)) + ")")
	}
	if len(args) > 1 {
		if _, err := tx.ExecContext(ctx, sb.String(), args...); err != nil {
			return d.Translate(ctx, err)
		}
	}
	return d.Translate(ctx, tx.Commit())
}

// LoadResultSet returns the set called key with its ids at positions [from, to), a
// CodeNotFound error when there is none.
func (d *Dialect) LoadResultSet(ctx context.Context, db Querier, key string, from, to int) (*resources.ResultSet, error) {
	rs := &resources.ResultSet{Key: key, From: from}
	err := db.QueryRowContext(ctx, `SELECT resource_type, fingerprint, total, size, expires FROM search_set WHERE set_key = $1`, key).
		Scan(&rs.Type, &rs.Fingerprint, &rs.Total, &rs.Size, d.timeDest(&rs.Expires))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, resources.Errorf(resources.CodeNotFound, "no result set %q", key)
	}
	if err != nil {
		return nil, d.Translate(ctx, err)
	}
	rs.Expires = rs.Expires.UTC()
	to = min(to, rs.Size)
	if from >= to {
		return rs, nil
	}
	const n = resources.ResultSetChunk
	rows, err := db.QueryContext(ctx, `SELECT chunk, ids FROM search_set_ids WHERE set_key = $1 AND chunk >= $2 AND chunk <= $3 ORDER BY chunk`,
		key, from/n, (to-1)/n)
	if err != nil {
		return nil, d.Translate(ctx, err)
	}
	defer rows.Close()
	for rows.Next() {
		var chunk int
		var ids string
		if err := rows.Scan(&chunk, &ids); err != nil {
			return nil, d.Translate(ctx, err)
		}
		part := strings.Split(ids, "\n")
		lo, hi := max(from-chunk*n, 0), min(to-chunk*n, len(part))
		if lo < hi {
			rs.IDs = append(rs.IDs, part[lo:hi]...)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, d.Translate(ctx, err)
	}
	return rs, nil
}

// PurgeResultSets removes the sets that expired before before, their ids with them.
func (d *Dialect) PurgeResultSets(ctx context.Context, db *sql.DB, before time.Time) (int, error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return 0, d.Translate(ctx, err)
	}
	defer tx.Rollback()
	// No foreign key ties the ids to their set (a cascade is one more thing SQLite
	// must have switched on per connection): they go first, explicitly.
	if _, err := tx.ExecContext(ctx, `DELETE FROM search_set_ids WHERE set_key IN (SELECT set_key FROM search_set WHERE expires < $1)`, d.timeArg(before)); err != nil {
		return 0, d.Translate(ctx, err)
	}
	r, err := tx.ExecContext(ctx, `DELETE FROM search_set WHERE expires < $1`, d.timeArg(before))
	if err != nil {
		return 0, d.Translate(ctx, err)
	}
	n, err := r.RowsAffected()
	if err != nil {
		return 0, d.Translate(ctx, err)
	}
	return int(n), d.Translate(ctx, tx.Commit())
}
