package server_test

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
)

// searchCase is one search and the ids it must find, or the status and a part of the
// OperationOutcome it must answer instead.
type searchCase struct {
	query  string
	want   []string
	status int    // 0: 200
	says   string // what the diagnostics of a refusal contain
}

// checkSearches runs each case through the router.
func checkSearches(t *testing.T, e *env, cases []searchCase) {
	t.Helper()
	for _, tt := range cases {
		status := tt.status
		if status == 0 {
			status = 200
		}
		r := e.do(get(tt.query))
		if r.status != status {
			t.Errorf("%s: status %d, want %d\n%s", tt.query, r.status, status, r.raw)
			continue
		}
		if status != 200 {
			if d := outcomeText(t, r); !strings.Contains(d, tt.says) {
				t.Errorf("%s: %q does not say %q", tt.query, d, tt.says)
			}
			continue
		}
		got := entryIDs(r)
		sort.Strings(got)
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s: got %v, want %v", tt.query, got, tt.want)
		}
	}
}

const loinc = "http://loinc.org"

// bloodPressure is an Observation with a systolic and a diastolic component.
func bloodPressure(systolic, diastolic float64) string {
	return fmt.Sprintf(`{"resourceType":"Observation","status":"final",
	  "code":{"coding":[{"system":"http://loinc.org","code":"85354-9"}]},
	  "component":[
	    {"code":{"coding":[{"system":"http://loinc.org","code":"8480-6","display":"Systolic blood pressure"}]},
	     "valueQuantity":{"value":%v,"unit":"mmHg","system":"http://unitsofmeasure.org","code":"mm[Hg]"}},
	    {"code":{"coding":[{"system":"http://loinc.org","code":"8462-4"}]},
	     "valueQuantity":{"value":%v,"unit":"mmHg","system":"http://unitsofmeasure.org","code":"mm[Hg]"}}]}`, systolic, diastolic)
}

// TestSearchComposite checks composite parameters: every part of a value must match
// one element (a component, the Observation itself, a Group characteristic), never
// parts of different ones; updates and deletes replace the rows.
func TestSearchComposite(t *testing.T) { forEachBackend(t, testSearchComposite) }

