package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fhirbox/fhirbox/pkg/app"
	"github.com/fhirbox/fhirbox/resources"
	"github.com/fhirbox/fhirbox/resources/fhirdate"
)

// Scenarios lists the -scenario values.
var Scenarios = []string{"read", "create", "update", "search-family", "search-family-exact", "search-birthdate", "search-identifier", "search-observation",
	"token-client-credentials", "token-jwt", "token-password", "read-bearer-opaque", "read-bearer-jwt"}

// CeilingNeedsDB reports whether the ceiling of scenario runs on the database; the
// others (signing, bcrypt) run in-process and are measured without -db.
func CeilingNeedsDB(scenario string) bool {
	return scenario != "token-jwt" && scenario != "token-password"
}

// needsPatients reports whether scenario's requests are drawn from loaded patients.
func needsPatients(scenario string) bool {
	return scenario != "create" && !strings.HasPrefix(scenario, "token-")
}

// Op is one request of a scenario; rng is the calling worker's own.
type Op func(ctx context.Context, rng *rand.Rand) error

// Workload is a scenario over a population of loaded patients. The server and the
// ceiling draw their requests from it in the same way.
type Workload struct {
	Scenario string
	Der      *Deriver
	// Patients is the population; Derived those of them the benchmark derived (update
	// rebuilds their documents); WithObs those with observations; Rare those with a
	// family name of the long tail (see familyName), shared by a handful of patients
	// at any population size.
	Patients, Derived, WithObs, Rare []PatientInfo
	// Issuer is the iss of the JWTs the token-jwt ceiling signs: the server's URL.
	Issuer string
	// Auth is the OAuth scenarios' state on the server, from SetupAuth.
	Auth *AuthSetup
}

// NewWorkload checks that the population has what scenario needs.
func NewWorkload(scenario string, der *Deriver, patients []PatientInfo) (*Workload, error) {
	w := &Workload{Scenario: scenario, Der: der, Patients: patients}
	for _, p := range patients {
		if p.N >= 0 {
			w.Derived = append(w.Derived, p)
		}
		if len(p.Codes) > 0 {
			w.WithObs = append(w.WithObs, p)
		}
		if p.Family != p.FamilyQuery {
			w.Rare = append(w.Rare, p)
		}
	}
	need := map[string][]PatientInfo{
		"update":              w.Derived,
		"search-observation":  w.WithObs,
		"search-family-exact": w.Rare,
	}
	if !slices.Contains(Scenarios, scenario) {
		return nil, fmt.Errorf("unknown scenario %q", scenario)
	}
	if len(patients) == 0 && needsPatients(scenario) {
		return nil, fmt.Errorf("scenario %s needs patients: use -load", scenario)
	}
	if p, ok := need[scenario]; ok && len(p) == 0 {
		if scenario == "update" {
			return nil, fmt.Errorf("scenario update needs patients loaded by fhirbench (ids %s<n>): use -load", benchPrefix)
		}
		if scenario == "search-family-exact" {
			return nil, fmt.Errorf("scenario search-family-exact needs patients with derived family names: use -load")
		}
		return nil, fmt.Errorf("scenario search-observation needs observations: use -load with -observations-per-patient")
	}
	return w, nil
}

func pick(rng *rand.Rand, ps []PatientInfo) *PatientInfo { return &ps[rng.IntN(len(ps))] }

// params are the values of one search request.
type params struct {
	family  string
	date    string
	ident   Ident
	patient string
	code    Ident
	readID  string
	updateN int
}

// draw picks the values of one request: a random loaded patient and, for searches,
// one of its values, so that every search has at least one match.
func (w *Workload) draw(rng *rand.Rand) params {
	var p params
	switch w.Scenario {
	case "read", "read-bearer-opaque", "read-bearer-jwt":
		p.readID = pick(rng, w.Patients).ID
	case "update":
		pi := pick(rng, w.Derived)
		p.readID, p.updateN = pi.ID, pi.N
	case "search-family":
		p.family = pick(rng, w.Patients).FamilyQuery
	case "search-family-exact":
		p.family = pick(rng, w.Rare).Family
	case "search-birthdate":
		p.date = pick(rng, w.Patients).BirthDate
	case "search-identifier":
		pi := pick(rng, w.Patients)
		if len(pi.Identifiers) > 0 {
			p.ident = pi.Identifiers[rng.IntN(len(pi.Identifiers))]
		}
	case "search-observation":
		pi := pick(rng, w.WithObs)
		p.patient = pi.ID
		p.code = pi.Codes[rng.IntN(len(pi.Codes))]
	}
	return p
}

