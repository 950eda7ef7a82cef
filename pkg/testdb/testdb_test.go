package testdb

import (
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/fhirbox/fhirbox/resources/postgres/policyrole"
)

func open(t *testing.T, u string) *sql.DB {
	t.Helper()
	db, err := sql.Open("pgx", u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func dbExists(t *testing.T, name string) bool {
	t.Helper()
	var n int
	if err := open(t, adminURL()).QueryRow(`SELECT count(*) FROM pg_database WHERE datname = $1`, name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n == 1
}

func dbName(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimPrefix(u.Path, "/")
}

func TestURLCreatesFreshDatabasesAndDropsThem(t *testing.T) {
	var names []string
	t.Run("use", func(t *testing.T) {
		a, b := URL(t), URL(t)
		if a == b {
			t.Fatalf("two calls gave the same database %s", a)
		}
		for _, u := range []string{a, b} {
			name := dbName(t, u)
			if !strings.HasPrefix(name, Prefix) {
				t.Errorf("database %q lacks the prefix %q", name, Prefix)
			}
			names = append(names, name)
			db := open(t, u)
			var got string
			if err := db.QueryRow(`SELECT current_database()`).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != name {
				t.Errorf("connected to %s, want %s", got, name)
			}
			if _, err := db.Exec(`CREATE TABLE t (x int)`); err != nil {
				t.Fatal(err)
			}
		}
		// A connection left open must not keep the database from being dropped.
		if err := open(t, a).Ping(); err != nil {
			t.Fatal(err)
		}
	})
	for _, name := range names {
		if dbExists(t, name) {
			t.Errorf("database %s still exists after the test", name)
		}
	}
}

// The roles made for a test database (fhirbox's policy role, a test's own) go with it.
func TestURLDropsTheDatabasesRoles(t *testing.T) {
	var name string
	t.Run("use", func(t *testing.T) {
		name = dbName(t, URL(t))
		admin := open(t, adminURL())
		for _, r := range []string{policyrole.Name(name), name + "_app"} {
			if _, err := admin.Exec(`CREATE ROLE "` + r + `" LOGIN`); err != nil {
				t.Fatal(err)
			}
		}
		// A privilege in the database is no obstacle: it goes with the database.
		if _, err := open(t, dbURL(t, name)).Exec(`CREATE TABLE t (x int); GRANT SELECT ON t TO "` + name + `_app"`); err != nil {
			t.Fatal(err)
		}
	})
	var n int
	if err := open(t, adminURL()).QueryRow(`SELECT count(*) FROM pg_roles WHERE starts_with(rolname, $1)`, name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("%d roles of %s left after the test", n, name)
	}
}

// URL2 is the URL of the existing test database name.
func dbURL(t *testing.T, name string) string {
	u, err := url.Parse(adminURL())
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

// fakeTB records a Fatalf and ends the goroutine, as testing.T does.
type fakeTB struct {
	testing.TB
	msg string
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}
func (f *fakeTB) Cleanup(func()) {}

func TestURLUnreachableServerFails(t *testing.T) {
	t.Setenv(EnvBackends, "")
	t.Setenv(EnvURL, "postgres://postgres:hunter2@127.0.0.1:1/test?sslmode=disable&connect_timeout=2")
	f := &fakeTB{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		URL(f)
		f.msg = "URL returned"
	}()
	<-done
	if !strings.Contains(f.msg, "unreachable") || !strings.Contains(f.msg, EnvURL) || strings.Contains(f.msg, "hunter2") {
		t.Errorf("Fatalf message = %q", f.msg)
	}
}

func TestBackends(t *testing.T) {
	t.Setenv(EnvBackends, "")
	if got := fmt.Sprint(Backends()); got != "[sqlite postgres]" {
		t.Errorf("Backends() = %s, want both", got)
	}
	t.Setenv(EnvBackends, "sqlite")
	if got := fmt.Sprint(Backends()); got != "[sqlite]" {
		t.Errorf("Backends() with %s=sqlite = %s", EnvBackends, got)
	}
	// URL skips when PostgreSQL is left out, rather than fail.
	t.Run("skipped", func(t *testing.T) {
		URL(t)
		t.Error("URL returned with PostgreSQL left out")
	})
}

func TestSQLiteDatabaseURL(t *testing.T) {
	a, b := SQLite.DatabaseURL(t), SQLite.DatabaseURL(t)
	if a == b || !strings.HasPrefix(a, "sqlite:") {
		t.Fatalf("DatabaseURL gave %q and %q", a, b)
	}
	dir := filepath.Dir(strings.TrimPrefix(a, "sqlite:"))
	if _, err := os.Stat(dir); err != nil {
		t.Errorf("the file's directory %s: %v", dir, err)
	}
}
