package matcho

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// exampleRequest is the request object the server builds for
// GET /fhir/Patient/pt-1?_count=2 by a doctor through a password client.
const exampleRequest = `{"request-method":"get","uri":"/fhir/Patient/pt-1","query-string":"_count=2","scheme":"http",
 "params":{"resource/type":"Patient","resource/id":"pt-1","_count":"2"},
 "headers":{"accept":"application/json"},
 "user":{"id":"u1","resourceType":"User","data":{"patient_id":"pt-1"},"roles":["doctor"]},
 "client":{"id":"app","resourceType":"Client","grant_types":["password"]}}`

// testCase is one pattern run against one request; an empty req means
// exampleRequest. The fuzz test seeds its corpus from these.
type testCase struct {
	name    string
	pattern string
	req     string
	want    bool
}

var cases = []testCase{
	// Aidbox doc-style policies.
	{"doc: only GET on /fhir/Patient", `{"request-method":"get","uri":"#^/fhir/Patient(/[^/]+)?$"}`, "", true},
	{"doc: only GET on /fhir/Patient, other type", `{"request-method":"get","uri":"#^/fhir/Patient(/[^/]+)?$"}`, `{"request-method":"get","uri":"/fhir/Observation"}`, false},
	{"doc: only GET on /fhir/Patient, deeper path", `{"request-method":"get","uri":"#^/fhir/Patient(/[^/]+)?$"}`, `{"request-method":"get","uri":"/fhir/Patient/pt-1/_history"}`, false},
	{"doc: only GET on /fhir/Patient, POST", `{"request-method":"get","uri":"#^/fhir/Patient(/[^/]+)?$"}`, `{"request-method":"post","uri":"/fhir/Patient"}`, false},
	{"doc: client may only read", `{"client":{"id":"my-client"},"request-method":{"$enum":["get"]}}`, `{"client":{"id":"my-client"},"request-method":"get"}`, true},
	{"doc: client may only read, write", `{"client":{"id":"my-client"},"request-method":{"$enum":["get"]}}`, `{"client":{"id":"my-client"},"request-method":"put"}`, false},
	{"doc: client may only read, other client", `{"client":{"id":"my-client"},"request-method":{"$enum":["get"]}}`, "", false},
	{"doc: patient reads own record", `{"uri":"#^/fhir/Patient/","params":{"resource/id":".user.data.patient_id"}}`, "", true},
	{"doc: patient reads another record", `{"uri":"#^/fhir/Patient/","params":{"resource/id":".user.data.patient_id"}}`,
		`{"uri":"/fhir/Patient/pt-2","params":{"resource/id":"pt-2"},"user":{"data":{"patient_id":"pt-1"}}}`, false},
	{"doc: user without patient_id reads a type-level URL", `{"uri":"#^/fhir/Patient/","params":{"resource/id":".user.data.patient_id"}}`,
		`{"uri":"/fhir/Patient/","params":{},"user":{"data":{}}}`, false},
	{"typical benchmark policy", `{"request-method":"get","uri":"#^/fhir/Patient","user":{"roles":{"$contains":"doctor"}}}`, "", true},

	// Object patterns.
	{"nested objects", `{"user":{"data":{"patient_id":"pt-1"}}}`, "", true},
	{"nested objects, different leaf", `{"user":{"data":{"patient_id":"pt-2"}}}`, "", false},
	{"nested objects, value not an object", `{"user":{"data":{"patient_id":"pt-1"}}}`, `{"user":{"data":"pt-1"}}`, false},
	{"nested objects, absent", `{"user":{"data":{"patient_id":"pt-1"}}}`, `{}`, false},
	{"extra request keys are ignored", `{"scheme":"http"}`, "", true},
	{"empty object pattern matches any request", `{}`, `{}`, true},
	{"nested empty object needs an object", `{"user":{}}`, `{"user":"u1"}`, false},
	{"nested empty object, absent", `{"user":{}}`, `{}`, false},
	{"nested empty object, object", `{"user":{}}`, "", true},

	// List patterns: element-wise prefix.
	{"list prefix, equal", `{"a":[1,"x"]}`, `{"a":[1,"x"]}`, true},
	{"list prefix, longer value", `{"a":[1,"x"]}`, `{"a":[1,"x",true]}`, true},
	{"list prefix, shorter value", `{"a":[1,"x"]}`, `{"a":[1]}`, false},
	{"list prefix, wrong element", `{"a":[1,"x"]}`, `{"a":[1,"y"]}`, false},
	{"list prefix, not a list", `{"a":[1]}`, `{"a":{"0":1}}`, false},
	{"empty list pattern, empty list", `{"a":[]}`, `{"a":[]}`, true},
	{"empty list pattern, absent", `{"a":[]}`, `{}`, false},
	{"list of patterns", `{"user":{"roles":["#^doc"]}}`, "", true},

	// Regular expressions.
	{"regex, match", `{"uri":"#^/fhir/"}`, "", true},
	{"regex, find semantics", `{"uri":"#Patient"}`, "", true},
	{"regex, anchored miss", `{"uri":"#^Patient"}`, "", false},
	{"regex on a number", `{"a":"#^1$"}`, `{"a":1}`, false},
	{"regex on absent", `{"a":"#.*"}`, `{}`, false},
	{"regex on null", `{"a":"#.*"}`, `{"a":null}`, false},
	{"regex on a list", `{"a":"#x"}`, `{"a":["x"]}`, false},
	{"regex # alone matches any string", `{"a":"#"}`, `{"a":""}`, true},

	// References into the request.
	{"ref, equal", `{"params":{"resource/id":".user.data.patient_id"}}`, "", true},
	{"ref, different", `{"params":{"resource/id":".user.id"}}`, "", false},
	{"ref, both absent", `{"params":{"resource/id":".user.data.patient_id"}}`, `{"params":{}}`, false},
	{"ref, target absent, value present", `{"params":{"resource/id":".user.data.patient_id"}}`, `{"params":{"resource/id":"pt-1"},"user":{}}`, false},
	{"ref, target null, value null", `{"a":".b"}`, `{"a":null,"b":null}`, false},
	{"ref, value absent", `{"a":".b"}`, `{"b":"x"}`, false},
	{"ref through a list index", `{"a":".user.roles.0"}`, `{"a":"doctor","user":{"roles":["doctor"]}}`, true},
	{"ref through a list index, other element", `{"a":".user.roles.1"}`, `{"a":"doctor","user":{"roles":["nurse","doctor"]}}`, true},
	{"ref through a list index, out of range", `{"a":".user.roles.5"}`, `{"a":"doctor","user":{"roles":["doctor"]}}`, false},
	{"ref, numeric segment names an object key", `{"a":".m.0"}`, `{"a":"x","m":{"0":"x"}}`, true},
	{"ref, non-numeric segment into a list", `{"a":".l.x"}`, `{"a":"x","l":["x"]}`, false},
	{"ref through a scalar", `{"a":".b.c"}`, `{"a":"x","b":"x"}`, false},
	{"ref, numbers compare numerically", `{"a":".b"}`, `{"a":2,"b":2.0}`, true},
	{"ref, string vs number", `{"a":".b"}`, `{"a":"2","b":2}`, false},
	{"ref to an object, deep equal", `{"a":".b"}`, `{"a":{"x":[1,{"y":true}]},"b":{"x":[1,{"y":true}]}}`, true},
	{"ref to an object, deep differ", `{"a":".b"}`, `{"a":{"x":[1,{"y":true}]},"b":{"x":[1,{"y":false}]}}`, false},
	{"ref to an object, extra key", `{"a":".b"}`, `{"a":{"x":1,"z":null},"b":{"x":1}}`, false},
	{"ref to a list, length differs", `{"a":".b"}`, `{"a":[1,2],"b":[1]}`, false},
	{"ref to a bool", `{"a":".b"}`, `{"a":false,"b":false}`, true},
	{"ref inside a list pattern", `{"l":[".id"]}`, `{"l":["u1"],"id":"u1"}`, true},

	// present? / nil? / not-blank?
	{"present? absent", `{"a":"present?"}`, `{}`, false},
	{"present? null", `{"a":"present?"}`, `{"a":null}`, false},
	{"present? empty string", `{"a":"present?"}`, `{"a":""}`, true},
	{"present? blank string", `{"a":"present?"}`, `{"a":"  "}`, true},
	{"present? empty list", `{"a":"present?"}`, `{"a":[]}`, true},
	{"present? empty object", `{"a":"present?"}`, `{"a":{}}`, true},
	{"present? string", `{"a":"present?"}`, `{"a":"x"}`, true},
	{"present? false", `{"a":"present?"}`, `{"a":false}`, true},
	{"nil? absent", `{"a":"nil?"}`, `{}`, true},
	{"nil? null", `{"a":"nil?"}`, `{"a":null}`, true},
	{"nil? empty string", `{"a":"nil?"}`, `{"a":""}`, false},
	{"nil? blank string", `{"a":"nil?"}`, `{"a":"  "}`, false},
	{"nil? empty list", `{"a":"nil?"}`, `{"a":[]}`, false},
	{"nil? empty object", `{"a":"nil?"}`, `{"a":{}}`, false},
	{"nil? string", `{"a":"nil?"}`, `{"a":"x"}`, false},
	{"not-blank? absent", `{"a":"not-blank?"}`, `{}`, false},
	{"not-blank? null", `{"a":"not-blank?"}`, `{"a":null}`, false},
	{"not-blank? empty string", `{"a":"not-blank?"}`, `{"a":""}`, false},
	{"not-blank? blank string", `{"a":"not-blank?"}`, `{"a":" \t\n "}`, false},
	{"not-blank? empty list", `{"a":"not-blank?"}`, `{"a":[]}`, false},
	{"not-blank? empty object", `{"a":"not-blank?"}`, `{"a":{}}`, false},
	{"not-blank? string", `{"a":"not-blank?"}`, `{"a":"x"}`, true},
	{"not-blank? padded string", `{"a":"not-blank?"}`, `{"a":" x "}`, true},
	{"not-blank? list", `{"a":"not-blank?"}`, `{"a":[null]}`, true},
	{"not-blank? object", `{"a":"not-blank?"}`, `{"a":{"b":1}}`, true},
	{"not-blank? zero", `{"a":"not-blank?"}`, `{"a":0}`, true},
	{"not-blank? false", `{"a":"not-blank?"}`, `{"a":false}`, true},
	{"null pattern, absent", `{"a":null}`, `{}`, true},
	{"null pattern, null", `{"a":null}`, `{"a":null}`, true},
	{"null pattern, present", `{"a":null}`, `{"a":""}`, false},

	// Scalars.
	{"string equal", `{"a":"x"}`, `{"a":"x"}`, true},
	{"string differs", `{"a":"x"}`, `{"a":"X"}`, false},
	{"empty string pattern", `{"a":""}`, `{"a":""}`, true},
	{"empty string pattern, absent", `{"a":""}`, `{}`, false},
	{"number 2 vs 2.0", `{"a":2}`, `{"a":2.0}`, true},
	{"number 2 vs 2e0", `{"a":2}`, `{"a":2e0}`, true},
	{"number differs", `{"a":2}`, `{"a":2.5}`, false},
	{"string 2 vs number 2", `{"a":"2"}`, `{"a":2}`, false},
	{"number 2 vs string 2", `{"a":2}`, `{"a":"2"}`, false},
	{"number vs absent", `{"a":0}`, `{}`, false},
	{"bool true", `{"a":true}`, `{"a":true}`, true},
	{"bool differs", `{"a":true}`, `{"a":false}`, false},
	{"bool vs string", `{"a":true}`, `{"a":"true"}`, false},
	{"false vs absent", `{"a":false}`, `{}`, false},
	{"string vs list", `{"a":"x"}`, `{"a":["x"]}`, false},

	// $enum
	{"$enum, listed", `{"m":{"$enum":["get","post"]}}`, `{"m":"post"}`, true},
	{"$enum, not listed", `{"m":{"$enum":["get","post"]}}`, `{"m":"put"}`, false},
	{"$enum, absent", `{"m":{"$enum":["get"]}}`, `{}`, false},
	{"$enum, numbers numerically", `{"n":{"$enum":[1,2]}}`, `{"n":2.0}`, true},
	{"$enum, no coercion", `{"n":{"$enum":[1,2]}}`, `{"n":"2"}`, false},
	{"$enum, bool", `{"n":{"$enum":[true]}}`, `{"n":true}`, true},
	{"$enum, literal #", `{"a":{"$enum":["#x"]}}`, `{"a":"#x"}`, true},
	{"$enum, literal # is not a regex", `{"a":{"$enum":["#x"]}}`, `{"a":"x"}`, false},
	{"$enum, literal .path", `{"a":{"$enum":[".b"]}}`, `{"a":".b","b":".b"}`, true},
	{"$enum, literal .path is not a ref", `{"a":{"$enum":[".b"]}}`, `{"a":"y","b":"y"}`, false},
	{"$enum, literal present?", `{"a":{"$enum":["present?"]}}`, `{"a":"present?"}`, true},
	{"$enum, literal present? is not the predicate", `{"a":{"$enum":["present?"]}}`, `{"a":"x"}`, false},
	{"$enum on a list value", `{"a":{"$enum":["x"]}}`, `{"a":["x"]}`, false},

	// $one-of
	{"$one-of, first", `{"uri":{"$one-of":["#^/fhir/Patient","#^/fhir/Observation"]}}`, "", true},
	{"$one-of, second", `{"uri":{"$one-of":["#^/fhir/Observation","#^/fhir/Patient"]}}`, "", true},
	{"$one-of, none", `{"uri":{"$one-of":["#^/fhir/Observation","#^/Patient"]}}`, "", false},
	{"$one-of of objects", `{"user":{"$one-of":[{"id":"u2"},{"roles":{"$contains":"doctor"}}]}}`, "", true},
	{"$one-of with nil?", `{"a":{"$one-of":["nil?","x"]}}`, `{}`, true},

	// $contains
	{"$contains, present", `{"user":{"roles":{"$contains":"doctor"}}}`, "", true},
	{"$contains, missing", `{"user":{"roles":{"$contains":"admin"}}}`, "", false},
	{"$contains, empty list", `{"r":{"$contains":"x"}}`, `{"r":[]}`, false},
	{"$contains, not a list", `{"r":{"$contains":"x"}}`, `{"r":"x"}`, false},
	{"$contains, absent", `{"r":{"$contains":"x"}}`, `{}`, false},
	{"$contains of an object pattern", `{"r":{"$contains":{"system":"s","code":"#^a"}}}`, `{"r":[{"system":"t","code":"a1"},{"system":"s","code":"ab"}]}`, true},
	{"$contains of an object pattern, none", `{"r":{"$contains":{"system":"s","code":"#^a"}}}`, `{"r":[{"system":"t","code":"a1"},{"system":"s","code":"b"}]}`, false},

	// $every
	{"$every, all", `{"r":{"$every":"#^x"}}`, `{"r":["x1","x2"]}`, true},
	{"$every, one fails", `{"r":{"$every":"#^x"}}`, `{"r":["x1","y2"]}`, false},
	{"$every, empty list", `{"r":{"$every":"#^x"}}`, `{"r":[]}`, true},
	{"$every, not a list", `{"r":{"$every":"#^x"}}`, `{"r":"x1"}`, false},
	{"$every, absent", `{"r":{"$every":"#^x"}}`, `{}`, false},

	// $not
	{"$not, differs", `{"m":{"$not":"delete"}}`, `{"m":"get"}`, true},
	{"$not, equal", `{"m":{"$not":"delete"}}`, `{"m":"delete"}`, false},
	{"$not of $contains, absent role", `{"user":{"roles":{"$not":{"$contains":"banned"}}}}`, "", true},
	{"$not of $contains, present role", `{"user":{"roles":{"$not":{"$contains":"doctor"}}}}`, "", false},
	{"$not of present? is nil?", `{"a":{"$not":"present?"}}`, `{}`, true},
	{"$not at top level", `{"$not":{"request-method":"delete"}}`, "", true},
	{"$not at top level, matches", `{"$not":{"request-method":"get"}}`, "", false},

	// $present-all
	{"$present-all, all", `{"user":{"$present-all":["id","data"]}}`, "", true},
	{"$present-all, one absent", `{"user":{"$present-all":["id","email"]}}`, "", false},
	{"$present-all, one null", `{"u":{"$present-all":["id"]}}`, `{"u":{"id":null}}`, false},
	{"$present-all, empty string is present", `{"u":{"$present-all":["id"]}}`, `{"u":{"id":""}}`, true},
	{"$present-all, not an object", `{"u":{"$present-all":["id"]}}`, `{"u":["id"]}`, false},
	{"$present-all at top level", `{"$present-all":["user","client"]}`, "", true},

	// Operators mixed with fields: all must hold.
	{"mixed, both hold", `{"user":{"$present-all":["id"],"roles":{"$contains":"doctor"}}}`, "", true},
	{"mixed, operator fails", `{"user":{"$present-all":["email"],"roles":{"$contains":"doctor"}}}`, "", false},
	{"mixed, field fails", `{"user":{"$present-all":["id"],"roles":{"$contains":"nurse"}}}`, "", false},
	{"mixed, two operators", `{"m":{"$enum":["get","post"],"$not":"post"}}`, `{"m":"get"}`, true},
	{"mixed, two operators, one fails", `{"m":{"$enum":["get","post"],"$not":"post"}}`, `{"m":"post"}`, false},
	{"mixed, field on a non-object", `{"m":{"$not":"x","a":1}}`, `{"m":"y"}`, false},
}

