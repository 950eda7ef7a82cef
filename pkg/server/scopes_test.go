package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/fhirbox/fhirbox/accesspolicy"
	"github.com/fhirbox/fhirbox/resources"
)

// scopeEnv is a server with two patients and their data, a User u1 whom a policy lets
// do anything under /fhir, and a client "app" that signs u1 in with the password grant.
func scopeEnv(t *testing.T) *env {
	e := newEnv(t)
	e.must(201, put("/Client/app", `{"secret":"app-secret","grant_types":["password"]}`))
	e.must(201, put("/Client/appjwt", `{"secret":"app-secret","grant_types":["password"],"auth":{"password":{"token_format":"jwt"}}}`))
	e.must(201, put("/User/u1", `{"password":"u1-password-long"}`))
	e.must(201, yamlPut("/AccessPolicy/u1-fhir", "engine: matcho\nlink: [{resourceType: User, id: u1}]\nmatcho: {uri: '#^/fhir/'}\n"))
	for _, p := range []string{"p1", "p2"} {
		e.must(201, put("/fhir/Patient/"+p, `{"resourceType":"Patient","name":[{"family":"Fam`+p+`"}]}`))
	}
	docs := map[string]string{
		"Observation/o1": `{"resourceType":"Observation","status":"final","code":{"text":"x"},"category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"vital-signs"}]}],"subject":{"reference":"Patient/p1"}}`,
		// Its encounter is p1's: what an _include of a match p1's scope drops must not add.
		"Observation/o2": `{"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/p2"},"encounter":{"reference":"Encounter/e1"}}`,
		// In p1's compartment through performer, not subject.
		"Observation/o3":  `{"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/p2"},"performer":[{"reference":"Patient/p1"}]}`,
		"Observation/o4":  `{"resourceType":"Observation","status":"final","code":{"text":"x"},"category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"laboratory"}]}],"subject":{"reference":"Patient/p1"}}`,
		"Encounter/e1":    `{"resourceType":"Encounter","status":"finished","class":{"code":"AMB"},"subject":{"reference":"Patient/p1"}}`,
		"Encounter/e2":    `{"resourceType":"Encounter","status":"finished","class":{"code":"AMB"},"subject":{"reference":"Patient/p2"}}`,
		"Practitioner/d1": `{"resourceType":"Practitioner","name":[{"family":"Doc"}]}`,
		"List/l1":         `{"resourceType":"List","status":"current","mode":"working","subject":{"reference":"Patient/p1"},"entry":[{"item":{"reference":"Observation/o1"}}]}`,
		"List/l2":         `{"resourceType":"List","status":"current","mode":"working","subject":{"reference":"Patient/p2"},"entry":[{"item":{"reference":"Observation/o1"}},{"item":{"reference":"Observation/o2"}}]}`,
	}
	for k, v := range docs {
		e.must(201, put("/fhir/"+k, v))
	}
	return e
}

// scopedToken signs u1 in with scope and, when patient is not empty, puts Patient/patient
// in the Session's launch context as a launch would.
func scopedToken(t testing.TB, e *env, scope, patient string) string {
	return scopedTokenOf(t, e, "app", scope, patient)
}

// scopedTokenOf is scopedToken from client.
func scopedTokenOf(t testing.TB, e *env, client, scope, patient string) string {
	t.Helper()
	r := e.must(200, tokenForm(url.Values{"grant_type": {"password"}, "client_id": {client}, "client_secret": {"app-secret"},
		"username": {"u1"}, "password": {"u1-password-long"}, "scope": {scope}}))
	tok, _ := r.doc["access_token"].(string)
	if patient != "" {
		ss := e.must(200, get("/Session?user=u1&_sort=-_lastUpdated&_count=1"))
		ids := entryIDs(ss)
		if len(ids) != 1 {
			t.Fatalf("sessions: %s", ss.raw)
		}
		// Sessions are written by the token endpoint only: the test writes the launch
		// context as the server, until a launch sets it.
		ctx := resources.WithTrusted(context.Background())
		cur, err := e.svc.Read(ctx, "Session", ids[0])
		if err != nil {
			t.Fatal(err)
		}
		var doc map[string]any
		if err := json.Unmarshal(cur.Content, &doc); err != nil {
			t.Fatal(err)
		}
		doc["patient"] = map[string]any{"resourceType": "Patient", "id": patient}
		if _, _, err := e.svc.Update(ctx, "Session", ids[0], doc, ""); err != nil {
			t.Fatal(err)
		}
	}
	return tok
}

