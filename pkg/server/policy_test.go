package server_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/fhirbox/fhirbox/pkg/server"
	"github.com/fhirbox/fhirbox/pkg/testdb"
)

func basicAuth(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(id+":"+secret))
}

// as returns r sent with the Basic credentials of client id.
func as(id, secret string, r req) req {
	r.anonymous = true
	r.hdr = append(r.hdr, "Authorization", basicAuth(id, secret))
	return r
}

func anon(r req) req { r.anonymous = true; return r }

// yamlPut writes a resource given as YAML, as policy admins do.
func yamlPut(path, body string) req {
	return put(path, body, "Content-Type", "text/yaml")
}

// A client that may use Basic but has no policy: authenticated, so 403 (conformance B3);
// anonymous callers get 401 with a challenge (conformance B1); a client without the basic
// grant cannot use Basic at all.
func TestPolicyDefaultDeny(t *testing.T) { forEachBackend(t, testPolicyDefaultDeny) }

func testPolicyDefaultDeny(t *testing.T) {
	e := newEnv(t)
	e.must(201, put("/Client/app", `{"secret":"app-secret","grant_types":["basic"]}`))
	e.must(201, put("/Client/nobasic", `{"secret":"nb-secret","grant_types":["client_credentials"]}`))

	r := e.must(403, as("app", "app-secret", get("/fhir/Patient")))
	if !strings.Contains(outcomeText(t, r), `client "app"`) {
		t.Errorf("403 does not name the caller: %s", r.raw)
	}
	if at(r.doc, "issue", 0, "code") != "forbidden" {
		t.Errorf("issue code %v, want forbidden", at(r.doc, "issue", 0, "code"))
	}
	r = e.must(401, anon(get("/fhir/Patient")))
	if r.header.Get("WWW-Authenticate") == "" {
		t.Error("401 without WWW-Authenticate")
	}
	e.must(401, as("nobasic", "nb-secret", get("/fhir/Patient")))
	e.must(401, as("app", "wrong", get("/fhir/Patient")))
	// The shipped public policies let anonymous callers reach what must be public.
	for _, p := range []string{"/health", "/fhir/metadata", "/metadata"} {
		e.must(200, anon(get(p)))
	}
	e.must(401, anon(get("/metrics")))
	e.must(200, get("/metrics")) // the root client's own policy allows everything
}

// Each engine, as policy admins write them (docs/accesspolicy.md), through the real
// router and database: the policy is written, then takes effect on the next request.
func TestPolicyEngines(t *testing.T) { forEachBackend(t, testPolicyEngines) }