func decode(t testing.TB, s string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("bad test JSON %s: %v", s, err)
	}
	return v
}

func request(t testing.TB, s string) map[string]any {
	t.Helper()
	if s == "" {
		s = exampleRequest
	}
	req, ok := decode(t, s).(map[string]any)
	if !ok {
		t.Fatalf("test request is not an object: %s", s)
	}
	return req
}

func mustCompile(t testing.TB, pattern string) *Pattern {
	t.Helper()
	m, err := Compile(decode(t, pattern))
	if err != nil {
		t.Fatalf("Compile(%s): %v", pattern, err)
	}
	return m
}

func TestMatcho(t *testing.T) {
	seen := map[string]bool{}
	for _, tc := range cases {
		if seen[tc.name] {
			t.Fatalf("duplicate case name %q", tc.name)
		}
		seen[tc.name] = true
		t.Run(tc.name, func(t *testing.T) {
			m := mustCompile(t, tc.pattern)
			req := request(t, tc.req)
			ok, why := m.Match(req)
			if ok != tc.want {
				t.Fatalf("Match(%s, %s) = %v (why %q), want %v", tc.pattern, tc.req, ok, why, tc.want)
			}
			if ok != (why == "") {
				t.Fatalf("ok=%v but why=%q", ok, why)
			}
		})
	}
}