func testSearchComposite(t *testing.T) {
	e := newEnv(t)
	e.must(201, put("/fhir/Observation/bp1", bloodPressure(150, 90)))
	// Systolic 120, diastolic 150: 8480-6 and a value over 140, on different components.
	e.must(201, put("/fhir/Observation/bp2", bloodPressure(120, 150)))
	e.must(201, put("/fhir/Observation/glucose", `{"resourceType":"Observation","status":"final",
	  "code":{"coding":[{"system":"http://loinc.org","code":"2339-0"}]},
	  "valueQuantity":{"value":100,"unit":"mg/dL","system":"http://unitsofmeasure.org","code":"mg/dL"}}`))
	e.must(201, put("/fhir/Observation/smoking", `{"resourceType":"Observation","status":"final",
	  "code":{"coding":[{"system":"http://loinc.org","code":"72166-2"}]},
	  "valueCodeableConcept":{"coding":[{"system":"http://snomed.info/sct","code":"449868002"}]}}`))
	e.must(201, put("/fhir/Observation/note", `{"resourceType":"Observation","status":"final",
	  "code":{"coding":[{"system":"http://loinc.org","code":"8302-2"}]},"valueString":"Tall$ish"}`))
	e.must(201, put("/fhir/Observation/onset", `{"resourceType":"Observation","status":"final",
	  "code":{"coding":[{"system":"http://loinc.org","code":"11368-8"}]},"valueDateTime":"2020-05-01"}`))
	e.must(201, put("/fhir/Group/g1", `{"resourceType":"Group","type":"person","actual":true,"characteristic":[
	  {"code":{"coding":[{"system":"http://example.org/c","code":"gender"}]},"valueCodeableConcept":{"coding":[{"code":"female"}]},"exclude":false},
	  {"code":{"coding":[{"system":"http://example.org/c","code":"smoker"}]},"valueCodeableConcept":{"coding":[{"code":"yes"}]},"exclude":false}]}`))
	e.must(201, put("/fhir/Group/g2", `{"resourceType":"Group","type":"person","actual":true,"characteristic":[
	  {"code":{"coding":[{"system":"http://example.org/c","code":"gender"}]},"valueCodeableConcept":{"coding":[{"code":"yes"}]},"exclude":false},
	  {"code":{"coding":[{"system":"http://example.org/c","code":"smoker"}]},"valueCodeableConcept":{"coding":[{"code":"female"}]},"exclude":false}]}`))

	e.must(201, put("/fhir/DocumentReference/d1", `{"resourceType":"DocumentReference","status":"current","content":[{"attachment":{"url":"http://x/1"}}]}`))
	e.must(201, put("/fhir/DocumentReference/d2", `{"resourceType":"DocumentReference","status":"current","content":[{"attachment":{"url":"http://x/2"}}],
	  "relatesTo":[{"code":"replaces","target":{"reference":"DocumentReference/d1"}}]}`))

	checkSearches(t, e, []searchCase{
		{query: "/fhir/Observation?component-code-value-quantity=http://loinc.org|8480-6$gt140", want: []string{"bp1"}},
		{query: "/fhir/Observation?component-code-value-quantity=8480-6$gt140", want: []string{"bp1"}},
		{query: "/fhir/Observation?component-code-value-quantity=8462-4$gt140", want: []string{"bp2"}},
		{query: "/fhir/Observation?component-code-value-quantity=8480-6$150|http://unitsofmeasure.org|mm[Hg]", want: []string{"bp1"}},
		{query: "/fhir/Observation?component-code-value-quantity=8480-6$150||mmHg", want: []string{"bp1"}},
		{query: "/fhir/Observation?component-code-value-quantity=8480-6$150|http://unitsofmeasure.org|mg", want: nil},
		// OR-ed values, each one element; AND-ed clauses, each any element.
		{query: "/fhir/Observation?component-code-value-quantity=8480-6$lt130,8462-4$lt95", want: []string{"bp1", "bp2"}},
		{query: "/fhir/Observation?component-code-value-quantity=8480-6$gt140&component-code-value-quantity=8462-4$lt95", want: []string{"bp1"}},
		{query: "/fhir/Observation?combo-code-value-quantity=8480-6$150", want: []string{"bp1"}},
		{query: "/fhir/Observation?combo-code-value-quantity=2339-0$ge100", want: []string{"glucose"}},
		{query: "/fhir/Observation?code-value-quantity=http://loinc.org|2339-0$100|http://unitsofmeasure.org|mg/dL", want: []string{"glucose"}},
		{query: "/fhir/Observation?code-value-quantity=8480-6$150", want: nil}, // a component's, not the Observation's
		{query: "/fhir/Observation?code-value-concept=72166-2$http://snomed.info/sct|449868002", want: []string{"smoking"}},
		{query: "/fhir/Observation?code-value-concept=2339-0$449868002", want: nil},
		{query: "/fhir/Observation?code-value-date=11368-8$ge2020-05", want: []string{"onset"}},
		{query: "/fhir/Observation?code-value-date=11368-8$lt2020", want: nil},
		{query: "/fhir/Observation?code-value-string=8302-2$tall", want: []string{"note"}},
		{query: `/fhir/Observation?code-value-string=8302-2$tall\$ish`, want: []string{"note"}},
		{query: `/fhir/Observation?code-value-string=8302-2$tall\$x`, want: nil},
		{query: "/fhir/Observation?component-code-value-quantity:missing=false", want: []string{"bp1", "bp2"}},
		{query: "/fhir/Observation?component-code-value-quantity:missing=true", want: []string{"glucose", "note", "onset", "smoking"}},
		{query: "/fhir/Observation?code-value-quantity:missing=false", want: []string{"glucose"}},
		{query: "/fhir/Observation?code-value-quantity:missing=true", want: []string{"bp1", "bp2", "note", "onset", "smoking"}},
		{query: "/fhir/Group?characteristic-value=gender$female", want: []string{"g1"}},
		// R4 swapped the components of relationship; the registry reads them as R4B does.
		{query: "/fhir/DocumentReference?relationship=DocumentReference/d1$replaces", want: []string{"d2"}},
		{query: "/fhir/DocumentReference?relationship=DocumentReference/d1$appends", want: nil},
		{query: "/fhir/Group?characteristic-value=http://example.org/c|smoker$female", want: []string{"g2"}},

		{query: "/fhir/Observation?component-code-value-quantity=8480-6", status: 400, says: "2 parts separated by $ (component-code$component-value-quantity)"},
		{query: "/fhir/Observation?component-code-value-quantity=8480-6$", status: 400, says: "component-value-quantity is empty"},
		{query: "/fhir/Observation?component-code-value-quantity=8480-6$high", status: 400, says: "not a number"},
		{query: "/fhir/Observation?component-code-value-quantity=8480-6$1$2", status: 400, says: "not 3"},
		{query: "/fhir/Observation?component-code-value-quantity:exact=8480-6$1", status: 400, says: "modifier :exact is not supported on component-code-value-quantity (composite)"},
		{query: "/fhir/Observation?_sort=component-code-value-quantity", status: 400, says: "composite parameter"},
	})

	// A create under a fresh id takes the batched insert (PostgreSQL), which writes the
	// groups too.
	created := e.must(201, post("/fhir/Observation", bloodPressure(160, 80)))
	id, _ := at(created.doc, "id").(string)
	checkSearches(t, e, []searchCase{
		{query: "/fhir/Observation?component-code-value-quantity=8480-6$gt155", want: []string{id}},
		{query: "/fhir/Observation?component-code-value-quantity=8462-4$gt145", want: []string{"bp2"}},
	})
	e.must(200, del("/fhir/Observation/"+id))

	// An update replaces the rows of the old version, a delete removes them.
	e.must(200, put("/fhir/Observation/bp1", bloodPressure(110, 70)))
	e.must(200, del("/fhir/Observation/bp2"))
	checkSearches(t, e, []searchCase{
		{query: "/fhir/Observation?component-code-value-quantity=8480-6$gt140", want: nil},
		{query: "/fhir/Observation?component-code-value-quantity=8480-6$110", want: []string{"bp1"}},
		{query: "/fhir/Observation?component-code-value-quantity=8462-4$gt100", want: nil},
	})
}

