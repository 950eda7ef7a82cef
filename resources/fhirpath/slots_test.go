package fhirpath

import (
	"fmt"
	"strings"
	"testing"
)

// Slots says where each selected element sits, through names, choice elements,
// indexers and the functions that keep elements; computed values have no slot.
func TestSlotsLocateSelectedElements(t *testing.T) {
	doc := decode(t, `{"resourceType":"Patient","name":[{"family":"A","given":["x","y"]},{"family":"B"}],
		"deceasedBoolean":false,"contact":[{"gender":"male"}]}`).(map[string]any)
	tests := []struct {
		expr string
		want string // key[index] of each slot, comma-separated
		err  string
	}{
		{"Patient.name", "name[0],name[1]", ""},
		{"Patient.name[1].family", "family[-1]", ""},
		{"Patient.name.given[1]", "given[1]", ""},
		{"Patient.name.where(family = 'B')", "name[1]", ""},
		{"Patient.name.first().given.last()", "given[1]", ""},
		{"Patient.name.tail()", "name[1]", ""},
		{"Patient.deceased", "deceasedBoolean[-1]", ""},
		{"Patient.birthDate", "", ""},
		{"Patient", "", "the resource itself"},
		{"Patient.name.count()", "", "computes values"},
		{"Patient.name.single()", "", "single() found 2"},
	}
	for _, tc := range tests {
		slots, err := MustParse(tc.expr).Slots(doc)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: error %v, want %q", tc.expr, err, tc.err)
			}
			continue
		}
		var got []string
		for _, s := range slots {
			got = append(got, fmt.Sprintf("%s[%d]", s.Key, s.Index))
		}
		if err != nil || strings.Join(got, ",") != tc.want {
			t.Errorf("%s: %v %v, want %s", tc.expr, got, err, tc.want)
		}
	}
}

func TestMemberPathAndElementPath(t *testing.T) {
	tests := []struct{ expr, parent, name, elements string }{
		{"Patient.name[0].given", "Patient.name[0]", "given", "Patient.name.given"},
		{"Patient.contact.where(gender = 'male').telecom", "Patient.contact.where(gender = 'male')", "telecom", "Patient.contact.telecom"},
		{"Patient.name.first()", "", "", "Patient.name"},
		{"Patient.name.count()", "", "", ""},
	}
	for _, tc := range tests {
		e := MustParse(tc.expr)
		p, name, ok := e.MemberPath()
		if ok != (tc.parent != "") || ok && (p.String() != tc.parent || name != tc.name) {
			t.Errorf("%s: MemberPath %v %q %v", tc.expr, p, name, ok)
		}
		ep, ok := e.ElementPath()
		if ok != (tc.elements != "") || ep != tc.elements {
			t.Errorf("%s: ElementPath %q %v, want %q", tc.expr, ep, ok, tc.elements)
		}
	}
}
