package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/fhirbox/fhirbox/resources"
	"github.com/fhirbox/fhirbox/resources/sqlstore"
)

const (
	insertSQL = `INSERT INTO resource (resource_type, id, version_id, last_updated, deleted, content)
VALUES ($1, $2, $3, $4, $5, $6)`
	updateSQL = `UPDATE resource SET version_id = $3, last_updated = $4, deleted = $5, content = $6
WHERE resource_type = $1 AND id = $2`
	historySQL = `INSERT INTO resource_history (resource_type, id, version_id, last_updated, deleted, content)
VALUES ($1, $2, $3, $4, $5, $6)`
)

// indexTables are the search_* tables with the columns a row fills after
// (resource_type, id).
var indexTables = []struct {
	name    string
	columns []string
	// order is the table's search index as positions in a row of (id, columns…):
	// the order in which rows of several resources are best inserted together.
	order []int
}{
	{"search_string", []string{"param", "value", "exact", "grp"}, []int{1, 2, 0}},
	{"search_token", []string{"param", "system", "code", "grp"}, []int{1, 3, 2, 0}},
	{"search_date", []string{"param", "low", "high", "grp"}, []int{1, 2, 3, 0}},
	{"search_number", []string{"param", "value", "system", "code", "grp"}, []int{1, 2, 0}},
	{"search_reference", []string{"param", "target_type", "target_id", "grp"}, []int{1, 3, 2, 0}},
}

// Write runs fn on the current version of typ/id and stores the version it returns,
// with its history row and index rows, in one transaction. Writes run one after the
// other on the store's one write connection, so no other write comes between the read
// of the current version and the new one.
//
// Writes that arrive while another is being written are committed together, each in a
// savepoint of one transaction (group commit): a write of a resource changes some sixty
// pages, many of which the next write changes too, and a commit writes each changed page
// to the log and waits for it to reach the disk. Every Write still returns only once its
// own version is committed, and a failing write is rolled back to its savepoint without
// the others noticing.
func (s *Store) Write(ctx context.Context, typ, id string, fn resources.WriteFunc) (*resources.Resource, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if tx := dialect.Tx(ctx); tx != nil {
		// Inside a Transaction, on the writer's goroutine: queueing would wait for itself.
		// A panic of fn stays an error here: the Transaction raises it again on its
		// caller's goroutine.
		res, err := s.writeIn(ctx, tx, typ, id, fn)
		if err != nil {
			var p fnPanic
			if errors.As(err, &p) {
				return nil, p
			}
			return nil, dialect.WriteError(ctx, err)
		}
		return res, nil
	}
	r := &writeReq{ctx: ctx, typ: typ, id: id, fn: fn, done: make(chan struct{})}
	select {
	case s.writes <- r:
	case <-s.closed:
		return nil, errClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	<-r.done
	var p fnPanic
	if errors.As(r.err, &p) {
		// Raised again where fn's caller can recover it, as on the other stores.
		panic(p.v)
	}
	if r.err != nil {
		return nil, dialect.WriteError(ctx, r.err)
	}
	return r.res, nil
}

// fnPanic carries a panic of a WriteFunc, which runs on the writer goroutine, back to
// the goroutine of its Write.
type fnPanic struct{ v any }

func (p fnPanic) Error() string { return fmt.Sprintf("panic in a write: %v", p.v) }

// call runs fn, turning a panic into an fnPanic error.
func call(fn resources.WriteFunc, cur *resources.Resource) (next *resources.Resource, idx *resources.Index, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fnPanic{v}
		}
	}()
	next, idx, err = fn(cur)
	if err != nil {
		err = sqlstore.FnError{Err: err}
	}
	return next, idx, err
}

var errClosed = errors.New("sqlite: the store is closed")

// ErrInUse is the error (errors.Is) of Open on a file that another process has open.
var ErrInUse = errors.New("in use by another fhirbox process")

// writeReq is a Write waiting for the writer.
type writeReq struct {
	ctx     context.Context
	typ, id string
	fn      resources.WriteFunc
	// run, when set, is run in the transaction instead of a write of fn (reindex.go).
	run func(ctx context.Context, tx *sql.Tx) error
	// solo commits the request in a transaction of its own, never grouped with others
	// (a Transaction: run must not run twice, as a failed group's writes are).
	solo bool
	res  *resources.Resource
	err  error
	done chan struct{} // closed when res and err are final
}

// maxBatch bounds the writes committed together, so that the first of them does not
// wait for too many others.
const maxBatch = 32

