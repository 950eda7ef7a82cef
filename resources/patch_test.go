package resources

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

func decodeAny(t testing.TB, s string) any {
	t.Helper()
	var v any
	d := json.NewDecoder(bytes.NewReader([]byte(s)))
	d.UseNumber()
	if err := d.Decode(&v); err != nil {
		t.Fatalf("%s: %v", s, err)
	}
	return v
}

// RFC 7396 appendix A, applied to a document wrapping each target (a patch of a
// resource is always an object).
func TestMergePatchRFC7396Examples(t *testing.T) {
	tests := []struct{ target, patch, want string }{
		{`{"a":"b"}`, `{"a":"c"}`, `{"a":"c"}`},
		{`{"a":"b"}`, `{"b":"c"}`, `{"a":"b","b":"c"}`},
		{`{"a":"b"}`, `{"a":null}`, `{}`},
		{`{"a":"b","b":"c"}`, `{"a":null}`, `{"b":"c"}`},
		{`{"a":["b"]}`, `{"a":"c"}`, `{"a":"c"}`},
		{`{"a":"c"}`, `{"a":["b"]}`, `{"a":["b"]}`},
		{`{"a":{"b":"c"}}`, `{"a":{"b":"d","c":null}}`, `{"a":{"b":"d"}}`},
		{`{"a":[{"b":"c"}]}`, `{"a":[1]}`, `{"a":[1]}`},
		{`{"e":null}`, `{"a":1}`, `{"e":null,"a":1}`},
		{`{}`, `{"a":{"bb":{"ccc":null}}}`, `{"a":{"bb":{}}}`},
	}
	for _, tc := range tests {
		p, err := ParsePatch(MergePatch, decodeAny(t, tc.patch))
		if err != nil {
			t.Fatal(err)
		}
		got, err := p.Apply("Patient", decodeAny(t, tc.target).(map[string]any))
		if err != nil {
			t.Fatal(err)
		}
		if want := decodeAny(t, tc.want); !reflect.DeepEqual(got, want) {
			t.Errorf("%s + %s = %v, want %v", tc.target, tc.patch, got, want)
		}
	}
}

