package server_test

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"
)

// _list keeps the resources of the searched type that a List's entries refer to; a
// missing or deleted List matches nothing; functional lists are refused.
func TestListSearch(t *testing.T) { forEachBackend(t, testListSearch) }

func testListSearch(t *testing.T) {
	e := newEnv(t)
	for _, id := range []string{"p1", "p2", "p3"} {
		e.must(201, put("/fhir/Patient/"+id, `{"resourceType":"Patient","gender":"female","name":[{"family":"Lister"}]}`))
	}
	e.must(201, put("/fhir/Patient/p4", `{"resourceType":"Patient","gender":"male"}`))
	e.must(201, put("/fhir/Practitioner/d1", `{"resourceType":"Practitioner","name":[{"family":"Lister"}]}`))
	e.must(201, put("/fhir/List/l1", `{"resourceType":"List","status":"current","mode":"working",
		"contained":[{"resourceType":"Patient","id":"contained"}],"entry":[
		{"item":{"reference":"Patient/p1"}},
		{"item":{"reference":"http://elsewhere.example/fhir/Patient/p4"}},
		{"item":{"reference":"Practitioner/d1"}},
		{"item":{"reference":"Patient/p9"}},
		{"item":{"reference":"#contained"}},
		{"item":{"display":"no reference"}}]}`))

	tests := []struct {
		path string
		want []string
	}{
		{"/fhir/Patient?_list=l1", []string{"p1", "p4"}},
		{"/fhir/Patient?_list=l1&gender=female", []string{"p1"}},
		{"/fhir/Practitioner?_list=l1", []string{"d1"}},
		{"/fhir/Observation?_list=l1", nil},
		{"/fhir/Patient?_list=nosuchlist", nil},
		{"/fhir?_list=l1", []string{"p1", "p4", "d1"}},
		{"/fhir?_type=Patient&_list=l1&_sort=_id", []string{"p1", "p4"}},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			r := e.in(t).must(200, get(tt.path))
			if got := entryIDs(r); !sameIDs(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
			if !strings.Contains(link(r, "self"), "_list=") {
				t.Errorf("self link %s drops _list", link(r, "self"))
			}
		})
	}
	// If-None-Exist reads the List too: p1 is on it, so nothing is created.
	r := e.must(200, post("/fhir/Patient", `{"resourceType":"Patient"}`, "If-None-Exist", "_list=l1&gender=female"))
	if at(r.doc, "id") != "p1" {
		t.Errorf("If-None-Exist with _list: %s", r.raw)
	}
	// A deleted List is no list.
	e.must(200, del("/fhir/List/l1"))
	if got := entryIDs(e.must(200, get("/fhir/Patient?_list=l1"))); len(got) != 0 {
		t.Errorf("deleted list: %v", got)
	}
	for _, q := range []string{"_list=$current-allergies", "_list=$current-problems", "_list=bad%20id", "_list=a&_list=b"} {
		msg := outcomeText(t, e.must(400, get("/fhir/Patient?"+q)))
		if !strings.Contains(msg, "_list") {
			t.Errorf("%s: %q", q, msg)
		}
	}
}

// GET [base]?_type=…: the types listed, with the parameters they all have; without
// _type every type served at the base, with the common parameters only.
func TestSystemSearch(t *testing.T) { forEachBackend(t, testSystemSearch) }

