package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "github.com/glebarez/go-sqlite" // registers the "sqlite" database/sql driver

	"github.com/fhirbox/fhirbox/pkg/app"
	"github.com/fhirbox/fhirbox/pkg/testdb"
	"github.com/fhirbox/fhirbox/resources"
)

// syntheaLines returns the first n lines of a testdata/synthea file (all when n <= 0).
func syntheaLines(t *testing.T, name string, n int) []string {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", "testdata", "synthea", name+".ndjson.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(zr)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	var out []string
	for sc.Scan() && (n <= 0 || len(out) < n) {
		out = append(out, sc.Text())
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func gzipped(t *testing.T, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// importBundle is a Synthea-style transaction Bundle: entries without ids, their fullUrl
// urn:uuid: ones, the Observation referring to the Patient by its urn:uuid:.
const importBundle = `{"resourceType":"Bundle","type":"transaction","entry":[
{"fullUrl":"urn:uuid:b0000000-0000-4000-8000-000000000001","resource":{"resourceType":"Patient","name":[{"family":"Bundled"}]},"request":{"method":"POST","url":"Patient"}},
{"fullUrl":"urn:uuid:b0000000-0000-4000-8000-000000000002","resource":{"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"urn:uuid:b0000000-0000-4000-8000-000000000001"}},"request":{"method":"POST","url":"Observation"}},
{"request":{"method":"DELETE","url":"Patient/gone"}}
]}`

// importTree writes the import test's files under dir: the Synthea Patients gzipped,
// 200 Observations with a malformed line and an invalid Observation among them (lines 3
// and 5), and a Bundle in a subdirectory. It returns how many resources are valid.
func importTree(t *testing.T, dir string) int {
	patients := syntheaLines(t, "patients", 0)
	writeFile(t, filepath.Join(dir, "a", "patients.ndjson.gz"), gzipped(t, []byte(strings.Join(patients, "\n")+"\n")))
	obs := syntheaLines(t, "observations", 200)
	lines := append([]string{}, obs[:2]...)
	lines = append(lines, `{"resourceType":"Observation","id":"broken",`)
	lines = append(lines, "")
	lines = append(lines, `{"resourceType":"Observation","id":"bad-status","status":"bogus","code":{"text":"x"}}`)
	lines = append(lines, obs[2:]...)
	writeFile(t, filepath.Join(dir, "b-observations.ndjson"), []byte(strings.Join(lines, "\r\n")))
	writeFile(t, filepath.Join(dir, "c", "d", "bundle.json"), []byte(importBundle))
	writeFile(t, filepath.Join(dir, "notes.txt"), []byte("not imported"))
	return len(patients) + len(obs) + 2
}

func countTable(t *testing.T, st app.Store, table string) int {
	t.Helper()
	var n int
	if err := st.SQL().QueryRow(`SELECT count(*) FROM ` + table + ` WHERE resource_type IN ('Patient', 'Observation')`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func openDB(t *testing.T, dbURL string) app.Store {
	t.Helper()
	db, err := app.ParseDatabase(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	st, err := app.OpenStore(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// fhirbox import of a directory — gzipped NDJSON, NDJSON with a bad line and an invalid
// resource, a Bundle deeper down — stores every valid resource under its id, reports
// each bad place as file:line: reason and exits non-zero; a re-run writes nothing new
// (every resource unchanged, no new version) and still reports the bad lines.
func TestImportCommand(t *testing.T) {
	for _, b := range testdb.Backends() {
		t.Run(string(b), func(t *testing.T) {
			dbURL := b.DatabaseURL(t)
			dir := t.TempDir()
			valid := importTree(t, dir)
			env := envOf(map[string]string{"FHIRBOX_DATABASE_URL": dbURL})
			var out bytes.Buffer
			err := run(context.Background(), []string{"import", "--batch", "64", dir}, env, &out, io.Discard)
			if err == nil || !strings.Contains(err.Error(), "3 resources could not be imported") {
				t.Fatalf("import with bad lines: %v\n%s", err, out.String())
			}
			obsFile := filepath.Join(dir, "b-observations.ndjson")
			for _, want := range []string{
				"importing 3 files",
				obsFile + ":3: ",
				obsFile + ":5: the Observation is not valid FHIR R4",
				filepath.Join(dir, "c", "d", "bundle.json") + ": entry 2: the entry has no resource",
				fmt.Sprintf("imported %d resources from 3 files", valid+3),
				fmt.Sprintf("%d stored, 0 updated, 0 unchanged, 3 failed", valid),
			} {
				if !strings.Contains(out.String(), want) {
					t.Errorf("output lacks %q:\n%s", want, out.String())
				}
			}
			if strings.Contains(out.String(), obsFile+":4:") {
				t.Errorf("a blank line is reported:\n%s", out.String())
			}
			st := openDB(t, dbURL)
			if n := countTable(t, st, "resource"); n != valid {
				t.Errorf("%d resources stored, want %d", n, valid)
			}
			var ref string
			if err := st.SQL().QueryRow(`SELECT target_id FROM search_reference WHERE resource_type = 'Observation' AND id = 'b0000000-0000-4000-8000-000000000002' AND param = 'subject'`).Scan(&ref); err != nil || ref != "b0000000-0000-4000-8000-000000000001" {
				t.Errorf("the Bundle's urn:uuid reference: %q %v", ref, err)
			}
			st.Close()

			out.Reset()
			err = run(context.Background(), []string{"import", dir}, env, &out, io.Discard)
			if err == nil || !strings.Contains(out.String(), fmt.Sprintf("0 stored, 0 updated, %d unchanged, 3 failed", valid)) {
				t.Errorf("re-run: %v\n%s", err, out.String())
			}
			st = openDB(t, dbURL)
			defer st.Close()
			if n := countTable(t, st, "resource_history"); n != valid {
				t.Errorf("%d versions after the re-run, want %d: a re-run must not write new versions", n, valid)
			}
		})
	}
}

// A changed resource is a new version; a deleted one comes back; an import of nothing
// valid says so; bad arguments are refused before anything is opened.
func TestImportUpdatesAndArguments(t *testing.T) {
	dbURL := testdb.SQLite.DatabaseURL(t)
	env := envOf(map[string]string{"FHIRBOX_DATABASE_URL": dbURL})
	dir := t.TempDir()
	f := filepath.Join(dir, "p.ndjson")
	writeFile(t, f, []byte(`{"resourceType":"Patient","id":"p1","gender":"male"}`+"\n"+`{"resourceType":"Patient","id":"p2"}`))
	if err := run(context.Background(), []string{"import", "--sqlite-cache-mb", "8", f}, env, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	writeFile(t, f, []byte(`{"resourceType":"Patient","id":"p1","gender":"female","meta":{"versionId":"9","lastUpdated":"2020-01-01T00:00:00Z"}}`+"\n"+
		`{"resourceType":"Patient","id":"p2","meta":{"versionId":"7"}}`+"\n"+`{"resourceType":"Patient","id":"p1","gender":"other"}`))
	var out bytes.Buffer
	if err := run(context.Background(), []string{"import", f}, env, &out, io.Discard); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "0 stored, 2 updated, 1 unchanged, 0 failed") {
		t.Errorf("second import:\n%s", out.String())
	}
	st := openDB(t, dbURL)
	var content string
	if err := st.SQL().QueryRow(`SELECT content FROM resource WHERE resource_type = 'Patient' AND id = 'p1'`).Scan(&content); err != nil || !strings.Contains(content, `"other"`) || !strings.Contains(content, `"versionId":"3"`) {
		t.Errorf("p1 after two updates in one batch: %v %s", err, content)
	}
	st.Close()

	// A SearchParameter is checked as a write of it is, and stored draft until indexed.
	sp := filepath.Join(dir, "sp.ndjson")
	writeFile(t, sp, []byte(`{"resourceType":"SearchParameter","id":"nick","status":"active","code":"nick","base":["Patient"],"type":"string","expression":"Patient.extension('http://example.org/nick').value","url":"http://example.org/sp/nick","name":"nick","description":"x"}`+"\n"+
		`{"resourceType":"SearchParameter","id":"broken","status":"active","code":"broken","base":["Patient"],"type":"string","expression":"Patient.(","url":"http://example.org/sp/broken","name":"broken","description":"x"}`))
	out.Reset()
	if err := run(context.Background(), []string{"import", sp}, env, &out, io.Discard); err == nil || !strings.Contains(out.String(), sp+":2: ") || !strings.Contains(out.String(), "1 stored") {
		t.Errorf("SearchParameters: %v\n%s", err, out.String())
	}
	st = openDB(t, dbURL)
	if err := st.SQL().QueryRow(`SELECT content FROM resource WHERE resource_type = 'SearchParameter' AND id = 'nick'`).Scan(&content); err != nil || strings.Contains(content, `"status":"active"`) && !strings.Contains(content, `"versionId":"2"`) {
		t.Errorf("the imported SearchParameter: %v %s", err, content)
	}
	st.Close()

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"import"}, "no file or directory given"},
		{[]string{"import", filepath.Join(dir, "missing.ndjson")}, "no such file"},
		{[]string{"import", filepath.Join(dir, "x.csv")}, "no such file"},
		{[]string{"import", "--server", "ftp://x", f}, "not an http(s) base URL"},
		{[]string{"import", "--validation", "maybe", f}, "neither on nor off"},
	} {
		err := run(context.Background(), c.args, env, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want %q", c.args, err, c.want)
		}
	}
	writeFile(t, filepath.Join(dir, "x.csv"), nil)
	if err := run(context.Background(), []string{"import", filepath.Join(dir, "x.csv")}, env, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "not an NDJSON") {
		t.Errorf("a .csv file: %v", err)
	}
}

// fhirbox import --server sends the files to a running server as batch Bundles, with a
// token: every valid resource stored, each refused entry reported as file:line with the
// server's reason; without a token nothing is stored and the import stops.
func TestImportToServer(t *testing.T) {
	dbURL := testdb.SQLite.DatabaseURL(t)
	const secret = "import-admin-secret"
	p := startProcess(t, dbURL, secret)
	tok, _ := p.token(t, "admin", secret, url.Values{"grant_type": {"client_credentials"}})["access_token"].(string)
	if tok == "" {
		t.Fatal("no token")
	}
	dir := t.TempDir()
	valid := importTree(t, dir)
	var out bytes.Buffer
	err := run(context.Background(), []string{"import", "--server", p.base + "/fhir", "--token", tok, "--batch", "50", dir}, envOf(nil), &out, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "3 resources could not be imported") {
		t.Fatalf("import --server: %v\n%s", err, out.String())
	}
	obsFile := filepath.Join(dir, "b-observations.ndjson")
	for _, want := range []string{
		"into " + p.base + "/fhir",
		obsFile + ":3: ",
		obsFile + ":5: 422 ",
		fmt.Sprintf("%d stored, 0 updated, 0 unchanged, 3 failed", valid),
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if s := p.bearer(t, "GET", "/fhir/Observation/b0000000-0000-4000-8000-000000000002", tok); s != 200 {
		t.Errorf("the Bundle's Observation on the server: %d", s)
	}
	out.Reset()
	err = run(context.Background(), []string{"import", "--server", p.base + "/fhir", "--token", "wrong", dir}, envOf(nil), &out, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "import stopped") || !strings.Contains(err.Error(), "401") {
		t.Errorf("a wrong token: %v\n%s", err, out.String())
	}
}

// importProcess starts fhirbox import as a process of its own on dbURL.
func importProcess(t *testing.T, dbURL string, args ...string) (*exec.Cmd, *syncBuffer) {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"import"}, args...)...)
	cmd.Env = append(os.Environ(), asServerEnv+"=1", "FHIRBOX_DATABASE_URL="+dbURL)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, out
}

// waitFor polls out until it holds s, or fails after a minute.
func waitFor(t *testing.T, out *syncBuffer, s string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(out.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in:\n%s", s, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// An import killed with SIGKILL halfway leaves whole batches, never half of one; the
// same command run again stores the rest, and every resource is there once, in one
// version. SIGINT (Ctrl-C) stops it after the batches under way, says what was
// committed and exits non-zero; a re-run finishes that too.
func TestImportKilledAndInterrupted(t *testing.T) {
	obs := syntheaLines(t, "observations", 3000)
	dir := t.TempDir()
	f := filepath.Join(dir, "obs.ndjson")
	writeFile(t, f, []byte(strings.Join(obs, "\n")))
	for _, b := range testdb.Backends() {
		t.Run(string(b), func(t *testing.T) {
			for _, sig := range []syscall.Signal{syscall.SIGKILL, syscall.SIGINT} {
				dbURL := b.DatabaseURL(t)
				// Not a terminal: a progress line after every batch's first three seconds;
				// batches of 50 so that the signal lands halfway.
				cmd, out := importProcess(t, dbURL, "--batch", "50", f)
				deadline := time.Now().Add(time.Minute)
				for {
					st := openCount(t, dbURL)
					if st > 0 || time.Now().After(deadline) {
						break
					}
					time.Sleep(10 * time.Millisecond)
				}
				if err := cmd.Process.Signal(sig); err != nil {
					t.Fatal(err)
				}
				err := cmd.Wait()
				if err == nil {
					t.Fatalf("%v: the import ended well (too fast to interrupt?):\n%s", sig, out.String())
				}
				n := openCount(t, dbURL)
				if n%50 != 0 || n >= len(obs) {
					t.Errorf("%v: %d resources stored: not whole batches of 50, or all", sig, n)
				}
				if sig == syscall.SIGINT {
					if !strings.Contains(out.String(), "import interrupted") || !strings.Contains(out.String(), resources.Thousands(int64(n))+" stored") {
						t.Errorf("after Ctrl-C, %d stored:\n%s", n, out.String())
					}
				}
				cmd, out = importProcess(t, dbURL, f)
				if err := cmd.Wait(); err != nil {
					t.Fatalf("re-run: %v\n%s", err, out.String())
				}
				if !strings.Contains(out.String(), fmt.Sprintf("%s stored, 0 updated, %s unchanged, 0 failed", resources.Thousands(int64(len(obs)-n)), resources.Thousands(int64(n)))) {
					t.Errorf("%v: re-run after %d:\n%s", sig, n, out.String())
				}
				st := openDB(t, dbURL)
				if r, h := countTable(t, st, "resource"), countTable(t, st, "resource_history"); r != len(obs) || h != len(obs) {
					t.Errorf("%v: %d resources, %d versions after the re-run, want %d of each", sig, r, h, len(obs))
				}
				st.Close()
			}
		})
	}
}

// openCount counts the resources stored in dbURL through a connection of its own (on
// SQLite the importing process holds the file's lock, but not its readers).
func openCount(t *testing.T, dbURL string) int {
	t.Helper()
	db, err := app.ParseDatabase(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if db.Backend == app.SQLite {
		n = sqliteCount(t, db.Target)
	} else {
		st := openDB(t, dbURL)
		n = countTable(t, st, "resource")
		st.Close()
	}
	return n
}

// sqliteCount counts the resources in the SQLite file at path without taking the lock
// that the store takes; 0 while the file is not there yet.
func sqliteCount(t *testing.T, path string) int {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		return 0
	}
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=query_only(1)&_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM resource WHERE resource_type = 'Observation'`).Scan(&n); err != nil {
		return 0 // the migrations may not have run yet
	}
	return n
}
