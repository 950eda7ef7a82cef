package format

import (
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func TestDecodeJSON(t *testing.T) {
	tests := []struct {
		name, in string
		want     map[string]any // nil: expect an error
		says     string
	}{
		{"object", `{"a":"x","n":1.50,"big":12345678901234567890,"b":true,"z":null,"l":[1,{"k":[]}]}`,
			map[string]any{"a": "x", "n": json.Number("1.50"), "big": json.Number("12345678901234567890"), "b": true, "z": nil,
				"l": []any{json.Number("1"), map[string]any{"k": []any{}}}}, ""},
		{"whitespace around", " \n{}\n ", map[string]any{}, ""},
		{"duplicate key", `{"a":1,"a":2}`, nil, `duplicate key "a"`},
		{"nested duplicate key", "{\"n\":[{\"f\":1},\n{\"g\":1,\"g\":2}]}", nil, "line 2"},
		{"duplicate path", `{"name":[{"given":"a","given":"b"}]}`, nil, "name[0]"},
		{"array", `[1]`, nil, "must be a JSON object, not an array"},
		{"string", `"x"`, nil, "not a string"},
		{"null", `null`, nil, "not null"},
		{"empty", ``, nil, "empty"},
		{"trailing object", `{}{}`, nil, "after the end"},
		{"trailing garbage", `{} x`, nil, "invalid JSON"},
		{"truncated", `{"a":`, nil, "ends too early"},
		{"syntax error position", "{\n  \"a\": tru\n}", nil, "line 2"},
		{"trailing comma", `{"a":1,}`, nil, "invalid JSON"},
		{"bad utf8", "{\"a\":\"\xff\"}", nil, "UTF-8"},
		{"too deep", strings.Repeat(`{"a":`, maxDepth+1) + "1" + strings.Repeat("}", maxDepth+1), nil, "deeper"},
		{"NUL in a value", `{"name":[{"family":"a\u0000b"}]}`, nil, "name[0].family"},
		{"NUL in a key", `{"a\u0000":1}`, nil, "U+0000"},
		{"other control characters pass", `{"a":"x\u0001\ty"}`, map[string]any{"a": "x\u0001\ty"}, ""},
		// Numbers: kept as written within a float64's range, refused (with their path)
		// beyond it, which PostgreSQL's JSONB and the search index cannot hold.
		{"float64 extremes", `{"a":[1.7976931348623157e308,-1.7976931348623157e308,4.9e-324,0e-999999,-0.0]}`,
			map[string]any{"a": []any{json.Number("1.7976931348623157e308"), json.Number("-1.7976931348623157e308"), json.Number("4.9e-324"), json.Number("0e-999999"), json.Number("-0.0")}}, ""},
		{"number of the longest text", `{"n":0.` + strings.Repeat("1", MaxNumberLength-2) + `}`,
			map[string]any{"n": json.Number("0." + strings.Repeat("1", MaxNumberLength-2))}, ""},
		{"a million digits", `{"valueQuantity":{"value":` + strings.Repeat("7", 1_000_000) + `}}`, nil, "valueQuantity.value"},
		{"number text too long", `{"n":1.` + strings.Repeat("0", MaxNumberLength) + `}`, nil, "longer than the 128"},
		{"number too large", `{"x":[{"v":1e400}]}`, nil, "(at x[0].v)"},
		{"number too large, negative", `{"v":-1.8e308}`, nil, "outside the range"},
		{"number rounded to zero", `{"v":1e-400}`, nil, "would be read as 0 (at v)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeJSON([]byte(tt.in))
			if tt.want == nil {
				var fe *Error
				if !errors.As(err, &fe) || !strings.Contains(err.Error(), tt.says) {
					t.Fatalf("err = %v, want an *Error saying %q", err, tt.says)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %#v, %v; want %#v", got, err, tt.want)
			}
		})
	}
}

func TestDecodeYAML(t *testing.T) {
	tests := []struct {
		name, in string
		want     map[string]any
		says     string
	}{
		{"scalars", "s: x\nn: 1.50\ni: 42\nb: true\nz: ~\nq: 'true'\nd: 1970-01-01\nt: 2020-01-01T10:00:00Z\nbig: 12345678901234567890\n",
			map[string]any{"s": "x", "n": json.Number("1.50"), "i": json.Number("42"), "b": true, "z": nil, "q": "true",
				"d": "1970-01-01", "t": "2020-01-01T10:00:00Z", "big": json.Number("12345678901234567890")}, ""},
		{"YAML 1.1 booleans stay strings", "a: yes\nb: off\n", map[string]any{"a": "yes", "b": "off"}, ""},
		{"other integer forms", "h: 0x1F\no: 0o17\nu: 1_000\np: +12\nf: 1e3\n",
			map[string]any{"h": json.Number("31"), "o": json.Number("15"), "u": json.Number("1000"), "p": json.Number("12"), "f": json.Number("1e3")}, ""},
		{"nested", "name:\n  - family: Doe\n    given: [A, B]\nempty: {}\nlist: []\n",
			map[string]any{"name": []any{map[string]any{"family": "Doe", "given": []any{"A", "B"}}}, "empty": map[string]any{}, "list": []any{}}, ""},
		{"numeric key", "1: a\n", map[string]any{"1": "a"}, ""},
		{"binary keeps text", "data: !!binary aGVsbG8=\n", map[string]any{"data": "aGVsbG8="}, ""},
		{"literal block", "div: |\n  <div>\n  </div>\n", map[string]any{"div": "<div>\n</div>\n"}, ""},
		{"duplicate key", "a: 1\nb: 2\na: 3\n", nil, `line 3, column 1: duplicate key "a"`},
		{"nested duplicate", "n:\n  - x: 1\n    x: 2\n", nil, "n[0]"},
		{"anchor", "a: &x 1\n", nil, "anchors"},
		{"alias", "a: &x [1]\nb: *x\n", nil, "anchors"},
		{"merge key", "base: {a: 1}\nc:\n  <<: {a: 1}\n", nil, "merge"},
		{"two documents", "a: 1\n---\nb: 2\n", nil, "more than one"},
		{"sequence at top", "- a\n", nil, "must be a YAML mapping"},
		{"scalar at top", "hello\n", nil, "must be a YAML mapping"},
		{"empty", "", nil, "empty"},
		{"only a comment", "# nothing\n", nil, "empty"},
		{"null at top", "~\n", nil, "empty"},
		{"infinity", "a: .inf\n", nil, "cannot be represented"},
		{"nan", "a: .nan\n", nil, "cannot be represented"},
		// YAML reads a number beyond a float64 (1e400, a huge hex) as a string.
		{"number beyond float64 is a string", "v: 1e400\n", map[string]any{"v": "1e400"}, ""},
		{"number rounded to zero", "v: -1e-400\n", nil, "would be read as 0"},
		{"number text too long", "v: " + strings.Repeat("1", 200) + "\n", nil, "longer than"},
		{"custom tag", "a: !thing x\n", nil, "unsupported tag"},
		{"null key", "~: x\n", nil, "key"},
		{"NUL in a value", "name:\n  - family: \"a\\0b\"\n", nil, "name[0].family"},
		{"NUL in a key", "\"a\\x00\": 1\n", nil, "U+0000"},
		{"sequence key", "? [a]\n: x\n", nil, "key"},
		{"syntax", "a: [1\n", nil, "invalid YAML"},
		{"bad indentation", "a:\n  b: 1\n c: 2\n", nil, "invalid YAML"},
		{"bad utf8", "a: \xff\n", nil, "UTF-8"},
		{"too deep", strings.Repeat("[", maxDepth+2) + strings.Repeat("]", maxDepth+2), nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeYAML([]byte(tt.in))
			if tt.want == nil {
				var fe *Error
				if !errors.As(err, &fe) || !strings.Contains(err.Error(), tt.says) {
					t.Fatalf("err = %v, want an *Error saying %q", err, tt.says)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %#v, %v; want %#v", got, err, tt.want)
			}
		})
	}
}

// TestEncodeYAMLGolden converts testdata/*.json and compares with testdata/*.yaml;
// -update rewrites the golden files. Each must also read back as the same document.
func TestEncodeYAMLGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden inputs: %v", err)
	}
	for _, in := range files {
		t.Run(filepath.Base(in), func(t *testing.T) {
			j, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			got, err := EncodeYAML(j)
			if err != nil {
				t.Fatal(err)
			}
			golden := strings.TrimSuffix(in, ".json") + ".yaml"
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if string(got) != string(want) {
				t.Errorf("EncodeYAML(%s) differs from %s:\n%s", in, golden, got)
			}
			checkRoundTrip(t, j)
		})
	}
}

