package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/fhirbox/fhirbox/pkg/app"
	"github.com/fhirbox/fhirbox/pkg/server"
	"github.com/fhirbox/fhirbox/pkg/testdb"
)

// benchServer is fhirbox on a fresh database of backend b, served over HTTP as fhirbench
// meets it, and the same database opened as fhirbench opens -db: beside the server.
func benchServer(t *testing.T, b testdb.Backend) (*API, *DB, string) {
	t.Helper()
	ctx := context.Background()
	dbURL := b.DatabaseURL(t)
	d, err := app.ParseDatabase(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	st, err := app.OpenStore(ctx, d)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	a, err := app.New(ctx, st, app.Config{
		Server:      server.Config{BaseURL: "http://fhirbox.test", AdminClientID: "admin", Logger: slog.New(slog.DiscardHandler)},
		AdminSecret: "admin-secret",
		BcryptCost:  bcrypt.MinCost,
	})
	if err != nil {
		t.Fatalf("app: %v", err)
	}
	srv := httptest.NewServer(a.Server)
	t.Cleanup(srv.Close)
	db, err := OpenDB(ctx, dbURL, 4)
	if err != nil {
		t.Fatalf("OpenDB(%s) while the server has it open: %v", dbURL, err)
	}
	t.Cleanup(db.Close)
	if want := d.Backend; db.Backend != want {
		t.Fatalf("OpenDB(%s) opened %s, want %s", dbURL, db.Backend, want)
	}
	return newTestAPI(t, srv.URL, 4), db, dbURL
}

// manyPatients share a birth date, an identifier and a family named in their
// narrative, and the first has manyObs observations of one code: searches whose matches overflow a page, which the server
// and the SQLite ceiling count in a statement of its own. One more is deleted, which
// neither may find.
const (
	manyPatients = searchCount + 3
	manyObs      = searchCount + 2
	manyBirth    = "1971-02-03"
	manySystem   = "urn:fhirbench:test"
	manyCode     = "8302-2"
	loinc        = "http://loinc.org"
)

func manyID(i int) string { return fmt.Sprintf("many-%d", i) }

// writeMany writes the manyPatients and their observations, and returns what
// PopulationFromDB should find of them.
func writeMany(t *testing.T, api *API) []PatientInfo {
	t.Helper()
	ctx := context.Background()
	put := func(typ, id string, doc map[string]any) {
		t.Helper()
		doc["resourceType"], doc["id"] = typ, id
		b, _ := json.Marshal(doc)
		if _, _, err := api.Do(ctx, http.MethodPut, "/"+typ+"/"+id, "/"+typ+"/{id}", b, false); err != nil {
			t.Fatal(err)
		}
	}
	var out []PatientInfo
	for i := range manyPatients + 1 {
		id := manyID(i)
		ident := []Ident{{manySystem, "shared"}, {manySystem, id}}
		put("Patient", id, map[string]any{
			"name":       []any{map[string]any{"family": "Manyfold"}},
			"birthDate":  manyBirth,
			"identifier": []any{map[string]any{"system": ident[0].System, "value": ident[0].Value}, map[string]any{"system": ident[1].System, "value": ident[1].Value}},
			// Named in the narrative, so that a _text search fills a page too.
			"text": map[string]any{"status": "generated", "div": `<div xmlns="http://www.w3.org/1999/xhtml">Manyfold</div>`},
		})
		if i == manyPatients {
			if _, _, err := api.Do(ctx, http.MethodDelete, "/Patient/"+id, "/Patient/{id}", nil, false); err != nil {
				t.Fatal(err)
			}
			continue
		}
		out = append(out, PatientInfo{N: -1, ID: id, Family: "Manyfold", FamilyQuery: "Manyfold", BirthDate: manyBirth, Identifiers: ident})
	}
	for k := range manyObs {
		put("Observation", fmt.Sprintf("many-obs-%d", k), map[string]any{
			"status":  "final",
			"code":    map[string]any{"coding": []any{map[string]any{"system": loinc, "code": manyCode}}},
			"subject": map[string]any{"reference": "Patient/" + manyID(0)},
		})
	}
	out[0].Codes = []Ident{{loinc, manyCode}}
	return out
}

// TestCeilingsOnBothBackends loads a small population into a real fhirbox on each
// backend and checks that fhirbench reads it back from the database, that every ceiling
// search finds as many matches as the server's search with the same values, and that
// every ceiling runs without errors and leaves fhirbox's tables as they were.
func TestCeilingsOnBothBackends(t *testing.T) {
	for _, b := range testdb.Backends() {
		t.Run(string(b), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			api, db, _ := benchServer(t, b)
			der := NewDeriver(fixture(t), 1)
			loaded, err := (&Loader{API: api, Der: der, DB: db, Conc: 4, ObsPP: 3}).Load(ctx, 40)
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			want := append(loaded, writeMany(t, api)...)

			pop, err := PopulationFromDB(ctx, db)
			if err != nil {
				t.Fatalf("PopulationFromDB: %v", err)
			}
			if got, w := canonical(pop), canonical(want); got != w {
				t.Errorf("PopulationFromDB:\n%s\nwant\n%s", got, w)
			}
			// A second load finds everything in place through the database.
			if again, err := (&Loader{API: api, Der: der, DB: db, Conc: 4, ObsPP: 3}).Load(ctx, 40); err != nil || canonical(again) != canonical(loaded) {
				t.Errorf("second load: %v", err)
			}

			t.Run("searches", func(t *testing.T) { checkSearchCounts(t, api, db, der, pop) })
			t.Run("ceilings", func(t *testing.T) { checkCeilingsRun(t, api, db, der, pop) })
			t.Run("history-system", func(t *testing.T) { checkHistoryCeiling(t, api, db) })
			t.Run("token-authorization-code", func(t *testing.T) { checkCodeExchange(t, api, der, pop) })
		})
	}
}

