package accesspolicy

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/fhirbox/fhirbox/pkg/auth"
	"github.com/fhirbox/fhirbox/resources"
)

// compileJSON compiles a policy written as JSON.
func compileJSON(t testing.TB, c *Compiler, id, src string) *Policy {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal([]byte(src), &doc); err != nil {
		t.Fatalf("%s: %v", id, err)
	}
	doc["id"] = id
	p, err := c.Compile(context.Background(), doc)
	if err != nil {
		t.Fatalf("%s: %v", id, err)
	}
	return p
}

// engineWith returns an Engine holding exactly these policies (no store: the store
// side is tested through the server and cmd/fhirbox tests on PostgreSQL).
func engineWith(t testing.TB, policies map[string]string) *Engine {
	t.Helper()
	c := &Compiler{}
	byID := map[string]*Policy{}
	for id, src := range policies {
		byID[id] = compileJSON(t, c, id, src)
	}
	e := NewEngine(c, nil, nil)
	e.set.Store(newPolicySet(byID))
	return e
}

func reqOf(t testing.TB, src string) *Request {
	t.Helper()
	var obj map[string]any
	if err := json.Unmarshal([]byte(src), &obj); err != nil {
		t.Fatal(err)
	}
	return NewRequest(obj)
}

// Candidates: global policies, policies linked to the request's client or user, and
// policies of the user's roles; nothing else is evaluated, and the first allow wins.
func TestDecideCandidates(t *testing.T) {
	e := engineWith(t, map[string]string{
		"global-metadata": `{"engine":"matcho","matcho":{"uri":"/metadata"}}`,
		"client-app":      `{"engine":"allow","link":[{"resourceType":"Client","id":"app"}]}`,
		"user-u1":         `{"engine":"allow","link":[{"reference":"User/u1"}]}`,
		"role-doctor":     `{"engine":"matcho","roleName":"doctor","matcho":{"request-method":"get"}}`,
		"both":            `{"engine":"matcho","link":[{"resourceType":"Client","id":"web"},{"resourceType":"User","id":"u2"}],"matcho":{"uri":"/never"}}`,
	})
	tests := []struct {
		name, req string
		allowed   bool
		by        string
		evaluated []string // the trace, in order
	}{
		{"anonymous, global only", `{"uri":"/fhir/Patient"}`, false, "", []string{"both?", "global-metadata"}},
		{"anonymous metadata", `{"uri":"/metadata"}`, true, "global-metadata", nil},
		{"linked client", `{"uri":"/x","client":{"id":"app"}}`, true, "client-app", nil},
		{"other client", `{"uri":"/x","client":{"id":"nope"}}`, false, "", nil},
		{"linked user", `{"uri":"/x","user":{"id":"u1"}}`, true, "user-u1", nil},
		{"role", `{"uri":"/x","request-method":"get","user":{"id":"d","roles":["nurse","doctor"]}}`, true, "role-doctor", nil},
		{"role as object", `{"uri":"/x","request-method":"get","user":{"id":"d","roles":[{"name":"doctor"}]}}`, true, "role-doctor", nil},
		{"role, wrong method", `{"uri":"/x","request-method":"post","user":{"id":"d","roles":["doctor"]}}`, false, "", nil},
		{"linked twice, evaluated once", `{"uri":"/x","client":{"id":"web"},"user":{"id":"u2"}}`, false, "", []string{"both", "global-metadata"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := e.Decide(context.Background(), reqOf(t, tt.req), false)
			if d.Allowed != tt.allowed || d.Policy != tt.by {
				t.Errorf("decision %+v, want allowed=%v by %q", d, tt.allowed, tt.by)
			}
			if d.Trace != nil {
				t.Error("a trace without asking")
			}
			dt := e.Decide(context.Background(), reqOf(t, tt.req), true)
			if dt.Allowed != tt.allowed || dt.Policy != tt.by {
				t.Errorf("with trace: decision %+v, want allowed=%v by %q", dt, tt.allowed, tt.by)
			}
			if tt.evaluated != nil {
				var got []string
				for _, te := range dt.Trace {
					got = append(got, te.Policy)
				}
				want := strings.ReplaceAll(strings.Join(tt.evaluated, ","), "both?,", "")
				if strings.Join(got, ",") != want {
					t.Errorf("trace %v, want %s", got, want)
				}
			}
		})
	}
}