func testPolicyEngines(t *testing.T) {
	e := newEnv(t)
	e.must(201, put("/Client/reader", `{"secret":"reader-secret","grant_types":["basic"]}`))
	e.must(201, put("/Client/other", `{"secret":"other-secret","grant_types":["basic"]}`))
	e.must(201, put("/fhir/Patient/pt-1", `{"resourceType":"Patient","name":[{"family":"One"}]}`))
	e.must(201, put("/fhir/Observation/obs-1", `{"resourceType":"Observation","status":"final","code":{"text":"x"}}`))

	type call struct {
		who    string // "reader", "other", "anon"
		r      req
		status int
	}
	tests := []struct {
		name   string
		policy string // YAML, written as AccessPolicy/<name>
		calls  []call
	}{
		{"a client may only read (matcho, link by resourceType/id)", `
engine: matcho
link: [{resourceType: Client, id: reader}]
matcho:
  request-method: {$enum: [get]}
`, []call{
			{"reader", get("/fhir/Patient/pt-1"), 200},
			{"reader", get("/fhir/Observation?status=final"), 200},
			{"reader", put("/fhir/Patient/pt-1", `{"resourceType":"Patient"}`), 403},
			{"other", get("/fhir/Patient/pt-1"), 403},
		}},
		{"link by reference", `
engine: matcho
link: [{reference: Client/reader}]
matcho: {request-method: get, params: {resource/type: Observation}}
`, []call{
			{"reader", get("/fhir/Observation/obs-1"), 200},
			{"reader", get("/fhir/Patient/pt-1"), 403},
		}},
		{"only GET on /fhir/Patient (global)", `
engine: matcho
matcho:
  request-method: get
  uri: '#^/fhir/Patient(/[^/]+)?$'
`, []call{
			{"anon", get("/fhir/Patient/pt-1"), 200},
			{"anon", get("/fhir/Patient"), 200},
			{"anon", get("/fhir/Observation/obs-1"), 401},
			{"anon", get("/fhir/Patient/pt-1/_history"), 401},
			{"other", del("/fhir/Patient/pt-1"), 403},
		}},
		{"json-schema", `
engine: json-schema
schema:
  type: object
  required: [client, request-method]
  properties:
    request-method: {const: get}
    client:
      type: object
      properties: {id: {enum: [reader]}}
    uri: {pattern: '^/fhir/Observation'}
`, []call{
			{"reader", get("/fhir/Observation/obs-1"), 200},
			{"reader", get("/fhir/Patient/pt-1"), 403},
			{"other", get("/fhir/Observation/obs-1"), 403},
			{"anon", get("/fhir/Observation/obs-1"), 401}, // no client: required fails
		}},
		{"json-schema draft-07", `
engine: json-schema
schema:
  $schema: http://json-schema.org/draft-07/schema#
  required: [client]
  properties:
    uri: {pattern: '^/fhir/Patient'}
`, []call{
			{"other", get("/fhir/Patient/pt-1"), 200},
			{"other", get("/fhir/Observation/obs-1"), 403},
		}},
		{"complex and/or", `
engine: complex
and:
  - engine: matcho
    matcho: {request-method: get}
  - engine: complex
    or:
      - engine: matcho
        matcho: {client: {id: reader}}
      - engine: json-schema
        schema: {required: [client], properties: {uri: {pattern: '^/fhir/Observation'}}}
`, []call{
			{"reader", get("/fhir/Patient/pt-1"), 200},
			{"other", get("/fhir/Observation/obs-1"), 200},
			{"other", get("/fhir/Patient/pt-1"), 403},
			{"reader", put("/fhir/Patient/pt-1", `{"resourceType":"Patient"}`), 403},
		}},
		{"allow linked to a client", `
engine: allow
link: [{resourceType: Client, id: other}]
`, []call{
			{"other", put("/fhir/Patient/pt-2", `{"resourceType":"Patient"}`), 201},
			{"reader", get("/fhir/Patient/pt-1"), 403},
		}},
		{"body of a write", `
engine: matcho
link: [{resourceType: Client, id: reader}]
matcho:
  request-method: put
  body: {resourceType: Patient, active: false}
`, []call{
			{"reader", put("/fhir/Patient/pt-3", `{"resourceType":"Patient","active":false}`), 201},
			{"reader", put("/fhir/Patient/pt-3", `{"resourceType":"Patient","active":true}`), 403},
			{"reader", yamlPut("/fhir/Patient/pt-3", "resourceType: Patient\nactive: false\ngender: male\n"), 200},
		}},
		{"form parameters of POST _search are params", `
engine: matcho
link: [{resourceType: Client, id: reader}]
matcho:
  params: {resource/type: Patient, _id: pt-1}
`, []call{
			{"reader", req{method: http.MethodPost, path: "/fhir/Patient/_search", body: "_id=pt-1", hdr: []string{"Content-Type", "application/x-www-form-urlencoded"}}, 200},
			{"reader", req{method: http.MethodPost, path: "/fhir/Patient/_search", body: "_id=pt-2", hdr: []string{"Content-Type", "application/x-www-form-urlencoded"}}, 403},
			{"reader", get("/fhir/Patient?_id=pt-1"), 200},
		}},
		{"sql (PostgreSQL)", `
engine: sql
link: [{resourceType: Client, id: reader}]
sql:
  query: >-
    SELECT EXISTS (SELECT 1 FROM resource WHERE resource_type = 'Patient' AND NOT deleted
    AND id = {{.params.resource/id}} AND content->'name'->0->>'family' = 'One')
`, []call{
			{"reader", get("/fhir/Patient/pt-1"), 200},
			{"reader", get("/fhir/Patient/pt-2"), 403},
			{"reader", get("/fhir/Patient"), 403}, // no id: NULL parameter, no row
		}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if strings.HasPrefix(tt.policy, "\nengine: sql\n") {
				e.postgresOnly(t, "the sql engine runs its query on PostgreSQL; TestPolicySQLOnSQLite covers SQLite")
			}
			e := e.in(t)
			id := "p" + string(rune('a'+i))
			e.must(201, yamlPut("/AccessPolicy/"+id, tt.policy))
			defer e.must(200, del("/AccessPolicy/"+id))
			for _, c := range tt.calls {
				r := c.r
				switch c.who {
				case "reader":
					r = as("reader", "reader-secret", r)
				case "other":
					r = as("other", "other-secret", r)
				default:
					r = anon(r)
				}
				out := e.do(r)
				if out.status != c.status {
					t.Errorf("%s %s %s: status %d, want %d\n%s", c.who, r.method, r.path, out.status, c.status, out.raw)
				}
			}
		})
	}
	// With every test policy deleted, the clients are back to nothing.
	e.must(403, as("reader", "reader-secret", get("/fhir/Patient/pt-1")))
}