// canonical prints a population in a fixed order, codes sorted: the database returns
// an observation's codes in no particular order.
func canonical(ps []PatientInfo) string {
	ps = slices.Clone(ps)
	slices.SortFunc(ps, func(a, b PatientInfo) int { return strings.Compare(a.ID, b.ID) })
	var sb strings.Builder
	for _, p := range ps {
		codes := slices.Clone(p.Codes)
		slices.SortFunc(codes, func(a, b Ident) int { return strings.Compare(a.System+"|"+a.Value, b.System+"|"+b.Value) })
		fmt.Fprintf(&sb, "%d %s %q %q %s %v %v\n", p.N, p.ID, p.Family, p.FamilyQuery, p.BirthDate, p.Identifiers, codes)
	}
	return sb.String()
}

// searchScenarios are the scenarios whose ceiling is a search.
var searchScenarios = []string{"search-family", "search-family-exact", "search-birthdate", "search-identifier", "search-observation",
	"search-chain", "search-has", "search-observation-patient", "search-include", "search-text"}

// checkSearchCounts runs every search scenario's ceiling for every value the
// population offers and compares its number of matches with the server's total and,
// for the scenarios of issue 14, with what the population says the search should find.
func checkSearchCounts(t *testing.T, api *API, db *DB, der *Deriver, pop []PatientInfo) {
	ctx := context.Background()
	obsOf := observationsBySubject(t, db)
	for _, sc := range searchScenarios {
		t.Run(sc, func(t *testing.T) {
			w, err := NewWorkload(sc, der, pop)
			if err != nil {
				t.Fatal(err)
			}
			seen := map[string]bool{}
			var values []params
			add := func(p params) {
				if k := fmt.Sprint(p); !seen[k] {
					seen[k] = true
					values = append(values, p)
				}
			}
			for _, p := range pop {
				switch sc {
				case "search-family":
					add(params{family: p.FamilyQuery})
					// A prefix of a name, as a user types it, matches many.
					add(params{family: p.FamilyQuery[:min(3, len(p.FamilyQuery))]})
				case "search-family-exact":
					// Every stored name: the rare ones the scenario draws and the
					// common ones, which fill a page.
					add(params{family: p.Family})
				case "search-birthdate":
					add(params{date: p.BirthDate})
				case "search-identifier":
					for _, id := range p.Identifiers {
						add(params{ident: id})
					}
				case "search-observation":
					for _, c := range p.Codes {
						add(params{patient: p.ID, code: c})
					}
				case "search-chain":
					// The rare names the scenario draws, and the common ones, whose
					// observations fill a page.
					if len(p.Codes) > 0 {
						add(params{family: p.Family})
					}
				case "search-has":
					for _, c := range p.Codes {
						add(params{code: c})
					}
				case "search-observation-patient", "search-include":
					if len(p.Codes) > 0 {
						add(params{patient: p.ID})
					}
				case "search-text":
					// The rare names, which the narratives of their patients name, and
					// Manyfold, which the narratives of manyPatients do.
					if p.Family != p.FamilyQuery || p.Family == "Manyfold" {
						add(params{family: p.Family})
					}
				}
			}
			if len(values) == 0 {
				t.Fatal("the population offers no value to search")
			}
			most := 0
			for _, p := range values {
				path := w.searchPath(p)
				_, body, err := api.Do(ctx, http.MethodGet, path, path, nil, true)
				if err != nil {
					t.Fatal(err)
				}
				srv, err := BundleSize(body)
				if err != nil {
					t.Fatal(err)
				}
				s, args, err := w.searchArgs(db, p)
				if err != nil {
					t.Fatal(err)
				}
				ceil, err := querySearch(ctx, db, s, args)
				if err != nil {
					t.Fatalf("%s: ceiling: %v", path, err)
				}
				if ceil != srv || srv == 0 {
					t.Errorf("%s: the ceiling finds %d, the server %d (want the same, at least 1)", path, ceil, srv)
				}
				if want, ok := expectedMatches(sc, p, pop, obsOf); ok && srv != want {
					t.Errorf("%s: the server finds %d, the population has %d", path, srv, want)
				}
				if sc == "search-include" {
					checkIncluded(t, db, w, p, body)
				}
				most = max(most, srv)
			}
			// The counts past a full page are compared too, not only short pages.
			if most <= searchCount {
				t.Errorf("%d values searched, at most %d matches: none fills a page of %d", len(values), most, searchCount)
			}
		})
	}
}

