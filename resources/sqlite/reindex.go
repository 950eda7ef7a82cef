package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/fhirbox/fhirbox/resources"
	"github.com/fhirbox/fhirbox/resources/sqlstore"
)

var _ resources.IndexRewriter = (*Store)(nil)

// CountLive counts the live resources of typ (resources.IndexRewriter).
func (s *Store) CountLive(ctx context.Context, typ string, since time.Time) (int64, error) {
	return dialect.CountLive(ctx, s.read, typ, since)
}

// RewriteIndex rewrites the index of one batch (resources.IndexRewriter). It runs on
// the one write connection, in the writer's turn like any write, so no write comes
// between the read of a resource and its new index rows.
func (s *Store) RewriteIndex(ctx context.Context, b resources.RewriteBatch) (string, int, error) {
	if err := ctx.Err(); err != nil {
		return "", 0, err
	}
	var last string
	var n int
	r := &writeReq{ctx: ctx, done: make(chan struct{}), run: func(ctx context.Context, tx *sql.Tx) (err error) {
		defer func() {
			if v := recover(); v != nil {
				err = fnPanic{v}
			}
		}()
		last, n, err = rewrite(ctx, tx, b)
		return err
	}}
	select {
	case s.writes <- r:
	case <-s.closed:
		return "", 0, errClosed
	case <-ctx.Done():
		return "", 0, ctx.Err()
	}
	<-r.done
	var p fnPanic
	if errors.As(r.err, &p) {
		panic(p.v)
	}
	if r.err != nil {
		return "", 0, dialect.WriteError(ctx, r.err)
	}
	return last, n, nil
}

// idsPerDelete bounds the ids of one DELETE, and so its arguments.
const idsPerDelete = 500

func rewrite(ctx context.Context, tx *sql.Tx, b resources.RewriteBatch) (string, int, error) {
	stmt, args := dialect.BatchSQL(b, "")
	batch, err := dialect.ScanBatch(ctx, tx, b.Type, stmt, args)
	if err != nil || len(batch) == 0 {
		return "", 0, err
	}
	var ids []string
	rows := make([][][]any, len(indexTables))
	for _, r := range batch {
		idx, err := b.Extract(r)
		if err != nil {
			return "", 0, sqlstore.FnError{Err: err}
		}
		if idx == nil {
			continue
		}
		ids = append(ids, r.ID)
		for i, tr := range indexRows(idx) {
			for _, row := range tr {
				rows[i] = append(rows[i], append([]any{r.ID}, row...))
			}
		}
	}
	diffs := make([]sqlstore.IndexDiff, len(indexTables))
	for len(ids) > 0 {
		chunk := ids[:min(len(ids), idsPerDelete)]
		ids = ids[len(chunk):]
		in, args := placeholders(chunk, 1)
		args = append([]any{b.Type}, args...)
		filter, fargs := sqlstore.ParamFilter(b.Params, len(args))
		args = append(args, fargs...)
		for i, t := range indexTables {
			if err := diffs[i].Read(ctx, tx, "SELECT rowid, id, "+strings.Join(t.columns, ", ")+" FROM "+t.name+
				" WHERE resource_type = $1 AND id IN ("+in+")"+filter, args); err != nil {
				return "", 0, err
			}
		}
	}
	for i, t := range indexTables {
		insert, del := diffs[i].Split(rows[i])
		for len(del) > 0 {
			chunk := del[:min(len(del), idsPerDelete)]
			del = del[len(chunk):]
			in, args := placeholders(chunk, 0)
			if _, err := tx.ExecContext(ctx, "DELETE FROM "+t.name+" WHERE rowid IN ("+in+")", args...); err != nil {
				return "", 0, err
			}
		}
		if err := insertBatchRows(ctx, tx, t.name, t.columns, b.Type, insert); err != nil {
			return "", 0, err
		}
	}
	return batch[len(batch)-1].ID, len(batch), nil
}

// placeholders returns "$n+1, $n+2, …" for vals, and vals as arguments.
func placeholders[T any](vals []T, n int) (string, []any) {
	ph := make([]string, len(vals))
	args := make([]any, len(vals))
	for i, v := range vals {
		ph[i] = "$" + strconv.Itoa(n+i+1)
		args[i] = v
	}
	return strings.Join(ph, ", "), args
}

// insertBatchRows inserts rows of several resources of typ into table, each row its
// id and then the values of columns. The rows go as one JSON array that the statement
// reads with json_each, up to jsonRowsPerInsert a statement: the driver parses every
// statement again each time it runs and looks each argument up by name among all of
// them, so that a statement of a hundred rows of bound values cost more to parse and
// bind than to run.
func insertBatchRows(ctx context.Context, tx *sql.Tx, table string, columns []string, typ string, rows [][]any) error {
	var b strings.Builder
	b.WriteString("INSERT INTO " + table + " (resource_type, id, " + strings.Join(columns, ", ") + ") SELECT $1")
	for i := 0; i <= len(columns); i++ {
		b.WriteString(", value ->> " + strconv.Itoa(i))
	}
	b.WriteString(" FROM jsonb_each($2)")
	q := b.String()
	for len(rows) > 0 {
		n := min(len(rows), jsonRowsPerInsert)
		doc, err := json.Marshal(rows[:n])
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, q, typ, string(doc)); err != nil {
			return err
		}
		rows = rows[n:]
	}
	return nil
}

// jsonRowsPerInsert bounds the rows of one insertBatchRows statement.
const jsonRowsPerInsert = 2000
