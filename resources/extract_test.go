package resources

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// syntheaDir holds the repository's Synthea sample, relative to this package.
const syntheaDir = "../testdata/synthea/"

// decode decodes one JSON object the way the service does (numbers as json.Number).
func decode(t testing.TB, data []byte) map[string]any {
	t.Helper()
	var doc map[string]any
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	if err := d.Decode(&doc); err != nil {
		t.Fatalf("decode %s: %v", data, err)
	}
	return doc
}

// loadNDJSON returns the resources of one Synthea file (file.gz in syntheaDir) by id.
func loadNDJSON(t testing.TB, file string) map[string]map[string]any {
	t.Helper()
	f, err := os.Open(syntheaDir + file + ".gz")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	docs := map[string]map[string]any{}
	sc := bufio.NewScanner(zr)
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		doc := decode(t, sc.Bytes())
		docs[doc["id"].(string)] = doc
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return docs
}

// entries renders the index entries of one parameter compactly, in index order:
// "s:value|exact", "t:system|code", "d:low/high", "n:value|system|code", "r:Type/id".
func entries(idx *Index, param string) []string {
	var out []string
	for _, e := range idx.Strings {
		if e.Param == param {
			out = append(out, "s:"+e.Value+"|"+e.Exact)
		}
	}
	for _, e := range idx.Tokens {
		if e.Param == param {
			out = append(out, "t:"+e.System+"|"+e.Code)
		}
	}
	for _, e := range idx.Dates {
		if e.Param == param {
			out = append(out, "d:"+e.Low.Format(time.RFC3339Nano)+"/"+e.High.Format(time.RFC3339Nano))
		}
	}
	for _, e := range idx.Numbers {
		if e.Param == param {
			out = append(out, "n:"+strconv.FormatFloat(e.Value, 'g', -1, 64)+"|"+e.System+"|"+e.Code)
		}
	}
	for _, e := range idx.References {
		if e.Param == param {
			out = append(out, "r:"+e.TargetType+"/"+e.TargetID)
		}
	}
	return out
}

