package server_test

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

// matchKeys lists the "Type/id" of a Bundle's match entries.
func matchKeys(r *resp) []string {
	var keys []string
	entries, _ := at(r.doc, "entry").([]any)
	for _, en := range entries {
		if at(en, "search", "mode") == "match" {
			typ, _ := at(en, "resource", "resourceType").(string)
			id, _ := at(en, "resource", "id").(string)
			keys = append(keys, typ+"/"+id)
		}
	}
	return keys
}

// A system-level search pages through a stored result set as a type-level one does
// (conformance F10): its set holds type and id, so the same id in two types is two
// matches; writes between pages neither repeat nor skip a match of the first page's
// moment; the links carry _type; a page request for other types, or a type-level
// search's set, is refused.
func TestSystemStablePaging(t *testing.T) { forEachBackend(t, testSystemStablePaging) }

func testSystemStablePaging(t *testing.T) {
	clk := &clock{t: time.Now().UTC().Truncate(time.Second)}
	e := newEnv(t, withClock(clk))
	write := clockedWriter(t, e, clk)
	// Resource i is a Patient when i is even, a Practitioner when odd, with id
	// family-(i/2): each id is held by both types.
	person := func(family string, i int, given string) (req, string) {
		typ := "Patient"
		if i%2 == 1 {
			typ = "Practitioner"
		}
		key := fmt.Sprintf("%s/%s-%02d", typ, strings.ToLower(family), i/2)
		return put("/fhir/"+key, fmt.Sprintf(`{"resourceType":%q,"name":[{"family":%q,"given":[%q]}]}`, typ, family, given)), key
	}
	for _, tc := range []struct {
		name, family, query string
		page1               []int // the resources of page 1, by i
	}{
		{"newest first", "Syspager", "_type=Patient,Practitioner&family=syspager&_count=5", []int{23, 22, 21, 20, 19}},
		// By id, then by type: Patient before Practitioner.
		{"sorted by id", "Syssorter", "_type=Patient,Practitioner&family=syssorter&_count=5&_sort=_id", []int{0, 1, 2, 3, 4}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := e.in(t)
			var all []string
			for i := range 24 {
				r, key := person(tc.family, i, "g")
				all = append(all, key)
				write(r)
			}
			r := e.must(http.StatusOK, get("/fhir?"+tc.query))
			var want []string
			for _, i := range tc.page1 {
				want = append(want, all[i])
			}
			if got := matchKeys(r); !slices.Equal(got, want) {
				t.Fatalf("page 1: %v, want %v", got, want)
			}
			if at(r.doc, "total") != float64(24) {
				t.Errorf("page 1 total %v, want 24", at(r.doc, "total"))
			}
			next := link(r, "next")
			nu, _ := url.Parse(next)
			if nu == nil || nu.Path != "/fhir" || nu.Query().Get("_pageset") == "" || nu.Query().Get("_page") != "2" ||
				nu.Query().Get("_type") != "Patient,Practitioner" || nu.Query().Get("family") != strings.ToLower(tc.family) {
				t.Fatalf("next link %q does not carry the search, its types, the set and the page", next)
			}

			// A Patient that sorts first in both orders, an update of resource 13 (on
			// page 3 in both), a deletion of resource 16.
			newer := put("/fhir/Patient/"+strings.ToLower(tc.family)+"-0", fmt.Sprintf(`{"resourceType":"Patient","name":[{"family":%q}]}`, tc.family))
			write(newer)
			upd, _ := person(tc.family, 13, "updated")
			write(upd)
			write(del("/fhir/" + all[16]))

			// The set is for these types and this search only.
			e.must(http.StatusBadRequest, get(pagePath(t, strings.Replace(next, "_type=Patient%2CPractitioner", "_type=Patient", 1))))
			e.must(http.StatusBadRequest, get(pagePath(t, strings.Replace(next, "/fhir?", "/fhir/Patient?", 1))))

			seen := map[string]int{}
			for _, k := range matchKeys(r) {
				seen[k]++
			}
			pages := 1
			for next != "" {
				r = e.must(http.StatusOK, get(pagePath(t, next)))
				pages++
				if at(r.doc, "total") != float64(24) {
					t.Errorf("page %d total %v, want 24", pages, at(r.doc, "total"))
				}
				for i, k := range matchKeys(r) {
					seen[k]++
					if k == all[13] && !strings.Contains(string(mustJSON(t, at(r.doc, "entry", i, "resource"))), "updated") {
						t.Errorf("%s shows its old content", k)
					}
				}
				next = link(r, "next")
				if pages > 10 {
					t.Fatal("next links do not end")
				}
			}
			if pages != 5 {
				t.Errorf("%d pages, want 5", pages)
			}
			for i, k := range all {
				if want := map[bool]int{true: 0, false: 1}[i == 16]; seen[k] != want {
					t.Errorf("%s seen %d times, want %d", k, seen[k], want)
				}
			}
			if n := seen["Patient/"+strings.ToLower(tc.family)+"-0"]; n != 0 {
				t.Errorf("the resource created after page 1 was seen %d times", n)
			}
		})
	}
	// A type-level search's set does not serve a system-level page.
	r := e.must(http.StatusOK, get("/fhir/Patient?family=syspager&_count=5"))
	typeLevel := pagePath(t, link(r, "next"))
	e.must(http.StatusBadRequest, get(strings.Replace(typeLevel, "/fhir/Patient?", "/fhir?_type=Patient&", 1)))
}

