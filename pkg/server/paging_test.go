package server_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fhirbox/fhirbox/pkg/app"
	"github.com/fhirbox/fhirbox/resources"
)

func withResultSets(o resources.ResultSetOptions) envOption {
	return func(c *app.Config) { c.ResultSets = o }
}

func withStrictHandling() envOption { return func(c *app.Config) { c.Server.StrictHandling = true } }

// matchIDs lists the ids of a Bundle's match entries (not its outcome entry).
func matchIDs(r *resp) []string {
	var ids []string
	entries, _ := at(r.doc, "entry").([]any)
	for _, en := range entries {
		if at(en, "search", "mode") == "match" {
			id, _ := at(en, "resource", "id").(string)
			ids = append(ids, id)
		}
	}
	return ids
}

// outcomeEntry returns the issues of a Bundle's outcome entry, nil without one.
func outcomeEntry(t *testing.T, r *resp) []any {
	t.Helper()
	entries, _ := at(r.doc, "entry").([]any)
	var issues []any
	n := 0
	for _, en := range entries {
		if at(en, "search", "mode") == "outcome" {
			n++
			if at(en, "resource", "resourceType") != "OperationOutcome" {
				t.Errorf("outcome entry is not an OperationOutcome: %v", en)
			}
			issues, _ = at(en, "resource", "issue").([]any)
		}
	}
	if n > 1 {
		t.Errorf("%d outcome entries", n)
	}
	return issues
}

// clockedWriter returns a function that sends a write one second after the previous one
// (newest first is then the order of the writes, reversed) and fails t if it fails.
func clockedWriter(t *testing.T, e *env, clk *clock) func(r req) {
	return func(r req) {
		t.Helper()
		clk.Advance(time.Second)
		if out := e.do(r); out.status >= 300 {
			t.Fatalf("%s %s: %d %s", r.method, r.path, out.status, out.raw)
		}
	}
}

// Following next after writes neither repeats nor skips a match of the first page's
// moment (conformance F10): a resource created since (and sorting first) is not in the
// set, one updated since keeps its place and shows its new content, one deleted since
// is left out of its page, and total stays the count of the first page.
func TestStablePaging(t *testing.T) { forEachBackend(t, testStablePaging) }

func testStablePaging(t *testing.T) {
	clk := &clock{t: time.Now().UTC().Truncate(time.Second)}
	e := newEnv(t, withClock(clk))
	write := clockedWriter(t, e, clk)
	patient := func(family, id, given string, born int) req {
		return put("/Patient/"+id, fmt.Sprintf(`{"resourceType":"Patient","name":[{"family":%q,"given":[%q]}],"birthDate":"%d-01-01"}`, family, given, born))
	}
	for _, tc := range []struct {
		name, family, query string
	}{
		{"newest first", "Pager", "family=pager&_count=5"},
		{"sorted", "Sorter", "family=sorter&_count=5&_sort=-birthdate"},
		{"total none", "Quiet", "family=quiet&_count=5&_total=none"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := e.in(t)
			var all []string
			for i := range 25 {
				id := fmt.Sprintf("%s-%02d", strings.ToLower(tc.family), i)
				all = append(all, id)
				write(patient(tc.family, id, "g", 1950+i))
			}
			id := func(i int) string { return all[i] }
			// Page 1 is ids 24..20, page 2 19..15, page 3 14..10 in both orders.
			r := e.must(200, get("/Patient?"+tc.query))
			if got := matchIDs(r); !slices.Equal(got, []string{id(24), id(23), id(22), id(21), id(20)}) {
				t.Fatalf("page 1: %v", got)
			}
			wantTotal := any(float64(25))
			if strings.Contains(tc.query, "_total=none") {
				wantTotal = nil
			}
			if at(r.doc, "total") != wantTotal {
				t.Errorf("page 1 total %v, want %v", at(r.doc, "total"), wantTotal)
			}
			next := link(r, "next")
			nu, _ := url.Parse(next)
			if nu == nil || nu.Query().Get("_pageset") == "" || nu.Query().Get("_page") != "2" || nu.Query().Get("family") != strings.ToLower(tc.family) || nu.Query().Get("_count") != "5" {
				t.Fatalf("next link %q does not carry the search, the set and the page", next)
			}
			if self := link(r, "self"); strings.Contains(self, "_pageset") {
				t.Errorf("page 1 self link %q names the set", self)
			}

			write(patient(tc.family, strings.ToLower(tc.family)+"-new", "g", 2000)) // sorts first
			write(patient(tc.family, id(10), "updated", 1900))                      // on page 3; would sort last
			write(del("/Patient/" + id(17)))                                        // on page 2

			seen := map[string]int{}
			for _, x := range matchIDs(r) {
				seen[x]++
			}
			pages := 1
			for next != "" {
				r = e.must(200, get(pagePath(t, next)))
				pages++
				if at(r.doc, "total") != wantTotal {
					t.Errorf("page %d total %v, want %v", pages, at(r.doc, "total"), wantTotal)
				}
				for i, x := range matchIDs(r) {
					seen[x]++
					if x == id(10) && !strings.Contains(string(mustJSON(t, at(r.doc, "entry", i, "resource"))), "updated") {
						t.Errorf("%s shows its old content", x)
					}
				}
				if prev := link(r, "previous"); prev == "" || !strings.Contains(prev, "_pageset=") {
					t.Errorf("page %d previous link %q", pages, prev)
				}
				next = link(r, "next")
				if pages > 10 {
					t.Fatal("next links do not end")
				}
			}
			if pages != 5 {
				t.Errorf("%d pages, want 5", pages)
			}
			for i, x := range all {
				want := 1
				if i == 17 {
					want = 0
				}
				if seen[x] != want {
					t.Errorf("%s seen %d times, want %d", x, seen[x], want)
				}
			}
			if n := seen[strings.ToLower(tc.family)+"-new"]; n != 0 {
				t.Errorf("the resource created after page 1 was seen %d times", n)
			}
		})
	}
}