// writer commits the writes that arrive, together those that are waiting, until the
// store closes.
func (s *Store) writer() {
	defer close(s.writerDone)
	var batch []*writeReq
	for {
		var ok bool
		if batch, ok = sqlstore.NextBatch(s.writes, s.closed, maxBatch, batch); !ok {
			return
		}
		s.commit(batch)
		for _, r := range batch {
			close(r.done)
		}
	}
}

// commit writes batch in one transaction, each write in a savepoint. Should the
// transaction itself fail (a failed COMMIT, an error that rolls back the whole
// transaction), nothing of it is kept and each write is run again alone.
func (s *Store) commit(batch []*writeReq) {
	if len(batch) > 1 {
		group := batch[:0:0]
		for _, r := range batch {
			if r.solo {
				s.alone(r)
				continue
			}
			group = append(group, r)
		}
		batch = group
	}
	if len(batch) == 0 {
		return
	}
	if len(batch) == 1 {
		s.alone(batch[0])
		return
	}
	// The transaction is the batch's, not any caller's: a caller that goes away must not
	// take the others' writes with it. Each write checks its own context before it runs.
	ctx := context.Background()
	err := func() error {
		tx, err := s.write.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		for _, r := range batch {
			if r.err = r.ctx.Err(); r.err != nil {
				continue
			}
			if _, err := tx.ExecContext(ctx, "SAVEPOINT w"); err != nil {
				return err
			}
			if r.res, r.err = s.writeReq(ctx, tx, r); r.err != nil {
				r.res = nil
				if _, err := tx.ExecContext(ctx, "ROLLBACK TO w"); err != nil {
					return err
				}
			}
			if _, err := tx.ExecContext(ctx, "RELEASE w"); err != nil {
				return err
			}
		}
		return tx.Commit()
	}()
	if err != nil {
		for _, r := range batch {
			s.alone(r)
		}
	}
}

// alone runs one write in a transaction of its own.
func (s *Store) alone(r *writeReq) {
	r.res, r.err = nil, nil
	tx, err := s.write.BeginTx(r.ctx, nil)
	if err != nil {
		r.err = err
		return
	}
	defer tx.Rollback()
	res, err := s.writeReq(r.ctx, tx, r)
	if err == nil {
		err = tx.Commit()
	}
	if err != nil {
		r.err = err
		return
	}
	r.res = res
}

// writeReq runs r inside tx: its run, or the write of its fn.
func (s *Store) writeReq(ctx context.Context, tx *sql.Tx, r *writeReq) (*resources.Resource, error) {
	if r.run != nil {
		return nil, r.run(ctx, tx)
	}
	return s.writeIn(ctx, tx, r.typ, r.id, r.fn)
}

// writeIn runs one write inside tx: it reads the current version, calls fn and stores
// what fn returns. A no-op write returns the current version.
func (s *Store) writeIn(ctx context.Context, tx *sql.Tx, typ, id string, fn resources.WriteFunc) (*resources.Resource, error) {
	if d := deferredOf(ctx); d != nil && resources.FreshID(ctx) {
		// A fresh id has no current version: the create waits to be written with others
		// (deferred.go). Were the id taken after all, the insert fails at the flush
		// with a unique violation, and so does the transaction.
		next, idx, err := call(fn, nil)
		if err != nil || next == nil {
			return next, err
		}
		if idx, err = dialect.Next(typ, id, next, idx); err != nil {
			return nil, err
		}
		d.creates = append(d.creates, deferredCreate{res: next, idx: idx})
		if len(d.creates) >= maxDeferred {
			return next, flush(ctx, tx)
		}
		return next, nil
	}
	if err := flush(ctx, tx); err != nil {
		return nil, err
	}
	cur, err := dialect.ScanCurrent(tx.QueryRowContext(ctx, sqlstore.ReadSQL, typ, id), typ, id)
	if err != nil {
		return nil, err
	}
	next, idx, err := call(fn, cur)
	if err != nil {
		return nil, err
	}
	if next == nil {
		return cur, nil
	}
	if idx, err = dialect.Next(typ, id, next, idx); err != nil {
		return nil, err
	}
	row := []any{typ, id, next.VersionID, next.LastUpdated.UnixMicro(), next.Deleted, string(next.Content)}
	q := updateSQL
	if cur == nil {
		q = insertSQL
	}
	if _, err := tx.ExecContext(ctx, q, row...); err != nil {
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, historySQL, row...); err != nil {
		return nil, err
	}
	if cur != nil {
		// A resource that never existed has no index rows to replace.
		for _, t := range indexTables {
			if _, err := tx.ExecContext(ctx, "DELETE FROM "+t.name+" WHERE resource_type = $1 AND id = $2", typ, id); err != nil {
				return nil, err
			}
		}
		if err := dropText(ctx, tx, typ, id); err != nil {
			return nil, err
		}
	}
	if err := insertText(ctx, tx, typ, id, idx.Text); err != nil {
		return nil, err
	}
	for i, rows := range indexRows(idx) {
		if err := insertRows(ctx, tx, indexTables[i].name, append([]string{"resource_type", "id"}, indexTables[i].columns...), []any{typ, id}, rows); err != nil {
			return nil, err
		}
	}
	return next, nil
}