// TestExtractSynthea checks the index of real Synthea resources.
func TestExtractSynthea(t *testing.T) {
	reg := DefaultRegistry()
	patients := loadNDJSON(t, "patients.ndjson")
	observations := loadNDJSON(t, "observations.ndjson")

	tests := []struct {
		name  string
		typ   string
		doc   map[string]any
		param string
		want  []string
	}{
		{"family", "Patient", patients["004b7f3b-eaaa-4eda-81dc-3a82854a363d"], "family",
			[]string{"s:escobar|Escobar", "s:barrios|Barrios"}},
		{"name covers given and prefix", "Patient", patients["004b7f3b-eaaa-4eda-81dc-3a82854a363d"], "name",
			[]string{"s:escobar|Escobar", "s:mayte|Mayte", "s:mrs.|Mrs.", "s:barrios|Barrios"}},
		{"accented family", "Patient", patients["dbaeb336-8fb6-44dd-9606-6ccb4114074b"], "family",
			[]string{"s:vargas|Vargas", "s:concepcion|Concepción"}},
		{"address", "Patient", patients["004b7f3b-eaaa-4eda-81dc-3a82854a363d"], "address",
			[]string{"s:141 schinner gate unit 24|141 Schinner Gate Unit 24", "s:worcester|Worcester",
				"s:massachusetts|Massachusetts", "s:01545|01545", "s:us|US"}},
		{"address-city", "Patient", patients["004b7f3b-eaaa-4eda-81dc-3a82854a363d"], "address-city",
			[]string{"s:worcester|Worcester"}},
		{"birthdate is one day", "Patient", patients["004b7f3b-eaaa-4eda-81dc-3a82854a363d"], "birthdate",
			[]string{"d:1965-09-12T00:00:00Z/1965-09-13T00:00:00Z"}},
		{"gender", "Patient", patients["004b7f3b-eaaa-4eda-81dc-3a82854a363d"], "gender",
			[]string{"t:|female"}},
		{"phone is the ContactPoint value", "Patient", patients["004b7f3b-eaaa-4eda-81dc-3a82854a363d"], "phone",
			[]string{"t:|555-609-6292"}},
		{"no email", "Patient", patients["004b7f3b-eaaa-4eda-81dc-3a82854a363d"], "email", nil},
		{"language CodeableConcept", "Patient", patients["004b7f3b-eaaa-4eda-81dc-3a82854a363d"], "language",
			[]string{"t:urn:ietf:bcp:47|es"}},
		{"observation code", "Observation", observations["af5597a6-304d-4c8f-b596-60d17d445714"], "code",
			[]string{"t:http://loinc.org|8302-2"}},
		{"observation category", "Observation", observations["af5597a6-304d-4c8f-b596-60d17d445714"], "category",
			[]string{"t:http://terminology.hl7.org/CodeSystem/observation-category|vital-signs"}},
		{"observation subject", "Observation", observations["af5597a6-304d-4c8f-b596-60d17d445714"], "subject",
			[]string{"r:Patient/018f428e-34f6-4707-8009-5ad742f901e7"}},
		{"observation patient", "Observation", observations["af5597a6-304d-4c8f-b596-60d17d445714"], "patient",
			[]string{"r:Patient/018f428e-34f6-4707-8009-5ad742f901e7"}},
		{"observation encounter", "Observation", observations["af5597a6-304d-4c8f-b596-60d17d445714"], "encounter",
			[]string{"r:Encounter/a87b575f-a10e-4079-9e9e-e378729e422d"}},
		{"observation valueQuantity", "Observation", observations["af5597a6-304d-4c8f-b596-60d17d445714"], "value-quantity",
			[]string{"n:176.35499866729558|http://unitsofmeasure.org|cm"}},
		{"effectiveDateTime is one second", "Observation", observations["af5597a6-304d-4c8f-b596-60d17d445714"], "date",
			[]string{"d:2011-10-14T23:37:54Z/2011-10-14T23:37:55Z"}},
		{"meta.tag", "Observation", observations["af5597a6-304d-4c8f-b596-60d17d445714"], "_tag",
			[]string{"t:https://smarthealthit.org/tags|synthea-5-2019"}},
		{"valueCodeableConcept", "Observation", observations["df88b50e-56ed-4c3f-b74a-363daa679cf7"], "value-concept",
			[]string{"t:http://snomed.info/sct|266919005"}},
		{"component codes", "Observation", observations["f13d3b8d-0097-4b35-8d6e-31c73ac2601c"], "component-code",
			[]string{"t:http://loinc.org|8462-4", "t:http://loinc.org|8480-6"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.doc == nil {
				t.Fatal("sample resource not found")
			}
			idx, err := reg.Extract(tt.typ, tt.doc)
			if err != nil {
				t.Fatal(err)
			}
			if got := entries(idx, tt.param); !slices.Equal(got, tt.want) {
				t.Errorf("%s:\n got %q\nwant %q", tt.param, got, tt.want)
			}
		})
	}

	// Every sample resource indexes without error, and the basics are always there.
	for id, doc := range patients {
		idx, err := reg.Extract("Patient", doc)
		if err != nil {
			t.Fatalf("Patient/%s: %v", id, err)
		}
		if len(entries(idx, "birthdate")) != 1 || len(entries(idx, "family")) == 0 {
			t.Errorf("Patient/%s: birthdate %q, family %q", id, entries(idx, "birthdate"), entries(idx, "family"))
		}
	}
	for id, doc := range observations {
		idx, err := reg.Extract("Observation", doc)
		if err != nil {
			t.Fatalf("Observation/%s: %v", id, err)
		}
		if len(entries(idx, "subject")) != 1 || len(entries(idx, "code")) == 0 || len(entries(idx, "date")) != 1 {
			t.Errorf("Observation/%s: subject %q, code %q, date %q", id,
				entries(idx, "subject"), entries(idx, "code"), entries(idx, "date"))
		}
	}
}

// testRegistryYAML defines a type with one parameter of each kind, for shapes the
// default definitions do not exercise (number, where() on odd literals). LoadRegistry
// splits paths at every "|", so literals here avoid it.
const testRegistryYAML = `
types: [Thing, Patient]
common:
  - {name: _id, type: token, column: id}
  - {name: _tag, type: token, expression: Resource.meta.tag}
params:
  Thing:
    - {name: n, type: number, expression: Thing.n}
    - {name: q, type: quantity, expression: Thing.q}
    - {name: s, type: string, expression: Thing.s}
    - {name: t, type: token, expression: Thing.t}
    - {name: u, type: uri, expression: Thing.u}
    - {name: d, type: date, expression: Thing.d | Thing.p}
    - {name: r, type: reference, expression: Thing.r}
    - {name: rp, type: reference, expression: Thing.r, targets: [Patient]}
    - {name: w, type: token, expression: "Thing.x.where(kind='a b.c').code | Thing.x.where(flag='true').code"}
    - {name: deep, type: string, expression: Thing.a.b.c}
`

