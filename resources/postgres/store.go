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
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	gormpg "gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/fhirbox/fhirbox/migrations"
	"github.com/fhirbox/fhirbox/resources"
	"github.com/fhirbox/fhirbox/resources/sqlstore"
)

// Store is a resources.Store on PostgreSQL. It is safe for concurrent use.
type Store struct {
	// Reads gives Read, VRead and History over the pool.
	sqlstore.Reads
	gdb  *gorm.DB // the side tables (keys.go, policyrole.go), on the pool sql
	sql  *sql.DB
	pcfg *pgx.ConnConfig // for the change feed's own connection
	ins  *inserter       // creates under fresh ids, batched
	// policy runs sql AccessPolicies as a role of their own (policyrole.go).
	policy *policyDB
	// health is a pool of one connection of its own for Ping, so that /health
	// answers while the pool is busy; brk dials for both (see breaker).
	health   *sql.DB
	brk      *breaker
	maxConns int
}

var _ sqlstore.Store = (*Store)(nil)

// Option configures Open.
type Option func(*config)

type config struct {
	maxConns  int
	policyURL string // WithPolicyDatabaseURL
	timeout   time.Duration
	eventLog  *slog.Logger
}

// DefaultStatementTimeout bounds every statement of the store unless
// WithStatementTimeout says otherwise: far above what any request of the API takes
// (a search of 100,000 resources takes milliseconds), it only stops the runaways.
const DefaultStatementTimeout = 30 * time.Second

// WithStatementTimeout sets PostgreSQL's statement_timeout on every connection of the
// pool (default DefaultStatementTimeout; 0 or less: none). A statement that runs longer
// is cancelled by the server and fails with a resources.CodeTimeout error. Migrations
// run without it.
func WithStatementTimeout(d time.Duration) Option {
	return func(c *config) { c.timeout = max(d, 0) }
}

// WithEventLog sets where the store reports an outage of the database (default
// slog.Default()).
func WithEventLog(l *slog.Logger) Option {
	return func(c *config) { c.eventLog = l }
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

// Open connects to the database at url (postgres://user:password@host:port/db?…),
// checks that it answers and applies the pending migrations. Several processes may
// open one database at once: the migrations run under an advisory lock.
func Open(ctx context.Context, url string, opts ...Option) (*Store, error) {
	c := config{maxConns: 20, timeout: DefaultStatementTimeout}
	for _, o := range opts {
		o(&c)
	}
	pcfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres: invalid database URL: %s", oneLine(err))
	}
	if _, ok := pcfg.RuntimeParams["application_name"]; !ok {
		// Names fhirbox's backends in pg_stat_activity.
		pcfg.RuntimeParams["application_name"] = "fhirbox"
	}
	if pcfg.ConnectTimeout == 0 {
		// A server that accepts the connection but never answers must not hold a
		// request (or the change feed) forever.
		pcfg.ConnectTimeout = 10 * time.Second
	}
	// When a request's context ends (the client went away, or a deadline passed), ask
	// the server to cancel the statement; pgx's default only gives up on the socket, and
	// PostgreSQL would go on running the statement (or waiting for its lock) until it
	// next writes to the socket.
	pcfg.BuildContextWatcherHandler = func(pc *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.CancelRequestContextWatcherHandler{Conn: pc, DeadlineDelay: 2 * time.Second}
	}
	// Migrations run before statement_timeout is set: one may take longer.
	if err := migrate(ctx, *pcfg, url); err != nil {
		return nil, err
	}
	if c.timeout > 0 {
		pcfg.RuntimeParams["statement_timeout"] = fmt.Sprint(c.timeout.Milliseconds())
	}
	brk := newBreaker(c.eventLog)
	// pgx prepares and caches every statement per connection by itself (its default
	// exec mode), so gorm's PrepareStmt would only add a second cache on top.
	sqlDB := sql.OpenDB(connector{stdlib.GetConnector(*pcfg), brk})
	sqlDB.SetMaxOpenConns(c.maxConns)
	sqlDB.SetMaxIdleConns(c.maxConns)
	sqlDB.SetConnMaxIdleTime(10 * time.Minute)
	sqlDB.SetConnMaxLifetime(time.Hour)
	health := sql.OpenDB(connector{stdlib.GetConnector(*pcfg), brk})
	health.SetMaxOpenConns(1)
	health.SetMaxIdleConns(1)
	// gorm carries the side tables (signing keys, the policy role's login) over the same
	// pool; passing the pool in keeps it from opening a connection of its own. Its
	// logger is off: it would print failed statements with their values, a private key
	// among them, while every error reaches the caller through translate anyway.
	gdb, err := gorm.Open(gormpg.New(gormpg.Config{Conn: sqlDB}), &gorm.Config{
		Logger:                 logger.Discard,
		SkipDefaultTransaction: true,
		DisableAutomaticPing:   true,
	})
	if err != nil {
		sqlDB.Close()
		health.Close()
		return nil, fmt.Errorf("postgres: %s", oneLine(err))
	}
	policy, err := openPolicy(ctx, sqlDB, gdb, pcfg, c)
	if err != nil {
		sqlDB.Close()
		health.Close()
		return nil, err
	}
	return &Store{Reads: sqlstore.NewReads(dialect, sqlDB), gdb: gdb, sql: sqlDB, pcfg: pcfg, ins: newInserter(sqlDB),
		health: health, brk: brk, maxConns: c.maxConns, policy: policy}, nil
}

// migrate checks that the database answers and applies the pending migrations, on a
// connection of its own.
func migrate(ctx context.Context, cfg pgx.ConnConfig, url string) error {
	db := stdlib.OpenDB(cfg)
	defer db.Close()
	if err := db.PingContext(ctx); err != nil {
		return fmt.Errorf("postgres: cannot connect to %s: %s", redact(url), connError(err))
	}
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

// Close waits for the inserts under way and closes the connection pool.
func (s *Store) Close() error {
	s.ins.Close()
	return errors.Join(s.policy.close(), s.sql.Close(), s.health.Close())
}

// PoolSize is the number of connections of the pool.
func (s *Store) PoolSize() int { return s.maxConns }

// SQL returns the connection pool.
func (s *Store) SQL() *sql.DB { return s.sql }

// Ping reports whether the database answers, on a connection of its own: it answers
// whatever the requests under way hold of the pool.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.health.PingContext(ctx); err != nil {
		return translate(ctx, err)
	}
	return nil
}

// dialect is how PostgreSQL runs the statements shared with the SQLite store.
var dialect = &sqlstore.Dialect{Name: "postgres", Translate: translate, KeyCollate: ` COLLATE "default"`}

// Purge removes up to limit resources of typ that have run out, with their history
// (see sqlstore.Dialect.Purge).
func (s *Store) Purge(ctx context.Context, typ, param string, before, deletedBefore time.Time, limit int) (int, error) {
	return dialect.Purge(ctx, s.sql, typ, param, before, deletedBefore, limit)
}

// translate turns a driver error into the engine's errors (see sqlstore.Translate).
func translate(ctx context.Context, err error) error {
	if err != nil && ctx.Err() == nil {
		var pe *pgconn.PgError
		switch {
		case unreachable(err):
			return unavailable(err)
		case errors.As(err, &pe) && pe.Code == queryCanceled:
			// Cancelled by the server, not by the caller: statement_timeout.
			return &resources.Error{Code: resources.CodeTimeout, Message: sqlstore.TimeoutError(0).Message, Err: err}
		}
	}
	return sqlstore.Translate(ctx, err, isUniqueViolation)
}

const (
	uniqueViolation = "23505"
	queryCanceled   = "57014"
)

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