// A page request is served only for the search (and the caller) that made its set; an
// unknown or expired set is a 410 saying to repeat the search, and the sweeper removes
// expired sets.
func TestPagingRefusals(t *testing.T) { forEachBackend(t, testPagingRefusals) }

func testPagingRefusals(t *testing.T) {
	clk := &clock{t: time.Now().UTC()}
	e := newEnv(t, withClock(clk))
	for i := range 12 {
		e.must(201, put(fmt.Sprintf("/Patient/r%02d", i), `{"resourceType":"Patient","name":[{"family":"Refuse"}],"gender":"female"}`))
	}
	e.must(201, put("/Client/other", `{"secret":"other-secret","grant_types":["basic"]}`))
	e.must(201, yamlPut("/AccessPolicy/other", "engine: allow\nlink: [{resourceType: Client, id: other}]"))

	r := e.must(200, get("/fhir/Patient?family=refuse&_count=5"))
	next := pagePath(t, link(r, "next"))
	key := func() string { u, _ := url.Parse(next); return u.Query().Get("_pageset") }()
	swap := func(from, to string) string { return strings.Replace(next, from, to, 1) }

	for _, tc := range []struct {
		name   string
		r      req
		status int
		says   string
	}{
		{"as given", get(next), 200, ""},
		{"another value", get(swap("family=refuse", "family=other")), 400, "differ"},
		{"another page size", get(swap("_count=5", "_count=6")), 400, "differ"},
		{"one more parameter", get(next + "&gender=female"), 400, "differ"},
		{"one more unknown parameter", get(next + "&colour=blue"), 400, "differ"},
		{"another type", get(strings.Replace(next, "/fhir/Patient?", "/fhir/Observation?", 1)), 400, "differ"},
		{"another caller", as("other", "other-secret", get(next)), 400, "differ"},
		{"another format", get(next + "&_format=json&_pretty=true"), 200, ""},
		{"unknown set", get(swap(key, "AAAAAAAAAAAAAAAAAAAAAAAA")), 410, "repeat the search"},
		{"malformed set", get(swap(key, "no%20such%20key")), 400, "_pageset"},
		{"past the end", get(swap("_page=2", "_page=9")), 200, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := e.in(t).must(tc.status, tc.r)
			if tc.says != "" && !strings.Contains(outcomeText(t, out), tc.says) {
				t.Errorf("%q does not say %q", outcomeText(t, out), tc.says)
			}
		})
	}
	// POST _search pages through GET links, its form body in the query.
	pr := e.must(200, req{method: http.MethodPost, path: "/fhir/Patient/_search", body: "family=refuse&_count=5",
		hdr: []string{"Content-Type", "application/x-www-form-urlencoded"}})
	if p2 := e.must(200, get(pagePath(t, link(pr, "next")))); len(matchIDs(p2)) != 5 {
		t.Errorf("POST _search page 2: %v", matchIDs(p2))
	}

	clk.Advance(resources.DefaultResultSetTTL + time.Second)
	if msg := outcomeText(t, e.must(410, get(next))); !strings.Contains(msg, "expired") {
		t.Errorf("expired set: %q", msg)
	}
	if _, err := e.app.Sweep(context.Background()); err != nil {
		t.Fatal(err)
	}
	var left int
	if err := e.store.SQL().QueryRow(`SELECT count(*) FROM search_set`).Scan(&left); err != nil || left != 0 {
		t.Errorf("after the sweep %d sets are left (%v)", left, err)
	}
}