func TestExtractShapes(t *testing.T) {
	def := DefaultRegistry()
	custom, err := LoadRegistry([]byte(testRegistryYAML))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		reg   *Registry
		typ   string
		doc   string
		param string
		want  []string
	}{
		// string
		{"plain string, normalised", custom, "Thing", `{"s":"  Véliz   DE la  Cruz "}`, "s", []string{"s:veliz de la cruz|  Véliz   DE la  Cruz "}},
		{"string array", custom, "Thing", `{"s":["A","b","a"]}`, "s", []string{"s:a|A", "s:b|b", "s:a|a"}},
		{"HumanName parts", def, "Patient", `{"name":[{"family":"Núñez","given":["Ana","María"],"prefix":"Dr.","suffix":["III"],"text":"Ana Núñez"}]}`, "name",
			[]string{"s:nunez|Núñez", "s:ana|Ana", "s:maria|María", "s:dr.|Dr.", "s:iii|III", "s:ana nunez|Ana Núñez"}},
		{"HumanName as text only", def, "Patient", `{"name":[{"text":"Jo Doe","use":"usual"}]}`, "name", []string{"s:jo doe|Jo Doe"}},
		{"Address as text only", def, "InsurancePlan", `{"contact":[{"address":{"text":"1 Main St, Lyon","use":"work"}}]}`, "address", []string{"s:1 main st, lyon|1 Main St, Lyon"}},
		{"markdown", def, "ActivityDefinition", `{"description":"**Bold** text"}`, "description", []string{"s:**bold** text|**Bold** text"}},
		{"Address parts", def, "Patient", `{"address":[{"line":["1 Main St","Apt 2"],"city":"Lyon","district":"Rhône","state":"ARA","postalCode":"69001","country":"FR"}]}`, "address",
			[]string{"s:1 main st|1 Main St", "s:apt 2|Apt 2", "s:lyon|Lyon", "s:rhone|Rhône", "s:ara|ARA", "s:69001|69001", "s:fr|FR"}},
		{"other object skipped", custom, "Thing", `{"s":{"coding":[{"code":"x"}],"text":"Some text"}}`, "s", nil},
		{"number where string expected skipped", custom, "Thing", `{"s":5}`, "s", nil},
		{"deep path flattens arrays", custom, "Thing", `{"a":[{"b":[{"c":"x"},{"c":["y","z"]}]},{"b":{"c":"w"}},"junk",{"b":"junk"}]}`, "deep",
			[]string{"s:x|x", "s:y|y", "s:z|z", "s:w|w"}},

		// token
		{"code string", custom, "Thing", `{"t":"final"}`, "t", []string{"t:|final"}},
		{"boolean", def, "Patient", `{"active":false}`, "active", []string{"t:|false"}},
		{"Coding", custom, "Thing", `{"t":{"system":"s","code":"c","display":"C"}}`, "t", []string{"t:s|c"}},
		{"Coding without code skipped", custom, "Thing", `{"t":{"system":"s"}}`, "t", nil},
		{"CodeableConcept codings", custom, "Thing", `{"t":{"coding":[{"system":"a","code":"1"},{"code":"2"},{"system":"a","code":"1"},"junk"],"text":"t"}}`, "t",
			[]string{"t:a|1", "t:|2"}},
		{"Identifier", def, "Patient", `{"identifier":[{"system":"urn:x","value":"42"},{"value":"7"}]}`, "identifier", []string{"t:urn:x|42", "t:|7"}},
		{"ContactPoint by value", def, "Patient", `{"telecom":[{"system":"email","value":"a@b.c"},{"system":"phone","value":"555"}]}`, "telecom", []string{"t:|a@b.c", "t:|555"}},
		{"where(system='email')", def, "Patient", `{"telecom":[{"system":"email","value":"a@b.c"},{"system":"phone","value":"555"}]}`, "email", []string{"t:|a@b.c"}},
		// FHIRPath compares a boolean with the string 'true' as unequal (no implicit
		// conversion between them).
		{"where() literal with a space and a dot; a boolean is not the string 'true'", custom, "Thing", `{"x":[{"kind":"a b.c","code":"1"},{"kind":"a","code":"2"},{"flag":true,"code":"3"},{"flag":"true","code":"4"}]}`, "w",
			[]string{"t:|1", "t:|4"}},
		{"empty code skipped", custom, "Thing", `{"t":["", {"code":""}]}`, "t", nil},
		{"string where object expected", def, "Observation", `{"code":"abc"}`, "code", []string{"t:|abc"}},
		{"id", def, "ImagingStudy", `{"series":[{"instance":[{"uid":"1.2.840.1"}]}]}`, "instance", []string{"t:|1.2.840.1"}},
		{"string", def, "ActivityDefinition", `{"version":"1.0.2"}`, "version", []string{"t:|1.0.2"}},
		{"uri as a token", def, "MessageDefinition", `{"eventUri":"http://x.org/events/admit"}`, "event", []string{"t:|http://x.org/events/admit"}},
		{"Identifier with a type", def, "Patient", `{"identifier":[{"type":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v2-0203","code":"MR"}]},"system":"urn:x","value":"42"}]}`, "identifier",
			[]string{"t:urn:x|42"}},

		// uri
		{"uri", def, "Patient", `{"meta":{"profile":["http://x/p1","http://x/p2"],"source":"http://src"}}`, "_profile", []string{"t:|http://x/p1", "t:|http://x/p2"}},
		{"_source", def, "Patient", `{"meta":{"source":"http://src#abc"}}`, "_source", []string{"t:|http://src#abc"}},
		{"_security", def, "Patient", `{"meta":{"security":[{"system":"s","code":"R"}]}}`, "_security", []string{"t:s|R"}},

		// date
		{"year", custom, "Thing", `{"d":"2019"}`, "d", []string{"d:2019-01-01T00:00:00Z/2020-01-01T00:00:00Z"}},
		{"month", custom, "Thing", `{"d":"2019-03"}`, "d", []string{"d:2019-03-01T00:00:00Z/2019-04-01T00:00:00Z"}},
		{"December", custom, "Thing", `{"d":"2019-12"}`, "d", []string{"d:2019-12-01T00:00:00Z/2020-01-01T00:00:00Z"}},
		{"dateTime with zone", custom, "Thing", `{"d":"2019-03-04T10:20:30+02:00"}`, "d", []string{"d:2019-03-04T08:20:30Z/2019-03-04T08:20:31Z"}},
		{"dateTime without zone is UTC", custom, "Thing", `{"d":"2019-03-04T10:20:30"}`, "d", []string{"d:2019-03-04T10:20:30Z/2019-03-04T10:20:31Z"}},
		{"instant with milliseconds", custom, "Thing", `{"d":"2019-03-04T10:20:30.123Z"}`, "d", []string{"d:2019-03-04T10:20:30.123Z/2019-03-04T10:20:30.124Z"}},
		{"instant with one fraction digit", custom, "Thing", `{"d":"2019-03-04T10:20:30.1Z"}`, "d", []string{"d:2019-03-04T10:20:30.1Z/2019-03-04T10:20:30.2Z"}},
		{"Period", custom, "Thing", `{"p":{"start":"2019-03-04","end":"2019-03-10T12:00:00Z"}}`, "d", []string{"d:2019-03-04T00:00:00Z/2019-03-10T12:00:01Z"}},
		{"Period open end", custom, "Thing", `{"p":{"start":"2019"}}`, "d", []string{"d:2019-01-01T00:00:00Z/9999-12-31T23:59:59Z"}},
		{"Period open start", custom, "Thing", `{"p":{"end":"2019"}}`, "d", []string{"d:0001-01-01T00:00:00Z/2020-01-01T00:00:00Z"}},
		{"Period backwards skipped", custom, "Thing", `{"p":{"start":"2020","end":"2019"}}`, "d", nil},
		{"empty Period skipped", custom, "Thing", `{"p":{}}`, "d", nil},
		{"bad dates skipped", custom, "Thing", `{"d":["2019-02-30","2019-13","19","2019-03-04T25:00:00Z","2019-03-04T10:00:00+15:00",5,{"start":"x"}]}`, "d", nil},
		{"same date once", custom, "Thing", `{"d":["2019","2019"],"p":{"start":"2019","end":"2019"}}`, "d", []string{"d:2019-01-01T00:00:00Z/2020-01-01T00:00:00Z"}},
		{"Encounter.period", def, "Encounter", `{"period":{"start":"2011-10-14T23:37:54+00:00","end":"2011-10-15T00:07:54+00:00"}}`, "date",
			[]string{"d:2011-10-14T23:37:54Z/2011-10-15T00:07:55Z"}},
		// Timing: only the outer limits matter (FHIR search), from the earliest event
		// or bound to the latest.
		{"Timing events", def, "CarePlan", `{"activity":[{"detail":{"scheduledTiming":{"event":["2020-03-05T10:00:00Z","2020-03-01","2020-03-04T08:00:00Z"]}}}]}`, "activity-date",
			[]string{"d:2020-03-01T00:00:00Z/2020-03-05T10:00:01Z"}},
		{"Timing repeat.boundsPeriod", def, "ServiceRequest", `{"occurrenceTiming":{"repeat":{"boundsPeriod":{"start":"2020-03-01","end":"2020-03-31"},"frequency":2,"period":1,"periodUnit":"d"}}}`, "occurrence",
			[]string{"d:2020-03-01T00:00:00Z/2020-04-01T00:00:00Z"}},
		{"Timing events and bounds", def, "Observation", `{"effectiveTiming":{"event":["2019-12-31T23:00:00Z"],"repeat":{"boundsPeriod":{"start":"2020-01-01"}}}}`, "date",
			[]string{"d:2019-12-31T23:00:00Z/9999-12-31T23:59:59Z"}},
		{"Timing without a date skipped", def, "ChargeItem", `{"occurrenceTiming":{"code":{"text":"BID"},"repeat":{"boundsDuration":{"value":5,"unit":"d"},"frequency":2,"period":1,"periodUnit":"d"}}}`, "occurrence", nil},
		{"Timing with a bad event keeps the good one", def, "CarePlan", `{"activity":[{"detail":{"scheduledTiming":{"event":["2020-13-01","2020-03-05"]}}}]}`, "activity-date",
			[]string{"d:2020-03-05T00:00:00Z/2020-03-06T00:00:00Z"}},
		{"deceased[x] boolean from exists()", def, "Patient", `{"deceasedBoolean":true}`, "deceased", []string{"t:|true"}},
		{"deceased[x] dateTime from exists()", def, "Patient", `{"deceasedDateTime":"2020-01-01"}`, "deceased", []string{"t:|true"}},
		{"deceased absent is false", def, "Patient", `{}`, "deceased", []string{"t:|false"}},
		{"instant", def, "Appointment", `{"start":"2001-03-30T10:30:00.000Z"}`, "date", []string{"d:2001-03-30T10:30:00Z/2001-03-30T10:30:00.001Z"}},

		// number and quantity
		{"numbers", custom, "Thing", `{"n":[1,2.5,"3",true,0e-400,4.9e-324]}`, "n", []string{"n:1||", "n:2.5||", "n:0||", "n:5e-324||"}},
		{"Quantity", custom, "Thing", `{"q":{"value":5.4,"system":"http://unitsofmeasure.org","code":"mg","unit":"milligram"}}`, "q", []string{"n:5.4|http://unitsofmeasure.org|mg", "n:5.4||milligram"}}, // the unit too: derived.go
		{"Quantity unit when no code", custom, "Thing", `{"q":{"value":5,"unit":"pills"}}`, "q", []string{"n:5||pills"}},
		{"bare number as quantity", custom, "Thing", `{"q":7}`, "q", []string{"n:7||"}},
		{"Quantity without value skipped", custom, "Thing", `{"q":{"code":"mg"}}`, "q", nil},
		{"Money: currency under ISO 4217", def, "ChargeItem", `{"priceOverride":{"value":263.5,"currency":"EUR"}}`, "price-override", []string{"n:263.5|urn:iso:std:iso:4217|EUR"}},
		{"Money without currency", def, "Invoice", `{"totalNet":{"value":10}}`, "totalnet", []string{"n:10||"}},
		{"Age", def, "Condition", `{"onsetAge":{"value":47,"system":"http://unitsofmeasure.org","code":"a","unit":"years"}}`, "onset-age", []string{"n:47|http://unitsofmeasure.org|a", "n:47||years"}}, // the unit too: 47||years
		{"Duration", def, "Encounter", `{"length":{"value":90,"system":"http://unitsofmeasure.org","code":"min"}}`, "length", []string{"n:90|http://unitsofmeasure.org|min"}},
		// A Range: its low bound under the parameter, its high under onset-age#high (range.go).
		{"Range low", def, "Condition", `{"onsetRange":{"low":{"value":40,"code":"a"},"high":{"value":50,"code":"a"}}}`, "onset-age", []string{"n:40||a"}},
		{"Range high", def, "Condition", `{"onsetRange":{"low":{"value":40,"code":"a"},"high":{"value":50,"code":"a"}}}`, "onset-age#high", []string{"n:50||a"}},
		{"Range open above", def, "Condition", `{"onsetRange":{"low":{"value":40}}}`, "onset-age#high", []string{"n:1.7976931348623157e+308||"}},
		{"Range without numbers", def, "Condition", `{"onsetRange":{"low":{"unit":"a"}}}`, "onset-age", nil},
		{"Range of a parameter that names no Range", def, "Observation", `{"valueRange":{"low":{"value":40}}}`, "value-quantity", nil},
		{"SampledData not a quantity", def, "Observation", `{"valueSampledData":{"origin":{"value":1},"period":1,"dimensions":1,"data":"1 2"}}`, "value-quantity", nil},
		{"integer", def, "MolecularSequence", `{"variant":[{"end":1499}]}`, "variant-end", []string{"n:1499||"}},

		// reference
		{"relative", custom, "Thing", `{"r":{"reference":"Patient/123"}}`, "r", []string{"r:Patient/123"}},
		{"absolute with history", custom, "Thing", `{"r":[{"reference":"https://h/fhir/Patient/1/_history/3"},{"reference":"http://h/Organization/o.2"}]}`, "r",
			[]string{"r:Patient/1", "r:Organization/o.2"}},
		{"Aidbox form", custom, "Thing", `{"r":{"resourceType":"User","id":"u1"}}`, "r", []string{"r:User/u1"}},
		{"Aidbox form in Session.user", def, "Session", `{"user":{"resourceType":"User","id":"u1"},"audience":"https://aud"}`, "user", []string{"r:User/u1"}},
		{"contained, urn, junk skipped", custom, "Thing", `{"r":[{"reference":"#p1"},{"reference":"urn:uuid:0b1c"},{"reference":"Patient/"},{"reference":"patient/1"},{"reference":5},{"display":"x"},{"resourceType":"User"}]}`, "r", nil},
		{"targets filter", custom, "Thing", `{"r":[{"reference":"Patient/1"},{"reference":"Group/2"}]}`, "rp", []string{"r:Patient/1"}},
		{"general-practitioner targets", def, "Patient", `{"generalPractitioner":[{"reference":"Practitioner/1"},{"reference":"Device/2"},{"reference":"Organization/3"}]}`, "general-practitioner",
			[]string{"r:Practitioner/1", "r:Organization/3"}},
		{"link.other", def, "Patient", `{"link":[{"other":{"reference":"Patient/p2"},"type":"seealso"}]}`, "link", []string{"r:Patient/p2"}},
		{"canonical with a version", def, "QuestionnaireResponse", `{"questionnaire":"http://example.org/fhir/Questionnaire/q1|2.0"}`, "questionnaire", []string{"r:Questionnaire/q1"}},
		{"canonical without a version", def, "QuestionnaireResponse", `{"questionnaire":"http://example.org/fhir/Questionnaire/q1"}`, "questionnaire", []string{"r:Questionnaire/q1"}},
		{"canonical with a fragment and a version", def, "CarePlan", `{"instantiatesCanonical":["http://x.org/PlanDefinition/p1|1.0","http://x.org/PlanDefinition/p2#a|1.0"]}`, "instantiates-canonical",
			[]string{"r:PlanDefinition/p1", "r:PlanDefinition/p2"}},
		{"canonical not ending in Type/id skipped", def, "QuestionnaireResponse", `{"questionnaire":"urn:oid:1.2.3|1"}`, "questionnaire", nil},
		{"relatedArtifact.where(type=…).resource", def, "PlanDefinition", `{"relatedArtifact":[{"type":"composed-of","resource":"http://x.org/fhir/ActivityDefinition/a1|3"},{"type":"depends-on","resource":"http://x.org/fhir/Library/l1"}]}`, "composed-of",
			[]string{"r:ActivityDefinition/a1"}},
		{"uri as a reference", def, "ConceptMap", `{"sourceUri":"http://example.org/fhir/ValueSet/vs1"}`, "source-uri", []string{"r:ValueSet/vs1"}},
		{"Bundle.entry[0].resource", def, "Bundle", `{"entry":[{"resource":{"resourceType":"Composition","id":"c1"}},{"resource":{"resourceType":"Composition","id":"c2"}}]}`, "composition", []string{"r:Composition/c1"}},
		{"where(resolve() is Patient)", def, "Account", `{"subject":[{"reference":"Patient/p1"},{"reference":"Device/d1"},{"reference":"#p2"}],"contained":[{"resourceType":"Patient","id":"p2"}]}`, "patient",
			[]string{"r:Patient/p1"}},

		// Aidbox-style User
		{"User.roles strings and objects", def, "User", `{"roles":["admin",{"value":"nurse"},{"value":"admin"}]}`, "roles", []string{"t:|admin", "t:|nurse"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			idx, err := tt.reg.Extract(tt.typ, decode(t, []byte(tt.doc)))
			if err != nil {
				t.Fatal(err)
			}
			if got := entries(idx, tt.param); !slices.Equal(got, tt.want) {
				t.Errorf("%s:\n got %q\nwant %q", tt.param, got, tt.want)
			}
		})
	}
}

