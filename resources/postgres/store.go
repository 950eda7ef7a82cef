// Package postgres is the PostgreSQL implementation of resources.Store: resources as
// JSONB rows, their history and their search index in the tables of the migrations in
// migrations/postgres, which Open applies.
package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	gormpg "gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/fhirbox/fhirbox/migrations"
	"github.com/fhirbox/fhirbox/resources"
)

// Store is a resources.Store on PostgreSQL. It is safe for concurrent use.
type Store struct {
	gdb  *gorm.DB
	sql  *sql.DB
	pcfg *pgx.ConnConfig // for the change feed's own connection
}

var _ resources.Store = (*Store)(nil)

// Option configures Open.
type Option func(*config)

type config struct {
	maxConns int
	logger   logger.Interface
}

// WithMaxConns sets the size of the connection pool (default 20). Every connection is
// kept open when idle, since reconnecting costs more than an idle connection.
func WithMaxConns(n int) Option {
	return func(c *config) {
		if n > 0 {
			c.maxConns = n
		}
	}
}

// WithLogger replaces gorm's logger, which by default prints errors only.
func WithLogger(l logger.Interface) Option {
	return func(c *config) { c.logger = l }
}

// Open connects to the database at url (postgres://user:password@host:port/db?…),
// checks that it answers and applies the pending migrations. Several processes may
// open one database at once: the migrations run under an advisory lock.
func Open(ctx context.Context, url string, opts ...Option) (*Store, error) {
	c := config{maxConns: 20, logger: logger.Default.LogMode(logger.Error)}
	for _, o := range opts {
		o(&c)
	}
	pcfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres: invalid database URL: %s", oneLine(err))
	}
	// pgx prepares and caches every statement per connection by itself (its default
	// exec mode), so gorm's PrepareStmt would only add a second cache on top.
	sqlDB := stdlib.OpenDB(*pcfg)
	sqlDB.SetMaxOpenConns(c.maxConns)
	sqlDB.SetMaxIdleConns(c.maxConns)
	sqlDB.SetConnMaxIdleTime(10 * time.Minute)
	sqlDB.SetConnMaxLifetime(time.Hour)
	if err := sqlDB.PingContext(ctx); err != nil {
		sqlDB.Close()
		return nil, fmt.Errorf("postgres: cannot connect to %s: %s", redact(url), connError(err))
	}
	// Passing the pool in keeps gorm from opening (and logging) a connection of its own.
	gdb, err := gorm.Open(gormpg.New(gormpg.Config{Conn: sqlDB}), &gorm.Config{
		Logger:                 c.logger,
		SkipDefaultTransaction: true,
		DisableAutomaticPing:   true,
	})
	if err != nil {
		sqlDB.Close()
		return nil, fmt.Errorf("postgres: %s", oneLine(err))
	}
	if err := migrate(ctx, sqlDB); err != nil {
		sqlDB.Close()
		return nil, err
	}
	return &Store{gdb: gdb, sql: sqlDB, pcfg: pcfg}, nil
}

func migrate(ctx context.Context, db *sql.DB) error {
	fsys, err := fs.Sub(migrations.Postgres, "postgres")
	if err != nil {
		return fmt.Errorf("postgres: migrations: %w", err)
	}
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return fmt.Errorf("postgres: migrations: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, fsys, goose.WithSessionLocker(locker))
	if err != nil {
		return fmt.Errorf("postgres: migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("postgres: applying migrations: %s", oneLine(err))
	}
	return nil
}

// Close closes the connection pool.
func (s *Store) Close() error { return s.sql.Close() }

// DB returns the gorm handle on the store's connection pool.
func (s *Store) DB() *gorm.DB { return s.gdb }

// SQL returns the connection pool.
func (s *Store) SQL() *sql.DB { return s.sql }

// Ping reports whether the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.sql.PingContext(ctx); err != nil {
		return translate(ctx, err)
	}
	return nil
}

const readSQL = `SELECT version_id, last_updated, deleted, content FROM resource
WHERE resource_type = $1 AND id = $2`

// Read returns the current version of typ/id, deleted or not.
func (s *Store) Read(ctx context.Context, typ, id string) (*resources.Resource, error) {
	r := &resources.Resource{Type: typ, ID: id}
	var content []byte
	err := s.sql.QueryRowContext(ctx, readSQL, typ, id).Scan(&r.VersionID, &r.LastUpdated, &r.Deleted, &content)
	if err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, resources.Errorf(resources.CodeNotFound, "%s/%s not found", typ, id)
		}
		return nil, translate(ctx, err)
	}
	r.LastUpdated = r.LastUpdated.UTC()
	r.Content = content
	return r, nil
}