// Past the bound of a set, the last page it holds says so and has no next link, and a
// page beyond it is a 400 saying to narrow the search.
func TestPagingBound(t *testing.T) { forEachBackend(t, testPagingBound) }

func testPagingBound(t *testing.T) {
	e := newEnv(t, withResultSets(resources.ResultSetOptions{Max: 7}))
	for i := range 12 {
		e.must(201, put(fmt.Sprintf("/Patient/b%02d", i), `{"resourceType":"Patient","name":[{"family":"Bound"}]}`))
	}
	r := e.must(200, get("/Patient?family=bound&_count=5"))
	if at(r.doc, "total") != float64(12) || outcomeEntry(t, r) != nil {
		t.Errorf("page 1: total %v, outcome %v", at(r.doc, "total"), outcomeEntry(t, r))
	}
	next := pagePath(t, link(r, "next"))
	r2 := e.must(200, get(next))
	if len(matchIDs(r2)) != 2 || link(r2, "next") != "" || at(r2.doc, "total") != float64(12) {
		t.Errorf("page 2: %v next %q total %v", matchIDs(r2), link(r2, "next"), at(r2.doc, "total"))
	}
	issues := outcomeEntry(t, r2)
	if len(issues) != 1 || at(issues[0], "code") != "too-costly" || !strings.Contains(at(issues[0], "diagnostics").(string), "first 7 of the 12") {
		t.Errorf("page 2 outcome %v", issues)
	}
	if msg := outcomeText(t, e.must(400, get(strings.Replace(next, "_page=2", "_page=3", 1)))); !strings.Contains(msg, "narrow the search") {
		t.Errorf("page 3: %q", msg)
	}

	// A page larger than the bound: the set holds that page, which says the rest
	// cannot be paged through.
	r = e.must(200, get("/Patient?family=bound&_count=10"))
	if issues := outcomeEntry(t, r); len(matchIDs(r)) != 10 || link(r, "next") != "" || at(r.doc, "total") != float64(12) ||
		len(issues) != 1 || !strings.Contains(at(issues[0], "diagnostics").(string), "first 10 of the 12") {
		t.Errorf("_count=10 past a bound of 7: %v next %q total %v outcome %v", matchIDs(r), link(r, "next"), at(r.doc, "total"), issues)
	}

	// Without sets (off), pages are offsets into the current matches, as before.
	off := newEnv(t, withResultSets(resources.ResultSetOptions{TTL: -1}))
	for i := range 7 {
		off.must(201, put(fmt.Sprintf("/Patient/o%d", i), `{"resourceType":"Patient","name":[{"family":"Off"}]}`))
	}
	r = off.must(200, get("/Patient?family=off&_count=5"))
	if n := link(r, "next"); n == "" || strings.Contains(n, "_pageset") {
		t.Errorf("sets off: next %q", n)
	}
	off.must(400, get("/Patient?family=off&_count=5&_pageset=abc"))
}

// Lenient searches (the default) ignore the parameters they cannot apply, leave them
// out of the self link and name each with its reason in an outcome entry; strict ones
// refuse them, naming all (conformance F13). Malformed values and unsupported modifiers
// are refused either way. FHIRBOX_SEARCH_HANDLING=strict makes strict the default.
func TestSearchHandling(t *testing.T) { forEachBackend(t, testSearchHandling) }

