package server_test

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/fhirbox/fhirbox/pkg/app"
	"github.com/fhirbox/fhirbox/pkg/server"
	"github.com/fhirbox/fhirbox/resources"
)

const mmnURL = "http://hl7.org/fhir/StructureDefinition/patient-mothersMaidenName"

// mmnParam is the SearchParameter of the tests: Patient's mother's maiden name, from
// the extension R4 defines for it.
const mmnParam = `{"resourceType":"SearchParameter","url":"http://example.org/sp/mmn","name":"MothersMaidenName",
"status":"active","description":"The mother's maiden name","code":"mothers-maiden-name","base":["Patient"],
"type":"string","expression":"Patient.extension('` + mmnURL + `').value"}`

func patientWithMMN(id, name string) string {
	return fmt.Sprintf(`{"resourceType":"Patient","id":%q,"name":[{"family":"Doe-%s"}],"extension":[{"url":%q,"valueString":%q}]}`, id, id, mmnURL, name)
}

// sortedMatchIDs lists the ids of the match entries of a searchset, sorted.
func sortedMatchIDs(r *resp) []string {
	ids := matchIDs(r)
	sort.Strings(ids)
	return ids
}

// outcomeWarnings lists the diagnostics of the outcome entries of a searchset.
func outcomeWarnings(r *resp) []string {
	var out []string
	entries, _ := at(r.doc, "entry").([]any)
	for _, en := range entries {
		if at(en, "search", "mode") == "outcome" {
			issues, _ := at(en, "resource", "issue").([]any)
			for _, is := range issues {
				out = append(out, at(is, "diagnostics").(string))
			}
		}
	}
	return out
}

