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
	"search-chain", "search-has", "search-observation-patient", "search-include", "search-text",
	"token-client-credentials", "token-jwt", "token-password", "read-bearer-opaque", "read-bearer-jwt", "introspect", "token-authorization-code",
	"history-system"}

// CeilingNeedsDB reports whether the ceiling of scenario runs on the database; the
// others (signing, bcrypt) run in-process and are measured without -db.
func CeilingNeedsDB(scenario string) bool {
	return scenario != "token-jwt" && scenario != "token-password"
}

// needsPatients reports whether scenario's requests are drawn from loaded patients.
func needsPatients(scenario string) bool {
	return scenario != "create" && !strings.HasPrefix(scenario, "token-") && scenario != "introspect"
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
	// at any population size; RareWithObs those of Rare with observations.
	Patients, Derived, WithObs, Rare, RareWithObs []PatientInfo
	// HasCodes are the observation codes search-has draws from (see hasCodes).
	HasCodes []Ident
	// Issuer is the iss of the JWTs the token-jwt ceiling signs: the server's URL.
	Issuer string
	// Codes is how many authorization codes token-authorization-code makes beforehand.
	Codes int
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
			if len(p.Codes) > 0 {
				w.RareWithObs = append(w.RareWithObs, p)
			}
		}
	}
	w.HasCodes = hasCodes(patients)
	need := map[string][]PatientInfo{
		"update":                     w.Derived,
		"search-observation":         w.WithObs,
		"search-family-exact":        w.Rare,
		"search-chain":               w.RareWithObs,
		"search-has":                 w.WithObs,
		"search-observation-patient": w.WithObs,
		"search-include":             w.WithObs,
		"search-text":                w.Rare,
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
		if scenario == "search-family-exact" || scenario == "search-text" {
			return nil, fmt.Errorf("scenario %s needs patients with derived family names: use -load", scenario)
		}
		if scenario == "search-chain" {
			return nil, fmt.Errorf("scenario search-chain needs patients with derived family names and observations: use -load with -observations-per-patient")
		}
		return nil, fmt.Errorf("scenario %s needs observations: use -load with -observations-per-patient", scenario)
	}
	return w, nil
}

func pick(rng *rand.Rand, ps []PatientInfo) *PatientInfo { return &ps[rng.IntN(len(ps))] }

// The codes of search-has are those that between hasFewest and hasMost patients have an
// observation of. Every code of the Synthea sample is shared by more patients as the
// population grows (the observations are copies), so no code is rare at every size:
// with 3 observations per patient the rarest has 1 patient at 1,000 patients and 35 at
// 100,000. A band of counts that both sizes have keeps the work of a request the same
// at both (a page of patients and the count of a few dozen), as a long-tail value does
// for the other searches, while each request still fills its page and is counted: "the
// patients with an observation of a code that few have", which a real population has at
// any size. With 3 observations per patient about 25 codes are in the band at 1,000
// patients and at 100,000.
const (
	hasFewest = 2 * searchCount
	hasMost   = 10 * searchCount
)

// hasCodes returns the codes search-has draws from: those within the band, or the
// codes nearest to it when none is (a small population).
func hasCodes(patients []PatientInfo) []Ident {
	count := map[Ident]int{}
	for _, p := range patients {
		for _, c := range p.Codes {
			count[c]++
		}
	}
	dist := func(n int) int { return max(hasFewest-n, n-hasMost, 0) }
	var out []Ident
	best := -1
	for c, n := range count {
		switch d := dist(n); {
		case best < 0 || d < best:
			best, out = d, []Ident{c}
		case d == best:
			out = append(out, c)
		}
	}
	// Sorted: map order would make the draws differ between runs of the same seed.
	slices.SortFunc(out, func(a, b Ident) int { return strings.Compare(a.System+"|"+a.Value, b.System+"|"+b.Value) })
	return out
}

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
	case "search-chain":
		p.family = pick(rng, w.RareWithObs).Family
	case "search-has":
		p.code = w.HasCodes[rng.IntN(len(w.HasCodes))]
	case "search-observation-patient", "search-include":
		p.patient = pick(rng, w.WithObs).ID
	case "search-text":
		p.family = pick(rng, w.Rare).Family
	}
	return p
}