func TestMatchoWhy(t *testing.T) {
	cases := []struct {
		pattern, req, want string
	}{
		{`{"uri":"#^/Patient"}`, `{"uri":"/Observation"}`, `uri: "/Observation" does not match #^/Patient`},
		{`{"user":{"data":{"patient_id":"present?"}}}`, `{"user":{"data":{}}}`, `user.data.patient_id: absent`},
		{`{"uri":"#^/Patient"}`, `{}`, `uri: absent, want a string matching #^/Patient`},
		{`{"params":{"resource/id":".user.data.patient_id"}}`, `{"params":{"resource/id":"pt-1"}}`, `params.resource/id: .user.data.patient_id resolves to nothing`},
		{`{"params":{"resource/id":".user.data.patient_id"}}`, `{"params":{"resource/id":"pt-2"},"user":{"data":{"patient_id":"pt-1"}}}`, `params.resource/id: "pt-2", want .user.data.patient_id = "pt-1"`},
		{`{"request-method":"get"}`, `{"request-method":"post"}`, `request-method: "post", want "get"`},
		{`{"request-method":{"$enum":["get","head"]}}`, `{"request-method":"post"}`, `request-method: "post", want one of ["get","head"]`},
		{`{"user":{"roles":{"$contains":"doctor"}}}`, `{"user":{"roles":["nurse"]}}`, `user.roles: no element of a list of 1 element matches "doctor"`},
		{`{"user":{"roles":{"$every":"#^d"}}}`, `{"user":{"roles":["doctor","nurse"]}}`, `user.roles.1: "nurse" does not match #^d`},
		{`{"a":[1,2]}`, `{"a":[1]}`, `a: a list of 1 element, want a list of at least 2`},
		{`{"a":[1,{"b":"x"}]}`, `{"a":[1,{"b":"y"}]}`, `a.1.b: "y", want "x"`},
		{`{"user":{"$present-all":["id","email"]}}`, `{"user":{"id":"u1"}}`, `user.email: absent ($present-all)`},
		{`{"$not":{"request-method":"get"}}`, `{"request-method":"get"}`, `(request): an object with 1 key matches $not {"request-method":"get"}`},
		{`{"a":"not-blank?"}`, `{"a":"  "}`, `a: "  " is blank`},
		{`{"a":"nil?"}`, `{"a":1}`, `a: 1, want absent`},
		{`{"a":{"b":1}}`, `{"a":"x"}`, `a: "x", want an object`},
		{`{"a":{"$one-of":["x","y"]}}`, `{"a":"z"}`, `a: "z" matches none of $one-of ["x","y"]`},
		// Keys are checked in sorted order, so the first failure is stable.
		{`{"b":1,"a":1}`, `{}`, `a: absent, want 1`},
		// Hostile values are escaped and shortened.
		{`{"a":"x"}`, `{"a":"line\nforged: ` + strings.Repeat("y", 100) + `"}`, `a: "line\nforged: ` + strings.Repeat("y", 64-len("line\nforged: ")) + `"…, want "x"`},
	}
	for _, tc := range cases {
		m := mustCompile(t, tc.pattern)
		ok, why := m.Match(request(t, tc.req))
		if ok || why != tc.want {
			t.Errorf("Match(%s, %s) = %v, %q\n want false, %q", tc.pattern, tc.req, ok, why, tc.want)
		}
	}
}

