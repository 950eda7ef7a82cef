package matcho

import (
	"encoding/json"
	"reflect"
	"regexp"
	"testing"
)

// FuzzMatcho feeds arbitrary JSON patterns and requests through Compile and Match.
// Policies are written by admins and requests by anyone, so neither may crash the
// server, and a denial must always say why.
func FuzzMatcho(f *testing.F) {
	for _, tc := range cases {
		req := tc.req
		if req == "" {
			req = exampleRequest
		}
		f.Add(tc.pattern, req)
	}
	for _, s := range []struct{ pattern, req string }{
		{`{"a":"#(a+)+$"}`, `{"a":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab"}`},
		{`{"a":".a"}`, `{"a":{"a":{"a":null}}}`},
		{`{"a":".a.0.a.0"}`, `{"a":[{"a":[{"a":[]}]}]}`},
		{`{"a":".99999999999999999999999"}`, `{"a":[1]}`},
		{`{"$not":{"$one-of":[{"$every":{"$contains":"nil?"}},"not-blank?"]}}`, `{"x":[[null],[]]}`},
		{`{"a":{"$present-all":["a"],"a":{"$present-all":["a"]}}}`, `{"a":{"a":{"a":0}}}`},
		{`{"a":"#\u00e9"}`, `{"a":"caf\u00e9\ud800"}`},
		{`{"a":[null,null]}`, `{"a":[null]}`},
		{nested(maxDepth + 1), `{}`},
		// A JSON string pattern is also tried as a regexp against the raw request text,
		// to check the literal shortcuts against the regexp machine.
		{`"^/fhir/Patient"`, `/fhir/Patient/1`},
		{`"^/fhir/Patient$"`, `/fhir/Patient`},
		{`"Patient"`, `/fhir/Patient`},
		{`"^ab(c|d)"`, `abd`},
		{`"^\\x{FFFD}"`, "\xff"},
	} {
		f.Add(s.pattern, s.req)
	}
	f.Fuzz(func(t *testing.T, patternJSON, reqJSON string) {
		var pattern any
		if json.Unmarshal([]byte(patternJSON), &pattern) != nil {
			t.Skip()
		}
		if src, ok := pattern.(string); ok {
			if re, err := regexp.Compile(src); err == nil {
				n, err := compileString("#"+src, "matcho")
				if err != nil {
					t.Fatalf("regexp %q compiles but not as a pattern: %v", src, err)
				}
				if got, want := n.match(reqJSON, nil), re.MatchString(reqJSON); got != want {
					t.Fatalf("#%s against %q: %v, regexp says %v", src, reqJSON, got, want)
				}
			}
		}
		var req map[string]any
		if json.Unmarshal([]byte(reqJSON), &req) != nil || req == nil {
			t.Skip()
		}
		m, err := Compile(pattern)
		if err != nil {
			if m != nil {
				t.Fatalf("Compile returned both a Pattern and %v", err)
			}
			return
		}
		var before any
		_ = json.Unmarshal([]byte(reqJSON), &before)

		ok, why := m.Match(req)
		if ok != (why == "") {
			t.Fatalf("Match = %v with why %q: why must be empty exactly on a match", ok, why)
		}
		ok2, why2 := m.Match(req)
		if ok2 != ok || why2 != why {
			t.Fatalf("Match is not deterministic: %v %q then %v %q", ok, why, ok2, why2)
		}
		// explain is reached only through failures in Match; check its contract on
		// matches too, so the fallback in Match never hides a disagreement.
		if got := m.root.explain(req, req, ""); (got == "") != ok {
			t.Fatalf("match = %v but explain = %q", ok, got)
		}
		if !reflect.DeepEqual(any(req), before) {
			t.Fatalf("Match modified the request")
		}
	})
}
