package resources

import (
	"bytes"
	"encoding/json"
	"testing"
)

func TestEncodeJSON(t *testing.T) {
	tests := []struct {
		name string
		v    any
		ok   bool
	}{
		{"document", map[string]any{"z": "a<b>&c", "a": []any{json.Number("1.50"), true, false, nil, map[string]any{}}, "m": []any{}}, true},
		{"escapes", map[string]any{"s": "q\"b\\\b\f\n\r\t\x01\x1f\x7f\u2028\u2029é\xff\xfe😀", "k\n\"": "v"}, true},
		{"nil map and slice", map[string]any{"m": map[string]any(nil), "s": []any(nil)}, true},
		{"empty number", map[string]any{"n": json.Number("")}, true},
		{"invalid number", map[string]any{"n": json.Number("1.")}, false},
		{"other types", map[string]any{"f": 1.5, "i": 3}, false},
		{"nested other type", map[string]any{"a": []any{map[string]any{"t": []string{"x"}}}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := encodeJSON(tt.v)
			if ok != tt.ok {
				t.Fatalf("ok = %v, want %v", ok, tt.ok)
			}
			want, err := marshalStd(tt.v)
			if ok && (err != nil || !bytes.Equal(got, want)) {
				t.Fatalf("encodeJSON = %s; encoding/json = %s, %v", got, want, err)
			}
			// marshal falls back to encoding/json: the same bytes, or its error.
			if m, merr := marshal(tt.v); (merr == nil) != (err == nil) || !bytes.Equal(m, want) {
				t.Fatalf("marshal = %s, %v; encoding/json = %s, %v", m, merr, want, err)
			}
		})
	}
}

// FuzzEncodeJSON checks encodeJSON against encoding/json on documents decoded from
// arbitrary JSON and on arbitrary strings (keys and values, valid UTF-8 or not).
func FuzzEncodeJSON(f *testing.F) {
	f.Add([]byte(`{"a":[1,"x<y>",{"b":null,"c":true}],"d":1.50e3}`), "k\u2028", "v\xff\x01")
	f.Fuzz(func(t *testing.T, doc []byte, k, s string) {
		var v any
		dec := json.NewDecoder(bytes.NewReader(doc))
		dec.UseNumber()
		if dec.Decode(&v) != nil {
			v = nil
		}
		for _, v := range []any{v, map[string]any{k: s, "doc": v}, []any{s, json.Number(s)}} {
			got, ok := encodeJSON(v)
			want, err := marshalStd(v)
			if ok && (err != nil || !bytes.Equal(got, want)) {
				t.Fatalf("encodeJSON(%#v) = %s; encoding/json = %s, %v", v, got, want, err)
			}
			if !ok && err == nil {
				t.Fatalf("encodeJSON refused %#v, which encoding/json writes", v)
			}
		}
	})
}