// checkRoundTrip asserts the property the server relies on: YAML written by EncodeYAML
// reads back as exactly the JSON document.
func checkRoundTrip(t *testing.T, j []byte) {
	t.Helper()
	want, err := DecodeJSON(j)
	if err != nil {
		t.Fatalf("DecodeJSON: %v", err)
	}
	y, err := EncodeYAML(j)
	if err != nil {
		t.Fatalf("EncodeYAML: %v", err)
	}
	got, err := DecodeYAML(y)
	if err != nil {
		t.Fatalf("DecodeYAML of\n%s\n: %v", y, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("round trip changed the document\njson: %s\nyaml:\n%s\ngot:  %#v\nwant: %#v", j, y, got, want)
	}
}

func TestRoundTripTrickyStrings(t *testing.T) {
	for _, s := range []string{
		"", " ", "true", "False", "yes", "no", "on", "y", "null", "~", "NULL", "1", "1.0", "-0", "0x1F", "0o7", "1e3",
		".inf", "-.Inf", ".nan", "1_000", "2020-01-01", "2020-01-01T10:00:00Z", "12:30:00",
		"<<", "a: b", "- x", "#comment", "a #b", "'", `"`, "\\", "@x", "`x", "!x", "&x", "*x", "%x", "|", ">",
		"{}", "[]", "{a: 1}", "x\ny", "x\n", "\n", "\nx", " x\n y", "x \ny", "trailing ", "\t", "a\tb", "\r\n",
		"é", "日本語", "\u2028", "\u0085", "\ufeffbom", "\x7f", "=", "? x", ": x", "-", "---", "...",
	} {
		b, _ := json.Marshal(map[string]any{"v": s, s: "key"})
		t.Run(strings.ReplaceAll(string(b), "/", "_"), func(t *testing.T) { checkRoundTrip(t, b) })
	}
	for _, n := range []string{"0", "-1", "1.50", "1e308", "-1.5E-10", "12345678901234567890123"} {
		checkRoundTrip(t, []byte(`{"n":`+n+`}`))
	}
}

func TestEncodeYAMLValueAndIndent(t *testing.T) {
	y, err := EncodeYAMLValue(struct {
		B string `json:"b"`
		A int    `json:"a"`
	}{"x", 1})
	if err != nil || string(y) != "b: x\na: 1\n" {
		t.Errorf("EncodeYAMLValue = %q, %v; want fields in declaration order", y, err)
	}
	if _, err := EncodeYAML([]byte(`{"a":`)); err == nil {
		t.Error("EncodeYAML accepted broken JSON")
	}
	if got := string(Indent([]byte(`{"a":[1]}`))); got != "{\n  \"a\": [\n    1\n  ]\n}" {
		t.Errorf("Indent = %q", got)
	}
	if got := string(Indent([]byte(`{bad`))); got != "{bad" {
		t.Errorf("Indent changed invalid input: %q", got)
	}
}
