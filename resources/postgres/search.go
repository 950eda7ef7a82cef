package postgres

import (
	"context"
	"database/sql"

	"github.com/jackc/pgx/v5"

	"github.com/fhirbox/fhirbox/resources"
	"github.com/fhirbox/fhirbox/resources/sqlstore"
)

// Search runs q over the live resources of q.Type.
func (s *Store) Search(ctx context.Context, q *resources.Query) (*resources.SearchResult, error) {
	db, err := s.querier(ctx)
	if err != nil {
		return nil, err
	}
	return dialect.Search(ctx, planned{db}, q)
}

// planned runs statements unprepared, planned for their actual values, by prepending
// the pgx option that says so to their arguments. Prepared (pgx's default), a search
// statement switches to a generic plan after five runs, and a generic plan cannot see
// how selective a value is: it cannot turn LIKE 'abc%' into an index range, nor tell a
// rare code from one every resource has. On 100,000 patients that made searches that
// took 1 ms take 130-470 ms. Unprepared also keeps the endless variety of search
// statements out of the per-connection statement cache.
type planned struct{ db sqlstore.Querier }

func (p planned) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return p.db.QueryContext(ctx, query, append([]any{pgx.QueryExecModeExec}, args...)...)
}

func (p planned) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return p.db.QueryRowContext(ctx, query, append([]any{pgx.QueryExecModeExec}, args...)...)
}

// QueryPrepared runs query prepared, as pgx does by default: for the few statements of
// a search whose text repeats and whose plan is one index lookup whatever the values
// (the members of a compartment's own type), planning on every run would cost more
// than running (a Patient by name under a patient scope: 1.25× unscoped).
func (p planned) QueryPrepared(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return p.db.QueryContext(ctx, query, args...)
}
