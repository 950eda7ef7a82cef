package server_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/fhirbox/fhirbox/pkg/app"
	"github.com/fhirbox/fhirbox/resources"
	"github.com/fhirbox/fhirbox/resources/validate"
)

// withValidation sets the server's R4 validation of writes (FHIRBOX_VALIDATION).
func withValidation(m resources.ValidationMode) envOption {
	return func(c *app.Config) { c.Validation = m }
}

// issues renders an OperationOutcome's issues as "severity code@expression" lines.
func issues(r *resp) string {
	var b strings.Builder
	list, _ := at(r.doc, "issue").([]any)
	for _, is := range list {
		fmt.Fprintf(&b, "%v %v@%v\n", at(is, "severity"), at(is, "code"), at(is, "expression", 0))
	}
	return b.String()
}

// count is the number of resources a search finds.
func (e *env) count(path string) float64 {
	e.t.Helper()
	n, _ := at(e.must(200, get(path+"?_summary=count")).doc, "total").(float64)
	return n
}

// An invalid resource is refused on every write, with one issue per problem and its
// location, and nothing is stored; with FHIRBOX_VALIDATION=off it is stored as sent
// (conformance V1, V2, V3, V5).
func TestValidationOfWrites(t *testing.T) { forEachBackend(t, testValidationOfWrites) }

func testValidationOfWrites(t *testing.T) {
	e := newEnv(t)
	const bad = `{"resourceType":"Patient","gender":"not-a-gender","birthDate":"1970-13-45"}`
	const want = "error code-invalid@Patient.gender\nerror value@Patient.birthDate\n"
	for _, rq := range []req{
		post("/fhir/Patient", bad), post("/Patient", bad),
		put("/fhir/Patient/p1", bad), put("/Patient/p1", bad),
		put("/Patient/p1", strings.Replace(bad, `"Patient"`, `"Patient","id":"p1"`, 1), "Content-Type", "application/fhir+json"),
	} {
		r := e.must(422, rq)
		if got := issues(r); got != want {
			t.Errorf("%s %s: issues\n%s want\n%s%s", rq.method, rq.path, got, want, r.raw)
		}
	}
	if n := e.count("/fhir/Patient"); n != 0 {
		t.Errorf("%v Patients stored", n)
	}
	// An update that would break a stored resource is refused too, and leaves it.
	e.must(201, put("/fhir/Patient/p2", `{"resourceType":"Patient","gender":"male"}`))
	e.must(422, put("/fhir/Patient/p2", `{"resourceType":"Patient","gender":"man"}`))
	if r := e.must(200, get("/fhir/Patient/p2")); at(r.doc, "gender") != "male" || at(r.doc, "meta", "versionId") != "1" {
		t.Errorf("after a refused update: %s", r.raw)
	}
	// YAML bodies are validated as JSON ones.
	r := e.must(422, put("/Patient/p3", "resourceType: Patient\nname: {family: x}\n", "Content-Type", "text/yaml"))
	if got := issues(r); got != "error structure@Patient.name\n" {
		t.Errorf("YAML: %s", got)
	}
	// fhirbox's own types keep their own checks, not R4's.
	e.must(201, put("/Client/c1", `{"secret":"s3cret-of-c1","grant_types":["basic"],"anything":"goes"}`))

	off := newEnv(t, withValidation(resources.ValidationOff))
	off.must(201, post("/fhir/Patient", bad))
}

// $validate at the type and at one resource, with the resource as the body or inside a
// Parameters, in each mode; nothing is stored (conformance V8).
func TestValidateOperation(t *testing.T) { forEachBackend(t, testValidateOperation) }