func testSearchHandling(t *testing.T) {
	e := newEnv(t)
	strict := newEnv(t, withStrictHandling())
	for _, env := range []*env{e, strict} {
		env.must(201, put("/Patient/h1", `{"resourceType":"Patient","gender":"female"}`))
		env.must(201, put("/Patient/h2", `{"resourceType":"Patient","gender":"male"}`))
	}
	const q = "/Patient?gender=female&colour=blue&_foo=1&_filter=name+eq+x&_format=json&_pretty=false"
	lenient := func(t *testing.T, r *resp) {
		t.Helper()
		if got := matchIDs(r); !slices.Equal(got, []string{"h1"}) {
			t.Errorf("matches %v, want h1: the ignored parameters must not change the ones applied", got)
		}
		if mode := at(r.doc, "entry", 0, "search", "mode"); mode != "outcome" {
			t.Errorf("first entry's mode %v, want outcome", mode)
		}
		issues := outcomeEntry(t, r)
		want := map[string]string{
			"colour":  `unknown search parameter "colour" for Patient`,
			"_foo":    `unknown search parameter "_foo" for Patient`,
			"_filter": `search parameter "_filter" is not supported`,
		}
		if len(issues) != len(want) {
			t.Errorf("%d issues, want %d: %v", len(issues), len(want), issues)
		}
		for _, is := range issues {
			name, _ := at(is, "expression", 0).(string)
			d, _ := at(is, "diagnostics").(string)
			if w, ok := want[name]; !ok || !strings.Contains(d, w) || at(is, "severity") != "warning" || at(is, "code") != "not-supported" {
				t.Errorf("issue %v", is)
			}
		}
		self := link(r, "self")
		for _, p := range []string{"colour", "_foo", "_filter", "_format", "_pretty"} {
			if strings.Contains(self, p) {
				t.Errorf("self link %q shows %s", self, p)
			}
		}
		if !strings.Contains(self, "gender=female") {
			t.Errorf("self link %q drops gender", self)
		}
	}
	strictRefusal := func(t *testing.T, r *resp) {
		t.Helper()
		msg := outcomeText(t, r)
		for _, p := range []string{"colour", "_foo", "_filter"} {
			if !strings.Contains(msg, p) {
				t.Errorf("strict error %q does not name %s", msg, p)
			}
		}
		if strings.Contains(msg, "_format") || strings.Contains(msg, "_pretty") {
			t.Errorf("strict error %q names a parameter the HTTP layer applies", msg)
		}
	}
	t.Run("lenient by default", func(t *testing.T) { lenient(t, e.in(t).must(200, get(q))) })
	t.Run("Prefer handling=lenient", func(t *testing.T) { lenient(t, e.in(t).must(200, get(q, "Prefer", "handling=lenient"))) })
	t.Run("Prefer handling=strict", func(t *testing.T) { strictRefusal(t, e.in(t).must(400, get(q, "Prefer", "handling=strict"))) })
	t.Run("strict by setting", func(t *testing.T) { strictRefusal(t, strict.in(t).must(400, get(q))) })
	t.Run("setting strict, Prefer lenient", func(t *testing.T) {
		lenient(t, strict.in(t).must(200, get(q, "Prefer", "return=minimal, handling=lenient")))
	})
	t.Run("nothing ignored, no outcome", func(t *testing.T) {
		r := e.in(t).must(200, get("/Patient?gender=female&_format=json"))
		if outcomeEntry(t, r) != nil {
			t.Errorf("outcome entry without an ignored parameter: %s", r.raw)
		}
		strict.in(t).must(200, get("/Patient?gender=female&_format=json"))
	})
	for _, bad := range []string{"/Patient?gender:fuzzy=x", "/Patient?birthdate=notadate", "/Patient?_count=abc", "/Patient?_sort=colour"} {
		t.Run("refused either way "+bad, func(t *testing.T) {
			e.in(t).must(400, get(bad))
			e.in(t).must(400, get(bad, "Prefer", "handling=lenient"))
			strict.in(t).must(400, get(bad, "Prefer", "handling=lenient"))
		})
	}
	t.Run("every page reports", func(t *testing.T) {
		e := e.in(t)
		for i := range 4 {
			e.must(201, put(fmt.Sprintf("/Patient/hp%d", i), `{"resourceType":"Patient","gender":"other"}`))
		}
		r := e.must(200, get("/Patient?gender=other&colour=blue&_count=2"))
		r2 := e.must(200, get(pagePath(t, link(r, "next"))))
		if len(outcomeEntry(t, r2)) != 1 || len(matchIDs(r2)) != 2 {
			t.Errorf("page 2: %s", r2.raw)
		}
	})
}

// The CapabilityStatement lists every parameter with its type and documentation (the
// modifiers it takes among it), the _include and _revinclude values of each type, and
// the parameters of every type at the system level; it is built once per base
// (conformance F16).
func TestCapabilitySearch(t *testing.T) { forEachBackend(t, testCapabilitySearch) }

