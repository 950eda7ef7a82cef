package fhirpath

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestElements(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want string // the names joined by ","; "!" when the expression reads beyond them
	}{
		{"Observation.subject", "subject"},
		{"Observation.subject.where(resolve() is Patient)", "contained,subject"},
		{"Observation.subject | Observation.performer", "performer,subject"},
		{"(Observation.value as Quantity).value", "value"},
		{"Observation.value.as(Quantity)", "value"},
		{"Observation.component.value as CodeableConcept", "component"},
		{"Patient.link.other", "link"},
		{"Patient.telecom.where(system='email')", "telecom"},
		{"Patient.name[0].given", "name"},
		{"Observation.extension('http://x/y').value", "extension"},
		{"Observation.where(status = 'final').code", "code,status"},
		{"Resource.meta.tag", "meta"},
		{"subject", "subject"},
		{"Patient.name.given.union(Patient.name.family)", "name"},
		{"Observation.subject.where(reference.startsWith('Patient/'))", "subject"},
		{"Observation", "!"},
		{"Observation.where(status = 'final')", "!"},
		{"Observation.children().reference", "!"},
		{"Observation.select(subject)", "!"},
		{"%resource.subject", "!"},
		{"Observation.subject.where(reference = %resource.id)", "!"},
		{"Observation.subject.union(Observation)", "!"},
		{"Observation.exists()", "!"},
		{"Observation is Observation", "!"},
		{"Observation.subject.where($this.reference.exists())", "subject"},
		{"Observation.where($this.status = 'final').code", "code,status"},
		{"%context.subject", "subject"},
		{"Observation.subject.exists() and Observation.status = 'final'", "status,subject"},
	} {
		e, err := Parse(tc.expr)
		if err != nil {
			t.Fatalf("%s: %v", tc.expr, err)
		}
		names, ok := e.Elements()
		got := strings.Join(names, ",")
		if !ok {
			got = "!"
		}
		if got != tc.want {
			t.Errorf("%s: elements %q, want %q", tc.expr, got, tc.want)
		}
	}
}

// An expression evaluated on the elements it reads (and resourceType) selects what it
// selects on the whole resource.
func TestElementsSuffice(t *testing.T) {
	doc := map[string]any{}
	if err := json.Unmarshal([]byte(`{"resourceType":"Observation","id":"o1","status":"final",
		"contained":[{"resourceType":"Patient","id":"c1"}],
		"extension":[{"url":"http://x/y","valueString":"ext"}],
		"meta":{"tag":[{"code":"t"}]},
		"code":{"text":"c"},
		"subject":{"reference":"Patient/p1"},
		"performer":[{"reference":"#c1"},{"reference":"Practitioner/d1"}],
		"valueQuantity":{"value":3,"unit":"mg"},
		"component":[{"valueCodeableConcept":{"text":"v"}}]}`), &doc); err != nil {
		t.Fatal(err)
	}
	for _, src := range []string{
		"Observation.subject.where(resolve() is Patient)",
		"Observation.performer.where(resolve() is Patient)",
		"(Observation.value as Quantity).value",
		"Observation.component.value as CodeableConcept",
		"Observation.extension('http://x/y').value",
		"Observation.where(status = 'final').code",
		"Resource.meta.tag",
		"Observation.subject | Observation.performer",
	} {
		e := MustParse(src)
		names, ok := e.Elements()
		if !ok {
			t.Errorf("%s: reads beyond its elements", src)
			continue
		}
		part := map[string]any{"resourceType": doc["resourceType"]}
		for k, v := range doc {
			for _, n := range names {
				if strings.HasPrefix(k, n) {
					part[k] = v
				}
			}
		}
		if got, want := e.Evaluate(part), e.Evaluate(doc); !reflect.DeepEqual(got, want) || len(want) == 0 {
			t.Errorf("%s on %v: %v, on the whole: %v", src, slices.Sorted(mapsKeys(part)), got, want)
		}
	}
}

func mapsKeys(m map[string]any) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}