func TestMatchoCompileErrors(t *testing.T) {
	cases := []struct {
		name    string
		pattern string // JSON; used when value is nil
		value   any    // a Go value a careless caller might pass
		want    string // substring of the error
	}{
		{"top level list", `[{"a":1}]`, nil, "matcho: the top-level pattern must be an object, got a list"},
		{"top level string", `"#x"`, nil, "matcho: the top-level pattern must be an object"},
		{"top level null", `null`, nil, "matcho: the top-level pattern must be an object, got null"},
		{"invalid regex", `{"params":{"resource/type":"#("}}`, nil, `matcho.params.resource/type: invalid regular expression "#(": `},
		{"invalid regex in a list", `{"a":["x","#[a-"]}`, nil, `matcho.a.1: invalid regular expression`},
		{"perl lookahead is not RE2", `{"a":"#(?=x)"}`, nil, `matcho.a: invalid regular expression`},
		{"empty ref", `{"a":"."}`, nil, `matcho.a: empty reference path "."`},
		{"ref with leading empty segment", `{"a":"..b"}`, nil, `matcho.a: reference path "..b" has an empty segment`},
		{"ref with trailing empty segment", `{"a":".b."}`, nil, `matcho.a: reference path ".b." has an empty segment`},
		{"ref with inner empty segment", `{"a":".b..c"}`, nil, `matcho.a: reference path ".b..c" has an empty segment`},
		{"$enum not a list", `{"uri":{"$enum":"get"}}`, nil, "matcho.uri.$enum: must be a non-empty list"},
		{"$enum empty", `{"uri":{"$enum":[]}}`, nil, "matcho.uri.$enum: must be a non-empty list"},
		{"$enum of an object", `{"uri":{"$enum":["a",{"b":1}]}}`, nil, "matcho.uri.$enum.1: must be a string, number or boolean, got an object"},
		{"$enum of null", `{"uri":{"$enum":[null]}}`, nil, "matcho.uri.$enum.0: must be a string, number or boolean, got null"},
		{"$one-of not a list", `{"a":{"$one-of":"x"}}`, nil, "matcho.a.$one-of: must be a non-empty list"},
		{"$one-of empty", `{"a":{"$one-of":[]}}`, nil, "matcho.a.$one-of: must be a non-empty list"},
		{"$one-of bad alternative", `{"a":{"$one-of":["x","#("]}}`, nil, "matcho.a.$one-of.1: invalid regular expression"},
		{"$contains bad pattern", `{"a":{"$contains":{"$nope":1}}}`, nil, `matcho.a.$contains.$nope: unknown operator "$nope"`},
		{"$every bad pattern", `{"a":{"$every":".x."}}`, nil, `matcho.a.$every: reference path ".x." has an empty segment`},
		{"$not bad pattern", `{"a":{"$not":{"b":"#)"}}}`, nil, `matcho.a.$not.b: invalid regular expression`},
		{"$present-all not a list", `{"a":{"$present-all":"id"}}`, nil, "matcho.a.$present-all: must be a non-empty list"},
		{"$present-all empty", `{"a":{"$present-all":[]}}`, nil, "matcho.a.$present-all: must be a non-empty list"},
		{"$present-all of a number", `{"a":{"$present-all":["id",1]}}`, nil, "matcho.a.$present-all.1: must be a non-empty string"},
		{"$present-all of an empty key", `{"a":{"$present-all":[""]}}`, nil, "matcho.a.$present-all.0: must be a non-empty string"},
		{"unknown operator", `{"uri":{"$regex":"x"}}`, nil, `matcho.uri.$regex: unknown operator "$regex"`},
		{"unknown top-level operator", `{"$and":[]}`, nil, `matcho.$and: unknown operator "$and"`},
		{"Go int", "", map[string]any{"a": map[string]any{"b": 2}}, "matcho.a.b: unsupported Go type int"},
		{"Go []string", "", map[string]any{"a": []string{"x"}}, "matcho.a: unsupported Go type []string"},
		{"Go map[string]string", "", map[string]string{"a": "x"}, "matcho: the top-level pattern must be an object, got unsupported Go type map[string]string"},
		{"Go NaN", "", map[string]any{"a": []any{nanValue()}}, "matcho.a.0: NaN is not a JSON number"},
		{"too deep", nested(maxDepth + 1), nil, "pattern nested deeper than 64 levels"},
		{"too deep through $not", nestedNot(maxDepth + 1), nil, "pattern nested deeper than 64 levels"},
		{"too deep through lists", "{\"a\":" + strings.Repeat("[", maxDepth) + strings.Repeat("]", maxDepth) + "}", nil, "pattern nested deeper than 64 levels"},
		{"hostile depth", nested(5000), nil, "pattern nested deeper than 64 levels"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.value
			if p == nil {
				p = decode(t, tc.pattern)
			}
			m, err := Compile(p)
			if err == nil {
				t.Fatalf("Compile compiled %v, want an error containing %q", p, tc.want)
			}
			if m != nil {
				t.Errorf("Compile returned a Pattern along with error %v", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q\n does not contain %q", err, tc.want)
			}
		})
	}
}