// searchCount is the page size of every search, as a client listing matches asks for.
const searchCount = 10

// searchPath returns the request of a search scenario.
func (w *Workload) searchPath(p params) string {
	q := url.Values{}
	typ := "Patient"
	switch w.Scenario {
	case "search-family":
		q.Set("family", p.family)
	case "search-family-exact":
		q.Set("family:exact", p.family)
	case "search-birthdate":
		q.Set("birthdate", p.date)
	case "search-identifier":
		q.Set("identifier", p.ident.System+"|"+p.ident.Value)
	case "search-observation":
		typ = "Observation"
		q.Set("patient", "Patient/"+p.patient)
		q.Set("code", p.code.System+"|"+p.code.Value)
	}
	q.Set("_count", fmt.Sprint(searchCount))
	return "/" + typ + "?" + q.Encode()
}

// HTTPOp returns the scenario's request to the server. next numbers the patients that
// create derives, after the loaded ones.
func (w *Workload) HTTPOp(api *API) Op {
	if IsAuthScenario(w.Scenario) {
		return w.authHTTPOp(api)
	}
	var next atomic.Int64
	next.Store(int64(len(w.Patients)))
	switch w.Scenario {
	case "read":
		return func(ctx context.Context, rng *rand.Rand) error {
			_, _, err := api.Do(ctx, http.MethodGet, "/Patient/"+w.draw(rng).readID, "/Patient/{id}", nil, false)
			return err
		}
	case "create":
		return func(ctx context.Context, rng *rand.Rand) error {
			body, err := w.Der.CreateJSON(int(next.Add(1) - 1))
			if err != nil {
				return err
			}
			_, _, err = api.Do(ctx, http.MethodPost, "/Patient", "/Patient", body, false)
			return err
		}
	case "update":
		return func(ctx context.Context, rng *rand.Rand) error {
			p := w.draw(rng)
			body, err := w.Der.UpdateJSON(p.updateN, rng)
			if err != nil {
				return err
			}
			_, _, err = api.Do(ctx, http.MethodPut, "/Patient/"+p.readID, "/Patient/{id}", body, false)
			return err
		}
	}
	route := "/Patient?search"
	if w.Scenario == "search-observation" {
		route = "/Observation?search"
	}
	return func(ctx context.Context, rng *rand.Rand) error {
		_, _, err := api.Do(ctx, http.MethodGet, w.searchPath(w.draw(rng)), route, nil, false)
		return err
	}
}

// ProbeHTTP sends one search and returns its request and number of matches: a search
// that finds nothing would be fast for the wrong reason.
func (w *Workload) ProbeHTTP(ctx context.Context, api *API, rng *rand.Rand) (string, int, error) {
	path := w.searchPath(w.draw(rng))
	_, body, err := api.Do(ctx, http.MethodGet, path, path, nil, true)
	if err != nil {
		return path, 0, err
	}
	n, err := BundleSize(body)
	return path, n, err
}

// Ceiling SQL: for each scenario, the statement that does the essential database work
// of the request, with none of fhirbox's (HTTP, JSON, auth, versioning, index
// extraction, the ORM), run on the server's own database. Writes go to tables of their
// own, never to fhirbox's. What differs between PostgreSQL and SQLite is written by the
// DB's dialect; the rest is shared.
const (
	ceilingTable       = "fhirbench_ceiling"
	ceilingUpdateTable = "fhirbench_ceiling_update"

	readSQL   = `SELECT content FROM resource WHERE resource_type = 'Patient' AND id = $1`
	createSQL = `INSERT INTO ` + ceilingTable + ` (id, content) VALUES ($1, $2)`
	// updateSQL has a %s for the dialect's current instant.
	updateSQL = `UPDATE ` + ceilingUpdateTable + ` SET version_id = version_id + 1, last_updated = %s, content = $2
WHERE resource_type = 'Patient' AND id = $1`
)

