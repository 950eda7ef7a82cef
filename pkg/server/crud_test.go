package server_test

import (
	"net/http"
	"strings"
	"testing"
)

const patientJSON = `{"resourceType":"Patient","id":"pat-1","name":[{"family":"Chalmers","given":["Peter"]}],"birthDate":"1974-12-25","gender":"male"}`

// conformance F1: create answers 201 with absolute Location, ETag and Last-Modified, and
// ignores the client's meta.versionId/lastUpdated.
func TestCreateAssignsIDAndVersionHeaders(t *testing.T) {
	forEachBackend(t, testCreateAssignsIDAndVersionHeaders)
}

func testCreateAssignsIDAndVersionHeaders(t *testing.T) {
	e := newEnv(t)
	body := `{"resourceType":"Patient","meta":{"versionId":"99","lastUpdated":"1999-01-01T00:00:00Z"},"name":[{"family":"Doe"}]}`
	r := e.must(http.StatusCreated, post("/fhir/Patient", body))
	id, _ := at(r.doc, "id").(string)
	if id == "" {
		t.Fatalf("no id assigned: %s", r.raw)
	}
	if got, want := r.header.Get("Location"), testBase+"/fhir/Patient/"+id+"/_history/1"; got != want {
		t.Errorf("Location %q, want %q", got, want)
	}
	if got := r.header.Get("ETag"); got != `W/"1"` {
		t.Errorf("ETag %q, want W/\"1\"", got)
	}
	if r.header.Get("Last-Modified") == "" {
		t.Error("no Last-Modified")
	}
	if v := at(r.doc, "meta", "versionId"); v != "1" {
		t.Errorf("meta.versionId %v, want 1 (client's 99 ignored)", v)
	}
	if lu, _ := at(r.doc, "meta", "lastUpdated").(string); strings.HasPrefix(lu, "1999") || lu == "" {
		t.Errorf("meta.lastUpdated %q: the client's value was kept or none set", lu)
	}

	t.Run("Prefer", func(t *testing.T) {
		tests := []struct {
			prefer   string
			wantBody string // "", "Patient" or "OperationOutcome"
		}{
			{"return=minimal", ""},
			{"return=representation", "Patient"},
			{"return=OperationOutcome", "OperationOutcome"},
			{"", "Patient"},
		}
		for _, tt := range tests {
			r := e.must(http.StatusCreated, post("/fhir/Patient", `{"resourceType":"Patient"}`, "Prefer", tt.prefer))
			if tt.wantBody == "" {
				if len(r.raw) != 0 {
					t.Errorf("Prefer %q: body %s, want none", tt.prefer, r.raw)
				}
			} else if at(r.doc, "resourceType") != tt.wantBody {
				t.Errorf("Prefer %q: body %s, want a %s", tt.prefer, r.raw, tt.wantBody)
			}
			if r.header.Get("Location") == "" || r.header.Get("ETag") == "" {
				t.Errorf("Prefer %q: Location/ETag missing", tt.prefer)
			}
		}
	})
}

// conformance F2: bad documents are 400, unknown types 404, a resourceType that differs from
// the URL 400; conformance F15: each with an OperationOutcome that says why.
func TestBadInputRejectedWithOutcome(t *testing.T) {
	forEachBackend(t, testBadInputRejectedWithOutcome)
}

