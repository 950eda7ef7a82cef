package server_test

import (
	"net/http"
	"strings"
	"testing"
)

func patch(path, ctype, body string, hdr ...string) req {
	return req{method: http.MethodPatch, path: path, body: body, hdr: append([]string{"Content-Type", ctype}, hdr...)}
}

const patchPatient = `{"resourceType":"Patient","id":"p1","active":true,"birthDate":"1970-01-01",
 "name":[{"family":"Chalmers","given":["Peter","James"]}],
 "identifier":[{"system":"urn:s","value":"a"},{"system":"urn:s","value":"b"}],
 "extension":[{"url":"urn:x","valueDecimal":1.50}]}`

// Each PATCH kind through the router on both backends (conformance F30): the result
// is stored as the next version, numbers keep their text, and a patch that does not
// apply names its operation and stores nothing.
func TestPatchKinds(t *testing.T) { forEachBackend(t, testPatchKinds) }

func testPatchKinds(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name, ctype, body string
		status            int
		check             func(t *testing.T, doc map[string]any)
		msg               string // part of the OperationOutcome's text on failure
	}{
		{name: "json patch replace, add, remove, escapes", ctype: "application/json-patch+json",
			body: `[{"op":"test","path":"/name/0/family","value":"Chalmers"},
				{"op":"replace","path":"/birthDate","value":"1974-12-25"},
				{"op":"add","path":"/name/0/given/-","value":"Jim"},
				{"op":"remove","path":"/identifier/0"},
				{"op":"add","path":"/extension/0/url","value":"urn:a/b~c"},
				{"op":"test","path":"/extension/0/valueDecimal","value":1.5}]`,
			status: 200, check: func(t *testing.T, d map[string]any) {
				wantAt(t, d, "1974-12-25", "birthDate")
				wantAt(t, d, "Jim", "name", 0, "given", 2)
				wantAt(t, d, "b", "identifier", 0, "value")
				wantAt(t, d, "urn:a/b~c", "extension", 0, "url")
			}},
		{name: "json patch move and copy", ctype: "application/json-patch+json",
			body:   `[{"op":"copy","from":"/name/0","path":"/name/-"},{"op":"move","from":"/identifier/1","path":"/identifier/0"}]`,
			status: 200, check: func(t *testing.T, d map[string]any) {
				wantAt(t, d, "Chalmers", "name", 1, "family")
				wantAt(t, d, "b", "identifier", 0, "value")
			}},
		{name: "json patch pointer with ~1 ~0", ctype: "application/json-patch+json",
			body:   `[{"op":"add","path":"/extension/-","value":{"url":"urn:y","valueString":"v"}},{"op":"test","path":"/extension/1/url","value":"urn:y"}]`,
			status: 200},
		{name: "json patch failing test", ctype: "application/json-patch+json",
			body:   `[{"op":"replace","path":"/active","value":false},{"op":"test","path":"/birthDate","value":"2000-01-01"}]`,
			status: 422, msg: "operation [1] (test /birthDate)"},
		{name: "json patch missing path", ctype: "application/json-patch+json",
			body: `[{"op":"remove","path":"/deceasedBoolean"}]`, status: 422, msg: "operation [0] (remove /deceasedBoolean): /deceasedBoolean does not exist"},
		{name: "json patch index past end", ctype: "application/json-patch+json",
			body: `[{"op":"add","path":"/identifier/5","value":{"value":"z"}}]`, status: 422, msg: "past the end"},
		{name: "json patch negative index", ctype: "application/json-patch+json",
			body: `[{"op":"remove","path":"/identifier/-1"}]`, status: 422, msg: "not an array index"},
		{name: "json patch bad pointer", ctype: "application/json-patch+json",
			body: `[{"op":"remove","path":"birthDate"}]`, status: 400, msg: "operation [0] (remove)"},
		{name: "json patch bad escape", ctype: "application/json-patch+json",
			body: `[{"op":"remove","path":"/a~2b"}]`, status: 400, msg: "~ must be followed by 0 or 1"},
		{name: "json patch unknown op", ctype: "application/json-patch+json",
			body: `[{"op":"frobnicate","path":"/a"}]`, status: 400, msg: `unknown op "frobnicate"`},
		{name: "json patch object body", ctype: "application/json-patch+json",
			body: `{"op":"remove","path":"/a"}`, status: 400, msg: "array of operations"},
		{name: "json patch changes id", ctype: "application/json-patch+json",
			body: `[{"op":"replace","path":"/id","value":"other"}]`, status: 422, msg: "changes id"},
		{name: "json patch changes resourceType", ctype: "application/json-patch+json",
			body: `[{"op":"replace","path":"/resourceType","value":"Group"}]`, status: 422, msg: "changes resourceType"},
		{name: "merge patch", ctype: "application/merge-patch+json",
			body:   `{"birthDate":"1980-02-03","active":null,"name":[{"family":"Merged"}]}`,
			status: 200, check: func(t *testing.T, d map[string]any) {
				wantAt(t, d, "1980-02-03", "birthDate")
				wantAt(t, d, nil, "active")
				wantAt(t, d, "Merged", "name", 0, "family")
				wantAt(t, d, nil, "name", 0, "given")
			}},
		{name: "plain json object is a merge patch (Aidbox)", ctype: "application/json",
			body: `{"gender":"female"}`, status: 200, check: func(t *testing.T, d map[string]any) {
				wantAt(t, d, "female", "gender")
			}},
		{name: "plain json array is a JSON Patch (Aidbox)", ctype: "application/json",
			body: `[{"op":"replace","path":"/active","value":false}]`, status: 200, check: func(t *testing.T, d map[string]any) {
				wantAt(t, d, false, "active")
			}},
		{name: "_method contradicting Content-Type", ctype: "application/merge-patch+json", body: `{"gender":"male"}`,
			status: 400, msg: "contradicts"},
		{name: "fhirpath patch replace, add, insert, delete, move", ctype: "application/fhir+json",
			body: fhirPatch(
				op("replace", "Patient.birthDate", `"valueDate":"1990-05-06"`),
				op("add", "Patient", `"name":"gender"`, `"valueCode":"male"`),
				op("add", "Patient", `"name":"telecom"`, `"valueContactPoint":{"system":"phone","value":"555"}`),
				op("insert", "Patient.identifier", `"index":0`, `"valueIdentifier":{"system":"urn:s","value":"first"}`),
				op("delete", "Patient.identifier.where(value='b')"),
				op("move", "Patient.name[0].given", `"source":1`, `"destination":0`),
				op("delete", "Patient.deceased"), // nothing there: no error
				op("add", "Patient", `"name":"contact"`, `"part":[{"name":"gender","valueCode":"female"},{"name":"telecom","valueContactPoint":{"value":"1"}},{"name":"telecom","valueContactPoint":{"value":"2"}}]`),
			),
			status: 200, check: func(t *testing.T, d map[string]any) {
				wantAt(t, d, "1990-05-06", "birthDate")
				wantAt(t, d, "male", "gender")
				wantAt(t, d, "555", "telecom", 0, "value") // a list: telecom repeats in R4
				wantAt(t, d, "first", "identifier", 0, "value")
				wantAt(t, d, "a", "identifier", 1, "value")
				wantAt(t, d, nil, "identifier", 2)
				wantAt(t, d, "James", "name", 0, "given", 0)
				wantAt(t, d, "female", "contact", 0, "gender")
				wantAt(t, d, "2", "contact", 0, "telecom", 1, "value")
			}},
		{name: "fhirpath patch replace a primitive in a list", ctype: "application/fhir+json",
			body:   fhirPatch(op("replace", "Patient.name[0].given[1]", `"valueString":"Jo"`)),
			status: 200, check: func(t *testing.T, d map[string]any) { wantAt(t, d, "Jo", "name", 0, "given", 1) }},
		{name: "fhirpath patch replace of nothing", ctype: "application/fhir+json",
			body:   fhirPatch(op("replace", "Patient.active", `"valueBoolean":false`), op("replace", "Patient.deceased", `"valueBoolean":true`)),
			status: 422, msg: "operation [1] (replace Patient.deceased): the path selects 0 elements"},
		{name: "fhirpath patch delete of several", ctype: "application/fhir+json",
			body: fhirPatch(op("delete", "Patient.identifier")), status: 422, msg: "selects 2 elements"},
		{name: "fhirpath patch add over a single element", ctype: "application/fhir+json",
			body: fhirPatch(op("add", "Patient", `"name":"birthDate"`, `"valueDate":"2000-01-01"`)), status: 422, msg: "use replace"},
		{name: "fhirpath patch insert past the end", ctype: "application/fhir+json",
			body: fhirPatch(op("insert", "Patient.identifier", `"index":9`, `"valueIdentifier":{"value":"z"}`)), status: 422, msg: "past the end"},
		{name: "fhirpath patch bad path", ctype: "application/fhir+json",
			body: fhirPatch(op("delete", "Patient.name[")), status: 400, msg: "operation [0] (delete)"},
		{name: "fhirpath patch unknown part", ctype: "application/fhir+json",
			body: fhirPatch(op("delete", "Patient.active", `"index":1`)), status: 400, msg: `not "index"`},
		{name: "fhirpath patch unknown type", ctype: "application/fhir+json",
			body: fhirPatch(op("upsert", "Patient.active")), status: 400, msg: "unknown or missing type"},
		{name: "fhirpath patch computed path", ctype: "application/fhir+json",
			body: fhirPatch(op("replace", "Patient.name.count()", `"valueInteger":1`)), status: 422, msg: "computes values"},
		{name: "fhir+json body that is no Parameters", ctype: "application/fhir+json",
			body: `{"resourceType":"Patient","active":false}`, status: 400, msg: "Parameters"},
		{name: "unsupported content type", ctype: "text/plain", body: `x`, status: 415, msg: "not a patch"},
		{name: "empty body", ctype: "application/json-patch+json", body: ` `, status: 400, msg: "empty"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := e.in(t)
			id := "p" + string(rune('a'+i%26)) + strings.Repeat("x", i/26)
			e.must(201, put("/fhir/Patient/"+id, strings.Replace(patchPatient, `"p1"`, `"`+id+`"`, 1)))
			path := "/fhir/Patient/" + id
			if strings.Contains(tc.name, "_method") {
				path += "?_method=json-patch"
			}
			r := e.do(patch(path, tc.ctype, tc.body))
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.raw)
			}
			cur := e.must(200, get("/fhir/Patient/"+id))
			if tc.status != 200 {
				if !strings.Contains(outcomeText(t, r), tc.msg) {
					t.Errorf("message %q does not say %q", outcomeText(t, r), tc.msg)
				}
				if v := at(cur.doc, "meta", "versionId"); v != "1" {
					t.Errorf("a failed patch stored version %v", v)
				}
				return
			}
			if v := at(r.doc, "meta", "versionId"); v != "2" || r.header.Get("ETag") != `W/"2"` {
				t.Errorf("patched version %v, ETag %s; want 2", v, r.header.Get("ETag"))
			}
			if tc.check != nil {
				tc.check(t, cur.doc)
			}
			if !strings.Contains(string(cur.raw), `1.50`) && strings.Contains(string(cur.raw), "valueDecimal") {
				t.Errorf("the decimal lost its text: %s", cur.raw)
			}
		})
	}
}