func testSystemSearch(t *testing.T) {
	e := newEnv(t)
	// Written in this order, a few milliseconds apart (lastUpdated keeps milliseconds).
	for _, w := range []struct{ path, body string }{
		{"/fhir/Patient/p1", `{"resourceType":"Patient","name":[{"family":"Smith"}],"birthDate":"1970-01-01"}`},
		{"/fhir/Practitioner/d1", `{"resourceType":"Practitioner","name":[{"family":"Smithers"}]}`},
		{"/fhir/Patient/p2", `{"resourceType":"Patient","name":[{"family":"Jones"}],"text":{"status":"generated","div":"<div>walrus</div>"}}`},
		{"/fhir/Observation/o1", `{"resourceType":"Observation","status":"final","code":{"text":"walrus count"}}`},
		// The same id in two types must not confuse the search.
		{"/fhir/Practitioner/p1", `{"resourceType":"Practitioner","name":[{"family":"Brown"}]}`},
	} {
		e.must(201, put(w.path, w.body))
		time.Sleep(3 * time.Millisecond)
	}
	e.must(201, put("/Client/c1", `{"secret":"c1-secret","grant_types":["basic"]}`))

	typed := func(r *resp) []string {
		var out []string
		entries, _ := at(r.doc, "entry").([]any)
		for _, en := range entries {
			out = append(out, fmt.Sprint(at(en, "resource", "resourceType"), "/", at(en, "resource", "id")))
		}
		return out
	}
	tests := []struct {
		path string
		want []string // in order
	}{
		{"/fhir?_type=Patient,Practitioner&name=smith&_sort=_id", []string{"Practitioner/d1", "Patient/p1"}},
		{"/fhir?_type=Patient,Practitioner&family:exact=Brown", []string{"Practitioner/p1"}},
		{"/fhir?_type=Patient&_type=Practitioner&_id=p1&_sort=-_lastUpdated", []string{"Practitioner/p1", "Patient/p1"}},
		{"/fhir?_type=Patient,Observation&_content=walrus&_sort=_lastUpdated", []string{"Patient/p2", "Observation/o1"}},
		{"/fhir?_text=walrus", []string{"Patient/p2"}},
		{"/fhir?_type=Patient,Practitioner&_sort=family", []string{"Practitioner/p1", "Patient/p2", "Patient/p1", "Practitioner/d1"}},
		{"/fhir?_type=Patient,Practitioner&_sort=-family", []string{"Practitioner/d1", "Patient/p1", "Patient/p2", "Practitioner/p1"}},
		{"/fhir?_sort=_lastUpdated", []string{"Patient/p1", "Practitioner/d1", "Patient/p2", "Observation/o1", "Practitioner/p1"}},
		{"/fhir/?_id=d1", []string{"Practitioner/d1"}},
		{"/?_type=Client&_id=c1", []string{"Client/c1"}},
		{"/?_type=Client,Patient&_id=c1,p2&_sort=_id", []string{"Client/c1", "Patient/p2"}},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			e := e.in(t)
			r := e.must(200, get(tt.path))
			if got := typed(r); strings.Join(got, " ") != strings.Join(tt.want, " ") {
				t.Errorf("got %v, want %v", got, tt.want)
			}
			if int(at(r.doc, "total").(float64)) != len(tt.want) {
				t.Errorf("total %v", at(r.doc, "total"))
			}
			for i, en := range at(r.doc, "entry").([]any) {
				base := testBase + "/fhir/"
				if strings.HasPrefix(tt.path, "/?") {
					base = testBase + "/"
				}
				if at(en, "fullUrl") != base+tt.want[i] {
					t.Errorf("fullUrl %v, want %s", at(en, "fullUrl"), base+tt.want[i])
				}
			}
		})
	}

	// Paging: a walk of every FHIR resource by the links finds each once, in order.
	walk, next := []string{}, "/fhir?_count=2&_sort=-_lastUpdated"
	for next != "" && len(walk) < 20 {
		r := e.must(200, get(next))
		walk = append(walk, typed(r)...)
		if next = link(r, "next"); next != "" {
			next = pagePath(t, next)
			if !strings.HasPrefix(next, "/fhir?") {
				t.Fatalf("next link %s is not a system-level search", next)
			}
		}
	}
	if want := "Practitioner/p1 Observation/o1 Patient/p2 Practitioner/d1 Patient/p1"; strings.Join(walk, " ") != want {
		t.Errorf("walk %v, want %s", walk, want)
	}
	// Resources of different types with the same id, sorted by it, still
	// page in one order: the type breaks the tie.
	same := "/fhir?_type=Patient,Practitioner&_id=p1&_sort=_id&_count=1"
	first, second := e.must(200, get(same)), e.must(200, get(same+"&_page=2"))
	if a, b := typed(first), typed(second); len(a) != 1 || len(b) != 1 || a[0] == b[0] {
		t.Errorf("pages of %s: %v, %v", same, a, b)
	}
	// POST [base]/_search takes the parameters as a form.
	form := post("/fhir/_search", "_type=Patient,Practitioner&_id=p1", "Content-Type", "application/x-www-form-urlencoded")
	if got := typed(e.must(200, form)); len(got) != 2 {
		t.Errorf("POST /fhir/_search: %v", got)
	}
	// The FHIR base alone: every FHIR type, fhirbox's own left out.
	r := e.must(200, get("/fhir"))
	if int(at(r.doc, "total").(float64)) != 5 {
		t.Errorf("GET /fhir total %v: %v", at(r.doc, "total"), typed(r))
	}
	// fhirbox's base has its own types too (the root client among them).
	if n := int(at(e.must(200, get("/?_summary=count")).doc, "total").(float64)); n <= 6 {
		t.Errorf("GET / counts %d resources", n)
	}

	for _, tt := range []struct{ path, says string }{
		{"/fhir?_type=Patient,Practitioner&birthdate=1970", "Practitioner"},
		{"/fhir?_type=Patient,Observation&name=x", "Observation"},
		{"/fhir?name=smith", "not a search parameter"},
		{"/fhir?_type=Patient,Nope", "Nope"},
		{"/fhir?_type=Client", "Client"},
		{"/fhir?_type=Patient,Practitioner&_sort=birthdate", "birthdate"},
	} {
		msg := outcomeText(t, e.must(400, get(tt.path)))
		if !strings.Contains(msg, tt.says) {
			t.Errorf("%s: %q does not say %q", tt.path, msg, tt.says)
		}
	}
	// The CapabilityStatement says so: search-system, and _text and _content on each type.
	cs := e.must(200, get("/fhir/metadata"))
	if at(cs.doc, "rest", 0, "interaction", 0, "code") != "search-system" {
		t.Errorf("no search-system interaction: %v", at(cs.doc, "rest", 0, "interaction"))
	}
	found := map[string]bool{}
	for _, res := range at(cs.doc, "rest", 0, "resource").([]any) {
		if at(res, "type") != "Observation" {
			continue
		}
		for _, sp := range at(res, "searchParam").([]any) {
			found[at(sp, "name").(string)] = true
		}
	}
	if !found["_text"] || !found["_content"] || !found["code"] {
		t.Errorf("Observation's search parameters: %v", found)
	}
	// A parameter no listed type has is ignored in the default lenient mode, refused
	// under strict handling, as at the type level.
	e.must(200, get("/fhir?_type=Patient&colour=blue"))
	e.must(400, get("/fhir?_type=Patient&colour=blue", "Prefer", "handling=strict"))
}

