package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/fhirbox/fhirbox/pkg/app"
	"github.com/fhirbox/fhirbox/pkg/server"
	"github.com/fhirbox/fhirbox/pkg/testdb"
	"github.com/fhirbox/fhirbox/resources"
)

// fhirbox export DIR writes one NDJSON file a type holding the stored resources as
// they are; --type and --since narrow it; a type without resources has no file.
func TestExportCommand(t *testing.T) {
	for _, b := range testdb.Backends() {
		t.Run(string(b), func(t *testing.T) {
			ctx := context.Background()
			dbURL := b.DatabaseURL(t)
			env := envOf(map[string]string{"FHIRBOX_DATABASE_URL": dbURL})
			db, _ := app.ParseDatabase(dbURL)
			st, err := app.OpenStore(ctx, db)
			if err != nil {
				t.Fatal(err)
			}
			a, err := app.New(ctx, st, app.Config{Server: server.Config{BaseURL: "http://x.test", AdminClientID: "admin"}, AdminSecret: "s3cret", BcryptCost: bcrypt.MinCost})
			if err != nil {
				t.Fatal(err)
			}
			stored := map[string]map[string]any{}
			create := func(typ string, doc map[string]any) {
				r, _, err := a.Service.Create(ctx, typ, doc, resources.CreateOptions{})
				if err != nil {
					t.Fatal(err)
				}
				var m map[string]any
				_ = json.Unmarshal(r.Content, &m)
				stored[typ+"/"+r.ID] = m
			}
			for i := range 25 {
				create("Patient", map[string]any{"name": []any{map[string]any{"family": fmt.Sprintf("Fam%02d", i), "given": []any{"line\nbreak"}}}})
			}
			create("Observation", map[string]any{"status": "final", "code": map[string]any{"text": "x"}})
			time.Sleep(5 * time.Millisecond)
			since := time.Now().UTC()
			time.Sleep(5 * time.Millisecond)
			create("Patient", map[string]any{"gender": "other"})
			st.Close()

			dir := t.TempDir()
			var out bytes.Buffer
			if err := run(ctx, []string{"export", dir, "--type", "Patient,Observation,Practitioner"}, env, &out, io.Discard); err != nil {
				t.Fatalf("export: %v\n%s", err, out.String())
			}
			if !strings.Contains(out.String(), "exported 27 resources of 2 types") {
				t.Errorf("summary:\n%s", out.String())
			}
			got := readNDJSON(t, dir, "Patient", "Observation")
			if _, err := os.Stat(filepath.Join(dir, "Practitioner.ndjson")); err == nil {
				t.Error("a file for a type without resources")
			}
			if !reflect.DeepEqual(got, stored) {
				t.Errorf("exported %d resources, stored %d, or their content differs", len(got), len(stored))
			}

			dir2 := t.TempDir()
			if err := run(ctx, []string{"export", "--since", since.Format(time.RFC3339Nano), dir2}, env, io.Discard, io.Discard); err != nil {
				t.Fatal(err)
			}
			if got := readNDJSON(t, dir2, "Patient"); len(got) != 1 {
				t.Errorf("--since: %d resources", len(got))
			}
			if err := run(ctx, []string{"export"}, env, io.Discard, io.Discard); err == nil {
				t.Error("export without a directory")
			}
		})
	}
}

// readNDJSON reads dir's files of types into a map of Type/id to the document.
func readNDJSON(t *testing.T, dir string, types ...string) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	for _, typ := range types {
		f, err := os.Open(filepath.Join(dir, typ+".ndjson"))
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var m map[string]any
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				t.Fatalf("%s: %v", typ, err)
			}
			out[typ+"/"+m["id"].(string)] = m
		}
		f.Close()
	}
	return out
}
