package resources

import (
	"net/url"
	"strings"
	"testing"
)

// TestParseInclude checks what _include and _revinclude parse into: the source, the
// parameters followed, the target, and the canonical form the links carry.
func TestParseInclude(t *testing.T) {
	reg := DefaultRegistry()
	for _, tt := range []struct {
		typ, query string
		// want is one line per Include: key=value source params target
		want []string
		used string
	}{
		{"Observation", "_include=Observation:subject", []string{"_include=Observation:subject Observation [subject] "}, "_include=Observation%3Asubject"},
		{"Observation", "_include=Observation:subject:Patient", []string{"_include=Observation:subject:Patient Observation [subject] Patient"}, ""},
		{"Observation", "_include=*", []string{"_include=* Observation [based-on derived-from device encounter focus has-member part-of patient performer specimen subject] "}, "_include=%2A"},
		{"Observation", "_include=Observation:*:Encounter", []string{"_include=Observation:*:Encounter Observation [encounter focus] Encounter"}, ""},
		{"Observation", "_include:iterate=*", []string{"_include:iterate=*  [] "}, ""},
		{"Observation", "_include:recurse=Patient:organization", []string{"_include:iterate=Patient:organization Patient [organization] "}, "_include%3Aiterate=Patient%3Aorganization"},
		{"Patient", "_revinclude=Observation:subject", []string{"_revinclude=Observation:subject Observation [subject] "}, ""},
		{"Patient", "_revinclude=Observation:*", []string{"_revinclude=Observation:* Observation [focus patient performer subject] "}, ""},
		{"Patient", "_revinclude:iterate=Observation:encounter", []string{"_revinclude:iterate=Observation:encounter Observation [encounter] "}, ""},
		// Given twice, followed once; empty values are absent.
		{"Observation", "_include=Observation:subject&_include=Observation:subject&_include=", []string{"_include=Observation:subject Observation [subject] "}, "_include=Observation%3Asubject"},
	} {
		params, _ := url.ParseQuery(tt.query)
		q, err := ParseSearch(reg, tt.typ, params, ParseOptions{Strict: true})
		if err != nil {
			t.Errorf("%s?%s: %v", tt.typ, tt.query, err)
			continue
		}
		var got []string
		for _, inc := range q.Includes {
			var names []string
			for _, p := range inc.Params {
				names = append(names, p.Name)
			}
			got = append(got, inc.Key()+"="+inc.Value+" "+inc.Source+" ["+strings.Join(names, " ")+"] "+inc.Target)
		}
		if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
			t.Errorf("%s?%s:\n got %q\nwant %q", tt.typ, tt.query, got, tt.want)
		}
		if tt.used != "" && q.Used.Encode() != tt.used {
			t.Errorf("%s?%s: Used %s, want %s", tt.typ, tt.query, q.Used.Encode(), tt.used)
		}
		// The canonical form parses into the same includes.
		again, err := ParseSearch(reg, tt.typ, q.Used, ParseOptions{Strict: true})
		if err != nil || len(again.Includes) != len(q.Includes) || again.Used.Encode() != q.Used.Encode() {
			t.Errorf("%s?%s: Used %s does not round-trip: %v", tt.typ, tt.query, q.Used.Encode(), err)
		}
	}
}
