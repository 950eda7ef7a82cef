package resources

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// describe renders the clauses of q compactly, one string per clause:
// "name[:modifier] v1 v2 …", each value by type: strings and uris as Str, tokens as
// system|code with "*" for a part that is not matched, dates as prefix+[low,high),
// numbers as prefix+number[lo,hi) and an optional |system|code, references as Type/id.
func describe(q *Query) []string {
	var out []string
	for _, c := range q.Clauses {
		s := describeChain(c.Chain) + c.Param.Name
		if c.Modifier != "" {
			s += ":" + c.Modifier
		}
		if c.Modifier == "missing" {
			out = append(out, s+" "+strconv.FormatBool(c.Missing))
			continue
		}
		for _, v := range c.Values {
			s += " "
			switch c.Param.Type {
			case TypeString, TypeURI:
				s += v.Str
			case TypeToken:
				sys, code := "*", "*"
				if v.MatchSystem {
					sys = v.System
				}
				if v.MatchCode {
					code = v.Code
				}
				s += sys + "|" + code
			case TypeDate:
				s += string(v.Prefix) + "[" + v.Low.Format(time.RFC3339Nano) + "," + v.High.Format(time.RFC3339Nano) + ")"
			case TypeNumber, TypeQuantity:
				g := func(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }
				s += string(v.Prefix) + g(v.Number) + "[" + g(v.NumLow) + "," + g(v.NumHigh) + ")"
				if v.MatchSystem || v.MatchCode {
					s += "|" + v.System + "|" + v.Code
				}
			case TypeReference:
				s += v.RefType + "/" + v.RefID
			}
		}
		out = append(out, s)
	}
	return out
}

// control renders the control fields of q.
func control(q *Query) string {
	var sorts []string
	for _, k := range q.Sort {
		if k.Desc {
			sorts = append(sorts, "-"+k.Param.Name)
		} else {
			sorts = append(sorts, k.Param.Name)
		}
	}
	return fmt.Sprintf("count=%d offset=%d total=%s sort=%s elements=%s summary=%s",
		q.Count, q.Offset, q.Total, strings.Join(sorts, ","), strings.Join(q.Elements, ","), q.Summary)
}

