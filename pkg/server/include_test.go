package server_test

import (
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/fhirbox/fhirbox/resources"
)

// includeData writes the resources the include tests search: two organizations (org2
// part of org1), a practitioner, patients p1 (org1, pr1), p2 (org2) and p3 (deleted),
// an encounter of p1, and observations of each patient and of a patient that does not
// exist.
func includeData(e *env) {
	e.t.Helper()
	for _, r := range []struct{ path, body string }{
		{"/fhir/Organization/org1", `{"resourceType":"Organization","name":"One"}`},
		{"/fhir/Organization/org2", `{"resourceType":"Organization","name":"Two","partOf":{"reference":"Organization/org1"}}`},
		{"/fhir/Practitioner/pr1", `{"resourceType":"Practitioner","name":[{"family":"Doc"}]}`},
		{"/fhir/Patient/p1", `{"resourceType":"Patient","name":[{"family":"One"}],"managingOrganization":{"reference":"Organization/org1"},"generalPractitioner":[{"reference":"Practitioner/pr1"}]}`},
		{"/fhir/Patient/p2", `{"resourceType":"Patient","name":[{"family":"Two"}],"managingOrganization":{"reference":"Organization/org2"}}`},
		{"/fhir/Patient/p3", `{"resourceType":"Patient","name":[{"family":"Three"}]}`},
		{"/fhir/Encounter/e1", `{"resourceType":"Encounter","status":"finished","class":{"code":"AMB"},"subject":{"reference":"Patient/p1"}}`},
		{"/fhir/Observation/o1", `{"resourceType":"Observation","status":"final","code":{"text":"a"},"subject":{"reference":"Patient/p1"},"encounter":{"reference":"Encounter/e1"},"performer":[{"reference":"Practitioner/pr1"}]}`},
		{"/fhir/Observation/o2", `{"resourceType":"Observation","status":"final","code":{"text":"b"},"subject":{"reference":"Patient/p1"}}`},
		{"/fhir/Observation/o3", `{"resourceType":"Observation","status":"final","code":{"text":"c"},"subject":{"reference":"Patient/p2"}}`},
		{"/fhir/Observation/o4", `{"resourceType":"Observation","status":"final","code":{"text":"d"},"subject":{"reference":"Patient/p3"}}`},
		{"/fhir/Observation/o5", `{"resourceType":"Observation","status":"final","code":{"text":"e"},"subject":{"reference":"Patient/nobody"}}`},
	} {
		e.must(201, put(r.path, r.body))
	}
	e.must(200, del("/fhir/Patient/p3"))
}

// bundleModes splits a searchset Bundle's entries by search.mode into "Type/id" lists
// (outcome entries by their diagnostics).
func bundleModes(t *testing.T, r *resp) (match, include, outcome []string) {
	t.Helper()
	entries, _ := at(r.doc, "entry").([]any)
	for _, en := range entries {
		typ, _ := at(en, "resource", "resourceType").(string)
		id, _ := at(en, "resource", "id").(string)
		switch mode := at(en, "search", "mode"); mode {
		case "match":
			match = append(match, typ+"/"+id)
		case "include":
			include = append(include, typ+"/"+id)
			if !strings.HasSuffix(at(en, "fullUrl").(string), "/"+typ+"/"+id) {
				t.Errorf("included %s/%s has fullUrl %v", typ, id, at(en, "fullUrl"))
			}
		case "outcome":
			d, _ := at(en, "resource", "issue", 0, "diagnostics").(string)
			outcome = append(outcome, d)
		default:
			t.Errorf("entry %s/%s has search.mode %v", typ, id, mode)
		}
	}
	slices.Sort(match)
	return match, include, outcome
}

// TestSearchInclude runs _include and _revinclude through the router: the target type,
// the wildcard, reverse includes, :iterate (and :recurse) over Observation → Patient →
// Organization / Practitioner and Organization.partOf, duplicates added once, no match
// repeated as an include, deleted and missing targets left out, and _summary/_elements.
func TestSearchInclude(t *testing.T) { forEachBackend(t, testSearchInclude) }

