package server_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fhirbox/fhirbox/pkg/testdb"
)

// BenchmarkSearchInclude compares, on the Synthea sample (485 patients, 16,067
// observations), one request at a time, Observation?patient=<id> for the 126 patients
// that have observations (33 to 472, median 88: a full first page of 20 and a count)
// with and without _include=Observation:subject (issue 14 wants the include at most 1.5× the search),
// through the whole handler stack. The two alternate over the same patients; the
// figures are the p50 and p90 of each, in µs, and the ratio of the p50s.
func BenchmarkSearchInclude(b *testing.B) { benchEachBackend(b, benchSearchInclude) }

func benchSearchInclude(b *testing.B) {
	e := newEnv(b)
	var ids []string
	for _, file := range []string{"patients.ndjson", "observations.ndjson"} {
		lines := readNDJSON(b, file, 0)
		var wg sync.WaitGroup
		work := make(chan json.RawMessage)
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for line := range work {
					var doc struct{ ResourceType, ID string }
					if err := json.Unmarshal(line, &doc); err != nil {
						b.Error(err)
						continue
					}
					if r := e.doFrom("", put("/fhir/"+doc.ResourceType+"/"+doc.ID, string(line))); r.status != http.StatusCreated {
						b.Errorf("load %s/%s: %d %s", doc.ResourceType, doc.ID, r.status, r.raw)
					}
				}
			}()
		}
		for _, line := range lines {
			if file == "observations.ndjson" {
				var doc struct{ Subject struct{ Reference string } }
				json.Unmarshal(line, &doc)
				if id, ok := strings.CutPrefix(doc.Subject.Reference, "Patient/"); ok && !slices.Contains(ids, id) {
					ids = append(ids, id)
				}
			}
			work <- line
		}
		close(work)
		wg.Wait()
		if b.Failed() {
			b.FailNow()
		}
	}
	if e.backend == testdb.Postgres {
		// What autovacuum would do within a minute of the load; the planner's choices
		// for the search and the include both depend on it. SQLite has no statistics
		// (fhirbox never runs ANALYZE there), and its statements are written so as not
		// to need them.
		if _, err := e.store.SQL().Exec("ANALYZE"); err != nil {
			b.Fatal(err)
		}
	}
	run := func(path string) time.Duration {
		r := httptest.NewRequest(http.MethodGet, path, nil)
		r.SetBasicAuth(adminID, adminToken)
		w := httptest.NewRecorder()
		start := time.Now()
		e.srv.ServeHTTP(w, r)
		d := time.Since(start)
		if w.Code != 200 {
			b.Fatalf("%s: status %d %s", path, w.Code, w.Body)
		}
		return d
	}
	// Warm the caches (and PostgreSQL's statistics) over every patient once.
	for _, id := range ids {
		run("/fhir/Observation?patient=" + id)
		run("/fhir/Observation?patient=" + id + "&_include=Observation:subject")
	}
	var plain, incl []time.Duration
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		id := ids[i%len(ids)]
		plain = append(plain, run("/fhir/Observation?patient="+id))
		incl = append(incl, run("/fhir/Observation?patient="+id+"&_include=Observation:subject"))
	}
	b.StopTimer()
	q := func(ds []time.Duration, f float64) float64 {
		slices.Sort(ds)
		return float64(ds[int(f*float64(len(ds)-1))].Microseconds())
	}
	p50p, p50i := q(plain, 0.5), q(incl, 0.5)
	b.ReportMetric(p50p, "p50-search-us")
	b.ReportMetric(p50i, "p50-include-us")
	b.ReportMetric(q(plain, 0.9), "p90-search-us")
	b.ReportMetric(q(incl, 0.9), "p90-include-us")
	b.ReportMetric(p50i/p50p, "ratio-p50")
}
