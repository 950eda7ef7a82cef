// Package sqlite is the embedded implementation of resources.Store: resources, their
// history, their search index and the signing keys in one SQLite file, through a pure-Go
// driver (no cgo, no database server). It runs the statements of resources/sqlstore
// over the tables of migrations/sqlite, which Open applies.
//
// One process owns a file: Open takes an exclusive lock on it, since the caches of
// a fhirbox process (sessions, policies, clients) learn of writes only from the process
// that makes them. Writes go through one connection, one after the other, so concurrent
// writes queue in the process instead of failing on SQLite's lock; reads run on a pool of
// their own, which WAL mode lets proceed while a write is under way.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	gosqlite "github.com/glebarez/go-sqlite"
	gormsqlite "github.com/glebarez/sqlite"
	"github.com/pressly/goose/v3"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/fhirbox/fhirbox/migrations"
	"github.com/fhirbox/fhirbox/resources"
	"github.com/fhirbox/fhirbox/resources/sqlstore"
)

// Store is a resources.Store on one SQLite file. It is safe for concurrent use.
type Store struct {
	// Reads gives Read, VRead and History over the read pool.
	sqlstore.Reads
	path  string
	write *sql.DB // one connection: every write, one after the other
	sets  *sql.DB // one connection: the stored result sets (resultset.go)
	read  *sql.DB // read-only connections
	// gwrite and gread are gorm on write and read, for the side tables (keys.go).
	gwrite, gread *gorm.DB
	lock          *fileLock
	// health is a read connection of its own for Ping, so that /health answers
	// whatever the requests under way hold of the read pool.
	health  *sql.DB
	readers int
	timeout time.Duration

	writes     chan *writeReq // to the writer goroutine (see Write)
	closed     chan struct{}  // closed by Close
	writerDone chan struct{}  // closed when the writer has returned
	closeOnce  sync.Once
}

var _ sqlstore.Store = (*Store)(nil)

// Option configures Open.
type Option func(*config)

type config struct {
	readers int
	timeout time.Duration
	// cacheKiB is the page cache of the write connection (0: SQLite's 2 MB).
	cacheKiB int
	// checkpointPages is the write connection's wal_autocheckpoint.
	checkpointPages int
}

// WithWriteCache sets the page cache of the write connection to kib KiB (0: SQLite's
// default, 2,000). A bulk load (fhirbox import) inserts index rows at random places of
// indexes far larger than 2 MB: with the default nearly every row reads its page back
// from the operating system. The cache is memory of the process, filled as it is used.
func WithWriteCache(kib int) Option {
	return func(c *config) { c.cacheKiB = max(kib, 0) }
}

// WithBulkLoad lets the write-ahead log grow to 16,000 pages (64 MB) before the write
// connection copies it into the file, rather than 4,000: a bulk load changes far more
// pages than the copy can keep up with cheaply, and copies each once for more writes
// (fhirbox import of the Synthea Observations: 1,959–1,983/s with 4,000, 2,057–2,097/s
// with 16,000). The log takes that much more disk until the next checkpoint.
func WithBulkLoad() Option {
	return func(c *config) { c.checkpointPages = 16000 }
}

// DefaultStatementTimeout bounds searches and history reads unless WithStatementTimeout
// says otherwise: far above what any request of the API takes, it only stops the
// runaways.
const DefaultStatementTimeout = 30 * time.Second

// WithStatementTimeout sets how long a search or a history read may run (default
// DefaultStatementTimeout; 0 or less: no limit). One that runs longer is interrupted and
// fails with a resources.CodeTimeout error. Reads by id look up one row by its key and
// run without it; so do writes, which queue on one connection and are committed
// together (see Write): interrupting one would throw away the others'.
func WithStatementTimeout(d time.Duration) Option {
	return func(c *config) { c.timeout = max(d, 0) }
}

// pragmas are set on every connection. synchronous(FULL) makes each commit wait until
// the WAL is on disk: a write acknowledged to the client survives not only the process
// being killed (NORMAL would too: the WAL is in the operating system's hands at commit)
// but also a power loss or a kernel crash, as a commit on PostgreSQL does. The price is
// one fsync per write. busy_timeout covers the moments when a checkpoint or another
// connection holds a lock. case_sensitive_like makes LIKE compare as PostgreSQL's does,
// byte for byte, which also lets a prefix LIKE use the index. temp_store keeps the
// statement journal of a multi-row INSERT and the sorter of a search in memory rather
// than in a temporary file opened and closed every time.
var pragmas = []string{
	"busy_timeout(10000)",
	"foreign_keys(1)",
	"case_sensitive_like(1)",
	"synchronous(FULL)",
	"temp_store(MEMORY)",
}