// Issue 16, enforcement: a token's scopes narrow what the policies allow; patient/ scopes
// confine reads, searches (totals included) and writes to the patient's compartment.
func TestScopesNarrowPolicies(t *testing.T) {
	forEachBackend(t, testScopesNarrowPolicies)
}

func testScopesNarrowPolicies(t *testing.T) {
	e := scopeEnv(t)
	// p3 links to p1: in p1's compartment (R4 Patient compartment: Patient.link).
	e.must(201, put("/fhir/Patient/p3", `{"resourceType":"Patient","name":[{"family":"Famp3"}],"link":[{"other":{"reference":"Patient/p1"},"type":"seealso"}]}`))
	pat := scopedToken(t, e, "patient/*.rs", "p1")
	noPatient := scopedToken(t, e, "patient/*.rs", "")
	userObs := scopedToken(t, e, "user/Observation.rs", "")
	vitals := scopedToken(t, e, "patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|vital-signs patient/Patient.r", "p1")
	writer := scopedToken(t, e, "patient/Observation.cruds patient/Patient.rs", "p1")
	unscoped := scopedToken(t, e, "", "")
	// A JWT's own scope claim decides, as signed.
	jwtPat := scopedTokenOf(t, e, "appjwt", "patient/*.rs", "p1")
	if strings.Count(jwtPat, ".") != 2 {
		t.Fatalf("not a JWT: %s", jwtPat)
	}

	type tc struct {
		name   string
		tok    *string
		r      req
		status int
		ids    []string // the search's matches, sorted; nil: not checked
		total  int      // checked when ids is not nil
	}
	cases := []tc{
		{"patient scope reads its patient", &pat, get("/fhir/Patient/p1"), 200, nil, 0},
		{"a JWT's patient scope filters too", &jwtPat, get("/fhir/Observation"), 200, []string{"o1", "o3", "o4"}, 3},
		{"a JWT's patient scope refuses", &jwtPat, get("/fhir/Patient/p2"), 403, nil, 0},
		{"patient scope refuses another patient", &pat, get("/fhir/Patient/p2"), 403, nil, 0},
		{"patient scope reads an observation by subject", &pat, get("/fhir/Observation/o1"), 200, nil, 0},
		{"patient scope reads an observation by performer", &pat, get("/fhir/Observation/o3"), 200, nil, 0},
		{"patient scope refuses another's observation", &pat, get("/fhir/Observation/o2"), 403, nil, 0},
		{"patient scope refuses another's observation version", &pat, get("/fhir/Observation/o2/_history/1"), 403, nil, 0},
		{"patient scope refuses another's observation history", &pat, get("/fhir/Observation/o2/_history"), 403, nil, 0},
		{"patient scope reads its observation history", &pat, get("/fhir/Observation/o1/_history"), 200, nil, 0},
		{"patient scope refuses type history", &pat, get("/fhir/Observation/_history"), 403, nil, 0},
		{"types outside the compartment are not confined", &pat, get("/fhir/Practitioner/d1"), 200, nil, 0},
		{"search is filtered to the compartment", &pat, get("/fhir/Observation"), 200, []string{"o1", "o3", "o4"}, 3},
		{"search of patients is filtered", &pat, get("/fhir/Patient"), 200, []string{"p1", "p3"}, 2},
		{"a patient linking to the compartment's", &pat, get("/fhir/Patient?family=Famp3"), 200, []string{"p3"}, 1},
		{"a patient outside it, by name", &pat, get("/fhir/Patient?family=Famp2"), 200, []string{}, 0},
		{"patients in the compartment, a page at a time", &pat, get("/fhir/Patient?_count=1&_total=accurate"), 200, []string{"p3"}, 2},
		// o3 is p1's (performer) but its subject is p2: a chain must not tell p2's name.
		{"a _list beyond the compartment is refused as its read", &pat, get("/fhir/Observation?_list=l2"), 403, nil, 0},
		{"a _list in the compartment filters", &pat, get("/fhir/Observation?_list=l1"), 200, []string{"o1"}, 1},
		{"a chain does not look beyond the compartment", &pat, get("/fhir/Observation?subject:Patient.family=Famp2"), 200, []string{}, 0},
		{"a chain within the compartment", &pat, get("/fhir/Observation?subject:Patient.family=Famp1"), 200, []string{"o1", "o4"}, 2},
		{"an unconfined chain finds it", &userObs, get("/fhir/Observation?subject:Patient.family=Famp2"), 403, nil, 0},
		{"an include never adds what the scopes do not reach", &pat, get("/fhir/Observation?_include=Observation:subject"), 200, []string{"o1", "o3", "o4", "p1"}, 3},
		{"a revinclude likewise", &pat, get("/fhir/Patient?_revinclude=Observation:subject"), 200, []string{"o1", "o4", "p1", "p3"}, 2},
		// Searches by _id: each match checked as its read is (Service.run), or in the
		// statement when the ids fill the page or a qualifier narrows the grant.
		{"a search by _id is filtered", &pat, get("/fhir/Observation?_id=o1,o2,o3"), 200, []string{"o1", "o3"}, 2},
		{"a search by _id outside is empty, not refused", &pat, get("/fhir/Observation?_id=o2"), 200, []string{}, 0},
		{"a search by _id filters before its includes", &pat, get("/fhir/Observation?_id=o1,o2&_include=Observation:encounter"), 200, []string{"o1"}, 1},
		{"a search by _id of patients", &pat, get("/fhir/Patient?_id=p1,p2,p3"), 200, []string{"p1", "p3"}, 2},
		{"a search by _id that fills its page", &pat, get("/fhir/Observation?_id=o1,o2&_count=2&_total=accurate"), 200, []string{"o1"}, 1},
		{"a search by _id under a qualifier", &vitals, get("/fhir/Observation?_id=o1,o2,o4"), 200, []string{"o1"}, 1},
		{"search for another patient's data is empty, not refused", &pat, get("/fhir/Observation?subject=Patient/p2&performer:missing=true"), 200, []string{}, 0},
		{"POST _search is filtered", &pat, post("/fhir/Encounter/_search", "", "Content-Type", "application/x-www-form-urlencoded"), 200, []string{"e1"}, 1},
		{"system search is filtered", &pat, get("/fhir/?_type=Patient,Encounter"), 200, []string{"e1", "p1", "p3"}, 3},
		{"read scopes do not write", &pat, put("/fhir/Observation/o1", `{"resourceType":"Observation","status":"final","code":{"text":"y"},"subject":{"reference":"Patient/p1"}}`), 403, nil, 0},
		{"patient scope without a patient reaches nothing", &noPatient, get("/fhir/Observation"), 200, []string{}, 0},
		{"patient scope without a patient reads nothing", &noPatient, get("/fhir/Patient/p1"), 403, nil, 0},
		{"user scope reaches what the policies do", &userObs, get("/fhir/Observation"), 200, []string{"o1", "o2", "o3", "o4"}, 4},
		{"user scope names its types only", &userObs, get("/fhir/Patient/p1"), 403, nil, 0},
		{"user scope does not search other types", &userObs, get("/fhir/Patient"), 403, nil, 0},
		{"a qualifier narrows the search", &vitals, get("/fhir/Observation"), 200, []string{"o1"}, 1},
		{"a qualifier narrows reads", &vitals, get("/fhir/Observation/o4"), 403, nil, 0},
		{"a qualified read", &vitals, get("/fhir/Observation/o1"), 200, nil, 0},
		{"r without s does not search", &vitals, get("/fhir/Patient"), 403, nil, 0},
		{"writer creates in the compartment", &writer, post("/fhir/Observation", `{"resourceType":"Observation","status":"final","code":{"text":"w"},"subject":{"reference":"Patient/p1"}}`), 201, nil, 0},
		{"writer cannot create outside it", &writer, post("/fhir/Observation", `{"resourceType":"Observation","status":"final","code":{"text":"w"},"subject":{"reference":"Patient/p2"}}`), 403, nil, 0},
		{"writer cannot move a resource out", &writer, put("/fhir/Observation/o4", `{"resourceType":"Observation","status":"final","code":{"text":"w"},"subject":{"reference":"Patient/p2"}}`), 403, nil, 0},
		{"writer cannot take one in", &writer, put("/fhir/Observation/o2", `{"resourceType":"Observation","status":"final","code":{"text":"w"},"subject":{"reference":"Patient/p1"}}`), 403, nil, 0},
		{"writer cannot delete another's", &writer, del("/fhir/Observation/o2"), 403, nil, 0},
		{"writer updates its own", &writer, put("/fhir/Observation/o4", `{"resourceType":"Observation","status":"amended","code":{"text":"w"},"subject":{"reference":"Patient/p1"}}`), 200, nil, 0},
		{"writer cannot write other types", &writer, put("/fhir/Encounter/e1", `{"resourceType":"Encounter","status":"finished","class":{"code":"AMB"},"subject":{"reference":"Patient/p1"}}`), 403, nil, 0},
		{"a transaction entry outside the compartment fails the transaction", &writer, post("/fhir/", `{"resourceType":"Bundle","type":"transaction","entry":[
			{"resource":{"resourceType":"Observation","status":"final","code":{"text":"t"},"subject":{"reference":"Patient/p1"}},"request":{"method":"POST","url":"Observation"}},
			{"resource":{"resourceType":"Observation","status":"final","code":{"text":"t"},"subject":{"reference":"Patient/p2"}},"request":{"method":"POST","url":"Observation"}}]}`), 403, nil, 0},
		{"a batch entry outside the compartment fails alone", &writer, post("/fhir/", `{"resourceType":"Bundle","type":"batch","entry":[
			{"request":{"method":"GET","url":"Observation/o2"}},
			{"request":{"method":"GET","url":"Encounter/e1"}},
			{"request":{"method":"GET","url":"Observation/o1"}}]}`), 200, nil, 0},
		{"a conditional update does not reach beyond", &writer, put("/fhir/Observation?_id=o2", `{"resourceType":"Observation","status":"final","code":{"text":"c"},"subject":{"reference":"Patient/p1"}}`), 201, nil, 0},
		{"no resource scope: the policies decide", &unscoped, get("/fhir/Observation"), 200, nil, 0},
		{"the wildcard does not reach fhirbox's own types", &pat, get("/Client/app"), 403, nil, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.in(t).do(bearer(*c.tok, c.r))
			if r.status != c.status {
				t.Fatalf("%s %s: status %d, want %d: %s", c.r.method, c.r.path, r.status, c.status, r.raw)
			}
			if c.status == 403 && !strings.Contains(string(r.raw), "scope") && !strings.Contains(string(r.raw), "access policy") {
				t.Errorf("refusal does not say why: %s", r.raw)
			}
			if c.r.path == "/fhir/" && r.status == 200 {
				var got []string
				for i := range 3 {
					st, _ := at(r.doc, "entry", i, "response", "status").(string)
					got = append(got, st[:3])
				}
				if !slices.Equal(got, []string{"403", "403", "200"}) {
					t.Errorf("batch statuses %v: %s", got, r.raw)
				}
			}
			if c.ids == nil {
				return
			}
			got := entryIDs(r)
			slices.Sort(got)
			if got == nil {
				got = []string{}
			}
			if !slices.Equal(got, c.ids) {
				t.Errorf("matches %v, want %v: %s", got, c.ids, r.raw)
			}
			if tot, _ := r.doc["total"].(float64); int(tot) != c.total {
				t.Errorf("total %v, want %d", r.doc["total"], c.total)
			}
		})
	}
}

