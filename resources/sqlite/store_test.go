package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fhirbox/fhirbox/resources"
	"github.com/fhirbox/fhirbox/resources/sqlstore"
	"github.com/fhirbox/fhirbox/resources/storetest"
)

// newStore opens a store on a fresh file in a temporary directory.
func newStore(t testing.TB, opts ...Option) *Store {
	t.Helper()
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "fhirbox.db"), opts...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// backend runs the store suite on SQLite.
var backend = storetest.Backend{
	Open: func(t testing.TB) storetest.Store { return newStore(t) },
	Time: micros,
	RefuseIndexValue: func(t testing.TB, s storetest.Store, v string) {
		t.Helper()
		lit := "'" + strings.ReplaceAll(v, "'", "''") + "'"
		for _, q := range []string{
			`CREATE TRIGGER refuse_string BEFORE INSERT ON search_string WHEN NEW.value = ` + lit + ` BEGIN SELECT RAISE(ABORT, 'refused'); END`,
			`CREATE TRIGGER refuse_token BEFORE INSERT ON search_token WHEN NEW.code = ` + lit + ` BEGIN SELECT RAISE(ABORT, 'refused'); END`,
		} {
			if _, err := s.SQL().Exec(q); err != nil {
				t.Fatal(err)
			}
		}
	},
}

func TestStore(t *testing.T) { storetest.Run(t, backend) }

func TestOpenCreatesDirectoryAndKeepsData(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "a", "b", "fhirbox.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if s.Path() != path {
		t.Errorf("Path = %s, want %s", s.Path(), path)
	}
	if _, err := s.Write(ctx, "Patient", "p1", func(cur *resources.Resource) (*resources.Resource, *resources.Index, error) {
		return &resources.Resource{Type: "Patient", ID: "p1", VersionID: 1, LastUpdated: time.Now(), Content: []byte(`{"n":1}`)}, nil, nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if r, err := s.Read(ctx, "Patient", "p1"); err != nil || string(r.Content) != `{"n":1}` {
		t.Fatalf("after reopening: %v %v", r, err)
	}
}

// The path is taken literally, whatever characters it holds: the driver's name for the
// file is a URI, where ?, # and % mean something.
func TestOpenOddPath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a dir?x=1#y", "50% fhir.db")
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the database is not at %s: %v", path, err)
	}
}

// One process per file: the caches of a second would never hear of the first's writes.
func TestOpenRefusesASecondOpener(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "fhirbox.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Open(ctx, path)
	if err == nil || !strings.Contains(err.Error(), "in use by another fhirbox process") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("second Open: %v", err)
	}
	s.Close()
	s, err = Open(ctx, path)
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	s.Close()
}

// The lock is on the file, not on the name it is opened by: a symbolic or a hard link
// to the file of a running server is refused as the file itself is. (Through a hard
// link SQLite would even keep a log of its own, beside the link.)
func TestOpenRefusesTheFileUnderAnotherName(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "fhirbox.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	other := t.TempDir()
	symlink, hardlink := filepath.Join(other, "symlink.db"), filepath.Join(other, "hardlink.db")
	if err := os.Symlink(path, symlink); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(path, hardlink); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{symlink, hardlink} {
		_, err := Open(ctx, name)
		if err == nil || !strings.Contains(err.Error(), "in use by another fhirbox process") || strings.Contains(err.Error(), "\n") {
			t.Errorf("Open(%s) while %s is open: %v", filepath.Base(name), path, err)
		}
	}
	// The refused opens took nothing from the open store.
	if _, err := s.Write(ctx, "Patient", "p1", func(*resources.Resource) (*resources.Resource, *resources.Index, error) {
		return &resources.Resource{Type: "Patient", ID: "p1", VersionID: 1, LastUpdated: time.Now(), Content: []byte(`{}`)}, nil, nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Closed, the file may be opened by any of its names.
	for _, name := range []string{hardlink, symlink} {
		s, err := Open(ctx, name)
		if err != nil {
			t.Fatalf("Open(%s) after Close: %v", filepath.Base(name), err)
		}
		if _, err := s.Read(ctx, "Patient", "p1"); err != nil {
			t.Errorf("Read through %s: %v", filepath.Base(name), err)
		}
		s.Close()
	}
}

// Another process is refused too: flock(2) locks conflict across processes whatever
// path they open, which a child process shows (the test binary, re-run as a helper).
func TestOpenRefusesAnotherProcess(t *testing.T) {
	if p := os.Getenv("FHIRBOX_TEST_OPEN_PATH"); p != "" {
		s, err := Open(context.Background(), p)
		if err == nil {
			s.Close()
			fmt.Println("OPENED")
			return
		}
		fmt.Println("REFUSED:", err)
		return
	}
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "fhirbox.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	hardlink := filepath.Join(t.TempDir(), "hardlink.db")
	if err := os.Link(path, hardlink); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestOpenRefusesAnotherProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), "FHIRBOX_TEST_OPEN_PATH="+hardlink)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper process: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "REFUSED: sqlite: "+hardlink+" is in use by another fhirbox process") {
		t.Errorf("a second process opening a hard link: %s", out)
	}
}

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	if _, err := Open(ctx, ""); err == nil {
		t.Error("Open without a path succeeded")
	}
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A directory where a file is.
	if _, err := Open(ctx, filepath.Join(file, "fhirbox.db")); err == nil || strings.Contains(err.Error(), "\n") {
		t.Errorf("Open under a file: %v", err)
	}
	// Not a database.
	junk := filepath.Join(t.TempDir(), "junk.db")
	if err := os.WriteFile(junk, []byte(strings.Repeat("junk", 1024)), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, junk); err == nil || strings.Contains(err.Error(), "\n") {
		t.Errorf("Open of a file that is no database: %v", err)
	}
}

