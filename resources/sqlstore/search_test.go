package sqlstore

import (
	"strings"
	"testing"

	"github.com/fhirbox/fhirbox/resources"
)

// Request values only ever reach the database as arguments, in either form of a clause.
func TestValuesAreNotSQL(t *testing.T) {
	evil := `x' OR '1'='1`
	p := &resources.SearchParam{Name: "name", Type: resources.TypeString}
	for _, in := range []bool{false, true} {
		b := builder{d: &Dialect{Name: "test", MatchIn: in}}
		q := &resources.Query{Type: "Patient", Clauses: []resources.Clause{{Param: p, Values: []resources.Value{{Str: evil}}}}}
		if err := b.where(q); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(b.String(), "1'='1") {
			t.Errorf("value written into the SQL: %s", b.String())
		}
	}
}

func TestLikeEscape(t *testing.T) {
	for in, want := range map[string]string{
		"abc":     "abc",
		"a%b":     `a\%b`,
		"a_b":     `a\_b`,
		`a\b`:     `a\\b`,
		`%_\`:     `\%\_\\`,
		"é%":      `é\%`,
		"":        "",
		"100 %  ": `100 \%  `,
	} {
		if got := likeEscape(in); got != want {
			t.Errorf("likeEscape(%q) = %q, want %q", in, got, want)
		}
	}
}
