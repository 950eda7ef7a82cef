package fhirpath

import "testing"

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
