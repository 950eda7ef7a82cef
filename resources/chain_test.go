package resources

import (
	"errors"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// describeChain renders the links of a chained clause for describe: "ref>A|B." for a
// forward link, "<T:ref." for a reverse one.
func describeChain(links []ChainLink) string {
	var b strings.Builder
	for _, l := range links {
		if l.Reverse {
			b.WriteString("<" + l.Types[0] + ":" + l.Param.Name + ".")
		} else {
			b.WriteString(l.Param.Name + ">" + strings.Join(l.Types, "|") + ".")
		}
	}
	return b.String()
}

// chainRegistry has types whose parameters exercise what the default registry's do not:
// a reference to any type whose targets share a name with different search types.
const chainRegistry = `
types: [A, B, C, D]
own: [U]
common:
  - {name: _id, type: token, column: id}
params:
  A:
    - {name: ref, type: reference, expression: A.ref}
    - {name: bd, type: reference, expression: A.bd, targets: [B, D]}
    - {name: code, type: token, expression: A.code}
  B:
    - {name: x, type: string, expression: B.x}
    - {name: y, type: string, expression: B.y}
    - {name: next, type: reference, expression: B.next, targets: [C]}
  C:
    - {name: x, type: token, expression: C.x}
    - {name: back, type: reference, expression: C.back, targets: [A]}
  D:
    - {name: y, type: string, expression: D.y}
    - {name: next, type: reference, expression: D.next, targets: [D]}
  U:
    - {name: y, type: string, expression: U.y}
`

func TestParseChain(t *testing.T) {
	reg, err := LoadRegistry([]byte(chainRegistry))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		query string
		want  string // describe of the one clause, or the error's text
		used  string
	}{
		{"ref:B.x=v", "ref>B.x v", "ref:B.x=v"},
		{"ref.y=v", "ref>B|D.y v", "ref.y=v"},                                           // U is fhirbox's own: not a target
		{"bd.y:exact=V", "bd>B|D.y:exact V", "bd.y:exact=V"},                            // both targets have y
		{"bd.next.y=v", "bd>B|D.next>D.y v", "bd.next.y=v"},                             // B.next leads to C, which has no y
		{"bd.next=C/1", "bd>B|D.next C/1", "bd.next=C/1"},                               // the targets of next merged: C and D
		{"ref:C._has:A:ref:code=k", "ref>C.<A:ref.code *|k", "ref:C._has:A:ref:code=k"}, // forward, then reverse
		{"_has:C:back:x=k", "<C:back.x *|k", "_has:C:back:x=k"},
		{"ref.x=v", "x is a string parameter of B but a token parameter of C", ""},
		{"bd:C.y=v", "C is not a target of bd (B, D)", ""},
		{"ref:U.y=v", "cannot lead from A to U", ""},
		{"ref.z=v", `no target type of ref has a search parameter "z"`, ""},
		{"code.x=v", "code is a token parameter of A, not a reference", ""},
		{"_has:B:next:x=v", "next of B never refers to A (it refers to C)", ""},
		{"_has:C:x:x=v", "x of C is a token parameter, not a reference", ""},
		{"_has:C:back=v", "_has takes the form", ""},
		{"_has:c:back:x=v", `unknown resource type "c"`, ""},
		{"ref.next.next.next.next.y=v", "too many links in the chain ref.next.next.next.next.y: 5 asked, at most 4 allowed (setting FHIRBOX_SEARCH_LIMITS, key chain=4)", ""},
	} {
		t.Run(tc.query, func(t *testing.T) {
			params, err := url.ParseQuery(tc.query)
			if err != nil {
				t.Fatal(err)
			}
			q, err := ParseSearch(reg, "A", params, ParseOptions{})
			if err != nil {
				var e *Error
				if !errors.As(err, &e) || e.Code != CodeInvalid || !strings.Contains(e.Message, tc.want) {
					t.Fatalf("error %v, want a CodeInvalid error saying %q", err, tc.want)
				}
				return
			}
			if got := describe(q); !slices.Equal(got, []string{tc.want}) {
				t.Errorf("clauses %q, want %q", got, tc.want)
			}
			if used, _ := url.QueryUnescape(q.Used.Encode()); tc.used != "" && used != tc.used {
				t.Errorf("used %s, want %s", used, tc.used)
			}
			checkRoundTrip(t, reg, "A", q, ParseOptions{})
		})
	}
}

// Every link counts as a clause; the depth is checked before anything is looked up.
func TestChainLimits(t *testing.T) {
	reg := DefaultRegistry()
	for _, tc := range []struct {
		query  string
		limits Limits
		says   string // "" accepted
	}{
		{query: "subject:Patient.organization.partof.partof.name=x"},
		{query: "subject:Patient.organization.partof.partof.partof.name=x", says: "key chain=4"},
		{query: "subject:Patient.organization.name=x", limits: Limits{Chain: 1}, says: "2 asked, at most 1 allowed"},
		{query: "_has:Encounter:subject:_has:Observation:encounter:code=x", limits: Limits{Chain: 1}, says: "key chain=1"},
		{query: "subject:Patient.name=x&subject:Patient.name=y&code=z", limits: Limits{Clauses: 5}},
		{query: "subject:Patient.name=x&subject:Patient.name=y&code=z", limits: Limits{Clauses: 4}, says: "5 asked, at most 4 allowed (setting FHIRBOX_SEARCH_LIMITS, key clauses=4)"},
		{query: "nope.nope.nope.nope.nope.nope=x", says: "key chain=4"}, // refused before being looked up
	} {
		t.Run(tc.query, func(t *testing.T) {
			params, _ := url.ParseQuery(tc.query)
			_, err := ParseSearch(reg, "Observation", params, ParseOptions{Limits: tc.limits})
			switch {
			case tc.says == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.says != "" && (err == nil || !strings.Contains(err.Error(), tc.says)):
				t.Fatalf("got %v, want an error saying %q", err, tc.says)
			}
		})
	}
}

func TestChainLinks(t *testing.T) {
	for name, want := range map[string]int{
		"name":                       0,
		"subject:Patient.name":       1,
		"a.b.c.d":                    3,
		"_has:A:b:c":                 1,
		"_has:A:b:_has:C:d:e":        2,
		"s:P._has:A:b:c.d":           3,
		"_has:A:b":                   1,
		"_has":                       1,
		"subject:Patient.name:exact": 1,
	} {
		if got, _ := chainLinks(name); got != want {
			t.Errorf("chainLinks(%q) = %d, want %d", name, got, want)
		}
	}
}