// indexRows lays out the rows of idx per table of indexTables, in its order.
func indexRows(idx *resources.Index) [][][]any {
	out := make([][][]any, len(indexTables))
	for _, e := range idx.Strings {
		out[0] = append(out[0], []any{e.Param, e.Value, e.Exact, e.Group})
	}
	for _, e := range idx.Tokens {
		out[1] = append(out[1], []any{e.Param, e.System, e.Code, e.Group})
	}
	for _, e := range idx.Dates {
		out[2] = append(out[2], []any{e.Param, e.Low.UnixMicro(), e.High.UnixMicro(), e.Group})
	}
	for _, e := range idx.Numbers {
		out[3] = append(out[3], []any{e.Param, e.Value, e.System, e.Code, e.Group})
	}
	for _, e := range idx.References {
		out[4] = append(out[4], []any{e.Param, e.TargetType, e.TargetID, e.Group})
	}
	return out
}

// rowsPerInsert and argsPerInsert bound the rows of one INSERT. The driver finds each
// argument of a statement by a search among all of them, so that binding costs the
// square of their number.
const (
	rowsPerInsert = 100
	argsPerInsert = 120
)

// insertRows inserts rows into columns of table, several per statement: each statement
// costs a parse, whatever its number of rows. The first len(fixed) columns take the
// values of fixed in every row, bound once per statement; each row gives the others.
func insertRows(ctx context.Context, tx *sql.Tx, table string, columns []string, fixed []any, rows [][]any) error {
	head := "("
	for i := range fixed {
		if i > 0 {
			head += ", "
		}
		head += "$" + strconv.Itoa(i+1)
	}
	perInsert := rowsPerInsert
	if len(rows) > 0 && len(rows[0]) > 0 {
		perInsert = max(1, min(rowsPerInsert, argsPerInsert/len(rows[0])))
	}
	for len(rows) > 0 {
		n := min(len(rows), perInsert)
		var b strings.Builder
		b.WriteString("INSERT INTO " + table + " (" + strings.Join(columns, ", ") + ") VALUES ")
		args := make([]any, 0, len(fixed)+n*(len(columns)-len(fixed)))
		args = append(args, fixed...)
		for i, r := range rows[:n] {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(head)
			for j, v := range r {
				args = append(args, v)
				if j > 0 || len(fixed) > 0 {
					b.WriteString(", ")
				}
				b.WriteString("$" + strconv.Itoa(len(args)))
			}
			b.WriteString(")")
		}
		if _, err := tx.ExecContext(ctx, b.String(), args...); err != nil {
			return err
		}
		rows = rows[n:]
	}
	return nil
}

// dropText removes the full-text row of typ/id: the FTS5 row first, found through its
// key (see migrations/sqlite/00005).
func dropText(ctx context.Context, tx *sql.Tx, typ, id string) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM search_text WHERE rowid IN
  (SELECT docid FROM search_text_key WHERE resource_type = $1 AND id = $2)`, typ, id); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, "DELETE FROM search_text_key WHERE resource_type = $1 AND id = $2", typ, id)
	return err
}

// insertText adds the full-text row of typ/id, when it has any text.
func insertText(ctx context.Context, tx *sql.Tx, typ, id string, t resources.FullText) error {
	if t.Narrative == "" && t.Content == "" {
		return nil
	}
	var docid int64
	if err := tx.QueryRowContext(ctx, "INSERT INTO search_text_key (resource_type, id) VALUES ($1, $2) RETURNING docid", typ, id).Scan(&docid); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, "INSERT INTO search_text (rowid, narrative, content) VALUES ($1, $2, $3)", docid, t.Narrative, t.Content)
	return err
}
