package storetest

import (
	"strings"
	"testing"
	"time"

	"github.com/fhirbox/fhirbox/resources"
)

var (
	pSubject = &resources.SearchParam{Name: "subject", Type: resources.TypeReference}
	pCode    = &resources.SearchParam{Name: "code", Type: resources.TypeToken}
)

// seedChain adds to seed the resources the chains lead to: Practitioner d1 "Doc One",
// Practitioner d2 "Doc Two" (deleted), Organization d1 "Org"; Observations o2 (p1, c1),
// o3 (p2, c2), o4 (p5, deleted, c1), o5 (Practitioner/d1, c1).
func seedChain(t testing.TB, s Store) {
	t.Helper()
	h := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Hour) }
	named := func(name string) *resources.Index {
		return &resources.Index{Strings: []resources.StringEntry{{Param: "name", Value: strings.ToLower(name), Exact: name}}}
	}
	put(t, s, "Practitioner", "d1", h(1), `{}`, named("Doc One"))
	put(t, s, "Practitioner", "d2", h(1), `{}`, named("Doc Two"))
	del(t, s, "Practitioner", "d2", h(2))
	put(t, s, "Organization", "d1", h(1), `{}`, named("Org"))
	obs := func(id, subject, code string) {
		typ, sid, _ := strings.Cut(subject, "/")
		put(t, s, "Observation", id, h(7), `{}`, &resources.Index{
			Tokens:     []resources.TokenEntry{{Param: "code", Code: code}},
			References: []resources.ReferenceEntry{{Param: "subject", TargetType: typ, TargetID: sid}},
		})
	}
	obs("o2", "Patient/p1", "c1")
	obs("o3", "Patient/p2", "c2")
	obs("o4", "Patient/p5", "c1")
	obs("o5", "Practitioner/d1", "c1")
}

func testSearchChain(t *testing.T, be *Backend) {
	s := be.Open(t)
	seed(t, s)
	seedChain(t, s)
	fwd := func(p *resources.SearchParam, types ...string) resources.ChainLink {
		return resources.ChainLink{Param: p, Types: types}
	}
	rev := func(typ string, p *resources.SearchParam) resources.ChainLink {
		return resources.ChainLink{Param: p, Types: []string{typ}, Reverse: true}
	}
	chain := func(c resources.Clause, links ...resources.ChainLink) resources.Clause {
		c.Chain = links
		return c
	}
	for _, tc := range []struct {
		name    string
		typ     string
		clauses []resources.Clause
		want    string
	}{
		{"forward", "Patient", []resources.Clause{chain(cl(pName, "", str("doc")), fwd(pGP, "Practitioner"))}, "p1"}, // d2 is deleted
		{"forward to two types", "Patient", []resources.Clause{chain(cl(pName, "", str("doc"), str("org")), fwd(pGP, "Organization", "Practitioner"))}, "p1 p2"},
		{"forward exact", "Patient", []resources.Clause{chain(cl(pName, "exact", str("Org")), fwd(pGP, "Organization", "Practitioner"))}, "p2"},
		{"forward, then a plain clause", "Observation", []resources.Clause{chain(cl(pGender, "", code("female")), fwd(pSubject, "Patient")), cl(pCode, "", code("c1"))}, "o2"},
		{"forward missing", "Observation", []resources.Clause{chain(missing(pBirthdate, false), fwd(pSubject, "Patient"))}, "o2 o3"},
		{"two links", "Observation", []resources.Clause{chain(cl(pName, "", str("doc")), fwd(pSubject, "Patient"), fwd(pGP, "Practitioner"))}, "o2"},
		{"reverse", "Patient", []resources.Clause{chain(cl(pCode, "", code("c1")), rev("Observation", pSubject))}, "p1"}, // p5 is deleted
		{"reverse to another type", "Practitioner", []resources.Clause{chain(cl(pCode, "", code("c1")), rev("Observation", pSubject))}, "d1"},
		{"reverse or", "Patient", []resources.Clause{chain(cl(pCode, "", code("c1"), code("c2")), rev("Observation", pSubject))}, "p1 p2"},
		{"reverse missing", "Patient", []resources.Clause{chain(missing(pCode, true), rev("Observation", pSubject))}, ""},
		{"reverse and forward", "Patient", []resources.Clause{
			chain(cl(pCode, "", code("c1")), rev("Observation", pSubject)),
			chain(cl(pName, "", str("doc one")), fwd(pGP, "Practitioner"))}, "p1"},
		{"forward, then reverse", "Observation", []resources.Clause{chain(cl(pName, "", str("anna")), fwd(pSubject, "Practitioner"), rev("Patient", pGP))}, "o5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := &resources.Query{Type: tc.typ, Clauses: tc.clauses, Count: 100, Sort: []resources.SortKey{{Param: pID}}}
			res := search(t, s, q)
			if got := ids(res.Entries); got != tc.want {
				t.Errorf("ids = %q, want %q", got, tc.want)
			}
			n := len(strings.Fields(tc.want))
			if res.Total != n {
				t.Errorf("total = %d, want %d", res.Total, n)
			}
			// A page of one, and the count statement, agree with the whole.
			q.Count = 1
			if res := search(t, s, q); res.Total != n {
				t.Errorf("total of a page of one = %d, want %d", res.Total, n)
			}
		})
	}
}