func testSearchInclude(t *testing.T) {
	e := newEnv(t)
	includeData(e)
	tests := []struct {
		query   string
		match   string // comma-separated Type/id, sorted
		include string // comma-separated Type/id, in Bundle order
	}{
		// p1 once for o1 and o2; the deleted p3 and the missing Patient/nobody are left out.
		{"Observation?_include=Observation:subject",
			"Observation/o1,Observation/o2,Observation/o3,Observation/o4,Observation/o5", "Patient/p1,Patient/p2"},
		{"Observation?_id=o1&_include=Observation:subject:Patient", "Observation/o1", "Patient/p1"},
		{"Observation?_id=o1&_include=Observation:performer:Practitioner", "Observation/o1", "Practitioner/pr1"},
		{"Observation?_id=o1&_include=Observation:subject:Group", "Observation/o1", ""}, // a target type o1 does not point at
		{"Observation?_id=o1&_include=Observation:*", "Observation/o1", "Encounter/e1,Patient/p1,Practitioner/pr1"},
		{"Observation?_id=o1&_include=*", "Observation/o1", "Encounter/e1,Patient/p1,Practitioner/pr1"},
		{"Observation?_id=o1&_include=Observation:*:Patient", "Observation/o1", "Patient/p1"},
		{"Observation?_id=o1,o2&_include=Observation:subject&_include=Observation:patient", "Observation/o1,Observation/o2", "Patient/p1"},
		{"Patient?_id=p1&_revinclude=Observation:subject", "Patient/p1", "Observation/o1,Observation/o2"},
		{"Patient?_id=p1&_revinclude=Observation:*", "Patient/p1", "Observation/o1,Observation/o2"},
		{"Patient?_id=p1&_revinclude=Observation:subject&_revinclude=Encounter:patient", "Patient/p1", "Encounter/e1,Observation/o1,Observation/o2"},
		{"Patient?_id=p3&_revinclude=Observation:subject", "", ""},
		{"Organization?_id=org1&_revinclude=Patient:organization", "Organization/org1", "Patient/p1"},
		{"Observation?_id=o1&_include=Observation:subject&_include:iterate=Patient:organization&_include:iterate=Patient:general-practitioner",
			"Observation/o1", "Organization/org1,Patient/p1,Practitioner/pr1"},
		{"Observation?_id=o3&_include=Observation:subject&_include:recurse=Patient:organization&_include:iterate=Organization:partof",
			"Observation/o3", "Organization/org1,Organization/org2,Patient/p2"},
		{"Observation?_id=o3&_include:iterate=*", "Observation/o3", "Organization/org1,Organization/org2,Patient/p2"},
		{"Patient?_id=p1&_revinclude=Observation:subject&_include:iterate=Observation:performer&_include:iterate=Observation:encounter",
			"Patient/p1", "Encounter/e1,Observation/o1,Observation/o2,Practitioner/pr1"},
		{"Practitioner?_revinclude=Patient:general-practitioner&_revinclude:iterate=Observation:subject",
			"Practitioner/pr1", "Observation/o1,Observation/o2,Patient/p1"},
		// A match is never repeated as an include.
		{"Organization?_include=Organization:partof", "Organization/org1,Organization/org2", ""},
		{"Patient?_revinclude=Observation:subject&_include:iterate=Observation:subject", "Patient/p1,Patient/p2",
			"Observation/o1,Observation/o2,Observation/o3"},
	}
	for _, tt := range tests {
		r := e.must(200, get("/fhir/"+tt.query))
		match, include, outcome := bundleModes(t, r)
		if got := strings.Join(match, ","); got != tt.match {
			t.Errorf("%s: matches %s, want %s", tt.query, got, tt.match)
		}
		if got := strings.Join(include, ","); got != tt.include {
			t.Errorf("%s: includes %s, want %s", tt.query, got, tt.include)
		}
		if len(outcome) > 0 {
			t.Errorf("%s: outcome %v", tt.query, outcome)
		}
		if n, _ := at(r.doc, "total").(float64); int(n) != len(match) {
			t.Errorf("%s: total %v counts more than the %d matches", tt.query, at(r.doc, "total"), len(match))
		}
	}

	// The matches come first, then the includes.
	r := e.must(200, get("/fhir/Patient?_id=p1&_revinclude=Observation:subject"))
	if at(r.doc, "entry", 0, "search", "mode") != "match" || at(r.doc, "entry", 1, "search", "mode") != "include" {
		t.Errorf("entries out of order: %s", r.raw)
	}
	// _summary=count returns no entry at all; _elements applies to the includes too.
	r = e.must(200, get("/fhir/Observation?_include=Observation:subject&_summary=count"))
	if at(r.doc, "entry") != nil || at(r.doc, "total") != float64(5) {
		t.Errorf("_summary=count: %s", r.raw)
	}
	r = e.must(200, get("/fhir/Observation?_id=o1&_include=Observation:subject&_elements=status"))
	if inc := at(r.doc, "entry", 1, "resource"); at(inc, "id") != "p1" || at(inc, "name") != nil ||
		at(inc, "meta", "tag", 0, "code") != "SUBSETTED" {
		t.Errorf("_elements not applied to the included Patient: %s", r.raw)
	}
	r = e.must(200, get("/fhir/Observation?_id=o1&_include=Observation:subject&_summary=data"))
	if at(r.doc, "entry", 1, "resource", "id") != "p1" || at(r.doc, "entry", 1, "resource", "meta", "tag", 0, "code") != "SUBSETTED" {
		t.Errorf("_summary=data not applied to the included Patient: %s", r.raw)
	}
	// At the / base too, with fullUrls of that base.
	r = e.must(200, get("/Observation?_id=o1&_include=Observation:subject"))
	if at(r.doc, "entry", 1, "fullUrl") != testBase+"/Patient/p1" {
		t.Errorf("/ base: %s", r.raw)
	}
	// fhirbox's own types are no FHIR resources: no R4 resource may point at them (a
	// write that tries is refused by validation), so under /fhir nothing can include
	// them; at / their own parameters include them, without their secrets.
	e.must(201, put("/Client/cl1", `{"secret":"cl1-secret","grant_types":["basic"]}`))
	r = e.must(422, put("/fhir/Observation/o6", `{"resourceType":"Observation","status":"final","code":{"text":"f"},"subject":{"reference":"Client/cl1"}}`))
	if at(r.doc, "issue", 0, "expression", 0) != "Observation.subject.reference" {
		t.Errorf("a reference to a Client: %s", r.raw)
	}
	e.must(201, put("/AccessPolicy/ap-inc", `{"engine":"matcho","matcho":{"uri":"/nowhere"},"link":[{"reference":"Client/cl1"}]}`))
	r = e.must(200, get("/AccessPolicy?_id=ap-inc&_include=AccessPolicy:link"))
	if _, inc, _ := bundleModes(t, r); strings.Join(inc, ",") != "Client/cl1" || strings.Contains(string(r.raw), "secret") {
		t.Errorf("/ base: own type not included, or with its secret: %s", r.raw)
	}
	e.must(200, del("/AccessPolicy/ap-inc"))
	// POST _search takes them from the form.
	r = e.must(200, req{method: "POST", path: "/fhir/Patient/_search", body: "_id=p1&_revinclude=Observation%3Asubject",
		hdr: []string{"Content-Type", "application/x-www-form-urlencoded"}})
	if _, inc, _ := bundleModes(t, r); strings.Join(inc, ",") != "Observation/o1,Observation/o2" {
		t.Errorf("POST _search: includes %v", inc)
	}
	// A resource deleted after being referred to is left out; a referrer deleted no
	// longer refers.
	e.must(200, del("/fhir/Observation/o2"))
	e.must(200, del("/fhir/Practitioner/pr1"))
	r = e.must(200, get("/fhir/Patient?_id=p1&_revinclude=Observation:subject&_include:iterate=Observation:performer"))
	if _, inc, _ := bundleModes(t, r); strings.Join(inc, ",") != "Observation/o1" {
		t.Errorf("after deletes: includes %v, want Observation/o1", inc)
	}
}

