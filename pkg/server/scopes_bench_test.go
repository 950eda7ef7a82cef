package server_test

import (
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fhirbox/fhirbox/pkg/testdb"
)

// scopedBenchPatient is the Synthea sample's patient Halvorson: 96 observations, 9 of
// them body heights (8302-2).
const scopedBenchPatient = "a8ddde95-60c6-4aae-9db8-bb863179ebc3"

// BenchmarkScopedSearch loads the Synthea sample and times the same searches sent with
// two bearer tokens of one user: one without scopes (the policies alone decide) and one
// with patient/*.rs for scopedBenchPatient, whose searches the compartment filters
// (issue 16: a patient-scoped search costs ≤ 1.3× the same search unscoped): the p50 of
// each, one request at a time through the router, the two interleaved.
func BenchmarkScopedSearch(b *testing.B) { benchEachBackend(b, benchScopedSearch) }

func benchScopedSearch(b *testing.B) {
	e := newStoreEnv(b, storeEnv{url: os.Getenv("FHIRBOX_CHAIN_BENCH_" + strings.ToUpper(string(backendOf(b))))})
	var n int
	if err := e.store.SQL().QueryRow("SELECT count(*) FROM resource WHERE resource_type = 'Patient'").Scan(&n); err != nil {
		b.Fatal(err)
	}
	if n == 0 {
		loadSynthea(b, e)
	}
	if e.backend == testdb.Postgres {
		// What autovacuum does within a minute of the load. SQLite has no statistics:
		// fhirbox never runs ANALYZE there (with them, SQLite prepares each statement
		// twice, the second time for the values bound to it).
		if _, err := e.store.SQL().Exec("ANALYZE"); err != nil {
			b.Fatal(err)
		}
	}
	// Created, or updated in a database kept between runs.
	for _, r := range []req{
		put("/Client/app", `{"secret":"app-secret","grant_types":["password"]}`),
		put("/User/u1", `{"password":"u1-password-long"}`),
		yamlPut("/AccessPolicy/u1-fhir", "engine: matcho\nlink: [{resourceType: User, id: u1}]\nmatcho: {uri: '#^/fhir/'}\n"),
	} {
		if res := e.do(r); res.status != http.StatusOK && res.status != http.StatusCreated {
			b.Fatalf("%s: %d %s", r.path, res.status, res.raw)
		}
	}
	tokens := map[string]string{
		"unscoped": scopedToken(b, e, "", ""),
		"patient":  scopedToken(b, e, "patient/*.rs", scopedBenchPatient),
	}
	queries := []struct{ name, query string }{
		{"own observations", "Observation?patient=Patient/" + scopedBenchPatient},
		{"own body heights", "Observation?patient=Patient/" + scopedBenchPatient + "&code=8302-2"},
		{"body heights (126 patients)", "Observation?code=8302-2"},
		{"every observation", "Observation"},
		{"patients named Halvorson", "Patient?family=Halvorson"},
	}
	// One of the patient's observations by id: a search that names no patient, so the
	// compartment is tested beside a clause that finds one row.
	own := e.must(http.StatusOK, bearer(tokens["unscoped"], get("/fhir/Observation?_count=1&patient=Patient/"+scopedBenchPatient)))
	queries = append(queries,
		struct{ name, query string }{"one own observation by _id", "Observation?_id=" + entryIDs(own)[0]},
		// The read the search by _id checks each match as.
		struct{ name, query string }{"read of one own observation", "Observation/" + entryIDs(own)[0]})
	for _, q := range queries {
		b.Run(q.name, func(b *testing.B) {
			timePaired(b, e, "/fhir/"+q.query, "Bearer "+tokens["unscoped"], "Bearer "+tokens["patient"])
			// After the timing, whose ResetTimer drops the metrics reported before it.
			for _, who := range []string{"unscoped", "patient"} {
				r := e.must(http.StatusOK, bearer(tokens[who], get("/fhir/"+q.query)))
				if total, ok := at(r.doc, "total").(float64); ok {
					b.ReportMetric(total, who+"-matches")
				}
			}
		})
	}
}

// timePaired times GET path sent with two Authorization headers, one request of each
// per iteration in alternating order, so that a host's drift during the run weighs on
// both alike: the p50 of each, unscoped (a) and scoped (c), and their ratio.
func timePaired(b *testing.B, e *env, path, a, c string) {
	took := [2][]time.Duration{make([]time.Duration, 0, b.N), make([]time.Duration, 0, b.N)}
	one := func(auth string) time.Duration {
		t := time.Now()
		hr := httptest.NewRequest(http.MethodGet, path, nil)
		hr.Header.Set("Authorization", auth)
		w := httptest.NewRecorder()
		e.srv.ServeHTTP(w, hr)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
		return time.Since(t)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%2 == 0 {
			took[0] = append(took[0], one(a))
			took[1] = append(took[1], one(c))
		} else {
			took[1] = append(took[1], one(c))
			took[0] = append(took[0], one(a))
		}
	}
	b.StopTimer()
	p50 := func(d []time.Duration) float64 {
		slices.Sort(d)
		return float64(d[len(d)/2].Microseconds()) / 1000
	}
	u, s := p50(took[0]), p50(took[1])
	b.ReportMetric(u, "unscoped-p50-ms")
	b.ReportMetric(s, "scoped-p50-ms")
	b.ReportMetric(s/u, "x")
}