// op builds one FHIRPath Patch operation; each extra part is "name":value JSON, where
// a "valueX" or "part" is the value part, "index"/"source"/"destination" integers and
// "name" the name.
func op(typ, path string, extra ...string) string {
	parts := []string{`{"name":"type","valueCode":"` + typ + `"}`, `{"name":"path","valueString":"` + path + `"}`}
	for _, x := range extra {
		k, v, _ := strings.Cut(x, ":")
		k = strings.Trim(k, `"`)
		switch {
		case k == "name":
			parts = append(parts, `{"name":"name","valueString":`+v+`}`)
		case k == "index" || k == "source" || k == "destination":
			parts = append(parts, `{"name":"`+k+`","valueInteger":`+v+`}`)
		default:
			parts = append(parts, `{"name":"value",`+x+`}`)
		}
	}
	return `{"name":"operation","part":[` + strings.Join(parts, ",") + `]}`
}

func fhirPatch(ops ...string) string {
	return `{"resourceType":"Parameters","parameter":[` + strings.Join(ops, ",") + `]}`
}

func wantAt(t *testing.T, doc map[string]any, want any, path ...any) {
	t.Helper()
	if got := at(doc, path...); got != want {
		t.Errorf("%v: %#v, want %#v", path, got, want)
	}
}