func testBadInputRejectedWithOutcome(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name   string
		r      req
		status int
		says   string
	}{
		{"broken JSON", post("/Patient", `{"resourceType":`), 400, ""},
		{"JSON array", post("/Patient", `[1,2]`), 400, ""},
		{"duplicate key", post("/Patient", `{"resourceType":"Patient","gender":"male","gender":"female"}`), 400, "gender"},
		{"empty body", req{method: "POST", path: "/Patient", hdr: []string{"Content-Type", "application/json"}}, 400, "empty"},
		{"broken YAML", post("/Patient", "resourceType: Patient\n  bad: [", "Content-Type", "text/yaml"), 400, ""},
		{"YAML alias", post("/Patient", "resourceType: Patient\na: &x 1\nb: *x\n", "Content-Type", "text/yaml"), 400, ""},
		{"unknown type on create", post("/Spaceship", `{"resourceType":"Spaceship"}`), 404, "Spaceship"},
		{"unknown type on read", get("/Spaceship/1"), 404, "Spaceship"},
		{"unknown type on search", get("/fhir/Spaceship"), 404, "Spaceship"},
		{"resourceType differs", post("/Patient", `{"resourceType":"Observation"}`), 400, "resourceType"},
		{"id differs on update", put("/Patient/a", `{"resourceType":"Patient","id":"b"}`), 400, "id"},
		{"no such endpoint", get("/Patient/1/2/3/4"), 404, ""},
		{"method not allowed", req{method: http.MethodPost, path: "/Patient/p1"}, 405, ""},
		// U+0000: JSON and YAML can write it, PostgreSQL cannot store it (it was a 500).
		{"NUL in a created value", post("/Patient", `{"resourceType":"Patient","name":[{"family":"a\u0000b"}]}`), 400, "name[0].family"},
		{"NUL in an updated key", put("/Patient/n", `{"resourceType":"Patient","x\u0000":1}`), 400, "U+0000"},
		{"NUL in YAML", put("/Patient/n", "resourceType: Patient\ngender: \"a\\0\"\n", "Content-Type", "text/yaml"), 400, "gender"},
		{"NUL in a search value", get("/Patient?name=a%00b"), 400, "name"},
		{"NUL in a token search", get("/fhir/Patient?identifier=a%00b"), 400, "identifier"},
		{"invalid UTF-8 in an exact search", get("/Patient?name:exact=%ff%fe"), 400, "UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.in(t).must(tt.status, tt.r)
			if msg := outcomeText(t, r); !strings.Contains(msg, tt.says) {
				t.Errorf("diagnostics %q do not mention %q", msg, tt.says)
			}
		})
	}
	// As in Aidbox, a body without resourceType takes the URL's.
	r := e.must(201, put("/Patient/x", `{"id":"x"}`))
	if at(r.doc, "resourceType") != "Patient" {
		t.Errorf("resourceType not filled in: %s", r.raw)
	}
	e.must(200, del("/Patient/x"))
	// Nothing of the failed writes was stored.
	r = e.must(200, get("/Patient?_summary=count"))
	if at(r.doc, "total") != 0.0 {
		t.Errorf("failed writes left %v patients", at(r.doc, "total"))
	}
}

// conformance F3: read returns the resource with its ETag; unknown → 404, deleted → 410, a
// matching If-None-Match → 304.
func TestReadReturnsResourceWithETag(t *testing.T) {
	forEachBackend(t, testReadReturnsResourceWithETag)
}

func testReadReturnsResourceWithETag(t *testing.T) {
	e := newEnv(t)
	e.must(201, put("/Patient/pat-1", patientJSON))
	r := e.must(200, get("/Patient/pat-1"))
	if at(r.doc, "id") != "pat-1" || r.header.Get("ETag") != `W/"1"` {
		t.Errorf("read: id %v ETag %q", at(r.doc, "id"), r.header.Get("ETag"))
	}
	if at(r.doc, "name", 0, "family") != "Chalmers" || at(r.doc, "birthDate") != "1974-12-25" {
		t.Errorf("content changed on the way: %s", r.raw)
	}
	e.must(404, get("/Patient/nope"))
	e.must(404, get("/Patient/PAT-1")) // conformance F18: ids are case-sensitive
	e.must(304, get("/Patient/pat-1", "If-None-Match", `W/"1"`))
	e.must(200, get("/Patient/pat-1", "If-None-Match", `W/"7"`))
	e.must(200, del("/Patient/pat-1"))
	outcomeText(t, e.must(410, get("/Patient/pat-1")))
}

// conformance F4: vread returns that version; an unknown one is 404, a deletion 410.
func TestVReadReturnsThatVersion(t *testing.T) { forEachBackend(t, testVReadReturnsThatVersion) }

func testVReadReturnsThatVersion(t *testing.T) {
	e := newEnv(t)
	e.must(201, put("/Patient/p", `{"resourceType":"Patient","gender":"male"}`))
	e.must(200, put("/Patient/p", `{"resourceType":"Patient","gender":"female"}`))
	e.must(200, del("/Patient/p"))
	r := e.must(200, get("/Patient/p/_history/1"))
	if at(r.doc, "meta", "versionId") != "1" || at(r.doc, "gender") != "male" {
		t.Errorf("vread 1: %s", r.raw)
	}
	r = e.must(200, get("/fhir/Patient/p/_history/2"))
	if at(r.doc, "gender") != "female" {
		t.Errorf("vread 2: %s", r.raw)
	}
	e.must(410, get("/Patient/p/_history/3"))
	e.must(404, get("/Patient/p/_history/4"))
	e.must(404, get("/Patient/q/_history/1"))
	e.must(404, get("/Patient/p/_history/abc"))
}