// searchCount is the page size of every search, as a client listing matches asks for.
const searchCount = 10

// searchType returns the resource type a search scenario searches.
func searchType(scenario string) string {
	switch scenario {
	case "search-observation", "search-chain", "search-observation-patient", "search-include":
		return "Observation"
	}
	return "Patient"
}

// searchPath returns the request of a search scenario.
//
// search-chain and search-text look for a long-tail family name ("Smithson-12", see
// familyName). The chain compares it with :exact, as search-family-exact does: as a
// prefix it would also find "Smithson-120" to "Smithson-129" and, at 100,000 patients,
// the tenfold more patients of those names. search-text sends the name as it is: the
// narrative of a patient with a derived name names it (Deriver.PatientDoc), and _text
// cuts it into the words "smithson" and "12", which only the patients of that name
// have both of.
func (w *Workload) searchPath(p params) string {
	q := url.Values{}
	typ := searchType(w.Scenario)
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
		q.Set("patient", "Patient/"+p.patient)
		q.Set("code", p.code.System+"|"+p.code.Value)
	case "search-chain":
		q.Set("subject:Patient.family:exact", p.family)
	case "search-has":
		q.Set("_has:Observation:subject:code", p.code.System+"|"+p.code.Value)
	case "search-observation-patient":
		q.Set("patient", "Patient/"+p.patient)
	case "search-include":
		q.Set("patient", "Patient/"+p.patient)
		q.Set("_include", "Observation:subject")
	case "search-text":
		q.Set("_text", p.family)
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
	case "history-system":
		return historyHTTPOp(api)
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
	route := "/" + searchType(w.Scenario) + "?search"
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

// form returns the clause as each backend's form writes it, in a search of typ.
func (c indexMatch) form(typ string) ceilingCond {
	sc := ceilingCond{
		param: c.param,
		pg: fmt.Sprintf("EXISTS (SELECT 1 FROM %s s WHERE s.resource_type = r.resource_type AND s.id = r.id AND s.param = '%s' AND %s)",
			c.table, c.param, c.cond),
		lite: fmt.Sprintf("EXISTS (SELECT 1 FROM %s s WHERE s.resource_type = r.resource_type AND s.id = r.id AND s.param = '%s' AND (%s))",
			c.table, c.param, c.cond),
	}
	if c.drives {
		sc.lite = fmt.Sprintf("r.id IN (SELECT s.id FROM %s s WHERE s.resource_type = '%s' AND s.param = '%s' AND (%s))",
			c.table, typ, c.param, c.cond)
	}
	return sc
}

// ceilingCond is a condition on the searched resources r, as written for each
// backend: pg as a correlated test; lite as the SQLite form writes it, "r.id IN (…)"
// for the clause it starts from.
type ceilingCond struct {
	// param orders the conditions as the server orders its clauses.
	param, pg, lite string
}

// ceilingSearch is the SQL of a search scenario.
type ceilingSearch struct {
	// pg is the PostgreSQL statement: the page, each row with the number of matches.
	pg string
	// page and count are the SQLite statements: the page, and the number of matches.
	page, count string
	// ids marks statements whose rows start with the id of the match, which the
	// include ceiling follows the references of.
	ids bool
}

// newCeilingSearch writes the SQL of a search of typ on the index tables.
func newCeilingSearch(typ string, clauses ...indexMatch) ceilingSearch {
	conds := make([]ceilingCond, len(clauses))
	for i, c := range clauses {
		conds[i] = c.form(typ)
	}
	return newCeilingSearchOf(typ, false, conds...)
}

// newCeilingSearchOf writes the SQL of a search of typ with the conditions conds; with
// ids, each row starts with the id of the match.
func newCeilingSearchOf(typ string, ids bool, conds ...ceilingCond) ceilingSearch {
	cols := "r.content"
	if ids {
		cols = "r.id, r.content"
	}
	var pg, where strings.Builder
	fmt.Fprintf(&pg, "SELECT %s, count(*) OVER () FROM resource r\nWHERE r.resource_type = '%s' AND r.deleted = false", cols, typ)
	for _, c := range conds {
		fmt.Fprintf(&pg, "\n  AND %s", c.pg)
	}
	// In the order of the parameters' names, as the server writes its clauses, so that
	// the statement is the server's but for its bound names.
	fmt.Fprintf(&where, "r.resource_type = '%s' AND NOT r.deleted", typ)
	for _, c := range slices.SortedStableFunc(slices.Values(conds), func(a, b ceilingCond) int { return strings.Compare(a.param, b.param) }) {
		fmt.Fprintf(&where, " AND %s", c.lite)
	}
	limit := strconv.Itoa(searchCount)
	fmt.Fprintf(&pg, "\nORDER BY r.last_updated DESC, r.id LIMIT %s", limit)
	return ceilingSearch{
		pg: pg.String(),
		// The first page has no OFFSET, as the server writes it: with one, SQLite
		// checks an EXISTS as a correlated subquery instead of joining it.
		page: "SELECT " + cols + " FROM resource r WHERE r.rowid IN (SELECT r.rowid FROM resource r WHERE " + where.String() +
			" ORDER BY +r.last_updated DESC, +r.id LIMIT " + limit + ") ORDER BY r.last_updated DESC, r.id",
		count: "SELECT count(*) FROM resource r WHERE " + where.String(),
		ids:   ids,
	}
}

// ceilingSearches are the statements of the search scenarios.
var ceilingSearches = map[string]ceilingSearch{
	"search-family": newCeilingSearch("Patient",
		indexMatch{"search_string", "family", `s.value LIKE $1 ESCAPE '\'`, true}),
	"search-family-exact": newCeilingSearch("Patient",
		indexMatch{"search_string", "family", `s.value = $2 AND s.exact = $1`, true}),
	"search-birthdate": newCeilingSearch("Patient",
		indexMatch{"search_date", "birthdate", `s.low >= $1 AND s.high <= $2 AND s.low <= $2`, true}),
	"search-identifier": newCeilingSearch("Patient",
		indexMatch{"search_token", "identifier", `s.system = $1 AND s.code = $2`, true}),
	// A patient has a few observations, a code is shared by many patients'.
	"search-observation": newCeilingSearch("Observation",
		indexMatch{"search_reference", "patient", `s.target_type = 'Patient' AND s.target_id = $1`, true},
		indexMatch{"search_token", "code", `s.system = $2 AND s.code = $3`, false}),
	"search-observation-patient": newCeilingSearch("Observation", observationPatient),
	// The page of search-observation-patient with the ids of its matches, whose
	// subjects includeSQL then reads.
	"search-include": newCeilingSearchOf("Observation", true, observationPatient.form("Observation")),
	"search-chain":   newCeilingSearchOf("Observation", false, chainCond),
	"search-has":     newCeilingSearchOf("Patient", false, hasCond),
	// $1 is the words as a tsquery on PostgreSQL, an FTS5 query on SQLite (see
	// dialect.textQuery).
	"search-text": newCeilingSearchOf("Patient", false, ceilingCond{param: "_text",
		pg: `EXISTS (SELECT 1 FROM search_text x WHERE x.resource_type = r.resource_type AND x.id = r.id AND x.narrative @@ $1::tsquery)`,
		// From the matching rows of the FTS5 table to their keys (sqlstore's fullText).
		lite: `r.id IN (SELECT k.id FROM search_text CROSS JOIN search_text_key k ON k.docid = search_text.rowid WHERE k.resource_type = 'Patient' AND search_text MATCH $1)`,
	}),
}

// observationPatient is the clause of Observation?patient=<id>.
var observationPatient = indexMatch{"search_reference", "patient", `s.target_type = 'Patient' AND s.target_id = $1`, true}

// The chain and _has clauses are written as the server writes them
// (resources/sqlstore/chain.go): a link is a subquery over search_reference, the last
// parameter's index rows the inner set. On SQLite each is the clause the search starts
// from, as the server's probe finds it to be: the only one.
var (
	// chainCond is subject:Patient.family:exact=$1: Observations whose subject is a
	// Patient of that family.
	chainCond = ceilingCond{param: "subject",
		pg: `EXISTS (SELECT 1 FROM search_reference c1 WHERE c1.resource_type = r.resource_type AND c1.id = r.id AND c1.param = 'subject'
    AND (c1.target_type = 'Patient' AND c1.target_id IN (SELECT s.id FROM search_string s WHERE s.resource_type = 'Patient' AND s.param = 'family' AND (s.value = $2 AND s.exact = $1))))`,
		lite: `r.id IN (SELECT c1.id FROM search_reference c1 WHERE c1.resource_type = 'Observation' AND c1.param = 'subject'` +
			` AND (c1.target_type = 'Patient' AND c1.target_id IN (SELECT s.id FROM search_string s WHERE s.resource_type = 'Patient' AND s.param = 'family' AND (s.value = $2 AND s.exact = $1))))`,
	}
	// hasCond is _has:Observation:subject:code=$1|$2: Patients that an Observation of
	// that code has as its subject.
	hasCond = ceilingCond{param: "_has",
		pg: `EXISTS (SELECT 1 FROM search_reference c1 WHERE c1.resource_type = 'Observation' AND c1.param = 'subject' AND c1.target_type = 'Patient' AND c1.target_id COLLATE "default" = r.id
    AND c1.id IN (SELECT s.id FROM search_token s WHERE s.resource_type = 'Observation' AND s.param = 'code' AND (s.system = $1 AND s.code = $2)))`,
		lite: `r.id IN (SELECT c1.target_id FROM search_reference c1 WHERE c1.resource_type = 'Observation' AND c1.param = 'subject' AND c1.target_type = 'Patient'` +
			` AND c1.id IN (SELECT s.id FROM search_token s WHERE s.resource_type = 'Observation' AND s.param = 'code' AND (s.system = $1 AND s.code = $2)))`,
	}
)

// includeSQL returns the statement with which the server follows _include=
// Observation:subject from the Observations ids (sqlstore's Include): the distinct
// targets of their subject rows, joined to the resource table, at most
// includeLimit(len(ids)) rows. The ids are bound one by one on PostgreSQL, as one JSON
// array on SQLite when there are several (sqlstore.Dialect.ValuesOf).
func (db *DB) includeSQL(ids []string) (string, []any) {
	args := make([]any, 0, len(ids)+1)
	var set string
	if db.matchIn && len(ids) > 1 {
		js, _ := json.Marshal(ids) // strings always encode
		args = append(args, string(js))
		set = "SELECT value FROM json_each($1)"
	} else {
		ph := make([]string, len(ids))
		for i, id := range ids {
			args = append(args, id)
			ph[i] = "$" + strconv.Itoa(i+1)
		}
		set = strings.Join(ph, ", ")
	}
	args = append(args, includeLimit(len(ids)))
	// SQLite's unary + keeps it from reading the targets in index order (sqlstore's
	// unordered); PostgreSQL compares search_reference's keys under the resource
	// table's collation, so that its index serves the join.
	t, i := "s.target_type", "s.target_id"
	if db.matchIn {
		t, i = "+"+t, "+"+i
	}
	return fmt.Sprintf(`SELECT r.resource_type, r.id, r.version_id, r.last_updated, r.content FROM (SELECT DISTINCT %s AS t, %s AS i FROM search_reference s
WHERE s.resource_type = 'Observation' AND s.id IN (%s) AND (s.param IN ('subject'))) k
JOIN resource r ON r.resource_type = k.t%s AND r.id = k.i%s WHERE NOT r.deleted LIMIT $%d`,
		t, i, set, db.keyCollate, db.keyCollate, len(args)), args
}

// includeLimit is the LIMIT of the server's include statement for a page of n matches:
// its limit of included resources (resources.Limits.Includes, 1,000 by default), one
// more to see whether they go past it, and the matches, which may come back too.
func includeLimit(n int) int { return 1000 + 1 + n }

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
		return s, []any{p.family, resources.NormalizeString(p.family)}, nil
	case "search-birthdate":
		lo, hi, err := fhirdate.ParseRange(p.date)
		if err != nil {
			return s, nil, err
		}
		return s, []any{db.instant(lo), db.instant(hi)}, nil
	case "search-identifier":
		return s, []any{p.ident.System, p.ident.Value}, nil
	case "search-observation":
		return s, []any{p.patient, p.code.System, p.code.Value}, nil
	case "search-chain":
		return s, []any{p.family, resources.NormalizeString(p.family)}, nil
	case "search-has":
		return s, []any{p.code.System, p.code.Value}, nil
	case "search-text":
		return s, []any{db.textQuery(resources.Words(p.family))}, nil
	default: // search-observation-patient, search-include
		return s, []any{p.patient}, nil
	}
}