// TestSearchNear checks Location?near: distances along the earth's surface in each
// unit, the default distance, across the antimeridian, and the refusals.
func TestSearchNear(t *testing.T) { forEachBackend(t, testSearchNear) }

func testSearchNear(t *testing.T) {
	e := newEnv(t)
	for id, pos := range map[string]string{
		"amsterdam": `{"latitude":52.3676,"longitude":4.9041}`,
		"utrecht":   `{"latitude":52.0907,"longitude":5.1214}`, // 34 km from Amsterdam
		"newyork":   `{"latitude":40.7128,"longitude":-74.0060}`,
		"east":      `{"latitude":0,"longitude":179.99}`,
		"west":      `{"latitude":0,"longitude":-179.99}`, // 2.2 km from east
	} {
		e.must(201, put("/fhir/Location/"+id, `{"resourceType":"Location","position":`+pos+`}`))
	}
	e.must(201, put("/fhir/Location/nowhere", `{"resourceType":"Location","name":"Nowhere"}`))

	checkSearches(t, e, []searchCase{
		{query: "/fhir/Location?near=52.3676|4.9041|1|km", want: []string{"amsterdam"}},
		{query: "/fhir/Location?near=52.3676|4.9041|33|km", want: []string{"amsterdam"}},
		{query: "/fhir/Location?near=52.3676|4.9041|35|km", want: []string{"amsterdam", "utrecht"}},
		{query: "/fhir/Location?near=52.3676|4.9041|35", want: []string{"amsterdam", "utrecht"}}, // km by default
		{query: "/fhir/Location?near=52.3676|4.9041|35000|m", want: []string{"amsterdam", "utrecht"}},
		{query: "/fhir/Location?near=52.3676|4.9041|20|[mi_i]", want: []string{"amsterdam"}}, // 32 km
		{query: "/fhir/Location?near=52.3676|4.9041|22|mi", want: []string{"amsterdam", "utrecht"}},
		{query: "/fhir/Location?near=52.37|4.90", want: []string{"amsterdam"}}, // 5 km by default
		{query: "/fhir/Location?near=52.3676|4.9041|6000|km", want: []string{"amsterdam", "newyork", "utrecht"}},
		{query: "/fhir/Location?near=40.7128|-74.0060|0|km", want: []string{"newyork"}},
		{query: "/fhir/Location?near=0|180|2|km", want: []string{"east", "west"}},
		{query: "/fhir/Location?near=0|179.99|1|km", want: []string{"east"}},
		{query: "/fhir/Location?near=40.7128|-74.0060|1|km,52.0907|5.1214|1|km", want: []string{"newyork", "utrecht"}},
		{query: "/fhir/Location?near:missing=true", want: []string{"nowhere"}},
		{query: "/fhir/Location?near=52|5|1|furlong", status: 400, says: `unknown distance unit "furlong"`},
		{query: "/fhir/Location?near=91|5", status: 400, says: "latitude"},
		{query: "/fhir/Location?near=52|181", status: 400, says: "longitude"},
		{query: "/fhir/Location?near=52", status: 400, says: "latitude|longitude|distance|units"},
		{query: "/fhir/Location?near=52|5|-1", status: 400, says: "distance"},
		{query: "/fhir/Location?near:exact=52|5", status: 400, says: "modifier :exact is not supported on near (special)"},
		{query: "/fhir/Location?_sort=near", status: 400, says: "special parameter"},
	})
}