// The string shortcuts for literal regexps must agree with the regexp machine,
// including on case folding, multi-line flags and invalid UTF-8.
func TestMatchoRegexpPlan(t *testing.T) {
	plans := []struct {
		src string
		how strategy
		lit string
	}{
		{"^/fhir/Patient", hasPrefix, "/fhir/Patient"},
		{`\A/fhir/Patient`, hasPrefix, "/fhir/Patient"},
		{"^/fhir/Patient$", equals, "/fhir/Patient"},
		{`^/fhir/Patient\z`, equals, "/fhir/Patient"},
		{"Patient", containsLit, "Patient"},
		{`^a\.b`, hasPrefix, "a.b"},
		{"^/fhir/Patient(/[^/]+)?$", runRegexp, "/fhir/Patient"},
		{"(?i)^abc", runRegexp, ""},
		{"(?m)^abc", runRegexp, ""},
		{"(?m)^abc$", runRegexp, ""},
		{"^a|^b", runRegexp, ""},
		{"^", runRegexp, ""},
		{"", runRegexp, ""},
		{"^$", runRegexp, ""},
		{"a$", runRegexp, ""},
		{"^\uFFFD", runRegexp, ""},
		{`^\x{FFFD}x`, runRegexp, ""},
		{"^é", hasPrefix, "é"},
	}
	inputs := []string{"", "a", "b", "abc", "ABC", "xabc", "abc\nabc", "x\nabc", "a.b", "axb",
		"/fhir/Patient", "/fhir/Patient/1", "/fhir/Patient/1/x", "/fhir/PatientX", "/fhir/patient",
		"x/fhir/Patient", "Patient", "\xff", "\xffx", "\uFFFDx", "é", "\xc3", "e\u0301"}
	for _, p := range plans {
		how, lit := plan(p.src)
		if how != p.how || lit != p.lit {
			t.Errorf("plan(%q) = %v, %q; want %v, %q", p.src, how, lit, p.how, p.lit)
		}
		n, err := compileString("#"+p.src, "matcho")
		if err != nil {
			t.Fatal(err)
		}
		re := regexp.MustCompile(p.src)
		for _, in := range inputs {
			if got, want := n.match(in, nil), re.MatchString(in); got != want {
				t.Errorf("#%s against %q: %v, regexp says %v", p.src, in, got, want)
			}
		}
	}
}

