package format

import (
	"bytes"
	"encoding/json"
	"reflect"
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