// TestSearchModifiers checks every modifier on the parameter types that take it, and
// that the others are refused naming the modifier and the type.
func TestSearchModifiers(t *testing.T) { forEachBackend(t, testSearchModifiers) }

func testSearchModifiers(t *testing.T) {
	e := newEnv(t)
	e.must(201, put("/fhir/Patient/mueller", `{"resourceType":"Patient","gender":"female","birthDate":"1970-01-01",
	  "name":[{"family":"Müller","given":["Anna"]}],
	  "identifier":[{"type":{"text":"Medical record number","coding":[{"system":"http://terminology.hl7.org/CodeSystem/v2-0203","code":"MR"}]},
	    "system":"http://hospital","value":"12345"}]}`))
	e.must(201, put("/fhir/Patient/muller", `{"resourceType":"Patient","gender":"male","name":[{"family":"Mueller"}],
	  "identifier":[{"type":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v2-0203","code":"DL"}]},
	    "system":"http://dmv","value":"12345"}]}`))
	e.must(201, put("/fhir/Patient/nobody", `{"resourceType":"Patient"}`))
	e.must(201, put("/fhir/Condition/dm", `{"resourceType":"Condition","subject":{"reference":"Patient/mueller"},
	  "code":{"text":"Type 2 diabetes","coding":[{"system":"http://snomed.info/sct","code":"44054006","display":"Diabetes mellitus type 2"}]}}`))
	e.must(201, put("/fhir/Condition/flu", `{"resourceType":"Condition","subject":{"reference":"Patient/muller"},
	  "code":{"coding":[{"system":"http://snomed.info/sct","code":"6142004","display":"Influenza"}]}}`))
	e.must(201, put("/fhir/Observation/byid", `{"resourceType":"Observation","status":"final","code":{"text":"x"},
	  "subject":{"identifier":{"system":"http://hospital","value":"123"}}}`))
	e.must(201, put("/fhir/Observation/byref", `{"resourceType":"Observation","status":"final","code":{"text":"x"},
	  "subject":{"reference":"Patient/mueller"}}`))
	e.must(201, put("/fhir/Group/g1", `{"resourceType":"Group","type":"person","actual":true}`))
	e.must(201, put("/fhir/Observation/bygroup", `{"resourceType":"Observation","status":"final","code":{"text":"x"},
	  "subject":{"reference":"Group/g1"}}`))
	e.must(201, put("/fhir/ValueSet/acme", `{"resourceType":"ValueSet","status":"active","url":"http://acme.org/fhir/ValueSet/a"}`))
	e.must(201, put("/fhir/ValueSet/other", `{"resourceType":"ValueSet","status":"active","url":"http://other.org/vs/b"}`))
	e.must(201, put("/fhir/ValueSet/nourl", `{"resourceType":"ValueSet","status":"draft"}`))

	checkSearches(t, e, []searchCase{
		// string
		{query: "/fhir/Patient?family=muller", want: []string{"mueller"}},
		{query: "/fhir/Patient?family:exact=Müller", want: []string{"mueller"}},
		{query: "/fhir/Patient?family:exact=müller", want: nil},
		{query: "/fhir/Patient?family:contains=LLE", want: []string{"mueller", "muller"}},
		{query: "/fhir/Patient?family:missing=true", want: []string{"nobody"}},
		{query: "/fhir/Patient?family:text=mu", status: 400, says: "modifier :text is not supported on family (string)"},
		// token
		{query: "/fhir/Patient?gender:not=male", want: []string{"mueller", "nobody"}},
		{query: "/fhir/Patient?gender:not=male,female", want: []string{"nobody"}},
		{query: "/fhir/Patient?gender:missing=false", want: []string{"mueller", "muller"}},
		{query: "/fhir/Condition?code:text=diabetes", want: []string{"dm"}},
		{query: "/fhir/Condition?code:text=TYPE%202", want: []string{"dm"}},
		{query: "/fhir/Condition?code:text=influ,type", want: []string{"dm", "flu"}},
		{query: "/fhir/Condition?code:text=mellitus", want: nil}, // a text is searched from its start
		{query: "/fhir/Patient?identifier:text=medical%20record", want: []string{"mueller"}},
		{query: "/fhir/Patient?identifier:of-type=http://terminology.hl7.org/CodeSystem/v2-0203|MR|12345", want: []string{"mueller"}},
		{query: "/fhir/Patient?identifier:of-type=http://terminology.hl7.org/CodeSystem/v2-0203|DL|12345", want: []string{"muller"}},
		{query: "/fhir/Patient?identifier:of-type=http://terminology.hl7.org/CodeSystem/v2-0203|MR|99", want: nil},
		{query: "/fhir/Patient?identifier:of-type=MR|12345", status: 400, says: "type-system|type-code|value"},
		{query: "/fhir/Condition?code:of-type=x|y|z", status: 400, says: "holds no identifiers"},
		{query: "/fhir/Condition?code:below=44054006", status: 400, says: "needs a terminology service"},
		{query: "/fhir/Condition?code:above=44054006", status: 400, says: "needs a terminology service"},
		{query: "/fhir/Condition?code:in=http://example.org/vs", status: 400, says: "modifier :in on code (token) needs a terminology service"},
		{query: "/fhir/Condition?code:not-in=http://example.org/vs", status: 400, says: "needs a terminology service"},
		{query: "/fhir/Patient?gender:contains=ma", status: 400, says: "modifier :contains is not supported on gender (token)"},
		{query: "/fhir/Patient?_id:text=x", status: 400, says: "modifier :text is not supported on _id (token)"},
		// uri
		{query: "/fhir/ValueSet?url=http://acme.org/fhir/ValueSet/a", want: []string{"acme"}},
		{query: "/fhir/ValueSet?url=http://acme.org/fhir", want: nil},
		{query: "/fhir/ValueSet?url:below=http://acme.org/fhir", want: []string{"acme"}},
		{query: "/fhir/ValueSet?url:above=http://acme.org/fhir/ValueSet/a/v2", want: []string{"acme"}},
		{query: "/fhir/ValueSet?url:contains=OTHER.org", want: nil}, // uris are case-sensitive
		{query: "/fhir/ValueSet?url:contains=other.org", want: []string{"other"}},
		{query: "/fhir/ValueSet?url:not=http://other.org/vs/b", want: []string{"acme", "nourl"}},
		{query: "/fhir/ValueSet?url:missing=true", want: []string{"nourl"}},
		{query: "/fhir/ValueSet?url:text=acme", status: 400, says: "modifier :text is not supported on url (uri)"},
		// reference
		{query: "/fhir/Observation?subject:identifier=http://hospital|123", want: []string{"byid"}},
		{query: "/fhir/Observation?subject:identifier=123", want: []string{"byid"}},
		{query: "/fhir/Observation?subject:identifier=http://other|123", want: nil},
		{query: "/fhir/Observation?subject:Patient=mueller", want: []string{"byref"}},
		{query: "/fhir/Observation?subject:Group=g1", want: []string{"bygroup"}},
		{query: "/fhir/Observation?subject:Group=mueller", want: nil},
		{query: "/fhir/Observation?subject:missing=true", want: []string{"byid"}},
		{query: "/fhir/Observation?subject:below=Patient/mueller", status: 400, says: "modifier :below is not supported on subject (reference)"},
		// date, number, quantity
		{query: "/fhir/Patient?birthdate:missing=true", want: []string{"muller", "nobody"}},
		{query: "/fhir/Patient?birthdate:exact=1970", status: 400, says: "modifier :exact is not supported on birthdate (date)"},
		{query: "/fhir/Observation?value-quantity:missing=false", want: nil},
		{query: "/fhir/Observation?value-quantity:not=5", status: 400, says: "modifier :not is not supported on value-quantity (quantity)"},
	})
}