// TestSearchIncludeLinks checks that the self and paging links carry _include and
// _revinclude (:recurse written as :iterate), and that following next gives the next
// page's matches with their own includes.
func TestSearchIncludeLinks(t *testing.T) { forEachBackend(t, testSearchIncludeLinks) }

func testSearchIncludeLinks(t *testing.T) {
	e := newEnv(t)
	includeData(e)
	r := e.must(200, get("/fhir/Observation?_include=Observation:subject&_include:recurse=Patient:organization&_sort=_id&_count=2"))
	self := link(r, "self")
	u, err := url.Parse(self)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if q.Get("_include") != "Observation:subject" || q.Get("_include:iterate") != "Patient:organization" || q.Has("_include:recurse") {
		t.Errorf("self link %s does not carry the includes", self)
	}
	match, include, _ := bundleModes(t, r)
	if strings.Join(match, ",") != "Observation/o1,Observation/o2" || strings.Join(include, ",") != "Organization/org1,Patient/p1" {
		t.Errorf("page 1: %v %v", match, include)
	}
	// The self link gives the same page again.
	r2 := e.must(200, get(pagePath(t, self)))
	if m2, i2, _ := bundleModes(t, r2); !slices.Equal(m2, match) || !slices.Equal(i2, include) {
		t.Errorf("self link: %v %v, want %v %v", m2, i2, match, include)
	}
	r = e.must(200, get(pagePath(t, link(r, "next"))))
	match, include, _ = bundleModes(t, r)
	if strings.Join(match, ",") != "Observation/o3,Observation/o4" || strings.Join(include, ",") != "Organization/org2,Patient/p2" {
		t.Errorf("page 2: %v %v", match, include)
	}
	if got := link(r, "next"); !strings.Contains(got, "_include=Observation%3Asubject") {
		t.Errorf("next link %s lost the includes", got)
	}
}

