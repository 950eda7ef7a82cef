package server_test

import (
	"fmt"
	"slices"
	"sort"
	"testing"
)

// TestSearchByR4Parameters checks parameters that come from the R4 definitions, not from
// fhirbox's own list: the MedicationRequest search that once ignored `patient` and
// answered another patient's requests too, and a few of the shapes R4's expressions take
// (where(resolve() is …), a choice type, an "as" cast).
func TestSearchByR4Parameters(t *testing.T) { forEachBackend(t, testSearchByR4Parameters) }

func testSearchByR4Parameters(t *testing.T) {
	e := newEnv(t)
	for _, p := range []string{"p1", "p2"} {
		e.must(201, put("/fhir/Patient/"+p, `{"resourceType":"Patient"}`))
	}
	e.must(201, put("/fhir/Group/g1", `{"resourceType":"Group","type":"person","actual":true}`))
	for i, m := range []struct{ subject, status, when string }{
		{"Patient/p1", "active", "2020-01-02"},
		{"Patient/p2", "active", "2021-05-06"},
		{"Patient/p1", "stopped", "2022-03-04"},
		{"Patient/p2", "completed", "2023-07-08"},
		{"Group/g1", "active", "2024-01-01"},
	} {
		e.must(201, put(fmt.Sprintf("/fhir/MedicationRequest/m%d", i+1), fmt.Sprintf(
			`{"resourceType":"MedicationRequest","status":%q,"intent":"order","subject":{"reference":%q},"authoredOn":%q,
			  "medicationCodeableConcept":{"coding":[{"system":"http://www.nlm.nih.gov/research/umls/rxnorm","code":"%d"}]}}`,
			m.status, m.subject, m.when, 100+i)))
	}
	e.must(201, put("/fhir/Observation/o1", `{"resourceType":"Observation","status":"final","code":{"text":"x"},
		"subject":{"reference":"Patient/p1"},"valueQuantity":{"value":7.5,"system":"http://unitsofmeasure.org","code":"mmol/L"},
		"effectivePeriod":{"start":"2020-01-01","end":"2020-01-03"}}`))

	tests := []struct {
		query string
		want  []string
	}{
		{"/fhir/MedicationRequest?patient=Patient/p1", []string{"m1", "m3"}},
		{"/fhir/MedicationRequest?patient=p2", []string{"m2", "m4"}},
		{"/fhir/MedicationRequest?subject=Group/g1", []string{"m5"}},
		{"/fhir/MedicationRequest?patient=p1&status=active", []string{"m1"}},
		{"/fhir/MedicationRequest?authoredon=ge2022", []string{"m3", "m4", "m5"}},
		{"/fhir/MedicationRequest?code=102", []string{"m3"}},
		{"/fhir/MedicationRequest?intent=order&status:not=active", []string{"m3", "m4"}},
		{"/fhir/Observation?value-quantity=7.5|http://unitsofmeasure.org|mmol/L", []string{"o1"}},
		{"/fhir/Observation?value-quantity=gt8", nil},
		{"/fhir/Observation?date=2020-01", []string{"o1"}}, // eq: the month holds the whole period
		{"/fhir/Observation?date=2020-01-02", nil},         // the day does not
		{"/fhir/Observation?patient=p1", []string{"o1"}},
		{"/fhir/Observation?patient=p2", nil},
	}
	for _, tt := range tests {
		r := e.must(200, get(tt.query))
		got := entryIDs(r)
		sort.Strings(got)
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s: got %v, want %v", tt.query, got, tt.want)
		}
	}
}
