// Package sqlstore holds what the PostgreSQL and SQLite stores (resources/postgres,
// resources/sqlite) share: the search and history statements built from a query, the
// reads of one version, the checks around a write and the signing-key rows (through
// gorm, keys.go). Both databases take the same SQL text with $n placeholders over the
// same tables; a Dialect says how each stores an instant and which of two equivalent
// forms its planner handles well.
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/fhirbox/fhirbox/pkg/auth/signingkey"
	"github.com/fhirbox/fhirbox/resources"
)

// Dialect is what differs between the databases in the shared statements.
type Dialect struct {
	// Name starts internal error messages ("postgres", "sqlite").
	Name string
	// Time converts an instant into the value the database compares; nil passes the
	// time.Time as is.
	Time func(time.Time) any
	// ScanTime returns the Scan destination of an instant column, which sets *t; nil
	// scans into t itself.
	ScanTime func(t *time.Time) any
	// MatchIn starts a search from its most selective clause, written as
	// "r.id IN (SELECT s.id …)", and checks the others with a correlated EXISTS (see
	// Dialect.drivers). Without it every clause is a correlated EXISTS, which
	// PostgreSQL's planner turns into a semi-join from whichever side is cheaper, while
	// SQLite runs it once per resource of the type: a search would cost as much as the
	// table is large.
	MatchIn bool
	// RowidPage selects a page in two steps: the rowids of the page's resources, sorted
	// and cut by the sort keys alone, then those rows. SQLite's sorter carries every
	// column it outputs, so a page taken from a few hundred matches would copy a few
	// hundred documents (with their overflow pages) to keep ten; PostgreSQL's sort
	// carries a pointer to each large document instead.
	RowidPage bool
	// FTS5 keeps the full-text index in an SQLite FTS5 table (search_text, reached
	// through search_text_key); without it search_text holds PostgreSQL tsvectors.
	FTS5 bool
	// Translate turns a driver error into the engine's errors (see resources.Error).
	Translate func(ctx context.Context, err error) error
	// KeyCollate is written after a search_reference target column compared with the
	// resource table's key (` COLLATE "default"` on PostgreSQL, whose target columns are
	// "C", so that the comparison can use the key's index; empty on SQLite).
	KeyCollate string
	// ValuesOf, when set, is the SQL of the rows of a JSON array of strings bound as one
	// argument, its placeholder in place of %s (SQLite: SELECT value FROM json_each(%s)).
	// Includes bind their sets of ids that way: the SQLite driver binds arguments in time
	// quadratic in their number (1,000 took 19 ms, 32,000 took 21 s). Empty: one
	// placeholder per id.
	ValuesOf string
}

// Store is what both stores offer beyond resources.Store, for the wiring (pkg/app) and
// the store suite (resources/storetest).
type Store interface {
	resources.Store
	// Close closes the database.
	Close() error
	// SQL is a connection pool on the store's database.
	SQL() *sql.DB
	// SigningKeys returns the stored JWT signing keys, oldest first.
	SigningKeys(ctx context.Context) ([]signingkey.Key, error)
	// AddSigningKeyIfNone stores k unless a key exists already, atomically, and
	// returns the keys stored afterwards, oldest first.
	AddSigningKeyIfNone(ctx context.Context, k signingkey.Key) ([]signingkey.Key, error)
	// ReplaceSigningKeyPEM sets the private key of kid to new if it is still old, and
	// reports whether it did (see Dialect.ReplaceSigningKeyPEM).
	ReplaceSigningKeyPEM(ctx context.Context, kid string, old, new []byte) (bool, error)
	// Purge removes up to limit resources of typ that have run out, with their
	// history (see Dialect.Purge).
	Purge(ctx context.Context, typ, param string, before, deletedBefore time.Time, limit int) (int, error)
	// The stored result sets of stable paging.
	resources.ResultSets
}