func TestParseSearch(t *testing.T) {
	def := DefaultRegistry()
	custom, err := LoadRegistry([]byte(testRegistryYAML))
	if err != nil {
		t.Fatal(err)
	}
	const defaults = "count=20 offset=0 total=accurate sort= elements= summary="
	tests := []struct {
		name    string
		reg     *Registry // default registry when nil
		typ     string    // Patient when empty
		query   string
		opts    ParseOptions
		want    []string // describe(q)
		control string   // control(q); defaults when empty
		used    string   // q.Used.Encode(), checked when set or when want is empty
		err     Code     // expected error code
		errText string   // a fragment of the expected error message
	}{
		// conformance F13: unknown parameters are ignored and left out of Used; strict → 400.
		{name: "F13 unknown ignored", query: "foo=bar&family=smith", want: []string{"family smith"}, used: "family=smith"},
		{name: "F13 unknown strict", query: "foo=bar&family=smith", opts: ParseOptions{Strict: true}, err: CodeInvalid, errText: `"foo"`},
		{name: "F13 unknown _ parameter ignored", query: "_include=Patient:organization&_offset=10", used: "_include=Patient%3Aorganization"},
		{name: "F13 _offset strict", query: "_offset=10", opts: ParseOptions{Strict: true}, err: CodeInvalid, errText: "_offset"},
		{name: "_include is understood, strict or not", query: "_include=Patient:organization", opts: ParseOptions{Strict: true}, used: "_include=Patient%3Aorganization"},
		{name: "a bad _include is 400 even lenient", query: "_include=Patient:nothing", err: CodeInvalid, errText: `"nothing"`},
		{name: "chained parameter", query: "organization.name=x", want: []string{"organization>Organization.name x"}, used: "organization.name=x"},
		{name: "chained parameter, unknown first link ignored", query: "foo.name=x"},
		{name: "chained parameter, unknown first link strict", query: "foo.name=x", opts: ParseOptions{Strict: true}, err: CodeInvalid, errText: `"foo.name"`},
		{name: "malformed _has is 400 even lenient", query: "_has=x", err: CodeInvalid, errText: "_has:Type:reference:parameter"},
		{name: "F13 _format and _pretty are not search parameters", query: "_format=json&_pretty=true", opts: ParseOptions{Strict: true}, used: ""},
		{name: "empty values are absent, even strict", query: "family=&foo=&gender=,", opts: ParseOptions{Strict: true}},
		{name: "unknown modifier is 400 even lenient", query: "family:foo=x", err: CodeInvalid, errText: ":foo"},
		{name: "token :exact unsupported", query: "gender:exact=x", err: CodeInvalid},
		{name: "date :exact unsupported", query: "birthdate:exact=2019", err: CodeInvalid},
		{name: "unknown type", typ: "Nope", query: "", err: CodeNotFound},

		// string
		{name: "string normalised", query: "name=V%C3%A9liz", want: []string{"name veliz"}, used: "name=V%C3%A9liz"},
		{name: "string exact as written", query: "family:exact=V%C3%A9liz", want: []string{"family:exact Véliz"}, used: "family%3Aexact=V%C3%A9liz"},
		{name: "string contains", query: "family:contains=%C3%89LI", want: []string{"family:contains eli"}},
		{name: "comma is OR", query: "family=a,B", want: []string{"family a b"}, used: "family=a%2CB"},
		{name: "repeated is AND", query: "family=a&family=b", want: []string{"family a", "family b"}, used: "family=a&family=b"},
		{name: "escaped comma is literal", query: `family=a\,b`, want: []string{"family a,b"}, used: "family=a%5C%2Cb"},
		{name: "empty items skipped", query: "family=,a,,", want: []string{"family a"}, used: "family=a"},
		{name: "blank string is absent", query: "family=%20%20", used: ""},
		{name: "string missing", query: "family:missing=true", want: []string{"family:missing true"}, used: "family%3Amissing=true"},
		{name: "missing takes true or false", query: "family:missing=yes", err: CodeInvalid},

		// token
		{name: "token code", query: "gender=female", want: []string{"gender *|female"}},
		{name: "token no system", query: "identifier=|42", want: []string{"identifier |42"}},
		{name: "token system and code", query: "identifier=urn:x|42", want: []string{"identifier urn:x|42"}},
		{name: "token system only", query: "identifier=urn:x|", want: []string{"identifier urn:x|*"}},
		{name: "token empty", query: "identifier=|", err: CodeInvalid, errText: "identifier"},
		{name: "token code with a bar", query: "identifier=a|b|c", want: []string{"identifier a|b|c"}},
		{name: "token escaped bar in system", query: `identifier=a\|b|c`, want: []string{"identifier a|b|c"}, used: "identifier=a%5C%7Cb%7Cc"},
		{name: "token not", query: "gender:not=male", want: []string{"gender:not *|male"}},
		{name: "token missing", query: "gender:missing=false", want: []string{"gender:missing false"}},
		{name: "email token", query: "email=a@b.c", want: []string{"email *|a@b.c"}},

		// _id (conformance F18)
		{name: "F18 _id", query: "_id=abc-1.2,XYZ", want: []string{"_id *|abc-1.2 *|XYZ"}, used: "_id=abc-1.2%2CXYZ"},
		{name: "F18 _id invalid", query: "_id=a_b", err: CodeInvalid, errText: "a_b"},
		{name: "F18 _id too long", query: "_id=" + strings.Repeat("a", 65), err: CodeInvalid},
		{name: "_id missing unsupported", query: "_id:missing=true", err: CodeInvalid},
		{name: "_id not", query: "_id:not=x", want: []string{"_id:not *|x"}},

		// uri
		{name: "uri", query: "_profile=http://x/p%7Cv1", want: []string{"_profile http://x/p|v1"}},
		{name: "uri exact is the default", query: "_profile:exact=http://x/p", want: []string{"_profile http://x/p"}, used: "_profile=http%3A%2F%2Fx%2Fp"},
		{name: "uri :text unsupported", query: "_profile:text=http://x", err: CodeInvalid},

		// date
		{name: "date month", query: "birthdate=2019-03", want: []string{"birthdate [2019-03-01T00:00:00Z,2019-04-01T00:00:00Z)"}},
		{name: "date prefix", query: "birthdate=ge2019", want: []string{"birthdate ge[2019-01-01T00:00:00Z,2020-01-01T00:00:00Z)"}},
		{name: "date OR", query: "birthdate=lt2018,gt2019-12-31", want: []string{
			"birthdate lt[2018-01-01T00:00:00Z,2019-01-01T00:00:00Z) gt[2019-12-31T00:00:00Z,2020-01-01T00:00:00Z)"}},
		{name: "every prefix", query: "birthdate=eq2019,ne2019,lt2019,le2019,gt2019,ge2019,sa2019,eb2019,ap2019", want: []string{
			"birthdate eq[2019-01-01T00:00:00Z,2020-01-01T00:00:00Z) ne[2019-01-01T00:00:00Z,2020-01-01T00:00:00Z) lt[2019-01-01T00:00:00Z,2020-01-01T00:00:00Z) le[2019-01-01T00:00:00Z,2020-01-01T00:00:00Z) gt[2019-01-01T00:00:00Z,2020-01-01T00:00:00Z) ge[2019-01-01T00:00:00Z,2020-01-01T00:00:00Z) sa[2019-01-01T00:00:00Z,2020-01-01T00:00:00Z) eb[2019-01-01T00:00:00Z,2020-01-01T00:00:00Z) ap[2019-01-01T00:00:00Z,2020-01-01T00:00:00Z)"}},
		{name: "date with escaped +", query: "birthdate=2020-01-01T10:00:00%2B02:00", want: []string{"birthdate [2020-01-01T08:00:00Z,2020-01-01T08:00:01Z)"}},
		{name: "date with unescaped + (decoded as space)", query: "birthdate=2020-01-01T10:00:00+02:00", want: []string{"birthdate [2020-01-01T08:00:00Z,2020-01-01T08:00:01Z)"}},
		{name: "date unknown prefix", query: "birthdate=xx2019", err: CodeInvalid, errText: `birthdate: "xx2019"`},
		{name: "date invalid", query: "birthdate=2019-13", err: CodeInvalid, errText: `birthdate: "2019-13"`},
		{name: "date prefix alone", query: "birthdate=eq", err: CodeInvalid},
		{name: "date missing", query: "death-date:missing=true", want: []string{"death-date:missing true"}},
		{name: "_lastUpdated", query: "_lastUpdated=gt2020-01-01T00:00:00Z", want: []string{"_lastUpdated gt[2020-01-01T00:00:00Z,2020-01-01T00:00:01Z)"}},
		{name: "Period-valued date param", typ: "Encounter", query: "date=2020", want: []string{"date [2020-01-01T00:00:00Z,2021-01-01T00:00:00Z)"}},

		// number
		{name: "number integer precision", reg: custom, typ: "Thing", query: "n=100", want: []string{"n 100[99.5,100.5)"}},
		{name: "number decimal precision", reg: custom, typ: "Thing", query: "n=5.4", want: []string{"n 5.4[5.35,5.45)"}},
		{name: "number negative", reg: custom, typ: "Thing", query: "n=lt-5.4", want: []string{"n lt-5.4[-5.45,-5.35)"}},
		{name: "number exponent", reg: custom, typ: "Thing", query: "n=gt1e2", want: []string{"n gt100[50,150)"}},
		{name: "number small exponent", reg: custom, typ: "Thing", query: "n=1.5e-3", want: []string{"n 0.0015[0.00145,0.00155)"}},
		{name: "number leading point", reg: custom, typ: "Thing", query: "n=ap.5", want: []string{"n ap0.5[0.45,0.55)"}},
		{name: "number zero", reg: custom, typ: "Thing", query: "n=0", want: []string{"n 0[-0.5,0.5)"}},
		{name: "number not a number", reg: custom, typ: "Thing", query: "n=abc", err: CodeInvalid, errText: `"abc"`},
		{name: "number NaN", reg: custom, typ: "Thing", query: "n=NaN", err: CodeInvalid},
		{name: "number Inf", reg: custom, typ: "Thing", query: "n=Inf", err: CodeInvalid},
		{name: "number hex", reg: custom, typ: "Thing", query: "n=0x10", err: CodeInvalid},
		{name: "number underscore", reg: custom, typ: "Thing", query: "n=1_0", err: CodeInvalid},
		{name: "number overflow", reg: custom, typ: "Thing", query: "n=1e999", err: CodeInvalid},
		{name: "number huge exponent", reg: custom, typ: "Thing", query: "n=1e99999", err: CodeInvalid},
		{name: "number point alone", reg: custom, typ: "Thing", query: "n=.", err: CodeInvalid},
		{name: "number unknown prefix", reg: custom, typ: "Thing", query: "n=zz5", err: CodeInvalid},

		// quantity
		{name: "quantity system and code", typ: "Observation", query: "value-quantity=5.4|http://unitsofmeasure.org|mg",
			want: []string{"value-quantity 5.4[5.35,5.45)|http://unitsofmeasure.org|mg"}},
		{name: "quantity code only", typ: "Observation", query: "value-quantity=le5.4||mg", want: []string{"value-quantity le5.4[5.35,5.45)||mg"}},
		{name: "quantity number only", typ: "Observation", query: "value-quantity=5", want: []string{"value-quantity 5[4.5,5.5)"}},
		{name: "quantity system only", typ: "Observation", query: "value-quantity=5|s|", want: []string{"value-quantity 5[4.5,5.5)|s|"}},
		{name: "quantity two parts", typ: "Observation", query: "value-quantity=5|mg", err: CodeInvalid},
		{name: "quantity bad number", typ: "Observation", query: "value-quantity=x||mg", err: CodeInvalid},

		// reference
		{name: "reference type/id", typ: "Observation", query: "subject=Patient/123", want: []string{"subject Patient/123"}},
		{name: "reference bare id", typ: "Observation", query: "subject=123", want: []string{"subject /123"}},
		{name: "reference single target", typ: "Observation", query: "patient=123", want: []string{"patient Patient/123"}},
		{name: "reference several targets", query: "general-practitioner=1", want: []string{"general-practitioner /1"}},
		{name: "reference type modifier", typ: "Observation", query: "subject:Patient=123", want: []string{"subject:Patient Patient/123"}, used: "subject%3APatient=123"},
		{name: "reference type modifier and matching type", typ: "Observation", query: "subject:Patient=Patient/123", want: []string{"subject:Patient Patient/123"}},
		{name: "reference type modifier disagrees", typ: "Observation", query: "subject:Patient=Group/1", err: CodeInvalid},
		{name: "reference absolute URL", typ: "Observation", query: "subject=https://h/fhir/Patient/123/_history/2", want: []string{"subject Patient/123"}},
		{name: "reference not a target", typ: "Observation", query: "patient=Group/1", err: CodeInvalid, errText: "Group"},
		{name: "reference modifier not a target", typ: "Observation", query: "patient:Group=1", err: CodeInvalid},
		{name: "reference modifier unknown type", typ: "Observation", query: "subject:Foo=1", err: CodeInvalid},
		{name: "reference bad id", typ: "Observation", query: "subject=a%20b", err: CodeInvalid},
		{name: "reference urn", typ: "Observation", query: "subject=urn:uuid:1", err: CodeInvalid},
		{name: "reference bad path", typ: "Observation", query: "subject=patient/1", err: CodeInvalid},
		{name: "reference missing", typ: "Observation", query: "subject:missing=false", want: []string{"subject:missing false"}},
		{name: "reference :text modifier unsupported", typ: "Observation", query: "subject:text=x", err: CodeInvalid},
		{name: "reference Aidbox-style type", typ: "Session", query: "user=u1", want: []string{"user User/u1"}},
		{name: "reference canonical URL", typ: "QuestionnaireResponse", query: "questionnaire=http://x.org/fhir/Questionnaire/q1", want: []string{"questionnaire Questionnaire/q1"}},
		{name: "reference canonical with a version", typ: "QuestionnaireResponse", query: "questionnaire=http://x.org/fhir/Questionnaire/q1%7C2.0", err: CodeInvalid, errText: "|version"},

		// conformance F10: _count and _page.
		{name: "F10 _count", query: "_count=5", control: "count=5 offset=0 total=accurate sort= elements= summary=", used: "_count=5"},
		{name: "F10 _count=0", query: "_count=0", control: "count=0 offset=0 total=accurate sort= elements= summary=", used: "_count=0"},
		{name: "F10 _count capped", query: "_count=5000", control: "count=1000 offset=0 total=accurate sort= elements= summary=", used: "_count=1000"},
		{name: "F10 _count options", query: "_count=100", opts: ParseOptions{DefaultCount: 7, MaxCount: 50},
			control: "count=50 offset=0 total=accurate sort= elements= summary=", used: "_count=50"},
		{name: "F10 default count option", query: "", opts: ParseOptions{DefaultCount: 7}, control: "count=7 offset=0 total=accurate sort= elements= summary="},
		{name: "F10 _count negative", query: "_count=-1", err: CodeInvalid, errText: "_count"},
		{name: "F10 _count not a number", query: "_count=x", err: CodeInvalid},
		{name: "F10 _page", query: "_count=10&_page=3", control: "count=10 offset=20 total=accurate sort= elements= summary=", used: "_count=10"},
		{name: "F10 _page default count", query: "_page=2", control: "count=20 offset=20 total=accurate sort= elements= summary=", used: ""},
		{name: "F10 _page zero", query: "_page=0", err: CodeInvalid, errText: "_page"},
		{name: "F10 _page not a number", query: "_page=x", err: CodeInvalid},
		{name: "F10 _page too large", query: "_page=99999999999", err: CodeInvalid},

		// conformance F11: _sort.
		{name: "F11 _sort", query: "_sort=family,-birthdate", control: "count=20 offset=0 total=accurate sort=family,-birthdate elements= summary=", used: "_sort=family%2C-birthdate"},
		{name: "F11 _sort columns", query: "_sort=-_lastUpdated,_id", control: "count=20 offset=0 total=accurate sort=-_lastUpdated,_id elements= summary=", used: "_sort=-_lastUpdated%2C_id"},
		{name: "F11 _sort repeated key keeps first", query: "_sort=family&_sort=-family,gender", control: "count=20 offset=0 total=accurate sort=family,gender elements= summary=", used: "_sort=family%2Cgender"},
		{name: "F11 _sort unknown", query: "_sort=nope", err: CodeInvalid, errText: "nope"},
		{name: "F11 _sort with modifier", query: "_sort=family:exact", err: CodeInvalid},

		// _total, _elements (conformance F12), _summary.
		{name: "_total none", query: "_total=none", control: "count=20 offset=0 total=none sort= elements= summary=", used: "_total=none"},
		{name: "_total estimate", query: "_total=estimate", control: "count=20 offset=0 total=estimate sort= elements= summary=", used: "_total=estimate"},
		{name: "_total bad", query: "_total=all", err: CodeInvalid},
		{name: "F12 _elements", query: "_elements=name,%20birthDate,name", control: "count=20 offset=0 total=accurate sort= elements=name,birthDate summary=", used: "_elements=name%2CbirthDate"},
		{name: "F12 _elements bad", query: "_elements=na-me", err: CodeInvalid},
		{name: "_summary count", query: "_summary=count", control: "count=20 offset=0 total=accurate sort= elements= summary=count", used: "_summary=count"},
		{name: "_summary bad", query: "_summary=maybe", err: CodeInvalid},

		// conformance F9: Used holds every understood parameter, canonicalised.
		{name: "F9 used", typ: "Observation", query: "code=http://loinc.org|8302-2&_count=2&_page=2&foo=1&_format=json&patient=p1&_sort=-date",
			want:    []string{"code http://loinc.org|8302-2", "patient Patient/p1"},
			control: "count=2 offset=2 total=accurate sort=-date elements= summary=",
			used:    "_count=2&_sort=-date&code=http%3A%2F%2Floinc.org%7C8302-2&patient=p1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg, typ := tt.reg, tt.typ
			if reg == nil {
				reg = def
			}
			if typ == "" {
				typ = "Patient"
			}
			params, err := url.ParseQuery(tt.query)
			if err != nil {
				t.Fatal(err)
			}
			q, err := ParseSearch(reg, typ, params, tt.opts)
			if tt.err != "" {
				var e *Error
				if !errors.As(err, &e) || e.Code != tt.err {
					t.Fatalf("got %v, want a %s error", err, tt.err)
				}
				if !strings.Contains(e.Message, tt.errText) {
					t.Errorf("message %q does not mention %q", e.Message, tt.errText)
				}
				if e.Code == CodeInvalid && e.Expression == "" {
					t.Errorf("error %v names no parameter", e)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := describe(q); !slices.Equal(got, tt.want) {
				t.Errorf("clauses:\n got %q\nwant %q", got, tt.want)
			}
			wantControl := tt.control
			if wantControl == "" {
				wantControl = defaults
			}
			if got := control(q); got != wantControl {
				t.Errorf("control:\n got %s\nwant %s", got, wantControl)
			}
			if tt.used != "" || len(tt.want) == 0 {
				if got := q.Used.Encode(); got != tt.used {
					t.Errorf("used:\n got %s\nwant %s", got, tt.used)
				}
			}
			if q.Type != typ {
				t.Errorf("type %q", q.Type)
			}
			checkRoundTrip(t, reg, typ, q, tt.opts)
		})
	}
}

// checkRoundTrip checks that q.Used, which becomes the self and paging links (conformance F9),
// parses strictly into the same search.
func checkRoundTrip(t *testing.T, reg *Registry, typ string, q *Query, opts ParseOptions) {
	t.Helper()
	opts.Strict = true
	q2, err := ParseSearch(reg, typ, q.Used, opts)
	if err != nil {
		t.Fatalf("Used %s does not parse: %v", q.Used.Encode(), err)
	}
	if q2.Used.Encode() != q.Used.Encode() {
		t.Errorf("Used changes on reparse: %s → %s", q.Used.Encode(), q2.Used.Encode())
	}
	if a, b := describe(q), describe(q2); !slices.Equal(a, b) {
		t.Errorf("clauses change on reparse of %s:\n%q\n%q", q.Used.Encode(), a, b)
	}
	// Paging is not in Used: only the offset may differ.
	q2.Offset = q.Offset
	if a, b := control(q), control(q2); a != b {
		t.Errorf("controls change on reparse of %s:\n%s\n%s", q.Used.Encode(), a, b)
	}
}

// FuzzParseSearch feeds arbitrary query strings to ParseSearch: it must not panic, its
// errors must be client errors (*Error, 4xx codes), and what it accepts must survive a
// round trip through Used.
func FuzzParseSearch(f *testing.F) {
	for _, s := range []string{
		"name=V%C3%A9liz&_count=5&_page=2&_sort=-birthdate,family",
		"birthdate=ge2019-03-04T10:00:00+02:00,lt2020&gender:not=male&identifier=urn:x|42",
		`family=a\,b&_elements=name,id&_total=none&_summary=count`,
		"subject:Patient=123&value-quantity=le5.4|http://unitsofmeasure.org|mg&code=|x",
		"patient=Group/1&_id=a,b&_lastUpdated=gt2020&foo=bar&_include=x",
		"subject:Patient.organization.name:exact=a,b&_has:Observation:subject:_has:Encounter:subject:date=ge2020&general-practitioner.name=x",
		"date=2020-01-01T10:00:00 02:00&date:missing=true&category=s|",
		"user=u1&audience=http://x&type:not=password",
		"name:exact=%ff%fe&identifier=a%00b",
	} {
		f.Add(s)
	}
	reg := DefaultRegistry()
	types := []string{"Patient", "Observation", "Encounter", "Session", "User"}
	f.Fuzz(func(t *testing.T, raw string) {
		params, _ := url.ParseQuery(raw) // keeps what parsed before an error
		for _, typ := range types {
			for _, strict := range []bool{false, true} {
				opts := ParseOptions{Strict: strict}
				q, err := ParseSearch(reg, typ, params, opts)
				if err != nil {
					var e *Error
					if !errors.As(err, &e) || e.Code != CodeInvalid {
						t.Fatalf("%s %q: error %v is not a client error", typ, raw, err)
					}
					continue
				}
				for _, vs := range params {
					for _, v := range vs {
						if strings.IndexByte(v, 0) >= 0 || !utf8.ValidString(v) {
							t.Fatalf("%s %q: accepted a value with U+0000 or invalid UTF-8", typ, raw)
						}
					}
				}
				if q.Count < 0 || q.Count > 1000 || q.Offset < 0 {
					t.Fatalf("%s %q: count %d offset %d", typ, raw, q.Count, q.Offset)
				}
				for _, c := range q.Clauses {
					if c.Modifier != "missing" && len(c.Values) == 0 {
						t.Fatalf("%s %q: clause %s without values", typ, raw, c.Param.Name)
					}
					for _, v := range c.Values {
						if c.Param.Type == TypeDate && !v.Low.Before(v.High) ||
							(c.Param.Type == TypeNumber || c.Param.Type == TypeQuantity) && !(v.NumLow <= v.Number && v.Number <= v.NumHigh) {
							t.Fatalf("%s %q: bad range in %+v", typ, raw, v)
						}
					}
				}
				checkRoundTrip(t, reg, typ, q, opts)
			}
		}
	})
}

// list returns n comma-separated values made by f.
func list(n int, f func(i int) string) string {
	v := make([]string, n)
	for i := range v {
		v[i] = f(i)
	}
	return strings.Join(v, ",")
}

// repeat returns n occurrences name=f(i) joined as a query string.
func repeat(n int, name string, f func(i int) string) string {
	v := make([]string, n)
	for i := range v {
		v[i] = name + "=" + url.QueryEscape(f(i))
	}
	return strings.Join(v, "&")
}

// TestSearchLimits checks each cap of Limits at its value (accepted) and one past it
// (a 400 that names the limit, the count asked and the setting).
func TestSearchLimits(t *testing.T) {
	reg := DefaultRegistry()
	d := DefaultLimits()
	name := func(i int) string { return fmt.Sprintf("n%d", i) }
	sortKeys := []string{"family", "-given", "birthdate", "gender", "_id", "-_lastUpdated", "name", "identifier"}
	tests := []struct {
		name   string
		query  string
		limits Limits
		key    string // "": accepted; otherwise the key the error names
		asked  int
	}{
		{name: "clauses at the cap", query: repeat(d.Clauses, "name", name)},
		{name: "clauses past the cap", query: repeat(d.Clauses+1, "name", name), key: "clauses", asked: d.Clauses + 1},
		{name: "modifiers and :missing count as clauses", query: repeat(d.Clauses-2, "name", name) + "&family:exact=x&gender:missing=true&birthdate:missing=false",
			key: "clauses", asked: d.Clauses + 1},
		{name: "the issue's 200 clauses", query: repeat(200, "name", name), key: "clauses", asked: 200},
		{name: "unknown parameters are not clauses", query: repeat(d.Clauses, "name", name) + "&" + repeat(100, "foo", name)},
		{name: "empty occurrences are not clauses", query: repeat(d.Clauses, "name", name) + "&" + repeat(100, "family", func(int) string { return "" })},
		{name: "values at the cap", query: "name=" + list(d.Values, name)},
		{name: "values past the cap", query: "name=" + list(d.Values+1, name), key: "values", asked: d.Values + 1},
		{name: "escaped commas do not separate", query: "name=" + url.QueryEscape(list(d.Values, name)+`\,x`)},
		{name: "empty items do not count", query: "name=" + list(d.Values, name) + ",,,"},
		{name: "the issue's 100k OR values", query: "_id=" + list(100_000, name), key: "values", asked: 100_000},
		{name: "total values at the cap", query: "name=" + list(d.Values, name) + "&family=" + list(d.Values, name) + "&given=" + list(d.TotalValues-2*d.Values, name)},
		{name: "total values past the cap", query: "name=" + list(d.Values, name) + "&family=" + list(d.Values, name) + "&given=" + list(d.TotalValues-2*d.Values+1, name),
			key: "total-values", asked: d.TotalValues + 1},
		{name: "elements at the cap", query: "_elements=" + list(d.Elements, name)},
		{name: "elements past the cap", query: "_elements=" + list(d.Elements+1, name), key: "elements", asked: d.Elements + 1},
		{name: "repeated elements count once", query: "_elements=" + list(d.Elements, name) + "&_elements=" + list(d.Elements, name)},
		{name: "the issue's 80,000 elements", query: "_elements=" + list(80_000, name), key: "elements", asked: 80_000},
		{name: "sort keys at the cap", query: "_sort=" + strings.Join(sortKeys[:d.SortKeys], ",")},
		{name: "sort keys past the cap", query: "_sort=" + strings.Join(sortKeys[:d.SortKeys+1], ","), key: "sort", asked: d.SortKeys + 1},
		{name: "repeated sort keys count once", query: "_sort=" + strings.Join(sortKeys[:d.SortKeys], ",") + "&_sort=family,-given"},
		{name: "configured clauses", query: repeat(3, "name", name), limits: Limits{Clauses: 2}, key: "clauses", asked: 3},
		{name: "configured values", query: "gender=" + list(4, name), limits: Limits{Values: 3}, key: "values", asked: 4},
		{name: "configured total", query: "gender=a,b&family=c,d", limits: Limits{TotalValues: 3}, key: "total-values", asked: 4},
		{name: "configured elements", query: "_elements=a,b,c", limits: Limits{Elements: 2}, key: "elements", asked: 3},
		{name: "configured sort", query: "_sort=family,given", limits: Limits{SortKeys: 1}, key: "sort", asked: 2},
		{name: "configured limits keep the others' defaults", query: repeat(d.Clauses, "name", name), limits: Limits{Values: 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			params, err := url.ParseQuery(tt.query)
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			q, err := ParseSearch(reg, "Patient", params, ParseOptions{Limits: tt.limits})
			if took := time.Since(start); took > time.Second {
				t.Errorf("took %v", took)
			}
			if tt.key == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				checkRoundTrip(t, reg, "Patient", q, ParseOptions{Limits: tt.limits})
				return
			}
			var e *Error
			if !errors.As(err, &e) || e.Code != CodeInvalid {
				t.Fatalf("got %v, want a CodeInvalid error", err)
			}
			for _, want := range []string{fmt.Sprintf("%d asked", tt.asked), LimitsSetting, " " + tt.key + "="} {
				if !strings.Contains(e.Message, want) {
					t.Errorf("message %q does not say %q", e.Message, want)
				}
			}
		})
	}
}