// The searches use the server's own conditions on the index tables, its order and its
// page size (resources/sqlstore/search.go), with the type and parameter names written
// into the SQL where the server binds them. The values are prepared as the server
// prepares them: strings normalised, a date as the range of its day with the redundant
// "low <= end" that gives the index range an upper end.
//
// On PostgreSQL every clause is a correlated EXISTS, which the planner turns into a
// semi-join (a join that returns each resource once), and one statement returns the
// page and counts the matches with a window function.
//
// On SQLite the server (sqlstore.Dialect's MatchIn and RowidPage) starts from one
// clause, as "r.id IN (SELECT s.id …)", checks the others with a correlated EXISTS,
// sorts the rowids of the matches by "+r.last_updated DESC, +r.id" (the unary + keeps
// SQLite from walking the last_updated index past every resource of the type), reads
// the rows of the page, and counts the matches in a second statement only when the
// page is full. The ceiling sends the same two statements. To choose its starting
// clause the server first counts each clause's index rows (Dialect.drivers); the
// ceiling starts from the clause it knows to be the most selective (the family, the
// birth date, the identifier, an observation's patient) without counting: that probe
// is fhirbox's planning, charged to fhirbox like the rest of its work.

// indexMatch is a clause of a ceiling search: the resource has a row of param in the
// index table whose values satisfy cond, which holds the statement's placeholders.
type indexMatch struct {
	table, param, cond string
	// drives marks the clause that the SQLite form starts from.
	drives bool
}

// ceilingSearch is the SQL of a search scenario.
type ceilingSearch struct {
	// pg is the PostgreSQL statement: the page, each row with the number of matches.
	pg string
	// page and count are the SQLite statements: the page, and the number of matches.
	page, count string
}

// newCeilingSearch writes the SQL of a search of typ.
func newCeilingSearch(typ string, clauses ...indexMatch) ceilingSearch {
	var pg, where strings.Builder
	fmt.Fprintf(&pg, "SELECT r.content, count(*) OVER () FROM resource r\nWHERE r.resource_type = '%s' AND r.deleted = false", typ)
	for _, c := range clauses {
		fmt.Fprintf(&pg, "\n  AND EXISTS (SELECT 1 FROM %s s WHERE s.resource_type = r.resource_type AND s.id = r.id AND s.param = '%s' AND %s)",
			c.table, c.param, c.cond)
	}
	// In the order of the parameters' names, as the server writes its clauses, so that
	// the statement is the server's but for its bound names.
	fmt.Fprintf(&where, "r.resource_type = '%s' AND NOT r.deleted", typ)
	for _, c := range slices.SortedStableFunc(slices.Values(clauses), func(a, b indexMatch) int { return strings.Compare(a.param, b.param) }) {
		if c.drives {
			fmt.Fprintf(&where, " AND r.id IN (SELECT s.id FROM %s s WHERE s.resource_type = '%s' AND s.param = '%s' AND (%s))",
				c.table, typ, c.param, c.cond)
		} else {
			fmt.Fprintf(&where, " AND EXISTS (SELECT 1 FROM %s s WHERE s.resource_type = r.resource_type AND s.id = r.id AND s.param = '%s' AND (%s))",
				c.table, c.param, c.cond)
		}
	}
	limit := strconv.Itoa(searchCount)
	fmt.Fprintf(&pg, "\nORDER BY r.last_updated DESC, r.id LIMIT %s", limit)
	return ceilingSearch{
		pg: pg.String(),
		// The first page has no OFFSET, as the server writes it: with one, SQLite
		// checks an EXISTS as a correlated subquery instead of joining it.
		page: "SELECT r.content FROM resource r WHERE r.rowid IN (SELECT r.rowid FROM resource r WHERE " + where.String() +
			" ORDER BY +r.last_updated DESC, +r.id LIMIT " + limit + ") ORDER BY r.last_updated DESC, r.id",
		count: "SELECT count(*) FROM resource r WHERE " + where.String(),
	}
}

