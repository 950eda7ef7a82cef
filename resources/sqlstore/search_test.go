package sqlstore

import (
	"context"
	"errors"
	"math/bits"
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

// OR-ed values are written as a balanced tree: SQLite refuses expressions nested 1,000
// deep, which a chain of a few hundred values reached.
func TestOrIsBalanced(t *testing.T) {
	p := &resources.SearchParam{Name: "name", Type: resources.TypeString}
	for _, n := range []int{1, 2, 3, 7, 1000, 5000} {
		vals := make([]resources.Value, n)
		for i := range vals {
			vals[i] = resources.Value{Str: "v"}
		}
		b := builder{d: &Dialect{Name: "test"}}
		q := &resources.Query{Type: "Patient", Clauses: []resources.Clause{{Param: p, Values: vals}}}
		if err := b.where(q); err != nil {
			t.Fatal(err)
		}
		// The parser's depth: each parenthesised group, and each OR beyond the first at
		// one level (a chain of them nests as deep as it is long).
		sql := b.String()
		ors := []int{0} // ORs at each open level
		deepest := 0
		for i := 0; i < len(sql); i++ {
			switch {
			case sql[i] == '(':
				ors = append(ors, 0)
			case sql[i] == ')':
				ors = ors[:len(ors)-1]
			case strings.HasPrefix(sql[i:], " OR "):
				ors[len(ors)-1]++
			}
			depth := 0
			for _, o := range ors {
				depth += 1 + o
			}
			deepest = max(deepest, depth)
		}
		if got := strings.Count(sql, " OR "); got != n-1 || len(ors) != 1 {
			t.Errorf("%d values: %d ORs, unbalanced by %d", n, got, len(ors)-1)
		}
		if limit := 8 + 2*bits.Len(uint(n)); deepest > limit {
			t.Errorf("%d values nest %d deep, want at most %d", n, deepest, limit)
		}
	}
}

// A Query past the arguments a statement can bind is a client error, not a driver one.
func TestTooManyArguments(t *testing.T) {
	p := &resources.SearchParam{Name: "identifier", Type: resources.TypeToken}
	vals := make([]resources.Value, maxArgs/2)
	for i := range vals {
		vals[i] = resources.Value{System: "s", MatchSystem: true, Code: "c", MatchCode: true}
	}
	q := &resources.Query{Type: "Patient", Count: 10, Clauses: []resources.Clause{{Param: p, Values: vals}}}
	_, err := (&Dialect{Name: "test"}).Search(context.Background(), nil, q)
	var e *resources.Error
	if !errors.As(err, &e) || e.Code != resources.CodeInvalid {
		t.Fatalf("got %v, want a CodeInvalid error", err)
	}
}
