package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	_ "github.com/glebarez/go-sqlite" // registers the "sqlite" database/sql driver
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fhirbox/fhirbox/pkg/app"
)

// DB is the server's database, reached directly rather than through fhirbox: for the
// ceilings, for PopulationFromDB, for the loader's look-up of what is stored already,
// and to count what a run left. It is PostgreSQL through a pgx pool or the server's
// SQLite file through database/sql; the SQL that differs between the two is written by
// its dialect, everything else is shared.
type DB struct {
	// Backend is app.Postgres or app.SQLite.
	Backend string
	dialect
	pg  *pgxpool.Pool
	sql *sql.DB
}

// dialect is what the ceilings' SQL needs to know of a backend.
type dialect struct {
	// docTable is the DDL of a scratch table of documents, with %s for its name.
	docTable string
	// now is the current instant as the resource table stores it.
	now string
	// doc is a JSON document as a statement argument.
	doc func([]byte) any
	// instant is an instant as a statement argument, as the search tables store it.
	instant func(time.Time) any
	// matchIn writes searches as the server does with sqlstore.Dialect's MatchIn and
	// RowidPage (see ceilingSearch).
	matchIn bool
	// keyCollate follows a search_reference key compared with the resource table's
	// (sqlstore.Dialect.KeyCollate).
	keyCollate string
	// textQuery is the argument of a full-text match of all of words, as the server
	// writes it (resources/sqlstore/fulltext.go): a tsquery, or an FTS5 query on the
	// narrative column.
	textQuery func(words []string) string
}

var (
	postgresDialect = dialect{
		docTable: `CREATE TABLE %s (id text PRIMARY KEY, content jsonb NOT NULL)`,
		now:      `now()`,
		doc:      func(b []byte) any { return b },
		instant:  func(t time.Time) any { return t },
		// search_reference's keys are compared under collation "C".
		keyCollate: ` COLLATE "default"`,
		textQuery: func(words []string) string {
			q := make([]string, len(words))
			for i, w := range words {
				q[i] = "'" + w + "'"
			}
			return "(" + strings.Join(q, " & ") + ")"
		},
	}
	// sqliteDialect follows migrations/sqlite: STRICT tables, whose TEXT column refuses
	// a document bound as bytes (a BLOB), and instants as INTEGER microseconds.
	sqliteDialect = dialect{
		docTable: `CREATE TABLE %s (id TEXT PRIMARY KEY, content TEXT NOT NULL) STRICT`,
		now:      `CAST(unixepoch('subsec') * 1000000 AS INTEGER)`,
		doc:      func(b []byte) any { return string(b) },
		instant:  func(t time.Time) any { return t.UnixMicro() },
		matchIn:  true,
		textQuery: func(words []string) string {
			q := make([]string, len(words))
			for i, w := range words {
				q[i] = `"` + w + `"`
			}
			return "{narrative} : ((" + strings.Join(q, " AND ") + "))"
		},
	}
)

// OpenDB opens the database that FHIRBOX_DATABASE_URL names (see app.ParseDatabase)
// with conns connections, all of them opened before it returns, so that each of the
// ceiling's workers has one from its first request on.
func OpenDB(ctx context.Context, dbURL string, conns int) (*DB, error) {
	d, err := app.ParseDatabase(dbURL)
	switch {
	case err == nil && d.Backend == app.SQLite:
		return openSQLite(ctx, d.Target, conns)
	case err != nil && strings.HasPrefix(dbURL, "sqlite:"):
		return nil, err
	}
	// Anything else goes to pgx as it is, which also takes the key=value form that
	// ParseDatabase does not.
	pc, err := pgxpool.ParseConfig(dbURL)
	if err != nil {
		return nil, err
	}
	pc.MaxConns, pc.MinConns = int32(conns), int32(conns)
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, err
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return &DB{Backend: app.Postgres, dialect: postgresDialect, pg: pool}, nil
}

// sqlitePragmas are those fhirbox sets on its connections (resources/sqlite), so that
// the ceiling's statements run as the server's do: case_sensitive_like makes a prefix
// LIKE use the index, synchronous(FULL) makes every commit wait for the disk,
// wal_autocheckpoint is that of the server's writer. busy_timeout makes a ceiling
// write wait for the write lock instead of failing: whoever holds it (another worker,
// or fhirbox's writer) is a real contender of a write to this file.
var sqlitePragmas = []string{
	"busy_timeout(10000)",
	"case_sensitive_like(1)",
	"synchronous(FULL)",
	"temp_store(MEMORY)",
	"wal_autocheckpoint(4000)",
}