// waitActive waits until SearchParameter id reads as status active.
func (e *env) waitActive(id string) {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		r := e.must(200, get("/fhir/SearchParameter/"+id))
		// Active in the store and in this server's registry, which learns of the
		// status after the write commits: under load, a search could come in between.
		if at(r.doc, "status") == "active" && e.registryActive(id) {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("SearchParameter/%s still %v after 20s; status: %s", id, at(r.doc, "status"), e.must(200, get("/$reindex-status")).raw)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// registryActive reports whether /$reindex-status shows SearchParameter/id active in
// the server's registry.
func (e *env) registryActive(id string) bool {
	st := e.must(200, get("/$reindex-status"))
	sps, _ := st.doc["searchParameters"].([]any)
	for _, sp := range sps {
		m, _ := sp.(map[string]any)
		if m["searchParameter"] == "SearchParameter/"+id {
			return m["status"] == "active"
		}
	}
	return false
}

// A SearchParameter written to the server becomes searchable: the Patients written
// before it are indexed in the background (status draft, then active) and found with
// those written after; the status shows the job; an edit that keeps the definition
// needs no reindex; deleting it removes the parameter and its index rows.
func TestSearchParameterIndexesExisting(t *testing.T) {
	forEachBackend(t, testSearchParameterIndexesExisting)
}

func testSearchParameterIndexesExisting(t *testing.T) {
	e := newEnv(t)
	for i := range 30 {
		name := []string{"Smith", "Jones", "Smithers"}[i%3]
		e.must(201, put(fmt.Sprintf("/fhir/Patient/old%02d", i), patientWithMMN(fmt.Sprintf("old%02d", i), name)))
	}
	r := e.must(201, put("/fhir/SearchParameter/mmn", mmnParam))
	if at(r.doc, "status") != "draft" {
		t.Errorf("a new SearchParameter is stored as %v, want draft until indexed", at(r.doc, "status"))
	}
	e.waitActive("mmn")
	e.must(201, put("/fhir/Patient/new1", patientWithMMN("new1", "Smith")))
	e.must(201, put("/fhir/Patient/new2", patientWithMMN("new2", "Brown")))

	r = e.must(200, get("/fhir/Patient?mothers-maiden-name=smith&_count=100", "Prefer", "handling=strict"))
	want := []string{"new1"}
	for i := 0; i < 30; i += 3 {
		want = append(want, fmt.Sprintf("old%02d", i), fmt.Sprintf("old%02d", i+2))
	}
	sort.Strings(want)
	if got := sortedMatchIDs(r); !slices.Equal(got, want) {
		t.Errorf("mothers-maiden-name=smith: %v, want %v", got, want)
	}
	if w := outcomeWarnings(r); len(w) > 0 {
		t.Errorf("warnings once indexed: %v", w)
	}
	r = e.must(200, get("/fhir/Patient?mothers-maiden-name:exact=Jones&_count=100"))
	if got := len(sortedMatchIDs(r)); got != 10 {
		t.Errorf(":exact=Jones: %d matches, want 10", got)
	}
	r = e.must(200, get("/fhir/Patient?_sort=-mothers-maiden-name&_count=1"))
	if got := sortedMatchIDs(r); len(got) != 1 || !strings.HasPrefix(got[0], "old") {
		t.Errorf("_sort=-mothers-maiden-name: %v", got)
	}

	if md := e.must(200, get("/fhir/metadata")); !strings.Contains(string(md.raw), `"name":"mothers-maiden-name"`) {
		t.Error("the CapabilityStatement does not list the parameter")
	}
	st := e.must(200, get("/$reindex-status"))
	if at(st.doc, "jobs", 0, "state") != "done" || at(st.doc, "jobs", 0, "progress", 0, "done") != 30.0 ||
		at(st.doc, "searchParameters", 0, "status") != "active" {
		t.Errorf("status after the job: %s", st.raw)
	}

	// A new description keeps the definition: no reindex, still active.
	e.must(200, put("/fhir/SearchParameter/mmn", strings.Replace(mmnParam, "The mother's maiden name", "Maiden name of the mother", 1)))
	if r := e.must(200, get("/fhir/SearchParameter/mmn")); at(r.doc, "status") != "active" {
		t.Errorf("after a description change: status %v", at(r.doc, "status"))
	}
	if n := len(at(e.must(200, get("/$reindex-status")).doc, "jobs").([]any)); n != 1 {
		t.Errorf("a description change started a job: %d jobs", n)
	}

	// Deleted: the parameter is gone (strict: 400), and so are its index rows.
	e.must(200, del("/fhir/SearchParameter/mmn"))
	r = e.must(400, get("/fhir/Patient?mothers-maiden-name=smith", "Prefer", "handling=strict"))
	if !strings.Contains(outcomeText(t, r), "mothers-maiden-name") {
		t.Errorf("after deletion: %s", r.raw)
	}
	deadline := time.Now().Add(10 * time.Second)
	for e.indexRows("mothers-maiden-name") > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("index rows of a deleted SearchParameter still there after 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// indexRows counts the string index rows of param.
func (e *env) indexRows(param string) int {
	e.t.Helper()
	var n int
	if err := e.store.SQL().QueryRow(`SELECT count(*) FROM search_string WHERE param = $1`, param).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

// Invalid SearchParameters are refused with a 422 naming what is wrong, and nothing is
// stored.
func TestSearchParameterInvalid(t *testing.T) { forEachBackend(t, testSearchParameterInvalid) }

func testSearchParameterInvalid(t *testing.T) {
	e := newEnv(t)
	e.must(201, put("/fhir/SearchParameter/mmn", mmnParam))
	sp := func(fields string) string {
		return `{"resourceType":"SearchParameter","status":"active","name":"x","url":"http://example.org/x","description":"d",` + fields + `}`
	}
	for _, tc := range []struct{ name, body, want string }{
		{"no code", sp(`"base":["Patient"],"type":"string","expression":"Patient.gender"`), "code is required"}, // R4 validation
		{"control parameter", sp(`"code":"_mine","base":["Patient"],"type":"string","expression":"Patient.gender"`), "not a parameter name"},
		{"chain syntax", sp(`"code":"a.b","base":["Patient"],"type":"string","expression":"Patient.gender"`), "not a parameter name"},
		{"built-in clash", sp(`"code":"name","base":["Patient"],"type":"string","expression":"Patient.gender"`), "built-in search parameter \"name\""},
		{"clash with another", sp(`"code":"mothers-maiden-name","base":["Patient"],"type":"token","expression":"Patient.gender"`), "SearchParameter/mmn"},
		{"no base", sp(`"code":"x","type":"string","expression":"Patient.gender"`), "base is required"},                                                                                            // R4 validation
		{"unknown base", sp(`"code":"x","base":["Patent"],"type":"string","expression":"Patent.gender"`), "\"Patent\" is not a code of the value set http://hl7.org/fhir/ValueSet/resource-types"}, // R4 validation
		{"Resource base", sp(`"code":"x","base":["Resource"],"type":"string","expression":"Resource.id"`), "Resource is not supported"},
		{"own type", sp(`"code":"x","base":["Client"],"type":"string","expression":"Client.secret"`), "\"Client\" is not a code of the value set http://hl7.org/fhir/ValueSet/resource-types"}, // R4 validation
		{"composite", sp(`"code":"x","base":["Observation"],"type":"composite","expression":"Observation.component"`), "composite parameters cannot be defined"},
		{"special", sp(`"code":"x","base":["Location"],"type":"special","expression":"Location.position"`), "special parameters cannot be defined"},
		{"bad type", sp(`"code":"x","base":["Patient"],"type":"text","expression":"Patient.gender"`), "\"text\" is not a code of the value set http://hl7.org/fhir/ValueSet/search-param-type"}, // R4 validation
		{"no expression", sp(`"code":"x","base":["Patient"],"type":"string"`), "SearchParameter.expression: required"},
		{"unparsable expression", sp(`"code":"x","base":["Patient"],"type":"string","expression":"Patient.name.where(("`), "SearchParameter.expression"},
		{"expression of another type", sp(`"code":"x","base":["Patient"],"type":"token","expression":"Observation.code"`), "selects nothing from Patient"},
		{"target on a string", sp(`"code":"x","base":["Patient"],"type":"string","expression":"Patient.gender","target":["Patient"]`), "only reference parameters"},
		{"unknown target", sp(`"code":"x","base":["Patient"],"type":"reference","expression":"Patient.link.other","target":["Nobody"]`), "\"Nobody\" is not a code of the value set http://hl7.org/fhir/ValueSet/resource-types"}, // R4 validation
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := e.in(t)
			r := e.must(422, post("/fhir/SearchParameter", tc.body))
			if msg := outcomeText(t, r); !strings.Contains(msg, tc.want) {
				t.Errorf("%s: message %q does not say %q", tc.name, msg, tc.want)
			}
		})
	}
	r := e.must(200, get("/fhir/SearchParameter?_summary=count"))
	if at(r.doc, "total") != 1.0 {
		t.Errorf("SearchParameters stored: %v, want only mmn", at(r.doc, "total"))
	}
}

// gatedStore holds the first batch of a reindex inside its transaction (the resources
// locked) until the test lets it go, to write while a reindex is under way.
type gatedStore struct {
	app.Store
	once    sync.Once
	inside  chan struct{} // closed once the batch is in Extract
	release chan struct{} // closed by the test
}

func (g *gatedStore) CountLive(ctx context.Context, typ string, since time.Time) (int64, error) {
	return g.Store.(resources.IndexRewriter).CountLive(ctx, typ, since)
}

func (g *gatedStore) RewriteIndex(ctx context.Context, b resources.RewriteBatch) (string, int, error) {
	extract := b.Extract
	b.Extract = func(r *resources.Resource) (*resources.Index, error) {
		g.once.Do(func() {
			close(g.inside)
			<-g.release
		})
		return extract(r)
	}
	return g.Store.(resources.IndexRewriter).RewriteIndex(ctx, b)
}

// While a SearchParameter is being indexed a search on it says so: a warning entry
// (lenient) or a 409 (strict). A write to a resource that the reindex holds is neither
// lost nor has its index overwritten with the older content's: it waits for the batch
// and indexes its own content.
func TestSearchParameterWhileIndexing(t *testing.T) {
	forEachBackend(t, testSearchParameterWhileIndexing)
}

func testSearchParameterWhileIndexing(t *testing.T) {
	g := &gatedStore{inside: make(chan struct{}), release: make(chan struct{})}
	e := newStoreEnv(t, storeEnv{wrap: func(st app.Store) app.Store { g.Store = st; return g }})
	for i := range 10 {
		e.must(201, put(fmt.Sprintf("/fhir/Patient/p%d", i), patientWithMMN(fmt.Sprintf("p%d", i), "Smith")))
	}
	e.must(201, put("/fhir/SearchParameter/mmn", mmnParam))
	<-g.inside

	r := e.must(200, get("/fhir/Patient?mothers-maiden-name=smith"))
	if w := outcomeWarnings(r); len(w) != 1 || !strings.Contains(w[0], "mothers-maiden-name of Patient is being indexed") {
		t.Errorf("lenient search while indexing: warnings %v\n%s", w, r.raw)
	}
	r = e.must(409, get("/fhir/Patient?mothers-maiden-name=smith", "Prefer", "handling=strict"))
	if msg := outcomeText(t, r); !strings.Contains(msg, "being indexed") {
		t.Errorf("strict search while indexing: %q", msg)
	}
	st := e.must(200, get("/$reindex-status"))
	if at(st.doc, "jobs", 0, "state") != "running" || at(st.doc, "searchParameters", 0, "status") != "draft" {
		t.Errorf("status while indexing: %s", st.raw)
	}

	// p0 is in the held batch: the update waits for it (PostgreSQL: the row lock;
	// SQLite: the one writer), then indexes Brown.
	done := make(chan *resp)
	go func() { done <- e.do(put("/fhir/Patient/p0", patientWithMMN("p0", "Brown"))) }()
	time.Sleep(200 * time.Millisecond)
	close(g.release)
	if r := <-done; r.status != 200 {
		t.Fatalf("update during the reindex: %d %s", r.status, r.raw)
	}
	e.waitActive("mmn")
	r = e.must(200, get("/fhir/Patient?mothers-maiden-name=smith", "Prefer", "handling=strict"))
	if got := sortedMatchIDs(r); len(got) != 9 || slices.Contains(got, "p0") {
		t.Errorf("smith after the reindex: %v, want p1…p9", got)
	}
	r = e.must(200, get("/fhir/Patient?mothers-maiden-name=brown", "Prefer", "handling=strict"))
	if got := sortedMatchIDs(r); !slices.Equal(got, []string{"p0"}) {
		t.Errorf("brown after the reindex: %v, want [p0]", got)
	}
	if r := e.must(200, get("/fhir/Patient/p0")); at(r.doc, "meta", "versionId") != "2" {
		t.Errorf("p0 is at version %v, want 2: the reindex makes no version", at(r.doc, "meta", "versionId"))
	}
}

// A SearchParameter that changes its definition is indexed again, the old code's rows
// going; one of another type of value (a reference) works alike.
func TestSearchParameterRedefined(t *testing.T) { forEachBackend(t, testSearchParameterRedefined) }

func testSearchParameterRedefined(t *testing.T) {
	e := newEnv(t)
	e.must(201, put("/fhir/Patient/a", `{"resourceType":"Patient","gender":"female","generalPractitioner":[{"reference":"Practitioner/doc1"}]}`))
	e.must(201, put("/fhir/SearchParameter/sp", `{"resourceType":"SearchParameter","status":"active","code":"sex","name":"sex","url":"http://example.org/sex","description":"d","base":["Patient"],"type":"token","expression":"Patient.gender"}`))
	e.waitActive("sp")
	if got := sortedMatchIDs(e.must(200, get("/fhir/Patient?sex=female"))); !slices.Equal(got, []string{"a"}) {
		t.Errorf("sex=female: %v", got)
	}
	r := e.must(200, put("/fhir/SearchParameter/sp", `{"resourceType":"SearchParameter","status":"active","code":"doctor","name":"doctor","url":"http://example.org/doctor","description":"d","base":["Patient"],"type":"reference","target":["Practitioner"],"expression":"Patient.generalPractitioner"}`))
	if at(r.doc, "status") != "draft" {
		t.Errorf("a new definition: status %v, want draft", at(r.doc, "status"))
	}
	e.waitActive("sp")
	if got := sortedMatchIDs(e.must(200, get("/fhir/Patient?doctor=Practitioner/doc1"))); !slices.Equal(got, []string{"a"}) {
		t.Errorf("doctor=Practitioner/doc1: %v", got)
	}
	e.must(400, get("/fhir/Patient?sex=female", "Prefer", "handling=strict"))
	var n int
	if err := e.store.SQL().QueryRow(`SELECT count(*) FROM search_token WHERE param = 'sex'`).Scan(&n); err != nil || n != 0 {
		t.Errorf("rows of the old code: %d, %v", n, err)
	}
}

// A second server on the same PostgreSQL database learns a SearchParameter written on
// the first through the change feed, and its deletion; one that starts later loads it.
func TestSearchParameterAcrossInstances(t *testing.T) {
	forEachBackend(t, func(t *testing.T) {
		if backendOf(t) != "postgres" {
			t.Skip("on PostgreSQL only: a SQLite file has one process")
		}
		url := backendOf(t).DatabaseURL(t)
		a := newStoreEnv(t, storeEnv{url: url})
		b := newStoreEnv(t, storeEnv{url: url})
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		go a.app.Listen(ctx)
		go b.app.Listen(ctx)
		time.Sleep(200 * time.Millisecond) // both listening
		a.must(201, put("/fhir/Patient/p1", patientWithMMN("p1", "Smith")))
		a.must(201, put("/fhir/SearchParameter/mmn", mmnParam))
		a.waitActive("mmn")
		eventually := func(what string, want int, path string) {
			t.Helper()
			deadline := time.Now().Add(5 * time.Second)
			for {
				r := b.do(get(path, "Prefer", "handling=strict"))
				if r.status == want {
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s: %d after 5s, want %d: %s", what, r.status, want, r.raw)
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
		eventually("the parameter, active, on B", 200, "/fhir/Patient?mothers-maiden-name=smith")
		if got := sortedMatchIDs(b.must(200, get("/fhir/Patient?mothers-maiden-name=smith"))); !slices.Equal(got, []string{"p1"}) {
			t.Errorf("on B: %v", got)
		}
		// B's writes index it too.
		b.must(201, put("/fhir/Patient/p2", patientWithMMN("p2", "Smith")))
		if got := sortedMatchIDs(a.must(200, get("/fhir/Patient?mothers-maiden-name=smith"))); !slices.Equal(got, []string{"p1", "p2"}) {
			t.Errorf("written on B, searched on A: %v", got)
		}
		c := newStoreEnv(t, storeEnv{url: url})
		if got := sortedMatchIDs(c.must(200, get("/fhir/Patient?mothers-maiden-name=smith", "Prefer", "handling=strict"))); len(got) != 2 {
			t.Errorf("a server started later: %v", got)
		}
		a.must(200, del("/fhir/SearchParameter/mmn"))
		eventually("deleted on A, on B", 400, "/fhir/Patient?mothers-maiden-name=smith")
	})
}

// A server that starts while a SearchParameter is draft (its indexing was cut short by
// a crash or a restart) indexes it and marks it active.
func TestSearchParameterResumedAtStart(t *testing.T) {
	forEachBackend(t, testSearchParameterResumedAtStart)
}

func testSearchParameterResumedAtStart(t *testing.T) {
	e := newEnv(t)
	for i := range 5 {
		e.must(201, put(fmt.Sprintf("/fhir/Patient/p%d", i), patientWithMMN(fmt.Sprintf("p%d", i), "Smith")))
	}
	// Stored as a server that stopped halfway leaves it, behind this server's back.
	draft := strings.Replace(mmnParam, `"status":"active"`, `"status":"draft"`, 1)
	if _, err := e.store.Write(context.Background(), "SearchParameter", "mmn", func(*resources.Resource) (*resources.Resource, *resources.Index, error) {
		return &resources.Resource{Type: "SearchParameter", ID: "mmn", VersionID: 1, LastUpdated: time.Now(), Content: []byte(draft)}, &resources.Index{}, nil
	}); err != nil {
		t.Fatal(err)
	}
	cfg := server.Config{BaseURL: testBase, AdminClientID: adminID, Version: "test"}
	a, err := app.New(context.Background(), e.store, app.Config{Server: cfg, AdminSecret: adminToken, BcryptCost: bcrypt.MinCost})
	if err != nil {
		t.Fatal(err)
	}
	restarted := e.in(t)
	restarted.srv, restarted.app, restarted.svc = a.Server, a, a.Service
	restarted.waitActive("mmn")
	r := restarted.must(200, get("/fhir/Patient?mothers-maiden-name=smith", "Prefer", "handling=strict"))
	if got := sortedMatchIDs(r); len(got) != 5 {
		t.Errorf("after the resumed reindex: %v", got)
	}
}

// SearchParameter resources are searchable by their own R4 parameters like any other
// type (the generated every-parameter test leaves them out: see everyR4Cases).
func TestSearchParameterSearchable(t *testing.T) { forEachBackend(t, testSearchParameterSearchable) }

func testSearchParameterSearchable(t *testing.T) {
	e := newEnv(t)
	e.must(201, put("/fhir/SearchParameter/mmn", mmnParam))
	e.waitActive("mmn")
	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"code=mothers-maiden-name", []string{"mmn"}},
		{"base=Patient", []string{"mmn"}},
		{"base=Observation", nil},
		{"type=string", []string{"mmn"}},
		{"type=token", nil},
		{"status=active", []string{"mmn"}},
		{"description=the%20mother", []string{"mmn"}}, // a string matches from the start
	} {
		r := e.must(200, get("/fhir/SearchParameter?"+tc.query, "Prefer", "handling=strict"))
		if got := sortedMatchIDs(r); !slices.Equal(got, tc.want) {
			t.Errorf("SearchParameter?%s: %v, want %v", tc.query, got, tc.want)
		}
	}
}
