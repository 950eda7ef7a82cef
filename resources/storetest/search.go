package storetest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/fhirbox/fhirbox/resources"
)

// Parameters built by hand, so these tests do not depend on the registry's definitions.
var (
	pName       = &resources.SearchParam{Name: "name", Type: resources.TypeString}
	pGender     = &resources.SearchParam{Name: "gender", Type: resources.TypeToken}
	pIdentifier = &resources.SearchParam{Name: "identifier", Type: resources.TypeToken}
	pBirthdate  = &resources.SearchParam{Name: "birthdate", Type: resources.TypeDate}
	pLength     = &resources.SearchParam{Name: "length", Type: resources.TypeNumber}
	pWeight     = &resources.SearchParam{Name: "weight", Type: resources.TypeQuantity}
	pGP         = &resources.SearchParam{Name: "general-practitioner", Type: resources.TypeReference}
	pURL        = &resources.SearchParam{Name: "url", Type: resources.TypeURI}
	pID         = &resources.SearchParam{Name: "_id", Type: resources.TypeToken, Column: "id"}
	pUpdated    = &resources.SearchParam{Name: "_lastUpdated", Type: resources.TypeDate, Column: "last_updated"}
)

const (
	genderSys = "http://hl7.org/fhir/administrative-gender"
	ucum      = "http://unitsofmeasure.org"
)

func day(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

// seed writes the search fixture:
//
//	p1 "Anna Smith" + "ZZ Top", female (system), sys1|A1, born in 1980, 170, 70 kg,
//	   Practitioner/d1, http://ex.org/a/b; updated t0+1h
//	p2 "Bob_Jones", male (system), sys2|A1, born 1990-05-01, 180.5, 80000 g,
//	   Organization/d1, http://ex.org/a; updated t0+2h
//	p3 "Annabel 100%", female (no system), born 2000-01-01T10:00:00.000 (1 ms),
//	   99.5, 70 lbs (no system), Practitioner/d2; updated t0+3h
//	p4 "Zed", nothing else; updated t0+4h
//	p5 "Anna", deleted; an Observation "anna".
func seed(t testing.TB, s Store) {
	t.Helper()
	h := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Hour) }
	put(t, s, "Patient", "p1", h(1), `{"id":"p1"}`, &resources.Index{
		Strings: []resources.StringEntry{
			{Param: "name", Value: "anna smith", Exact: "Anna Smith"},
			{Param: "name", Value: "zz top", Exact: "ZZ Top"},
		},
		Tokens: []resources.TokenEntry{
			{Param: "gender", System: genderSys, Code: "female"},
			{Param: "identifier", System: "sys1", Code: "A1"},
			{Param: "url", Code: "http://ex.org/a/b"},
		},
		Dates:      []resources.DateEntry{{Param: "birthdate", Low: day(1980, 1, 1), High: day(1981, 1, 1)}},
		Numbers:    []resources.NumberEntry{{Param: "length", Value: 170}, {Param: "weight", Value: 70, System: ucum, Code: "kg"}},
		References: []resources.ReferenceEntry{{Param: "general-practitioner", TargetType: "Practitioner", TargetID: "d1"}},
	})
	put(t, s, "Patient", "p2", h(2), `{"id":"p2"}`, &resources.Index{
		Strings: []resources.StringEntry{{Param: "name", Value: "bob_jones", Exact: "Bob_Jones"}},
		Tokens: []resources.TokenEntry{
			{Param: "gender", System: genderSys, Code: "male"},
			{Param: "identifier", System: "sys2", Code: "A1"},
			{Param: "url", Code: "http://ex.org/a"},
		},
		Dates:      []resources.DateEntry{{Param: "birthdate", Low: day(1990, 5, 1), High: day(1990, 5, 2)}},
		Numbers:    []resources.NumberEntry{{Param: "length", Value: 180.5}, {Param: "weight", Value: 80000, System: ucum, Code: "g"}},
		References: []resources.ReferenceEntry{{Param: "general-practitioner", TargetType: "Organization", TargetID: "d1"}},
	})
	born3 := time.Date(2000, 1, 1, 10, 0, 0, 0, time.UTC)
	put(t, s, "Patient", "p3", h(3), `{"id":"p3"}`, &resources.Index{
		Strings:    []resources.StringEntry{{Param: "name", Value: "annabel 100%", Exact: "Annabel 100%"}},
		Tokens:     []resources.TokenEntry{{Param: "gender", Code: "female"}},
		Dates:      []resources.DateEntry{{Param: "birthdate", Low: born3, High: born3.Add(time.Millisecond)}},
		Numbers:    []resources.NumberEntry{{Param: "length", Value: 99.5}, {Param: "weight", Value: 70, Code: "lbs"}},
		References: []resources.ReferenceEntry{{Param: "general-practitioner", TargetType: "Practitioner", TargetID: "d2"}},
	})
	put(t, s, "Patient", "p4", h(4), `{"id":"p4"}`, &resources.Index{
		Strings: []resources.StringEntry{{Param: "name", Value: "zed", Exact: "Zed"}},
	})
	put(t, s, "Patient", "p5", h(5), `{"id":"p5"}`, &resources.Index{
		Strings: []resources.StringEntry{{Param: "name", Value: "anna", Exact: "Anna"}},
	})
	del(t, s, "Patient", "p5", h(6))
	put(t, s, "Observation", "o1", h(1), `{"id":"o1"}`, &resources.Index{
		Strings: []resources.StringEntry{{Param: "name", Value: "anna", Exact: "Anna"}},
		Tokens:  []resources.TokenEntry{{Param: "gender", Code: "female"}},
	})
}