// TestExtractUnindexable checks that a value the index cannot hold refuses the resource
// with a 422 naming its path, instead of being left out of the index or indexed wrong.
func TestExtractUnindexable(t *testing.T) {
	def := DefaultRegistry()
	custom, err := LoadRegistry([]byte(testRegistryYAML))
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("x", MaxIndexValueBytes)
	tests := []struct {
		name string
		reg  *Registry
		typ  string
		doc  string
		path string // "" when the document is indexed
	}{
		{"number beyond float64", custom, "Thing", `{"n":[1,2,3,4,1e400]}`, "Thing.n[4]"},
		{"negative number beyond float64", custom, "Thing", `{"n":-1e400}`, "Thing.n"},
		{"nonzero number indexed as 0", custom, "Thing", `{"n":1e-400}`, "Thing.n"},
		{"million digits", custom, "Thing", `{"n":` + strings.Repeat("7", 1_000_000) + `}`, "Thing.n"},
		{"quantity beyond float64", def, "Observation", `{"valueQuantity":{"value":1e309}}`, "Observation.valueQuantity"},
		{"longest string", custom, "Thing", `{"s":"` + long + `"}`, ""},
		{"string too long", custom, "Thing", `{"s":["a","` + long + `y"]}`, "Thing.s[1]"},
		{"name part too long", def, "Patient", `{"name":[{"given":["a"]},{"family":"` + long + `y"}]}`, "Patient.name[1].family"},
		{"longest token", custom, "Thing", `{"t":{"system":"` + long[:1000] + `","code":"` + long[1000:] + `"}}`, ""},
		{"token too long", custom, "Thing", `{"t":{"system":"` + long[:1000] + `","code":"` + long[999:] + `"}}`, "Thing.t"},
		{"uri too long", custom, "Thing", `{"u":"http://` + long + `"}`, "Thing.u"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.reg.Extract(tt.typ, decode(t, []byte(tt.doc)))
			if tt.path == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) || e.Code != CodeUnprocessable || e.Expression != tt.path || !strings.Contains(e.Message, tt.path) {
				t.Fatalf("got %v (%#v), want a 422 at %s", err, e, tt.path)
			}
			if len(e.Message) > 300 {
				t.Errorf("message of %d bytes quotes the value whole", len(e.Message))
			}
		})
	}
}