// If-Match on PATCH (412 on a stale version, nothing stored), PATCH of a missing or
// deleted resource (404, 410 as read), Prefer: return=minimal, and the secret of a
// Client neither shown to nor lost by a patch.
func TestPatchPreconditions(t *testing.T) { forEachBackend(t, testPatchPreconditions) }

func testPatchPreconditions(t *testing.T) {
	e := newEnv(t)
	e.must(201, put("/fhir/Patient/pm", `{"resourceType":"Patient","active":true}`))
	e.must(200, put("/fhir/Patient/pm", `{"resourceType":"Patient","active":false}`))
	jp := `[{"op":"replace","path":"/active","value":true}]`
	r := e.must(412, patch("/fhir/Patient/pm", "application/json-patch+json", jp, "If-Match", `W/"1"`))
	if !strings.Contains(outcomeText(t, r), `W/"2"`) {
		t.Errorf("412 does not name the current version: %s", r.raw)
	}
	e.must(200, patch("/fhir/Patient/pm", "application/json-patch+json", jp, "If-Match", `W/"2"`))
	r = e.must(200, patch("/fhir/Patient/pm", "application/json-patch+json", jp, "Prefer", "return=minimal"))
	if len(r.raw) != 0 || r.header.Get("ETag") != `W/"4"` {
		t.Errorf("return=minimal: body %q, ETag %s", r.raw, r.header.Get("ETag"))
	}
	e.must(404, patch("/fhir/Patient/nobody", "application/json-patch+json", jp))
	e.must(200, del("/fhir/Patient/pm"))
	e.must(410, patch("/fhir/Patient/pm", "application/json-patch+json", jp))
	e.must(400, patch("/fhir/Patient/pm", "application/json-patch+json", jp, "If-Match", "garbage"))

	// A Client's secret: a test op cannot probe its hash, and a patch keeps it.
	e.must(201, put("/Client/pc", `{"secret":"pc-secret","grant_types":["basic"]}`))
	r = e.must(422, patch("/Client/pc", "application/json-patch+json", `[{"op":"test","path":"/secret","value":"x"}]`))
	if !strings.Contains(outcomeText(t, r), "/secret does not exist") {
		t.Errorf("the patch saw the secret: %s", r.raw)
	}
	e.must(200, patch("/Client/pc", "application/merge-patch+json", `{"grant_types":["basic","client_credentials"]}`))
	e.must(403, as("pc", "pc-secret", get("/fhir/Patient"))) // authenticated (403, not 401): the secret still works
}

