package resources

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

func TestStripXHTML(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{`plain text`, `plain text`},
		{`<div xmlns="http://www.w3.org/1999/xhtml"><p>a &amp; b</p></div>`, ` a & b `},
		{`<p title="x > y">kept</p>`, ` kept `},
		{`x<!-- a comment -->y`, `x y`},
		{`caf&eacute; &#233; &lt;b&gt;`, `café é <b>`},
		{`unclosed <b`, `unclosed  `},
	} {
		if got := StripXHTML(tt.in); strings.Join(strings.Fields(got), " ") != strings.Join(strings.Fields(tt.want), " ") {
			t.Errorf("StripXHTML(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestExtractFullText(t *testing.T) {
	doc := map[string]any{
		"resourceType":         "Patient",
		"id":                   "pat-1",
		"meta":                 map[string]any{"versionId": "3", "source": "http://src.example"},
		"text":                 map[string]any{"status": "generated", "div": `<div>Hepatitis <b>B</b>, hepatitis again</div>`},
		"name":                 []any{map[string]any{"family": "Müller", "given": []any{"Jo-Ann"}}},
		"identifier":           []any{map[string]any{"system": "http://mrn.example", "value": "MRN-42"}},
		"managingOrganization": map[string]any{"reference": "Organization/org9", "display": "General Hospital"},
		"deceasedDateTime":     "2011-10-04T10:00:00Z",
		"photo":                []any{map[string]any{"data": "aGVsbG8gd29ybGQ=", "title": "Portrait"}},
		"contained": []any{map[string]any{"resourceType": "Practitioner", "id": "c1",
			"text": map[string]any{"status": "extensions", "div": "<div>Contained narrative</div>"}}},
		"password":  "secret words",
		"birthDate": "1970-01-01",
		"active":    true,
	}
	ft := ExtractFullText(doc, []string{"password"})
	if ft.Narrative != "hepatitis b again" {
		t.Errorf("narrative %q", ft.Narrative)
	}
	words := map[string]bool{}
	for _, w := range strings.Fields(ft.Content) {
		if words[w] {
			t.Errorf("word %q twice", w)
		}
		words[w] = true
	}
	for _, w := range []string{"hepatitis", "b", "muller", "jo", "ann", "mrn", "42", "general", "hospital", "portrait", "contained", "narrative"} {
		if !words[w] {
			t.Errorf("content lacks %q: %q", w, ft.Content)
		}
	}
	for _, w := range []string{"pat", "patient", "http", "mrn.example", "org9", "organization", "secret", "words", "generated", "extensions", "true", "src", "agvsbg8gd29ybgq", "c1", "practitioner", "04t10", "2011"} {
		if words[w] {
			t.Errorf("content has %q: %q", w, ft.Content)
		}
	}
}

func TestFullTextBounds(t *testing.T) {
	long := strings.Repeat("x", MaxWordBytes+1)
	var many strings.Builder
	for i := 0; many.Len() < 2*MaxFullTextBytes; i++ {
		fmt.Fprintf(&many, "w%d ", i)
	}
	ft := ExtractFullText(map[string]any{"note": long + " short " + many.String()}, nil)
	if strings.Contains(ft.Content, long) || !strings.Contains(ft.Content, "short") {
		t.Errorf("long words: %q…", ft.Content[:40])
	}
	if len(ft.Content) > MaxFullTextBytes || len(ft.Content) < MaxFullTextBytes-MaxWordBytes {
		t.Errorf("content of %d bytes, limit %d", len(ft.Content), MaxFullTextBytes)
	}
}

// FuzzEachWord checks that eachWord, which cuts ASCII text without normalising it
// first, gives the words of Words.
func FuzzEachWord(f *testing.F) {
	for _, s := range []string{"", "Body Mass Index (BMI) [Ratio]", "a-b_c.d", "Véliz Ñúñez", "x\x00y\x7fZ", "  ", "2011-10-04T10:00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var got []string
		eachWord(s, nil, func(w []byte) bool {
			got = append(got, string(w))
			return true
		})
		if want := Words(s); !slices.Equal(got, want) {
			t.Fatalf("eachWord(%q) = %q, Words = %q", s, got, want)
		}
	})
}