// The settings every connection runs with, as the package documents them.
func TestPragmas(t *testing.T) {
	s := newStore(t)
	for _, tc := range []struct {
		db     *sql.DB
		pragma string
		want   string
	}{
		{s.write, "journal_mode", "wal"},
		{s.write, "synchronous", "2"}, // FULL
		{s.write, "foreign_keys", "1"},
		{s.write, "busy_timeout", "10000"},
		{s.write, "query_only", "0"},
		{s.read, "journal_mode", "wal"},
		{s.read, "query_only", "1"},
		{s.read, "foreign_keys", "1"},
		{s.sets, "synchronous", "1"}, // NORMAL: result sets need no fsync
		{s.sets, "wal_autocheckpoint", "4000"},
		{s.sets, "busy_timeout", "10000"},
	} {
		var got string
		if err := tc.db.QueryRow("PRAGMA " + tc.pragma).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != tc.want {
			t.Errorf("PRAGMA %s = %s, want %s", tc.pragma, got, tc.want)
		}
	}
	// LIKE compares case, as on PostgreSQL.
	var n int
	if err := s.read.QueryRow(`SELECT 'Abc' LIKE 'a%'`).Scan(&n); err != nil || n != 0 {
		t.Errorf("'Abc' LIKE 'a%%' = %d, %v; want 0", n, err)
	}
	// The read connections cannot write.
	if _, err := s.read.Exec(`DELETE FROM resource`); err == nil {
		t.Error("a read connection wrote")
	}
}

