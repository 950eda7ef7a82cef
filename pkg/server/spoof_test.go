package server_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/fhirbox/fhirbox/pkg/server"
)

// What the router decided (resource/type, resource/id) can never be supplied by the
// caller: not in the query string (plain or percent-encoded), not in a POST _search
// form, not in a header. Each row is a request that a policy keyed on those params
// would have allowed if the caller's value had been taken; every one is refused, on
// system-, type- and instance-level routes alike. Controls show the policies do allow
// what the route itself names.
func TestRouteParamsCannotBeSpoofed(t *testing.T) { forEachBackend(t, testRouteParamsCannotBeSpoofed) }

func testRouteParamsCannotBeSpoofed(t *testing.T) {
	e := newEnv(t)
	e.must(201, put("/fhir/Patient/pt-1", `{"resourceType":"Patient"}`))
	e.must(201, put("/fhir/Patient/pt-2", `{"resourceType":"Patient"}`))
	e.must(201, put("/fhir/Observation/obs-1", `{"resourceType":"Observation","status":"final","code":{"text":"x"}}`))
	e.must(201, put("/Client/own", `{"secret":"own-secret","grant_types":["basic"]}`))
	e.must(201, put("/Client/typed", `{"secret":"typed-secret","grant_types":["basic"]}`))
	// The documented "own record" policy, with the patient id written in.
	e.must(201, yamlPut("/AccessPolicy/own-record", `
engine: matcho
link: [{resourceType: Client, id: own}]
matcho:
  request-method: get
  uri: '#^/fhir/Patient/[^/]+$'
  params: {resource/id: pt-1}
`))
	// Any request about Patients, whatever the method.
	e.must(201, yamlPut("/AccessPolicy/patients-only", `
engine: matcho
link: [{resourceType: Client, id: typed}]
matcho:
  params: {resource/type: Patient}
`))
	form := func(path, body string) req {
		return req{method: http.MethodPost, path: path, body: body, hdr: []string{"Content-Type", "application/x-www-form-urlencoded"}}
	}
	tests := []struct {
		name   string
		client string
		r      req
		want   int
	}{
		{"control: own record", "own", get("/fhir/Patient/pt-1"), 200},
		{"control: type route", "typed", get("/fhir/Patient"), 200},

		{"type history with resource/id", "own", get("/fhir/Patient/_history?resource/id=pt-1"), 403},
		{"type history, encoded key", "own", get("/fhir/Patient/_history?resource%2Fid=pt-1"), 403},
		{"search with resource/id", "own", get("/fhir/Patient/_search?resource/id=pt-1"), 403},
		{"POST _search, id in the form", "own", form("/fhir/Patient/_search", "resource/id=pt-1"), 403},
		{"POST _search, id in the query", "own", form("/fhir/Patient/_search?resource/id=pt-1", ""), 403},
		{"another patient, id in the query", "own", get("/fhir/Patient/pt-2?resource/id=pt-1"), 403},
		{"repeated id", "own", get("/fhir/Patient/pt-2?resource/id=pt-1&resource/id=pt-1"), 403},
		{"id as a header", "own", get("/fhir/Patient/pt-2", "resource/id", "pt-1"), 403},

		{"metrics with resource/type", "typed", get("/metrics?resource/type=Patient"), 403},
		{"test-policy with resource/type", "typed", post("/auth/test-policy?resource/type=Patient", `{"request":{}}`), 403},
		{"userinfo with resource/type", "typed", get("/auth/userinfo?resource/type=Patient"), 403},
		{"system level with resource/type", "typed", get("/fhir?resource/type=Patient"), 403},
		{"root with resource/type", "typed", get("/?resource/type=Patient"), 403},
		{"other type's search", "typed", get("/fhir/Observation?resource/type=Patient"), 403},
		{"other type's history", "typed", get("/fhir/Observation/_history?resource/type=Patient"), 403},
		{"other type's read", "typed", get("/fhir/Observation/obs-1?resource/type=Patient"), 403},
		{"other type's POST _search, type in the form", "typed", form("/fhir/Observation/_search", "resource/type=Patient"), 403},
		{"own types with resource/type", "typed", get("/AccessPolicy?resource/type=Patient"), 403},
		{"write to another type", "typed", put("/fhir/Observation/obs-1?resource/type=Patient", `{"resourceType":"Observation","status":"final","code":{"text":"y"}}`), 403},
	}
	for _, tt := range tests {
		secret := tt.client + "-secret"
		r := e.do(as(tt.client, secret, tt.r))
		if r.status != tt.want {
			t.Errorf("%s: %s %s as %s: status %d, want %d\n%.300s", tt.name, tt.r.method, tt.r.path, tt.client, r.status, tt.want, r.raw)
		}
	}
}

