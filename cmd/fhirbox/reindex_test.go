package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/fhirbox/fhirbox/pkg/app"
	"github.com/fhirbox/fhirbox/pkg/server"
	"github.com/fhirbox/fhirbox/pkg/testdb"
	"github.com/fhirbox/fhirbox/resources"
)

// seedForReindex fills the database of dbURL with 20 Patients and a SearchParameter
// left draft (as a server stopped halfway through its indexing leaves it), then takes
// the rows of Patient's family parameter away, as a database indexed by a version of
// fhirbox without that parameter has them. It returns the store, still open.
func seedForReindex(t *testing.T, dbURL string) app.Store {
	t.Helper()
	ctx := context.Background()
	db, err := app.ParseDatabase(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	st, err := app.OpenStore(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	a, err := app.New(ctx, st, app.Config{Server: server.Config{BaseURL: "http://x.test", AdminClientID: "admin"}, AdminSecret: "s3cret", BcryptCost: bcrypt.MinCost})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		doc := map[string]any{"name": []any{map[string]any{"family": fmt.Sprintf("Fam%02d", i)}},
			"extension": []any{map[string]any{"url": "http://example.org/nick", "valueString": "nick"}}}
		if _, _, err := a.Service.Create(ctx, "Patient", doc, resources.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	sp := `{"resourceType":"SearchParameter","id":"nick","status":"draft","code":"nick","base":["Patient"],"type":"string",
"expression":"Patient.extension('http://example.org/nick').value","meta":{"versionId":"1","lastUpdated":"2026-01-01T00:00:00.000Z"}}`
	if _, err := st.Write(ctx, "SearchParameter", "nick", func(*resources.Resource) (*resources.Resource, *resources.Index, error) {
		return &resources.Resource{Type: "SearchParameter", ID: "nick", VersionID: 1, LastUpdated: time.Now(), Content: json.RawMessage(sp)}, &resources.Index{}, nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.SQL().Exec(`DELETE FROM search_string WHERE resource_type = 'Patient' AND param IN ('family', 'nick')`); err != nil {
		t.Fatal(err)
	}
	return st
}

func countRows(t *testing.T, st app.Store, param string) int {
	t.Helper()
	var n int
	if err := st.SQL().QueryRow(`SELECT count(*) FROM search_string WHERE resource_type = 'Patient' AND param = $1`, param).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// fhirbox reindex Patient re-extracts the index of every Patient with the parameters of
// this version and of the stored SearchParameters, prints progress and a summary, and
// marks a draft SearchParameter of Patient active. On SQLite it refuses to run beside a
// server and says what to do; an unknown type is refused.
func TestReindexCommand(t *testing.T) {
	for _, b := range testdb.Backends() {
		t.Run(string(b), func(t *testing.T) {
			dbURL := b.DatabaseURL(t)
			env := envOf(map[string]string{"FHIRBOX_DATABASE_URL": dbURL})
			st := seedForReindex(t, dbURL)
			if b == testdb.SQLite {
				err := run(context.Background(), []string{"reindex"}, env, io.Discard, io.Discard)
				if err == nil || !strings.Contains(err.Error(), "stop the server, run fhirbox reindex") {
					t.Errorf("reindex beside a running server: %v", err)
				}
			}
			st.Close()

			var out bytes.Buffer
			if err := run(context.Background(), []string{"reindex", "Patient"}, env, &out, io.Discard); err != nil {
				t.Fatalf("reindex: %v\n%s", err, out.String())
			}
			for _, want := range []string{"reindex Patient: 20/20 (100%)", "reindexed 20 resources of 1 types in", "resources/s)"} {
				if !strings.Contains(out.String(), want) {
					t.Errorf("output lacks %q:\n%s", want, out.String())
				}
			}
			if err := run(context.Background(), []string{"reindex", "Patint"}, env, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), `unknown resource type "Patint"`) {
				t.Errorf("an unknown type: %v", err)
			}
			db, _ := app.ParseDatabase(dbURL)
			st, err := app.OpenStore(context.Background(), db)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			if n, m := countRows(t, st, "family"), countRows(t, st, "nick"); n != 20 || m != 20 {
				t.Errorf("after reindex: %d family rows, %d nick rows, want 20 each", n, m)
			}
			r, err := st.Read(context.Background(), "SearchParameter", "nick")
			if err != nil {
				t.Fatal(err)
			}
			var doc map[string]any
			if err := json.Unmarshal(r.Content, &doc); err != nil || doc["status"] != "active" {
				t.Errorf("the draft SearchParameter after reindex: %v %s", err, r.Content)
			}
		})
	}
}

// The binary runs fhirbox reindex as a command of its own.
func TestReindexCommandProcess(t *testing.T) {
	dbURL := testdb.SQLite.DatabaseURL(t)
	seedForReindex(t, dbURL).Close()
	cmd := exec.Command(os.Args[0], "reindex")
	cmd.Env = append(os.Environ(), asServerEnv+"=1", "FHIRBOX_DATABASE_URL="+dbURL)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "reindexed ") {
		t.Fatalf("fhirbox reindex: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}
