package server_test

import (
	"strings"
	"testing"

	"github.com/fhirbox/fhirbox/pkg/app"
	"github.com/fhirbox/fhirbox/resources"
)

func withConditionalDelete(o resources.ConditionalDeleteOptions) envOption {
	return func(c *app.Config) { c.ConditionalDelete = o }
}

func identified(id, value string) string {
	body := `{"resourceType":"Patient","identifier":[{"system":"urn:s","value":"` + value + `"}]`
	if id != "" {
		body += `,"id":"` + id + `"`
	}
	return body + `}`
}

// Conditional update, patch and delete with 0, 1 and several matches (conformance F31),
// on both bases; criteria that cannot select (none, unknown, result-shaping) are 400
// and write nothing.
func TestConditionalWrites(t *testing.T) { forEachBackend(t, testConditionalWrites) }

func testConditionalWrites(t *testing.T) {
	e := newEnv(t)
	// Update: no match creates under a new id, then the same criteria update it.
	r := e.must(201, put("/fhir/Patient?identifier=urn:s|one", identified("", "one")))
	id, _ := at(r.doc, "id").(string)
	if id == "" || !strings.Contains(r.header.Get("Location"), "/fhir/Patient/"+id+"/_history/1") {
		t.Fatalf("create: id %q, Location %q", id, r.header.Get("Location"))
	}
	r = e.must(200, put("/fhir/Patient?identifier=urn:s|one", `{"resourceType":"Patient","active":true,"identifier":[{"system":"urn:s","value":"one"}]}`))
	if at(r.doc, "id") != id || at(r.doc, "meta", "versionId") != "2" {
		t.Errorf("update hit %v version %v, want %s version 2", at(r.doc, "id"), at(r.doc, "meta", "versionId"), id)
	}
	e.must(412, put("/fhir/Patient?identifier=urn:s|one", identified("", "one"), "If-Match", `W/"1"`))
	e.must(200, put("/fhir/Patient?identifier=urn:s|one", identified("", "one"), "If-Match", `W/"2"`))
	r = e.must(400, put("/fhir/Patient?identifier=urn:s|one", identified("someone-else", "one")))
	if !strings.Contains(outcomeText(t, r), "not the id of the Patient the criteria match") {
		t.Errorf("body id mismatch: %s", r.raw)
	}
	// No match, with an id in the body: created there; a live resource there is a conflict.
	e.must(201, put("/fhir/Patient?identifier=urn:s|two", identified("cu-two", "two")))
	e.must(200, get("/fhir/Patient/cu-two"))
	e.must(201, put("/fhir/Patient/cu-taken", identified("", "taken")))
	e.must(409, put("/fhir/Patient?identifier=urn:s|nobody", identified("cu-taken", "nobody")))
	// Several matches.
	e.must(201, post("/fhir/Patient", identified("", "dup")))
	e.must(201, post("/fhir/Patient", identified("", "dup")))
	e.must(412, put("/fhir/Patient?identifier=urn:s|dup", identified("", "dup")))
	// fhirbox's own base takes them too.
	e.must(201, put("/Patient?identifier=urn:s|own", identified("", "own")))
	e.must(200, put("/Patient?identifier=urn:s|own&_format=json", identified("", "own")))

	bad := []struct{ query, msg string }{
		{"", "has no search criteria"},
		{"?_format=json", "has no search criteria"},
		{"?identifier=urn:s|one&nonsense=1", "nonsense"},
		{"?identifier=urn:s|one&_count=1", "shapes search results"},
		{"?identifier=urn:s|one&_sort=birthdate", "shapes search results"},
		{"?birthdate=not-a-date", "birthdate"},
	}
	for _, b := range bad {
		for _, r := range []req{
			put("/fhir/Patient"+b.query, identified("", "bad")),
			patch("/fhir/Patient"+b.query, "application/merge-patch+json", `{"active":false}`),
			del("/fhir/Patient" + b.query),
		} {
			got := e.do(r)
			if got.status != 400 || !strings.Contains(outcomeText(t, got), b.msg) {
				t.Errorf("%s %s: %d %s; want 400 saying %q", r.method, r.path, got.status, got.raw, b.msg)
			}
		}
	}
	if r := e.must(200, get("/fhir/Patient?identifier=urn:s|bad")); at(r.doc, "total") != float64(0) {
		t.Errorf("a refused conditional write stored something: %s", r.raw)
	}

	// Patch: 0 → 404, 1 → patched, several → 412; _method is no criterion.
	e.must(404, patch("/fhir/Patient?identifier=urn:s|nobody", "application/merge-patch+json", `{"active":false}`))
	r = e.must(200, patch("/fhir/Patient?identifier=urn:s|one&_method=merge-patch", "application/json", `{"gender":"other"}`))
	if at(r.doc, "id") != id || at(r.doc, "gender") != "other" {
		t.Errorf("conditional patch: %s", r.raw)
	}
	e.must(412, patch("/fhir/Patient?identifier=urn:s|dup", "application/merge-patch+json", `{"active":false}`))

	// Delete (single, the default): 0 → 204, 1 → deleted, several → 412 and none deleted.
	e.must(204, del("/fhir/Patient?identifier=urn:s|nobody"))
	r = e.must(200, del("/fhir/Patient?identifier=urn:s|one"))
	if !strings.Contains(outcomeText(t, r), "deleted Patient/"+id) || r.header.Get("ETag") == "" {
		t.Errorf("conditional delete: %s %v", r.raw, r.header)
	}
	e.must(410, get("/fhir/Patient/"+id))
	r = e.must(412, del("/fhir/Patient?identifier=urn:s|dup"))
	if !strings.Contains(outcomeText(t, r), "single") {
		t.Errorf("412 does not say why: %s", r.raw)
	}
	if r := e.must(200, get("/fhir/Patient?identifier=urn:s|dup")); at(r.doc, "total") != float64(2) {
		t.Errorf("a refused conditional delete deleted something: %s", r.raw)
	}
	// The CapabilityStatement says so.
	r = e.must(200, get("/fhir/metadata"))
	res := at(r.doc, "rest", 0, "resource", 0)
	if at(res, "conditionalUpdate") != true || at(res, "conditionalDelete") != "single" || !strings.Contains(string(r.raw), `{"code":"patch"}`) {
		t.Errorf("CapabilityStatement: conditionalUpdate %v, conditionalDelete %v", at(res, "conditionalUpdate"), at(res, "conditionalDelete"))
	}
}