func testCapabilitySearch(t *testing.T) {
	e := newEnv(t)
	r := e.must(200, req{method: http.MethodGet, path: "/fhir/metadata", anonymous: true})
	t.Logf("/fhir/metadata: %d bytes", len(r.raw))
	if again := e.must(200, req{method: http.MethodGet, path: "/fhir/metadata", anonymous: true}); string(again.raw) != string(r.raw) {
		t.Error("the statement changed between two requests")
	}
	resource := func(typ string) map[string]any {
		for _, res := range at(r.doc, "rest", 0, "resource").([]any) {
			if at(res, "type") == typ {
				return res.(map[string]any)
			}
		}
		t.Fatalf("%s not listed", typ)
		return nil
	}
	strs := func(v any) []string {
		var out []string
		for _, x := range v.([]any) {
			out = append(out, x.(string))
		}
		return out
	}
	params := func(v any) map[string][2]string {
		out := map[string][2]string{}
		for _, sp := range v.([]any) {
			out[at(sp, "name").(string)] = [2]string{at(sp, "type").(string), at(sp, "documentation").(string)}
		}
		return out
	}
	reg := e.svc.Registry()
	for _, typ := range []string{"Patient", "Observation"} {
		res := resource(typ)
		got := params(res["searchParam"])
		td, _ := reg.Type(typ)
		// The registry's, and _text and _content, which every type has outside it.
		if len(got) != len(td.ParamNames())+2 || got["_text"][0] != "string" || got["_content"][0] != "string" {
			t.Errorf("%s: %d parameters listed, the registry has %d and _text, _content", typ, len(got), len(td.ParamNames()))
		}
		for _, pn := range td.ParamNames() {
			p := td.Params[pn]
			if g := got[pn]; g[0] != string(p.Type) || !strings.Contains(g[1], p.Description) || !strings.Contains(g[1], "Modifiers:") {
				t.Errorf("%s.%s: %v", typ, pn, g)
			}
		}
	}
	pat := params(resource("Patient")["searchParam"])
	for name, doc := range map[string]string{
		"family":       "Modifiers: :exact, :contains, :missing.",
		"gender":       "Gender of the patient\n\nModifiers: :not, :missing, :text.",
		"organization": "Modifiers: :missing, :identifier, :[type] (Organization).",
		"_id":          "Modifiers: :not.",
		"_lastUpdated": "Modifiers: none.",
	} {
		if !strings.HasSuffix(pat[name][1], doc) {
			t.Errorf("Patient %s documentation %q, want it to end %q", name, pat[name][1], doc)
		}
	}
	if inc := strs(resource("Patient")["searchInclude"]); !slices.Contains(inc, "Patient:organization") || !slices.Contains(inc, "Patient:general-practitioner") {
		t.Errorf("Patient searchInclude %v", inc)
	}
	if inc := strs(resource("Observation")["searchInclude"]); !slices.Contains(inc, "Observation:subject") || !slices.Contains(inc, "Observation:patient") {
		t.Errorf("Observation searchInclude %v", inc)
	}
	rev := strs(resource("Patient")["searchRevInclude"])
	for _, want := range []string{"Observation:patient", "Observation:subject", "Patient:link", "Encounter:patient"} {
		if !slices.Contains(rev, want) {
			t.Errorf("Patient searchRevInclude %v lacks %s", rev, want)
		}
	}
	if slices.Contains(rev, "Patient:organization") || slices.ContainsFunc(rev, func(s string) bool { return strings.HasPrefix(s, "Session:") }) {
		t.Errorf("Patient searchRevInclude %v holds a parameter that cannot point at a Patient", rev)
	}
	common := params(at(r.doc, "rest", 0, "searchParam"))
	for _, want := range []string{"_id", "_lastUpdated", "_tag", "_profile", "_security", "_source"} {
		if _, ok := common[want]; !ok {
			t.Errorf("rest.searchParam %v lacks %s", common, want)
		}
	}
	if _, ok := common["name"]; ok {
		t.Error("rest.searchParam lists name, which not every type has")
	}
	if d, _ := at(r.doc, "rest", 0, "documentation").(string); !strings.Contains(d, "_has") || !strings.Contains(d, "handling=strict") {
		t.Errorf("rest.documentation %q", d)
	}
}