// TestSearchQuantity checks quantity search (R4 §3.1.1.4.7): number|system|code,
// number||code matching the code or the unit, the prefixes with the precision of the
// number searched, and Money (value and currency) searched as a quantity.
func TestSearchQuantity(t *testing.T) { forEachBackend(t, testSearchQuantity) }

func testSearchQuantity(t *testing.T) {
	e := newEnv(t)
	for id, q := range map[string]string{
		"mg":    `{"value":5.4,"unit":"mg","system":"http://unitsofmeasure.org","code":"mg"}`,
		"mmhg":  `{"value":5.4,"unit":"mmHg","system":"http://unitsofmeasure.org","code":"mm[Hg]"}`,
		"h100":  `{"value":100,"unit":"mg","system":"http://unitsofmeasure.org","code":"mg"}`,
		"h99":   `{"value":99.6,"unit":"mg","system":"http://unitsofmeasure.org","code":"mg"}`,
		"bare":  `{"value":5.4,"unit":"pills"}`,
		"small": `{"value":0.001}`,
	} {
		e.must(201, put("/fhir/Observation/"+id, `{"resourceType":"Observation","status":"final","code":{"text":"x"},"valueQuantity":`+q+`}`))
	}
	e.must(201, put("/fhir/Invoice/eur", `{"resourceType":"Invoice","status":"issued","totalGross":{"value":120.5,"currency":"EUR"}}`))
	e.must(201, put("/fhir/Invoice/usd", `{"resourceType":"Invoice","status":"issued","totalGross":{"value":120.5,"currency":"USD"}}`))

	checkSearches(t, e, []searchCase{
		{query: "/fhir/Observation?value-quantity=5.4|http://unitsofmeasure.org|mg", want: []string{"mg"}},
		{query: "/fhir/Observation?value-quantity=5.4||mg", want: []string{"mg"}},
		{query: "/fhir/Observation?value-quantity=5.4||mmHg", want: []string{"mmhg"}}, // the unit
		{query: "/fhir/Observation?value-quantity=5.4||mm[Hg]", want: []string{"mmhg"}},
		{query: "/fhir/Observation?value-quantity=5.4|http://unitsofmeasure.org|mmHg", want: nil}, // the unit has no system
		{query: "/fhir/Observation?value-quantity=5.4||pills", want: []string{"bare"}},
		{query: "/fhir/Observation?value-quantity=5.4", want: []string{"bare", "mg", "mmhg"}},
		{query: "/fhir/Observation?value-quantity=5.40", want: []string{"bare", "mg", "mmhg"}},
		{query: "/fhir/Observation?value-quantity=5", want: []string{"bare", "mg", "mmhg"}}, // [4.5, 5.5)
		{query: "/fhir/Observation?value-quantity=100", want: []string{"h100", "h99"}},      // [99.5, 100.5)
		{query: "/fhir/Observation?value-quantity=100.0", want: []string{"h100"}},           // [99.95, 100.05)
		{query: "/fhir/Observation?value-quantity=1e2", want: []string{"h100", "h99"}},
		{query: "/fhir/Observation?value-quantity=eq100.0", want: []string{"h100"}},
		{query: "/fhir/Observation?value-quantity=ne100.0", want: []string{"bare", "h99", "mg", "mmhg", "small"}},
		{query: "/fhir/Observation?value-quantity=gt99.6", want: []string{"h100"}},
		{query: "/fhir/Observation?value-quantity=ge99.6", want: []string{"h100", "h99"}},
		{query: "/fhir/Observation?value-quantity=lt5.4", want: []string{"small"}},
		{query: "/fhir/Observation?value-quantity=le5.4||mg", want: []string{"mg"}},
		{query: "/fhir/Observation?value-quantity=sa99.6", want: []string{"h100"}},
		{query: "/fhir/Observation?value-quantity=eb5.4", want: []string{"small"}},
		{query: "/fhir/Observation?value-quantity=ap100", want: []string{"h100", "h99"}}, // within 10%
		{query: "/fhir/Observation?value-quantity=ap5", want: []string{"bare", "mg", "mmhg"}},
		{query: "/fhir/Observation?value-quantity=ap0.001", want: []string{"small"}},
		{query: "/fhir/Observation?value-quantity=xx5", status: 400, says: `unknown prefix "xx"`},
		{query: "/fhir/Observation?value-quantity=5|mg", status: 400, says: "number|system|code"},
		{query: "/fhir/Invoice?totalgross=120.5", want: []string{"eur", "usd"}},
		{query: "/fhir/Invoice?totalgross=120.5|urn:iso:std:iso:4217|EUR", want: []string{"eur"}},
		{query: "/fhir/Invoice?totalgross=gt100||USD", want: []string{"usd"}},
		{query: "/fhir/Invoice?totalgross=120.5||GBP", want: nil},
	})
}
