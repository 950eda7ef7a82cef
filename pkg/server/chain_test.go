package server_test

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// seedChain writes the chain fixture through the API:
//
//	Organization acme "Acme Health" (part of umbrella "Umbrella Group"), other "Other Org"
//	Patient p1 Peter Quinn (acme), p2 Anna Smith (other), p3 Zed Peters (no organization),
//	p4 Oscar Peterkin (acme; deleted)
//	Location d1 "Peter" (Observation.subject targets Group, Device, Patient, Location in R4)
//	Encounter e1 of p1 (AMB), e2 of p2 (EMER)
//	Observation o1 p1 1234-5 7 mg in e1, o2 p2 1234-5 3 mg in e2, o3 d1 9999-9,
//	o4 p4 1234-5, o5 p3 5555-5, o6 p3 7777-7 (deleted)
func seedChain(t *testing.T, e *env) {
	t.Helper()
	for _, r := range []struct{ path, body string }{
		{"/Organization/umbrella", `{"resourceType":"Organization","name":"Umbrella Group"}`},
		{"/Organization/acme", `{"resourceType":"Organization","name":"Acme Health","partOf":{"reference":"Organization/umbrella"}}`},
		{"/Organization/other", `{"resourceType":"Organization","name":"Other Org"}`},
		{"/Patient/p1", `{"resourceType":"Patient","name":[{"family":"Quinn","given":["Peter"]}],"gender":"male","managingOrganization":{"reference":"Organization/acme"}}`},
		{"/Patient/p2", `{"resourceType":"Patient","name":[{"family":"Smith","given":["Anna"]}],"gender":"female","managingOrganization":{"reference":"Organization/other"}}`},
		{"/Patient/p3", `{"resourceType":"Patient","name":[{"family":"Peters","given":["Zed"]}]}`},
		{"/Patient/p4", `{"resourceType":"Patient","name":[{"family":"Peterkin","given":["Oscar"]}],"managingOrganization":{"reference":"Organization/acme"}}`},
		{"/Location/d1", `{"resourceType":"Location","name":"Peter"}`},
		{"/Encounter/e1", `{"resourceType":"Encounter","status":"finished","class":{"code":"AMB"},"subject":{"reference":"Patient/p1"}}`},
		{"/Encounter/e2", `{"resourceType":"Encounter","status":"finished","class":{"code":"EMER"},"subject":{"reference":"Patient/p2"}}`},
		{"/Observation/o1", obsJSON("Patient/p1", "1234-5", 7, "Encounter/e1")},
		{"/Observation/o2", obsJSON("Patient/p2", "1234-5", 3, "Encounter/e2")},
		{"/Observation/o3", obsJSON("Location/d1", "9999-9", 0, "")},
		{"/Observation/o4", obsJSON("Patient/p4", "1234-5", 0, "")},
		{"/Observation/o5", obsJSON("Patient/p3", "5555-5", 0, "")},
		{"/Observation/o6", obsJSON("Patient/p3", "7777-7", 0, "")},
	} {
		e.must(http.StatusCreated, put(r.path, r.body))
	}
	e.must(http.StatusOK, del("/Patient/p4"))
	e.must(http.StatusOK, del("/Observation/o6"))
}

func obsJSON(subject, code string, value float64, encounter string) string {
	doc := `{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"` + code + `"}]},` +
		`"subject":{"reference":"` + subject + `"}`
	if value != 0 {
		doc += `,"valueQuantity":{"value":` + strconv.FormatFloat(value, 'f', -1, 64) + `,"system":"http://unitsofmeasure.org","code":"mg"}`
	}
	if encounter != "" {
		doc += `,"encounter":{"reference":"` + encounter + `"}`
	}
	return doc + "}"
}

// searchIDs runs a search and returns the sorted ids of its entries (every page).
func searchIDs(t *testing.T, e *env, path string) string {
	t.Helper()
	ids, total := allPages(t, e, path)
	if total != len(ids) {
		t.Errorf("%s: total %d, %d entries", path, total, len(ids))
	}
	slices.Sort(ids)
	return strings.Join(ids, " ")
}