func testValidateOperation(t *testing.T) {
	e := newEnv(t)
	e.must(201, put("/fhir/Patient/p1", `{"resourceType":"Patient","gender":"male"}`))
	const good = `{"resourceType":"Patient","gender":"female"}`
	const bad = `{"resourceType":"Patient","gender":"x","name":[{"given":["a",""]}]}`
	params := func(mode, resource string) string {
		p := `{"resourceType":"Parameters","parameter":[`
		if mode != "" {
			p += `{"name":"mode","valueCode":"` + mode + `"},`
		}
		return p + `{"name":"resource","resource":` + resource + `}]}`
	}
	withID := func(doc, id string) string {
		return strings.Replace(doc, `"Patient"`, `"Patient","id":"`+id+`"`, 1)
	}
	tests := []struct {
		name, path, body string
		status           int
		want             string
	}{
		{"type, valid", "/fhir/Patient/$validate", good, 200, "information informational@<nil>\n"},
		{"type, invalid", "/fhir/Patient/$validate", bad, 200, "error value@Patient.name[0].given[1]\nerror code-invalid@Patient.gender\n"},
		{"/ base", "/Patient/$validate", bad, 200, "error value@Patient.name[0].given[1]\nerror code-invalid@Patient.gender\n"},
		{"parameters, create", "/fhir/Patient/$validate", params("create", good), 200, "information informational@<nil>\n"},
		{"parameters, invalid", "/fhir/Patient/$validate", params("", bad), 200, "error value@Patient.name[0].given[1]\nerror code-invalid@Patient.gender\n"},
		{"query mode", "/fhir/Patient/$validate?mode=create", good, 200, "information informational@<nil>\n"},
		{"instance, update", "/fhir/Patient/p1/$validate", params("update", withID(good, "p1")), 200, "information informational@<nil>\n"},
		{"instance, update without id", "/fhir/Patient/p1/$validate", params("update", good), 200, "error required@Patient.id\n"},
		{"instance, update other id", "/fhir/Patient/p1/$validate", params("update", withID(good, "p9")), 200, "error value@Patient.id\n"},
		{"instance, delete", "/fhir/Patient/p1/$validate", `{"resourceType":"Parameters","parameter":[{"name":"mode","valueCode":"delete"}]}`, 200, "information informational@<nil>\n"},
		{"instance, delete of nothing", "/fhir/Patient/p9/$validate?mode=delete", `{"resourceType":"Parameters"}`, 200, "warning not-found@<nil>\n"},
		{"unknown profile", "/fhir/Patient/$validate", `{"resourceType":"Patient","meta":{"profile":["http://example.org/nowhere"]}}`, 200, "warning not-supported@Patient.meta.profile\n"},
		{"base profile", "/fhir/Patient/$validate", `{"resourceType":"Patient","meta":{"profile":["http://hl7.org/fhir/StructureDefinition/Patient"]}}`, 200, "information informational@<nil>\n"},
		{"own type", "/AccessPolicy/$validate", `{"engine":"nope"}`, 200, ""},
		{"update at the type", "/fhir/Patient/$validate?mode=update", good, 400, ""},
		{"unknown mode", "/fhir/Patient/$validate?mode=upsert", good, 400, ""},
		{"unknown query parameter", "/fhir/Patient/$validate?strict=true", good, 400, ""},
		{"unknown parameter", "/fhir/Patient/$validate", `{"resourceType":"Parameters","parameter":[{"name":"strict","valueBoolean":true}]}`, 400, ""},
		{"no resource", "/fhir/Patient/$validate", `{"resourceType":"Parameters","parameter":[{"name":"mode","valueCode":"create"}]}`, 400, ""},
		{"unknown type", "/fhir/Nobody/$validate", good, 404, ""},
		{"own type under /fhir", "/fhir/Client/$validate", `{}`, 404, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := e.in(t)
			r := e.must(tc.status, post(tc.path, tc.body))
			if tc.status != 200 {
				outcomeText(t, r)
				return
			}
			got := issues(r)
			if tc.name == "own type" {
				if !strings.HasPrefix(got, "error ") {
					t.Errorf("an invalid AccessPolicy: %s", r.raw)
				}
				return
			}
			if got != tc.want {
				t.Errorf("issues\n%swant\n%s%s", got, tc.want, r.raw)
			}
		})
	}
	if n := e.count("/fhir/Patient"); n != 1 {
		t.Errorf("%v Patients stored, want the one written", n)
	}
	if r := e.must(200, get("/fhir/Patient/p1")); at(r.doc, "meta", "versionId") != "1" {
		t.Errorf("$validate changed p1: %s", r.raw)
	}
}

// $validate is a request of its own to the policies: a client allowed only to validate
// may not create, and one allowed only to read may not validate (conformance V8).
func TestValidateOperationAuthorized(t *testing.T) {
	forEachBackend(t, testValidateOperationAuthorized)
}

func testValidateOperationAuthorized(t *testing.T) {
	e := newEnv(t)
	e.must(201, put("/Client/checker", `{"secret":"checker-secret","grant_types":["basic"]}`))
	e.must(201, put("/AccessPolicy/checker", `{"engine":"matcho","link":[{"resourceType":"Client","id":"checker"}],
		"matcho":{"request-method":"post","uri":"#/\\$validate$"}}`))
	e.must(201, put("/Client/reader", `{"secret":"reader-secret","grant_types":["basic"]}`))
	e.must(201, put("/AccessPolicy/reader", `{"engine":"matcho","link":[{"resourceType":"Client","id":"reader"}],"matcho":{"request-method":"get"}}`))
	const doc = `{"resourceType":"Patient","gender":"female"}`
	e.must(200, as("checker", "checker-secret", post("/fhir/Patient/$validate", doc)))
	e.must(403, as("checker", "checker-secret", post("/fhir/Patient", doc)))
	e.must(403, as("reader", "reader-secret", post("/fhir/Patient/$validate", doc)))
}

