package bulkimport_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fhirbox/fhirbox/pkg/app"
	"github.com/fhirbox/fhirbox/pkg/bulkimport"
	"github.com/fhirbox/fhirbox/pkg/testdb"
	"github.com/fhirbox/fhirbox/resources"
)

// A resource that fails inside the transaction, after others of its batch were written
// (here an amender's internal error, as a database error would), rolls the batch back;
// the batch is written again in halves, and only that resource fails: every other is
// stored, once, in one version. A refused resource (invalid) is skipped inside the
// transaction without a retry.
func TestStoreIsolatesFailure(t *testing.T) {
	for _, b := range testdb.Backends() {
		t.Run(string(b), func(t *testing.T) {
			ctx := context.Background()
			st, sink := openSink(t, b)
			poisoned := 0
			sink.Service.AddAmender("Patient", func(_ context.Context, _ *resources.Resource, doc map[string]any) error {
				if doc["id"] == "p37" {
					poisoned++
					return resources.Internal(errors.New("poisoned"))
				}
				return nil
			})
			var lines []string
			for i := range 100 {
				lines = append(lines, fmt.Sprintf(`{"resourceType":"Patient","id":"p%d","name":[{"family":"F%d"}]}`, i, i))
			}
			lines[60] = `{"resourceType":"Patient","id":"p60","gender":"mail"}`
			path := filepath.Join(t.TempDir(), "p.ndjson")
			if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
				t.Fatal(err)
			}
			var failed []string
			sum, err := bulkimport.Run(ctx, []string{path}, 0, sink, bulkimport.Options{BatchSize: 100,
				Failed: func(where string, err error) { failed = append(failed, where+": "+bulkimport.Reason(err)) }})
			if err != nil {
				t.Fatal(err)
			}
			if sum.Created != 98 || sum.Failed != 2 || len(failed) != 2 {
				t.Fatalf("%+v %q", sum.Counts, failed)
			}
			want := []string{path + ":38: exception: internal error: poisoned", path + ":61: the Patient is not valid FHIR R4"}
			for _, w := range want {
				if !strings.Contains(strings.Join(failed, "\n"), w) {
					t.Errorf("failures %q lack %q", failed, w)
				}
			}
			// Once in the whole batch, then in each half that holds it, down to itself.
			if poisoned < 2 || poisoned > 9 {
				t.Errorf("the poisoned resource was written %d times", poisoned)
			}
			var n, h int
			st.SQL().QueryRow(`SELECT count(*) FROM resource WHERE resource_type = 'Patient'`).Scan(&n)
			st.SQL().QueryRow(`SELECT count(*) FROM resource_history WHERE resource_type = 'Patient'`).Scan(&h)
			if n != 98 || h != 98 {
				t.Errorf("%d Patients, %d versions, want 98 of each", n, h)
			}
		})
	}
}

// Resources whose ids have no row are staged (checked and built) before the batch's
// transaction. One whose id was written meanwhile — here the look-up misses p3 once,
// as if it were created between the look-up and the transaction — fails the batch with
// a conflict; the halves are written again, and p3 becomes an update of what is stored.
func TestStoreStagedCreateWrittenMeanwhile(t *testing.T) {
	for _, b := range testdb.Backends() {
		t.Run(string(b), func(t *testing.T) {
			ctx := context.Background()
			st, sink := openSink(t, b)
			if _, _, err := sink.Service.Update(ctx, "Patient", "p3", map[string]any{"resourceType": "Patient", "gender": "male"}, ""); err != nil {
				t.Fatal(err)
			}
			lookup, missed := sink.Lookup, false
			sink.Lookup = func(ctx context.Context, typ string, ids []string) (map[string]*resources.Resource, error) {
				m, err := lookup(ctx, typ, ids)
				if !missed && m["p3"] != nil {
					missed = true
					delete(m, "p3")
				}
				return m, err
			}
			var lines []string
			for i := range 10 {
				lines = append(lines, fmt.Sprintf(`{"resourceType":"Patient","id":"p%d","gender":"female"}`, i))
			}
			path := filepath.Join(t.TempDir(), "p.ndjson")
			if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
				t.Fatal(err)
			}
			var failed []string
			sum, err := bulkimport.Run(ctx, []string{path}, 0, sink, bulkimport.Options{BatchSize: 10,
				Failed: func(where string, err error) { failed = append(failed, where+": "+bulkimport.Reason(err)) }})
			if err != nil {
				t.Fatal(err)
			}
			if !missed || sum.Created != 9 || sum.Updated != 1 || sum.Failed != 0 {
				t.Fatalf("missed %v: %+v %q", missed, sum.Counts, failed)
			}
			r, err := sink.Service.Read(ctx, "Patient", "p3")
			if err != nil || r.VersionID != 2 || !strings.Contains(string(r.Content), "female") {
				t.Errorf("p3: %v %s", err, r.Content)
			}
			var n, h int
			st.SQL().QueryRow(`SELECT count(*) FROM resource WHERE resource_type = 'Patient'`).Scan(&n)
			st.SQL().QueryRow(`SELECT count(*) FROM resource_history WHERE resource_type = 'Patient'`).Scan(&h)
			if n != 10 || h != 11 {
				t.Errorf("%d Patients, %d versions, want 10 and 11", n, h)
			}
		})
	}
}

// openSink opens a store on a fresh database of backend b, closed when t ends, and the
// import's database sink on it.
func openSink(t *testing.T, b testdb.Backend) (app.Store, *bulkimport.Store) {
	t.Helper()
	ctx := context.Background()
	db, err := app.ParseDatabase(b.DatabaseURL(t))
	if err != nil {
		t.Fatal(err)
	}
	st, err := app.OpenStore(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	sink, err := app.ImportStore(ctx, st, resources.ValidationOn, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	return st, sink
}
