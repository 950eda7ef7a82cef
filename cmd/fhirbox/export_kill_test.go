package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fhirbox/fhirbox/pkg/app"
	"github.com/fhirbox/fhirbox/pkg/export"
	"github.com/fhirbox/fhirbox/pkg/testdb"
)

// killCopies is how many copies of the seed Observations the kill test stores by SQL:
// enough for an export of some seconds (BENCHMARKS.md: 5,000–20,000 resources a second
// on a busy host), so that the kill lands halfway.
const killCopies = 1000

// A server killed with SIGKILL in the middle of an $export (conformance E8): the job,
// its lease and the files it had written stay in the database; a new server on the same
// database claims the job once the lease has run out, runs it again from the start, and
// its manifest lists every resource exactly once — the dead attempt's files none of it.
func TestExportKilled(t *testing.T) {
	for _, b := range testdb.Backends() {
		t.Run(string(b), func(t *testing.T) { testExportKilled(t, b) })
	}
}

func testExportKilled(t *testing.T, b testdb.Backend) {
	start := time.Now()
	dbURL := b.DatabaseURL(t)
	const secret = "export-kill-admin-secret"
	want := seedExport(t, dbURL, b)
	seeded := time.Since(start)
	// Renewed every second: the new server takes the job over 3 s after the kill at
	// the latest.
	t.Setenv("FHIRBOX_EXPORT_LEASE", "3s")

	p := startProcess(t, dbURL, secret)
	st, hdr, body := p.do(t, "GET", "/fhir/$export?_type=Patient,Observation", secret, "Prefer", "respond-async")
	if st != 202 {
		t.Fatalf("kick-off: %d %s", st, body)
	}
	status := strings.TrimPrefix(hdr.Get("Content-Location"), "https://fhirbox.cluster.test")
	jobID := strings.TrimPrefix(status, "/fhir/$export-status/")

	// Killed once the job has stored its Patients' file and its first Observations'
	// one (the job row, read beside the server), while the status still says 202.
	db := rawDB(t, dbURL, b)
	deadline := time.Now().Add(30 * time.Second)
	for {
		var files int
		if err := db.QueryRow(`SELECT count(*) FROM export_file WHERE job_id = `+arg(b, 1), jobID).Scan(&files); err != nil {
			t.Fatal(err)
		}
		if files >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no file stored after 30 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if st, hdr, body := p.do(t, "GET", status, secret); st != 202 || hdr.Get("X-Progress") == "" {
		t.Fatalf("the export ended before it could be killed (%d, %s): more copies needed", st, body)
	}
	p.kill(t)
	killed := time.Now()
	var state string
	var attempt, files int
	if err := db.QueryRow(`SELECT state, attempt FROM export_job WHERE id = `+arg(b, 1), jobID).Scan(&state, &attempt); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(`SELECT count(*) FROM export_file WHERE job_id = `+arg(b, 1), jobID).Scan(&files); err != nil {
		t.Fatal(err)
	}
	if state != "running" || attempt != 1 || files == 0 {
		t.Fatalf("after the kill: job %s, attempt %d, %d files; want running, 1, some", state, attempt, files)
	}
	db.Close()

	// A new server on the same database: the status is 202 until it has run the job.
	p = startProcess(t, dbURL, secret)
	var manifest export.Manifest
	for deadline := time.Now().Add(45 * time.Second); ; {
		st, _, body := p.do(t, "GET", status, secret)
		if st == 200 {
			if err := json.Unmarshal(body, &manifest); err != nil {
				t.Fatalf("manifest: %v\n%s", err, body)
			}
			break
		}
		if st != 202 || time.Now().After(deadline) {
			t.Fatalf("status after the restart: %d %s", st, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	resumed := time.Since(killed)

	// Every resource once, and only those.
	got := map[string]map[string]bool{}
	for _, f := range manifest.Output {
		st, _, body := p.do(t, "GET", strings.TrimPrefix(f.URL, "https://fhirbox.cluster.test"), secret)
		if st != 200 {
			t.Fatalf("file %s: %d", f.URL, st)
		}
		sc := bufio.NewScanner(bytes.NewReader(body))
		sc.Buffer(nil, 1<<24)
		n := 0
		for sc.Scan() {
			var doc struct{ ResourceType, ID string }
			if err := json.Unmarshal(sc.Bytes(), &doc); err != nil {
				t.Fatalf("file %s line %d: %v", f.URL, n+1, err)
			}
			if got[doc.ResourceType] == nil {
				got[doc.ResourceType] = map[string]bool{}
			}
			if got[doc.ResourceType][doc.ID] {
				t.Errorf("%s/%s exported twice", doc.ResourceType, doc.ID)
			}
			got[doc.ResourceType][doc.ID] = true
			n++
		}
		if n != f.Count {
			t.Errorf("file %s: %d lines, the manifest says %d", f.URL, n, f.Count)
		}
	}
	if len(manifest.Error) != 0 || len(got) != len(want) {
		t.Errorf("exported types %d, errors %v; want %v", len(got), manifest.Error, want)
	}
	for typ, n := range want {
		if len(got[typ]) != n {
			t.Errorf("%s: %d exported, the database holds %d", typ, len(got[typ]), n)
		}
	}
	db = rawDB(t, dbURL, b)
	defer db.Close()
	if err := db.QueryRow(`SELECT attempt FROM export_job WHERE id = `+arg(b, 1), jobID).Scan(&attempt); err != nil || attempt != 2 {
		t.Errorf("the job ran %d times (%v), want 2", attempt, err)
	}
	t.Logf("%s: %d resources; seeded in %.1f s; the export resumed and ended %.1f s after the kill; %.1f s in all",
		b, want["Patient"]+want["Observation"], seeded.Seconds(), resumed.Seconds(), time.Since(start).Seconds())
}

// seedExport stores the Synthea Patients and the first 100 Observations through
// fhirbox import, and killCopies copies of the Observations by SQL (ids suffixed, in
// the row and the document: the system-level export reads the resource table only).
// It returns how many live resources of each type the database holds.
func seedExport(t *testing.T, dbURL string, b testdb.Backend) map[string]int {
	t.Helper()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "patients.ndjson"), []byte(strings.Join(syntheaLines(t, "patients", 0), "\n")))
	writeFile(t, filepath.Join(dir, "observations.ndjson"), []byte(strings.Join(syntheaLines(t, "observations", 100), "\n")))
	env := envOf(map[string]string{"FHIRBOX_DATABASE_URL": dbURL})
	if err := run(context.Background(), []string{"import", dir}, env, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	st := openDB(t, dbURL)
	defer st.Close()
	stmt := `INSERT INTO resource (resource_type, id, version_id, last_updated, deleted, content)
SELECT r.resource_type, r.id || '-' || n, r.version_id, r.last_updated, r.deleted, jsonb_set(r.content, '{id}', to_jsonb(r.id || '-' || n))
FROM resource r, generate_series(1, $1) n WHERE r.resource_type = 'Observation'`
	if b == testdb.SQLite {
		stmt = `WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < ?1)
INSERT INTO resource (resource_type, id, version_id, last_updated, deleted, content)
SELECT r.resource_type, r.id || '-' || c.n, r.version_id, r.last_updated, r.deleted, json_set(r.content, '$.id', r.id || '-' || c.n)
FROM resource r, c WHERE r.resource_type = 'Observation'`
	}
	if _, err := st.SQL().Exec(stmt, killCopies); err != nil {
		t.Fatal(err)
	}
	// Statistics as autovacuum leaves them after a load: without them PostgreSQL reads
	// each page of the id walk through a scan of the whole type (BENCHMARKS.md, Export).
	if _, err := st.SQL().Exec("ANALYZE"); err != nil {
		t.Fatal(err)
	}
	want := map[string]int{}
	rows, err := st.SQL().Query(`SELECT resource_type, count(*) FROM resource WHERE resource_type IN ('Patient', 'Observation') AND NOT deleted GROUP BY resource_type`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var typ string
		var n int
		if err := rows.Scan(&typ, &n); err != nil {
			t.Fatal(err)
		}
		want[typ] = n
	}
	if want["Observation"] != 100*(killCopies+1) || want["Patient"] == 0 {
		t.Fatalf("seeded %v", want)
	}
	return want
}

// rawDB opens dbURL with database/sql alone: on SQLite read-only, without the store's
// lock, which a running server holds.
func rawDB(t *testing.T, dbURL string, b testdb.Backend) *sql.DB {
	t.Helper()
	db, err := app.ParseDatabase(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	var conn *sql.DB
	if b == testdb.SQLite {
		conn, err = sql.Open("sqlite", "file:"+db.Target+"?_pragma=query_only(1)&_pragma=busy_timeout(5000)")
	} else {
		conn, err = sql.Open("pgx", dbURL)
	}
	if err != nil {
		t.Fatal(err)
	}
	return conn
}

// arg is the i-th bind parameter in b's SQL.
func arg(b testdb.Backend, i int) string {
	if b == testdb.SQLite {
		return "?" + strconv.Itoa(i)
	}
	return "$" + strconv.Itoa(i)
}

// do sends method path to p as the admin client (Basic secret), with the header
// pairs hdr, and returns the status, headers and body.
func (p *process) do(t *testing.T, method, path, secret string, hdr ...string) (int, http.Header, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, p.base+path, nil)
	req.SetBasicAuth("admin", secret)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return send(t, req)
}