// A meta.profile naming a StructureDefinition stored on the server adds its checks to
// writes and to $validate; one the server does not hold is a warning in $validate and
// no obstacle to a write (conformance V7).
func TestValidationProfiles(t *testing.T) { forEachBackend(t, testValidationProfiles) }

func testValidationProfiles(t *testing.T) {
	e := newEnv(t)
	e.must(201, put("/fhir/StructureDefinition/named-patient", `{"resourceType":"StructureDefinition",
		"url":"http://example.org/fhir/StructureDefinition/named-patient","name":"NamedPatient","status":"active",
		"kind":"resource","abstract":false,"type":"Patient","derivation":"constraint",
		"baseDefinition":"http://hl7.org/fhir/StructureDefinition/Patient",
		"differential":{"element":[
			{"id":"Patient.name","path":"Patient.name","min":1},
			{"id":"Patient.active","path":"Patient.active","fixedBoolean":true}]}}`))
	const profiled = `{"resourceType":"Patient","meta":{"profile":["http://example.org/fhir/StructureDefinition/named-patient"]}`
	r := e.must(422, post("/fhir/Patient", profiled+`,"active":false}`))
	if got := issues(r); got != "error required@Patient.name\nerror value@Patient.active\n" {
		t.Errorf("profiled write: %s", r.raw)
	}
	e.must(201, post("/fhir/Patient", profiled+`,"active":true,"name":[{"family":"Named"}]}`))
	r = e.must(200, post("/fhir/Patient/$validate", profiled+`,"active":true}`))
	if got := issues(r); got != "error required@Patient.name\n" {
		t.Errorf("$validate: %s", r.raw)
	}
	// The profile parameter of $validate names one too.
	r = e.must(200, post("/fhir/Patient/$validate", `{"resourceType":"Parameters","parameter":[
		{"name":"profile","valueCanonical":"http://example.org/fhir/StructureDefinition/named-patient"},
		{"name":"resource","resource":{"resourceType":"Patient","active":true}}]}`))
	if got := issues(r); got != "error required@Patient.name\n" {
		t.Errorf("$validate with profile: %s", r.raw)
	}
	// A changed profile applies at once.
	e.must(200, put("/fhir/StructureDefinition/named-patient", strings.Replace(string(e.must(200, get("/fhir/StructureDefinition/named-patient")).raw),
		`"min":1`, `"min":0`, 1)))
	e.must(201, post("/fhir/Patient", profiled+`,"active":true}`))
	// A profile the server does not hold: written on the base checks.
	e.must(201, post("/fhir/Patient", `{"resourceType":"Patient","meta":{"profile":["http://example.org/unknown"]}}`))
}

// The CapabilityStatement lists $validate on every type.
func TestCapabilityValidate(t *testing.T) { forEachBackend(t, testCapabilityValidate) }

func testCapabilityValidate(t *testing.T) {
	e := newEnv(t)
	r := e.must(200, get("/fhir/metadata"))
	list, _ := at(r.doc, "rest", 0, "resource").([]any)
	if len(list) == 0 {
		t.Fatalf("no resources: %s", r.raw)
	}
	for _, res := range list {
		if at(res, "operation", 0, "name") != "validate" || at(res, "operation", 0, "definition") != "http://hl7.org/fhir/OperationDefinition/Resource-validate" {
			t.Fatalf("%v: no $validate: %v", at(res, "type"), at(res, "operation"))
		}
	}
}

// BenchmarkCreateValidation measures POST /fhir/Patient of a Synthea patient with R4
// validation on and off, reporting the process's CPU time per create (on SQLite the
// database's work is in the process too), which a machine shared with other work
// disturbs less than throughput. Run with -count to alternate the two.
func BenchmarkCreateValidation(b *testing.B) {
	benchEachBackend(b, func(b *testing.B) {
		for _, m := range []resources.ValidationMode{resources.ValidationOn, resources.ValidationOff} {
			b.Run("validation="+m.String(), func(b *testing.B) {
				e := newEnv(b, withValidation(m))
				body := string(readNDJSON(b, "patients.ndjson", 1)[0])
				if _, err := validate.Default(); err != nil { // compiled once per process, not per create
					b.Fatal(err)
				}
				b.ReportAllocs()
				done := reportCPU(b)
				for range b.N {
					e.must(201, post("/fhir/Patient", body, "Content-Type", "application/fhir+json"))
				}
				done()
			})
		}
	})
}