// likeEscape escapes LIKE's wildcards, as the server does.
func likeEscape(s string) string { return likeRE.ReplaceAllString(s, `\$0`) }

var likeRE = regexp.MustCompile(`[\\%_]`)

// querySearch runs one ceiling search, reading every row of the page as a client
// would, and returns the number of matches. The statements are sent unprepared, as the
// server sends its searches (see DB.QueryUnprepared).
func querySearch(ctx context.Context, db *DB, s ceilingSearch, args []any) (int, error) {
	total, _, err := queryPage(ctx, db, s, args)
	return total, err
}

// queryPage is querySearch that also returns the ids of the page's matches when the
// statements select them (ceilingSearch.ids).
func queryPage(ctx context.Context, db *DB, s ceilingSearch, args []any) (int, []string, error) {
	stmt := s.pg
	if db.matchIn {
		stmt = s.page
	}
	rows, err := db.QueryUnprepared(ctx, stmt, args...)
	if err != nil {
		return 0, nil, err
	}
	defer rows.Close()
	n, total := 0, 0
	var id string
	var content []byte
	var ids []string
	dest := []any{&content}
	if s.ids {
		dest = []any{&id, &content}
	}
	if !db.matchIn {
		dest = append(dest, &total)
	}
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return 0, nil, err
		}
		if s.ids {
			ids = append(ids, id)
		}
		n++
	}
	if err := rows.Err(); err != nil {
		return 0, nil, err
	}
	if !db.matchIn {
		return total, ids, nil
	}
	rows.Close()
	// A page that is not full holds the last match: the server counts no further.
	if n < searchCount {
		return n, ids, nil
	}
	err = db.QueryRow(ctx, s.count, args...).Scan(&total)
	return total, ids, err
}