// Open opens (creating it and its directory if need be) the database file at path,
// takes the lock that keeps other processes off it and applies the pending migrations.
func Open(ctx context.Context, path string, opts ...Option) (*Store, error) {
	c := config{readers: max(4, runtime.NumCPU()), timeout: DefaultStatementTimeout, checkpointPages: 4000}
	for _, o := range opts {
		o(&c)
	}
	if path == "" {
		return nil, errors.New("sqlite: no database file given")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o755); err != nil {
		return nil, fmt.Errorf("sqlite: creating the directory of %s: %w", abs, err)
	}
	lock, err := lockFile(abs)
	if err != nil {
		return nil, err
	}
	s := &Store{path: abs, lock: lock, closed: make(chan struct{}), readers: c.readers, timeout: c.timeout}
	fail := func(err error) (*Store, error) {
		s.Close()
		return nil, err
	}

	// WAL lets reads proceed during a write and makes a commit one append to the log.
	// A write of a resource changes some sixty pages (its rows land at random places of
	// a dozen indexes), and the committing write copies the log into the file every
	// wal_autocheckpoint pages: 4,000 (16 MB) rather than SQLite's 1,000 lets the pages
	// that every write changes be copied once for more writes, for about 15% more
	// creates per second. _txlock=immediate starts every transaction with the write
	// lock, so that a write never fails halfway when it turns out another connection
	// wrote first.
	wopts := []string{"_pragma=journal_mode(WAL)", fmt.Sprintf("_pragma=wal_autocheckpoint(%d)", c.checkpointPages), "_txlock=immediate"}
	if c.cacheKiB > 0 {
		wopts = append(wopts, fmt.Sprintf("_pragma=cache_size(-%d)", c.cacheKiB))
	}
	s.write, err = sql.Open(driverName, dsn(abs, wopts...))
	if err != nil {
		return fail(fmt.Errorf("sqlite: %s: %w", abs, err))
	}
	s.write.SetMaxOpenConns(1)
	s.write.SetMaxIdleConns(1)
	s.write.SetConnMaxLifetime(0)
	s.write.SetConnMaxIdleTime(0)
	if err := s.write.PingContext(ctx); err != nil {
		return fail(fmt.Errorf("sqlite: cannot open %s: %s", abs, oneLine(err)))
	}
	if err := migrate(ctx, s.write); err != nil {
		return fail(err)
	}

	if s.sets, err = openSets(ctx, abs); err != nil {
		return fail(err)
	}

	// query_only keeps the read connections from writing by mistake: every write must
	// take the one writer's turn.
	s.read, err = sql.Open(driverName, dsn(abs, "_pragma=query_only(1)"))
	if err != nil {
		return fail(fmt.Errorf("sqlite: %s: %w", abs, err))
	}
	s.read.SetMaxOpenConns(c.readers)
	s.read.SetMaxIdleConns(c.readers)
	s.read.SetConnMaxIdleTime(10 * time.Minute)
	if err := s.read.PingContext(ctx); err != nil {
		return fail(fmt.Errorf("sqlite: cannot open %s: %s", abs, oneLine(err)))
	}

	s.health, err = sql.Open(driverName, dsn(abs, "_pragma=query_only(1)"))
	if err != nil {
		return fail(fmt.Errorf("sqlite: %s: %w", abs, err))
	}
	s.health.SetMaxOpenConns(1)
	s.health.SetMaxIdleConns(1)

	s.Reads = sqlstore.NewReads(dialect, s.read)

	if s.gwrite, err = openGorm(s.write); err != nil {
		return fail(err)
	}
	if s.gread, err = openGorm(s.read); err != nil {
		return fail(err)
	}
	s.writes, s.writerDone = make(chan *writeReq), make(chan struct{})
	go s.writer()
	return s, nil
}

// openGorm returns gorm on conn. Its logger is off: it would print failed statements
// with their values, a private key among them, while every error reaches the caller
// through translate anyway.
func openGorm(conn *sql.DB) (*gorm.DB, error) {
	g, err := gorm.Open(&gormsqlite.Dialector{Conn: conn}, &gorm.Config{
		Logger:                 logger.Discard,
		SkipDefaultTransaction: true,
		DisableAutomaticPing:   true,
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: %s", oneLine(err))
	}
	return g, nil
}

// driverName is the database/sql driver that github.com/glebarez/go-sqlite registers.
const driverName = "sqlite"

// dsn is the driver's name for the file at abs with the common pragmas and extra
// parameters: a file: URI, so that any character of the path is taken literally.
func dsn(abs string, extra ...string) string {
	q := make([]string, 0, len(pragmas)+len(extra))
	for _, p := range pragmas {
		q = append(q, "_pragma="+p)
	}
	q = append(q, extra...)
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(abs), OmitHost: true}
	return u.String() + "?" + strings.Join(q, "&")
}