// conformance F5: update — id mismatch 400, existing 200, update-as-create 201, the version
// goes up, a stale If-Match 412.
func TestUpdateBumpsVersionAndChecksIfMatch(t *testing.T) {
	forEachBackend(t, testUpdateBumpsVersionAndChecksIfMatch)
}

func testUpdateBumpsVersionAndChecksIfMatch(t *testing.T) {
	e := newEnv(t)
	r := e.must(201, put("/fhir/Patient/u1", `{"resourceType":"Patient","id":"u1"}`))
	if got, want := r.header.Get("Location"), testBase+"/fhir/Patient/u1/_history/1"; got != want {
		t.Errorf("Location %q, want %q", got, want)
	}
	r = e.must(200, put("/fhir/Patient/u1", `{"resourceType":"Patient","active":true}`))
	if at(r.doc, "meta", "versionId") != "2" || r.header.Get("ETag") != `W/"2"` || at(r.doc, "id") != "u1" {
		t.Errorf("second version: %s %v", r.raw, r.header)
	}
	e.must(412, put("/fhir/Patient/u1", `{"resourceType":"Patient"}`, "If-Match", `W/"1"`))
	e.must(200, put("/fhir/Patient/u1", `{"resourceType":"Patient"}`, "If-Match", `W/"2"`))
	outcomeText(t, e.must(400, put("/fhir/Patient/u1", `{"resourceType":"Patient"}`, "If-Match", `garbage`)))
	e.must(400, put("/fhir/Patient/u1", `{"resourceType":"Patient","id":"u2"}`))
	// A deleted resource comes back with a new version.
	e.must(200, del("/Patient/u1"))
	r = e.must(201, put("/Patient/u1", `{"resourceType":"Patient"}`))
	if at(r.doc, "meta", "versionId") != "5" {
		t.Errorf("recreated version %v, want 5", at(r.doc, "meta", "versionId"))
	}
}

// conformance F6: conditional create with If-None-Exist.
func TestConditionalCreateByMatchCount(t *testing.T) {
	forEachBackend(t, testConditionalCreateByMatchCount)
}

func testConditionalCreateByMatchCount(t *testing.T) {
	e := newEnv(t)
	e.must(201, put("/Patient/a", `{"resourceType":"Patient","identifier":[{"system":"urn:mrn","value":"1"}]}`))
	e.must(201, put("/Patient/b", `{"resourceType":"Patient","identifier":[{"system":"urn:mrn","value":"2"}]}`))
	e.must(201, put("/Patient/c", `{"resourceType":"Patient","identifier":[{"system":"urn:mrn","value":"2"}]}`))
	body := `{"resourceType":"Patient"}`
	e.must(201, post("/fhir/Patient", body, "If-None-Exist", "identifier=urn:mrn|9"))
	r := e.must(200, post("/fhir/Patient", body, "If-None-Exist", "identifier=urn:mrn|1"))
	if at(r.doc, "id") != "a" {
		t.Errorf("conditional create returned %v, want the existing a", at(r.doc, "id"))
	}
	outcomeText(t, e.must(412, post("/fhir/Patient", body, "If-None-Exist", "identifier=urn:mrn|2")))
	e.must(400, post("/fhir/Patient", body, "If-None-Exist", "birthdate=notadate"))
}

// conformance F7: delete is 200 (or 204), repeating it is harmless, and afterwards the
// resource is gone from reads and searches.
func TestDeleteIsRepeatableAndHidesResource(t *testing.T) {
	forEachBackend(t, testDeleteIsRepeatableAndHidesResource)
}