// TestExtractFloat64 checks documents decoded without UseNumber.
func TestExtractFloat64(t *testing.T) {
	reg, err := LoadRegistry([]byte(testRegistryYAML))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(`{"n":3,"q":{"value":1.5,"code":"kg"}}`), &doc); err != nil {
		t.Fatal(err)
	}
	doc["n"] = []any{doc["n"], 4, int64(5)}
	idx, err := reg.Extract("Thing", doc)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprint(entries(idx, "n"), entries(idx, "q")), "[n:3|| n:4|| n:5||] [n:1.5||kg]"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

func TestExtractUnknownType(t *testing.T) {
	_, err := DefaultRegistry().Extract("Nope", map[string]any{})
	if ErrorCode(err) != CodeNotFound {
		t.Errorf("got %v, want a not-found error", err)
	}
}

// TestExpressionsCompile checks every expression of the embedded definitions, so a
// typo in searchparams.yaml fails here rather than on the first write of the type.
func TestExpressionsCompile(t *testing.T) {
	reg := DefaultRegistry()
	for _, typ := range reg.Types() {
		td, _ := reg.Type(typ)
		for _, p := range td.Params {
			if p.Expression == "" {
				continue
			}
			if p.expr == nil {
				t.Errorf("%s.%s: %q not compiled", typ, p.Name, p.Expression)
			}
		}
		if _, err := reg.Extract(typ, map[string]any{"resourceType": typ}); err != nil {
			t.Errorf("%s: empty resource: %v", typ, err)
		}
	}
}