// Chains at the system level: each type's clause follows its own reference rows, and
// the caller must be allowed to search the type the chain leads to.
func TestSystemSearchChains(t *testing.T) { forEachBackend(t, testSystemSearchChains) }

func testSystemSearchChains(t *testing.T) {
	e := newEnv(t)
	seedChain(t, e)
	for _, r := range []struct{ path, body string }{
		{"/DiagnosticReport/r1", `{"resourceType":"DiagnosticReport","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/p1"}}`},
		{"/DiagnosticReport/r2", `{"resourceType":"DiagnosticReport","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/p2"}}`},
		// The same id as an Observation, about another patient.
		{"/DiagnosticReport/o2", `{"resourceType":"DiagnosticReport","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/p1"}}`},
		{"/DiagnosticReport/r3", `{"resourceType":"DiagnosticReport","status":"final","code":{"text":"x"},"subject":{"reference":"Location/d1"}}`},
	} {
		e.must(http.StatusCreated, put(r.path, r.body))
	}
	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"_type=Observation,DiagnosticReport&subject:Patient.family=quinn", []string{"Observation/o1", "DiagnosticReport/r1", "DiagnosticReport/o2"}},
		{"_type=Observation,DiagnosticReport&subject:Patient.family=smith", []string{"Observation/o2", "DiagnosticReport/r2"}},
		{"_type=Observation,DiagnosticReport&subject:Patient.family=peter", []string{"Observation/o5"}},                                                         // p4 is deleted
		{"_type=Observation,DiagnosticReport&subject:Patient.organization.name=acme", []string{"Observation/o1", "DiagnosticReport/r1", "DiagnosticReport/o2"}}, // two links
		{"_type=Observation,DiagnosticReport&subject:Location.name=peter", []string{"Observation/o3", "DiagnosticReport/r3"}},
		{"_type=Observation,DiagnosticReport&subject:Patient.family=quinn&_count=2&_sort=_id", []string{"Observation/o1", "DiagnosticReport/o2", "DiagnosticReport/r1"}},
		{"_type=Observation,DiagnosticReport&subject:Patient.family=nobody", nil},
		// Reverse chains: each resource is the target of its own type's rows.
		{"_type=Patient,Location&_has:Observation:subject:code=1234-5", []string{"Patient/p1", "Patient/p2"}},
		{"_type=Patient,Location&_has:Observation:subject:code=9999-9", []string{"Location/d1"}},
		{"_type=Patient,Location&_has:Observation:subject:code=1234-5&_has:Observation:subject:status=final", []string{"Patient/p1", "Patient/p2"}},
	} {
		t.Run(tc.query, func(t *testing.T) {
			var got []string
			path := "/fhir?" + tc.query
			for pages := 0; path != "" && pages < 5; pages++ {
				r := e.in(t).must(http.StatusOK, get(path))
				got = append(got, matchKeys(r)...)
				path = ""
				if next := link(r, "next"); next != "" {
					path = pagePath(t, next)
				}
			}
			if strings.Contains(tc.query, "_sort") {
				if !slices.Equal(got, tc.want) {
					t.Errorf("got %v, want %v in this order", got, tc.want)
				}
			} else if !sameIDs(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
	// A _has whose reference can never point at one of the types is a 400 naming it.
	msg := outcomeText(t, e.must(http.StatusBadRequest, get("/fhir?_type=Patient,Practitioner&_has:Observation:subject:code=1234-5")))
	if !strings.Contains(msg, "never refers to Practitioner") {
		t.Errorf("400 says %q", msg)
	}
	// A chain to a type the caller may not search is refused at the system level too.
	e.must(http.StatusCreated, put("/Client/app", `{"secret":"app-secret","grant_types":["basic"]}`))
	e.must(http.StatusCreated, yamlPut("/AccessPolicy/app", `
engine: matcho
link: [{reference: Client/app}]
matcho: {request-method: get, uri: '#^/fhir(/Observation|/DiagnosticReport)?$'}
`))
	msg = outcomeText(t, e.must(http.StatusForbidden, as("app", "app-secret", get("/fhir?_type=Observation,DiagnosticReport&subject:Patient.family=quinn"))))
	if !strings.Contains(msg, "to Patient") {
		t.Errorf("403 says %q", msg)
	}
}