// templateEnv is scopeEnv with the shipped template patient-own-compartment stored
// instead of u1's policy, and a User pat1 who is patient p1.
func templateEnv(t *testing.T) *env {
	e := scopeEnv(t)
	e.must(200, del("/AccessPolicy/u1-fhir"))
	tpl, err := accesspolicy.Template("patient-own-compartment")
	if err != nil {
		t.Fatal(err)
	}
	e.must(201, yamlPut("/AccessPolicy/patient-own-compartment", string(tpl)))
	e.must(201, put("/User/pat1", `{"password":"pat1-password-long","fhirUser":{"reference":"Patient/p1"}}`))
	return e
}

// Issue 16: the shipped template patient-own-compartment lets a User read the
// compartment of the Patient its record names, searches filtered — and a User whose
// record names several patients (compartment.id a list) reaches each of theirs.
func TestPolicyCompartmentTemplate(t *testing.T) {
	forEachBackend(t, testPolicyCompartmentTemplate)
}

func testPolicyCompartmentTemplate(t *testing.T) {
	e := templateEnv(t)
	e.must(201, put("/User/parent", `{"password":"parent-password-long","data":{"patients":[{"reference":"Patient/p1"},{"reference":"Patient/p2"}]}}`))
	e.must(201, yamlPut("/AccessPolicy/parent-children", "engine: matcho\nlink: [{resourceType: User, id: parent}]\nmatcho: {request-method: get, uri: '#^/fhir/'}\ncompartment: {type: Patient, id: .user.data.patients}\n"))
	e.must(201, put("/User/nobody", `{"password":"nobody-password-long"}`))
	login := func(user string) string {
		r := e.must(200, tokenForm(url.Values{"grant_type": {"password"}, "client_id": {"app"}, "client_secret": {"app-secret"},
			"username": {user}, "password": {user + "-password-long"}}))
		return r.doc["access_token"].(string)
	}
	pat1, parent, nobody := login("pat1"), login("parent"), login("nobody")

	cases := []struct {
		name   string
		tok    string
		r      req
		status int
		ids    []string
	}{
		{"own patient", pat1, get("/fhir/Patient/p1"), 200, nil},
		{"another patient", pat1, get("/fhir/Patient/p2"), 403, nil},
		{"own observations, filtered", pat1, get("/fhir/Observation"), 200, []string{"o1", "o3", "o4"}},
		{"patients, filtered", pat1, get("/fhir/Patient"), 200, []string{"p1"}},
		{"another's observation", pat1, get("/fhir/Observation/o2"), 403, nil},
		{"types outside the compartment", pat1, get("/fhir/Practitioner/d1"), 200, nil},
		{"the template allows no writes", pat1, put("/fhir/Observation/o1", `{"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/p1"}}`), 403, nil},
		{"several patients", parent, get("/fhir/Patient"), 200, []string{"p1", "p2"}},
		{"several patients' encounters", parent, get("/fhir/Encounter"), 200, []string{"e1", "e2"}},
		{"a user naming no patient is not allowed", nobody, get("/fhir/Patient"), 403, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.in(t).do(bearer(c.tok, c.r))
			if r.status != c.status {
				t.Fatalf("%s %s: status %d, want %d: %s", c.r.method, c.r.path, r.status, c.status, r.raw)
			}
			if c.ids == nil {
				return
			}
			got := entryIDs(r)
			slices.Sort(got)
			if !slices.Equal(got, c.ids) {
				t.Errorf("matches %v, want %v", got, c.ids)
			}
			if tot, _ := r.doc["total"].(float64); int(tot) != len(c.ids) {
				t.Errorf("total %v, want %d", r.doc["total"], len(c.ids))
			}
		})
	}
}

