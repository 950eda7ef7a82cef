package server_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// loadSynthea PUTs every Synthea patient and observation through the API, four at a
// time.
func loadSynthea(tb testing.TB, e *env) {
	tb.Helper()
	for _, file := range []struct{ name, typ string }{{"patients.ndjson", "Patient"}, {"observations.ndjson", "Observation"}} {
		lines := readNDJSON(tb, file.name, 0)
		var wg sync.WaitGroup
		work := make(chan json.RawMessage)
		for w := 0; w < 4; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for raw := range work {
					var r struct{ ID string }
					if err := json.Unmarshal(raw, &r); err != nil {
						tb.Error(err)
						continue
					}
					if res := e.do(put("/"+file.typ+"/"+r.ID, string(raw))); res.status != http.StatusCreated {
						tb.Errorf("load %s/%s: %d %s", file.typ, r.ID, res.status, res.raw)
					}
				}
			}()
		}
		for _, l := range lines {
			work <- l
		}
		close(work)
		wg.Wait()
	}
}

// chainBenchQueries are the searches BenchmarkChainSearch times, with the matches each
// has in the Synthea sample (485 patients, 16,067 observations of 126 of them).
var chainBenchQueries = []struct{ name, query string }{
	// Halvorson: one patient, 96 observations.
	{"chain family", "Observation?subject:Patient.family=Halvorson"},
	{"chain family, untyped", "Observation?subject.family=Halvorson"},
	{"plain family (baseline)", "Patient?family=Halvorson"},
	{"plain subject (baseline)", "Observation?subject=Patient/a8ddde95-60c6-4aae-9db8-bb863179ebc3"},
	// 8302-2 (body height): 1,060 observations of 126 patients; 2339-0: 446 of 43;
	// 20454-5: 4 of 2.
	{"has code common", "Patient?_has:Observation:subject:code=8302-2"},
	{"has code 43 patients", "Patient?_has:Observation:subject:code=2339-0"},
	{"has code rare", "Patient?_has:Observation:subject:code=20454-5"},
	{"plain code common (baseline)", "Observation?code=8302-2"},
	{"chain and code", "Observation?subject:Patient.family=Halvorson&code=8302-2"},
}

// BenchmarkChainSearch loads the Synthea sample and reports the p50 and p90 of
// chained and _has searches, one request at a time through the router. With
// FHIRBOX_EXPLAIN set it prints the plans of the statements behind the first two.
func BenchmarkChainSearch(b *testing.B) { benchEachBackend(b, benchChainSearch) }

func benchChainSearch(b *testing.B) {
	// FHIRBOX_CHAIN_BENCH_<BACKEND> may name a database to keep between runs (loaded
	// when it has no patients yet), e.g. sqlite:/tmp/chain.db.
	e := newStoreEnv(b, storeEnv{url: os.Getenv("FHIRBOX_CHAIN_BENCH_" + strings.ToUpper(string(backendOf(b))))})
	var n int
	if err := e.store.SQL().QueryRow("SELECT count(*) FROM resource WHERE resource_type = 'Patient'").Scan(&n); err != nil {
		b.Fatal(err)
	}
	if n == 0 {
		start := time.Now()
		loadSynthea(b, e)
		b.Logf("loaded in %v", time.Since(start))
	}
	// The statistics a database has after autovacuum's first pass (PostgreSQL) or the
	// optimizer's (SQLite).
	if _, err := e.store.SQL().Exec("ANALYZE"); err != nil {
		b.Fatal(err)
	}
	if os.Getenv("FHIRBOX_EXPLAIN") != "" {
		explainChain(b, e)
	}
	for _, bq := range chainBenchQueries {
		b.Run(bq.name, func(b *testing.B) {
			r := e.must(http.StatusOK, get("/fhir/"+bq.query))
			b.ReportMetric(at(r.doc, "total").(float64), "matches")
			timeGets(b, e, "/fhir/"+bq.query, "")
		})
	}
}

