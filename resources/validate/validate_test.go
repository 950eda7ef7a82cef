package validate_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/fhirbox/fhirbox/resources/validate"
)

func decode(t testing.TB, s string) map[string]any {
	t.Helper()
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		t.Fatalf("%s: %v", s, err)
	}
	return m
}

// short renders issues as "code@expression" lines, for comparing.
func short(issues []validate.Issue) string {
	var b bytes.Buffer
	for _, is := range issues {
		fmt.Fprintf(&b, "%s %s@%s\n", is.Severity, is.Code, is.Expression)
	}
	return b.String()
}

// TestValidate checks each kind of problem, one case each, and where it is reported
// (conformance V1–V6).
func TestValidate(t *testing.T) {
	v, err := validate.Default()
	if err != nil {
		t.Fatal(err)
	}
	const obs = `"resourceType":"Observation","status":"final","code":{"text":"t"}`
	tests := []struct {
		name, typ, doc string
		want           []string // "code@expression", in order
	}{
		{"valid patient", "Patient", `{"resourceType":"Patient","gender":"female","birthDate":"1970-12-25","name":[{"given":["A","B"]}]}`, nil},
		{"no resourceType", "Patient", `{"gender":"male"}`, nil},
		{"gender and birthDate", "Patient", `{"resourceType":"Patient","gender":"not-a-gender","birthDate":"1970-13-45"}`,
			[]string{"code-invalid@Patient.gender", "value@Patient.birthDate"}},
		{"unknown element", "Patient", `{"resourceType":"Patient","nickname":"x"}`, []string{"structure@Patient.nickname"}},
		{"unknown nested element", "Patient", `{"resourceType":"Patient","name":[{"famly":"x"}]}`, []string{"structure@Patient.name[0].famly"}},
		{"resourceType mismatch", "Patient", `{"resourceType":"Observation"}`, []string{"structure@Patient.resourceType"}},
		{"empty string in a list", "Patient", `{"resourceType":"Patient","name":[{"given":["A",""]}]}`, []string{"value@Patient.name[0].given[1]"}},
		{"single for a list", "Patient", `{"resourceType":"Patient","name":{"family":"x"}}`, []string{"structure@Patient.name"}},
		{"list for a single", "Patient", `{"resourceType":"Patient","gender":["male"]}`, []string{"structure@Patient.gender"}},
		{"empty list", "Patient", `{"resourceType":"Patient","name":[]}`, []string{"structure@Patient.name"}},
		{"empty object", "Patient", `{"resourceType":"Patient","name":[{}]}`, []string{"structure@Patient.name[0]"}},
		{"null", "Patient", `{"resourceType":"Patient","gender":null}`, []string{"value@Patient.gender"}},
		{"required missing", "Observation", `{"resourceType":"Observation","code":{"text":"t"}}`, []string{"required@Observation.status"}},
		{"required in backbone", "Patient", `{"resourceType":"Patient","link":[{"type":"seealso"}]}`, []string{"required@Patient.link[0].other"}},
		{"choice type", "Observation", `{` + obs + `,"valueQuantity":{"value":1.5,"unit":"kg"}}`, nil},
		{"choice type wrong inside", "Observation", `{` + obs + `,"valueQuantity":{"value":"1.5"}}`, []string{"value@Observation.value.ofType(Quantity).value"}},
		{"choice unknown type", "Observation", `{` + obs + `,"valueFoo":1}`, []string{"structure@Observation.valueFoo"}},
		{"two choices", "Observation", `{` + obs + `,"valueString":"a","valueBoolean":true}`, []string{"structure@Observation.value"}},
		{"primitive extension", "Patient", `{"resourceType":"Patient","birthDate":"1970","_birthDate":{"extension":[{"url":"http://example.org/t","valueTime":"10:00:00"}]}}`, nil},
		{"primitive extension only", "Patient", `{"resourceType":"Patient","_gender":{"extension":[{"url":"http://example.org/x","valueString":"y"}]}}`, nil},
		{"primitive extension bad", "Patient", `{"resourceType":"Patient","_gender":{"foo":1}}`, []string{"structure@Patient.gender.foo"}},
		{"primitive extension on unknown", "Patient", `{"resourceType":"Patient","_nick":{"id":"a"}}`, []string{"structure@Patient._nick"}},
		{"list with nulls and extensions", "Patient", `{"resourceType":"Patient","name":[{"given":["A",null],"_given":[null,{"id":"x"}]}]}`, nil},
		{"null without extension", "Patient", `{"resourceType":"Patient","name":[{"given":["A",null]}]}`, []string{"structure@Patient.name[0].given[1]"}},
		{"extension without url", "Patient", `{"resourceType":"Patient","extension":[{"valueString":"x"}]}`, []string{"required@Patient.extension[0].url"}},
		{"modifierExtension", "Patient", `{"resourceType":"Patient","modifierExtension":[{"url":"http://e.org/m","valueBoolean":true}]}`, nil},
		{"contained", "Observation", `{` + obs + `,"contained":[{"resourceType":"Patient","id":"p","gender":"x"}],"subject":{"reference":"#p"}}`,
			[]string{"code-invalid@Observation.contained[0].gender"}},
		{"contained unknown type", "Observation", `{` + obs + `,"contained":[{"resourceType":"Nobody","id":"p"}]}`, []string{"structure@Observation.contained[0].resourceType"}},
		{"contained in contained", "Observation", `{` + obs + `,"contained":[{"resourceType":"Patient","id":"p","contained":[{"resourceType":"Patient","id":"q"}]}]}`,
			[]string{"structure@Observation.contained[0].contained"}},
		{"local reference unknown", "Observation", `{` + obs + `,"subject":{"reference":"#nope"}}`, []string{"value@Observation.subject.reference"}},
		{"reference shapes", "Observation", `{` + obs + `,"subject":{"reference":"Patient/1"},"basedOn":[{"reference":"http://x.org/fhir/CarePlan/2/_history/3"},{"reference":"urn:uuid:0f8c3c5e-7a3b-4a39-9c36-3d3f5b7e1a11"},{"reference":"urn:oid:1.2.3"}]}`, nil},
		{"reference not a reference", "Observation", `{` + obs + `,"subject":{"reference":"Patient"}}`, []string{"value@Observation.subject.reference"}},
		{"reference unknown type", "Observation", `{` + obs + `,"subject":{"reference":"Client/1"}}`, []string{"value@Observation.subject.reference"}},
		{"reference wrong target", "Observation", `{` + obs + `,"subject":{"reference":"Organization/1"}}`, []string{"value@Observation.subject.reference"}},
		{"reference absolute wrong target", "Observation", `{` + obs + `,"subject":{"reference":"https://x.org/fhir/Organization/1"}}`, []string{"value@Observation.subject.reference"}},
		{"reference bad uuid", "Observation", `{` + obs + `,"subject":{"reference":"urn:uuid:nope"}}`, []string{"value@Observation.subject.reference"}},
		{"reference type element", "Observation", `{` + obs + `,"subject":{"type":"Organization","identifier":{"value":"1"}}}`, []string{"value@Observation.subject.type"}},
		{"date formats", "Patient", `{"resourceType":"Patient","birthDate":"1970-02-30"}`, []string{"value@Patient.birthDate"}},
		{"leap day", "Patient", `{"resourceType":"Patient","birthDate":"2000-02-29","deceasedDateTime":"2020-01-01T10:00:00+01:00"}`, nil},
		{"dateTime without zone", "Patient", `{"resourceType":"Patient","deceasedDateTime":"2020-01-01T10:00:00"}`, []string{"value@Patient.deceased.ofType(dateTime)"}},
		{"instant", "Observation", `{` + obs + `,"issued":"2020-01-01"}`, []string{"value@Observation.issued"}},
		{"time", "Observation", `{` + obs + `,"valueTime":"25:00:00"}`, []string{"value@Observation.value.ofType(time)"}},
		{"boolean", "Patient", `{"resourceType":"Patient","active":"true"}`, []string{"value@Patient.active"}},
		{"integer", "Patient", `{"resourceType":"Patient","multipleBirthInteger":1.5}`, []string{"value@Patient.multipleBirth.ofType(integer)"}},
		{"integer range", "Patient", `{"resourceType":"Patient","multipleBirthInteger":3000000000}`, []string{"value@Patient.multipleBirth.ofType(integer)"}},
		{"positiveInt", "Observation", `{` + obs + `,"valueSampledData":{"origin":{"value":1},"period":1,"dimensions":0}}`, []string{"value@Observation.value.ofType(SampledData).dimensions"}},
		{"decimal", "Observation", `{` + obs + `,"valueQuantity":{"value":1e400}}`, nil},
		{"decimal as string", "Observation", `{` + obs + `,"valueQuantity":{"value":"1"}}`, []string{"value@Observation.value.ofType(Quantity).value"}},
		{"id", "Patient", `{"resourceType":"Patient","id":"a b"}`, []string{"value@Patient.id"}},
		{"code whitespace", "Patient", `{"resourceType":"Patient","language":"en  US"}`, []string{"value@Patient.language"}},
		{"uri whitespace", "Patient", `{"resourceType":"Patient","implicitRules":"http://a b"}`, []string{"value@Patient.implicitRules"}},
		{"base64Binary", "Patient", `{"resourceType":"Patient","photo":[{"data":"not base64!"}]}`, []string{"value@Patient.photo[0].data"}},
		{"blank string", "Patient", `{"resourceType":"Patient","name":[{"family":"  "}]}`, []string{"value@Patient.name[0].family"}},
		{"string as number", "Patient", `{"resourceType":"Patient","name":[{"family":1}]}`, []string{"value@Patient.name[0].family"}},
		{"object for primitive", "Patient", `{"resourceType":"Patient","gender":{"code":"male"}}`, []string{"value@Patient.gender"}},
		{"primitive for object", "Patient", `{"resourceType":"Patient","maritalStatus":"M"}`, []string{"structure@Patient.maritalStatus"}},
		{"content reference", "Questionnaire", `{"resourceType":"Questionnaire","status":"draft","item":[{"linkId":"1","type":"group","item":[{"linkId":"1.1","type":"nope"}]}]}`,
			[]string{"code-invalid@Questionnaire.item[0].item[0].type"}},
		{"Coding required binding", "Questionnaire", `{"resourceType":"Questionnaire","status":"draft","item":[{"linkId":"1","type":"choice","answerOption":[{"valueCoding":{"code":"x"}}]}]}`, nil},
		{"CodeableConcept required binding", "Observation", `{` + obs + `,"component":[{"code":{"text":"c"},"dataAbsentReason":{"coding":[{"system":"http://example.org","code":"x"}]}}]}`, nil},
		{"bundle entries", "Bundle", `{"resourceType":"Bundle","type":"collection","entry":[{"fullUrl":"urn:uuid:0f8c3c5e-7a3b-4a39-9c36-3d3f5b7e1a11","resource":{"resourceType":"Patient","gender":"x"}}]}`,
			[]string{"code-invalid@Bundle.entry[0].resource.gender"}},
		{"not an R4 type", "Client", `{"secret":"x"}`, []string{"structure@Client"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := v.Validate(tc.typ, decode(t, tc.doc))
			var want strings.Builder
			for _, w := range tc.want {
				want.WriteString("error " + w + "\n")
			}
			if short(got) != want.String() {
				t.Errorf("%s:\n got %s\nwant %s\n%+v", tc.doc, short(got), want.String(), got)
			}
			for _, is := range got {
				if is.Diagnostics == "" {
					t.Errorf("issue without diagnostics: %+v", is)
				}
			}
		})
	}
}