// observationsBySubject counts the live Observations of each patient, read from the
// documents rather than from the index tables the searches read.
func observationsBySubject(t *testing.T, db *DB) map[string]int {
	t.Helper()
	rows, err := db.Query(context.Background(), `SELECT content->'subject'->>'reference' FROM resource
WHERE resource_type = 'Observation' AND NOT deleted`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var ref string
		if err := rows.Scan(&ref); err != nil {
			t.Fatal(err)
		}
		out[strings.TrimPrefix(ref, "Patient/")]++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// expectedMatches returns how many resources a search of the scenarios of issue 14
// should find, from the population: the chain, the Observations of the patients of a
// family; _has, the patients with an observation of a code; search-text, the patients
// of a family (their narratives name it); the patient searches, its Observations.
func expectedMatches(sc string, p params, pop []PatientInfo, obsOf map[string]int) (int, bool) {
	n := 0
	switch sc {
	case "search-chain":
		for _, q := range pop {
			if q.Family == p.family {
				n += obsOf[q.ID]
			}
		}
	case "search-has":
		for _, q := range pop {
			if slices.Contains(q.Codes, p.code) {
				n++
			}
		}
	case "search-text":
		for _, q := range pop {
			if q.Family == p.family {
				n++
			}
		}
	case "search-observation-patient", "search-include":
		n = obsOf[p.patient]
	default:
		return 0, false
	}
	return n, true
}

// checkIncluded checks that the server's Bundle of a search-include request holds the
// patient as its one included entry, and that the ceiling's include statement finds
// that one resource too.
func checkIncluded(t *testing.T, db *DB, w *Workload, p params, body []byte) {
	t.Helper()
	var bundle struct {
		Entry []struct {
			Resource struct{ ResourceType, ID string }
			Search   struct{ Mode string }
		}
	}
	if err := json.Unmarshal(body, &bundle); err != nil {
		t.Fatal(err)
	}
	var included []string
	for _, e := range bundle.Entry {
		if e.Search.Mode == "include" {
			included = append(included, e.Resource.ResourceType+"/"+e.Resource.ID)
		}
	}
	if want := []string{"Patient/" + p.patient}; !slices.Equal(included, want) {
		t.Errorf("search-include of %s: the server includes %v, want %v", p.patient, included, want)
	}
	_, n, err := w.ceilingQuery(context.Background(), db, p)
	if err != nil || n != 1 {
		t.Errorf("search-include of %s: the ceiling includes %d resources (%v), want 1", p.patient, n, err)
	}
}

// checkCeilingsRun runs every ceiling that needs the database on two workers, as main
// runs them, and checks that fhirbox's tables are as they were and the scratch tables
// gone afterwards. introspect's setup runs first, as main runs it before the ceiling: its
// ceiling reads the Session the setup's token opened.
func checkCeilingsRun(t *testing.T, api *API, db *DB, der *Deriver, pop []PatientInfo) {
	ctx := context.Background()
	w, err := NewWorkload("introspect", der, pop)
	if err == nil {
		err = w.SetupAuth(ctx, api)
	}
	if err != nil {
		t.Fatalf("introspect's setup: %v", err)
	}
	const fingerprint = `SELECT (SELECT count(*) FROM resource), (SELECT count(*) FROM resource WHERE version_id > 1),
  (SELECT count(*) FROM resource_history), (SELECT count(*) FROM search_string)`
	state := func() string {
		var a, b, c, d int
		if err := db.QueryRow(ctx, fingerprint).Scan(&a, &b, &c, &d); err != nil {
			t.Fatal(err)
		}
		return fmt.Sprint(a, b, c, d)
	}
	before := state()
	for _, sc := range Scenarios {
		if !CeilingNeedsDB(sc) {
			continue
		}
		t.Run(sc, func(t *testing.T) {
			w, err := NewWorkload(sc, der, pop)
			if err != nil {
				t.Fatal(err)
			}
			if strings.HasPrefix(sc, "search-") {
				if n, err := w.ProbeSQL(ctx, db, rand.New(rand.NewPCG(1, 2))); err != nil || n == 0 {
					t.Errorf("probe: %d matches, %v", n, err)
				}
			}
			op, cleanup, err := w.CeilingOp(ctx, db)
			if err != nil {
				t.Fatal(err)
			}
			r := Runner{Conc: 2, Seed: 1}.Run(ctx, 150*time.Millisecond, 4, op)
			cleanup()
			if r.OK == 0 || r.Errors != 0 {
				t.Errorf("%d ok, %d errors %v", r.OK, r.Errors, r.ErrorKinds)
			}
		})
	}
	if after := state(); after != before {
		t.Errorf("the ceilings changed fhirbox's tables: %s before, %s after", before, after)
	}
	for _, table := range []string{ceilingTable, ceilingUpdateTable, ceilingSessionTable} {
		var n int
		if err := db.QueryRow(ctx, `SELECT count(*) FROM `+table).Scan(&n); err == nil {
			t.Errorf("scratch table %s is still there", table)
		}
	}
}

// TestOpenDBRefusesWhatIsNotFhirbox: a missing SQLite file is not created, and a file
// without fhirbox's tables is refused untouched, with a reason rather than a failure of
// the first statement.
func TestOpenDBRefusesWhatIsNotFhirbox(t *testing.T) {
	ctx := context.Background()
	missing := filepath.Join(t.TempDir(), "none.db")
	if _, err := OpenDB(ctx, "sqlite:"+missing, 2); err == nil || !strings.Contains(err.Error(), "no SQLite database") {
		t.Errorf("missing file: %v", err)
	}
	if _, err := os.Stat(missing); err == nil {
		t.Error("OpenDB created the missing file")
	}
	empty := filepath.Join(t.TempDir(), "empty.db")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenDB(ctx, "sqlite:"+empty, 2); err == nil || !strings.Contains(err.Error(), "no resource table") {
		t.Errorf("a file that is not fhirbox's: %v", err)
	}
	if fi, err := os.Stat(empty); err != nil || fi.Size() != 0 {
		t.Errorf("OpenDB wrote to a file that is not fhirbox's: %v", err)
	}
	if _, err := OpenDB(ctx, "sqlite:", 2); err == nil || !strings.Contains(err.Error(), "names no file") {
		t.Errorf("sqlite: without a path: %v, want ParseDatabase's reason", err)
	}
}

// checkHistoryCeiling compares history-system's ceiling with the server's answer: a full
// page and the same total.
func checkHistoryCeiling(t *testing.T, api *API, db *DB) {
	ctx := context.Background()
	_, body, err := api.Do(ctx, http.MethodGet, historyPath, historyPath, nil, true)
	if err != nil {
		t.Fatal(err)
	}
	var b struct {
		Total int   `json:"total"`
		Entry []any `json:"entry"`
	}
	if err := json.Unmarshal(body, &b); err != nil {
		t.Fatal(err)
	}
	page, total, err := historyCeiling(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Entry) != searchCount || page != searchCount+1 || total != b.Total || total < 100 {
		t.Errorf("server: %d entries of %d; ceiling: a page of %d rows, total %d", len(b.Entry), b.Total, page, total)
	}
}

// checkCodeExchange runs token-authorization-code's setup against the real server (a
// sign-in through the login form, then codes through /auth/authorize) and exchanges its
// codes: each once, and an empty pool is an error, not a wait.
func checkCodeExchange(t *testing.T, api *API, der *Deriver, pop []PatientInfo) {
	ctx := context.Background()
	w, err := NewWorkload("token-authorization-code", der, pop)
	if err != nil {
		t.Fatal(err)
	}
	w.Codes = 6
	if err := w.SetupAuth(ctx, api); err != nil {
		t.Fatalf("setup: %v", err)
	}
	if w.Auth.Issued.Load() != 1 || w.Auth.CodesMade <= 0 {
		t.Errorf("setup issued %d tokens in %s", w.Auth.Issued.Load(), w.Auth.CodesMade)
	}
	op := w.HTTPOp(api)
	rng := rand.New(rand.NewPCG(1, 1))
	for i := range 6 {
		if err := op(ctx, rng); err != nil {
			t.Fatalf("exchange %d: %v", i, err)
		}
	}
	if err := op(ctx, rng); err == nil || !strings.Contains(err.Error(), "codes") {
		t.Errorf("an empty pool: %v", err)
	}
	if w.Auth.Issued.Load() != 7 {
		t.Errorf("issued %d, want 7", w.Auth.Issued.Load())
	}
}