// A failing sql policy is traced without the database's text: PostgreSQL's message for
// a failed cast quotes the value it could not cast, which is how a policy under test
// once read out the signing key. The trace names the SQLSTATE; the log has the rest.
func TestPolicyTraceHidesDatabaseText(t *testing.T) {
	forEachBackend(t, testPolicyTraceHidesDatabaseText)
}

func testPolicyTraceHidesDatabaseText(t *testing.T) {
	e := newEnv(t)
	e.postgresOnly(t, "the sql engine needs PostgreSQL")
	const marker = "Zebra-Marker-4711"
	e.must(201, put("/fhir/Patient/pt-1", `{"resourceType":"Patient","name":[{"family":"`+marker+`"}]}`))
	query := `SELECT (SELECT content->'name'->0->>'family' FROM resource WHERE resource_type = 'Patient' AND id = 'pt-1')::int > 0`
	inline := `{"request":{"request-method":"get"},"policy":{"engine":"sql","sql":{"query":"` + query + `"}}}`
	r := e.must(200, post("/auth/test-policy", inline))
	if r.doc["result"] != false {
		t.Errorf("a failing query allowed: %s", r.raw)
	}
	if strings.Contains(string(r.raw), marker) || !strings.Contains(string(r.raw), "SQLSTATE 22P02") {
		t.Errorf("test-policy trace: want the SQLSTATE and not the value: %s", r.raw)
	}
	// A stored policy, traced on a real request.
	e.must(201, yamlPut("/AccessPolicy/casts", "engine: sql\nsql:\n  query: \""+query+"\"\n"))
	e.must(201, put("/Client/dbg", `{"secret":"dbg-secret","grant_types":["basic"]}`))
	e.must(201, yamlPut("/AccessPolicy/dbg", "engine: matcho\nlink: [{resourceType: Client, id: dbg}]\nmatcho: {request-method: post, uri: /auth/test-policy}\n"))
	r = e.must(403, as("dbg", "dbg-secret", get("/fhir/Observation", "X-Debug", "policy")))
	tr := r.header.Get(server.TraceHeader)
	if tr == "" || strings.Contains(tr, marker) || !strings.Contains(tr, "SQLSTATE 22P02") {
		t.Errorf("trace header: want the SQLSTATE and not the value: %s", tr)
	}
	if !strings.Contains(e.logs.String(), marker) {
		t.Error("the server log lacks the database's message")
	}
}

// A policy query that does not compile is described by its author's own text (syntax,
// unknown names) but never by data: a cast that fails while PostgreSQL plans the query
// is told by its SQLSTATE only.
func TestPolicyCompileErrorsHideData(t *testing.T) {
	forEachBackend(t, testPolicyCompileErrorsHideData)
}

func testPolicyCompileErrorsHideData(t *testing.T) {
	e := newEnv(t)
	e.postgresOnly(t, "the sql engine needs PostgreSQL")
	const marker = "Zebra-Marker-4711"
	r := e.must(422, post("/auth/test-policy", `{"request":{},"policy":{"engine":"sql","sql":{"query":"SELECT '`+marker+`'::int > 0"}}}`))
	if msg := outcomeText(t, r); strings.Contains(msg, marker) || !strings.Contains(msg, "22P02") {
		t.Errorf("a failed constant cast: want its SQLSTATE, not its value: %s", msg)
	}
	r = e.must(422, post("/auth/test-policy", `{"request":{},"policy":{"engine":"sql","sql":{"query":"SELECT true FROM no_such_table"}}}`))
	if msg := outcomeText(t, r); !strings.Contains(msg, "no_such_table") {
		t.Errorf("an unknown table: want PostgreSQL's message, which names it: %s", msg)
	}
}