func TestNormalizeString(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Véliz", "veliz"},
		{"  MÜLLER\t Straße \n", "muller straße"},
		{"Ærø", "ærø"}, // letters, not accents: kept
		{"İstanbul", "istanbul"},
		{"Zoë  Ñandú", "zoe nandu"},
		{"e\u0301", "e"}, // already decomposed
		{"", ""},
		{" \t ", ""},
		{"한국어", "한국어"},
	}
	for _, tt := range tests {
		if got := NormalizeString(tt.in); got != tt.want {
			t.Errorf("NormalizeString(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if got := NormalizeString(tt.want); got != tt.want {
			t.Errorf("NormalizeString is not idempotent on %q: %q", tt.want, got)
		}
	}
}

// FuzzExtract feeds arbitrary JSON to Extract: whatever the shapes, it must not panic,
// and every entry must be well formed.
func FuzzExtract(f *testing.F) {
	for _, s := range []string{
		`{"name":[{"family":"Doe","given":["J"]}],"birthDate":"2000","telecom":[{"system":"email","value":"a@b"}]}`,
		`{"name":"x","address":[1,null,{"line":5}],"identifier":{"system":1},"generalPractitioner":"Practitioner/1"}`,
		`{"subject":{"reference":"https://h/Patient/1/_history/2"},"effectivePeriod":{"start":"2019","end":"2018"},"valueQuantity":{"value":"5"}}`,
		`{"code":{"coding":[{"system":"s","code":"c"}]},"component":[{"code":[[]]}],"meta":{"tag":[{"code":"t"}],"profile":"p"}}`,
	} {
		f.Add([]byte(s))
	}
	reg := DefaultRegistry()
	f.Fuzz(func(t *testing.T, data []byte) {
		var doc map[string]any
		d := json.NewDecoder(bytes.NewReader(data))
		d.UseNumber()
		if d.Decode(&doc) != nil {
			return
		}
		for _, typ := range []string{"Patient", "Observation"} {
			idx, err := reg.Extract(typ, doc)
			if err != nil {
				t.Fatalf("%s: %v", typ, err)
			}
			for _, e := range idx.Strings {
				if e.Value == "" || e.Value != NormalizeString(e.Exact) {
					t.Errorf("bad string entry %+v", e)
				}
			}
			for _, e := range idx.Tokens {
				if e.Code == "" {
					t.Errorf("bad token entry %+v", e)
				}
			}
			for _, e := range idx.Dates {
				if !e.Low.Before(e.High) {
					t.Errorf("bad date entry %+v", e)
				}
			}
			for _, e := range idx.References {
				if e.TargetType == "" || !ValidID(e.TargetID) {
					t.Errorf("bad reference entry %+v", e)
				}
			}
		}
	})
}