// A trace names the failing part of each candidate and the way it became a candidate.
func TestDecideTrace(t *testing.T) {
	e := engineWith(t, map[string]string{
		"a": `{"engine":"matcho","link":[{"resourceType":"Client","id":"app"}],"matcho":{"uri":"#^/fhir/Observation"}}`,
		"b": `{"engine":"json-schema","schema":{"required":["user"]}}`,
		"c": `{"engine":"complex","and":[{"engine":"allow"},{"engine":"matcho","matcho":{"request-method":"delete"}}]}`,
	})
	d := e.Decide(context.Background(), reqOf(t, `{"uri":"/fhir/Patient","request-method":"get","client":{"id":"app"}}`), true)
	if d.Allowed || len(d.Trace) != 3 {
		t.Fatalf("decision %+v", d)
	}
	want := []struct{ policy, via, why string }{
		{"a", "client", "uri"},
		{"b", "global", "user"},
		{"c", "global", "and[1]: request-method"},
	}
	for i, w := range want {
		te := d.Trace[i]
		if te.Policy != w.policy || te.Via != w.via || te.Result || !strings.Contains(te.Why, w.why) {
			t.Errorf("trace[%d] = %+v, want policy %s via %s why containing %q", i, te, w.policy, w.via, w.why)
		}
	}
}

// The json-schema engine validates the request as it is: an empty string is a value
// (Aidbox strips empty values first, which lets {"required": ["x"]} pass on "").
func TestJSONSchemaKeepsEmptyValues(t *testing.T) {
	c := &Compiler{}
	p := compileJSON(t, c, "s", `{"engine":"json-schema","schema":{"required":["user"],"properties":{"user":{"required":["id"],"properties":{"id":{"minLength":1}}}}}}`)
	tests := []struct {
		req  string
		want bool
	}{
		{`{"user":{"id":"u1"}}`, true},
		{`{"user":{"id":""}}`, false},
		{`{"user":{}}`, false},
		{`{}`, false},
	}
	for _, tt := range tests {
		ok, why, err := p.Eval(context.Background(), reqOf(t, tt.req))
		if err != nil || ok != tt.want || (!ok && why == "") {
			t.Errorf("%s: ok=%v why=%q err=%v, want %v", tt.req, ok, why, err, tt.want)
		}
	}
	// draft-07 by $schema: "dependencies" is a draft-07 keyword.
	d7 := compileJSON(t, c, "d7", `{"engine":"json-schema","schema":{"$schema":"http://json-schema.org/draft-07/schema#","dependencies":{"user":["client"]}}}`)
	if ok, _, _ := d7.Eval(context.Background(), reqOf(t, `{"user":{}}`)); ok {
		t.Error("draft-07 dependencies not applied")
	}
}

// Compile refuses what cannot be evaluated and names the field.
func TestCompileErrors(t *testing.T) {
	tests := []struct{ name, src, field string }{
		{"engine not a string", `{"engine":1}`, "engine"},
		{"sql on the embedded database", `{"engine":"sql","sql":{"query":"SELECT true"}}`, "engine"},
		{"nested too deep", nested(maxComplexDepth + 2), strings.Repeat("and[0].", maxComplexDepth+1) + "engine"},
		{"and not a list", `{"engine":"complex","and":{}}`, "and"},
		{"or item not a policy", `{"engine":"complex","or":[1]}`, "or[0]"},
		{"link not a list", `{"engine":"allow","link":{"id":"x"}}`, "link"},
		{"link item not an object", `{"engine":"allow","link":["Client/x"]}`, "link[0]"},
		{"empty roleName", `{"engine":"allow","roleName":" "}`, "roleName"},
		{"schema not an object", `{"engine":"json-schema","schema":"x"}`, "schema"},
		{"schema remote ref", `{"engine":"json-schema","schema":{"$ref":"https://example.com/s.json"}}`, "schema"},
	}
	c := &Compiler{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var doc map[string]any
			if err := json.Unmarshal([]byte(tt.src), &doc); err != nil {
				t.Fatal(err)
			}
			_, err := c.Compile(context.Background(), doc)
			re, ok := err.(*resources.Error)
			if !ok || re.Code != resources.CodeUnprocessable || re.Expression != tt.field {
				t.Fatalf("error %#v, want a 422 on %q", err, tt.field)
			}
			if !strings.HasPrefix(re.Message, "AccessPolicy.") {
				t.Errorf("message %q does not name the field", re.Message)
			}
		})
	}
}