// Helpers building clauses and values as the parser would.
func cl(p *resources.SearchParam, mod string, vs ...resources.Value) resources.Clause {
	return resources.Clause{Param: p, Modifier: mod, Values: vs}
}

func missing(p *resources.SearchParam, m bool) resources.Clause {
	return resources.Clause{Param: p, Modifier: "missing", Missing: m}
}

func str(s string) resources.Value { return resources.Value{Str: s} }

func code(c string) resources.Value { return resources.Value{Code: c, MatchCode: true} }

func sysCode(sys, c string) resources.Value {
	return resources.Value{System: sys, MatchSystem: true, Code: c, MatchCode: c != ""}
}

func date(p resources.Prefix, low, high time.Time) resources.Value {
	return resources.Value{Prefix: p, Low: low, High: high}
}

func year(p resources.Prefix, y int) resources.Value { return date(p, day(y, 1, 1), day(y+1, 1, 1)) }

// num is a number written with the given number of decimals (the precision sets the eq
// range).
func num(p resources.Prefix, n, half float64) resources.Value {
	return resources.Value{Prefix: p, Number: n, NumLow: n - half, NumHigh: n + half}
}

func qty(p resources.Prefix, n, half float64, sys, c string) resources.Value {
	v := num(p, n, half)
	v.System, v.MatchSystem = sys, sys != ""
	v.Code, v.MatchCode = c, c != ""
	return v
}

func ref(typ, id string) resources.Value { return resources.Value{RefType: typ, RefID: id} }

func search(t testing.TB, s Store, q *resources.Query) *resources.SearchResult {
	t.Helper()
	if q.Type == "" {
		q.Type = "Patient"
	}
	res, err := s.Search(context.Background(), q)
	if err != nil {
		t.Fatalf("Search: %v", err)
	}
	return res
}

func ids(rs []*resources.Resource) string {
	var parts []string
	for _, r := range rs {
		parts = append(parts, r.ID)
	}
	return strings.Join(parts, " ")
}

