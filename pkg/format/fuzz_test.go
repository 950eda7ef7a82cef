package format

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func FuzzDecodeJSON(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":[1,{"b":null}]}`, `{"a":1,"a":2}`, `[1]`, `{"n":1.50e3}`, "{\"a\":\"\xff\"}", `{} {}`, `{"a\u0000":"\u0000"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := DecodeJSON(data)
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		if !json.Valid(data) {
			t.Fatalf("accepted invalid JSON %q", data)
		}
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(`\u0000`)) {
			t.Fatalf("accepted U+0000 in %q", data)
		}
		again, err := DecodeJSON(b)
		if err != nil || !reflect.DeepEqual(again, m) {
			t.Fatalf("re-encoding changed the document: %v", err)
		}
	})
}

func FuzzDecodeYAML(f *testing.F) {
	for _, s := range []string{"a: 1\n", "a: &x 1\nb: *x\n", "a: [1, {b: c}]\n", "a: 1\n---\nb: 2\n", "<<: {a: 1}\n",
		"d: 2020-01-01\n", "x: !!binary aGk=\n", "h: 0x1F\n", "a: |\n  x\n  y\n", "? [a]\n: b\n", "a: .inf\n", "a: \"\\0\"\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := DecodeYAML(data)
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		// Whatever YAML accepts must be a valid JSON document of the same content.
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatalf("decoded YAML does not marshal as JSON: %v", err)
		}
		again, err := DecodeJSON(b)
		if err != nil || !reflect.DeepEqual(again, m) {
			t.Fatalf("JSON of the decoded YAML reads differently: %v", err)
		}
	})
}

func FuzzEncodeYAML(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":"true","b":"","c":"x\ny","d":[{}],"e":1.50}`, `{"<<":"x","~":null}`, `{"k":" x\n y "}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, err := DecodeJSON(data); err != nil {
			return
		}
		checkRoundTrip(t, data)
	})
}

// FuzzDecodeJSONReference checks DecodeJSON against the decoder it replaced
// (decodeJSONReference): on any input both accept with the same value or both refuse;
// when the reference refuses a well-formed document (a duplicate key, a number out of
// range, U+0000, too deep, too many values), both say the same thing at the same place.
// Syntax errors may be worded or placed differently.
func FuzzDecodeJSONReference(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":[1,{"b":null}]}`, `{"a":1,"a":2}`, `[1]`, `{"n":1.50e3}`, "{\"a\":\"\xff\"}", `{} {}`,
		`{"a\u0000":"\u0000"}`, `{"s":"\ud83d\ude00\ud800\u0041\udc00x\/\b\f\n\r\t\"\\"}`, `{"n":[-0,0.5e-3,1E+2,1e400,1e-400]}`,
		`{"a":tru}`, `{"a":1,}`, `{"a" 1}`, `{"a":[1 2]}`, `{"a":01}`, `{"a":"x` + "\x01" + `"}`, `{} x`, `"x"`, `nul`, `-`,
		`{"x":[{"y":{"z":[{"d":1,"d":2}]}}]}`, strings.Repeat(`{"a":`, maxDepth+1) + "1" + strings.Repeat("}", maxDepth+1),
		`{"a":"\u00e9\u20AC"}`, ` {"k":{"l":[]}} `, `{"a":"\ud800"}`, `{"a":"\ud800\u"}`} {
		f.Add([]byte(s))
	}
	for _, file := range []string{"patients.ndjson.gz", "observations.ndjson.gz"} {
		f.Add(syntheaFirst(f, file))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := DecodeJSON(data)
		want, wantErr := decodeJSONReference(data)
		if (err == nil) != (wantErr == nil) {
			t.Fatalf("DecodeJSON(%q) = %v; the reference says %v", data, err, wantErr)
		}
		if err == nil {
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("DecodeJSON(%q) = %#v; the reference reads %#v", data, got, want)
			}
			return
		}
		if _, ok := err.(*Error); !ok {
			t.Fatalf("error of type %T: %v", err, err)
		}
		if we := wantErr.(*Error); !strings.HasPrefix(we.Msg, "invalid JSON") && *err.(*Error) != *we {
			t.Fatalf("DecodeJSON(%q): %v; the reference says %v", data, err, wantErr)
		}
	})
}
