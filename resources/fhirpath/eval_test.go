package fhirpath

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// decode reads a JSON document as the server does (numbers kept as json.Number).
func decode(t *testing.T, src string) any {
	t.Helper()
	d := json.NewDecoder(strings.NewReader(src))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		t.Fatalf("decode %s: %v", src, err)
	}
	return v
}

const observation = `{"resourceType": "Observation", "id": "o1",
  "status": "final",
  "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}, {"system": "http://snomed.info/sct", "code": "271649006"}]},
  "subject": {"reference": "Patient/p1"},
  "performer": [{"reference": "Practitioner/d1"}, {"reference": "https://other.example/fhir/Patient/p2/_history/3"}, {"reference": "#c1"}, {"display": "no reference"}],
  "contained": [{"resourceType": "Organization", "id": "c1", "name": "Lab"}],
  "effectiveDateTime": "2024-05-01T10:00:00Z",
  "valueQuantity": {"value": 140, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"},
  "extension": [
    {"url": "http://example.org/a", "valueString": "first a"},
    {"url": "http://example.org/b", "valueBoolean": true},
    {"url": "http://example.org/a", "valueString": "second a"}],
  "component": [
    {"code": {"text": "systolic"}, "valueQuantity": {"value": 140}},
    {"code": {"text": "note"}, "valueString": "it's \"high\""},
    {"code": {"text": "age"}, "valueAge": {"value": 42, "unit": "a"}}],
  "referenceRange": [{"low": {"value": 90}}]}`

const patient = `{"resourceType": "Patient", "id": "p1",
  "name": [{"use": "official", "family": "Chalmers", "given": ["Peter", "James"]}, {"use": "usual", "given": ["Jim"]}],
  "telecom": [{"system": "phone", "value": "555"}, {"system": "email", "value": "p@example.org"}],
  "deceasedBoolean": false,
  "birthDate": "1974-12-25",
  "link": [{"other": {"reference": "RelatedPerson/r1"}}]}`

