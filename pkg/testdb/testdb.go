// Package testdb gives each test its own database, a PostgreSQL one or a SQLite file, so
// that test packages and parallel tests never see each other's data.
package testdb

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
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

// EnvBackends names the environment variable that chooses the backends the tests run
// on: a comma-separated list such as "sqlite" or "sqlite,postgres". Listing postgres
// makes PostgreSQL required: an unreachable server fails the tests (CI sets
// "sqlite,postgres", so that it can never pass by skipping them). Unset, the tests run
// on SQLite, and on PostgreSQL when its server answers: a machine with Go alone runs
// the SQLite half, and each test process says once that it skipped PostgreSQL.
const EnvBackends = "FHIRBOX_TEST_BACKENDS"

// probeTimeout bounds the one check, per test process, of whether the server named by
// FHIRBOX_TEST_DATABASE_URL answers when PostgreSQL is optional. A server that is
// required gets longer (requiredTimeout): a slow CI box must not turn into a failure.
const probeTimeout = 3 * time.Second

const requiredTimeout = 30 * time.Second

// Backends returns the backends the tests run on, in order: those FHIRBOX_TEST_BACKENDS
// lists, or, when it is unset, SQLite and, if its server answers, PostgreSQL. A value
// naming an unknown backend keeps PostgreSQL in, so that its tests reach URL and fail
// saying what is wrong, rather than pass without it.
func Backends() []Backend {
	sel := parseBackends(os.Getenv(EnvBackends))
	switch {
	case sel.err != nil:
		return []Backend{SQLite, Postgres}
	case sel.required():
		// Not asked here: URL fails each test if the server does not answer.
		return sel.list
	case std.decide(sel).run:
		return []Backend{SQLite, Postgres}
	case sel.set:
		return sel.list
	default:
		return []Backend{SQLite}
	}
}

// selection is what FHIRBOX_TEST_BACKENDS asks for.
type selection struct {
	raw  string
	set  bool      // the variable lists something: exactly that, PostgreSQL required if listed
	list []Backend // the backends listed, in the order of all
	err  error     // a name that is no backend
}

func parseBackends(raw string) selection {
	sel := selection{raw: raw}
	var names []string
	for _, n := range strings.Split(raw, ",") {
		if n = strings.TrimSpace(n); n != "" {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return sel
	}
	sel.set = true
	for _, n := range names {
		if n != string(SQLite) && n != string(Postgres) {
			sel.err = fmt.Errorf("%s=%q: unknown backend %q (want a comma-separated list of %s and %s)", EnvBackends, raw, n, SQLite, Postgres)
			return sel
		}
	}
	for _, b := range []Backend{SQLite, Postgres} {
		if slices.Contains(names, string(b)) {
			sel.list = append(sel.list, b)
		}
	}
	return sel
}

// required reports whether the PostgreSQL tests must run: listed, or the list is
// malformed (failing beats skipping on a typo).
func (s selection) required() bool {
	return s.err != nil || slices.Contains(s.list, Postgres)
}

// decision is whether this process runs the PostgreSQL tests.
type decision struct {
	run  bool
	skip string // why not, when they are optional: the skip message
	hint string // with skip: how to run them
	fail string // why not, when they are required: the failure message
}

// checker decides, once per test process (per server URL), whether the PostgreSQL
// tests run, and says so once when they do not.
type checker struct {
	mu      sync.Mutex
	probes  map[string]*probe // by server URL
	noticed bool
	ping    func(ctx context.Context, url string) error
	notice  func(line string)
}

type probe struct {
	once sync.Once
	err  error
}

var std = newChecker()

func newChecker() *checker {
	return &checker{probes: map[string]*probe{}, ping: ping, notice: toTerminal}
}

func (c *checker) decide(sel selection) decision {
	admin := adminURL()
	u, err := url.Parse(admin)
	var d decision
	switch {
	case sel.err != nil:
		d.fail = sel.err.Error()
	case sel.set && !sel.required():
		d.skip = fmt.Sprintf("%s=%s leaves them out", EnvBackends, sel.raw)
		d.hint = fmt.Sprintf("list postgres too, with a server at %s", EnvURL)
	case err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql"):
		d.fail = fmt.Sprintf("%s must be a postgres:// URL, got %q", EnvURL, admin)
	default:
		timeout := probeTimeout
		if sel.required() {
			timeout = requiredTimeout
		}
		if err := c.reach(admin, timeout); err == nil {
			d.run = true
		} else if sel.required() {
			d.fail = fmt.Sprintf("PostgreSQL at %s is unreachable (start it, or set %s): %s", u.Redacted(), EnvURL, oneLine(err))
		} else {
			d.skip = fmt.Sprintf("no PostgreSQL at %s (%s)", u.Redacted(), reason(err, timeout))
			d.hint = fmt.Sprintf("start it (or set %s) and set %s=%s,%s", EnvURL, EnvBackends, SQLite, Postgres)
		}
	}
	if d.skip != "" {
		c.say(d.skip, d.hint)
	}
	return d
}

// reach pings the server at admin, once per process: later calls get the first answer.
func (c *checker) reach(admin string, timeout time.Duration) error {
	c.mu.Lock()
	p := c.probes[admin]
	if p == nil {
		p = &probe{}
		c.probes[admin] = p
	}
	c.mu.Unlock()
	p.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		p.err = c.ping(ctx, admin)
	})
	return p.err
}