func nested(depth int) string {
	s := `{"engine":"allow"}`
	for range depth {
		s = `{"engine":"complex","and":[` + s + `]}`
	}
	return s
}

// The request object: lower-case method and headers, no credentials, params with the
// route's resource type and id, repeated parameters as lists, exact numbers of the body
// as plain JSON numbers, and the caller's ids and roles for candidate selection.
func TestBuildRequest(t *testing.T) {
	h := http.Header{}
	h.Set("Authorization", "Bearer secret-token")
	h.Set("Cookie", "session=1")
	h.Set("X-Tenant", "t1")
	h.Set("Content-Type", "application/json")
	h.Add("Accept", "text/yaml")
	h.Add("Accept", "application/json")
	body := map[string]any{"resourceType": "Patient", "multipleBirthInteger": json.Number("2")}
	info := &Info{
		Method: "PUT", Scheme: "http", Path: "/fhir/Patient/p1", RawQuery: "a=1&b=2&b=3",
		RemoteAddr: "127.0.0.1", Header: h, ResourceType: "Patient", ResourceID: "p1",
		Caller: &auth.Identity{
			UserID: "u1", User: map[string]any{"id": "u1", "roles": []any{"doctor", map[string]any{"value": "admin"}}},
			ClientID: "app", Client: map[string]any{"id": "app"},
		},
		Body: body,
	}
	r := info.Build()
	got, _ := json.Marshal(r.Object())
	want := `{"body":{"multipleBirthInteger":2,"resourceType":"Patient"},"client":{"id":"app"},` +
		`"headers":{"accept":"text/yaml, application/json","content-type":"application/json","x-tenant":"t1"},` +
		`"params":{"a":"1","b":["2","3"],"resource/id":"p1","resource/type":"Patient"},` +
		`"query-string":"a=1\u0026b=2\u0026b=3","remote-addr":"127.0.0.1","request-method":"put","scheme":"http",` +
		`"uri":"/fhir/Patient/p1","user":{"id":"u1","roles":["doctor",{"value":"admin"}]}}`
	if string(got) != want {
		t.Errorf("request object\n got %s\nwant %s", got, want)
	}
	// A request for a user is decided by the user's policies, not the client's.
	if r.UserID() != "u1" || r.ClientID() != "" || fmt.Sprint(r.Roles()) != "[doctor admin]" {
		t.Errorf("ids %q %q roles %v", r.UserID(), r.ClientID(), r.Roles())
	}
	if _, ok := body["multipleBirthInteger"].(json.Number); !ok {
		t.Error("Build changed the caller's body, which the engine stores")
	}
	anon := (&Info{Method: "GET", Path: "/x"}).Build().Object()
	for _, k := range []string{"user", "client", "jwt", "session", "body"} {
		if _, ok := anon[k]; ok {
			t.Errorf("anonymous request has %s", k)
		}
	}
}

