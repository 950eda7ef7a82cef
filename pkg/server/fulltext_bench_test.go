package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/fhirbox/fhirbox/pkg/testdb"
	"github.com/fhirbox/fhirbox/resources"
)

// BenchmarkFullText measures the p50 of full-text searches for long-tail words over the
// Synthea sample (485 patients, 16,067 observations), one request at a time: _text on a
// patient's narrative (its Synthea person seed, found in one narrative), _content on a
// word found in one observation, and the same _text at the system level.
func BenchmarkFullText(b *testing.B) { benchEachBackend(b, benchFullText) }

func benchFullText(b *testing.B) {
	e := newEnv(b)
	ctx := context.Background()
	seedRE := regexp.MustCompile(`Person seed:\s*-?(\d+)`)
	var seed string
	load := func(name, typ string) map[string]int {
		freq := map[string]int{}
		for i, line := range readNDJSON(b, name, 0) {
			var doc map[string]any
			if err := json.Unmarshal(line, &doc); err != nil {
				b.Fatal(err)
			}
			if div, _ := at(doc, "text", "div").(string); typ == "Patient" && i >= 100 && seed == "" {
				if m := seedRE.FindStringSubmatch(div); m != nil {
					seed = m[1]
				}
			}
			for _, w := range slices.Compact(sortedWords(resources.ExtractFullText(doc, nil).Content)) {
				freq[w]++
			}
			if _, _, err := e.svc.Update(ctx, typ, doc["id"].(string), doc, ""); err != nil {
				b.Fatal(err)
			}
		}
		return freq
	}
	start := time.Now()
	load("patients.ndjson", "Patient")
	freq := load("observations.ndjson", "Observation")
	b.Logf("loaded in %v", time.Since(start).Round(time.Millisecond))
	if e.backend == testdb.Postgres && os.Getenv("FHIRBOX_BENCH_ANALYZE") != "" {
		// What autovacuum does after a load: statistics (and with VACUUM, the GIN
		// pending lists merged).
		if _, err := e.store.SQL().Exec(os.Getenv("FHIRBOX_BENCH_ANALYZE")); err != nil {
			b.Fatal(err)
		}
	}
	rare := ""
	for w, n := range freq {
		if n == 1 && len(w) >= 5 && (rare == "" || w < rare) {
			rare = w
		}
	}
	for _, q := range []string{
		"/fhir/Patient?_text=" + seed,
		"/fhir/Observation?_content=" + url.QueryEscape(rare),
		"/fhir?_text=" + seed,
		"/fhir/Patient?_text=synthea&_count=10", // a word every narrative has
	} {
		b.Run(q, func(b *testing.B) {
			times := make([]time.Duration, 0, b.N)
			for range b.N {
				r := httptest.NewRequest(http.MethodGet, q, nil)
				r.SetBasicAuth(adminID, adminToken)
				w := httptest.NewRecorder()
				t0 := time.Now()
				e.srv.ServeHTTP(w, r)
				times = append(times, time.Since(t0))
				if w.Code != 200 {
					b.Fatalf("status %d: %s", w.Code, w.Body)
				}
			}
			sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
			b.ReportMetric(float64(times[len(times)/2].Microseconds())/1000, "p50-ms")
		})
	}
}

func sortedWords(s string) []string {
	w := resources.Words(s)
	slices.Sort(w)
	return w
}

// BenchmarkCreateOne measures POST /fhir/Patient of a Synthea patient one at a time:
// the p50, which a busy machine disturbs less than the mean, and creates/s. Run with
// and without the full-text rows (see docs/search.md) to see what they cost a write.
func BenchmarkCreateOne(b *testing.B) { benchEachBackend(b, benchCreateOne) }

func benchCreateOne(b *testing.B) {
	e := newEnv(b)
	body := string(readNDJSON(b, "patients.ndjson", 1)[0])
	times := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		r := httptest.NewRequest(http.MethodPost, "/fhir/Patient", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/fhir+json")
		r.SetBasicAuth(adminID, adminToken)
		w := httptest.NewRecorder()
		t0 := time.Now()
		e.srv.ServeHTTP(w, r)
		times = append(times, time.Since(t0))
		if w.Code != 201 {
			b.Fatalf("status %d %s", w.Code, w.Body)
		}
	}
	b.StopTimer()
	sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
	b.ReportMetric(float64(times[len(times)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(1/times[len(times)/2].Seconds(), "creates/s@p50")
}
