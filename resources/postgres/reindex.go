package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/fhirbox/fhirbox/resources"
	"github.com/fhirbox/fhirbox/resources/sqlstore"
)

var _ resources.IndexRewriter = (*Store)(nil)

// CountLive counts the live resources of typ (resources.IndexRewriter).
func (s *Store) CountLive(ctx context.Context, typ string, since time.Time) (int64, error) {
	return dialect.CountLive(ctx, s.sql, typ, since)
}

// indexColumns are the columns of each of sqlstore.IndexTables after resource_type and
// id, in the order of rewriteInsert's arrays.
var indexColumns = []string{"param, value, exact, grp", "param, system, code, grp", "param, low, high, grp", "param, value, system, code, grp", "param, target_type, target_id, grp"}

// rewriteInsert inserts the index rows of a whole batch, one array per column zipped by
// unnest, ids included: one statement per table whatever the batch's size.
var rewriteInsert = []string{
	`INSERT INTO search_string (resource_type, id, param, value, exact, grp)
  SELECT $1, u.* FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::int4[]) u`,
	`INSERT INTO search_token (resource_type, id, param, system, code, grp)
  SELECT $1, u.* FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::int4[]) u`,
	`INSERT INTO search_date (resource_type, id, param, low, high, grp)
  SELECT $1, u.* FROM unnest($2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[], $6::int4[]) u`,
	`INSERT INTO search_number (resource_type, id, param, value, system, code, grp)
  SELECT $1, u.* FROM unnest($2::text[], $3::text[], $4::float8[], $5::text[], $6::text[], $7::int4[]) u`,
	`INSERT INTO search_reference (resource_type, id, param, target_type, target_id, grp)
  SELECT $1, u.* FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::int4[]) u`,
}

// RewriteIndex rewrites the index of one batch (resources.IndexRewriter). The batch's
// rows are locked FOR UPDATE from the SELECT that reads them to the commit: a write of
// one of them waits, then extracts its own index from its own content; a write that
// locked it first has committed when the SELECT returns it, which then reads the new
// version. Either way the index rows left are those of the current version.
//
// A batch holds many rows, so it can deadlock with another transaction that holds
// several (a purge of Sessions); PostgreSQL then ends one of them, and a batch it ended
// is run again.
func (s *Store) RewriteIndex(ctx context.Context, b resources.RewriteBatch) (string, int, error) {
	last, n, err := s.rewrite(ctx, b)
	for try := 0; try < 3 && isDeadlock(err); try++ {
		last, n, err = s.rewrite(ctx, b)
	}
	if err != nil {
		return "", 0, dialect.WriteError(ctx, err)
	}
	return last, n, nil
}

func (s *Store) rewrite(ctx context.Context, b resources.RewriteBatch) (string, int, error) {
	tx, err := s.sql.BeginTx(ctx, nil)
	if err != nil {
		return "", 0, err
	}
	defer tx.Rollback()
	stmt, args := dialect.BatchSQL(b, "FOR UPDATE")
	batch, err := dialect.ScanBatch(ctx, tx, b.Type, stmt, args)
	if err != nil || len(batch) == 0 {
		return "", 0, err
	}
	var ids []string
	rows := make([][][]any, len(sqlstore.IndexTables))
	for _, r := range batch {
		idx, err := b.Extract(r)
		if err != nil {
			return "", 0, sqlstore.FnError{Err: err}
		}
		if idx == nil {
			continue
		}
		ids = append(ids, r.ID)
		for _, e := range idx.Strings {
			rows[0] = append(rows[0], []any{r.ID, e.Param, e.Value, e.Exact, int64(e.Group)})
		}
		for _, e := range idx.Tokens {
			rows[1] = append(rows[1], []any{r.ID, e.Param, e.System, e.Code, int64(e.Group)})
		}
		for _, e := range idx.Dates {
			rows[2] = append(rows[2], []any{r.ID, e.Param, e.Low.UTC(), e.High.UTC(), int64(e.Group)})
		}
		for _, e := range idx.Numbers {
			rows[3] = append(rows[3], []any{r.ID, e.Param, e.Value, e.System, e.Code, int64(e.Group)})
		}
		for _, e := range idx.References {
			rows[4] = append(rows[4], []any{r.ID, e.Param, e.TargetType, e.TargetID, int64(e.Group)})
		}
	}
	if len(ids) > 0 {
		filter, fargs := sqlstore.ParamFilter(b.Params, 2)
		for i, t := range sqlstore.IndexTables {
			// The batch's resources are locked, and every write of their index rows
			// locks its resource first: the ctids read here stay theirs until commit.
			var d sqlstore.IndexDiff
			if err := d.Read(ctx, tx, "SELECT ctid::text, id, "+indexColumns[i]+" FROM "+t+
				" WHERE resource_type = $1 AND id = ANY($2)"+filter, append([]any{b.Type, ids}, fargs...)); err != nil {
				return "", 0, err
			}
			insert, del := d.Split(rows[i])
			if len(del) > 0 {
				tids := make([]string, len(del))
				for j, h := range del {
					tids[j] = h.(string)
				}
				if _, err := tx.ExecContext(ctx, "DELETE FROM "+t+" WHERE ctid = ANY($1::tid[])", tids); err != nil {
					return "", 0, err
				}
			}
			if len(insert) == 0 {
				continue
			}
			var c columns
			for _, r := range insert {
				c.add(r...)
			}
			if _, err := tx.ExecContext(ctx, rewriteInsert[i], append([]any{b.Type}, c.arrays...)...); err != nil {
				return "", 0, err
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return "", 0, err
	}
	return batch[len(batch)-1].ID, len(batch), nil
}

// isDeadlock reports whether err is PostgreSQL's deadlock_detected.
func isDeadlock(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "40P01"
}

// columns gathers the rows of one index table column by column, for unnest.
type columns struct {
	n      int
	arrays []any // a []string, []float64, []time.Time or []int64 per column, as pgx binds them
}

func (c *columns) add(vals ...any) {
	if c.arrays == nil {
		for _, v := range vals {
			switch v.(type) {
			case string:
				c.arrays = append(c.arrays, []string{})
			case float64:
				c.arrays = append(c.arrays, []float64{})
			case time.Time:
				c.arrays = append(c.arrays, []time.Time{})
			case int64:
				c.arrays = append(c.arrays, []int64{})
			}
		}
	}
	for i, v := range vals {
		switch v := v.(type) {
		case string:
			c.arrays[i] = append(c.arrays[i].([]string), v)
		case float64:
			c.arrays[i] = append(c.arrays[i].([]float64), v)
		case time.Time:
			c.arrays[i] = append(c.arrays[i].([]time.Time), v)
		case int64:
			c.arrays[i] = append(c.arrays[i].([]int64), v)
		}
	}
	c.n++
}