// ceilingSearches are the statements of the search scenarios.
var ceilingSearches = map[string]ceilingSearch{
	"search-family": newCeilingSearch("Patient",
		indexMatch{"search_string", "family", `s.value LIKE $1 ESCAPE '\'`, true}),
	"search-family-exact": newCeilingSearch("Patient",
		indexMatch{"search_string", "family", `s.exact = $1`, true}),
	"search-birthdate": newCeilingSearch("Patient",
		indexMatch{"search_date", "birthdate", `s.low >= $1 AND s.high <= $2 AND s.low <= $2`, true}),
	"search-identifier": newCeilingSearch("Patient",
		indexMatch{"search_token", "identifier", `s.system = $1 AND s.code = $2`, true}),
	// A patient has a few observations, a code is shared by many patients'.
	"search-observation": newCeilingSearch("Observation",
		indexMatch{"search_reference", "patient", `s.target_type = 'Patient' AND s.target_id = $1`, true},
		indexMatch{"search_token", "code", `s.system = $2 AND s.code = $3`, false}),
}

// searchArgs returns the ceiling statements and arguments of one search, with the
// values prepared as the server prepares them and bound as db stores them.
func (w *Workload) searchArgs(db *DB, p params) (ceilingSearch, []any, error) {
	s, ok := ceilingSearches[w.Scenario]
	if !ok {
		return s, nil, fmt.Errorf("no search in scenario %s", w.Scenario)
	}
	switch w.Scenario {
	case "search-family":
		return s, []any{likeEscape(resources.NormalizeString(p.family)) + "%"}, nil
	case "search-family-exact":
		return s, []any{p.family}, nil
	case "search-birthdate":
		lo, hi, err := fhirdate.ParseRange(p.date)
		if err != nil {
			return s, nil, err
		}
		return s, []any{db.instant(lo), db.instant(hi)}, nil
	case "search-identifier":
		return s, []any{p.ident.System, p.ident.Value}, nil
	default:
		return s, []any{p.patient, p.code.System, p.code.Value}, nil
	}
}

// likeEscape escapes LIKE's wildcards, as the server does.
func likeEscape(s string) string { return likeRE.ReplaceAllString(s, `\$0`) }

var likeRE = regexp.MustCompile(`[\\%_]`)

// querySearch runs one ceiling search, reading every row of the page as a client
// would, and returns the number of matches. The statements are sent unprepared, as the
// server sends its searches (see DB.QueryUnprepared).
func querySearch(ctx context.Context, db *DB, s ceilingSearch, args []any) (int, error) {
	stmt := s.pg
	if db.matchIn {
		stmt = s.page
	}
	rows, err := db.QueryUnprepared(ctx, stmt, args...)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	n, total := 0, 0
	var content []byte
	dest := []any{&content, &total}
	if db.matchIn {
		dest = dest[:1]
	}
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return 0, err
		}
		n++
	}
	if err := rows.Err(); err != nil {
		return 0, err
	}
	if !db.matchIn {
		return total, nil
	}
	rows.Close()
	// A page that is not full holds the last match: the server counts no further.
	if n < searchCount {
		return n, nil
	}
	err = db.QueryRow(ctx, s.count, args...).Scan(&total)
	return total, err
}

