package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/fhirbox/fhirbox/resources/postgres"
	"github.com/fhirbox/fhirbox/resources/sqlite"
)

// The backends a Database may name.
const (
	Postgres = "postgres"
	SQLite   = "sqlite"
)

var (
	_ Store = (*postgres.Store)(nil)
	_ Store = (*sqlite.Store)(nil)
)

// Database is where the store lives, as FHIRBOX_DATABASE_URL names it.
type Database struct {
	// Backend is Postgres or SQLite.
	Backend string
	// Target is the PostgreSQL URL or the path of the SQLite file.
	Target string
	// PolicyURL (FHIRBOX_POLICY_DATABASE_URL), PostgreSQL only, names the login that
	// sql AccessPolicies run as, for a database user that may not create that role
	// itself; empty: fhirbox creates it (see postgres.WithPolicyDatabaseURL).
	PolicyURL string
}

// ParseDatabase reads a database URL: postgres://… (or postgresql://…) for PostgreSQL,
// sqlite:<path> for a SQLite file (sqlite:///abs/path works too).
func ParseDatabase(s string) (Database, error) {
	scheme, rest, ok := strings.Cut(s, ":")
	switch {
	case ok && (scheme == "postgres" || scheme == "postgresql"):
		if _, err := url.Parse(s); err != nil {
			return Database{}, fmt.Errorf("%s is not a PostgreSQL URL such as postgres://user@host:5432/db", redact(s))
		}
		return Database{Backend: Postgres, Target: s}, nil
	case ok && scheme == "sqlite":
		path := rest
		if strings.HasPrefix(rest, "//") {
			u, err := url.Parse(s)
			if err != nil || u.Host != "" {
				return Database{}, fmt.Errorf("%q is not a SQLite file: write sqlite:<path>, e.g. sqlite:./data/fhirbox.db", s)
			}
			path = u.Path
		}
		if path == "" {
			return Database{}, errors.New(`"sqlite:" names no file: write sqlite:<path>, e.g. sqlite:./data/fhirbox.db`)
		}
		return Database{Backend: SQLite, Target: path}, nil
	}
	return Database{}, fmt.Errorf("%q is neither a postgres:// URL nor sqlite:<path>", redact(s))
}

// String names the database for logs: the URL without its password, or the file's
// absolute path.
func (d Database) String() string {
	if d.Backend == Postgres {
		return redact(d.Target)
	}
	if abs, err := filepath.Abs(d.Target); err == nil {
		return abs
	}
	return d.Target
}

// StoreOption configures OpenStore.
type StoreOption func(*storeConfig)

type storeConfig struct {
	timeout    time.Duration
	timeoutSet bool
	log        *slog.Logger
	// writeCacheKiB: see WithWriteCache.
	writeCacheKiB int
	// bulk: see WithBulkLoad.
	bulk bool
}

// WithWriteCache gives a SQLite store's write connection a page cache of kib KiB, for
// bulk loads (see sqlite.WithWriteCache); PostgreSQL ignores it.
func WithWriteCache(kib int) StoreOption {
	return func(c *storeConfig) { c.writeCacheKiB = kib }
}

// WithBulkLoad tunes a SQLite store for one process loading many resources (fhirbox
// import; see sqlite.WithBulkLoad); PostgreSQL ignores it.
func WithBulkLoad() StoreOption {
	return func(c *storeConfig) { c.bulk = true }
}

// WithStatementTimeout bounds the statements of the store (default: the store's
// DefaultStatementTimeout, 30s; 0: none). See postgres.WithStatementTimeout and
// sqlite.WithStatementTimeout for what each bounds.
func WithStatementTimeout(d time.Duration) StoreOption {
	return func(c *storeConfig) { c.timeout, c.timeoutSet = d, true }
}

// WithStoreLog sets where the store reports an outage of the database (default
// slog.Default()).
func WithStoreLog(l *slog.Logger) StoreOption {
	return func(c *storeConfig) { c.log = l }
}

// OpenStore opens the store of d, creating a SQLite file (and its directory) if need
// be, and applies the pending migrations.
func OpenStore(ctx context.Context, d Database, opts ...StoreOption) (Store, error) {
	var c storeConfig
	for _, o := range opts {
		o(&c)
	}
	switch d.Backend {
	case Postgres:
		po := []postgres.Option{postgres.WithEventLog(c.log)}
		if c.timeoutSet {
			po = append(po, postgres.WithStatementTimeout(c.timeout))
		}
		if d.PolicyURL != "" {
			po = append(po, postgres.WithPolicyDatabaseURL(d.PolicyURL))
		}
		return postgres.Open(ctx, d.Target, po...)
	case SQLite:
		if d.PolicyURL != "" {
			return nil, errors.New("FHIRBOX_POLICY_DATABASE_URL is for PostgreSQL: the embedded SQLite database runs no sql policies")
		}
		var so []sqlite.Option
		if c.writeCacheKiB > 0 {
			so = append(so, sqlite.WithWriteCache(c.writeCacheKiB))
		}
		if c.timeoutSet {
			so = append(so, sqlite.WithStatementTimeout(c.timeout))
		}
		if c.bulk {
			so = append(so, sqlite.WithBulkLoad())
		}
		return sqlite.Open(ctx, d.Target, so...)
	}
	return nil, fmt.Errorf("unknown database backend %q", d.Backend)
}

// redact hides the password of a database URL.
func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		if err != nil {
			return "(unparsable URL)"
		}
		return s
	}
	return u.Redacted()
}