func testSearchFilters(t *testing.T, be *Backend) {
	s := be.Open(t)
	seed(t, s)
	u := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Hour) }
	// _lastUpdated range [t0+2h, t0+3h): p2 at exactly its start, p3 at exactly its end.
	upd := func(p resources.Prefix) resources.Value { return date(p, u(2), u(3)) }

	for _, tc := range []struct {
		name    string
		clauses []resources.Clause
		want    string // ids, sorted by id (the test sorts by _id)
	}{
		{"no clause: live patients only", nil, "p1 p2 p3 p4"},

		// string
		{"string prefix", []resources.Clause{cl(pName, "", str("ann"))}, "p1 p3"},
		{"string prefix with space", []resources.Clause{cl(pName, "", str("anna s"))}, "p1"},
		{"string second value of a resource", []resources.Clause{cl(pName, "", str("zz"))}, "p1"},
		{"string not a prefix", []resources.Clause{cl(pName, "", str("smith"))}, ""},
		{"string or", []resources.Clause{cl(pName, "", str("bob"), str("zed"))}, "p2 p4"},
		{"string underscore is literal", []resources.Clause{cl(pName, "", str("bob_"))}, "p2"},
		{"string underscore is no wildcard", []resources.Clause{cl(pName, "", str("b_b"))}, ""},
		{"string percent is no wildcard", []resources.Clause{cl(pName, "", str("bob%"))}, ""},
		{"string percent is literal", []resources.Clause{cl(pName, "", str("annabel 100%"))}, "p3"},
		{"string backslash is literal", []resources.Clause{cl(pName, "", str(`ann\`))}, ""},
		{"string exact", []resources.Clause{cl(pName, "exact", str("Anna Smith"))}, "p1"},
		{"string exact is case-sensitive", []resources.Clause{cl(pName, "exact", str("anna smith"))}, ""},
		{"string exact is whole", []resources.Clause{cl(pName, "exact", str("Anna"))}, ""},
		{"string contains", []resources.Clause{cl(pName, "contains", str("smith"))}, "p1"},
		{"string contains percent", []resources.Clause{cl(pName, "contains", str("%"))}, "p3"},
		{"string contains underscore", []resources.Clause{cl(pName, "contains", str("_"))}, "p2"},
		{"string contains or", []resources.Clause{cl(pName, "contains", str("top"), str("ed"))}, "p1 p4"},

		// token
		{"token code", []resources.Clause{cl(pGender, "", code("female"))}, "p1 p3"},
		{"token system and code", []resources.Clause{cl(pGender, "", sysCode(genderSys, "female"))}, "p1"},
		{"token no system", []resources.Clause{cl(pGender, "", sysCode("", "female"))}, "p3"},
		{"token system only", []resources.Clause{cl(pGender, "", sysCode(genderSys, ""))}, "p1 p2"},
		{"token or", []resources.Clause{cl(pGender, "", code("female"), code("male"))}, "p1 p2 p3"},
		{"token code is case-sensitive", []resources.Clause{cl(pGender, "", code("Female"))}, ""},
		{"token identifier", []resources.Clause{cl(pIdentifier, "", sysCode("sys1", "A1"))}, "p1"},
		{"token identifier any system", []resources.Clause{cl(pIdentifier, "", code("A1"))}, "p1 p2"},
		{"token not", []resources.Clause{cl(pGender, "not", code("female"))}, "p2 p4"},
		{"token not with system", []resources.Clause{cl(pGender, "not", sysCode(genderSys, "female"))}, "p2 p3 p4"},
		{"token not or", []resources.Clause{cl(pGender, "not", code("female"), code("male"))}, "p4"},

		// uri
		{"uri", []resources.Clause{cl(pURL, "", str("http://ex.org/a"))}, "p2"},
		{"uri is exact", []resources.Clause{cl(pURL, "", str("http://ex.org/"))}, ""},
		{"uri not", []resources.Clause{cl(pURL, "not", str("http://ex.org/a"))}, "p1 p3 p4"},
		{"uri below", []resources.Clause{cl(pURL, "below", str("http://ex.org/a"))}, "p1 p2"},
		{"uri above", []resources.Clause{cl(pURL, "above", str("http://ex.org/a/b/c"))}, "p1 p2"},
		{"uri above shorter", []resources.Clause{cl(pURL, "above", str("http://ex.org/a"))}, "p2"},

		// date: p1 [1980, 1981), p2 [1990-05-01, 1990-05-02), p3 one millisecond in 2000
		{"date eq year", []resources.Clause{cl(pBirthdate, "", year("", 1980))}, "p1"},
		{"date eq explicit", []resources.Clause{cl(pBirthdate, "", year(resources.PrefixEq, 1990))}, "p2"},
		{"date eq narrower than the value", []resources.Clause{cl(pBirthdate, "", date("", day(1980, 6, 1), day(1980, 7, 1)))}, ""},
		{"date eq day", []resources.Clause{cl(pBirthdate, "", date("", day(1990, 5, 1), day(1990, 5, 2)))}, "p2"},
		{"date eq instant", []resources.Clause{cl(pBirthdate, "", date("",
			time.Date(2000, 1, 1, 10, 0, 0, 0, time.UTC), time.Date(2000, 1, 1, 10, 0, 1, 0, time.UTC)))}, "p3"},
		{"date eq or", []resources.Clause{cl(pBirthdate, "", year("", 1980), year("", 2000))}, "p1 p3"},
		{"date ne", []resources.Clause{cl(pBirthdate, "", year(resources.PrefixNe, 1990))}, "p1 p3"},
		{"date lt", []resources.Clause{cl(pBirthdate, "", year(resources.PrefixLt, 1990))}, "p1"},
		{"date le", []resources.Clause{cl(pBirthdate, "", year(resources.PrefixLe, 1990))}, "p1 p2"},
		{"date gt", []resources.Clause{cl(pBirthdate, "", year(resources.PrefixGt, 1990))}, "p3"},
		{"date ge", []resources.Clause{cl(pBirthdate, "", year(resources.PrefixGe, 1990))}, "p2 p3"},
		{"date sa", []resources.Clause{cl(pBirthdate, "", year(resources.PrefixSa, 1990))}, "p3"},
		{"date eb", []resources.Clause{cl(pBirthdate, "", year(resources.PrefixEb, 1990))}, "p1"},
		{"date ap overlaps", []resources.Clause{cl(pBirthdate, "", date(resources.PrefixAp, day(1980, 6, 1), day(1980, 7, 1)))}, "p1"},
		{"date ap", []resources.Clause{cl(pBirthdate, "", year(resources.PrefixAp, 1990))}, "p2"},
		{"date gt inside a range", []resources.Clause{cl(pBirthdate, "", date(resources.PrefixGt, day(1980, 6, 1), day(1980, 6, 2)))}, "p1 p2 p3"},
		{"date lt inside a range", []resources.Clause{cl(pBirthdate, "", date(resources.PrefixLt, day(1980, 6, 1), day(1980, 6, 2)))}, "p1"},

		// number: p1 170, p2 180.5, p3 99.5
		{"number eq", []resources.Clause{cl(pLength, "", num("", 170, 0.5))}, "p1"},
		{"number eq precision", []resources.Clause{cl(pLength, "", num(resources.PrefixEq, 100, 0.5))}, "p3"},
		{"number eq exact precision", []resources.Clause{cl(pLength, "", num("", 100.0, 0.05))}, ""},
		{"number ne", []resources.Clause{cl(pLength, "", num(resources.PrefixNe, 100, 0.5))}, "p1 p2"},
		{"number lt", []resources.Clause{cl(pLength, "", num(resources.PrefixLt, 170, 0.5))}, "p3"},
		{"number le", []resources.Clause{cl(pLength, "", num(resources.PrefixLe, 170, 0.5))}, "p1 p3"},
		{"number gt", []resources.Clause{cl(pLength, "", num(resources.PrefixGt, 170, 0.5))}, "p2"},
		{"number ge", []resources.Clause{cl(pLength, "", num(resources.PrefixGe, 170, 0.5))}, "p1 p2"},
		{"number sa", []resources.Clause{cl(pLength, "", num(resources.PrefixSa, 99.5, 0.05))}, "p1 p2"},
		{"number eb", []resources.Clause{cl(pLength, "", num(resources.PrefixEb, 180.5, 0.05))}, "p1 p3"},
		{"number ap", []resources.Clause{cl(pLength, "", num(resources.PrefixAp, 165, 0.5))}, "p1 p2"},
		{"number ap narrow", []resources.Clause{cl(pLength, "", num(resources.PrefixAp, 95, 0.5))}, "p3"},
		{"number ap misses", []resources.Clause{cl(pLength, "", num(resources.PrefixAp, 90, 0.5))}, ""},
		{"number or", []resources.Clause{cl(pLength, "", num("", 170, 0.5), num("", 99.5, 0.05))}, "p1 p3"},

		// quantity: p1 70 kg (ucum), p2 80000 g (ucum), p3 70 lbs (no system)
		{"quantity number only", []resources.Clause{cl(pWeight, "", qty("", 70, 0.5, "", ""))}, "p1 p3"},
		{"quantity system and code", []resources.Clause{cl(pWeight, "", qty("", 70, 0.5, ucum, "kg"))}, "p1"},
		{"quantity code only", []resources.Clause{cl(pWeight, "", qty("", 70, 0.5, "", "lbs"))}, "p3"},
		{"quantity wrong unit", []resources.Clause{cl(pWeight, "", qty("", 70, 0.5, ucum, "g"))}, ""},
		{"quantity gt with unit", []resources.Clause{cl(pWeight, "", qty(resources.PrefixGt, 100, 0.5, ucum, "g"))}, "p2"},

		// reference: p1 Practitioner/d1, p2 Organization/d1, p3 Practitioner/d2
		{"reference id", []resources.Clause{cl(pGP, "", ref("", "d1"))}, "p1 p2"},
		{"reference type and id", []resources.Clause{cl(pGP, "", ref("Practitioner", "d1"))}, "p1"},
		{"reference type modifier", []resources.Clause{cl(pGP, "Practitioner", ref("", "d1"))}, "p1"},
		{"reference wrong type", []resources.Clause{cl(pGP, "", ref("Organization", "d2"))}, ""},
		{"reference or", []resources.Clause{cl(pGP, "", ref("Organization", "d1"), ref("Practitioner", "d2"))}, "p2 p3"},

		// _id
		{"_id", []resources.Clause{cl(pID, "", code("p1"), code("p3"))}, "p1 p3"},
		{"_id of a deleted resource", []resources.Clause{cl(pID, "", code("p5"))}, ""},
		{"_id not", []resources.Clause{cl(pID, "not", code("p1"))}, "p2 p3 p4"},
		{"_id is case-sensitive", []resources.Clause{cl(pID, "", code("P1"))}, ""},

		// _lastUpdated: p1..p4 at t0+1h..4h; the range is [t0+2h, t0+3h)
		{"_lastUpdated eq", []resources.Clause{cl(pUpdated, "", upd(""))}, "p2"},
		{"_lastUpdated ne", []resources.Clause{cl(pUpdated, "", upd(resources.PrefixNe))}, "p1 p3 p4"},
		{"_lastUpdated lt", []resources.Clause{cl(pUpdated, "", upd(resources.PrefixLt))}, "p1"},
		{"_lastUpdated le", []resources.Clause{cl(pUpdated, "", upd(resources.PrefixLe))}, "p1 p2"},
		{"_lastUpdated gt", []resources.Clause{cl(pUpdated, "", upd(resources.PrefixGt))}, "p3 p4"},
		{"_lastUpdated ge", []resources.Clause{cl(pUpdated, "", upd(resources.PrefixGe))}, "p2 p3 p4"},
		{"_lastUpdated sa", []resources.Clause{cl(pUpdated, "", upd(resources.PrefixSa))}, "p3 p4"},
		{"_lastUpdated eb", []resources.Clause{cl(pUpdated, "", upd(resources.PrefixEb))}, "p1"},
		{"_lastUpdated ap", []resources.Clause{cl(pUpdated, "", upd(resources.PrefixAp))}, "p2"},
		{"_lastUpdated or", []resources.Clause{cl(pUpdated, "", date("", u(1), u(2)), date("", u(4), u(5)))}, "p1 p4"},

		// :missing
		{"missing true", []resources.Clause{missing(pGender, true)}, "p4"},
		{"missing false", []resources.Clause{missing(pGender, false)}, "p1 p2 p3"},
		{"missing date", []resources.Clause{missing(pBirthdate, true)}, "p4"},
		{"missing number", []resources.Clause{missing(pLength, false)}, "p1 p2 p3"},
		{"missing reference", []resources.Clause{missing(pGP, true)}, "p4"},
		{"missing string", []resources.Clause{missing(pName, true)}, ""},
		{"missing _id", []resources.Clause{missing(pID, true)}, ""},
		{"not missing _id", []resources.Clause{missing(pID, false)}, "p1 p2 p3 p4"},

		// clauses are AND-ed
		{"and", []resources.Clause{
			cl(pName, "", str("ann")), cl(pGender, "", code("female")), cl(pBirthdate, "", year(resources.PrefixGe, 1990)),
		}, "p3"},
		{"and same parameter", []resources.Clause{cl(pName, "", str("anna")), cl(pName, "", str("zz"))}, "p1"},
		{"and disjoint", []resources.Clause{cl(pName, "", str("bob")), cl(pGender, "", code("female"))}, ""},
		{"empty values constrain nothing", []resources.Clause{cl(pName, "")}, "p1 p2 p3 p4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := &resources.Query{Clauses: tc.clauses, Count: 100, Sort: []resources.SortKey{{Param: pID}}}
			res := search(t, s, q)
			if got := ids(res.Entries); got != tc.want {
				t.Errorf("ids = %q, want %q", got, tc.want)
			}
			if n := len(strings.Fields(tc.want)); res.Total != n {
				t.Errorf("total = %d, want %d", res.Total, n)
			}
			// The count statement agrees with the page.
			q.Count = 0
			if res := search(t, s, q); res.Total != len(strings.Fields(tc.want)) || len(res.Entries) != 0 {
				t.Errorf("count only: total %d, %d entries", res.Total, len(res.Entries))
			}
		})
	}
}

func testSearchOtherType(t *testing.T, be *Backend) {
	s := be.Open(t)
	seed(t, s)
	res := search(t, s, &resources.Query{Type: "Observation", Count: 10, Clauses: []resources.Clause{cl(pName, "", str("anna"))}})
	if got := ids(res.Entries); got != "o1" || res.Total != 1 {
		t.Errorf("Observation search = %q total %d", got, res.Total)
	}
	r := res.Entries[0]
	if r.Type != "Observation" || r.VersionID != 1 || !r.LastUpdated.Equal(t0.Add(time.Hour)) || r.Deleted {
		t.Errorf("entry = %+v", r)
	}
	sameJSON(t, r.Content, `{"id":"o1"}`)
	res = search(t, s, &resources.Query{Type: "Encounter", Count: 10})
	if len(res.Entries) != 0 || res.Total != 0 {
		t.Errorf("empty type: %d entries, total %d", len(res.Entries), res.Total)
	}
}

func testSearchSort(t *testing.T, be *Backend) {
	s := be.Open(t)
	seed(t, s)
	asc := func(p *resources.SearchParam) resources.SortKey { return resources.SortKey{Param: p} }
	desc := func(p *resources.SearchParam) resources.SortKey { return resources.SortKey{Param: p, Desc: true} }
	for _, tc := range []struct {
		name    string
		sort    []resources.SortKey
		clauses []resources.Clause
		want    string
	}{
		{"default: newest first", nil, nil, "p4 p3 p2 p1"},
		{"_lastUpdated", []resources.SortKey{asc(pUpdated)}, nil, "p1 p2 p3 p4"},
		{"-_lastUpdated", []resources.SortKey{desc(pUpdated)}, nil, "p4 p3 p2 p1"},
		{"_id", []resources.SortKey{asc(pID)}, nil, "p1 p2 p3 p4"},
		{"-_id", []resources.SortKey{desc(pID)}, nil, "p4 p3 p2 p1"},
		// p1 has "anna smith" and "zz top": its lowest name ascending, its highest descending.
		{"name", []resources.SortKey{asc(pName)}, nil, "p1 p3 p2 p4"},
		{"-name", []resources.SortKey{desc(pName)}, nil, "p1 p4 p2 p3"},
		// Missing values come last both ways; equal values fall back to the id.
		{"gender", []resources.SortKey{asc(pGender)}, nil, "p1 p3 p2 p4"},
		{"-gender", []resources.SortKey{desc(pGender)}, nil, "p2 p1 p3 p4"},
		{"birthdate", []resources.SortKey{asc(pBirthdate)}, nil, "p1 p2 p3 p4"},
		{"-birthdate", []resources.SortKey{desc(pBirthdate)}, nil, "p3 p2 p1 p4"},
		{"length", []resources.SortKey{asc(pLength)}, nil, "p3 p1 p2 p4"},
		{"-length", []resources.SortKey{desc(pLength)}, nil, "p2 p1 p3 p4"},
		{"weight", []resources.SortKey{asc(pWeight)}, nil, "p1 p3 p2 p4"},
		{"general-practitioner", []resources.SortKey{asc(pGP)}, nil, "p1 p2 p3 p4"},
		{"-general-practitioner", []resources.SortKey{desc(pGP)}, nil, "p3 p1 p2 p4"},
		{"gender,-birthdate", []resources.SortKey{asc(pGender), desc(pBirthdate)}, nil, "p3 p1 p2 p4"},
		{"gender,birthdate", []resources.SortKey{asc(pGender), asc(pBirthdate)}, nil, "p1 p3 p2 p4"},
		{"-gender,-_id", []resources.SortKey{desc(pGender), desc(pID)}, nil, "p2 p3 p1 p4"},
		{"general-practitioner,-_lastUpdated", []resources.SortKey{asc(pGP), desc(pUpdated)}, nil, "p2 p1 p3 p4"},
		{"filtered", []resources.SortKey{desc(pName)}, []resources.Clause{cl(pName, "", str("ann"))}, "p1 p3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := search(t, s, &resources.Query{Sort: tc.sort, Clauses: tc.clauses, Count: 10})
			if got := ids(res.Entries); got != tc.want {
				t.Errorf("order = %q, want %q", got, tc.want)
			}
		})
	}
}

func testSearchPaging(t *testing.T, be *Backend) {
	s := be.Open(t)
	seed(t, s)
	byName := []resources.SortKey{{Param: pName}} // p1 p3 p2 p4
	for _, tc := range []struct {
		name      string
		q         resources.Query
		want      string
		wantTotal int
	}{
		{"first page", resources.Query{Count: 2}, "p4 p3", 4},
		{"second page", resources.Query{Count: 2, Offset: 2}, "p2 p1", 4},
		{"past the end", resources.Query{Count: 2, Offset: 4}, "", 4},
		{"far past the end", resources.Query{Count: 2, Offset: 100}, "", 4},
		{"last partial page", resources.Query{Count: 3, Offset: 3}, "p1", 4},
		{"whole", resources.Query{Count: 10}, "p4 p3 p2 p1", 4},
		{"exactly full", resources.Query{Count: 4}, "p4 p3 p2 p1", 4},
		{"sorted page", resources.Query{Count: 2, Offset: 1, Sort: byName}, "p3 p2", 4},
		{"count 0: total only", resources.Query{Count: 0}, "", 4},
		{"total none", resources.Query{Count: 2, Total: resources.TotalNone}, "p4 p3", -1},
		{"total none, partial page", resources.Query{Count: 10, Total: resources.TotalNone}, "p4 p3 p2 p1", -1},
		{"total none, count 0", resources.Query{Count: 0, Total: resources.TotalNone}, "", -1},
		{"total estimate", resources.Query{Count: 1, Total: resources.TotalEstimate}, "p4", 4},
		{"total accurate", resources.Query{Count: 1, Total: resources.TotalAccurate}, "p4", 4},
		{"filtered total", resources.Query{Count: 1, Clauses: []resources.Clause{cl(pGender, "", code("female"))}}, "p3", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := tc.q
			res := search(t, s, &q)
			if got := ids(res.Entries); got != tc.want || res.Total != tc.wantTotal {
				t.Errorf("page = %q total %d, want %q total %d", got, res.Total, tc.want, tc.wantTotal)
			}
		})
	}
}

// Every page of a sort with many equal values holds different resources: the id breaks
// the ties, so paging neither repeats nor skips.
func testSearchPagingTies(t *testing.T, be *Backend) {
	s := be.Open(t)
	all := []string{"a", "b", "c", "d", "e", "f", "g"}
	for _, id := range all {
		put(t, s, "Patient", id, t0, `{}`, &resources.Index{Tokens: []resources.TokenEntry{{Param: "gender", Code: "same"}}})
	}
	for _, sort := range [][]resources.SortKey{nil, {{Param: pGender}}, {{Param: pGender, Desc: true}}, {{Param: pUpdated}}} {
		var got []string
		for off := 0; off < len(all); off += 3 {
			res := search(t, s, &resources.Query{Count: 3, Offset: off, Sort: sort})
			for _, r := range res.Entries {
				got = append(got, r.ID)
			}
		}
		if strings.Join(got, "") != "abcdefg" {
			t.Errorf("sort %v: pages gave %v", sort, got)
		}
	}
}

func testSearchUnsupportedModifier(t *testing.T, be *Backend) {
	s := be.Open(t)
	for _, c := range []resources.Clause{
		cl(pGender, "contains", str("x")),
		cl(pName, "not", str("x")),
		cl(pBirthdate, "exact", year("", 2000)),
		cl(pLength, "contains", num("", 1, 0.5)),
		cl(pGP, "exact", ref("", "x")),
		cl(pID, "exact", code("x")),
		cl(pUpdated, "not", year("", 2000)),
	} {
		_, err := s.Search(context.Background(), &resources.Query{Type: "Patient", Count: 1, Clauses: []resources.Clause{c}})
		wantCode(t, err, resources.CodeInvalid)
	}
}

// Request values only ever reach the database as arguments.
func testSearchValuesAreNotSQL(t *testing.T, be *Backend) {
	s := be.Open(t)
	seed(t, s)
	evil := `x' OR '1'='1`
	for _, c := range []resources.Clause{
		cl(pName, "", str(evil)),
		cl(pName, "exact", str(evil)),
		cl(pName, "contains", str(evil)),
		cl(pGender, "", sysCode(evil, evil)),
		cl(pGP, "", ref(evil, evil)),
		cl(pID, "", code(evil)),
		cl(pURL, "above", str(evil)),
	} {
		res := search(t, s, &resources.Query{Count: 10, Clauses: []resources.Clause{c}})
		if len(res.Entries) != 0 || res.Total != 0 {
			t.Errorf("%s:%s matched %q", c.Param.Name, c.Modifier, ids(res.Entries))
		}
	}
}
