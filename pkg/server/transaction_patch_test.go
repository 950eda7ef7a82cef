package server_test

import (
	"encoding/base64"
	"strings"
	"testing"
)

// PATCH entries (a Parameters is a FHIRPath Patch, a Binary carries a JSON Patch),
// conditional updates — whose fullUrl the other entries' references resolve to, the
// resource matched or the one created — and conditional deletes, in a transaction
// (conformance F30, F31, F43). A failing patch fails the whole.
func TestTransactionPatchAndConditional(t *testing.T) {
	forEachBackend(t, testTransactionPatchAndConditional)
}

func testTransactionPatchAndConditional(t *testing.T) {
	e := newEnv(t)
	e.must(201, put("/fhir/Patient/pp", `{"resourceType":"Patient","name":[{"family":"Before"}]}`))
	e.must(201, put("/fhir/Patient/pj", `{"resourceType":"Patient","name":[{"family":"Before"}]}`))
	e.must(201, put("/fhir/Patient/cu", `{"resourceType":"Patient","identifier":[{"system":"urn:sys","value":"c1"}]}`))
	e.must(201, put("/fhir/Patient/gone", `{"resourceType":"Patient","identifier":[{"system":"urn:sys","value":"del"}]}`))
	jsonPatch := base64.StdEncoding.EncodeToString([]byte(`[{"op":"replace","path":"/name/0/family","value":"Json"}]`))
	fhirPatch := `{"resourceType":"Parameters","parameter":[{"name":"operation","part":[{"name":"type","valueCode":"replace"},
		{"name":"path","valueString":"Patient.name[0].family"},{"name":"value","valueString":"Fhirpath"}]}]}`
	body := bundleBody(t, "transaction",
		txEntry{method: "PATCH", url: "Patient/pp", resource: fhirPatch},
		txEntry{method: "PATCH", url: "Patient/pj", resource: `{"resourceType":"Binary","contentType":"application/json-patch+json","data":"` + jsonPatch + `"}`},
		txEntry{fullURL: "urn:uuid:c1", method: "PUT", url: "Patient?identifier=urn:sys|c1",
			resource: `{"resourceType":"Patient","identifier":[{"system":"urn:sys","value":"c1"}],"name":[{"family":"Matched"}]}`},
		txEntry{fullURL: "urn:uuid:new", method: "PUT", url: "Patient?identifier=urn:sys|new",
			resource: `{"resourceType":"Patient","identifier":[{"system":"urn:sys","value":"new"}],"name":[{"family":"Created"}]}`},
		txEntry{method: "POST", url: "Observation", resource: `{"resourceType":"Observation","status":"final","code":{"text":"a"},"subject":{"reference":"urn:uuid:c1"}}`},
		txEntry{method: "POST", url: "Observation", resource: `{"resourceType":"Observation","status":"final","code":{"text":"b"},"subject":{"reference":"urn:uuid:new"}}`},
		txEntry{method: "DELETE", url: "Patient?identifier=urn:sys|del"},
	)
	r := e.must(200, post("/fhir", body))
	want := []string{"200 OK", "200 OK", "200 OK", "201 Created", "201 Created", "201 Created", "200 OK"}
	for i, w := range want {
		if s := entryStatus(r, i); s != w {
			t.Errorf("entry %d: %q, want %q (%v)", i, s, w, at(r.doc, "entry", i, "response"))
		}
	}
	for id, family := range map[string]string{"pp": "Fhirpath", "pj": "Json", "cu": "Matched"} {
		if got := at(e.must(200, get("/fhir/Patient/"+id)).doc, "name", 0, "family"); got != family {
			t.Errorf("Patient/%s family %v, want %s", id, got, family)
		}
	}
	created, _ := at(r.doc, "entry", 3, "resource", "id").(string)
	if created == "" || created == "cu" {
		t.Fatalf("the unmatched conditional update made no new Patient: %v", at(r.doc, "entry", 3))
	}
	for i, want := range map[int]string{4: "Patient/cu", 5: "Patient/" + created} {
		if got := at(r.doc, "entry", i, "resource", "subject", "reference"); got != want {
			t.Errorf("entry %d subject %v, want %s", i, got, want)
		}
	}
	e.must(410, get("/fhir/Patient/gone"))

	// A patch whose test fails fails the transaction: the update before it is undone.
	failing := base64.StdEncoding.EncodeToString([]byte(`[{"op":"test","path":"/name/0/family","value":"Nope"}]`))
	r = e.do(post("/fhir", bundleBody(t, "transaction",
		txEntry{method: "PUT", url: "Patient?identifier=urn:sys|c1",
			resource: `{"resourceType":"Patient","identifier":[{"system":"urn:sys","value":"c1"}],"name":[{"family":"Undone"}]}`},
		txEntry{method: "PATCH", url: "Patient/pj", resource: `{"resourceType":"Binary","contentType":"application/json-patch+json","data":"` + failing + `"}`},
	)))
	if r.status < 400 || r.status >= 500 {
		t.Fatalf("failing patch: %d %s", r.status, r.raw)
	}
	if msg := outcomeText(t, r); !strings.Contains(msg, "entry 1") {
		t.Errorf("the failure does not name the entry: %s", msg)
	}
	if got := at(e.must(200, get("/fhir/Patient/cu")).doc, "name", 0, "family"); got != "Matched" {
		t.Errorf("the conditional update of a failed transaction was kept: %v", got)
	}

	// Bodies a PATCH entry cannot take.
	for _, res := range []string{
		`{"resourceType":"Patient"}`,
		`{"resourceType":"Binary","contentType":"text/plain","data":"eA=="}`,
		`{"resourceType":"Binary","contentType":"application/json-patch+json","data":"not base64!"}`,
	} {
		r := e.do(post("/fhir", bundleBody(t, "transaction", txEntry{method: "PATCH", url: "Patient/pj", resource: res})))
		if r.status != 400 {
			t.Errorf("PATCH entry with %s: %d %s, want 400", res, r.status, r.raw)
		}
	}
}

// A transaction entry whose resource is not valid R4 fails the transaction with one issue
// per problem, each located in the Bundle (conformance F41, V1).
func TestTransactionValidationIssues(t *testing.T) {
	forEachBackend(t, testTransactionValidationIssues)
}

func testTransactionValidationIssues(t *testing.T) {
	e := newEnv(t)
	r := e.do(post("/fhir", bundleBody(t, "transaction",
		txEntry{method: "POST", url: "Patient", resource: `{"resourceType":"Patient","name":[{"family":"Fine"}]}`},
		txEntry{method: "POST", url: "Patient", resource: `{"resourceType":"Patient","gender":"not-a-gender","birthDate":"1970-13-45"}`},
	)))
	if r.status != 422 {
		t.Fatalf("invalid entry: %d %s", r.status, r.raw)
	}
	issues, _ := at(r.doc, "issue").([]any)
	var exprs []string
	for _, is := range issues {
		ex, _ := at(is, "expression", 0).(string)
		exprs = append(exprs, ex)
	}
	want := map[string]bool{"Bundle.entry[1].resource.gender": false, "Bundle.entry[1].resource.birthDate": false}
	for _, ex := range exprs {
		if _, ok := want[ex]; ok {
			want[ex] = true
		}
	}
	for ex, seen := range want {
		if !seen {
			t.Errorf("no issue at %s: %v (%s)", ex, exprs, r.raw)
		}
	}
	if n := e.total("/fhir/Patient?family=Fine"); n != 0 {
		t.Errorf("the valid entry of a failed transaction was stored")
	}
}