// Concurrent writes of different resources queue for the one writer instead of failing
// with SQLITE_BUSY, while reads go on.
func TestConcurrentWritesQueue(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	const n = 64
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for i := range n {
		wg.Go(func() {
			id := fmt.Sprintf("p%d", i)
			_, err := s.Write(ctx, "Patient", id, func(cur *resources.Resource) (*resources.Resource, *resources.Index, error) {
				return &resources.Resource{Type: "Patient", ID: id, VersionID: 1, LastUpdated: time.Now(), Content: []byte(`{}`)},
					&resources.Index{Tokens: []resources.TokenEntry{{Param: "gender", Code: "x"}}}, nil
			})
			if err != nil {
				errs <- err
			}
		})
		wg.Go(func() {
			if _, err := s.Search(ctx, &resources.Query{Type: "Patient", Count: 10}); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	res, err := s.Search(ctx, &resources.Query{Type: "Patient", Count: 1})
	if err != nil || res.Total != n {
		t.Fatalf("total %v, %v; want %d", res, err, n)
	}
}

func TestUniqueViolationIsConflict(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	q := `INSERT INTO signing_key (kid, private_pem, created_at) VALUES ('k', 'p', 0)`
	if _, err := s.write.ExecContext(ctx, q); err != nil {
		t.Fatal(err)
	}
	_, err := s.write.ExecContext(ctx, q)
	if code := resources.ErrorCode(translate(ctx, err)); code != resources.CodeConflict {
		t.Fatalf("duplicate key: %v (code %q), want a conflict", err, code)
	}
}

// recorder runs statements on db and keeps their text.
type recorder struct {
	db  *sql.DB
	sql []string
}

func (r *recorder) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	r.sql = append(r.sql, q)
	return r.db.QueryContext(ctx, q, args...)
}

func (r *recorder) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	r.sql = append(r.sql, q)
	return r.db.QueryRowContext(ctx, q, args...)
}

// A search starts from its rarest clause, whatever the order of the clauses: the page
// and the count select by that clause's matches ("r.id IN") and check the others one
// resource at a time; when every clause is common, the page walks the type in order.
func TestSearchStartsFromTheRarestClause(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	name := &resources.SearchParam{Name: "name", Type: resources.TypeString}
	gender := &resources.SearchParam{Name: "gender", Type: resources.TypeToken}
	// More patients than the 1,000 index rows that a probe counts at most.
	const n = 1500
	for i := range n {
		id := fmt.Sprintf("p%04d", i)
		_, err := s.Write(ctx, "Patient", id, func(cur *resources.Resource) (*resources.Resource, *resources.Index, error) {
			return &resources.Resource{Type: "Patient", ID: id, VersionID: 1, LastUpdated: time.Now(), Content: []byte(`{}`)},
				&resources.Index{
					Strings: []resources.StringEntry{{Param: "name", Value: id, Exact: id}},
					Tokens:  []resources.TokenEntry{{Param: "gender", Code: "male"}},
				}, nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	male := resources.Clause{Param: gender, Values: []resources.Value{{Code: "male", MatchCode: true}}}
	rare := resources.Clause{Param: name, Modifier: "exact", Values: []resources.Value{{Str: "p0042"}}}
	named := resources.Clause{Param: name, Modifier: "missing"} // :missing=false, every patient
	for _, tc := range []struct {
		name    string
		clauses []resources.Clause
		start   string // the index table the page starts from, "" for none
		total   int
	}{
		{"rare last", []resources.Clause{male, rare}, "search_string", 1},
		{"rare first", []resources.Clause{rare, male}, "search_string", 1},
		{"both common", []resources.Clause{male, named}, "", n},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{db: s.read}
			q := &resources.Query{Type: "Patient", Clauses: tc.clauses, Count: 10}
			res, err := dialect.Search(ctx, rec, q)
			if err != nil {
				t.Fatal(err)
			}
			if res.Total != tc.total {
				t.Errorf("total %d, want %d", res.Total, tc.total)
			}
			for _, q := range rec.sql {
				starts := strings.Count(q, "r.id IN")
				switch {
				case strings.HasPrefix(q, "SELECT r.id"):
					if tc.start == "" && starts != 0 || tc.start != "" && (starts != 1 || !strings.Contains(q, "r.id IN (SELECT s.id FROM "+tc.start)) {
						t.Errorf("the page does not start from %q:\n%s", tc.start, q)
					}
				case strings.HasPrefix(q, "SELECT count(*) FROM resource"):
					if starts != 1 {
						t.Errorf("the count does not start from one clause:\n%s", q)
					}
				}
			}
		})
	}
}

// Writes that arrive together are committed together, each on its own: a write whose
// fn fails or panics is rolled back without the others of its batch noticing, and
// writes of one resource in one batch see each other in order.
func TestGroupCommit(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	const n = 200
	sentinel := errors.New("refused")
	var wg sync.WaitGroup
	errs := make([]error, n)
	panics := make([]any, n)
	for i := range n {
		wg.Go(func() {
			defer func() { panics[i] = recover() }()
			id := fmt.Sprintf("p%d", i%50) // four writes of each resource
			_, errs[i] = s.Write(ctx, "Patient", id, func(cur *resources.Resource) (*resources.Resource, *resources.Index, error) {
				switch {
				case i%10 == 3:
					return nil, nil, sentinel
				case i%10 == 7:
					panic("boom")
				}
				v := int64(1)
				if cur != nil {
					v = cur.VersionID + 1
				}
				return &resources.Resource{Type: "Patient", ID: id, VersionID: v, LastUpdated: time.Now(), Content: []byte(fmt.Sprintf(`{"v":%d}`, v))},
					&resources.Index{Tokens: []resources.TokenEntry{{Param: "version", Code: fmt.Sprint(v)}}}, nil
			})
		})
	}
	wg.Wait()
	ok := 0
	okOf := map[string]int64{}
	for i := range n {
		switch {
		case i%10 == 3:
			if errs[i] != sentinel {
				t.Errorf("write %d: %v, want the fn's error", i, errs[i])
			}
		case i%10 == 7:
			if panics[i] != "boom" {
				t.Errorf("write %d: panic %v, want the fn's", i, panics[i])
			}
		case errs[i] != nil || panics[i] != nil:
			t.Errorf("write %d: %v %v", i, errs[i], panics[i])
		default:
			ok++
			okOf[fmt.Sprintf("p%d", i%50)]++
		}
	}
	// Every resource has as many versions as writes succeeded on it, numbered 1..k,
	// each with the index of its own version only.
	h, err := s.History(ctx, resources.HistoryQuery{Type: "Patient", Count: 1000})
	if err != nil || h.Total != ok {
		t.Fatalf("history: %d versions, %v; want %d", h.Total, err, ok)
	}
	for i := range 50 {
		id := fmt.Sprintf("p%d", i)
		cur, err := s.Read(ctx, "Patient", id)
		if okOf[id] == 0 {
			if resources.ErrorCode(err) != resources.CodeNotFound {
				t.Errorf("%s, never written: %v", id, err)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if cur.VersionID != okOf[id] {
			t.Errorf("%s: version %d, want %d", id, cur.VersionID, okOf[id])
		}
		if string(cur.Content) != fmt.Sprintf(`{"v":%d}`, cur.VersionID) {
			t.Errorf("%s: version %d holds %s", id, cur.VersionID, cur.Content)
		}
		var rows int
		if err := s.read.QueryRow(`SELECT count(*) FROM search_token WHERE id = $1 AND code = $2`, id, fmt.Sprint(cur.VersionID)).Scan(&rows); err != nil || rows != 1 {
			t.Errorf("%s: %d index rows of its version, %v", id, rows, err)
		}
	}
}

// A write whose context ends while it waits for its turn is not made.
func TestWriteCanceledWhileQueued(t *testing.T) {
	s := newStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	release := make(chan struct{})
	started := make(chan struct{})
	go s.Write(context.Background(), "Patient", "slow", func(cur *resources.Resource) (*resources.Resource, *resources.Index, error) {
		close(started)
		<-release
		return nil, nil, nil
	})
	<-started
	done := make(chan error)
	go func() {
		_, err := s.Write(ctx, "Patient", "late", func(cur *resources.Resource) (*resources.Resource, *resources.Index, error) {
			t.Error("fn of a canceled write called")
			return nil, nil, nil
		})
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	cancel()
	close(release)
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("canceled write: %v", err)
	}
}

// runaway is a statement that runs for minutes: SQLite counts to a billion.
const runaway = `WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000000) SELECT count(*) FROM c`

// A statement is interrupted when its context ends, by the statement timeout
// (CodeTimeout) or by the caller going away (the context's error), although the driver
// interrupts only while a statement is prepared, not while its rows are stepped; the
// connection serves the next statement as usual.
func TestReadingInterruptsARunawayStatement(t *testing.T) {
	const timeout = 200 * time.Millisecond
	oneReader := func(c *config) { c.readers = 1 }
	s := newStore(t, WithStatementTimeout(timeout), oneReader)
	count := func(ctx context.Context, c sqlstore.Querier) error {
		var n int
		return c.QueryRowContext(ctx, runaway).Scan(&n)
	}
	run := func(ctx context.Context) (time.Duration, error) {
		start := time.Now()
		done := make(chan error, 1)
		go func() { done <- s.reading(ctx, count) }()
		select {
		case err := <-done:
			return time.Since(start), err
		case <-time.After(20 * time.Second):
			t.Fatal("the statement was not interrupted within 20s")
		}
		return 0, nil
	}

	took, err := run(context.Background())
	if resources.ErrorCode(err) != resources.CodeTimeout || took > timeout+5*time.Second {
		t.Errorf("past the statement timeout of %s: %v after %s", timeout, err, took)
	}
	t.Logf("statement timeout of %s: interrupted after %s", timeout, took.Round(time.Millisecond))

	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	took, err = run(ctx)
	if !errors.Is(err, context.Canceled) || took > 5*time.Second {
		t.Errorf("caller gone: %v after %s", err, took)
	}
	t.Logf("caller gone after 50ms: interrupted after %s", took.Round(time.Millisecond))

	// The one read connection is fine, and no interrupt is left over for it.
	if _, err := s.Search(context.Background(), &resources.Query{Type: "Patient", Count: 10}); err != nil {
		t.Errorf("search after the interrupts: %v", err)
	}
	if _, err := s.History(context.Background(), resources.HistoryQuery{Type: "Patient", Count: 10}); err != nil {
		t.Errorf("history after the interrupts: %v", err)
	}
}

// Searches and history reads run under the statement timeout.
func TestSearchUnderTheStatementTimeout(t *testing.T) {
	s := newStore(t, WithStatementTimeout(time.Nanosecond))
	if _, err := s.Search(context.Background(), &resources.Query{Type: "Patient", Count: 10}); resources.ErrorCode(err) != resources.CodeTimeout {
		t.Errorf("search: %v", err)
	}
	if _, err := s.History(context.Background(), resources.HistoryQuery{Type: "Patient", Count: 10}); resources.ErrorCode(err) != resources.CodeTimeout {
		t.Errorf("history: %v", err)
	}
}
