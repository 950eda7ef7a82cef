package server_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/fhirbox/fhirbox/resources"
)

// A quantity parameter that selects Range values compares them as ranges
// (conformance F20): eq when the search value's precision contains the range, gt/ge/lt/le when the
// range reaches above (below) the value, sa/eb when it lies wholly above (below), ap
// when they overlap; a missing bound is open. Plain values of the same parameter keep
// their meaning. Rewriting the index (fhirbox reindex) keeps the answers, and a
// SearchParameter that selects Ranges indexes the existing resources' Ranges too.
func TestQuantityRanges(t *testing.T) { forEachBackend(t, testQuantityRanges) }

func testQuantityRanges(t *testing.T) {
	e := newEnv(t)
	const ucum = `"system":"http://unitsofmeasure.org"`
	q := func(v, code string) string { return `{"value":` + v + `,` + ucum + `,"code":"` + code + `"}` }
	for _, c := range []struct{ id, onset string }{
		{"c0", ``},
		{"c1", `,"onsetRange":{"low":` + q("10", "a") + `,"high":` + q("20", "a") + `}`},
		{"c2", `,"onsetRange":{"low":` + q("30", "a") + `}`}, // 30 years and over
		{"c3", `,"onsetRange":{"high":` + q("5", "a") + `}`}, // up to 5 years
		{"c4", `,"onsetAge":` + q("15", "a")},                // a plain Age
		{"c5", `,"onsetRange":{"low":` + q("10", "mo") + `,"high":` + q("20", "mo") + `}`},
		{"c6", `,"onsetRange":{"low":` + q("40", "a") + `,"high":` + q("40.4", "a") + `}`},
		{"c7", `,"onsetRange":{"low":{"unit":"a"}}`}, // no number: no value
	} {
		e.must(http.StatusCreated, put("/fhir/Condition/"+c.id, `{"resourceType":"Condition","subject":{"reference":"Patient/p"}`+c.onset+`}`))
	}
	cases := []struct {
		query string
		want  []string
	}{
		{"onset-age=15", []string{"c4"}}, // [14.5, 15.5) contains no range
		{"onset-age=40", []string{"c6"}}, // [39.5, 40.5) contains [40, 40.4]
		{"onset-age=40.2", nil},          // [40.15, 40.25) does not
		{"onset-age=gt15", []string{"c1", "c2", "c5", "c6"}},
		{"onset-age=gt15|http://unitsofmeasure.org|a", []string{"c1", "c2", "c6"}},
		{"onset-age=gt15||a", []string{"c1", "c2", "c6"}},
		{"onset-age=ge20", []string{"c1", "c2", "c5", "c6"}},
		{"onset-age=lt8", []string{"c3"}},
		{"onset-age=le10", []string{"c1", "c3", "c5"}},
		{"onset-age=sa9", []string{"c1", "c2", "c4", "c5", "c6"}},
		{"onset-age=eb25", []string{"c1", "c3", "c4", "c5"}},
		{"onset-age=ap19", []string{"c1", "c5"}},
		{"onset-age=ne40||a", []string{"c1", "c2", "c3", "c4"}},
		{"onset-age=lt8,sa35", []string{"c3", "c6"}},
		{"onset-age:missing=true", []string{"c0", "c7"}},
		{"onset-age:missing=false", []string{"c1", "c2", "c3", "c4", "c5", "c6"}},
	}
	check := func(t *testing.T, param string) {
		t.Helper()
		for _, tc := range cases {
			query := strings.Replace(tc.query, "onset-age", param, 1)
			t.Run(query, func(t *testing.T) {
				r := e.in(t).must(http.StatusOK, get("/fhir/Condition?"+query))
				if got := entryIDs(r); !sameIDs(got, tc.want) {
					t.Errorf("got %v, want %v", got, tc.want)
				}
			})
		}
	}
	t.Run("written", func(t *testing.T) { check(t, "onset-age") })

	// The index rewritten as `fhirbox reindex` does: a Range's two rows stay paired.
	if _, err := e.svc.Reindex(context.Background(), resources.ReindexOptions{Types: []string{"Condition"}}); err != nil {
		t.Fatal(err)
	}
	t.Run("reindexed", func(t *testing.T) { check(t, "onset-age") })

	// A SearchParameter that selects Ranges indexes those of existing resources.
	e.must(http.StatusCreated, put("/fhir/SearchParameter/onset-range", `{"resourceType":"SearchParameter","status":"active",
		"name":"onset-range","url":"http://example.org/onset-range","description":"onset as a range",
		"code":"onset-range","base":["Condition"],"type":"quantity","expression":"Condition.onset.as(Age) | Condition.onset.as(Range)"}`))
	e.waitActive("onset-range")
	t.Run("SearchParameter", func(t *testing.T) { check(t, "onset-range") })

	// Ranges in a context-quantity, a parameter of many types.
	e.must(http.StatusCreated, put("/fhir/PlanDefinition/pd1", `{"resourceType":"PlanDefinition","status":"active",
		"useContext":[{"code":{"code":"age"},"valueRange":{"low":`+q("18", "a")+`,"high":`+q("65", "a")+`}}]}`))
	e.must(http.StatusCreated, put("/fhir/PlanDefinition/pd2", `{"resourceType":"PlanDefinition","status":"active",
		"useContext":[{"code":{"code":"age"},"valueQuantity":`+q("70", "a")+`}]}`))
	for query, want := range map[string][]string{
		"context-quantity=gt60":  {"pd1", "pd2"},
		"context-quantity=lt18":  nil,
		"context-quantity=le18":  {"pd1"},
		"context-quantity=eb100": {"pd1", "pd2"},
		"context-quantity=sa66":  {"pd2"},
	} {
		if got := entryIDs(e.must(http.StatusOK, get("/fhir/PlanDefinition?"+query))); !sameIDs(got, want) {
			t.Errorf("%s: got %v, want %v", query, got, want)
		}
	}
}