// Querier runs statements: a *sql.DB, a *sql.Tx or a wrapper of either.
type Querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// preparer is a Querier that can also run a statement prepared once per connection
// and reused, for statements whose plan does not depend on their values.
type preparer interface {
	QueryPrepared(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// queryPrepared runs query with db, prepared when db can.
func queryPrepared(ctx context.Context, db Querier, query string, args ...any) (*sql.Rows, error) {
	if p, ok := db.(preparer); ok {
		return p.QueryPrepared(ctx, query, args...)
	}
	return db.QueryContext(ctx, query, args...)
}

func (d *Dialect) timeArg(t time.Time) any {
	if d.Time == nil {
		return t
	}
	return d.Time(t)
}

func (d *Dialect) timeDest(t *time.Time) any {
	if d.ScanTime == nil {
		return t
	}
	return d.ScanTime(t)
}

// ReadSQL selects the current version of resource $1/$2; scan its row with ScanRead.
const ReadSQL = `SELECT version_id, last_updated, deleted, content FROM resource
WHERE resource_type = $1 AND id = $2`

// VReadSQL selects version $3 of resource $1/$2; scan its row with ScanVRead.
const VReadSQL = `SELECT last_updated, deleted, content FROM resource_history
WHERE resource_type = $1 AND id = $2 AND version_id = $3`

// Row is one row of a statement: a *sql.Row, or a driver's own row (pgx.Row), which a
// store may read past database/sql on its hottest paths. A missing row is an error
// that errors.Is matches with sql.ErrNoRows.
type Row interface {
	Scan(dest ...any) error
}

// ScanRead reads the row of ReadSQL for typ/id: a CodeNotFound error when there is none.
func (d *Dialect) ScanRead(ctx context.Context, row Row, typ, id string) (*resources.Resource, error) {
	r := &resources.Resource{Type: typ, ID: id}
	var content []byte
	err := row.Scan(&r.VersionID, d.timeDest(&r.LastUpdated), &r.Deleted, &content)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, resources.Errorf(resources.CodeNotFound, "%s/%s not found", typ, id)
	}
	if err != nil {
		return nil, d.Translate(ctx, err)
	}
	r.LastUpdated = r.LastUpdated.UTC()
	r.Content = content
	return r, nil
}

// ScanVRead reads the row of VReadSQL for version v of typ/id: a CodeNotFound error when
// there is none.
func (d *Dialect) ScanVRead(ctx context.Context, row Row, typ, id string, v int64) (*resources.Resource, error) {
	r := &resources.Resource{Type: typ, ID: id, VersionID: v}
	var content []byte
	err := row.Scan(d.timeDest(&r.LastUpdated), &r.Deleted, &content)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, resources.Errorf(resources.CodeNotFound, "%s/%s has no version %d", typ, id, v)
	}
	if err != nil {
		return nil, d.Translate(ctx, err)
	}
	r.LastUpdated = r.LastUpdated.UTC()
	r.Content = content
	return r, nil
}

// ScanCurrent reads the row of ReadSQL (or of a locking variant of it) inside a write:
// nil without an error when the resource never existed. Errors are the driver's.
func (d *Dialect) ScanCurrent(row *sql.Row, typ, id string) (*resources.Resource, error) {
	c := &resources.Resource{Type: typ, ID: id}
	var content []byte
	switch err := row.Scan(&c.VersionID, d.timeDest(&c.LastUpdated), &c.Deleted, &content); {
	case errors.Is(err, sql.ErrNoRows):
		return nil, nil
	case err != nil:
		return nil, err
	}
	c.LastUpdated = c.LastUpdated.UTC()
	c.Content = content
	return c, nil
}

// FnError carries an error of a resources.WriteFunc out of the write transaction, to
// be returned as is rather than translated.
type FnError struct{ Err error }

func (e FnError) Error() string { return e.Err.Error() }

// WriteError is what Write returns for err: the WriteFunc's own error unchanged,
// anything else translated.
func (d *Dialect) WriteError(ctx context.Context, err error) error {
	var fe FnError
	if errors.As(err, &fe) {
		return fe.Err
	}
	return d.Translate(ctx, err)
}