// TestValidateIssueLimit: a document with very many faults gets MaxIssues issues and one
// saying how many more there were.
func TestValidateIssueLimit(t *testing.T) {
	v, _ := validate.Default()
	var b strings.Builder
	b.WriteString(`{"resourceType":"Patient","name":[`)
	for i := 0; i < 150; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"family":""}`)
	}
	b.WriteString(`]}`)
	got := v.Validate("Patient", decode(t, b.String()))
	if len(got) != validate.MaxIssues+1 || !strings.Contains(got[len(got)-1].Diagnostics, "50 more") {
		t.Errorf("%d issues, last %+v", len(got), got[len(got)-1])
	}
}

// TestSyntheaLeftovers: the STU3-era codings of the Synthea sample (a language coded in
// http://id.loc.gov/vocabulary/iso639-1 rather than urn:ietf:bcp:47, a passport number
// under a Standard Health Record identifier system) are valid R4: the bindings they
// sit under are preferred and extensible, not required, so they pass as they are.
func TestSyntheaLeftovers(t *testing.T) {
	v, _ := validate.Default()
	doc := decode(t, `{"resourceType":"Patient","communication":[{"language":{"coding":[{"system":"http://id.loc.gov/vocabulary/iso639-1","code":"hi","display":"Hindi"}],"text":"Hindi"}}],
		"identifier":[{"type":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v2-0203","code":"PPN"}]},"system":"http://standardhealthrecord.org/fhir/StructureDefinition/passportNumber","value":"X1"}]}`)
	if got := v.Validate("Patient", doc); len(got) != 0 {
		t.Errorf("%+v", got)
	}
}

// TestProfile checks a resource against a StructureDefinition: cardinality narrowed,
// a fixed and a pattern value, slices left out (conformance V7).
func TestProfile(t *testing.T) {
	sd := decode(t, `{"resourceType":"StructureDefinition","url":"http://example.org/sd/p","type":"Patient","differential":{"element":[
		{"id":"Patient","path":"Patient"},
		{"id":"Patient.name","path":"Patient.name","min":1,"max":"1"},
		{"id":"Patient.gender","path":"Patient.gender","fixedCode":"female"},
		{"id":"Patient.identifier","path":"Patient.identifier","patternIdentifier":{"system":"http://example.org/mrn"}},
		{"id":"Patient.identifier:ssn","path":"Patient.identifier","sliceName":"ssn","min":1},
		{"id":"Patient.deceased[x]","path":"Patient.deceased[x]","max":"0"}]}}`)
	p, err := validate.CompileProfile(sd)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, doc string
		want      []string
	}{
		{"conforms", `{"resourceType":"Patient","name":[{"family":"a"}],"gender":"female","identifier":[{"system":"http://example.org/mrn","value":"1"}]}`, nil},
		{"no name", `{"resourceType":"Patient","gender":"female"}`, []string{"required@Patient.name"}},
		{"two names", `{"resourceType":"Patient","name":[{"family":"a"},{"family":"b"}]}`, []string{"structure@Patient.name"}},
		{"fixed", `{"resourceType":"Patient","name":[{"family":"a"}],"gender":"male"}`, []string{"value@Patient.gender"}},
		{"pattern", `{"resourceType":"Patient","name":[{"family":"a"}],"identifier":[{"system":"http://example.org/mrn"},{"system":"http://other"}]}`, []string{"value@Patient.identifier[1]"}},
		{"choice max 0", `{"resourceType":"Patient","name":[{"family":"a"}],"deceasedBoolean":true}`, []string{"structure@Patient.deceased"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := p.Check("Patient", decode(t, tc.doc))
			var want strings.Builder
			for _, w := range tc.want {
				want.WriteString("error " + w + "\n")
			}
			if short(got) != want.String() {
				t.Errorf("got %s\nwant %s\n%+v", short(got), want.String(), got)
			}
		})
	}
	if got := p.Check("Observation", decode(t, `{"resourceType":"Observation"}`)); len(got) != 1 {
		t.Errorf("a profile of another type: %+v", got)
	}
	if _, err := validate.CompileProfile(decode(t, `{"resourceType":"StructureDefinition"}`)); err == nil {
		t.Error("a StructureDefinition without a type compiled")
	}
}

// FuzzValidate: whatever JSON document, as any type, the validator answers without
// panicking, and an R4 type's answer always has expressions.
func FuzzValidate(f *testing.F) {
	for _, s := range []string{
		`{"resourceType":"Patient","gender":"x","birthDate":"1970-13-45"}`,
		`{"resourceType":"Observation","status":"final","code":{"text":"t"},"valueQuantity":{"value":1},"contained":[{"resourceType":"Patient","id":"p"}],"subject":{"reference":"#p"}}`,
		`{"resourceType":"Questionnaire","item":[{"item":[{"item":[{}]}]}]}`,
		`{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Bundle","entry":[{"resource":{}}]}}]}`,
		`{"name":[{"given":[null],"_given":[{"extension":[{"url":"u","valueReference":{"reference":"Patient/1/_history/x"}}]}]}]}`,
		`{"_birthDate":[1],"birthDate":[],"extension":{},"meta":{"profile":[""]}}`,
	} {
		f.Add("Patient", s)
		f.Add("Observation", s)
	}
	v, err := validate.Default()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, typ, s string) {
		d := json.NewDecoder(strings.NewReader(s))
		d.UseNumber()
		var doc map[string]any
		if d.Decode(&doc) != nil || doc == nil {
			return
		}
		for _, is := range v.Validate(typ, doc) {
			if is.Severity == "" || is.Code == "" || is.Diagnostics == "" {
				t.Fatalf("incomplete issue %+v", is)
			}
		}
		if p, err := validate.CompileProfile(doc); err == nil {
			p.Check(typ, doc)
		}
	})
}