// CeilingOp returns the scenario's ceiling and a cleanup that drops the tables it made.
// Most ceilings are one SQL statement, and writes go to tables of their own, never to
// fhirbox's: create and token-client-credentials insert into a bare (id, content)
// table, update updates a copy of the Patient rows. The ceilings of token-jwt and
// token-password run in-process and take a nil db (see CeilingNeedsDB).
//
// On SQLite those tables are in fhirbox's file, so the ceiling's writes take the one
// write lock of the file that fhirbox's writer takes too, and that the workers take
// from each other: each waits for it (busy_timeout) while another holds it. That is
// what any writer to the file meets, and what the figure should include. fhirbox meets
// it with one writer that commits the writes waiting together; the ceiling with a
// transaction per statement and connection, as it does on PostgreSQL.
func (w *Workload) CeilingOp(ctx context.Context, db *DB) (Op, func(), error) {
	nop := func() {}
	if strings.HasPrefix(w.Scenario, "token-") {
		return w.authCeilingOp(ctx, db)
	}
	switch w.Scenario {
	case "read", "read-bearer-opaque", "read-bearer-jwt":
		return func(ctx context.Context, rng *rand.Rand) error {
			var content []byte
			return db.QueryRow(ctx, readSQL, w.draw(rng).readID).Scan(&content)
		}, nop, nil
	case "create":
		drop, err := scratch(ctx, db, ceilingTable, fmt.Sprintf(db.docTable, ceilingTable))
		if err != nil {
			return nil, nil, err
		}
		var next atomic.Int64
		next.Store(int64(len(w.Patients)))
		return func(ctx context.Context, rng *rand.Rand) error {
			body, err := w.Der.CreateJSON(int(next.Add(1) - 1))
			if err != nil {
				return err
			}
			_, err = db.Exec(ctx, createSQL, randomUUID(rng), db.doc(body))
			return err
		}, drop, nil
	case "update":
		stmts, err := db.likeResource(ctx, ceilingUpdateTable)
		if err != nil {
			return nil, nil, err
		}
		stmts = append(stmts, `INSERT INTO `+ceilingUpdateTable+` SELECT * FROM resource WHERE resource_type = 'Patient'`)
		// SQLite's copy stays without statistics, as fhirbox's tables are: fhirbox
		// never runs ANALYZE on its file.
		if db.Backend == app.Postgres {
			stmts = append(stmts, `ANALYZE `+ceilingUpdateTable)
		}
		drop, err := scratch(ctx, db, ceilingUpdateTable, stmts...)
		if err != nil {
			return nil, nil, err
		}
		update := fmt.Sprintf(updateSQL, db.now)
		return func(ctx context.Context, rng *rand.Rand) error {
			p := w.draw(rng)
			body, err := w.Der.UpdateJSON(p.updateN, rng)
			if err != nil {
				return err
			}
			n, err := db.Exec(ctx, update, p.readID, db.doc(body))
			if err == nil && n != 1 {
				err = fmt.Errorf("ceiling update of %s changed %d rows", p.readID, n)
			}
			return err
		}, drop, nil
	}
	if _, ok := ceilingSearches[w.Scenario]; !ok {
		return nil, nil, fmt.Errorf("scenario %s has no ceiling", w.Scenario)
	}
	return func(ctx context.Context, rng *rand.Rand) error {
		s, args, err := w.searchArgs(db, w.draw(rng))
		if err != nil {
			return err
		}
		_, err = querySearch(ctx, db, s, args)
		return err
	}, nop, nil
}

// ProbeSQL runs one ceiling search and returns its number of matches.
func (w *Workload) ProbeSQL(ctx context.Context, db *DB, rng *rand.Rand) (int, error) {
	s, args, err := w.searchArgs(db, w.draw(rng))
	if err != nil {
		return 0, err
	}
	return querySearch(ctx, db, s, args)
}

// scratch creates a table of the benchmark (dropping a leftover of an interrupted run
// first) and returns what drops it.
func scratch(ctx context.Context, db *DB, table string, stmts ...string) (func(), error) {
	drop := func() {
		// The run's context may be cancelled by now; the drop must still happen.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if _, err := db.Exec(ctx, `DROP TABLE IF EXISTS `+table); err != nil {
			fmt.Printf("warning      dropping %s: %v\n", table, err)
		}
	}
	drop()
	for _, s := range stmts {
		if _, err := db.Exec(ctx, s); err != nil {
			drop()
			return nil, fmt.Errorf("preparing ceiling table %s: %w", table, err)
		}
	}
	return drop, nil
}