// A system-level search returns only the types the caller's policies let it search.
func TestSystemSearchPolicies(t *testing.T) { forEachBackend(t, testSystemSearchPolicies) }

func testSystemSearchPolicies(t *testing.T) {
	e := newEnv(t)
	e.must(201, put("/fhir/Patient/p1", `{"resourceType":"Patient","text":{"status":"generated","div":"<div>okapi</div>"}}`))
	e.must(201, put("/fhir/Practitioner/d1", `{"resourceType":"Practitioner","text":{"status":"generated","div":"<div>okapi</div>"}}`))
	e.must(201, put("/fhir/Observation/o1", `{"resourceType":"Observation","status":"final","code":{"text":"okapi"}}`))
	e.must(201, put("/Client/app", `{"secret":"app-secret","grant_types":["basic"]}`))
	app := func(r req) req { return as("app", "app-secret", r) }

	// Without a policy for the base, the request itself is refused.
	e.must(403, app(get("/fhir?_type=Patient")))
	e.must(201, yamlPut("/AccessPolicy/app-base", `
engine: matcho
link: [{resourceType: Client, id: app}]
matcho: {request-method: get, uri: /fhir}
`))
	// Allowed at the base, but no type: 403.
	msg := outcomeText(t, e.must(403, app(get("/fhir?_type=Patient,Practitioner"))))
	if !strings.Contains(msg, "Patient") {
		t.Errorf("403 says %q", msg)
	}
	e.must(201, yamlPut("/AccessPolicy/app-patients", `
engine: matcho
link: [{resourceType: Client, id: app}]
matcho: {request-method: get, uri: '#^/fhir/(Patient|Observation)$'}
`))
	for _, tt := range []struct {
		path string
		want []string
	}{
		{"/fhir?_type=Patient,Practitioner&_text=okapi", []string{"p1"}},
		{"/fhir?_content=okapi", []string{"p1", "o1"}},
		{"/fhir?_type=Practitioner,Observation", []string{"o1"}},
	} {
		if got := entryIDs(e.must(200, app(get(tt.path)))); !sameIDs(got, tt.want) {
			t.Errorf("%s: %v, want %v", tt.path, got, tt.want)
		}
	}
	e.must(403, app(get("/fhir?_type=Practitioner")))
	// A policy that reads the type sees the one decided.
	e.must(201, yamlPut("/AccessPolicy/app-practitioners", `
engine: matcho
link: [{resourceType: Client, id: app}]
matcho: {request-method: get, params: {resource/type: Practitioner}}
`))
	if got := entryIDs(e.must(200, app(get("/fhir?_text=okapi")))); !sameIDs(got, []string{"p1", "d1"}) {
		t.Errorf("with Practitioner allowed: %v", got)
	}
	// The admin sees everything; an anonymous caller nothing.
	if got := entryIDs(e.must(200, get("/fhir?_content=okapi"))); len(got) != 3 {
		t.Errorf("admin: %v", got)
	}
	e.must(401, anon(get("/fhir?_content=okapi")))
}

// _summary=count gives the total alone; _total=none leaves it out, estimate and
// accurate count it, on full pages and partial ones.
func TestSummaryCountAndTotal(t *testing.T) { forEachBackend(t, testSummaryCountAndTotal) }