func nanValue() float64 {
	zero := 0.0
	return zero / zero
}

// nested is {"a":{"a":…{"a":1}…}} with depth objects.
func nested(depth int) string {
	return strings.Repeat(`{"a":`, depth) + "1" + strings.Repeat("}", depth)
}

// nestedNot is {"$not":{"$not":…{"a":1}…}} with depth objects.
func nestedNot(depth int) string {
	return strings.Repeat(`{"$not":`, depth-1) + `{"a":1}` + strings.Repeat("}", depth-1)
}

func TestMatchoDepthLimit(t *testing.T) {
	// The deepest pattern allowed still compiles and works; one level more is refused
	// (see TestMatchoCompileErrors).
	m := mustCompile(t, nested(maxDepth))
	if ok, why := m.Match(request(t, nested(maxDepth))); !ok {
		t.Fatalf("deepest allowed pattern does not match: %s", why)
	}
	// 63 nested $not around {"a":1}: an odd number, so it is $not {"a":1}.
	m = mustCompile(t, nestedNot(maxDepth))
	if ok, why := m.Match(map[string]any{"a": 2.0}); !ok {
		t.Errorf("$not^63 {a:1} against {a:2}: %s", why)
	}
	if ok, _ := m.Match(map[string]any{"a": 1.0}); ok {
		t.Errorf("$not^63 {a:1} matched {a:1}")
	}
}