const vreadSQL = `SELECT last_updated, deleted, content FROM resource_history
WHERE resource_type = $1 AND id = $2 AND version_id = $3`

// VRead returns version versionID of typ/id.
func (s *Store) VRead(ctx context.Context, typ, id string, versionID int64) (*resources.Resource, error) {
	r := &resources.Resource{Type: typ, ID: id, VersionID: versionID}
	var content []byte
	err := s.sql.QueryRowContext(ctx, vreadSQL, typ, id, versionID).Scan(&r.LastUpdated, &r.Deleted, &content)
	if err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, resources.Errorf(resources.CodeNotFound, "%s/%s has no version %d", typ, id, versionID)
		}
		return nil, translate(ctx, err)
	}
	r.LastUpdated = r.LastUpdated.UTC()
	r.Content = content
	return r, nil
}

// History lists the versions of one resource (q.ID set) or of one type, newest first.
func (s *Store) History(ctx context.Context, q resources.HistoryQuery) (*resources.HistoryResult, error) {
	var b builder
	b.WriteString(" FROM resource_history WHERE resource_type = ")
	b.WriteString(b.arg(q.Type))
	if q.ID != "" {
		b.WriteString(" AND id = ")
		b.WriteString(b.arg(q.ID))
	}
	if !q.Since.IsZero() {
		b.WriteString(" AND last_updated >= ")
		b.WriteString(b.arg(q.Since))
	}
	from, args := b.String(), b.args

	res := &resources.HistoryResult{}
	count, offset := max(q.Count, 0), max(q.Offset, 0)
	if count > 0 {
		page := b.clone()
		page.WriteString(" ORDER BY last_updated DESC, version_id DESC, id LIMIT ")
		page.WriteString(page.arg(count))
		page.WriteString(" OFFSET ")
		page.WriteString(page.arg(offset))
		rows, err := s.sql.QueryContext(ctx, "SELECT id, version_id, last_updated, deleted, content"+page.String(), page.args...)
		if err != nil {
			return nil, translate(ctx, err)
		}
		defer rows.Close()
		for rows.Next() {
			r := &resources.Resource{Type: q.Type}
			var content []byte
			if err := rows.Scan(&r.ID, &r.VersionID, &r.LastUpdated, &r.Deleted, &content); err != nil {
				return nil, translate(ctx, err)
			}
			r.LastUpdated = r.LastUpdated.UTC()
			r.Content = content
			res.Entries = append(res.Entries, r)
		}
		if err := rows.Err(); err != nil {
			return nil, translate(ctx, err)
		}
		// A page that is not full ends the selection: its total needs no count.
		if n := len(res.Entries); n < count && (n > 0 || offset == 0) {
			res.Total = offset + n
			return res, nil
		}
	}
	if err := s.sql.QueryRowContext(ctx, "SELECT count(*)"+from, args...).Scan(&res.Total); err != nil {
		return nil, translate(ctx, err)
	}
	return res, nil
}

// translate turns a driver error into the engine's errors at the store's boundary:
// cancellation passes through unchanged, a unique violation is a conflict and anything
// else is an internal error whose detail is only logged.
func translate(ctx context.Context, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	case ctx.Err() != nil:
		// The server cancels a statement whose context ended with an error of its own
		// (57014 query_canceled); the caller wants to know about the context.
		return ctx.Err()
	case errors.Is(err, gorm.ErrRecordNotFound), errors.Is(err, sql.ErrNoRows):
		return resources.Errorf(resources.CodeNotFound, "not found")
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == uniqueViolation {
		return &resources.Error{Code: resources.CodeConflict, Message: "conflicting concurrent write, try again", Err: err}
	}
	return resources.Internal(err)
}

const uniqueViolation = "23505"

func isUniqueViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == uniqueViolation
}

// connError shortens a connection failure to its causes on one line: pgx joins the
// errors of every address and TLS mode it tried, over several lines and often the same.
func connError(err error) string {
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		if u := errors.Unwrap(ce); u != nil {
			err = u
		}
	}
	var msgs []string
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			if m := oneLine(e); !slices.Contains(msgs, m) {
				msgs = append(msgs, m)
			}
		}
	}
	if len(msgs) == 0 {
		return oneLine(err)
	}
	return strings.Join(msgs, "; ")
}

func oneLine(err error) string { return strings.Join(strings.Fields(err.Error()), " ") }

// redact hides the password of a database URL in messages.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "the database"
	}
	return u.Redacted()
}