// A choice element takes the type of the value[x] that FHIRPath Patch adds or
// replaces it with into its name (conformance F30).
func TestFHIRPathPatchChoiceElements(t *testing.T) {
	forEachBackend(t, testFHIRPathPatchChoiceElements)
}

func testFHIRPathPatchChoiceElements(t *testing.T) {
	e := newEnv(t)
	e.must(201, put("/fhir/Observation/o1", `{"resourceType":"Observation","status":"final","code":{"text":"x"},"valueQuantity":{"value":1.50,"unit":"mg"}}`))
	r := e.must(200, patch("/fhir/Observation/o1", "application/fhir+json", fhirPatch(
		op("replace", "Observation.value", `"valueString":"trace"`),
		op("add", "Observation", `"name":"effective"`, `"valueDateTime":"2020-01-02"`),
	)))
	wantAt(t, r.doc, "trace", "valueString")
	wantAt(t, r.doc, nil, "valueQuantity")
	wantAt(t, r.doc, "2020-01-02", "effectiveDateTime")
	// Searches see the new version: the index was rebuilt as for any update.
	if r := e.must(200, get("/fhir/Observation?date=2020-01-02")); at(r.doc, "total") != float64(1) {
		t.Errorf("the patched date is not indexed: %s", r.raw)
	}
}
