package resources

import (
	"net/url"
	"testing"
)

// A search whose own reference clause keeps it inside the compartment is not confined
// again; any other keeps the confinement (conformance M6).
func TestConfinedByClauses(t *testing.T) {
	s := &Service{reg: DefaultRegistry()}
	p1 := &Compartment{Type: "Patient", ID: "p1"}
	for _, tc := range []struct {
		typ, query string
		want       bool
	}{
		{"Observation", "patient=Patient/p1", true},             // subject.where(resolve() is Patient) ⊆ subject
		{"Observation", "subject=Patient/p1&code=8302-2", true}, // a compartment parameter
		{"Observation", "performer=Patient/p1", true},
		{"Observation", "subject:Patient=p1", true},
		{"Observation", "patient=p1", true},                     // a bare id of patient's one target type
		{"Observation", "subject=p1", false},                    // a bare id of any type
		{"Observation", "patient=Patient/p2", false},            // another patient
		{"Observation", "patient=Patient/p1,Patient/p2", false}, // one value outside
		{"Observation", "patient:missing=false", false},
		{"Observation", "encounter=Encounter/e1", false}, // not a compartment parameter
		{"Observation", "subject.name=p1", false},        // a chain
		{"Observation", "code=8302-2", false},
		{"AllergyIntolerance", "patient=Patient/p1", true}, // a compartment parameter itself
		{"Patient", "link=Patient/p1", true},
		{"Patient", "general-practitioner=Practitioner/p1", false},
		{"Encounter", "patient=Patient/p1", true},
	} {
		params, _ := url.ParseQuery(tc.query)
		q, err := ParseSearch(s.reg, tc.typ, params, ParseOptions{Strict: true, DefaultCount: 10, MaxCount: 10})
		if err != nil {
			t.Errorf("%s?%s: %v", tc.typ, tc.query, err)
			continue
		}
		g := ConfineGroup{Types: []string{tc.typ}, Compartment: p1, Params: CompartmentParams("Patient", tc.typ)}
		if got := s.confinedByClauses(q, []ConfineGroup{g}); got != tc.want {
			t.Errorf("%s?%s: confined by its clauses %v, want %v", tc.typ, tc.query, got, tc.want)
		}
		// A group narrowed by a scope's qualifier is always tested.
		g.Clauses = q.Clauses
		if s.confinedByClauses(q, []ConfineGroup{g}) {
			t.Errorf("%s?%s: a group with qualifier clauses was dropped", tc.typ, tc.query)
		}
	}
}