func TestEvaluateSelectsWhatEachConstructMeans(t *testing.T) {
	obs, pat := decode(t, observation), decode(t, patient)
	n := func(s string) json.Number { return json.Number(s) }
	for _, tc := range []struct {
		name string
		doc  any
		expr string
		want []any
	}{
		// Paths.
		{"path with leading type selects children, arrays flattened", pat, "Patient.name.given", []any{"Peter", "James", "Jim"}},
		{"leading type of another resource selects nothing", pat, "Observation.status", nil},
		{"Resource and DomainResource match any resource", pat, "Resource.id | DomainResource.id", []any{"p1"}},
		{"path without leading type reads from the focus", pat, "birthDate", []any{"1974-12-25"}},
		{"absent element is empty", pat, "Patient.gender", nil},
		{"delimited identifier", pat, "Patient.`birthDate`", []any{"1974-12-25"}},

		// Choice types.
		{"choice element read under its base name", obs, "Observation.value.unit", []any{"mmHg"}},
		{"choice element as(Type) keeps that type", obs, "Observation.value.as(Quantity).value", []any{n("140")}},
		{"choice element as(other Type) is empty", obs, "Observation.value.as(CodeableConcept)", nil},
		{"'as Type' operator over many items keeps each of the type (Age is a Quantity)", obs, "(Observation.component.value as Quantity).value", []any{n("140"), n("42")}},
		{"as(Type) function over many items too", obs, "Observation.component.value.as(string)", []any{`it's "high"`}},
		{"Age is a Quantity", obs, "Observation.component.value.ofType(Quantity).value", []any{n("140"), n("42")}},
		{"choice of every type under the base name", obs, "Observation.component.value.count()", []any{n("3")}},
		{"lowercase primitive choice type", obs, "Observation.effective.as(dateTime)", []any{"2024-05-01T10:00:00Z"}},
		{"capitalised System type matches FHIR primitive", obs, "Observation.effective.as(DateTime)", []any{"2024-05-01T10:00:00Z"}},
		{"qualified type name", obs, "Observation.effective.as(FHIR.dateTime)", []any{"2024-05-01T10:00:00Z"}},
		{"choice suffix must be a type: no false match on a longer name", decode(t, `{"durationUnit": "h", "durationMax": 2}`), "duration", nil},
		{"choice boolean compared with !=", pat, "Patient.deceased.exists() and Patient.deceased != false", []any{false}},
		{"choice boolean true", decode(t, `{"resourceType":"Patient","deceasedDateTime":"2020-01-01"}`), "Patient.deceased.exists() and Patient.deceased != false", []any{true}},

		// where and resolve.
		{"where keeps items whose condition is true", pat, "Patient.telecom.where(system='email').value", []any{"p@example.org"}},
		{"where with and/or", pat, "Patient.name.where(use='usual' or family='Chalmers' and use='x').given", []any{"Jim"}},
		{"where(resolve() is Type) tests the reference's type", obs, "Observation.performer.where(resolve() is Patient).reference", []any{"https://other.example/fhir/Patient/p2/_history/3"}},
		{"resolve() is Type on a relative reference", obs, "Observation.subject.where(resolve() is Patient)", []any{map[string]any{"reference": "Patient/p1"}}},
		{"resolve() of another type filters out", obs, "Observation.subject.where(resolve() is Practitioner)", nil},
		{"resolve() of a contained reference finds the contained resource", obs, "Observation.performer.resolve().ofType(Organization).name", []any{"Lab"}},
		{"resolve() skips a Reference without a reference string", obs, "Observation.performer.resolve().count()", []any{n("3")}},
		{"$this in where", pat, "Patient.name.given.where($this = 'Jim')", []any{"Jim"}},

		// as / is / ofType.
		{"is on a resource", pat, "Patient is Patient", []any{true}},
		{"is on a primitive known only by JSON form", pat, "Patient.birthDate is date", []any{true}},
		{"ofType selects resources by type", obs, "Observation.contained.ofType(Organization).id", []any{"c1"}},
		{"is() function form", obs, "Observation.value.is(Quantity)", []any{true}},

		// Union, exists, first, indexer, extension.
		{"union merges and drops duplicates", pat, "Patient.name.given | Patient.name[0].given | Patient.birthDate", []any{"Peter", "James", "Jim", "1974-12-25"}},
		{"exists on present", pat, "Patient.telecom.exists()", []any{true}},
		{"exists on absent", pat, "Patient.photo.exists()", []any{false}},
		{"exists with criteria", pat, "Patient.telecom.exists(system = 'fax')", []any{false}},
		{"first", pat, "Patient.name.given.first()", []any{"Peter"}},
		{"indexer", pat, "Patient.name[1].given", []any{"Jim"}},
		{"indexer past the end is empty", pat, "Patient.name[5]", nil},
		{"extension(url) selects extensions by url", obs, "Observation.extension('http://example.org/a').value", []any{"first a", "second a"}},
		{"extension(url) then first", obs, "Observation.extension('http://example.org/a').first().value.as(string)", []any{"first a"}},
		{"extension of another url", obs, "Observation.extension('http://example.org/b').value", []any{true}},

		// Literals and operators.
		{"string literal with escapes", obs, `Observation.component.value.where($this = 'it\'s "high"')`, []any{`it's "high"`}},
		{"unicode escape", pat, `'\u0041b' = 'Ab'`, []any{true}},
		{"number equality across forms", obs, "Observation.value.value = 140.0", []any{true}},
		{"equality with empty is empty", pat, "Patient.gender = 'male'", nil},
		{"parentheses group", pat, "(Patient.name | Patient.telecom).count()", []any{n("4")}},
		{"comparison", pat, "Patient.birthDate < '2000-01-01'", []any{true}},
		{"not()", pat, "Patient.photo.exists().not()", []any{true}},
		{"empty collection literal", pat, "{}.exists()", []any{false}},
		{"string concatenation", pat, "Patient.name[0].family & ', ' & Patient.name[0].given.first()", []any{"Chalmers, Peter"}},
		{"%resource inside where", pat, "Patient.link.where(%resource.id = 'p1').other.reference", []any{"RelatedPerson/r1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := Parse(tc.expr)
			if err != nil {
				t.Fatal(err)
			}
			got := e.Evaluate(tc.doc)
			if len(got) == 0 && len(tc.want) == 0 {
				return
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("%s = %#v, want %#v", tc.expr, got, tc.want)
			}
		})
	}
}

func TestEvaluateItemsCarriesTheChoiceType(t *testing.T) {
	got := MustParse("Observation.component.value").EvaluateItems(decode(t, observation))
	var types []string
	for _, it := range got {
		types = append(types, it.Type)
	}
	if want := []string{"Quantity", "string", "Age"}; !reflect.DeepEqual(types, want) {
		t.Errorf("types = %v, want %v", types, want)
	}
}

// TestEvaluateRunsEveryR4ExpressionWithoutPanicking evaluates each R4 expression over a
// resource of its base: none may panic (the evaluator never fails, it yields nothing).
func TestEvaluateRunsEveryR4ExpressionWithoutPanicking(t *testing.T) {
	obs, pat := decode(t, observation), decode(t, patient)
	for _, src := range allR4Expressions() {
		e := MustParse(src)
		e.Evaluate(obs)
		e.Evaluate(pat)
	}
}