// TestSearchIncludeErrors: every malformed or impossible include is a 400 that says
// what is wrong.
func TestSearchIncludeErrors(t *testing.T) { forEachBackend(t, testSearchIncludeErrors) }

func testSearchIncludeErrors(t *testing.T) {
	e := newEnv(t)
	many := strings.Repeat("&_include=Observation:subject", resources.DefaultLimits().Clauses+1)
	for _, tt := range []struct{ query, want string }{
		{"Observation?_include=Patient:organization", "the source type Patient is not the searched type Observation"},
		{"Observation?_include=Observation:nothing", `unknown search parameter "nothing" of Observation`},
		{"Observation?_include=Observation:code", "code is a token parameter of Observation, not a reference parameter"},
		{"Observation?_include=Observation:patient:Organization", "Organization is not a target of Observation.patient (Patient)"},
		{"Observation?_include=Observation:*:Nothing", `unknown resource type "Nothing"`},
		{"Observation?_include=Observation:encounter:Patient", "Patient is not a target of Observation.encounter"},
		{"Observation?_include=Observation", "the value is SourceType:parameter"},
		{"Observation?_include=Observation:subject:Patient:x", "the value is SourceType:parameter"},
		{"Observation?_include=Nothing:subject", `unknown resource type "Nothing"`},
		{"Observation?_include:deep=Observation:subject", "unknown modifier :deep"},
		{"Observation?_include:iterate=Patient:nothing", `unknown search parameter "nothing" of Patient`},
		{"Patient?_revinclude=*", "name the type whose references point at the matches"},
		{"Patient?_revinclude=Observation:encounter", "Patient is not a target of Observation.encounter (Encounter, EpisodeOfCare)"},
		{"Patient?_revinclude=Observation:subject:Group", "the target type Group is not the searched type Patient"},
		{"Patient?_revinclude=Organization:*", "no reference parameter of Organization refers to Patient"},
		{"Observation?_id=o1" + many, "too many _include and _revinclude parameters"},
	} {
		r := e.must(400, get("/fhir/"+tt.query))
		if got := outcomeText(t, r); !strings.Contains(got, tt.want) {
			t.Errorf("%s: %q, want it to say %q", tt.query, got, tt.want)
		}
	}
}