// timeGets sends GET path b.N times, one at a time through the router, with the
// Authorization header auth (the admin's Basic credentials when empty), and reports the
// p50 and p90 of the answers, which must all be 200.
func timeGets(b *testing.B, e *env, path, auth string) {
	took := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t := time.Now()
		hr := httptest.NewRequest(http.MethodGet, path, nil)
		if auth == "" {
			hr.SetBasicAuth(adminID, adminToken)
		} else {
			hr.Header.Set("Authorization", auth)
		}
		w := httptest.NewRecorder()
		e.srv.ServeHTTP(w, hr)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d", w.Code)
		}
		took = append(took, time.Since(t))
	}
	b.StopTimer()
	slices.Sort(took)
	ms := func(q float64) float64 { return float64(took[int(q*float64(len(took)-1))].Microseconds()) / 1000 }
	b.ReportMetric(ms(0.5), "p50-ms")
	b.ReportMetric(ms(0.9), "p90-ms")
}

// explainChain prints the plans of the page statements of a chain and a _has search,
// written as the store writes them (see resources/sqlstore/chain.go).
func explainChain(b *testing.B, e *env) {
	db := e.store.SQL()
	pg := e.backend == "postgres"
	type stmt struct {
		name, sql string
		args      []any
	}
	chain := `r.resource_type = $1 AND NOT r.deleted AND EXISTS (SELECT 1 FROM search_reference c1 WHERE c1.resource_type = r.resource_type AND c1.id = r.id AND c1.param = $2 AND (c1.target_type = $3 AND c1.target_id IN (SELECT s.id FROM search_string s WHERE s.resource_type = $4 AND s.param = $5 AND ((s.value LIKE $6 ESCAPE '\')))))`
	has := `r.resource_type = $1 AND NOT r.deleted AND EXISTS (SELECT 1 FROM search_reference c1 WHERE c1.resource_type = $2 AND c1.param = $3 AND c1.target_type = $4 AND c1.target_id = r.id AND c1.id IN (SELECT s.id FROM search_token s WHERE s.resource_type = $5 AND s.param = $6 AND ((s.code = $7))))`
	order := " ORDER BY r.last_updated DESC, r.id LIMIT 20"
	if !pg { // MatchIn: the chain drives
		chain = strings.Replace(chain, "EXISTS (SELECT 1 FROM search_reference c1 WHERE c1.resource_type = r.resource_type AND c1.id = r.id AND", "r.id IN (SELECT c1.id FROM search_reference c1 WHERE c1.resource_type = 'Observation' AND", 1)
		has = strings.Replace(strings.Replace(has, "EXISTS (SELECT 1 FROM", "r.id IN (SELECT c1.target_id FROM", 1), " AND c1.target_id = r.id", "", 1)
		order = " ORDER BY +r.last_updated DESC, +r.id LIMIT 20"
	}
	chainArgs := []any{"Observation", "subject", "Patient", "Patient", "family", "halvorson%"}
	hasArgs := []any{"Patient", "Observation", "subject", "Patient", "Observation", "code", "8302-2"}
	stmts := []stmt{
		{"chain page", "SELECT r.id FROM resource r WHERE " + chain + order, chainArgs},
		{"chain count", "SELECT count(*) FROM resource r WHERE " + chain, chainArgs},
		{"has page", "SELECT r.id FROM resource r WHERE " + has + order, hasArgs},
		{"has count", "SELECT count(*) FROM resource r WHERE " + has, hasArgs},
	}
	for _, s := range stmts {
		q := "EXPLAIN QUERY PLAN " + s.sql
		if pg {
			q = "EXPLAIN (ANALYZE, COSTS OFF) " + s.sql
		}
		rows, err := db.Query(q, s.args...)
		if err != nil {
			b.Fatalf("%s: %v", s.name, err)
		}
		var out []string
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				b.Fatal(err)
			}
			out = append(out, fmt.Sprint(vals[len(vals)-1]))
		}
		rows.Close()
		b.Logf("%s %s plan:\n%s", e.backend, s.name, strings.Join(out, "\n"))
	}
}
