package testdb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
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
	if name == "" {
		t.Skip("no test database: PostgreSQL skipped")
	}
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

// fakeTB records a Fatalf or Skipf and ends the goroutine, as testing.T does.
type fakeTB struct {
	testing.TB
	msg     string
	skipped bool
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}
func (f *fakeTB) Skipf(format string, args ...any) {
	f.msg, f.skipped = fmt.Sprintf(format, args...), true
	runtime.Goexit()
}
func (f *fakeTB) Cleanup(func()) {}

// callURL calls URL on a fakeTB and returns how it ended.
func callURL() *fakeTB {
	f := &fakeTB{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		URL(f)
		f.msg = "URL returned"
	}()
	<-done
	return f
}

// recorder replaces the process's checker for one test: it counts the pings (passing
// them to the real one) and keeps the notices instead of printing them.
type recorder struct {
	pings   int
	notices []string
}

func record(t *testing.T) *recorder {
	r := &recorder{}
	c := newChecker()
	c.ping = func(ctx context.Context, url string) error {
		r.pings++
		return ping(ctx, url)
	}
	c.notice = func(line string) { r.notices = append(r.notices, line) }
	old := std
	std = c
	t.Cleanup(func() { std = old })
	return r
}

// closedURL names a server that does not answer: nothing listens on port 1.
const closedURL = "postgres://postgres:hunter2@127.0.0.1:1/test?sslmode=disable"

// FHIRBOX_TEST_BACKENDS listing postgres makes PostgreSQL required: an unreachable
// server fails the test, it is not skipped, and nobody is told of skipping.
func TestURLUnreachableServerFails(t *testing.T) {
	for _, env := range []string{"sqlite,postgres", "postgres", " postgres , sqlite "} {
		t.Run(env, func(t *testing.T) {
			rec := record(t)
			t.Setenv(EnvBackends, env)
			t.Setenv(EnvURL, closedURL)
			if got := Backends(); !slices.Contains(got, Postgres) {
				t.Errorf("Backends() = %v: PostgreSQL left out though required", got)
			}
			for range 3 {
				f := callURL()
				if f.skipped || !strings.Contains(f.msg, "unreachable") || !strings.Contains(f.msg, EnvURL) || strings.Contains(f.msg, "hunter2") {
					t.Errorf("URL ended with skipped=%v %q", f.skipped, f.msg)
				}
			}
			if rec.pings != 1 || len(rec.notices) != 0 {
				t.Errorf("%d pings (want 1 per process), notices %q (want none)", rec.pings, rec.notices)
			}
		})
	}
}

// Unset, FHIRBOX_TEST_BACKENDS runs the PostgreSQL tests when the server answers and
// skips them when it does not, asking once per process, and says so once, naming the
// package and how to run them.
func TestURLUnreachableServerSkipsWhenOptional(t *testing.T) {
	for _, env := range []string{"", " , "} {
		t.Run(fmt.Sprintf("%q", env), func(t *testing.T) {
			rec := record(t)
			t.Setenv(EnvBackends, env)
			t.Setenv(EnvURL, closedURL)
			for range 3 {
				if got := fmt.Sprint(Backends()); got != "[sqlite]" {
					t.Errorf("Backends() = %s, want [sqlite]", got)
				}
				f := callURL()
				if !f.skipped || !strings.Contains(f.msg, "127.0.0.1:1") || strings.Contains(f.msg, "hunter2") {
					t.Errorf("URL ended with skipped=%v %q", f.skipped, f.msg)
				}
			}
			if rec.pings != 1 {
				t.Errorf("%d pings, want 1 per process", rec.pings)
			}
			if len(rec.notices) != 1 {
				t.Fatalf("notices %q, want one", rec.notices)
			}
			n := rec.notices[0]
			for _, want := range []string{"github.com/fhirbox/fhirbox/pkg/testdb: ", "PostgreSQL tests skipped",
				"127.0.0.1:1", "connection refused", EnvBackends + "=sqlite,postgres", EnvURL} {
				if !strings.Contains(n, want) {
					t.Errorf("notice %q lacks %q", n, want)
				}
			}
			if strings.Contains(n, "hunter2") || strings.Contains(n, "\n") {
				t.Errorf("notice %q: a password or more than one line", n)
			}
		})
	}
}

// A server that answers, PostgreSQL optional: the tests run on both.
func TestBackendsOptionalReachable(t *testing.T) {
	rec := record(t)
	t.Setenv(EnvBackends, "")
	if err := ping(context.Background(), adminURL()); err != nil {
		t.Skipf("this check needs the PostgreSQL server: %v", err)
	}
	if got := fmt.Sprint(Backends()); got != "[sqlite postgres]" {
		t.Errorf("Backends() = %s, want both", got)
	}
	if rec.pings != 1 || len(rec.notices) != 0 {
		t.Errorf("%d pings, notices %q", rec.pings, rec.notices)
	}
}

func TestBackends(t *testing.T) {
	for _, tt := range []struct {
		env, want string
		required  bool
	}{
		{"sqlite", "[sqlite]", false},
		{"sqlite,postgres", "[sqlite postgres]", true},
		{"postgres,sqlite", "[sqlite postgres]", true},
		{"postgres", "[postgres]", true},
		{"sqlite,", "[sqlite]", false},
		// A typo must not leave PostgreSQL out silently.
		{"sqlite,postgress", "[sqlite postgres]", true},
		{"SQLite", "[sqlite postgres]", true},
	} {
		t.Run(tt.env, func(t *testing.T) {
			rec := record(t)
			t.Setenv(EnvBackends, tt.env)
			t.Setenv(EnvURL, closedURL)
			if got := fmt.Sprint(Backends()); got != tt.want {
				t.Errorf("Backends() = %s, want %s", got, tt.want)
			}
			if got := parseBackends(tt.env).required(); got != tt.required {
				t.Errorf("required = %v, want %v", got, tt.required)
			}
			f := callURL()
			switch {
			case tt.required && (f.skipped || f.msg == "URL returned"):
				t.Errorf("PostgreSQL required, URL ended with skipped=%v %q", f.skipped, f.msg)
			case !tt.required && !f.skipped:
				t.Errorf("PostgreSQL left out, URL ended with %q", f.msg)
			case !tt.required && rec.pings != 0:
				t.Errorf("PostgreSQL left out, yet the server was asked")
			}
			if strings.Contains(tt.env, "postgress") && !strings.Contains(f.msg, `unknown backend "postgress"`) {
				t.Errorf("a typo fails with %q", f.msg)
			}
			if wantNotice := !tt.required; (len(rec.notices) == 1) != wantNotice || (wantNotice && !strings.Contains(rec.notices[0], "leaves them out; to run them, list postgres")) {
				t.Errorf("notices %q", rec.notices)
			}
		})
	}
}

func TestReason(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("failed to connect: %w", &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connect: connection refused")}), "connect: connection refused"},
		{fmt.Errorf("dial: %w", context.DeadlineExceeded), "no answer within 3s"},
		{errors.New("FATAL: password\n authentication failed"), "FATAL: password authentication failed"},
	} {
		if got := reason(tt.err, probeTimeout); got != tt.want {
			t.Errorf("reason(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
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