func TestMatchoNil(t *testing.T) {
	var m *Pattern
	if ok, why := m.Match(map[string]any{}); ok || why == "" {
		t.Errorf("nil Pattern: %v, %q; want a denial with a reason", ok, why)
	}
	if ok, why := (&Pattern{}).Match(map[string]any{}); ok || why == "" {
		t.Errorf("zero Pattern: %v, %q; want a denial with a reason", ok, why)
	}
	// A nil request is an empty one, not a crash.
	m = mustCompile(t, `{"a":"nil?"}`)
	if ok, _ := m.Match(nil); !ok {
		t.Errorf("nil request should have no keys")
	}
}

// The compiled tree must not alias the caller's pattern, which may be reused or mutated.
func TestMatchoPatternNotRetained(t *testing.T) {
	p := decode(t, `{"a":{"$enum":["x"]},"b":["y"]}`).(map[string]any)
	m, err := Compile(p)
	if err != nil {
		t.Fatal(err)
	}
	p["a"].(map[string]any)["$enum"].([]any)[0] = "changed"
	p["b"].([]any)[0] = "changed"
	p["c"] = "new"
	if ok, why := m.Match(map[string]any{"a": "x", "b": []any{"y"}}); !ok {
		t.Errorf("mutating the pattern changed the compiled Pattern: %s", why)
	}
}