// FuzzNormalizeString checks that normalising twice changes nothing, since query values
// and indexed values are both normalised and must meet.
func FuzzNormalizeString(f *testing.F) {
	for _, s := range []string{"Véliz", " a  b ", "İ", "ǅ", "ﬁ", "\u0345", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n := NormalizeString(s)
		if NormalizeString(n) != n {
			t.Errorf("NormalizeString(%q) = %q, but NormalizeString(%q) = %q", s, n, n, NormalizeString(n))
		}
	})
}

// BenchmarkExtract measures the index extraction of the Synthea Patients and
// Observations of testdata (every parameter of the type evaluated, as on every write):
// the time per resource, and the index rows a resource gives on average.
func BenchmarkExtract(b *testing.B) {
	reg := DefaultRegistry()
	for _, tc := range []struct{ typ, file string }{{"Patient", "patients.ndjson"}, {"Observation", "observations.ndjson"}} {
		b.Run(tc.typ, func(b *testing.B) {
			byID := loadNDJSON(b, tc.file)
			var docs []map[string]any
			for _, id := range slices.Sorted(maps.Keys(byID)) {
				docs = append(docs, byID[id])
			}
			if len(docs) > 2000 {
				docs = docs[:2000]
			}
			b.ReportAllocs()
			rows, n := 0, 0
			for b.Loop() {
				doc := docs[n%len(docs)]
				n++
				idx, err := reg.Extract(tc.typ, doc)
				if err != nil {
					b.Fatal(err)
				}
				rows += len(idx.Strings) + len(idx.Tokens) + len(idx.Dates) + len(idx.Numbers) + len(idx.References)
			}
			b.ReportMetric(float64(rows)/float64(n), "rows/op")
		})
		// What a patient compartment's confinement tests of a stored resource it reads.
		b.Run(tc.typ+"/compartment", func(b *testing.B) {
			byID := loadNDJSON(b, tc.file)
			var docs [][]byte
			for _, id := range slices.Sorted(maps.Keys(byID)) {
				raw, err := json.Marshal(byID[id])
				if err != nil {
					b.Fatal(err)
				}
				docs = append(docs, raw)
			}
			if len(docs) > 2000 {
				docs = docs[:2000]
			}
			params := CompartmentParams("Patient", tc.typ)
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				if _, err := reg.extractStored(tc.typ, docs[n%len(docs)], params); err != nil {
					b.Fatal(err)
				}
				n++
			}
		})
	}
}

// FuzzNormalizeASCII checks the ASCII fast path of NormalizeString against the general
// one (decomposition, marks dropped, recomposition) that it skips.
func FuzzNormalizeASCII(f *testing.F) {
	for _, s := range []string{"", " ", "Body Mass Index", " a  b ", "a\tb\nc\v\f\rd ", "already normal", "x ", " x", "\x00A\x7f"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := normalizeASCII(s)
		ascii := true
		for i := 0; i < len(s); i++ {
			ascii = ascii && s[i] < 0x80
		}
		if ok != ascii {
			t.Fatalf("normalizeASCII(%q): ok = %v for ASCII = %v", s, ok, ascii)
		}
		if want := normalizeUnicode(s); ok && got != want {
			t.Fatalf("normalizeASCII(%q) = %q, want %q", s, got, want)
		}
	})
}
