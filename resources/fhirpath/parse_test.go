package fhirpath

import (
	"testing"

	"github.com/fhirbox/fhirbox/resources/r4"
)

// TestParseCompilesEveryR4SearchParameterExpression is the bar: every
// expression of every R4 search parameter parses (those without one are the few the
// specification leaves to the server).
func TestParseCompilesEveryR4SearchParameterExpression(t *testing.T) {
	params := r4.SearchParameters()
	compiled, empty := 0, 0
	for _, p := range params {
		if p.Expression == "" {
			empty++
			continue
		}
		e, err := Parse(p.Expression)
		if err != nil {
			t.Errorf("%s: %v", p.ID, err)
			continue
		}
		if e.String() != p.Expression {
			t.Errorf("%s: String() = %q", p.ID, e.String())
		}
		compiled++
	}
	if compiled < 1300 {
		t.Errorf("compiled %d expressions: the R4 data has shrunk", compiled)
	}
	t.Logf("%d definitions: %d expressions compiled, %d without an expression", len(params), compiled, empty)
}

func TestParseRejectsMalformedExpressions(t *testing.T) {
	for _, src := range []string{
		"", "Patient.", "Patient.name.where(", "Patient.name.nosuch()", "Patient.name[0",
		"'unterminated", `'bad \q escape'`, "Patient.name.where()", "Patient.name as",
		"Patient..name", "Patient.name #",
	} {
		if _, err := Parse(src); err == nil {
			t.Errorf("Parse(%q) succeeded", src)
		}
	}
}

// allR4Expressions lists the expression of every R4 search parameter that has one.
func allR4Expressions() []string {
	var out []string
	for _, p := range r4.SearchParameters() {
		if p.Expression != "" {
			out = append(out, p.Expression)
		}
	}
	return out
}
