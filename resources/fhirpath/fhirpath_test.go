package fhirpath

import (
	"fmt"
	"testing"
)

// TestLocateFindsTheValueSelected checks the paths messages quote: the first element,
// in document order, that is the value (the same object, or an equal primitive).
func TestLocateFindsTheValueSelected(t *testing.T) {
	doc := map[string]any{
		"resourceType": "Patient",
		"name": []any{
			map[string]any{"use": "old", "family": "A"},
			nil,
			map[string]any{"use": "official", "family": "B", "given": []any{"C", nil, "D"}},
		},
		"active": true,
	}
	tests := []struct {
		expr string
		path string // Locate of the last value selected
	}{
		{"Patient.name.given", "Patient.name[2].given[2]"},
		{"Patient.name.where(use='official').family", "Patient.name[2].family"},
		{"Patient.active | Patient.name.family", "Patient.name[2].family"},
		{"Patient.name.where(use='official')", "Patient.name[2]"},
	}
	for _, tt := range tests {
		got := MustParse(tt.expr).Evaluate(doc)
		if len(got) == 0 {
			t.Fatalf("%s selected nothing", tt.expr)
		}
		if path := Locate("Patient", doc, got[len(got)-1]); path != tt.path {
			t.Errorf("%s: Locate = %q, want %q", tt.expr, path, tt.path)
		}
	}
	if got := Locate("Patient", doc, "nowhere"); got != "Patient" {
		t.Errorf("Locate of an absent value = %q", got)
	}
	if got := fmt.Sprint(Flatten(nil), Flatten("x"), Flatten([]any{1, nil, 2})); got != "[] [x] [1 2]" {
		t.Errorf("Flatten: %s", got)
	}
}

// TestForTypeKeepsTheBranchesOfOneType checks the pruning of the multi-type R4
// expressions: branches rooted in another resource type go, the rest stay.
func TestForTypeKeepsTheBranchesOfOneType(t *testing.T) {
	tests := []struct {
		expr, typ string
		want      string // the kept branches' values on doc, or "none"
	}{
		{"AllergyIntolerance.patient | CarePlan.subject.where(resolve() is Patient) | Observation.subject.where(resolve() is Patient)", "Observation", "[map[reference:Patient/1]]"},
		{"AllergyIntolerance.patient | CarePlan.subject", "Observation", "none"},
		{"(Observation.value as Quantity) | (Observation.value as SampledData)", "Observation", "[map[value:5]]"},
		{"Resource.id", "Observation", "[o1]"},
		{"Observation.code | Observation.component.code", "Observation", "[]"},
	}
	doc := map[string]any{"resourceType": "Observation", "id": "o1", "subject": map[string]any{"reference": "Patient/1"},
		"valueQuantity": map[string]any{"value": 5}}
	for _, tt := range tests {
		e := MustParse(tt.expr).ForType(tt.typ)
		got := "none"
		if e != nil {
			got = fmt.Sprint(e.Evaluate(doc))
			if got == "[]" && tt.want != "[]" {
				got = "[]"
			}
		}
		if got != tt.want {
			t.Errorf("%s for %s: %s, want %s", tt.expr, tt.typ, got, tt.want)
		}
	}
}