// The sql engine runs its query on the database: PostgreSQL stores such a policy,
// the embedded SQLite refuses it with a 422 that names the engine and says why.
func TestPolicySQLOnSQLite(t *testing.T) { forEachBackend(t, testPolicySQLOnSQLite) }

func testPolicySQLOnSQLite(t *testing.T) {
	e := newEnv(t)
	policy := "engine: sql\nsql: {query: SELECT true}\n"
	if e.backend == testdb.Postgres {
		e.must(201, yamlPut("/AccessPolicy/sql", policy))
		return
	}
	r := e.must(422, yamlPut("/AccessPolicy/sql", policy))
	if got := at(r.doc, "issue", 0, "expression", 0); got != "engine" {
		t.Errorf("expression %v, want engine: %s", got, r.raw)
	}
	if msg := outcomeText(t, r); !strings.Contains(msg, "PostgreSQL") {
		t.Errorf("the refusal does not say the sql engine needs PostgreSQL: %q", msg)
	}
	e.must(404, get("/AccessPolicy/sql"))
}

// A broken policy can never be stored: every mistake is a 422 naming the field.
func TestPolicyValidation(t *testing.T) { forEachBackend(t, testPolicyValidation) }

func testPolicyValidation(t *testing.T) {
	e := newEnv(t)
	tests := []struct{ name, policy, field string }{
		{"no engine", `matcho: {uri: /x}`, "engine"},
		{"unknown engine", `engine: magic`, "engine"},
		{"matcho without pattern", `engine: matcho`, "matcho"},
		{"bad regex", `{engine: matcho, matcho: {uri: "#(unclosed"}}`, "matcho"},
		{"unknown operator", `{engine: matcho, matcho: {uri: {$regex: x}}}`, "matcho"},
		{"schema missing", `engine: json-schema`, "schema"},
		{"invalid schema", `{engine: json-schema, schema: {type: 12}}`, "schema"},
		{"schema reading a file", `{engine: json-schema, schema: {$ref: "file:///etc/passwd"}}`, "schema"},
		{"complex without and/or", `engine: complex`, "and"},
		{"complex with bad child", `{engine: complex, or: [{engine: matcho, matcho: {uri: "#("}}]}`, "or[0].matcho"},
		{"link to a Patient", `{engine: allow, link: [{resourceType: Patient, id: p1}]}`, "link[0]"},
		{"link with bad id", `{engine: allow, link: [{reference: "User/a b"}]}`, "link[0]"},
		{"roleName not a string", `{engine: allow, roleName: [x]}`, "roleName"},
		{"sql syntax", `{engine: sql, sql: {query: "SELEC true"}}`, "sql.query"},
		{"sql not boolean", `{engine: sql, sql: {query: "SELECT 1"}}`, "sql.query"},
		{"sql unknown table", `{engine: sql, sql: {query: "SELECT true FROM nope"}}`, "sql.query"},
		{"sql raw parameter", `{engine: sql, sql: {query: "SELECT $1::text = 'a'"}}`, "sql.query"},
		{"sql that writes", `{engine: sql, sql: {query: "UPDATE resource SET deleted = deleted WHERE false RETURNING true"}}`, "sql.query"},
		{"sql quoted placeholder", `{engine: sql, sql: {query: "SELECT 'x' = '{{.user.id}}'"}}`, "sql.query"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			field := tt.field
			if e.backend == testdb.SQLite && strings.HasPrefix(tt.policy, "{engine: sql,") {
				// Refused before its query is looked at: SQLite has no sql engine.
				field = "engine"
			}
			r := e.in(t).must(422, yamlPut("/AccessPolicy/bad", tt.policy))
			if got := at(r.doc, "issue", 0, "expression", 0); got != field {
				t.Errorf("expression %v, want %q: %s", got, field, r.raw)
			}
			outcomeText(t, r)
		})
	}
	e.must(404, get("/AccessPolicy/bad"))
	// POST is validated like PUT.
	e.must(422, post("/AccessPolicy", `{"resourceType":"AccessPolicy","engine":"nope"}`))
}

