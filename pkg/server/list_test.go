package server_test

import (
	"net/http"
	"strings"
	"testing"
)

// _list=x reads List/x as the caller would: a caller who may search Patients but not
// read List/x is refused as the read would be (403, 401 anonymous) — whether the List
// exists or not, so the refusal tells nothing either — at the type level, the system
// level and in If-None-Exist; once a policy lets it read List/x, the search answers.
// Each base decides its own read (GET /fhir/List/x is not GET /List/x).
func TestListPolicies(t *testing.T) { forEachBackend(t, testListPolicies) }

func testListPolicies(t *testing.T) {
	e := newEnv(t)
	e.must(http.StatusCreated, put("/fhir/Patient/p1", `{"resourceType":"Patient","gender":"female"}`))
	e.must(http.StatusCreated, put("/fhir/Patient/p2", `{"resourceType":"Patient","gender":"male"}`))
	e.must(http.StatusCreated, put("/fhir/List/l1", `{"resourceType":"List","status":"current","mode":"working","entry":[{"item":{"reference":"Patient/p1"}}]}`))
	e.must(http.StatusCreated, put("/fhir/List/l2", `{"resourceType":"List","status":"current","mode":"working","entry":[{"item":{"reference":"Patient/p2"}}]}`))
	e.must(http.StatusCreated, put("/Client/app", `{"secret":"app-secret","grant_types":["basic"]}`))
	e.must(http.StatusCreated, yamlPut("/AccessPolicy/anyone-patients", `
engine: matcho
matcho: {request-method: get, uri: '#^/fhir/Patient$'}
`))
	e.must(http.StatusCreated, yamlPut("/AccessPolicy/app", `
engine: matcho
link: [{reference: Client/app}]
matcho: {uri: '#^(/fhir|/fhir/Patient|/Patient)$'}
`))
	app := func(r req) req { return as("app", "app-secret", r) }
	type tc struct {
		r      req
		status int
		want   []string // the matches of a 200
		says   string   // part of the OperationOutcome of a refusal
	}
	run := func(t *testing.T, cases []tc) {
		t.Helper()
		for _, c := range cases {
			t.Run(c.r.method+" "+c.r.path, func(t *testing.T) {
				r := e.in(t).must(c.status, c.r)
				if c.status == http.StatusOK && c.r.method == http.MethodGet {
					if got := entryIDs(r); !sameIDs(got, c.want) {
						t.Errorf("got %v, want %v", got, c.want)
					}
				}
				if c.says != "" {
					if msg := outcomeText(t, r); !strings.Contains(msg, c.says) {
						t.Errorf("message %q does not say %q", msg, c.says)
					}
				}
			})
		}
	}
	t.Run("no List read allowed", func(t *testing.T) {
		run(t, []tc{
			{r: app(get("/fhir/Patient?gender=female")), status: http.StatusOK, want: []string{"p1"}},
			{r: app(get("/fhir/Patient?_list=l1")), status: http.StatusForbidden,
				says: `_list names List/l1, which no access policy allows client "app" to read (GET /fhir/List/l1)`},
			{r: app(get("/fhir/Patient?_list=nosuchlist")), status: http.StatusForbidden, says: "List/nosuchlist"},
			{r: app(get("/fhir?_type=Patient&_list=l1")), status: http.StatusForbidden, says: "List/l1"},
			{r: app(get("/Patient?_list=l1")), status: http.StatusForbidden, says: "(GET /List/l1)"},
			{r: app(post("/fhir/Patient", `{"resourceType":"Patient"}`, "If-None-Exist", "_list=l1&gender=female")), status: http.StatusForbidden, says: "List/l1"},
			{r: anon(get("/fhir/Patient?_list=l1")), status: http.StatusUnauthorized, says: "an anonymous caller"},
			{r: get("/fhir/Patient?_list=l1"), status: http.StatusOK, want: []string{"p1"}}, // root
		})
	})
	e.must(http.StatusCreated, yamlPut("/AccessPolicy/app-l1", `
engine: matcho
link: [{reference: Client/app}]
matcho: {request-method: get, uri: /fhir/List/l1}
`))
	t.Run("List/l1 read allowed", func(t *testing.T) {
		run(t, []tc{
			{r: app(get("/fhir/Patient?_list=l1")), status: http.StatusOK, want: []string{"p1"}},
			{r: app(get("/fhir?_type=Patient&_list=l1")), status: http.StatusOK, want: []string{"p1"}},
			{r: app(post("/fhir/Patient", `{"resourceType":"Patient"}`, "If-None-Exist", "_list=l1&gender=female")), status: http.StatusOK},
			{r: app(get("/fhir/Patient?_list=l2")), status: http.StatusForbidden, says: "List/l2"},
			{r: app(get("/Patient?_list=l1")), status: http.StatusForbidden, says: "(GET /List/l1)"},
		})
	})
}
