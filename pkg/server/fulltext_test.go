package server_test

import (
	"net/url"
	"slices"
	"strings"
	"testing"
)

// narrativePatient is a Patient with a narrative and a note-like text of its own.
func narrativePatient(id, div, family string, extra ...string) string {
	body := `{"resourceType":"Patient","id":"` + id + `","text":{"status":"generated","div":"` + div + `"},` +
		`"name":[{"family":"` + family + `","given":["Ann"]}]`
	for _, e := range extra {
		body += "," + e
	}
	return body + "}"
}

// sameIDs reports whether got holds exactly want, in any order.
func sameIDs(got, want []string) bool {
	g, w := slices.Clone(got), slices.Clone(want)
	slices.Sort(g)
	slices.Sort(w)
	return slices.Equal(g, w)
}

// _text searches the narrative (tags stripped, entities decoded), _content the whole
// resource's text; words AND-ed, comma values OR-ed; no stemming and no stop words;
// updated and deleted resources are found by their new text only.
func TestFullTextSearch(t *testing.T) { forEachBackend(t, testFullTextSearch) }

func testFullTextSearch(t *testing.T) {
	e := newEnv(t)
	div := func(s string) string { return `<div xmlns=\"http://www.w3.org/1999/xhtml\">` + s + `</div>` }
	e.must(201, put("/fhir/Patient/t1", narrativePatient("t1", div(`<p>Chronic <b>Hepatitis</b> A &amp; cirrhosis</p>`), "Zebrowski")))
	e.must(201, put("/fhir/Patient/t2", narrativePatient("t2", div(`Running with <i>asthma</i>, Café visits`), "Okafor",
		`"address":[{"city":"Springfield","line":["12 Elm Street"]}]`)))
	e.must(201, put("/fhir/Patient/t3", narrativePatient("t3", div(`Seen for hepatitis B`), "Lindqvist",
		`"identifier":[{"system":"http://hospital.example/mrn","value":"MRN77"}]`)))
	// A Practitioner's narrative is found by _text on Practitioner, not on Patient.
	e.must(201, put("/fhir/Practitioner/d1", `{"resourceType":"Practitioner","id":"d1","text":{"status":"generated","div":"`+
		div("hepatitis specialist")+`"},"name":[{"family":"Nakamura"}]}`))

	tests := []struct {
		query string
		want  []string
	}{
		{"_text=hepatitis", []string{"t1", "t3"}},
		{"_text=HEPATITIS", []string{"t1", "t3"}},         // case-insensitive
		{"_text=hepatitis%20a", []string{"t1"}},           // words AND-ed; "a" is no stop word
		{"_text=cirrhosis%20hepatitis", []string{"t1"}},   // in any order
		{"_text=asthma,cirrhosis", []string{"t1", "t2"}},  // values OR-ed
		{"_text=hepatitis&_text=chronic", []string{"t1"}}, // occurrences AND-ed
		{"_text=%26", nil},                                // no word: 400, below
		{"_text=cafe", []string{"t2"}},                    // accents removed on both sides
		{"_text=caf%C3%A9", []string{"t2"}},
		{"_text=amp", nil},                     // the entity is decoded, not indexed as a word
		{"_text=run", nil},                     // no stemming: "Running" is not "run"
		{"_text=running", []string{"t2"}},      // but is found as written
		{"_text=hepat", nil},                   // whole words, no prefixes
		{"_text=div", nil},                     // tags are not words
		{"_text=zebrowski", nil},               // the name is not in the narrative…
		{"_content=zebrowski", []string{"t1"}}, // …but in the content
		{"_content=springfield%20elm", []string{"t2"}},
		{"_content=hepatitis", []string{"t1", "t3"}}, // the narrative is content too
		{"_content=mrn77", []string{"t3"}},
		{"_content=hospital", nil},  // system URIs are not content
		{"_content=generated", nil}, // nor the narrative's status
		{"_content=t1", nil},        // nor ids
		{"_content=ann&family=okafor", []string{"t2"}},
		{"_text=hepatitis&_id=t3", []string{"t3"}},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			e := e.in(t)
			if tt.query == "_text=%26" {
				msg := outcomeText(t, e.must(400, get("/fhir/Patient?"+tt.query)))
				if !strings.Contains(msg, "no word") {
					t.Errorf("error %q", msg)
				}
				return
			}
			r := e.must(200, get("/fhir/Patient?"+tt.query))
			if got := entryIDs(r); !sameIDs(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
			if int(at(r.doc, "total").(float64)) != len(tt.want) {
				t.Errorf("total %v, want %d", at(r.doc, "total"), len(tt.want))
			}
			self, _ := url.Parse(link(r, "self"))
			if self == nil || (self.Query().Get("_text") == "" && self.Query().Get("_content") == "") {
				t.Errorf("self link drops the full-text parameter: %s", link(r, "self"))
			}
		})
	}
	// A create under a fresh id (PostgreSQL batches those into one statement) is indexed too.
	r := e.must(201, post("/fhir/Practitioner", `{"resourceType":"Practitioner","text":{"status":"generated","div":"`+div("Gastroenterology")+`"}}`))
	if got := entryIDs(e.must(200, get("/fhir/Practitioner?_text=gastroenterology"))); len(got) != 1 || got[0] != at(r.doc, "id") {
		t.Errorf("posted Practitioner: %v", got)
	}
	if got := entryIDs(e.must(200, get("/fhir/Practitioner?_text=hepatitis"))); !sameIDs(got, []string{"d1"}) {
		t.Errorf("Practitioner?_text=hepatitis: %v", got)
	}

	// An update replaces the words; a deletion drops them.
	e.must(200, put("/fhir/Patient/t1", narrativePatient("t1", div("Recovered"), "Zebrowski")))
	if got := entryIDs(e.must(200, get("/fhir/Patient?_text=hepatitis"))); !sameIDs(got, []string{"t3"}) {
		t.Errorf("after the update: %v", got)
	}
	if got := entryIDs(e.must(200, get("/fhir/Patient?_text=recovered"))); !sameIDs(got, []string{"t1"}) {
		t.Errorf("the new narrative: %v", got)
	}
	e.must(200, del("/fhir/Patient/t3"))
	if got := entryIDs(e.must(200, get("/fhir/Patient?_text=hepatitis"))); len(got) != 0 {
		t.Errorf("after the deletion: %v", got)
	}
	if got := entryIDs(e.must(200, get("/fhir/Patient?_content=mrn77"))); len(got) != 0 {
		t.Errorf("content after the deletion: %v", got)
	}
	// Recreated, it is found again.
	e.must(201, put("/fhir/Patient/t3", narrativePatient("t3", div(`Seen for hepatitis B`), "Lindqvist")))
	if got := entryIDs(e.must(200, get("/fhir/Patient?_text=hepatitis"))); !sameIDs(got, []string{"t3"}) {
		t.Errorf("after the re-creation: %v", got)
	}

	// Secret fields are never searchable, even hashed: a Client's secret and a User's
	// password are not content.
	e.must(201, put("/User/u1", `{"password":"correct-horse-battery","email":"quokka@zoo.example","name":{"formatted":"Quokka keeper"}}`))
	if got := entryIDs(e.must(200, get("/User?_content=quokka"))); !sameIDs(got, []string{"u1"}) {
		t.Errorf("User?_content=quokka: %v", got)
	}
	for _, q := range []string{"correct", "horse", "2a"} {
		if got := entryIDs(e.must(200, get("/User?_content="+q))); len(got) != 0 {
			t.Errorf("User?_content=%s found %v: the password is searchable", q, got)
		}
	}

	// Client mistakes are 400s naming the parameter.
	for _, q := range []string{"_text:exact=x", "_content:missing=true", "_text=" + strings.Repeat("x", 65),
		"_text=" + strings.Repeat("w+", 33)} {
		msg := outcomeText(t, e.must(400, get("/fhir/Patient?"+q)))
		if !strings.Contains(msg, "_text") && !strings.Contains(msg, "_content") {
			t.Errorf("%s: %q does not name the parameter", q, msg)
		}
	}
}