// JSON Pointer (RFC 6901): ~1 is /, ~0 is ~, in that order; anything else after ~ is
// malformed, and so is a pointer not starting with /.
func TestParsePointer(t *testing.T) {
	tests := []struct {
		in   string
		want []string
		ok   bool
	}{
		{"", nil, true},
		{"/", []string{""}, true},
		{"/a~1b/c~0d", []string{"a/b", "c~d"}, true},
		{"/~01", []string{"~1"}, true},
		{"/a/0/-", []string{"a", "0", "-"}, true},
		{"a", nil, false},
		{"/a~", nil, false},
		{"/a~2", nil, false},
	}
	for _, tc := range tests {
		got, err := parsePointer(tc.in)
		if (err == nil) != tc.ok || (tc.ok && !reflect.DeepEqual(got, tc.want)) {
			t.Errorf("parsePointer(%q) = %q, %v; want %q ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

// The test operation compares numbers by value, exactly.
func TestNumberEqual(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"1", "1.0", true}, {"1.50", "1.5", true}, {"1e2", "100", true},
		{"0.1", "0.10000000000000001", false}, {"2", "3", false}, {"1e-99999", "0", false},
	}
	for _, tc := range tests {
		if got := numberEqual(json.Number(tc.a), json.Number(tc.b)); got != tc.want {
			t.Errorf("numberEqual(%s, %s) = %v", tc.a, tc.b, got)
		}
	}
}

// FuzzJSONPatch feeds arbitrary patches and documents to the JSON Patch parser and
// applier: no panic, and a result that is always a JSON object which encodes.
func FuzzJSONPatch(f *testing.F) {
	for _, s := range [][2]string{
		{`[{"op":"add","path":"/a/-","value":1},{"op":"test","path":"/a/0","value":1.0}]`, `{"a":[]}`},
		{`[{"op":"move","from":"/a","path":"/b/c"},{"op":"copy","from":"/b","path":"/d"}]`, `{"a":{"x":1},"b":{}}`},
		{`[{"op":"remove","path":"/a~1b/0"},{"op":"replace","path":"","value":{"z":true}}]`, `{"a/b":[1,2]}`},
		{`[{"op":"copy","from":"","path":"/x"},{"op":"copy","from":"","path":"/y"}]`, `{"a":"b"}`},
	} {
		f.Add([]byte(s[0]), []byte(s[1]))
	}
	f.Fuzz(func(t *testing.T, patch, doc []byte) {
		fuzzPatch(t, JSONPatch, patch, doc)
	})
}

// FuzzFHIRPathPatch is FuzzJSONPatch for FHIRPath Patch Parameters.
func FuzzFHIRPathPatch(f *testing.F) {
	for _, s := range [][2]string{
		{`{"resourceType":"Parameters","parameter":[{"name":"operation","part":[{"name":"type","valueCode":"add"},{"name":"path","valueString":"Patient"},{"name":"name","valueString":"telecom"},{"name":"value","valueContactPoint":{"value":"1"}}]}]}`, `{"resourceType":"Patient"}`},
		{`{"resourceType":"Parameters","parameter":[{"name":"operation","part":[{"name":"type","valueCode":"delete"},{"name":"path","valueString":"Patient.name.where(family='x').given[1]"}]}]}`, `{"resourceType":"Patient","name":[{"family":"x","given":["a","b"]}]}`},
		{`{"resourceType":"Parameters","parameter":[{"name":"operation","part":[{"name":"type","valueCode":"move"},{"name":"path","valueString":"Patient.name"},{"name":"source","valueInteger":1},{"name":"destination","valueInteger":0}]}]}`, `{"resourceType":"Patient","name":[{"text":"a"},{"text":"b"}]}`},
		{`{"resourceType":"Parameters","parameter":[{"name":"operation","part":[{"name":"type","valueCode":"insert"},{"name":"path","valueString":"Patient.name"},{"name":"index","valueInteger":0},{"name":"value","part":[{"name":"given","valueString":"a"},{"name":"given","valueString":"b"}]}]}]}`, `{"resourceType":"Patient"}`},
		{`{"resourceType":"Parameters","parameter":[{"name":"operation","part":[{"name":"type","valueCode":"replace"},{"name":"path","valueString":"Patient.value.first()"},{"name":"value","valueString":"v"}]}]}`, `{"resourceType":"Patient","valueString":"u"}`},
	} {
		f.Add([]byte(s[0]), []byte(s[1]))
	}
	f.Fuzz(func(t *testing.T, patch, doc []byte) {
		fuzzPatch(t, FHIRPathPatch, patch, doc)
	})
}

func fuzzPatch(t *testing.T, kind PatchKind, patch, doc []byte) {
	var pv any
	d := json.NewDecoder(bytes.NewReader(patch))
	d.UseNumber()
	if d.Decode(&pv) != nil {
		return
	}
	var dv map[string]any
	d = json.NewDecoder(bytes.NewReader(doc))
	d.UseNumber()
	if d.Decode(&dv) != nil || dv == nil {
		return
	}
	p, err := ParsePatch(kind, pv)
	if err != nil {
		if ErrorCode(err) != CodeInvalid {
			t.Fatalf("parse error of code %s: %v", ErrorCode(err), err)
		}
		return
	}
	out, err := p.Apply("Patient", dv)
	if err != nil {
		if c := ErrorCode(err); c != CodeUnprocessable && c != CodeInvalid {
			t.Fatalf("apply error of code %s: %v", c, err)
		}
		return
	}
	if out == nil {
		t.Fatal("a patch that applied left no document")
	}
	if _, err := marshal(out); err != nil {
		t.Fatalf("the result does not encode: %v", err)
	}
}

// A patch of more operations than one PATCH may have is refused before anything runs.
func TestPatchOperationBound(t *testing.T) {
	jp := make([]any, maxPatchOperations+1)
	for i := range jp {
		jp[i] = map[string]any{"op": "test", "path": "", "value": map[string]any{}}
	}
	params := make([]any, maxPatchOperations+1)
	for i := range params {
		params[i] = map[string]any{"name": "operation", "part": []any{
			map[string]any{"name": "type", "valueCode": "delete"},
			map[string]any{"name": "path", "valueString": "Patient.active"}}}
	}
	for kind, body := range map[PatchKind]any{
		JSONPatch:     jp,
		FHIRPathPatch: map[string]any{"resourceType": "Parameters", "parameter": params},
	} {
		if _, err := ParsePatch(kind, body); ErrorCode(err) != CodeInvalid {
			t.Errorf("%s of %d operations: %v, want a 400", kind, maxPatchOperations+1, err)
		}
		switch b := body.(type) {
		case []any:
			body = b[:maxPatchOperations]
		case map[string]any:
			b["parameter"] = params[:maxPatchOperations]
		}
		if _, err := ParsePatch(kind, body); err != nil {
			t.Errorf("%s of %d operations: %v", kind, maxPatchOperations, err)
		}
	}
}