// Match runs on every HTTP request: the success path must not allocate.
func TestMatchoNoAllocOnSuccess(t *testing.T) {
	req := request(t, "")
	for _, pattern := range []string{
		`{"request-method":"get","uri":"#^/fhir/Patient","user":{"roles":{"$contains":"doctor"}}}`,
		`{"uri":"#^/fhir/Patient/","params":{"resource/id":".user.data.patient_id"}}`,
		`{"request-method":{"$enum":["get","head"]},"user":{"$present-all":["id"],"roles":{"$every":"not-blank?"}},"client":{"$not":{"id":"evil"}},"headers":{"$one-of":[{"x":1},{"accept":"#json"}]},"params":{"_count":"2"}}`,
	} {
		m := mustCompile(t, pattern)
		if ok, why := m.Match(req); !ok {
			t.Fatalf("%s does not match: %s", pattern, why)
		}
		if n := testing.AllocsPerRun(200, func() { m.Match(req) }); n != 0 {
			t.Errorf("%s: %v allocations per successful Match, want 0", pattern, n)
		}
	}
}

func TestMatchoConcurrent(t *testing.T) {
	m := mustCompile(t, `{"uri":"#^/fhir/Patient/","params":{"resource/id":".user.data.patient_id"},"user":{"roles":{"$contains":"#^doc"}}}`)
	yes := request(t, "")
	no := request(t, `{"uri":"/fhir/Patient/x","params":{"resource/id":"x"},"user":{"data":{"patient_id":"y"},"roles":["doctor"]}}`)
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				req, want := yes, true
				if (g+i)%2 == 1 {
					req, want = no, false
				}
				if ok, why := m.Match(req); ok != want {
					errs <- fmt.Sprintf("goroutine %d: Match = %v (%s), want %v", g, ok, why, want)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

func BenchmarkMatcho(b *testing.B) {
	req := request(b, "")
	for _, bc := range []struct{ name, pattern string }{
		{"typical", `{"request-method":"get","uri":"#^/fhir/Patient","user":{"roles":{"$contains":"doctor"}}}`},
		{"own-record", `{"uri":"#^/fhir/Patient/","params":{"resource/id":".user.data.patient_id"}}`},
		{"deny", `{"request-method":"get","uri":"#^/fhir/Observation","user":{"roles":{"$contains":"doctor"}}}`},
	} {
		m := mustCompile(b, bc.pattern)
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				m.Match(req)
			}
		})
	}
}