func TestParseLimits(t *testing.T) {
	d := DefaultLimits()
	for _, tt := range []struct {
		in   string
		want Limits
		err  string
	}{
		{in: "", want: d},
		{in: d.String(), want: d},
		{in: "clauses=20, sort=2", want: Limits{Clauses: 20, Values: d.Values, TotalValues: d.TotalValues, Elements: d.Elements, SortKeys: 2, Chain: d.Chain, Includes: d.Includes}},
		{in: "values=1,total-values=5000,elements=10000", want: Limits{Clauses: d.Clauses, Values: 1, TotalValues: 5000, Elements: 10000, SortKeys: d.SortKeys, Chain: d.Chain, Includes: d.Includes}},
		{in: "chain=1", want: Limits{Clauses: d.Clauses, Values: d.Values, TotalValues: d.TotalValues, Elements: d.Elements, SortKeys: d.SortKeys, Chain: 1, Includes: d.Includes}},
		{in: "chain=11", err: "from 1 to 10"},
		{in: "includes=5", want: Limits{Clauses: d.Clauses, Values: d.Values, TotalValues: d.TotalValues, Elements: d.Elements, SortKeys: d.SortKeys, Chain: d.Chain, Includes: 5}},
		{in: "includes=10001", err: "from 1 to 10000"},
		{in: "clause=3", err: `unknown limit "clause"`},
		{in: "clauses=0", err: "from 1 to 100"},
		{in: "clauses=101", err: "from 1 to 100"},
		{in: "total-values=5001", err: "from 1 to 5000"},
		{in: "values", err: "values must be"},
	} {
		got, err := ParseLimits(tt.in)
		switch {
		case tt.err != "":
			if err == nil || !strings.Contains(err.Error(), tt.err) || !strings.Contains(err.Error(), LimitsSetting) {
				t.Errorf("ParseLimits(%q) = %v, want an error saying %q", tt.in, err, tt.err)
			}
		case err != nil || got != tt.want:
			t.Errorf("ParseLimits(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}

// TestSearchValueBounds checks the values no index entry could match, and the control
// values past an int, which are client mistakes (400) or capped, never internal errors.
func TestSearchValueBounds(t *testing.T) {
	reg := DefaultRegistry()
	long := strings.Repeat("x", MaxIndexValueBytes)
	for _, tt := range []struct {
		typ, query string
		ok         bool
		says       string
	}{
		{"Patient", "name=" + long, true, ""},
		{"Patient", "name=" + long + "y", false, "longer than any value the search index holds"},
		{"Patient", "family:contains=" + strings.Repeat("%25", 30_000), false, "longer than any value"},
		{"Patient", "identifier=" + long[:1000] + "|" + long[1000:], true, ""},
		{"Patient", "identifier=" + long[:1000] + "|" + long[999:], false, "longer than any value"},
		{"Patient", "_profile=" + long + "y", false, "longer than any value"},
		{"Observation", "value-quantity=1e99999", false, "not a number"},
		{"Observation", "value-quantity=1e999", false, "out of range"},
		{"Observation", "value-quantity=0." + strings.Repeat("1", MaxNumberLength-2), true, ""},
		{"Observation", "value-quantity=0." + strings.Repeat("1", 1_000_000), false, "at most 128"},
		{"Patient", "birthdate=10000-01-01", false, "not a valid date"},
		{"Patient", "birthdate=2000-01-01T00:00:00." + strings.Repeat("9", 100_000), true, ""},
		{"Patient", "_count=99999999999999999999", true, ""},
		{"Patient", "_count=-99999999999999999999", false, "_count"},
		{"Patient", "_page=99999999999999999999", false, "_page"},
		{"Patient", "_page=9223372036854775807&_count=1000", false, "too large"},
	} {
		params, _ := url.ParseQuery(tt.query)
		start := time.Now()
		q, err := ParseSearch(reg, tt.typ, params, ParseOptions{})
		label := tt.query[:min(len(tt.query), 60)]
		if took := time.Since(start); took > time.Second {
			t.Errorf("%s: took %v", label, took)
		}
		if tt.ok {
			if err != nil {
				t.Errorf("%s: %v", label, err)
			} else if strings.HasPrefix(tt.query, "_count") && q.Count != 1000 {
				t.Errorf("%s: count %d, want the maximum", label, q.Count)
			}
			continue
		}
		var e *Error
		if !errors.As(err, &e) || e.Code != CodeInvalid || !strings.Contains(e.Message, tt.says) {
			t.Errorf("%s: got %v, want a CodeInvalid error saying %q", label, err, tt.says)
		}
	}
}

// TestElementsLinear checks that _elements work which was quadratic in the names is
// linear: the duplicate check of ParseSearch (80,000 names took 6.4 s) and the view
// applied to each resource of a page (16.2 s). Absolute time bounds failed on a loaded
// CI machine, so it compares each step on n and on n/8 names: linear work takes about 8
// times as long, quadratic 64 times; the bound is 24.
func TestElementsLinear(t *testing.T) {
	const n = 80_000
	parse := func(k int) {
		names := list(k, func(i int) string { return fmt.Sprintf("n%d", i) })
		if _, err := ParseSearch(DefaultRegistry(), "Patient", url.Values{"_elements": {names}}, ParseOptions{Limits: Limits{Elements: 10000}}); err == nil && k > 10000 {
			t.Errorf("%d names past the limit were accepted", k)
		}
	}
	repeated := func(k int) {
		if _, err := ParseSearch(DefaultRegistry(), "Patient", url.Values{"_elements": {strings.Repeat("name,", k)}}, ParseOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	svc := NewService(DefaultRegistry(), nil, Options{})
	view := func(k int) {
		doc := map[string]any{"resourceType": "Thing", "id": "x"}
		for i := range k {
			doc[fmt.Sprintf("k%d", i)] = i
		}
		content, _ := json.Marshal(doc)
		names := list(k, func(i int) string { return fmt.Sprintf("k%d", i) })
		out, err := svc.Public(&Resource{Type: "Patient", ID: "x", Content: content}, View{Elements: strings.Split(names, ",")})
		if err != nil {
			t.Fatal(err)
		}
		var got map[string]any
		if err := json.Unmarshal(out, &got); err != nil || len(got) != k+3 {
			t.Errorf("view kept %d keys (%v), want %d", len(got), err, k+3)
		}
	}
	for _, step := range []struct {
		name string
		f    func(int)
		n    int
	}{{"ParseSearch of distinct names", parse, n}, {"ParseSearch of one name repeated", repeated, 200_000}, {"Public", view, n}} {
		g := growth(step.f, step.n)
		t.Logf("%s: growth %.1f", step.name, g)
		if g > 24 {
			t.Errorf("%s: %d names took %.0f times as long as %d", step.name, step.n, g, step.n/8)
		}
	}
}

// growth is how many times longer f takes on n than on n/8, the least of three runs of
// each.
func growth(f func(int), n int) float64 {
	least := func(k int) time.Duration {
		var best time.Duration
		for i := range 3 {
			start := time.Now()
			f(k)
			if d := time.Since(start); i == 0 || d < best {
				best = d
			}
		}
		return best
	}
	small := max(least(n/8), time.Microsecond)
	return float64(least(n)) / float64(small)
}
