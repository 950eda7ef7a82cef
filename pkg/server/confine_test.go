package server_test

import (
	"net/http"
	"strings"
	"testing"
)

// ownTypes are fhirbox's own resource types (resources/searchparams.yaml "own").
var ownTypes = []string{"Client", "User", "Session", "AccessPolicy", "AuthorizationCode", "LaunchContext"}

// Issue 12 item 9: fhirbox's own types are served at / only, so a client whose one
// policy is uri '#^/fhir/' reads clinical data and nothing of Client, User, Session or
// AccessPolicy, by any route: under /fhir they are 404, at / the policy does not match.
func TestFHIRBaseConfinesToClinicalData(t *testing.T) {
	forEachBackend(t, testFHIRBaseConfinesToClinicalData)
}

func testFHIRBaseConfinesToClinicalData(t *testing.T) {
	e := newEnv(t)
	e.must(201, put("/Client/clin", `{"secret":"clin-secret","grant_types":["basic"]}`))
	e.must(201, yamlPut("/AccessPolicy/clin-fhir", "engine: matcho\nlink: [{resourceType: Client, id: clin}]\nmatcho: {uri: '#^/fhir/'}\n"))
	e.must(201, put("/User/u1", `{"password":"u1-password-long"}`))
	e.must(201, put("/fhir/Patient/p1", `{"resourceType":"Patient"}`))
	clin := func(r req) req { return as("clin", "clin-secret", r) }

	e.must(200, clin(get("/fhir/Patient/p1")))
	if r := e.must(200, clin(get("/fhir/Patient"))); len(entryIDs(r)) != 1 {
		t.Errorf("/fhir/Patient: %s", r.raw)
	}

	e.must(201, put("/LaunchContext/l1", `{"patient":{"reference":"Patient/p1"}}`))
	ids := map[string]string{"Client": "clin", "User": "u1", "AccessPolicy": "clin-fhir", "Session": "s1", "AuthorizationCode": "c1", "LaunchContext": "l1"}
	for _, typ := range ownTypes {
		id := ids[typ]
		routes := []req{
			get("/" + typ + "/" + id),
			get("/" + typ + "/" + id + "/_history/1"),
			get("/" + typ + "/" + id + "/_history"),
			get("/" + typ),
			get("/" + typ + "?_id=" + id),
			get("/" + typ + "/_history"),
			post("/"+typ+"/_search", "_id="+id, "Content-Type", "application/x-www-form-urlencoded"),
			post("/"+typ, `{"resourceType":"`+typ+`"}`),
			put("/"+typ+"/x1", `{"resourceType":"`+typ+`"}`),
			del("/" + typ + "/" + id),
			{method: http.MethodHead, path: "/" + typ + "/" + id},
		}
		for _, base := range []string{"/fhir", ""} {
			for _, rt := range routes {
				rt.path = base + rt.path
				t.Run(rt.method+" "+rt.path, func(t *testing.T) {
					r := e.in(t).do(clin(rt))
					want := http.StatusForbidden
					if base == "/fhir" {
						want = http.StatusNotFound
					}
					if r.status != want {
						t.Fatalf("status %d, want %d: %s", r.status, want, r.raw)
					}
					if strings.Contains(string(r.raw), `"resourceType":"`+typ+`"`) || strings.Contains(string(r.raw), `"id":"`+id+`"`) {
						t.Errorf("answer carries %s data: %s", typ, r.raw)
					}
					if base == "/fhir" && rt.method != http.MethodHead && !strings.Contains(outcomeText(t, r), "served at /"+typ) {
						t.Errorf("404 does not say where %s is served: %s", typ, r.raw)
					}
				})
			}
		}
	}
	// System-level searches and history under /fhir answer FHIR types only: /fhir/ and
	// /fhir/_history (which the policy's uri matches) find the Patient and nothing of
	// fhirbox's own types; naming one is a 400; /fhir itself is no uri the policy allows.
	for _, rt := range []req{get("/fhir"), get("/fhir/"), get("/fhir/_history"), get("/fhir?_type=Client"),
		get("/fhir/?_type=Client,Patient"), get("/fhir/?_id=" + adminID + ",clin,clin-fhir,u1"),
		post("/fhir", `{"resourceType":"Bundle","type":"batch"}`), post("/fhir/_search", "_type=Client", "Content-Type", "application/x-www-form-urlencoded")} {
		r := e.in(t).do(clin(rt))
		for _, typ := range ownTypes {
			if strings.Contains(string(r.raw), `"resourceType":"`+typ+`"`) {
				t.Errorf("%s %s answers %s data: %d %s", rt.method, rt.path, typ, r.status, r.raw)
			}
		}
		if served := rt.method == http.MethodGet && (rt.path == "/fhir/" || rt.path == "/fhir/_history"); served && (r.status != 200 || len(entryIDs(r)) != 1) {
			t.Errorf("GET %s: %d %s", rt.path, r.status, r.raw)
		} else if !served && r.status < 400 && len(entryIDs(r)) > 0 {
			t.Errorf("%s %s: %d %s", rt.method, rt.path, r.status, r.raw)
		}
	}

	// The admin too: the types are not under /fhir for anyone.
	r := e.must(404, get("/fhir/Client/"+adminID))
	if !strings.Contains(outcomeText(t, r), "served at /Client") {
		t.Errorf("404 does not say where Client is served: %s", r.raw)
	}
	e.must(200, get("/Client/"+adminID))

	// The FHIR base's CapabilityStatement lists FHIR types only; fhirbox's base lists all.
	listed := func(path string) map[string]bool {
		got := map[string]bool{}
		res, _ := at(e.must(200, get(path)).doc, "rest", 0, "resource").([]any)
		for _, r := range res {
			got[at(r, "type").(string)] = true
		}
		return got
	}
	fhirTypes, allTypes := listed("/fhir/metadata"), listed("/metadata")
	if !fhirTypes["Patient"] || !allTypes["Patient"] {
		t.Error("Patient missing from a CapabilityStatement")
	}
	for _, typ := range ownTypes {
		if fhirTypes[typ] {
			t.Errorf("/fhir/metadata lists %s", typ)
		}
		if !allTypes[typ] {
			t.Errorf("/metadata does not list %s", typ)
		}
	}
}
