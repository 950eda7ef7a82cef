// Package testdb gives each test its own PostgreSQL database, so that test packages and
// parallel tests never see each other's data.
package testdb

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
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

// URL creates a fresh, empty database on the server named by FHIRBOX_TEST_DATABASE_URL
// (default DefaultURL) and returns its URL. The database is dropped when the test and its
// subtests finish. An unreachable server fails the test: CI always provides one, so
// skipping would hide a broken setup.
func URL(t testing.TB) string {
	t.Helper()
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
	}
}

func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}