// Issue 17: Patient $everything is the patient's compartment, paged as a search, with
// what it refers to included; confined callers get what they reach.
func TestPatientEverything(t *testing.T) { forEachBackend(t, testPatientEverything) }

func testPatientEverything(t *testing.T) {
	e := scopeEnv(t)
	e.must(200, put("/fhir/Encounter/e1", `{"resourceType":"Encounter","status":"finished","class":{"code":"AMB"},"subject":{"reference":"Patient/p1"},"participant":[{"individual":{"reference":"Practitioner/d1"}}]}`))
	pat := scopedToken(t, e, "patient/*.rs", "p1")
	split := func(r *resp) (match, include []string) {
		entries, _ := r.doc["entry"].([]any)
		for _, en := range entries {
			m, _ := en.(map[string]any)
			res, _ := m["resource"].(map[string]any)
			mode, _ := at(m, "search", "mode").(string)
			k := fmt.Sprint(res["resourceType"], "/", res["id"])
			switch mode {
			case "match":
				match = append(match, k)
			case "include":
				include = append(include, k)
			}
		}
		slices.Sort(match)
		slices.Sort(include)
		return match, include
	}
	all := []string{"Encounter/e1", "List/l1", "Observation/o1", "Observation/o3", "Observation/o4", "Patient/p1"}
	r := e.must(200, get("/fhir/Patient/p1/$everything"))
	match, include := split(r)
	if !slices.Equal(match, all) || r.doc["total"] != float64(6) {
		t.Errorf("matches %v (total %v), want %v", match, r.doc["total"], all)
	}
	if !slices.Contains(include, "Practitioner/d1") {
		t.Errorf("includes %v lack the encounter's practitioner", include)
	}
	if self := link(r, "self"); !strings.HasSuffix(self, "/fhir/Patient/p1/$everything") {
		t.Errorf("self link %q", self)
	}
	r = e.must(200, get("/fhir/Patient/p1/$everything?_type=Encounter"))
	if match, _ := split(r); !slices.Equal(match, []string{"Encounter/e1"}) {
		t.Errorf("_type=Encounter: %v", match)
	}
	r = e.must(200, get("/fhir/Patient/p1/$everything?_since=2999-01-01T00:00:00Z"))
	if match, _ := split(r); len(match) != 0 {
		t.Errorf("_since in the future: %v", match)
	}
	e.must(400, get("/fhir/Patient/p1/$everything?start=2020-01-01"))
	e.must(400, get("/fhir/Patient/p1/$everything?_type=Practitioner"))
	e.must(404, get("/fhir/Patient/nobody/$everything"))
	e.must(404, get("/fhir/Observation/o1/$everything"))

	// Paging: every match once, whatever the page size.
	var seen []string
	next := "/fhir/Patient/p1/$everything?_count=2"
	for i := 0; next != "" && i < 10; i++ {
		r := e.must(200, get(next))
		m, _ := split(r)
		seen = append(seen, m...)
		next = strings.TrimPrefix(link(r, "next"), testBase)
	}
	slices.Sort(seen)
	if !slices.Equal(seen, all) {
		t.Errorf("pages held %v, want %v", seen, all)
	}

	// A patient-scoped token: its own patient's everything, never another's.
	r = e.must(200, bearer(pat, get("/fhir/Patient/p1/$everything")))
	match, include = split(r)
	if !slices.Equal(match, all) || slices.Contains(include, "Patient/p2") {
		t.Errorf("scoped: matches %v, includes %v", match, include)
	}
	e.must(403, bearer(pat, get("/fhir/Patient/p2/$everything")))
	r = e.must(200, bearer(pat, get("/fhir/Patient/$everything")))
	if match, _ := split(r); !slices.Equal(match, all) {
		t.Errorf("scoped type-level: %v", match)
	}
	// The type level for an unconfined caller: every patient's compartment.
	r = e.must(200, get("/fhir/Patient/$everything?_type=Patient"))
	if match, _ := split(r); !slices.Equal(match, []string{"Patient/p1", "Patient/p2"}) {
		t.Errorf("type-level: %v", match)
	}
}

