package fhirpath

import (
	"fmt"
	"testing"
)

func TestCompileExpressionErrors(t *testing.T) {
	for _, expr := range []string{
		"", "|", "Patient", "Patient.", "Patient..a", "Patient.a.first()", "Patient.a.where(b)",
		"Patient.a.where(b='c'", "Patient.a.where(b='c)", "Patient.a b", "Patient.a.where(='c')",
	} {
		if _, err := Compile(expr); err == nil {
			t.Errorf("%q compiled", expr)
		}
	}
	// A "|" inside a literal does not split the expression.
	e, err := Compile(`Thing.x.where(k='a|b\'c').y | Thing.z`)
	if err != nil || len(e.paths) != 2 || e.paths[0][1] != (step{field: "k", where: true, value: "a|b'c"}) {
		t.Errorf("got %+v, %v", e, err)
	}
}

// TestEvalLocateFlatten checks the package on its own, without the index extractor that
// covers it through every search parameter: what Eval selects, where Locate finds it.
func TestEvalLocateFlatten(t *testing.T) {
	doc := map[string]any{
		"name": []any{
			map[string]any{"use": "old", "family": "A"},
			nil,
			map[string]any{"use": "official", "family": "B", "given": []any{"C", nil, "D"}},
		},
		"active": true,
	}
	tests := []struct {
		expr string
		want []any
		path string // Locate of the last value selected
	}{
		{"Patient.name.given", []any{"C", "D"}, "Patient.name[2].given[2]"},
		{"Patient.name.where(use='official').family", []any{"B"}, "Patient.name[2].family"},
		{"Patient.active | Patient.name.family", []any{true, "A", "B"}, "Patient.name[2].family"},
		{"Patient.name.where(use='nickname').family", nil, ""},
		{"Patient.missing.x", nil, ""},
	}
	for _, tt := range tests {
		e, err := Compile(tt.expr)
		if err != nil {
			t.Fatalf("%s: %v", tt.expr, err)
		}
		got := e.Eval(doc)
		if fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("%s: Eval = %v, want %v", tt.expr, got, tt.want)
		}
		if len(got) > 0 {
			if path := e.Locate("Patient", doc, got[len(got)-1]); path != tt.path {
				t.Errorf("%s: Locate = %q, want %q", tt.expr, path, tt.path)
			}
		}
	}
	if got := fmt.Sprint(Flatten(nil), Flatten("x"), Flatten([]any{1, nil, 2})); got != "[] [x] [1 2]" {
		t.Errorf("Flatten: %s", got)
	}
}