// FHIRBOX_CONDITIONAL_DELETE=multiple deletes every match up to its maximum, and past
// it refuses the whole request.
func TestConditionalDeleteMultiple(t *testing.T) { forEachBackend(t, testConditionalDeleteMultiple) }

func testConditionalDeleteMultiple(t *testing.T) {
	e := newEnv(t, withConditionalDelete(resources.ConditionalDeleteOptions{Multiple: true, Max: 3}))
	for i := 0; i < 3; i++ {
		e.must(201, post("/fhir/Patient", identified("", "three")))
	}
	for i := 0; i < 4; i++ {
		e.must(201, post("/fhir/Patient", identified("", "four")))
	}
	r := e.must(200, del("/fhir/Patient?identifier=urn:s|three"))
	if n := strings.Count(outcomeText(t, r), "Patient/"); n != 3 {
		t.Errorf("deleted %d, want 3: %s", n, r.raw)
	}
	if r := e.must(200, get("/fhir/Patient?identifier=urn:s|three")); at(r.doc, "total") != float64(0) {
		t.Errorf("left behind: %s", r.raw)
	}
	r = e.must(412, del("/fhir/Patient?identifier=urn:s|four"))
	if !strings.Contains(outcomeText(t, r), "more than 3") {
		t.Errorf("412 does not name the maximum: %s", r.raw)
	}
	if r := e.must(200, get("/fhir/Patient?identifier=urn:s|four")); at(r.doc, "total") != float64(4) {
		t.Errorf("a refused delete deleted some: %s", r.raw)
	}
	r = e.must(200, get("/fhir/metadata"))
	if v := at(r.doc, "rest", 0, "resource", 0, "conditionalDelete"); v != "multiple" {
		t.Errorf("conditionalDelete %v, want multiple", v)
	}
}

// Policies decide PATCH as its own method, and a conditional write only reaches a
// resource whose instance-level write the caller's policies allow.
func TestConditionalWritePolicies(t *testing.T) { forEachBackend(t, testConditionalWritePolicies) }

func testConditionalWritePolicies(t *testing.T) {
	e := newEnv(t)
	e.must(201, put("/Client/editor", `{"secret":"editor-secret","grant_types":["basic"]}`))
	// The editor may read, PUT and DELETE Patients whose id starts with mine-, and send
	// conditional writes at the type; not PATCH, not POST.
	e.must(201, yamlPut("/AccessPolicy/editor", `engine: matcho
link: [{resourceType: Client, id: editor}]
matcho:
  request-method: {$enum: [get, put, delete]}
  uri: '#^/fhir/Patient(/mine-[^/]*)?$'
`))
	e.must(201, put("/fhir/Patient/mine-1", identified("", "m1")))
	e.must(201, put("/fhir/Patient/other-1", identified("", "o1")))
	ed := func(r req) req { return as("editor", "editor-secret", r) }

	e.must(200, ed(put("/fhir/Patient/mine-1", identified("", "m1"))))
	r := e.must(403, ed(patch("/fhir/Patient/mine-1", "application/merge-patch+json", `{"active":true}`)))
	if !strings.Contains(outcomeText(t, r), "PATCH") {
		t.Errorf("403 does not name PATCH: %s", r.raw)
	}
	e.must(403, ed(patch("/fhir/Patient?identifier=urn:s|m1", "application/merge-patch+json", `{"active":true}`)))

	e.must(200, ed(put("/fhir/Patient?identifier=urn:s|m1", identified("", "m1"))))
	r = e.must(403, ed(put("/fhir/Patient?identifier=urn:s|o1", identified("", "o1"))))
	if !strings.Contains(outcomeText(t, r), "PUT /fhir/Patient/other-1") {
		t.Errorf("403 does not name the matched resource: %s", r.raw)
	}
	// A conditional update that would create: under a new id it is a POST, which the
	// editor may not send; under an id of its own it is a PUT of that id.
	e.must(403, ed(put("/fhir/Patient?identifier=urn:s|new", identified("", "new"))))
	e.must(201, ed(put("/fhir/Patient?identifier=urn:s|new", identified("mine-2", "new"))))
	e.must(403, ed(put("/fhir/Patient?identifier=urn:s|new2", identified("other-2", "new2"))))

	e.must(403, ed(del("/fhir/Patient?identifier=urn:s|o1")))
	e.must(200, get("/fhir/Patient/other-1"))
	e.must(200, ed(del("/fhir/Patient?identifier=urn:s|m1")))
	e.must(410, get("/fhir/Patient/mine-1"))
}
