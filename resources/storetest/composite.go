package storetest

import (
	"testing"
	"time"

	"github.com/fhirbox/fhirbox/resources"
)

// pPair is a composite of a token, a quantity and a date, indexed as
// resources.ComponentParam rows that Group ties to one element.
var pPair = &resources.SearchParam{Name: "pair", Type: resources.TypeComposite, Components: []resources.Component{
	{Code: "k", Type: resources.TypeToken}, {Code: "v", Type: resources.TypeQuantity}, {Code: "d", Type: resources.TypeDate},
}}

// pairRows returns the rows of one element (group g) of pPair.
func pairRows(idx *resources.Index, g int, k string, v float64, y int) {
	idx.Tokens = append(idx.Tokens, resources.TokenEntry{Param: resources.ComponentParam("pair", 0), Code: k, Group: g})
	idx.Numbers = append(idx.Numbers, resources.NumberEntry{Param: resources.ComponentParam("pair", 1), Value: v, Group: g})
	idx.Dates = append(idx.Dates, resources.DateEntry{Param: resources.ComponentParam("pair", 2), Low: day(y, 1, 1), High: day(y+1, 1, 1), Group: g})
}

// A composite value matches the resources with one element (one group) whose rows
// match every part; rows of different elements never combine, and a write replaces
// the groups with the index rows.
func testSearchComposite(t *testing.T, be *Backend) {
	s := be.Open(t)
	a, b := &resources.Index{}, &resources.Index{}
	pairRows(a, 1, "x", 10, 2020)
	pairRows(a, 2, "y", 20, 2021)
	pairRows(b, 1, "x", 20, 2021)
	put(t, s, "Observation", "a", t0, `{}`, a)
	put(t, s, "Observation", "b", t0.Add(time.Minute), `{}`, b)
	put(t, s, "Observation", "c", t0.Add(2*time.Minute), `{}`, nil)
	pair := func(k string, v float64, y int) resources.Value {
		return resources.Value{Components: []resources.Value{code(k), num("", v, 0.5), year("", y)}}
	}
	for _, tc := range []struct {
		name string
		c    resources.Clause
		want string
	}{
		{"one element", cl(pPair, "", pair("x", 10, 2020)), "a"},
		{"the other element", cl(pPair, "", pair("y", 20, 2021)), "a"},
		{"second resource", cl(pPair, "", pair("x", 20, 2021)), "b"},
		{"parts of two elements", cl(pPair, "", pair("x", 20, 2020)), ""},
		{"or", cl(pPair, "", pair("x", 10, 2020), pair("x", 20, 2021)), "a b"},
		{"prefix in a part", cl(pPair, "", resources.Value{Components: []resources.Value{code("x"), num(resources.PrefixGt, 15, 0.5), year("", 2021)}}), "b"},
		{"missing", missing(pPair, true), "c"},
		{"present", missing(pPair, false), "a b"},
	} {
		res := search(t, s, &resources.Query{Type: "Observation", Count: 10, Clauses: []resources.Clause{tc.c}, Sort: []resources.SortKey{{Param: pID}}})
		if got := ids(res.Entries); got != tc.want || res.Total != len(res.Entries) {
			t.Errorf("%s: got %q (total %d), want %q", tc.name, got, res.Total, tc.want)
		}
	}
	a2 := &resources.Index{}
	pairRows(a2, 1, "x", 10, 2020)
	put(t, s, "Observation", "a", t0.Add(time.Hour), `{}`, a2)
	if got := ids(search(t, s, &resources.Query{Type: "Observation", Count: 10, Clauses: []resources.Clause{cl(pPair, "", pair("y", 20, 2021))}}).Entries); got != "" {
		t.Errorf("after the update, the old element still matches: %q", got)
	}
}
