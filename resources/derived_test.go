package resources

import (
	"fmt"
	"math"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// grouped renders the rows of the parameters named with prefix, with their groups.
func grouped(idx *Index, prefix string) []string {
	var out []string
	for _, e := range idx.Strings {
		if strings.HasPrefix(e.Param, prefix) {
			out = append(out, fmt.Sprintf("%s %d s:%s", e.Param, e.Group, e.Value))
		}
	}
	for _, e := range idx.Tokens {
		if strings.HasPrefix(e.Param, prefix) {
			out = append(out, fmt.Sprintf("%s %d t:%s|%s", e.Param, e.Group, e.System, e.Code))
		}
	}
	for _, e := range idx.Dates {
		if strings.HasPrefix(e.Param, prefix) {
			out = append(out, fmt.Sprintf("%s %d d:%s", e.Param, e.Group, e.Low.Format("2006-01-02")))
		}
	}
	for _, e := range idx.Numbers {
		if strings.HasPrefix(e.Param, prefix) {
			out = append(out, fmt.Sprintf("%s %d n:%g|%s|%s", e.Param, e.Group, e.Value, e.System, e.Code))
		}
	}
	slices.Sort(out)
	return out
}

// TestExtractDerived checks the rows of composite parameters (each element's under one
// group, elements lacking a component left out), of near, and of the modifiers.
func TestExtractDerived(t *testing.T) {
	reg := DefaultRegistry()
	tests := []struct {
		name, typ, doc, prefix string
		want                   []string
	}{
		{"component groups", "Observation", `{"status":"final","code":{"text":"bp"},"component":[
		   {"code":{"coding":[{"system":"http://loinc.org","code":"8480-6"}]},"valueQuantity":{"value":150,"system":"http://unitsofmeasure.org","code":"mm[Hg]","unit":"mmHg"}},
		   {"code":{"coding":[{"system":"http://loinc.org","code":"8462-4"}]}},
		   {"code":{"coding":[{"system":"http://loinc.org","code":"8462-4"}]},"valueQuantity":{"value":90}}]}`,
			"component-code-value-quantity#", []string{
				"component-code-value-quantity#0 1 t:http://loinc.org|8480-6",
				"component-code-value-quantity#0 3 t:http://loinc.org|8462-4",
				"component-code-value-quantity#1 1 n:150|http://unitsofmeasure.org|mm[Hg]",
				"component-code-value-quantity#1 1 n:150||mmHg",
				"component-code-value-quantity#1 3 n:90||",
			}},
		// The rows of code and value-date serve code-value-date (rootComponents).
		{"the Observation is the element", "Observation", `{"status":"final","code":{"coding":[{"code":"a"},{"code":"b"}]},"valueDateTime":"2020-05-01"}`,
			"code-value-date#", nil},
		{"no value, no rows", "Observation", `{"status":"final","code":{"coding":[{"code":"a"}]}}`, "code-value-", nil},
		{"%resource in a component", "MolecularSequence", `{"type":"dna","coordinateSystem":0,"referenceSeq":{"chromosome":{"coding":[{"code":"1"}]}},
		   "variant":[{"start":10,"end":20}]}`, "chromosome-variant-coordinate#", []string{
			"chromosome-variant-coordinate#0 1 t:|1", "chromosome-variant-coordinate#1 1 n:10||", "chromosome-variant-coordinate#2 1 n:20||"}},
		{"text", "Condition", `{"subject":{"reference":"Patient/p"},"code":{"text":"Type 2  Diabetes","coding":[{"code":"1","display":"Diabetes"},{"code":"2","display":"type 2 diabetes"}]}}`,
			"code:", []string{"code:text 0 s:diabetes", "code:text 0 s:type 2 diabetes"}},
		{"of-type and identifier text", "Patient", `{"identifier":[{"type":{"text":"MRN","coding":[{"system":"http://v2","code":"MR"},{"code":"X"}]},"system":"http://h","value":"12"},
		   {"system":"http://h","value":"13"}]}`, "identifier:", []string{"identifier:of-type 0 t:http://v2|MR|12", "identifier:of-type 0 t:|X|12", "identifier:text 0 s:mrn"}},
		{"reference identifier", "Observation", `{"status":"final","code":{"text":"x"},"subject":{"identifier":{"system":"http://h","value":"7"}}}`,
			"subject:", []string{"subject:identifier 0 t:http://h|7"}},
		{"Money", "Invoice", `{"status":"issued","totalNet":{"value":12.5,"currency":"EUR"}}`, "totalnet",
			[]string{"totalnet 0 n:12.5|urn:iso:std:iso:4217|EUR"}},
		{"near", "Location", `{"position":{"latitude":0,"longitude":0}}`, "near#", []string{"near#x 0 n:1||", "near#y 0 n:0||", "near#z 0 n:0||"}},
		{"near out of range", "Location", `{"position":{"latitude":91,"longitude":0}}`, "near#", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			idx, err := reg.Extract(tt.typ, decode(t, []byte(tt.doc)))
			if err != nil {
				t.Fatal(err)
			}
			if got := grouped(idx, tt.prefix); !slices.Equal(got, tt.want) {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

// TestParseDerived checks the values of composite and near parameters and of the
// modifiers that change a value's syntax, and the parameters refused.
func TestParseDerived(t *testing.T) {
	reg := DefaultRegistry()
	parse := func(t *testing.T, typ, query string) (*Query, error) {
		t.Helper()
		params, err := url.ParseQuery(query)
		if err != nil {
			t.Fatal(err)
		}
		return ParseSearch(reg, typ, params, ParseOptions{})
	}
	q, err := parse(t, "Observation", `component-code-value-quantity=http://loinc.org|8480-6$gt140||mmHg,x$1&code-value-string=c$a\$b`)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range q.Clauses {
		switch c.Param.Name {
		case "code-value-string":
			if v := c.Values[0].Components; len(v) != 2 || v[1].Str != "a$b" {
				t.Errorf("escaped $: %+v", v)
			}
		case "component-code-value-quantity":
			v := c.Values[0].Components
			if len(c.Values) != 2 || len(v) != 2 || v[0].System != "http://loinc.org" || v[0].Code != "8480-6" ||
				v[1].Prefix != PrefixGt || v[1].Number != 140 || v[1].MatchSystem || v[1].Code != "mmHg" {
				t.Errorf("composite: %+v", c.Values)
			}
		}
	}
	q, err = parse(t, "Location", "near=52.1|5.2|3|mi")
	if err != nil {
		t.Fatal(err)
	}
	if n := q.Clauses[0].Values[0].Near; n == nil || n.Lat != 52.1 || n.Long != 5.2 || math.Abs(n.Meters-4828.032) > 1e-6 {
		t.Errorf("near: %+v", n)
	}
	q, err = parse(t, "Patient", `identifier:of-type=http://v2|MR|a\|b`)
	if err != nil {
		t.Fatal(err)
	}
	if v := q.Clauses[0].Values[0]; v.System != "http://v2" || v.Code != "MR|a|b" {
		t.Errorf("of-type: %+v", v)
	}

	// A special parameter other than near is refused, naming it.
	custom, err := LoadRegistry([]byte("types: [Thing]\nparams:\n  Thing:\n    - {name: spot, type: special, expression: Thing.spot}\n"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = ParseSearch(custom, "Thing", url.Values{"spot": {"1|2"}}, ParseOptions{})
	if e, ok := err.(*Error); !ok || e.Code != CodeInvalid || !strings.Contains(e.Message, "spot is a special search parameter") {
		t.Errorf("special: %v", err)
	}
}