func TestSearchChain(t *testing.T) { forEachBackend(t, testSearchChain) }

func testSearchChain(t *testing.T) {
	e := newEnv(t)
	seedChain(t, e)
	for _, tc := range []struct{ query, want string }{
		// Forward chains.
		{"Observation?subject:Patient.name=peter", "o1 o5"},
		{"Observation?subject.name=peter", "o1 o3 o5"}, // of subject's targets, Patient and Location have name
		{"Observation?subject:Location.name=peter", "o3"},
		{"Observation?subject.name:exact=Peter", "o1 o3"},
		{"Observation?subject.gender:missing=true", "o5"},    // of subject's targets, only Patient has gender
		{"Observation?subject.organization.name=acme", "o1"}, // of subject's targets, Patient has organization
		{"Observation?patient.name=peter", "o1 o5"},          // patient targets Patient only
		{"Observation?subject:Patient.organization.name=acme", "o1"},
		{"Observation?subject:Patient.organization:Organization.name=acme", "o1"},
		{"Observation?subject:Patient.organization.partof.name=umbrella", "o1"}, // three links
		{"Observation?subject:Patient.name:exact=Peters", "o5"},
		{"Observation?subject:Patient.name:exact=peters", ""},
		{"Observation?subject:Patient.name:contains=ete", "o1 o5"},
		{"Observation?subject:Patient.organization:missing=true", "o5"},
		{"Observation?subject:Patient.organization:missing=false", "o1 o2"},
		{"Observation?subject:Patient.gender=male", "o1"},
		{"Observation?subject:Patient.gender:missing=true", "o5"}, // p4 has none, but is deleted
		{"Observation?subject:Patient.gender:not=male", "o2 o5"},
		{"Observation?subject:Patient.name=smith,zed", "o2 o5"},
		{"Observation?subject:Patient.name=peter&code=1234-5", "o1"},
		{"Observation?subject:Patient.name=peter&subject:Patient.name=zed", "o5"},
		{"Observation?subject:Patient._id=p2", "o2"},
		{"Observation?subject:Patient.organization=Organization/acme", "o1"},
		{"Observation?encounter.subject:Patient.name=anna", "o2"},
		{"Observation?subject:Patient.name=oscar", ""}, // p4 is deleted
		{"Encounter?patient.organization.name=other", "e2"},
		// Reverse chains.
		{"Patient?_has:Observation:patient:code=1234-5", "p1 p2"},
		{"Patient?_has:Observation:subject:code=1234-5", "p1 p2"},
		{"Patient?_has:Observation:subject:code=http://loinc.org|5555-5", "p3"},
		{"Patient?_has:Observation:subject:code=7777-7", ""}, // o6 is deleted
		{"Patient?_has:Observation:subject:value-quantity=gt5", "p1"},
		{"Patient?_has:Observation:subject:value-quantity=lt5", "p2"},
		{"Patient?_has:Observation:subject:value-quantity:missing=false", "p1 p2"},
		{"Patient?_has:Observation:subject:value-quantity:missing=true", "p3"}, // o4 is p4's, deleted; o6 deleted
		{"Patient?_has:Observation:subject:code=9999-9,5555-5", "p3"},
		{"Patient?_has:Observation:subject:code=1234-5&gender=female", "p2"},
		{"Patient?_has:Observation:subject:code=1234-5&_has:Encounter:subject:class=AMB", "p1"},
		{"Patient?_has:Encounter:subject:_has:Observation:encounter:code=1234-5", "p1 p2"},
		{"Patient?_has:Encounter:subject:_has:Observation:encounter:value-quantity=gt5", "p1"},
		{"Patient?_has:Encounter:patient:_has:Observation:encounter:value-quantity=lt5", "p2"},
		{"Location?_has:Observation:subject:code=9999-9", "d1"},
		{"Organization?_has:Patient:organization:_has:Observation:subject:code=1234-5", "acme other"},
		{"Organization?_has:Organization:partof:name=acme", "umbrella"},
		// Mixed.
		{"Observation?subject:Patient._has:Encounter:subject:class=EMER", "o2"},
		{"Encounter?subject:Patient._has:Observation:subject:code=5555-5", ""},
	} {
		t.Run(tc.query, func(t *testing.T) {
			if got := searchIDs(t, e.in(t), "/fhir/"+tc.query); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// The self link holds the chain in its canonical form; following it, and the next
// links, gives the same matches.
func TestSearchChainLinks(t *testing.T) { forEachBackend(t, testSearchChainLinks) }

func testSearchChainLinks(t *testing.T) {
	e := newEnv(t)
	seedChain(t, e)
	for _, tc := range []struct{ query, key, want string }{
		{"Observation?subject:Patient.name:exact=Peters,Quinn", "subject:Patient.name:exact", "o1 o5"},
		{"Observation?subject.name=peter", "subject.name", "o1 o3 o5"},
		{"Patient?_has:Observation:subject:value-quantity=gt1", "_has:Observation:subject:value-quantity", "p1 p2"},
		{"Patient?_has:Encounter:subject:_has:Observation:encounter:code=1234-5", "_has:Encounter:subject:_has:Observation:encounter:code", "p1 p2"},
	} {
		t.Run(tc.query, func(t *testing.T) {
			r := e.must(http.StatusOK, get("/fhir/"+tc.query+"&_count=1"))
			self, err := url.Parse(link(r, "self"))
			if err != nil {
				t.Fatal(err)
			}
			if !self.Query().Has(tc.key) {
				t.Errorf("self link %s lacks %s", self, tc.key)
			}
			ids, total := allPages(t, e.in(t), pagePath(t, self.String()))
			slices.Sort(ids)
			if got := strings.Join(ids, " "); got != tc.want || total != len(ids) {
				t.Errorf("following the links: %q (total %d), want %q", got, total, tc.want)
			}
		})
	}
}

func TestSearchChainErrors(t *testing.T) { forEachBackend(t, testSearchChainErrors) }

func testSearchChainErrors(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct{ query, says string }{
		{"Observation?subject:Patient.foo=x", `Patient has no search parameter "foo"`},
		{"Observation?subject.foo=x", `no target type of subject has a search parameter "foo"`},
		{"Observation?code.name=x", "code is a token parameter of Observation, not a reference"},
		{"Observation?subject:Patient.name.family=x", "name is a string parameter of Patient, not a reference"},
		{"Observation?subject:Foo.name=x", `unknown resource type "Foo"`},
		{"Observation?encounter:Patient.name=x", "Patient is not a target of encounter"},
		{"Observation?subject:Patient.name:below=x", "modifier :below is not supported on name"},
		{"Observation?subject:Patient.gender:missing=maybe", "takes true or false"},
		{"Observation?subject:Patient.birthdate=notadate", "not a valid date"},
		{"Observation?subject:User.name=x", "User is not a target of subject"},
		{"/AccessPolicy?link:Patient.name=x", "a chain cannot lead from AccessPolicy to Patient"},
		{"Observation?subject._has:Encounter:subject:class=x", "names the type it goes through"},
		{"Observation?subject:Patient.organization.partof.partof.partof.name=x", "too many links in the chain"},
		{"Patient?_has:Foo:subject:code=x", `unknown resource type "Foo"`},
		{"Patient?_has:Observation:foo:code=x", `Observation has no search parameter "foo"`},
		{"Patient?_has:Observation:code:code=x", "code of Observation is a token parameter, not a reference"},
		{"Patient?_has:Observation:encounter:code=x", "encounter of Observation never refers to Patient"},
		{"Patient?_has:Observation:subject:foo=x", `Observation has no search parameter "foo"`},
		{"Patient?_has:Observation:subject=x", "_has takes the form _has:Type:reference:parameter"},
		{"Patient?_has=x", "_has takes the form"},
		{"Patient?_has:Observation:subject:value-quantity=zz5", "unknown prefix"},
		{"Patient?_has:AccessPolicy:link:engine=allow", "a chain cannot lead from Patient to AccessPolicy"},
	} {
		t.Run(tc.query, func(t *testing.T) {
			path := "/fhir/" + tc.query
			if strings.HasPrefix(tc.query, "/") { // fhirbox's own types, at / only
				path = tc.query
			}
			r := e.in(t).must(http.StatusBadRequest, get(path))
			if msg := outcomeText(t, r); !strings.Contains(msg, tc.says) {
				t.Errorf("message %q does not say %q", msg, tc.says)
			}
		})
	}
	// The depth limit names its setting; each link counts as a clause.
	r := e.must(http.StatusBadRequest, get("/fhir/Observation?subject:Patient.organization.partof.partof.partof.name=x"))
	if msg := outcomeText(t, r); !strings.Contains(msg, "FHIRBOX_SEARCH_LIMITS") || !strings.Contains(msg, "chain=4") {
		t.Errorf("depth error %q does not name the setting", msg)
	}
	q := "/fhir/Observation?" + strings.Repeat("subject:Patient.organization.partof.name=x&", 4) + "code=1"
	r = e.must(http.StatusBadRequest, get(q))
	if msg := outcomeText(t, r); !strings.Contains(msg, "clauses") {
		t.Errorf("13 clauses in 5 parameters: %q", msg)
	}
	// An unknown first parameter is unknown like any other: ignored, or refused when strict.
	e.must(http.StatusOK, get("/fhir/Observation?foo.name=x"))
	r = e.must(http.StatusBadRequest, get("/fhir/Observation?foo.name=x", "Prefer", "handling=strict"))
	if msg := outcomeText(t, r); !strings.Contains(msg, `unknown search parameter "foo.name"`) {
		t.Errorf("strict: %q", msg)
	}
}

// A chain or _has leads only to types the caller may search: a policy that allows
// searching Patients must not tell which patients have an Observation with some code.
func TestSearchChainPolicies(t *testing.T) { forEachBackend(t, testSearchChainPolicies) }

func testSearchChainPolicies(t *testing.T) {
	e := newEnv(t)
	seedChain(t, e)
	e.must(http.StatusCreated, put("/Client/reader", `{"secret":"reader-secret","grant_types":["basic"]}`))
	e.must(http.StatusCreated, yamlPut("/AccessPolicy/patients-only", `
engine: matcho
matcho:
  request-method: get
  uri: '#^/fhir/Patient$'
`))
	e.must(http.StatusCreated, yamlPut("/AccessPolicy/reader", `
engine: matcho
link: [{reference: Client/reader}]
matcho:
  request-method: get
  uri: '#^/fhir/(Patient|Observation|Encounter)$'
`))
	reader := func(r req) req { return as("reader", "reader-secret", r) }
	for _, tc := range []struct {
		r      req
		status int
		says   string
	}{
		{anon(get("/fhir/Patient?name=peter")), http.StatusOK, ""},
		{anon(get("/fhir/Patient?_has:Observation:subject:code=1234-5")), http.StatusUnauthorized, "to Observation, which no access policy allows an anonymous caller to search (GET /fhir/Observation)"},
		{anon(get("/fhir/Patient?organization.name=acme")), http.StatusUnauthorized, "to Organization"},
		{reader(get("/fhir/Patient?_has:Observation:subject:code=1234-5")), http.StatusOK, ""},
		{reader(get("/fhir/Patient?_has:Encounter:subject:_has:Observation:encounter:code=1234-5")), http.StatusOK, ""},
		{reader(get("/fhir/Observation?subject:Patient.organization.name=acme")), http.StatusForbidden, `no access policy allows client "reader" to search (GET /fhir/Organization)`},
		{reader(get("/fhir/Observation?subject.name=peter")), http.StatusForbidden, "to Location"}, // untyped: every target type with name
	} {
		t.Run(tc.r.path, func(t *testing.T) {
			r := e.in(t).must(tc.status, tc.r)
			if tc.says != "" {
				if msg := outcomeText(t, r); !strings.Contains(msg, tc.says) {
					t.Errorf("message %q does not say %q", msg, tc.says)
				}
			}
		})
	}
}