// openSQLite opens the SQLite file at path read/write, next to the fhirbox process that
// has it open: fhirbox keeps other fhirbox processes off with flock(2) on the file,
// which leaves alone the POSIX locks through which SQLite lets several processes share
// it in WAL mode.
func openSQLite(ctx context.Context, path string, conns int) (*DB, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	// A missing file would be created empty, and every statement would then fail on a
	// missing table: the file must be fhirbox's.
	if _, err := os.Stat(abs); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("no SQLite database at %s: start fhirbox on it first", abs)
		}
		return nil, err
	}
	q := []string{"mode=rw"}
	for _, p := range sqlitePragmas {
		q = append(q, "_pragma="+p)
	}
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(abs), OmitHost: true}
	db, err := sql.Open("sqlite", u.String()+"?"+strings.Join(q, "&"))
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(conns)
	db.SetMaxIdleConns(conns)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	// Holding every connection at once makes the pool open them all now; released,
	// they stay open as idle ones.
	held := make([]*sql.Conn, 0, conns)
	for range conns {
		var c *sql.Conn
		if c, err = db.Conn(ctx); err != nil {
			break
		}
		held = append(held, c)
		if err = c.PingContext(ctx); err != nil {
			break
		}
	}
	for _, c := range held {
		c.Close()
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("%s: %w", abs, err)
	}
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'resource'`).Scan(&n); err != nil || n == 0 {
		db.Close()
		if err == nil {
			err = errors.New("it has no resource table: is it a fhirbox database?")
		}
		return nil, fmt.Errorf("%s: %w", abs, err)
	}
	// fhirbox keeps its file in WAL mode, which lets the ceiling read while another
	// connection writes. The mode is the file's, not a connection's: set once, only
	// once the file is known to be fhirbox's, it holds for every connection.
	var mode string
	if err := db.QueryRowContext(ctx, `PRAGMA journal_mode = WAL`).Scan(&mode); err != nil || mode != "wal" {
		db.Close()
		if err == nil {
			err = fmt.Errorf("journal mode %s, want wal", mode)
		}
		return nil, fmt.Errorf("%s: %w", abs, err)
	}
	return &DB{Backend: app.SQLite, dialect: sqliteDialect, sql: db}, nil
}

// Close closes the connections.
func (db *DB) Close() {
	if db.pg != nil {
		db.pg.Close()
	}
	if db.sql != nil {
		db.sql.Close()
	}
}

// Row is one row of a result.
type Row interface {
	Scan(dest ...any) error
}

// Rows is a result being read.
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close()
}

type sqlRows struct{ *sql.Rows }

func (r sqlRows) Close() { r.Rows.Close() }

// Exec runs a statement and returns the number of rows it changed.
func (db *DB) Exec(ctx context.Context, q string, args ...any) (int64, error) {
	if db.pg != nil {
		tag, err := db.pg.Exec(ctx, q, args...)
		return tag.RowsAffected(), err
	}
	res, err := db.sql.ExecContext(ctx, q, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// QueryRow runs a query of one row.
func (db *DB) QueryRow(ctx context.Context, q string, args ...any) Row {
	if db.pg != nil {
		return db.pg.QueryRow(ctx, q, args...)
	}
	return db.sql.QueryRowContext(ctx, q, args...)
}

// Query runs a query.
func (db *DB) Query(ctx context.Context, q string, args ...any) (Rows, error) {
	if db.pg != nil {
		return db.pg.Query(ctx, q, args...)
	}
	rows, err := db.sql.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	return sqlRows{rows}, nil
}

// QueryUnprepared runs a query planned for its values, as the server sends its
// searches. On PostgreSQL a prepared statement switches to a generic plan after five
// runs, which cannot turn LIKE 'abc%' into an index range; SQLite prepares every
// statement anew through database/sql anyway, and re-prepares one whose LIKE pattern
// changes.
func (db *DB) QueryUnprepared(ctx context.Context, q string, args ...any) (Rows, error) {
	if db.pg != nil {
		return db.pg.Query(ctx, q, append([]any{pgx.QueryExecModeExec}, args...)...)
	}
	return db.Query(ctx, q, args...)
}

// likeResource returns the statements that make table a copy of the resource table's
// definition, indexes included, empty: PostgreSQL's "LIKE resource INCLUDING ALL", and
// on SQLite the stored DDL of the table and its indexes renamed.
func (db *DB) likeResource(ctx context.Context, table string) ([]string, error) {
	if db.pg != nil {
		return []string{`CREATE TABLE ` + table + ` (LIKE resource INCLUDING ALL)`}, nil
	}
	// The primary key's index has no DDL of its own (sql is NULL): it comes with the table.
	rows, err := db.Query(ctx, `SELECT type, sql FROM sqlite_schema WHERE tbl_name = 'resource' AND sql IS NOT NULL ORDER BY type = 'index'`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var typ, ddl string
		if err := rows.Scan(&typ, &ddl); err != nil {
			return nil, err
		}
		re, repl := createTableRE, "${1}"+table+"${2}"
		if typ == "index" {
			re, repl = createIndexRE, "${1}"+table+"_${2}${3}"+table+"${4}"
		}
		renamed := re.ReplaceAllString(ddl, repl)
		if renamed == ddl {
			return nil, fmt.Errorf("cannot copy the resource table: unexpected %s DDL %q", typ, ddl)
		}
		out = append(out, renamed)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, errors.New("cannot copy the resource table: no DDL found")
	}
	return out, nil
}

var (
	createTableRE = regexp.MustCompile(`(?i)^(CREATE\s+TABLE\s+)resource(\s*\()`)
	createIndexRE = regexp.MustCompile(`(?i)^(CREATE\s+(?:UNIQUE\s+)?INDEX\s+)(\w+)(\s+ON\s+)resource(\s*\()`)
)