// queryInclude runs the include statement for the matches ids, reading every row, and
// returns the number of resources it found; none without ids, as the server sends no
// statement then.
func queryInclude(ctx context.Context, db *DB, ids []string) (int, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	stmt, args := db.includeSQL(ids)
	rows, err := db.QueryUnprepared(ctx, stmt, args...)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	n := 0
	var typ, id string
	var version int64
	var updated any
	var content []byte
	for rows.Next() {
		if err := rows.Scan(&typ, &id, &version, &updated, &content); err != nil {
			return 0, err
		}
		n++
	}
	return n, rows.Err()
}

// ceilingQuery runs the ceiling of one search request: the search and, for
// search-include, the include statement on its page. It returns the number of matches
// and of included resources.
func (w *Workload) ceilingQuery(ctx context.Context, db *DB, p params) (matches, included int, err error) {
	s, args, err := w.searchArgs(db, p)
	if err != nil {
		return 0, 0, err
	}
	matches, ids, err := queryPage(ctx, db, s, args)
	if err != nil || w.Scenario != "search-include" {
		return matches, 0, err
	}
	included, err = queryInclude(ctx, db, ids)
	return matches, included, err
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
	if strings.HasPrefix(w.Scenario, "token-") || w.Scenario == "introspect" {
		return w.authCeilingOp(ctx, db)
	}
	switch w.Scenario {
	case "history-system":
		return func(ctx context.Context, _ *rand.Rand) error {
			_, _, err := historyCeiling(ctx, db)
			return err
		}, nop, nil
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
		_, _, err := w.ceilingQuery(ctx, db, w.draw(rng))
		return err
	}, nop, nil
}

// ProbeSQL runs one ceiling search and returns its number of matches.
func (w *Workload) ProbeSQL(ctx context.Context, db *DB, rng *rand.Rand) (int, error) {
	n, _, err := w.ceilingQuery(ctx, db, w.draw(rng))
	return n, err
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