// The shipped policies exist after start and can be read like any other; the root
// client's policy is restored at every start, while an admin's edits to a public policy
// are kept.
func TestShippedPolicies(t *testing.T) { forEachBackend(t, testShippedPolicies) }

func testShippedPolicies(t *testing.T) {
	e := newEnv(t)
	r := e.must(200, get("/AccessPolicy?_count=50"))
	ids := entryIDs(r)
	for _, want := range []string{"fhirbox-admin", "fhirbox-public-health", "fhirbox-public-metadata", "fhirbox-public-well-known", "fhirbox-public-auth", "fhirbox-public-signin", "fhirbox-own-session", "fhirbox-public-token-info"} {
		if !contains(ids, want) {
			t.Errorf("policy %s missing: %v", want, ids)
		}
	}
	if at(e.must(200, get("/AccessPolicy/fhirbox-admin")).doc, "link", 0, "id") != adminID {
		t.Error("the admin policy is not linked to the root client")
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// The trace of every candidate policy goes to callers who may debug policies, and to
// nobody else; ?__debug=policy does not disturb a strict search.
func TestPolicyTrace(t *testing.T) { forEachBackend(t, testPolicyTrace) }

func testPolicyTrace(t *testing.T) {
	e := newEnv(t)
	e.must(201, put("/Client/app", `{"secret":"app-secret","grant_types":["basic"]}`))
	e.must(201, yamlPut("/AccessPolicy/app-read", `
engine: matcho
link: [{resourceType: Client, id: app}]
matcho: {request-method: get, uri: '#^/fhir/Patient'}
`))
	trace := func(r *resp) []map[string]any {
		t.Helper()
		h := r.header.Get(server.TraceHeader)
		if h == "" {
			return nil
		}
		var out []map[string]any
		if err := json.Unmarshal([]byte(h), &out); err != nil {
			t.Fatalf("trace header is not JSON: %v: %s", err, h)
		}
		return out
	}
	// The admin may debug: the trace lists every candidate, the public ones included.
	r := e.must(200, get("/fhir/Patient?__debug=policy", "Prefer", "handling=strict"))
	tr := trace(r)
	if len(tr) < 5 {
		t.Fatalf("admin trace has %d entries: %v", len(tr), tr)
	}
	if tr[0]["policy"] != "fhirbox-admin" || tr[0]["result"] != true || tr[0]["via"] != "client" {
		t.Errorf("first trace entry %v", tr[0])
	}
	var health map[string]any
	for _, en := range tr {
		if en["policy"] == "fhirbox-public-health" {
			health = en
		}
	}
	if health == nil || health["result"] != false || !strings.Contains(health["why"].(string), "uri") {
		t.Errorf("public health policy in the trace: %v", health)
	}
	// The app may not debug: no trace, with the header or the parameter.
	r = e.must(200, as("app", "app-secret", get("/fhir/Patient", "X-Debug", "policy")))
	if trace(r) != nil {
		t.Error("a caller who may not debug got a trace")
	}
	e.must(403, as("app", "app-secret", get("/fhir/Observation?__debug=policy")))
	// Once a policy lets it call test-policy, it gets traces, denials included.
	e.must(201, yamlPut("/AccessPolicy/app-debug", `
engine: matcho
link: [{resourceType: Client, id: app}]
matcho: {request-method: post, uri: /auth/test-policy}
`))
	r = e.must(403, as("app", "app-secret", get("/fhir/Observation", "X-Debug", "policy")))
	tr = trace(r)
	if len(tr) == 0 {
		t.Fatal("no trace for a denied request of a caller who may debug")
	}
	for _, en := range tr {
		if en["result"] == true {
			t.Errorf("a policy allowed a denied request: %v", en)
		}
	}
}

// POST /auth/test-policy evaluates without storing: an inline policy, a stored one by
// id, or every policy in force; policies linked to a User and to a role are candidates
// for that user.
func TestTestPolicyEndpoint(t *testing.T) { forEachBackend(t, testTestPolicyEndpoint) }

func testTestPolicyEndpoint(t *testing.T) {
	e := newEnv(t)
	e.must(201, yamlPut("/AccessPolicy/doctors-read-patients", `
engine: matcho
roleName: doctor
matcho: {request-method: get, uri: '#^/fhir/Patient'}
`))
	e.must(201, yamlPut("/AccessPolicy/u1-own-record", `
engine: matcho
link: [{resourceType: User, id: u1}]
matcho: {uri: '#^/fhir/Patient/', params: {resource/id: .user.data.patient_id}}
`))
	test := func(body string) map[string]any {
		t.Helper()
		return e.must(200, post("/auth/test-policy", body)).doc
	}
	doctor := `{"request-method":"get","uri":"/fhir/Patient","user":{"id":"d1","roles":["doctor"]}}`
	nurse := `{"request-method":"get","uri":"/fhir/Patient","user":{"id":"n1","roles":["nurse"]}}`
	own := `{"request-method":"get","uri":"/fhir/Patient/pt-9","params":{"resource/id":"pt-9"},"user":{"id":"u1","data":{"patient_id":"pt-9"}}}`
	notOwn := `{"request-method":"get","uri":"/fhir/Patient/pt-8","params":{"resource/id":"pt-8"},"user":{"id":"u1","data":{"patient_id":"pt-9"}}}`
	noData := `{"request-method":"get","uri":"/fhir/Patient/pt-8","params":{},"user":{"id":"u1"}}`
	tests := []struct {
		name, body string
		want       bool
		policy     string
	}{
		{"role candidate", `{"request":` + doctor + `}`, true, "doctors-read-patients"},
		{"other role", `{"request":` + nurse + `}`, false, ""},
		{"user link", `{"request":` + own + `}`, true, "u1-own-record"},
		{"user link, other record", `{"request":` + notOwn + `}`, false, ""},
		{"both sides absent is false", `{"request":` + noData + `}`, false, ""},
		{"stored policy by id", `{"request":` + doctor + `,"policy":"doctors-read-patients"}`, true, "doctors-read-patients"},
		{"inline policy", `{"request":{"request-method":"delete"},"policy":{"engine":"matcho","matcho":{"request-method":"delete"}}}`, true, ""},
		{"inline policy fails", `{"request":{"request-method":"get"},"policy":{"engine":"matcho","matcho":{"request-method":"delete"}}}`, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := test(tt.body)
			if doc["result"] != tt.want {
				t.Errorf("result %v, want %v: %v", doc["result"], tt.want, doc)
			}
			if tt.policy != "" && doc["policy"] != tt.policy {
				t.Errorf("allowed by %v, want %s", doc["policy"], tt.policy)
			}
			if tr, _ := doc["trace"].([]any); len(tr) == 0 {
				t.Errorf("no trace: %v", doc)
			}
		})
	}
	// Nothing was stored by the inline tests.
	// (The shipped ones are named fhirbox-…, however many there are.)
	ids := entryIDs(e.must(200, get("/AccessPolicy?_count=100")))
	written := 0
	for _, id := range ids {
		if !strings.HasPrefix(id, "fhirbox-") {
			written++
		}
	}
	if written != 2 {
		t.Errorf("%d policies stored besides the shipped ones, want the 2 written: %v", written, ids)
	}
	outcomeText(t, e.must(422, post("/auth/test-policy", `{"request":{},"policy":{"engine":"nope"}}`)))
	outcomeText(t, e.must(404, post("/auth/test-policy", `{"request":{},"policy":"no-such-policy"}`)))
	outcomeText(t, e.must(400, post("/auth/test-policy", `{"policy":"x"}`)))
	outcomeText(t, e.must(400, post("/auth/test-policy", `{"request":[1]}`)))
	e.must(201, put("/Client/app", `{"secret":"app-secret","grant_types":["basic"]}`))
	e.must(403, as("app", "app-secret", post("/auth/test-policy", `{"request":{}}`)))
	e.must(401, anon(post("/auth/test-policy", `{"request":{}}`)))
}