// The sql engine's placeholders become text parameters, never query text.
func TestSQLPlaceholders(t *testing.T) {
	run := &recordingSQL{result: true}
	c := &Compiler{SQL: run}
	p := compileJSON(t, c, "s", `{"engine":"sql","sql":{"query":"SELECT {{.user.id}} = 'u1' AND {{ params.resource/id }} IS NOT NULL AND {{.user.age}}::int > 1 AND {{.nope}} IS NULL AND {{.user.roles}} <> ''"}}`)
	wantQ := "SELECT ($1::text) = 'u1' AND ($2::text) IS NOT NULL AND ($3::text)::int > 1 AND ($4::text) IS NULL AND ($5::text) <> ''"
	if run.checked != wantQ || run.nparams != 5 {
		t.Fatalf("checked %q with %d params, want %q", run.checked, run.nparams, wantQ)
	}
	ok, _, err := p.Eval(context.Background(), reqOf(t, `{"user":{"id":"u1' OR true --","age":42,"roles":["a"]},"params":{"resource/id":"p1"}}`))
	if !ok || err != nil {
		t.Fatalf("eval: %v %v", ok, err)
	}
	want := `["u1' OR true --","p1","42",null,"[\"a\"]"]`
	if got, _ := json.Marshal(run.args); string(got) != want {
		t.Errorf("args %s, want %s", got, want)
	}
	for _, bad := range []string{`{{}}`, `{{.a..b}}`, `{{ }}`} {
		var doc map[string]any
		_ = json.Unmarshal([]byte(`{"engine":"sql","sql":{"query":"SELECT `+bad+` = 'x'"}}`), &doc)
		if _, err := c.Compile(context.Background(), doc); err == nil {
			t.Errorf("placeholder %s accepted", bad)
		}
	}
}

type recordingSQL struct {
	checked string
	nparams int
	args    []any
	result  bool
}

func (r *recordingSQL) CheckPolicySQL(_ context.Context, q string, n int) error {
	r.checked, r.nparams = q, n
	return nil
}

func (r *recordingSQL) EvalPolicySQL(_ context.Context, _ string, args []any) (bool, error) {
	r.args = args
	return r.result, nil
}

// BenchmarkDecide is a typical set of matcho policies: the shipped public ones, a few
// global rules and role policies, and 1,000 policies linked to other clients, decided
// for an authenticated read. Target: under 5 µs per request, request object included.
func BenchmarkDecide(b *testing.B) {
	policies := map[string]string{
		"public-health":   `{"engine":"matcho","matcho":{"request-method":"get","uri":"/health"}}`,
		"public-metadata": `{"engine":"matcho","matcho":{"request-method":"get","uri":{"$enum":["/metadata","/fhir/metadata"]}}}`,
		"public-wk":       `{"engine":"matcho","matcho":{"request-method":"get","uri":"#^/\\.well-known/[A-Za-z0-9._-]+$"}}`,
		"public-auth":     `{"engine":"matcho","matcho":{"uri":{"$enum":["/auth/token","/auth/authorize"]},"request-method":{"$enum":["get","post"]}}}`,
		"doctors":         `{"engine":"matcho","roleName":"doctor","matcho":{"request-method":"get","uri":"#^/fhir/(Patient|Observation)"}}`,
		"own-record":      `{"engine":"matcho","roleName":"patient","matcho":{"uri":"#^/fhir/Patient/","params":{"resource/id":".user.data.patient_id"}}}`,
		"app-read":        `{"engine":"matcho","link":[{"resourceType":"Client","id":"app"}],"matcho":{"request-method":"get","params":{"resource/type":{"$enum":["Patient","Observation","Encounter"]}}}}`,
	}
	for i := range 1000 {
		policies[fmt.Sprintf("other-%d", i)] = fmt.Sprintf(`{"engine":"matcho","link":[{"resourceType":"Client","id":"client-%d"}],"matcho":{"request-method":"get"}}`, i)
	}
	e := engineWith(b, policies)
	h := http.Header{}
	h.Set("Accept", "application/fhir+json")
	h.Set("User-Agent", "bench")
	h.Set("Authorization", "Basic eDp5")
	caller := &auth.Identity{ClientID: "app", Client: map[string]any{"id": "app", "grant_types": []any{"basic"}}}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		info := Info{Method: "GET", Scheme: "http", Path: "/fhir/Observation/o1", Header: h,
			ResourceType: "Observation", ResourceID: "o1", RemoteAddr: "127.0.0.1", Caller: caller}
		if d := e.Decide(ctx, info.Build(), false); !d.Allowed {
			b.Fatal("denied")
		}
	}
}

// Every shipped policy decodes and compiles.
func TestBuiltinsCompile(t *testing.T) {
	docs, err := Builtins()
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) < 5 {
		t.Fatalf("%d shipped policies", len(docs))
	}
	for _, doc := range append(docs, AdminPolicy("admin")) {
		if _, err := (&Compiler{}).Compile(context.Background(), doc); err != nil {
			t.Errorf("%v: %v", doc["id"], err)
		}
	}
}