// Next checks the version a WriteFunc returned for typ/id and settles what is stored:
// the index of a deletion is empty, whatever fn gave, since a deleted resource is never
// found by a search; LastUpdated is UTC at the microsecond, as both databases keep it,
// so that the version Write returns is the one Read will.
func (d *Dialect) Next(typ, id string, next *resources.Resource, idx *resources.Index) (*resources.Index, error) {
	if next.Type != typ || next.ID != id {
		return nil, fmt.Errorf("%s: write of %s/%s returned %s/%s", d.Name, typ, id, next.Type, next.ID)
	}
	if idx == nil || next.Deleted {
		idx = &resources.Index{}
	}
	next.LastUpdated = next.LastUpdated.UTC().Truncate(time.Microsecond)
	return idx, nil
}

// Translate turns a driver error into the engine's errors at a store's boundary:
// cancellation passes through unchanged, "no rows" is a not-found, an error that
// unique reports as a unique violation is a conflict, and anything else is an internal
// error whose detail is only logged.
func Translate(ctx context.Context, err error, unique func(error) bool) error {
	var timeout *resources.Error
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil && errors.As(context.Cause(ctx), &timeout):
		// The store's own deadline (a statement timeout, see Bounded) ended the
		// statement, not the caller.
		return timeout
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	case ctx.Err() != nil:
		// A statement cancelled because its context ended fails with an error of the
		// driver's own; the caller wants to know about the context.
		return ctx.Err()
	case errors.Is(err, sql.ErrNoRows):
		return resources.Errorf(resources.CodeNotFound, "not found")
	case unique(err):
		return Conflict(err)
	}
	return resources.Internal(err)
}

// Conflict is the error of a write that lost a race with a concurrent one.
func Conflict(err error) error {
	return &resources.Error{Code: resources.CodeConflict, Message: "conflicting concurrent write, try again", Err: err}
}

// Reads is the Read, VRead and History of resources.Store over one pool, for a store to
// embed: the statements and their scanning are the same on every database. Inside a
// transaction (Dialect.WithTx) they run in it instead.
type Reads struct {
	d    *Dialect
	pool *sql.DB
}

// NewReads returns the reads of d over pool.
func NewReads(d *Dialect, pool *sql.DB) Reads { return Reads{d: d, pool: pool} }

// Read returns the current version of typ/id, deleted or not.
func (r Reads) Read(ctx context.Context, typ, id string) (*resources.Resource, error) {
	return r.d.ScanRead(ctx, r.on(ctx).QueryRowContext(ctx, ReadSQL, typ, id), typ, id)
}

// VRead returns version versionID of typ/id.
func (r Reads) VRead(ctx context.Context, typ, id string, versionID int64) (*resources.Resource, error) {
	return r.d.ScanVRead(ctx, r.on(ctx).QueryRowContext(ctx, VReadSQL, typ, id, versionID), typ, id, versionID)
}

// History lists the versions of one resource (q.ID set) or of one type, newest first.
func (r Reads) History(ctx context.Context, q resources.HistoryQuery) (*resources.HistoryResult, error) {
	return r.d.History(ctx, r.on(ctx), q)
}

// Bounded returns ctx with the statement timeout d (none when d <= 0): a statement still
// running when it passes is cancelled, and Translate reports it as a CodeTimeout error
// rather than as the caller's cancellation.
func Bounded(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d <= 0 {
		return ctx, func() {}
	}
	return context.WithTimeoutCause(ctx, d, TimeoutError(d))
}

// TimeoutError is the error of a statement cancelled by the statement timeout d.
// Zero when it is the database's own setting, unknown here.
func TimeoutError(d time.Duration) *resources.Error {
	limit := ""
	if d > 0 {
		limit = " (" + d.String() + ")"
	}
	return resources.Errorf(resources.CodeTimeout,
		"the request took longer than the database statement timeout%s and was stopped: narrow the search, or try again later", limit)
}
