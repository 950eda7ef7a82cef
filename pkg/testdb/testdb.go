// Package testdb gives each test its own database, a PostgreSQL one or a SQLite file, so
// that test packages and parallel tests never see each other's data.
package testdb

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver

	"github.com/fhirbox/fhirbox/resources/postgres/policyrole"
)

// EnvURL names the environment variable holding the URL of the PostgreSQL server the
// tests create their databases on.
const EnvURL = "FHIRBOX_TEST_DATABASE_URL"

// DefaultURL is used when EnvURL is not set: the local server of the project's machines
// and of CI (user postgres, trust authentication).
const DefaultURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// Prefix starts the name of every database URL creates, so that databases left behind by
// a killed test run are easy to find and drop.
const Prefix = "fhirbox_t_"

// Backend is a kind of database the tests run on.
type Backend string

// The backends, named as the subtests that run on each.
const (
	SQLite   Backend = "sqlite"
	Postgres Backend = "postgres"
)

// EnvBackends names the environment variable that restricts the backends the tests run
// on: a comma-separated list such as "sqlite". Unset, they run on all.
const EnvBackends = "FHIRBOX_TEST_BACKENDS"

// Backends returns the backends the tests run on: SQLite and PostgreSQL, or those that
// FHIRBOX_TEST_BACKENDS lists (a machine without PostgreSQL can run the SQLite half with
// FHIRBOX_TEST_BACKENDS=sqlite).
func Backends() []Backend {
	all := []Backend{SQLite, Postgres}
	env := os.Getenv(EnvBackends)
	if env == "" {
		return all
	}
	var out []Backend
	for _, b := range all {
		if slices.Contains(strings.Split(env, ","), string(b)) {
			out = append(out, b)
		}
	}
	return out
}

// DatabaseURL returns a fresh, empty database of backend b as FHIRBOX_DATABASE_URL
// names it: a PostgreSQL URL from URL, or sqlite:<path> for a file in t.TempDir(),
// which needs no server. Either goes away when the test ends.
func (b Backend) DatabaseURL(t testing.TB) string {
	t.Helper()
	if b == SQLite {
		return "sqlite:" + filepath.Join(t.TempDir(), "fhirbox.db")
	}
	return URL(t)
}

// URL creates a fresh, empty database on the server named by FHIRBOX_TEST_DATABASE_URL
// (default DefaultURL) and returns its URL. The database is dropped when the test and its
// subtests finish. An unreachable server fails the test: CI always provides one, so
// skipping would hide a broken setup. The test is skipped only when
// FHIRBOX_TEST_BACKENDS leaves PostgreSQL out, as asked.
func URL(t testing.TB) string {
	t.Helper()
	if !slices.Contains(Backends(), Postgres) {
		t.Skipf("testdb: PostgreSQL is left out by %s=%s", EnvBackends, os.Getenv(EnvBackends))
	}
	admin := adminURL()
	u, err := url.Parse(admin)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		t.Fatalf("testdb: %s must be a postgres:// URL, got %q", EnvURL, admin)
	}

	db, err := sql.Open("pgx", admin)
	if err != nil {
		t.Fatalf("testdb: %s: %v", u.Redacted(), err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		t.Fatalf("testdb: PostgreSQL at %s is unreachable (start it, or set %s): %s",
			u.Redacted(), EnvURL, oneLine(err))
	}

	var b [8]byte
	_, _ = rand.Read(b[:])
	name := Prefix + hex.EncodeToString(b[:])
	// template0 is never connected to, so concurrent CREATE DATABASE statements from
	// parallel test packages cannot fail with "source database is being accessed".
	if _, err := db.ExecContext(ctx, `CREATE DATABASE "`+name+`" TEMPLATE template0 ENCODING 'UTF8'`); err != nil {
		t.Fatalf("testdb: create database %s on %s: %s", name, u.Redacted(), oneLine(err))
	}
	t.Cleanup(func() { drop(t, admin, name) })

	tu := *u
	tu.Path = "/" + name
	return tu.String()
}

func adminURL() string {
	if u := os.Getenv(EnvURL); u != "" {
		return u
	}
	return DefaultURL
}

// drop removes the database, disconnecting whatever the test left open (a store not
// closed after a failure, say).
func drop(t testing.TB, admin, name string) {
	db, err := sql.Open("pgx", admin)
	if err != nil {
		t.Errorf("testdb: drop %s: %v", name, err)
		return
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := db.ExecContext(ctx, `DROP DATABASE IF EXISTS "`+name+`" WITH (FORCE)`); err != nil {
		t.Errorf("testdb: drop database %s: %s", name, oneLine(err))
		return
	}
	// Roles are cluster-wide and outlive the database: drop its policy role (see
	// resources/postgres/policyrole) and any role a test made for it, named
	// <database>_…, so that none pile up on a server that CI reuses.
	rows, err := db.QueryContext(ctx, `SELECT rolname FROM pg_roles WHERE rolname = $1 OR starts_with(rolname, $2)`,
		policyrole.Name(name), name+"_")
	if err != nil {
		t.Errorf("testdb: roles of %s: %s", name, oneLine(err))
		return
	}
	var roles []string
	for rows.Next() {
		var r string
		if err := rows.Scan(&r); err == nil {
			roles = append(roles, r)
		}
	}
	rows.Close()
	for _, r := range roles {
		if _, err := db.ExecContext(ctx, `DROP ROLE IF EXISTS "`+r+`"`); err != nil {
			t.Errorf("testdb: drop role %s: %s", r, oneLine(err))
		}
	}
}

func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}