func testDeleteIsRepeatableAndHidesResource(t *testing.T) {
	e := newEnv(t)
	e.must(201, put("/Patient/d", `{"resourceType":"Patient","name":[{"family":"Gone"}]}`))
	r := e.must(200, del("/Patient/d"))
	outcomeText(t, r)
	e.must(204, del("/Patient/d"))
	e.must(204, del("/Patient/never"))
	e.must(410, get("/Patient/d"))
	r = e.must(200, get("/Patient?family=Gone"))
	if at(r.doc, "total") != 0.0 || len(entryIDs(r)) != 0 {
		t.Errorf("deleted resource still found: %s", r.raw)
	}
}

// conformance F8: history is newest first with delete entries; _count and _since apply.
func TestHistoryNewestFirstWithDeletes(t *testing.T) {
	forEachBackend(t, testHistoryNewestFirstWithDeletes)
}

func testHistoryNewestFirstWithDeletes(t *testing.T) {
	e := newEnv(t)
	e.must(201, put("/Patient/h", `{"resourceType":"Patient","gender":"male"}`))
	e.must(200, put("/Patient/h", `{"resourceType":"Patient","gender":"female"}`))
	e.must(200, del("/Patient/h"))
	e.must(201, put("/Patient/other", `{"resourceType":"Patient"}`))

	r := e.must(200, get("/fhir/Patient/h/_history"))
	if at(r.doc, "type") != "history" || at(r.doc, "total") != 3.0 {
		t.Fatalf("history bundle: %s", r.raw)
	}
	if m := at(r.doc, "entry", 0, "request", "method"); m != "DELETE" || at(r.doc, "entry", 0, "resource") != nil {
		t.Errorf("newest entry is %v with resource %v, want a DELETE without one", m, at(r.doc, "entry", 0, "resource"))
	}
	if v := at(r.doc, "entry", 1, "resource", "meta", "versionId"); v != "2" {
		t.Errorf("second entry version %v, want 2", v)
	}
	if v := at(r.doc, "entry", 2, "request", "method"); v != "POST" && v != "PUT" {
		t.Errorf("first version's request.method %v", v)
	}
	r = e.must(200, get("/Patient/h/_history?_count=1"))
	if n := len(at(r.doc, "entry").([]any)); n != 1 || link(r, "next") == "" {
		t.Errorf("_count=1: %d entries, next %q", n, link(r, "next"))
	}
	r = e.must(200, get("/Patient/_history"))
	if at(r.doc, "total") != 4.0 {
		t.Errorf("type history total %v, want 4", at(r.doc, "total"))
	}
	r = e.must(200, get("/Patient/_history?_since=2999-01-01T00:00:00Z"))
	if at(r.doc, "total") != 0.0 {
		t.Errorf("_since in the future: total %v", at(r.doc, "total"))
	}
	e.must(400, get("/Patient/_history?_since=yesterday"))
	e.must(400, get("/Patient/h/_history?_count=-1"))
}

// conformance F18: ids match [A-Za-z0-9\-\.]{1,64}; others are 400.
func TestIDsValidatedAndAssignedPerBase(t *testing.T) {
	forEachBackend(t, testIDsValidatedAndAssignedPerBase)
}

func testIDsValidatedAndAssignedPerBase(t *testing.T) {
	e := newEnv(t)
	for _, id := range []string{"a", "A.b-9", strings.Repeat("x", 64)} {
		e.must(201, put("/Patient/"+id, `{"resourceType":"Patient"}`))
	}
	for _, id := range []string{strings.Repeat("x", 65), "a_b", "a%20b", "%C3%A9"} {
		r := e.must(400, put("/Patient/"+id, `{"resourceType":"Patient"}`))
		outcomeText(t, r)
	}
	e.must(400, post("/Patient", `{"resourceType":"Patient","id":"bad id"}`))
	// A body id on POST to the /fhir base is replaced by the server's (FHIR create).
	r := e.must(201, post("/fhir/Patient", `{"resourceType":"Patient","id":"chosen"}`))
	if at(r.doc, "id") == "chosen" {
		t.Error("/fhir create kept the client's id")
	}
	// fhirbox's own base keeps it, as Aidbox does.
	r = e.must(201, post("/Patient", `{"resourceType":"Patient","id":"chosen"}`))
	if at(r.doc, "id") != "chosen" {
		t.Errorf("/ create gave id %v, want chosen", at(r.doc, "id"))
	}
	e.must(409, post("/Patient", `{"resourceType":"Patient","id":"chosen"}`))
}