// TestSearchIncludeLimit: past the includes limit the includes stop and the Bundle says
// so in an outcome entry naming the setting; at the limit nothing is said.
func TestSearchIncludeLimit(t *testing.T) { forEachBackend(t, testSearchIncludeLimit) }

func testSearchIncludeLimit(t *testing.T) {
	l := resources.DefaultLimits()
	l.Includes = 3
	e := newEnv(t, withSearchLimits(l))
	includeData(e)
	r := e.must(200, get("/fhir/Observation?_id=o1&_include=Observation:*"))
	if _, inc, out := bundleModes(t, r); len(inc) != 3 || len(out) != 0 {
		t.Errorf("at the limit: includes %v, outcome %v", inc, out)
	}
	r = e.must(200, get("/fhir/Observation?_id=o1&_include=Observation:*&_include:iterate=Patient:organization"))
	_, inc, out := bundleModes(t, r)
	if strings.Join(inc, ",") != "Encounter/e1,Patient/p1,Practitioner/pr1" || len(out) != 1 ||
		!strings.Contains(out[0], "more than 3 resources") || !strings.Contains(out[0], "includes=3") {
		t.Errorf("past the limit: includes %v, outcome %v", inc, out)
	}
	r = e.must(200, get("/fhir/Observation?_include=Observation:subject&_include:iterate=Patient:*&_include:iterate=Organization:partof"))
	if _, inc, out := bundleModes(t, r); len(inc) != 3 || len(out) != 1 {
		t.Errorf("past the limit while iterating: includes %v, outcome %v", inc, out)
	}
}

// TestSearchIncludePolicies: an include never returns what the caller could not read.
// The reader may search Observations and read Patient p1 and every Organization, at
// /fhir only: p2 is left out, and so is p2's organization, reached only through p2;
// the same search at / is not allowed at all, and a policy allowing reads at / does
// not let /fhir includes through.
func TestSearchIncludePolicies(t *testing.T) { forEachBackend(t, testSearchIncludePolicies) }

func testSearchIncludePolicies(t *testing.T) {
	e := newEnv(t)
	includeData(e)
	e.must(201, put("/Client/reader", `{"secret":"reader-secret","grant_types":["basic"]}`))
	e.must(201, yamlPut("/AccessPolicy/reader-search", `
engine: matcho
link: [{reference: Client/reader}]
matcho: {request-method: get, uri: '#^/fhir/(Observation|Patient)$'}
`))
	e.must(201, yamlPut("/AccessPolicy/reader-read", `
engine: matcho
link: [{reference: Client/reader}]
matcho: {request-method: get, uri: '#^/fhir/(Patient/p1|Organization/[^/]+)$'}
`))
	e.must(201, yamlPut("/AccessPolicy/reader-root", `
engine: matcho
link: [{reference: Client/reader}]
matcho: {request-method: get, uri: '#^/Patient/p2$'}
`))
	reader := func(path string) *resp {
		return e.must(200, as("reader", "reader-secret", get(path)))
	}
	for _, tt := range []struct{ query, include string }{
		{"Observation?_include=Observation:subject", "Patient/p1"},
		{"Observation?_include=Observation:subject&_include:iterate=Patient:organization&_include:iterate=Organization:partof",
			"Organization/org1,Patient/p1"},
		{"Observation?_id=o1&_include=Observation:*", "Patient/p1"},
		// Reverse includes are checked alike: the reader may read no Observation.
		{"Patient?_revinclude=Observation:subject", ""},
	} {
		_, inc, _ := bundleModes(t, reader("/fhir/"+tt.query))
		if got := strings.Join(inc, ","); got != tt.include {
			t.Errorf("reader %s: includes %s, want %s", tt.query, got, tt.include)
		}
	}
	// The administrator sees them all.
	r := e.must(200, get("/fhir/Observation?_include=Observation:subject&_include:iterate=Patient:organization&_include:iterate=Organization:partof"))
	if _, inc, _ := bundleModes(t, r); strings.Join(inc, ",") != "Organization/org1,Organization/org2,Patient/p1,Patient/p2" {
		t.Errorf("admin: includes %v", inc)
	}
	e.must(403, as("reader", "reader-secret", get("/Observation?_include=Observation:subject")))
}