// PopulationFromDB returns the live patients of the database, for -load 0, with the
// codes of their observations. Only the fields requests need are read, not whole
// documents; the JSON operators are those of both PostgreSQL (jsonb) and SQLite (on
// JSON text).
func PopulationFromDB(ctx context.Context, db *DB) ([]PatientInfo, error) {
	rows, err := db.Query(ctx, `SELECT id, coalesce(content->'name'->0->>'family', ''),
  coalesce(content->>'birthDate', ''), coalesce(content->'identifier', '[]')
FROM resource WHERE resource_type = 'Patient' AND NOT deleted ORDER BY id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []PatientInfo
	byID := map[string]int{}
	for rows.Next() {
		var p PatientInfo
		var ids []byte
		if err := rows.Scan(&p.ID, &p.Family, &p.BirthDate, &ids); err != nil {
			return nil, err
		}
		p.N = ParsePatientID(p.ID)
		p.FamilyQuery = familyQuery(p.Family)
		var list []struct{ System, Value string }
		if json.Unmarshal(ids, &list) == nil {
			for _, x := range list {
				if x.Value != "" {
					p.Identifiers = append(p.Identifiers, Ident{x.System, x.Value})
				}
			}
		}
		byID[p.ID] = len(out)
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows.Close()
	obs, err := db.Query(ctx, `SELECT DISTINCT substr(content->'subject'->>'reference', 9),
  coalesce(content->'code'->'coding'->0->>'system', ''), content->'code'->'coding'->0->>'code'
FROM resource WHERE resource_type = 'Observation' AND NOT deleted
  AND content->'subject'->>'reference' LIKE 'Patient/%' AND content->'code'->'coding'->0->>'code' IS NOT NULL`)
	if err != nil {
		return nil, err
	}
	defer obs.Close()
	for obs.Next() {
		var pid, sys, code string
		if err := obs.Scan(&pid, &sys, &code); err != nil {
			return nil, err
		}
		if i, ok := byID[pid]; ok {
			out[i].Codes = append(out[i].Codes, Ident{sys, code})
		}
	}
	if err := obs.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// familyQuery is the search value of a family name: without the copy number a
// derived variant ends with (see familyName).
func familyQuery(family string) string { return copyNoRE.ReplaceAllString(family, "") }

var copyNoRE = regexp.MustCompile(`-[0-9]+$`)

// Runner runs closed-loop workers: each sends its next request as soon as the previous
// one is answered, so the load adapts to the server instead of queueing behind it.
type Runner struct {
	Conc int
	Seed uint64
}

// Result is a measured phase, or several merged, and its errors grouped by message.
type Result struct {
	Summary
	ErrorKinds map[string]int
	lats       []time.Duration // of the successful requests, sorted
}

// Merge returns r and o as one phase: their requests, errors and time added up.
func (r Result) Merge(o Result) Result {
	lats := append(slices.Clip(r.lats), o.lats...)
	kinds := maps.Clone(r.ErrorKinds)
	if kinds == nil {
		kinds = map[string]int{}
	}
	for k, n := range o.ErrorKinds {
		kinds[k] += n
	}
	sum, all := summarize([][]time.Duration{lats}, r.Errors+o.Errors, r.Elapsed+o.Elapsed)
	return Result{Summary: sum, ErrorKinds: kinds, lats: all}
}

// Run runs op on r.Conc workers for d. Only successful requests are timed into the
// latencies; failed ones are counted apart. stream keeps the random choices of the
// phases apart.
func (r Runner) Run(ctx context.Context, d time.Duration, stream uint64, op Op) Result {
	lats := make([][]time.Duration, r.Conc)
	var errs atomic.Int64
	var mu sync.Mutex
	kinds := map[string]int{}
	var wg sync.WaitGroup
	start := time.Now()
	end := start.Add(d)
	for w := range r.Conc {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(r.Seed, stream<<32|uint64(w)))
			// Room for a few thousand requests a second up front, so appends rarely
			// copy during the measurement.
			l := make([]time.Duration, 0, 4096)
			for ctx.Err() == nil {
				t0 := time.Now()
				if !t0.Before(end) {
					break
				}
				err := op(ctx, rng)
				dt := time.Since(t0)
				if err != nil {
					if ctx.Err() != nil && errors.Is(err, context.Canceled) {
						break
					}
					errs.Add(1)
					mu.Lock()
					if k := err.Error(); kinds[k] > 0 || len(kinds) < 20 {
						kinds[k]++
					} else {
						kinds["(other errors)"]++
					}
					mu.Unlock()
					continue
				}
				l = append(l, dt)
			}
			lats[w] = l
		})
	}
	wg.Wait()
	sum, all := summarize(lats, int(errs.Load()), time.Since(start))
	return Result{Summary: sum, ErrorKinds: kinds, lats: all}
}