func testSummaryCountAndTotal(t *testing.T) {
	e := newEnv(t)
	for i := range 5 {
		e.must(201, put(fmt.Sprintf("/fhir/Patient/s%d", i), `{"resourceType":"Patient","gender":"other","text":{"status":"generated","div":"<div>tapir</div>"}}`))
	}
	total := func(r *resp) any { return at(r.doc, "total") }
	for _, tt := range []struct {
		query   string
		total   any // nil: absent
		entries int
	}{
		{"_summary=count", 5.0, 0},
		{"_summary=count&gender=other", 5.0, 0},
		{"_summary=count&_text=tapir", 5.0, 0},
		{"_summary=count&gender=male", 0.0, 0},
		{"_summary=count&_count=2", 5.0, 0},
		{"_total=none", nil, 5},
		{"_total=none&_count=2", nil, 2},
		{"_total=none&_count=2&_page=3", nil, 1},
		{"_total=estimate&_count=2", 5.0, 2},
		{"_total=accurate&_count=2", 5.0, 2},
		{"_total=accurate&_count=2&_page=3", 5.0, 1},
		{"_total=accurate", 5.0, 5},
	} {
		for _, base := range []string{"/fhir/Patient?", "/fhir?_type=Patient&"} {
			t.Run(base+tt.query, func(t *testing.T) {
				r := e.in(t).must(200, get(base+tt.query))
				if total(r) != tt.total {
					t.Errorf("total %v, want %v", total(r), tt.total)
				}
				if n := len(entryIDs(r)); n != tt.entries {
					t.Errorf("%d entries, want %d", n, tt.entries)
				}
				if strings.Contains(tt.query, "_total") && !strings.Contains(link(r, "self"), "_total=") {
					t.Errorf("self link %s drops _total", link(r, "self"))
				}
			})
		}
	}
	// With _total=none a full page cannot tell whether more follow: it offers a next link.
	r := e.must(200, get("/fhir/Patient?_total=none&_count=5"))
	if link(r, "next") == "" {
		t.Error("_total=none, full page: no next link")
	}
	for _, q := range []string{"_total=some", "_summary=counts", "_total=none&_summary=count"} {
		e.must(400, get("/fhir/Patient?"+q))
	}
}

// _include and _revinclude apply at the system level too: a plain _include starts from
// the matches of any searched type, a plain _revinclude points at any of them, and the
// included resources pass the policies as at the type level (conformance F9).
func TestSystemSearchInclude(t *testing.T) { forEachBackend(t, testSystemSearchInclude) }

func testSystemSearchInclude(t *testing.T) {
	e := newEnv(t)
	for _, w := range []struct{ path, body string }{
		{"/fhir/Practitioner/d1", `{"resourceType":"Practitioner","name":[{"family":"Doc"}]}`},
		{"/fhir/Patient/p1", `{"resourceType":"Patient","generalPractitioner":[{"reference":"Practitioner/d1"}]}`},
		{"/fhir/Practitioner/p1", `{"resourceType":"Practitioner"}`},
		{"/fhir/Observation/o1", `{"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/p1"}}`},
	} {
		e.must(201, put(w.path, w.body))
	}
	modes := func(r *resp) (match, include []string) {
		entries, _ := at(r.doc, "entry").([]any)
		for _, en := range entries {
			ref := fmt.Sprint(at(en, "resource", "resourceType"), "/", at(en, "resource", "id"))
			switch at(en, "search", "mode") {
			case "match":
				match = append(match, ref)
			case "include":
				include = append(include, ref)
			}
		}
		sort.Strings(match)
		return match, include
	}
	for _, tc := range []struct {
		path           string
		match, include string
	}{
		{"/fhir?_type=Patient,Practitioner&_id=p1&_include=Patient:general-practitioner", "Patient/p1 Practitioner/p1", "Practitioner/d1"},
		{"/fhir?_type=Patient,Practitioner&_id=p1&_revinclude=Observation:subject", "Patient/p1 Practitioner/p1", "Observation/o1"},
		{"/fhir?_type=Patient,Practitioner&_id=p1&_revinclude=Observation:subject:Patient", "Patient/p1 Practitioner/p1", "Observation/o1"},
	} {
		r := e.must(200, get(tc.path))
		m, inc := modes(r)
		if strings.Join(m, " ") != tc.match || strings.Join(inc, " ") != tc.include {
			t.Errorf("%s: match %v include %v, want %s / %s", tc.path, m, inc, tc.match, tc.include)
		}
		if !strings.Contains(link(r, "self"), "include") {
			t.Errorf("%s: self link %s drops the include", tc.path, link(r, "self"))
		}
	}
	for path, says := range map[string]string{
		"/fhir?_type=Patient,Practitioner&_include=*":               "name the source type",
		"/fhir?_type=Patient&_include=Observation:subject":          "not the searched type",
		"/fhir?_type=Patient&_revinclude=Observation:subject:Group": "not the searched type",
	} {
		if msg := outcomeText(t, e.must(400, get(path))); !strings.Contains(msg, says) {
			t.Errorf("%s: %q does not say %q", path, msg, says)
		}
	}
}