// A probe that a compartment policy allows is confined as its request would be: a
// policy that allows Observations whole does not let includes, chains, a system-level
// search or a batch entry reach a Patient that the compartment policy keeps out.
func TestProbesKeepTheirCompartments(t *testing.T) {
	forEachBackend(t, testProbesKeepTheirCompartments)
}

func testProbesKeepTheirCompartments(t *testing.T) {
	e := templateEnv(t)
	e.must(201, yamlPut("/AccessPolicy/pat1-observations", "engine: matcho\nlink: [{resourceType: User, id: pat1}]\nmatcho: {request-method: get, uri: '#^/fhir/Observation'}\n"))
	e.must(201, yamlPut("/AccessPolicy/pat1-batch", "engine: matcho\nlink: [{resourceType: User, id: pat1}]\nmatcho: {request-method: post, uri: /fhir/}\n"))
	r := e.must(200, tokenForm(url.Values{"grant_type": {"password"}, "client_id": {"app"}, "client_secret": {"app-secret"},
		"username": {"pat1"}, "password": {"pat1-password-long"}}))
	tok := r.doc["access_token"].(string)

	// Every observation (the whole-type policy), but only p1 among the included patients.
	r = e.must(200, bearer(tok, get("/fhir/Observation?_include=Observation:subject")))
	got := entryIDs(r)
	slices.Sort(got)
	if !slices.Equal(got, []string{"o1", "o2", "o3", "o4", "p1"}) {
		t.Errorf("include: %v", got)
	}
	// A chain into Patient sees p1 only: p2's name stays unknown.
	r = e.must(200, bearer(tok, get("/fhir/Observation?subject:Patient.family=Famp2")))
	if ids := entryIDs(r); len(ids) != 0 {
		t.Errorf("chain to p2's name: %v", ids)
	}
	r = e.must(200, bearer(tok, get("/fhir/Observation?subject:Patient.family=Famp1")))
	if ids := entryIDs(r); len(ids) != 2 {
		t.Errorf("chain to p1's name: %v", ids)
	}
	// The system level: Patients as their own decision confines them.
	r = e.must(200, bearer(tok, get("/fhir/?_type=Patient")))
	if ids := entryIDs(r); !slices.Equal(ids, []string{"p1"}) {
		t.Errorf("system search of patients: %v", ids)
	}
	// A batch: each entry as its own request.
	r = e.must(200, bearer(tok, post("/fhir/", `{"resourceType":"Bundle","type":"batch","entry":[
		{"request":{"method":"GET","url":"Patient/p2"}},
		{"request":{"method":"GET","url":"Patient/p1"}},
		{"request":{"method":"GET","url":"Observation/o2"}}]}`)))
	var statuses []string
	for i := range 3 {
		st, _ := at(r.doc, "entry", i, "response", "status").(string)
		statuses = append(statuses, strings.Fields(st + " ?")[0])
	}
	if !slices.Equal(statuses, []string{"403", "200", "200"}) {
		t.Errorf("batch statuses %v: %s", statuses, r.raw)
	}
}