// say tells whoever runs the tests, once per process, that the PostgreSQL tests are
// skipped and how to run them.
func (c *checker) say(why, hint string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.noticed {
		return
	}
	c.noticed = true
	c.notice(fmt.Sprintf("%s: PostgreSQL tests skipped: %s; to run them, %s", packagePath(), why, hint))
}

func ping(ctx context.Context, admin string) error {
	db, err := sql.Open("pgx", admin)
	if err != nil {
		return err
	}
	defer db.Close()
	return db.PingContext(ctx)
}

// reason says briefly why a server did not answer: the network error alone when there
// is one ("connect: connection refused"), not pgx's whole chain.
func reason(err error, timeout time.Duration) string {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Sprintf("no answer within %s", timeout)
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return oneLine(op.Err)
	}
	return oneLine(err)
}

// toTerminal writes line where the person running the tests sees it. go test ./...
// shows nothing of a package that passes but its "ok" line (skip messages and
// everything the test binary prints are dropped), so the line goes to the controlling
// terminal when there is one; otherwise (CI, a pipe) to stderr, which go test -v and
// the report of a failing package show.
func toTerminal(line string) {
	if tty, err := os.OpenFile("/dev/tty", os.O_WRONLY, 0); err == nil {
		defer tty.Close()
		if _, err := fmt.Fprintln(tty, line); err == nil {
			return
		}
	}
	fmt.Fprintln(os.Stderr, line)
}

// packagePath is the import path of the package under test, as go test's "ok" lines
// name it.
func packagePath() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Path != "" {
		return strings.TrimSuffix(bi.Path, ".test")
	}
	return filepath.Base(os.Args[0])
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
// subtests finish. Whether the server is there is asked once per process (see
// Backends): when PostgreSQL is optional and it is not, or FHIRBOX_TEST_BACKENDS leaves
// PostgreSQL out, the test is skipped; when FHIRBOX_TEST_BACKENDS lists postgres, an
// unreachable server fails it.
func URL(t testing.TB) string {
	t.Helper()
	d := std.decide(parseBackends(os.Getenv(EnvBackends)))
	switch {
	case d.fail != "":
		t.Fatalf("testdb: %s", d.fail)
	case !d.run:
		t.Skipf("testdb: PostgreSQL tests skipped: %s", d.skip)
	}
	admin := adminURL()
	u, _ := url.Parse(admin)

	db, err := sql.Open("pgx", admin)
	if err != nil {
		t.Fatalf("testdb: %s: %v", u.Redacted(), err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

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