func migrate(ctx context.Context, db *sql.DB) error {
	fsys, err := fs.Sub(migrations.SQLite, "sqlite")
	if err != nil {
		return fmt.Errorf("sqlite: migrations: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, db, fsys)
	if err != nil {
		return fmt.Errorf("sqlite: migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("sqlite: applying migrations: %s", oneLine(err))
	}
	return nil
}

// Close waits for the write under way, if any, closes the connections and releases the
// file to other processes. Writes after Close fail.
func (s *Store) Close() error {
	var errs []error
	s.closeOnce.Do(func() {
		close(s.closed)
		if s.writerDone != nil {
			<-s.writerDone
		}
		if s.read != nil {
			errs = append(errs, s.read.Close())
		}
		if s.health != nil {
			errs = append(errs, s.health.Close())
		}
		if s.sets != nil {
			errs = append(errs, s.sets.Close())
		}
		if s.write != nil {
			errs = append(errs, s.write.Close())
		}
		if s.lock != nil {
			errs = append(errs, unlockFile(s.lock))
		}
	})
	return errors.Join(errs...)
}

// Path returns the absolute path of the database file.
func (s *Store) Path() string { return s.path }

// SQL returns the write connection's pool (of one). Statements through it queue behind
// the store's writes; its statistics show how long writes wait for their turn.
func (s *Store) SQL() *sql.DB { return s.write }

// PoolSize is the number of read connections.
func (s *Store) PoolSize() int { return s.readers }

// Ping reports whether the database answers, on a connection of its own.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.health.PingContext(ctx); err != nil {
		return translate(ctx, err)
	}
	return nil
}

// Listen returns when ctx ends. A file has one process (Open locks it), whose writes
// reach its caches through resources.Service.OnWrite before the writer's response:
// there is nobody else to hear from.
func (s *Store) Listen(ctx context.Context, fn func(resources.WriteEvent)) {
	<-ctx.Done()
}

// dialect is how SQLite runs the statements shared with the PostgreSQL store.
var dialect = &sqlstore.Dialect{
	Name:      "sqlite",
	Time:      micros,
	ScanTime:  func(t *time.Time) any { return timeScanner{t} },
	MatchIn:   true,
	RowidPage: true,
	FTS5:      true,
	Translate: translate,
	ValuesOf:  "SELECT value FROM json_each(%s)",
}

// micros is an instant as stored: microseconds since the Unix epoch.
func micros(t time.Time) any { return t.UnixMicro() }

// timeScanner reads an instant stored by micros.
type timeScanner struct{ t *time.Time }

func (s timeScanner) Scan(src any) error {
	n, ok := src.(int64)
	if !ok {
		return fmt.Errorf("sqlite: an instant is stored as %T, want an integer", src)
	}
	*s.t = time.UnixMicro(n).UTC()
	return nil
}

// Purge removes up to limit resources of typ that have run out, with their history
// (see sqlstore.Dialect.Purge). It runs on the write connection, in turn with the
// store's writes.
func (s *Store) Purge(ctx context.Context, typ, param string, before, deletedBefore time.Time, limit int) (int, error) {
	return dialect.Purge(ctx, s.write, typ, param, before, deletedBefore, limit)
}

// Search runs q over the live resources of q.Type, under the statement timeout.
func (s *Store) Search(ctx context.Context, q *resources.Query) (res *resources.SearchResult, err error) {
	err = s.reading(ctx, func(ctx context.Context, c sqlstore.Querier) (err error) {
		res, err = dialect.Search(ctx, c, q)
		return err
	})
	return res, err
}

// History lists the versions of one resource or of one type, newest first, under the
// statement timeout.
func (s *Store) History(ctx context.Context, q resources.HistoryQuery) (res *resources.HistoryResult, err error) {
	err = s.reading(ctx, func(ctx context.Context, c sqlstore.Querier) (err error) {
		res, err = dialect.History(ctx, c, q)
		return err
	})
	return res, err
}

// translate turns a driver error into the engine's errors (see sqlstore.Translate).
func translate(ctx context.Context, err error) error {
	return sqlstore.Translate(ctx, err, isUniqueViolation)
}

// SQLite's extended result codes of a unique constraint.
const (
	constraintPrimaryKey = 1555
	constraintUnique     = 2067
)

func isUniqueViolation(err error) bool {
	var se *gosqlite.Error
	return errors.As(err, &se) && (se.Code() == constraintPrimaryKey || se.Code() == constraintUnique)
}

func oneLine(err error) string { return strings.Join(strings.Fields(err.Error()), " ") }
